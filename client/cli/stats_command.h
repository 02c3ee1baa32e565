// `hier stats`: the gallery's size, the candidate stage, how searches look and the serving
// model; `hier index tune`: tune how searches look for a recall target (TuneSearch).
#pragma once

#include <memory>

#include "client/cli/command.h"

namespace hier::client::cli {

std::unique_ptr<Command> NewStatsCommand();
std::unique_ptr<Command> NewIndexTuneCommand();

}  // namespace hier::client::cli
