// `hier train start|watch|list|cancel|resume`: training jobs on the server.
#pragma once

#include <memory>

#include "client/cli/command.h"

namespace hier::client::cli {

std::unique_ptr<Command> NewTrainStartCommand();
std::unique_ptr<Command> NewTrainWatchCommand();
std::unique_ptr<Command> NewTrainListCommand();
std::unique_ptr<Command> NewTrainCancelCommand();
std::unique_ptr<Command> NewTrainResumeCommand();

}  // namespace hier::client::cli
