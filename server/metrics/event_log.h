// hier-server's log: one line per lifecycle event (start-up phases and what they found, model
// swaps, training jobs, shutdown phases), as plain text for a person or as JSON lines
// (--log-format json) for a log collector.
//
// The format is process-wide (set once, before the server starts). Informational lines go to
// stdout, warnings and errors to stderr; each line is written whole and flushed.
#pragma once

#include <cstdint>
#include <string>
#include <variant>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace hier::server {

enum class LogFormat { kPlain, kJson };
enum class LogLevel { kInfo, kWarning, kError };

// "plain" or "json", else InvalidArgument naming --log-format.
absl::StatusOr<LogFormat> ParseLogFormat(absl::string_view text);
void SetLogFormat(LogFormat format);

// A field of a log line beside its message, e.g. {"seconds", 12.5} or {"phase", "index"}.
struct LogField {
  std::string key;
  std::variant<std::string, int64_t, double, bool> value;
};

// One line. Plain: `TIME hier-server: MESSAGE`. JSON: {"time", "level", "event", "message",
// then the fields}. `event` is a stable snake_case name (e.g. "startup_phase"), the message says
// the same for a person.
std::string FormatLogLine(LogFormat format, LogLevel level, absl::string_view event,
                          absl::string_view message, const std::vector<LogField>& fields);
void LogEvent(LogLevel level, absl::string_view event, absl::string_view message,
              const std::vector<LogField>& fields = {});

}  // namespace hier::server
