#include "client/cli/hierarchy_command.h"

#include <algorithm>
#include <map>
#include <set>

#include "absl/strings/str_cat.h"
#include "client/cli/output.h"
#include "client/status_macros.h"
#include "client/table.h"
#include "client/unary_call.h"
#include "hier/v1/hierarchy.grpc.pb.h"

namespace hier::client::cli {
namespace {

using hier::v1::Hierarchy;
using hier::v1::HierarchyTree;
using hier::v1::Proxy;

class TreePrinter {
 public:
  explicit TreePrinter(const HierarchyTree& tree) {
    for (const Proxy& proxy : tree.proxies()) by_index_[proxy.index()] = &proxy;
    for (const Proxy& proxy : tree.proxies()) {
      const bool has_parent = proxy.parent() != proxy.index() && by_index_.count(proxy.parent());
      children_[has_parent ? proxy.parent() : kRoot].push_back(proxy.index());
    }
    for (auto& [parent, children] : children_) std::sort(children.begin(), children.end());
  }

  // Roots (parent -1, or a parent that is not in the tree) first, children in index order; a
  // proxy caught in a parent cycle is listed at the end.
  std::string Render() {
    std::string out;
    Walk(kRoot, 0, &out);
    for (const auto& [index, proxy] : by_index_) {
      if (printed_.count(index) == 0) {
        absl::StrAppend(&out, "(in a parent cycle) ", Line(*proxy), "\n");
      }
    }
    return out;
  }

 private:
  static constexpr int kRoot = -1;

  static std::string Line(const Proxy& proxy) {
    return absl::StrCat("proxy ", proxy.index(), "  depth ", proxy.depth(), "  members ",
                        proxy.members(), "  origin distance ",
                        FormatFixed(proxy.distance_to_origin(), 4));
  }

  void Walk(int parent, int indent, std::string* out) {
    auto it = children_.find(parent);
    if (it == children_.end()) return;
    for (int index : it->second) {
      if (!printed_.insert(index).second) continue;
      absl::StrAppend(out, std::string(2 * indent, ' '), Line(*by_index_.at(index)), "\n");
      Walk(index, indent + 1, out);
    }
  }

  std::map<int, const Proxy*> by_index_;
  std::map<int, std::vector<int>> children_;  // by parent (kRoot for roots), sorted
  std::set<int> printed_;
};

class HierarchyShowCommand : public Command {
 public:
  void AddFlags(FlagSet* flags) override {
    flags->AddString("model", &model_, "VERSION", "a model's hierarchy; empty: the serving one");
  }

  absl::Status SetArgs(const std::vector<std::string>& args, const FlagSet& flags) override {
    if (!args.empty()) return absl::InvalidArgumentError("hierarchy show: unexpected argument");
    return absl::OkStatus();
  }

  absl::StatusOr<int> Run(const CommandEnv& env) override {
    auto stub = Hierarchy::NewStub(env.connection->channel());
    hier::v1::GetHierarchyRequest request;
    request.set_model_version(model_);
    HIER_ASSIGN_OR_RETURN(HierarchyTree tree, UnaryCall(*env.connection, stub.get(),
                                                        &Hierarchy::Stub::GetHierarchy, request));
    if (env.json) {
      *env.out << ProtoJson(tree) << "\n";
      return 0;
    }
    *env.out << "model " << tree.model_version() << ": " << tree.proxies_size() << " proxies\n"
             << TreePrinter(tree).Render();
    return 0;
  }

 private:
  std::string model_;
};

}  // namespace

std::unique_ptr<Command> NewHierarchyShowCommand() {
  return std::make_unique<HierarchyShowCommand>();
}

}  // namespace hier::client::cli
