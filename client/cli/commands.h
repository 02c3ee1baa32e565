// The table of `hier` subcommands: names, usage, and the factory of each.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "client/cli/command.h"

namespace hier::client::cli {

struct CommandInfo {
  std::string name;     // "items add"
  std::string args;     // "(FOLDER | --list FILE) [--batch N] [--first-id N]"
  std::string summary;  // one line
  std::unique_ptr<Command> (*create)();
};

// In the order the usage text lists them.
const std::vector<CommandInfo>& AllCommands();

// The command named by args[0] (and args[1] for two-word names); null when there is none.
// `*words` is set to the number of arguments the name took.
const CommandInfo* FindCommand(const std::vector<std::string>& args, size_t* words);

}  // namespace hier::client::cli
