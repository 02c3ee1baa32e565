// `hier search`: nearest items to image files, a folder of images, a vector or a stored item.
#pragma once

#include <memory>

#include "client/cli/command.h"

namespace hier::client::cli {

std::unique_ptr<Command> NewSearchCommand();

}  // namespace hier::client::cli
