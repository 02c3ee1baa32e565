#include "trainer/analysis/class_tree.h"

#include <c10/util/Exception.h>

#include <algorithm>
#include <iterator>
#include <nlohmann/json.hpp>
#include <set>
#include <unordered_set>
#include <utility>

#include "trainer/io/atomic_file.h"

namespace hier::analysis {
namespace {

// Ordered, so that groups keep their file order (the super-category indices).
using Json = nlohmann::ordered_json;

constexpr char kParse[] = "ClassTree::Parse";

// Turns the parsed JSON into the node list (heights left at 0), checking the format as it goes.
class TreeReader {
 public:
  explicit TreeReader(const std::string& origin) : origin_(origin) {
    nodes_.push_back(ClassTree::Node{});  // the root
  }

  std::vector<ClassTree::Node> Read(const Json& json) {
    TORCH_CHECK(json.is_object(), kParse, ": ", origin_,
                " must be a JSON object mapping group names to their members, got a ",
                json.type_name());
    TORCH_CHECK(!json.empty(), kParse, ": ", origin_, " has no groups");
    AddGroups(json, 0);
    return std::move(nodes_);
  }

 private:
  // The groups of `object` (one per key) as children of node `parent`.
  void AddGroups(const Json& object, int64_t parent) {
    for (const auto& [name, members] : object.items()) AddGroup(name, members, parent);
  }

  void AddGroup(const std::string& name, const Json& members, int64_t parent) {
    const int64_t group = AddNode(name, parent, false);
    TORCH_CHECK(members.is_array() || members.is_object(), kParse, ": ", origin_, ": group '",
                Path(group), "' must hold an array or an object, got a ", members.type_name());
    TORCH_CHECK(!members.empty(), kParse, ": ", origin_, ": group '", Path(group), "' is empty");
    if (members.is_object()) {
      AddGroups(members, group);
      return;
    }
    for (const Json& member : members) {
      if (member.is_string()) {
        AddClass(member.get<std::string>(), group);
      } else {
        TORCH_CHECK(member.is_object() && !member.empty(), kParse, ": ", origin_, ": group '",
                    Path(group), "' holds ", member.dump(),
                    ", which is neither a class name (a string) nor an object of groups");
        AddGroups(member, group);
      }
    }
  }

  void AddClass(const std::string& name, int64_t parent) {
    TORCH_CHECK(!name.empty(), kParse, ": ", origin_, ": group '", Path(parent),
                "' holds an empty class name");
    TORCH_CHECK(class_names_.insert(name).second, kParse, ": ", origin_, ": class '", name,
                "' appears twice (again in group '", Path(parent), "')");
    AddNode(name, parent, true);
  }

  int64_t AddNode(const std::string& name, int64_t parent, bool is_class) {
    nodes_.push_back(ClassTree::Node{name, parent, is_class, 0});
    return static_cast<int64_t>(nodes_.size()) - 1;
  }

  // "animal > bird": the group names from the top level down to `node`.
  std::string Path(int64_t node) const {
    std::string path = nodes_[node].name;
    for (int64_t p = nodes_[node].parent; p > 0; p = nodes_[p].parent) {
      path = nodes_[p].name + " > " + path;
    }
    return path;
  }

