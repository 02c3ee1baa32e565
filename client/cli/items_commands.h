// `hier items add|get|delete`: adds images from a class folder or a list file as a stream of
// batches, reads one item, deletes items.
#pragma once

#include <memory>

#include "client/cli/command.h"

namespace hier::client::cli {

std::unique_ptr<Command> NewItemsAddCommand();
std::unique_ptr<Command> NewItemsGetCommand();
std::unique_ptr<Command> NewItemsDeleteCommand();

}  // namespace hier::client::cli
