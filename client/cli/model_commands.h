// `hier model list|load`: the models training produced, and switching the one that serves.
#pragma once

#include <memory>

#include "client/cli/command.h"

namespace hier::client::cli {

std::unique_ptr<Command> NewModelListCommand();
std::unique_ptr<Command> NewModelLoadCommand();

}  // namespace hier::client::cli