  std::string origin_;
  std::vector<ClassTree::Node> nodes_;
  std::unordered_set<std::string> class_names_;
};

// Parses JSON text, refusing a key repeated within one object (the parser would keep only the last
// of them, silently dropping the classes of the others).
Json ParseJson(const std::string& json_text, const std::string& origin) {
  std::vector<std::set<std::string>> open_objects;
  std::string repeated_key;
  const Json::parser_callback_t check_keys = [&](int, Json::parse_event_t event, Json& parsed) {
    if (event == Json::parse_event_t::object_start) open_objects.emplace_back();
    if (event == Json::parse_event_t::object_end) open_objects.pop_back();
    if (event == Json::parse_event_t::key && repeated_key.empty() &&
        !open_objects.back().insert(parsed.get<std::string>()).second) {
      repeated_key = parsed.get<std::string>();
    }
    return true;
  };
  Json json;
  try {
    json = Json::parse(json_text, check_keys);
  } catch (const Json::exception& e) {
    TORCH_CHECK(false, kParse, ": ", origin, " is not valid JSON: ", e.what());
  }
  TORCH_CHECK(repeated_key.empty(), kParse, ": ", origin, ": the name '", repeated_key,
              "' appears twice in one object");
  return json;
}

}  // namespace

void LabelHierarchy::CheckLabel(const char* name, int64_t label) const {
  TORCH_CHECK(label >= 0 && label < num_labels(), "LabelHierarchy: ", name, " must be in [0, ",
              num_labels(), "), got ", label);
}

int64_t LabelHierarchy::LcaHeight(int64_t a, int64_t b) const {
  CheckLabel("a", a);
  CheckLabel("b", b);
  const std::vector<int64_t>& path_a = paths_[a];
  const std::vector<int64_t>& path_b = paths_[b];
  // Both paths start at the root, so they share at least one node.
  const auto diverge =
      std::mismatch(path_a.begin(), path_a.end(), path_b.begin(), path_b.end()).first;
  return node_height_[*std::prev(diverge)];
}

int64_t LabelHierarchy::SuperCategory(int64_t label) const {
  CheckLabel("label", label);
  return super_category_[label];
}

ClassTree::ClassTree(std::vector<Node> nodes, std::string origin)
    : nodes_(std::move(nodes)), origin_(std::move(origin)) {
  // Children come after their parents, so one backward pass settles every height.
  for (int64_t i = static_cast<int64_t>(nodes_.size()) - 1; i > 0; --i) {
    Node& parent = nodes_[nodes_[i].parent];
    parent.height = std::max(parent.height, nodes_[i].height + 1);
  }
  for (int64_t i = 0; i < static_cast<int64_t>(nodes_.size()); ++i) {
    if (nodes_[i].is_class) class_node_.emplace(nodes_[i].name, i);
  }
}

ClassTree ClassTree::Parse(const std::string& json_text, const std::string& origin) {
  return ClassTree(TreeReader(origin).Read(ParseJson(json_text, origin)), origin);
}

ClassTree ClassTree::Load(const std::string& path) { return Parse(io::ReadFile(path), path); }

std::vector<std::string> ClassTree::ClassNames() const {
  std::vector<std::string> names;
  for (const Node& node : nodes_) {
    if (node.is_class) names.push_back(node.name);
  }
  return names;
}

std::vector<std::string> ClassTree::TopGroups() const {
  std::vector<std::string> names;
  for (const Node& node : nodes_) {
    if (node.parent == 0) names.push_back(node.name);
  }
  return names;
}

LabelHierarchy ClassTree::ForLabels(const std::vector<std::string>& class_names) const {
  // Node id of each top-level group -> its super-category index.
  std::unordered_map<int64_t, int64_t> super_of_group;
  int64_t next_super = 0;
  for (int64_t i = 0; i < static_cast<int64_t>(nodes_.size()); ++i) {
    if (nodes_[i].parent == 0) super_of_group.emplace(i, next_super++);
  }
  LabelHierarchy hierarchy;
  for (const Node& node : nodes_) hierarchy.node_height_.push_back(node.height);
  std::unordered_set<std::string> seen;
  for (const std::string& name : class_names) {
    const auto it = class_node_.find(name);
    TORCH_CHECK(it != class_node_.end(), "ClassTree::ForLabels: class '", name, "' (label ",
                hierarchy.paths_.size(), ") is not in the class tree ", origin_);
    TORCH_CHECK(seen.insert(name).second, "ClassTree::ForLabels: class '", name, "' (label ",
                hierarchy.paths_.size(), ") is named twice");
    std::vector<int64_t> path;
    for (int64_t node = it->second; node != -1; node = nodes_[node].parent) path.push_back(node);
    std::reverse(path.begin(), path.end());
    hierarchy.super_category_.push_back(super_of_group.at(path[1]));
    hierarchy.paths_.push_back(std::move(path));
  }
  return hierarchy;
}

}  // namespace hier::analysis
