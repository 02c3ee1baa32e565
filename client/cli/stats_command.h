// `hier stats`: the gallery's size, the candidate stage and the serving model.
#pragma once

#include <memory>

#include "client/cli/command.h"

namespace hier::client::cli {

std::unique_ptr<Command> NewStatsCommand();

}  // namespace hier::client::cli
