// A small command-line parser for the tools: typed flags bound to variables, positional
// arguments, and usage text; every error names the flag.
//
// Flags read "--name=value" or "--name value"; a bool flag reads "--name" or "--name=true|false".
// "--" ends the flags. Values keep their defaults unless given.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace hier::client {

class FlagSet {
 public:
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
  bool IsSet(const std::string& name) const { return set_.count(name) > 0; }

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
  };

  void Add(const std::string& name, Kind kind, void* value, std::string value_name,
           std::string help, std::string default_text);
  // Parses args[*index] (a flag) and, when it takes one, its value; advances *index past them.
  absl::Status ParseFlag(absl::Span<const std::string> args, size_t* index);
  absl::Status Assign(const std::string& name, const Flag& flag, const std::string& text);

  std::map<std::string, Flag> flags_;
  std::vector<std::string> order_;  // for the usage text
  std::set<std::string> set_;
};

}  // namespace hier::client
