#include "client/flag_set.h"

#include <algorithm>
#include <optional>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "client/number_parsing.h"
#include "client/status_macros.h"

namespace hier::client {

void FlagSet::AddString(const std::string& name, std::string* value, std::string value_name,
                        std::string help) {
  Add(name, Kind::kString, value, std::move(value_name), std::move(help),
      value->empty() ? "" : absl::StrCat("\"", *value, "\""));
}

void FlagSet::AddInt(const std::string& name, int64_t* value, std::string value_name,
                     std::string help) {
  Add(name, Kind::kInt, value, std::move(value_name), std::move(help),
      *value == 0 ? "" : absl::StrCat(*value));
}

void FlagSet::AddDouble(const std::string& name, double* value, std::string value_name,
                        std::string help) {
  Add(name, Kind::kDouble, value, std::move(value_name), std::move(help),
      *value == 0 ? "" : absl::StrCat(*value));
}

void FlagSet::AddBool(const std::string& name, bool* value, std::string help) {
  Add(name, Kind::kBool, value, "", std::move(help), *value ? "true" : "");
}

void FlagSet::Add(const std::string& name, Kind kind, void* value, std::string value_name,
                  std::string help, std::string default_text) {
  if (flags_.count(name) == 0) order_.push_back(name);
  flags_[name] = Flag{kind, value, std::move(value_name), std::move(help), std::move(default_text)};
}

absl::StatusOr<std::vector<std::string>> FlagSet::Parse(absl::Span<const std::string> args) {
  std::vector<std::string> positional;
  size_t index = 0;
  while (index < args.size()) {
    const std::string& arg = args[index];
    if (arg == "--") {
      positional.insert(positional.end(), args.begin() + index + 1, args.end());
      break;
    }
    if (absl::StartsWith(arg, "-") && arg != "-") {
      HIER_RETURN_IF_ERROR(ParseFlag(args, &index));
    } else {
      positional.push_back(arg);
      ++index;
    }
  }
  return positional;
}

absl::StatusOr<size_t> FlagSet::ParseLeading(absl::Span<const std::string> args) {
  size_t index = 0;
  while (index < args.size() && absl::StartsWith(args[index], "-") && args[index] != "-") {
    if (args[index] == "--") return index + 1;
    HIER_RETURN_IF_ERROR(ParseFlag(args, &index));
  }
  return index;
}

absl::Status FlagSet::ParseFlag(absl::Span<const std::string> args, size_t* index) {
  const std::string& arg = args[*index];
  std::string body = arg.substr(absl::StartsWith(arg, "--") ? 2 : 1);
  std::string name = body;
  std::optional<std::string> inline_value;
  if (size_t eq = body.find('='); eq != std::string::npos) {
    name = body.substr(0, eq);
    inline_value = body.substr(eq + 1);
  }
  if (name == "h") name = "help";
  auto it = flags_.find(name);
  if (it == flags_.end()) return absl::InvalidArgumentError(absl::StrCat("unknown flag --", name));
  const Flag& flag = it->second;
  ++*index;
  std::string text;
  if (inline_value) {
    text = *inline_value;
  } else if (flag.kind == Kind::kBool) {
    text = "true";
  } else if (*index < args.size()) {
    text = args[(*index)++];
  } else {
    return absl::InvalidArgumentError(absl::StrCat("--", name, ": missing value"));
  }
  HIER_RETURN_IF_ERROR(Assign(name, flag, text));
  set_.insert(name);
  return absl::OkStatus();
}

absl::Status FlagSet::Assign(const std::string& name, const Flag& flag, const std::string& text) {
  const std::string what = absl::StrCat("--", name);
  switch (flag.kind) {
    case Kind::kString:
      *static_cast<std::string*>(flag.value) = text;
      return absl::OkStatus();
    case Kind::kInt: {
      HIER_ASSIGN_OR_RETURN(*static_cast<int64_t*>(flag.value), ParseInt64(what, text));
      return absl::OkStatus();
    }
    case Kind::kDouble: {
      HIER_ASSIGN_OR_RETURN(*static_cast<double*>(flag.value), ParseDouble(what, text));
      return absl::OkStatus();
    }
    case Kind::kBool:
      if (text == "true" || text == "1") {
        *static_cast<bool*>(flag.value) = true;
      } else if (text == "false" || text == "0") {
        *static_cast<bool*>(flag.value) = false;
      } else {
        return absl::InvalidArgumentError(
            absl::StrCat(what, ": '", text, "' is not true or false"));
      }
      return absl::OkStatus();
  }
  return absl::InternalError("unreachable");
}

std::string FlagSet::Usage() const {
  std::vector<std::pair<std::string, const Flag*>> lines;
  size_t width = 0;
  for (const std::string& name : order_) {
    const Flag& flag = flags_.at(name);
    std::string left = absl::StrCat("--", name);
    if (!flag.value_name.empty()) absl::StrAppend(&left, " ", flag.value_name);
    width = std::max(width, left.size());
    lines.emplace_back(std::move(left), &flag);
  }
  std::string usage;
  for (const auto& [left, flag] : lines) {
    std::string help = flag->help;
    if (!flag->default_text.empty()) absl::StrAppend(&help, " (default ", flag->default_text, ")");
    absl::StrAppend(&usage, absl::StrFormat("  %-*s  %s\n", static_cast<int>(width), left, help));
  }
  return usage;
}

}  // namespace hier::client
