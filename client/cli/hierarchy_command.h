// `hier hierarchy show`: the proxy tree of a model, one line per proxy, indented by parent.
#pragma once

#include <memory>

#include "client/cli/command.h"

namespace hier::client::cli {

std::unique_ptr<Command> NewHierarchyShowCommand();

}  // namespace hier::client::cli
