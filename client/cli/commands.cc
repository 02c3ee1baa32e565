#include "client/cli/commands.h"

#include "client/cli/embed_command.h"
#include "client/cli/health_command.h"
#include "client/cli/hierarchy_command.h"
#include "client/cli/items_commands.h"
#include "client/cli/model_commands.h"
#include "client/cli/search_command.h"
#include "client/cli/stats_command.h"
#include "client/cli/train_commands.h"

namespace hier::client::cli {

const std::vector<CommandInfo>& AllCommands() {
  static const auto* commands = new std::vector<CommandInfo>{
      {"health", "[--service NAME]", "grpc.health.v1 check; exit 0 only when SERVING",
       NewHealthCommand},
      {"embed", "FILE... [--batch N]", "embed image files with the loaded model", NewEmbedCommand},
      {"search",
       "(--image FILE | --folder DIR [--batch N] | --vector X,Y,... | --id N) [--k N] "
       "[--label L] [--overfetch N] [--ancestors]",
       "nearest items to images, a vector or an item", NewSearchCommand},
      {"items add", "(FOLDER | --list FILE) [--batch N] [--first-id N]",
       "add images from class subfolders or a 'path label' list", NewItemsAddCommand},
      {"items get", "ID", "show a stored item", NewItemsGetCommand},
      {"items list", "[--label L] [--page-size N] [--page-token T]",
       "the gallery in id order, a page at a time", NewItemsListCommand},
      {"items delete", "ID...", "delete items", NewItemsDeleteCommand},
      {"stats", "", "gallery and index statistics", NewStatsCommand},
      {"index tune", "[--target-recall R] [--k K] [--sample-queries N]",
       "tune nprobe / efSearch / overfetch for a recall target on a sample of the gallery; exit 1 "
       "when no setting reached it (raise --timeout for large galleries)",
       NewIndexTuneCommand},
      {"train start", "--config FILE.json [--name NAME] [--deploy]",
       "start a training job (TrainingConfig as proto JSON)", NewTrainStartCommand},
      {"train watch", "JOB", "follow a job until it ends; exit 0 only when it SUCCEEDED",
       NewTrainWatchCommand},
      {"train list", "", "training jobs, newest first", NewTrainListCommand},
      {"train cancel", "JOB", "cancel a job", NewTrainCancelCommand},
      {"train resume", "JOB", "continue an interrupted or failed job from its latest checkpoint",
       NewTrainResumeCommand},
      {"model list", "", "models training produced", NewModelListCommand},
      {"model load", "VERSION [--wait]",
       "serve another model (with --wait, raise --timeout for large galleries)",
       NewModelLoadCommand},
      {"model swap", "", "where the latest model load stands; exit 1 when it failed",
       NewModelSwapCommand},
      {"hierarchy show", "[--model VERSION]", "the proxy tree, indented by parent",
       NewHierarchyShowCommand},
  };
  return *commands;
}

const CommandInfo* FindCommand(const std::vector<std::string>& args, size_t* words) {
  for (size_t n : {2, 1}) {
    if (args.size() < n) continue;
    const std::string name = n == 2 ? args[0] + " " + args[1] : args[0];
    for (const CommandInfo& info : AllCommands()) {
      if (info.name == name) {
        *words = n;
        return &info;
      }
    }
  }
  return nullptr;
}

}  // namespace hier::client::cli
