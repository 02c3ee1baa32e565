// `hier model list|load|swap`: the models training produced, switching the one that serves, and
// following that switch.
#pragma once

#include <memory>

#include "client/cli/command.h"

namespace hier::client::cli {

std::unique_ptr<Command> NewModelListCommand();
std::unique_ptr<Command> NewModelLoadCommand();
std::unique_ptr<Command> NewModelSwapCommand();

}  // namespace hier::client::cli
