#include "client/flag_set.h"

#include <CLI/CLI.hpp>
#include <algorithm>
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

FlagSet::FlagSet() : app_(std::make_unique<CLI::App>()) {
  app_->set_help_flag();  // each tool answers --help itself, from Usage()
  app_->allow_extras();   // positionals (and unknown flags, refused in Run) are left over
}

FlagSet::~FlagSet() = default;

void FlagSet::Add(const std::string& name, Kind kind, void* value, std::string value_name,
                  std::string help, std::string default_text) {
  if (flags_.count(name) == 0) order_.push_back(name);
  Flag& flag = flags_[name];
  flag = Flag{kind, value, std::move(value_name), std::move(help), std::move(default_text)};
  const std::string option = name == "help" ? "-h,--help" : "--" + name;
  // A bool flag alone reads "true"; its text is checked in Assign either way.
  flag.option =
      kind == Kind::kBool ? app_->add_flag(option, flag.text) : app_->add_option(option, flag.text);
}

absl::StatusOr<std::vector<std::string>> FlagSet::Run(absl::Span<const std::string> args,
                                                      bool leading) {
  app_->clear();
  app_->prefix_command(leading);
  std::vector<std::string> reversed(args.rbegin(), args.rend());  // CLI11 takes them backwards
  try {
    app_->parse(reversed);
  } catch (const CLI::ArgumentMismatch& e) {
    // "--k: 1 required TEXT missing": the flag is named before the colon.
    const std::string what = e.what();
    return absl::InvalidArgumentError(
        absl::StrCat(what.substr(0, what.find(':')), ": missing value"));
  } catch (const CLI::ParseError& e) {
    return absl::InvalidArgumentError(e.what());
  }
  std::vector<std::string> left = app_->remaining();
  for (const auto& [name, flag] : flags_) {
    if (flag.option->count() > 0) HIER_RETURN_IF_ERROR(Assign(name, flag));
  }
  // What CLI11 left: positionals, "--" and what follows it, and flags this set does not have.
  std::vector<std::string> positional;
  for (size_t i = 0; i < left.size(); ++i) {
    if (left[i] == "--") {
      positional.insert(positional.end(), left.begin() + i + 1, left.end());
      break;
    }
    if (leading && !positional.empty()) {
      positional.insert(positional.end(), left.begin() + i, left.end());
      break;
    }
    if (absl::StartsWith(left[i], "-") && left[i] != "-") {
      const std::string flag = left[i].substr(0, left[i].find('='));
      return absl::InvalidArgumentError(
          absl::StrCat("unknown flag --", flag.substr(absl::StartsWith(flag, "--") ? 2 : 1)));
    }
    positional.push_back(left[i]);
  }
  return positional;
}

absl::StatusOr<std::vector<std::string>> FlagSet::Parse(absl::Span<const std::string> args) {
  return Run(args, /*leading=*/false);
}

absl::StatusOr<size_t> FlagSet::ParseLeading(absl::Span<const std::string> args) {
  HIER_ASSIGN_OR_RETURN(std::vector<std::string> rest, Run(args, /*leading=*/true));
  return args.size() - rest.size();
}

bool FlagSet::IsSet(const std::string& name) const {
  const auto found = flags_.find(name);
  return found != flags_.end() && found->second.option->count() > 0;
}

absl::Status FlagSet::Assign(const std::string& name, const Flag& flag) const {
  const std::string what = absl::StrCat("--", name);
  const std::string& text = flag.text;
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
