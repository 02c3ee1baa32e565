// `hier embed FILE...`: embeds image files with the loaded model, a batch of files per call.
#pragma once

#include <memory>

#include "client/cli/command.h"

namespace hier::client::cli {

std::unique_ptr<Command> NewEmbedCommand();

}  // namespace hier::client::cli
