// `hier`: the command-line client of the hier server (health, embed, search, items, training,
// models, hierarchy). Exit codes: 0 success, 1 an error (or not SERVING / not SUCCEEDED), 2 usage.
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/types/span.h"
#include "client/cli/commands.h"
#include "client/connection_flags.h"
#include "client/flag_set.h"
#include "client/status_text.h"

namespace hier::client::cli {
namespace {

constexpr int kExitError = 1;
constexpr int kExitUsage = 2;

std::string MainUsage(const FlagSet& global_flags) {
  std::string usage = "usage: hier [FLAGS] COMMAND [ARGS]\n\ncommands:\n";
  for (const CommandInfo& info : AllCommands()) {
    std::string line = absl::StrFormat("  %-14s %s", info.name, info.args);
    line.erase(line.find_last_not_of(' ') + 1);
    absl::StrAppend(&usage, line, "\n                 ", info.summary, "\n");
  }
  usage += "\nflags (before or after the command):\n" + global_flags.Usage();
  usage += "\n'hier COMMAND --help' shows the command's flags.\n";
  return usage;
}

std::string CommandUsage(const CommandInfo& info, const FlagSet& flags) {
  return absl::StrCat("usage: hier ", info.name, info.args.empty() ? "" : " ", info.args, "\n",
                      info.summary, "\n\nflags:\n", flags.Usage());
}

int UsageError(const std::string& message, const std::string& usage_line) {
  std::cerr << "hier: " << message << "\n" << usage_line << "\n";
  return kExitUsage;
}

int Main(const std::vector<std::string>& args) {
  FlagSet flags;
  ConnectionOptions options;
  bool json = false;
  bool help = false;
  AddConnectionFlags(&flags, &options);
  flags.AddBool("json", &json, "machine-readable output");
  flags.AddBool("help", &help, "show usage");

  absl::StatusOr<size_t> leading = flags.ParseLeading(args);
  if (!leading.ok())
    return UsageError(std::string(leading.status().message()), "run 'hier --help'");
  const std::vector<std::string> rest(args.begin() + *leading, args.end());
  if (rest.empty() || rest[0] == "help") {
    (help || !rest.empty() ? std::cout : std::cerr) << MainUsage(flags);
    return help || !rest.empty() ? 0 : kExitUsage;
  }
  size_t words = 0;
  const CommandInfo* info = FindCommand(rest, &words);
  if (info == nullptr) {
    return UsageError(absl::StrFormat("unknown command '%s'", rest[0]), "run 'hier --help'");
  }
  const std::string usage_line =
      absl::StrCat("usage: hier ", info->name, info->args.empty() ? "" : " ", info->args,
                   " ('hier ", info->name, " --help' for flags)");

  std::unique_ptr<Command> command = info->create();
  command->AddFlags(&flags);
  absl::StatusOr<std::vector<std::string>> positional =
      flags.Parse(absl::MakeConstSpan(rest).subspan(words));
  if (!positional.ok()) return UsageError(std::string(positional.status().message()), usage_line);
  if (help) {
    std::cout << CommandUsage(*info, flags);
    return 0;
  }
  if (absl::Status status = command->SetArgs(*positional, flags); !status.ok()) {
    return UsageError(std::string(status.message()), usage_line);
  }
  absl::StatusOr<Connection> connection = ConnectWithFlags(flags, options);
  if (!connection.ok()) {
    if (connection.status().code() == absl::StatusCode::kInvalidArgument) {
      return UsageError(std::string(connection.status().message()), usage_line);
    }
    std::cerr << "hier: " << StatusText(connection.status()) << "\n";
    return kExitError;
  }

  const CommandEnv env{&*connection, json, &std::cout};
  absl::StatusOr<int> exit_code = command->Run(env);
  std::cout.flush();
  if (!exit_code.ok()) {
    std::cerr << "hier: " << StatusText(exit_code.status()) << "\n";
    return kExitError;
  }
  return *exit_code;
}

}  // namespace
}  // namespace hier::client::cli

int main(int argc, char** argv) {
  return hier::client::cli::Main(std::vector<std::string>(argv + 1, argv + argc));
}
