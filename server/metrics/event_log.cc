#include "server/metrics/event_log.h"

#include <atomic>
#include <cstdio>
#include <mutex>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "nlohmann/json.hpp"

namespace hier::server {
namespace {

std::atomic<LogFormat> log_format{LogFormat::kPlain};
std::mutex log_output;  // keeps lines whole when threads log at once

const char* LevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kInfo:
      return "info";
    case LogLevel::kWarning:
      return "warning";
    case LogLevel::kError:
      return "error";
  }
  return "info";
}

}  // namespace

absl::StatusOr<LogFormat> ParseLogFormat(absl::string_view text) {
  if (text == "plain") return LogFormat::kPlain;
  if (text == "json") return LogFormat::kJson;
  return absl::InvalidArgumentError(
      absl::StrCat("--log-format: \"", text, "\" is neither plain nor json"));
}

void SetLogFormat(LogFormat format) { log_format.store(format); }

std::string FormatLogLine(LogFormat format, LogLevel level, absl::string_view event,
                          absl::string_view message, const std::vector<LogField>& fields) {
  const std::string time =
      absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::Now(), absl::UTCTimeZone());
  if (format == LogFormat::kPlain) {
    const char* severity = level == LogLevel::kWarning ? "warning: "
                           : level == LogLevel::kError ? "error: "
                                                       : "";
    return absl::StrCat(time, " hier-server: ", severity, message);
  }
  nlohmann::ordered_json line;
  line["time"] = time;
  line["level"] = LevelName(level);
  line["event"] = std::string(event);
  line["message"] = std::string(message);
  for (const LogField& field : fields) {
    std::visit([&](const auto& value) { line[field.key] = value; }, field.value);
  }
  // Messages may quote what a client or a file said: invalid UTF-8 becomes U+FFFD, not a throw.
  return line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

void LogEvent(LogLevel level, absl::string_view event, absl::string_view message,
              const std::vector<LogField>& fields) {
  const std::string line = FormatLogLine(log_format.load(), level, event, message, fields);
  std::FILE* out = level == LogLevel::kInfo ? stdout : stderr;
  std::lock_guard<std::mutex> lock(log_output);
  std::fprintf(out, "%s\n", line.c_str());
  std::fflush(out);
}

}  // namespace hier::server
