#include "client/cli/stats_command.h"

#include "absl/strings/str_cat.h"
#include "client/cli/output.h"
#include "client/status_macros.h"
#include "client/table.h"
#include "client/unary_call.h"
#include "hier/v1/retrieval.grpc.pb.h"

namespace hier::client::cli {
namespace {

using hier::v1::Retrieval;

class StatsCommand : public Command {
 public:
  absl::Status SetArgs(const std::vector<std::string>& args, const FlagSet& flags) override {
    if (!args.empty()) return absl::InvalidArgumentError("stats takes no arguments");
    return absl::OkStatus();
  }

  absl::StatusOr<int> Run(const CommandEnv& env) override {
    auto stub = Retrieval::NewStub(env.connection->channel());
    HIER_ASSIGN_OR_RETURN(
        hier::v1::StatsResponse stats,
        UnaryCall(*env.connection, stub.get(), &Retrieval::Stub::Stats, hier::v1::StatsRequest()));
    if (env.json) {
      *env.out << ProtoJson(stats) << "\n";
      return 0;
    }
    const double mib = stats.index_memory_bytes() / (1024.0 * 1024.0);
    PrintFields({{"items", absl::StrCat(stats.items())},
                 {"candidates", stats.candidates()},
                 {"index memory", absl::StrCat(stats.index_memory_bytes(), " bytes (",
                                               FormatFixed(mib, 1), " MiB)")},
                 {"model", stats.model_version()},
                 {"dim", absl::StrCat(stats.dim())},
                 {"c", absl::StrCat(stats.c())}},
                env.out);
    return 0;
  }
};

}  // namespace

std::unique_ptr<Command> NewStatsCommand() { return std::make_unique<StatsCommand>(); }

}  // namespace hier::client::cli
