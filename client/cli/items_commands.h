// `hier items add|get|delete|list`: adds images from a class folder or a list file as a stream of
// batches, reads one item, deletes items, lists the gallery a page at a time.
#pragma once

#include <memory>

#include "client/cli/command.h"

namespace hier::client::cli {

std::unique_ptr<Command> NewItemsAddCommand();
std::unique_ptr<Command> NewItemsGetCommand();
std::unique_ptr<Command> NewItemsDeleteCommand();
std::unique_ptr<Command> NewItemsListCommand();

}  // namespace hier::client::cli
