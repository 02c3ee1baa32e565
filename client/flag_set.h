// The tools' command-line flags, parsed by CLI11: typed flags bound to variables, positional
// arguments, and usage text; every error names the flag.
//
// Flags read "--name=value" or "--name value"; a bool flag reads "--name" or "--name=true|false".
// "--" ends the flags. Values keep their defaults unless given. CLI11 splits the command line;
// the values are converted here, so that a bad one is reported the same way everywhere.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace CLI {
class App;
class Option;
}  // namespace CLI

namespace hier::client {

class FlagSet {
 public:
  FlagSet();
  ~FlagSet();
  FlagSet(const FlagSet&) = delete;
  FlagSet& operator=(const FlagSet&) = delete;

  // `value_name` is shown in the usage text ("--k N"); the current value is shown as the default
  // unless it is empty, zero or false.
  void AddString(const std::string& name, std::string* value, std::string value_name,
                 std::string help);
  void AddInt(const std::string& name, int64_t* value, std::string value_name, std::string help);
  void AddDouble(const std::string& name, double* value, std::string value_name, std::string help);
  void AddBool(const std::string& name, bool* value, std::string help);

  // Parses flags anywhere among `args`; returns the positional arguments in order.
  absl::StatusOr<std::vector<std::string>> Parse(absl::Span<const std::string> args);
  // Parses the flags before the first positional argument; returns how many args it consumed.
  absl::StatusOr<size_t> ParseLeading(absl::Span<const std::string> args);

  // Whether the flag appeared on the command line.
  bool IsSet(const std::string& name) const;

  // One line per flag: "  --k N  neighbours per query (default 10)".
  std::string Usage() const;

 private:
  enum class Kind { kString, kInt, kDouble, kBool };
  struct Flag {
    Kind kind;
    void* value;
    std::string value_name;
    std::string help;
    std::string default_text;
    std::string text;               // what CLI11 read for it
    CLI::Option* option = nullptr;  // owned by app_
  };

  void Add(const std::string& name, Kind kind, void* value, std::string value_name,
           std::string help, std::string default_text);
  // Runs CLI11 over `args` (stopping at the first positional when `leading`) and converts each
  // flag it read; returns what it left: positionals, and anything after them when `leading`.
  absl::StatusOr<std::vector<std::string>> Run(absl::Span<const std::string> args, bool leading);
  absl::Status Assign(const std::string& name, const Flag& flag) const;

  std::unique_ptr<CLI::App> app_;
  std::map<std::string, Flag> flags_;
  std::vector<std::string> order_;  // for the usage text
};

}  // namespace hier::client
