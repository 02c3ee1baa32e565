// The interface each `hier` subcommand implements, and what it is given to run.
#pragma once

#include <ostream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "client/connection.h"
#include "client/flag_set.h"

namespace hier::client::cli {

// What a running command may use.
struct CommandEnv {
  const Connection* connection;
  bool json;          // machine-readable output (--json)
  std::ostream* out;  // results; errors go back as statuses
};

class Command {
 public:
  virtual ~Command() = default;

  // Binds the command's own flags to its members.
  virtual void AddFlags(FlagSet* flags) {}
  // Takes the positional arguments and checks the flags after parsing; an error here is a usage
  // error (exit 2) and names the flag or argument.
  virtual absl::Status SetArgs(const std::vector<std::string>& args, const FlagSet& flags) = 0;
  // Runs the command and returns the exit code; an error status is reported as
  // "hier: CODE: message" with exit code 1.
  virtual absl::StatusOr<int> Run(const CommandEnv& env) = 0;
};

}  // namespace hier::client::cli
