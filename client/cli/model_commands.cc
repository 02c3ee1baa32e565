#include "client/cli/model_commands.h"

#include "absl/strings/str_cat.h"
#include "client/cli/output.h"
#include "client/status_macros.h"
#include "client/table.h"
#include "client/unary_call.h"
#include "hier/v1/models.grpc.pb.h"

namespace hier::client::cli {
namespace {

using hier::v1::Models;

class ModelListCommand : public Command {
 public:
  absl::Status SetArgs(const std::vector<std::string>& args, const FlagSet& flags) override {
    if (!args.empty()) return absl::InvalidArgumentError("model list takes no arguments");
    return absl::OkStatus();
  }

  absl::StatusOr<int> Run(const CommandEnv& env) override {
    auto stub = Models::NewStub(env.connection->channel());
    HIER_ASSIGN_OR_RETURN(hier::v1::ListModelsResponse response,
                          UnaryCall(*env.connection, stub.get(), &Models::Stub::ListModels,
                                    hier::v1::ListModelsRequest()));
    if (env.json) {
      *env.out << ProtoJson(response) << "\n";
      return 0;
    }
    using Align = TextTable::Align;
    TextTable table({{"serving"},
                     {"version"},
                     {"architecture"},
                     {"dim", Align::kRight},
                     {"c", Align::kRight},
                     {"recall"},
                     {"run dir"}});
    for (const hier::v1::Model& model : response.models()) {
      table.AddRow({model.serving() ? "*" : "", model.version(), model.architecture(),
                    absl::StrCat(model.dim()), absl::StrCat(model.c()), RecallText(model.recall()),
                    model.run_dir()});
    }
    *env.out << table.Render();
    return 0;
  }
};

class ModelLoadCommand : public Command {
 public:
  void AddFlags(FlagSet* flags) override {
    flags->AddBool("wait", &wait_, "return once the gallery is re-embedded and the swap done");
  }

  absl::Status SetArgs(const std::vector<std::string>& args, const FlagSet& flags) override {
    if (args.size() != 1) return absl::InvalidArgumentError("model load: give one VERSION");
    version_ = args[0];
    return absl::OkStatus();
  }

  absl::StatusOr<int> Run(const CommandEnv& env) override {
    auto stub = Models::NewStub(env.connection->channel());
    hier::v1::LoadModelRequest request;
    request.set_version(version_);
    request.set_wait(wait_);
    HIER_ASSIGN_OR_RETURN(
        hier::v1::LoadModelResponse response,
        UnaryCall(*env.connection, stub.get(), &Models::Stub::LoadModel, request));
    if (env.json) {
      *env.out << ProtoJson(response) << "\n";
    } else if (response.complete()) {
      *env.out << "serving " << response.model().version() << " (re-embedded "
               << response.reembedded_items() << " items)\n";
    } else {
      *env.out << "loading " << response.model().version()
               << "; the current model serves until the swap completes (hier model swap)\n";
    }
    return 0;
  }

 private:
  std::string version_;
  bool wait_ = false;
};

class ModelSwapCommand : public Command {
 public:
  absl::Status SetArgs(const std::vector<std::string>& args, const FlagSet& flags) override {
    if (!args.empty()) return absl::InvalidArgumentError("model swap takes no arguments");
    return absl::OkStatus();
  }

  absl::StatusOr<int> Run(const CommandEnv& env) override {
    auto stub = Models::NewStub(env.connection->channel());
    HIER_ASSIGN_OR_RETURN(
        hier::v1::SwapProgress swap,
        UnaryCall(*env.connection, stub.get(), &Models::Stub::GetSwap, hier::v1::GetSwapRequest()));
    const bool failed = !swap.error_code().empty();
    if (env.json) {
      *env.out << ProtoJson(swap) << "\n";
    } else if (swap.target_version().empty()) {
      *env.out << "no swap since the server started\n";
    } else {
      const char* state = swap.running() ? "running" : swap.complete() ? "complete" : "failed";
      *env.out << "swap to " << swap.target_version() << ": " << state << ", "
               << swap.reembedded_items() << " items re-embedded\n";
      if (failed) *env.out << swap.error_code() << ": " << swap.error_message() << "\n";
    }
    return failed ? 1 : 0;
  }
};

}  // namespace

std::unique_ptr<Command> NewModelListCommand() { return std::make_unique<ModelListCommand>(); }
std::unique_ptr<Command> NewModelLoadCommand() { return std::make_unique<ModelLoadCommand>(); }
std::unique_ptr<Command> NewModelSwapCommand() { return std::make_unique<ModelSwapCommand>(); }

}  // namespace hier::client::cli
