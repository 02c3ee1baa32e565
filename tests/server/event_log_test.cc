// The lifecycle log's two formats: plain lines a person reads, JSON lines a collector parses.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "nlohmann/json.hpp"
#include "server/metrics/event_log.h"

namespace hier::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::MatchesRegex;
using server::FormatLogLine;
using server::LogFormat;
using server::LogLevel;

TEST(EventLogTest, AJsonLineCarriesTheEventItsMessageAndEveryField) {
  const std::string line =
      FormatLogLine(LogFormat::kJson, LogLevel::kWarning, "startup_phase", "index: 12.5 s",
                    {{"phase", "index"}, {"seconds", 12.5}, {"items", int64_t{1000000}},
                     {"rebuilt", true}});
  EXPECT_EQ(line.find('\n'), std::string::npos);
  const nlohmann::json parsed = nlohmann::json::parse(line);
  EXPECT_THAT(parsed["time"].get<std::string>(),
              MatchesRegex(R"([0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z)"));
  EXPECT_EQ(parsed["level"], "warning");
  EXPECT_EQ(parsed["event"], "startup_phase");
  EXPECT_EQ(parsed["message"], "index: 12.5 s");
  EXPECT_EQ(parsed["phase"], "index");
  EXPECT_EQ(parsed["seconds"], 12.5);
  EXPECT_EQ(parsed["items"], 1000000);
  EXPECT_EQ(parsed["rebuilt"], true);
}

TEST(EventLogTest, AMessageQuotingBadBytesStillMakesOneValidJsonLine) {
  const std::string line = FormatLogLine(LogFormat::kJson, LogLevel::kError, "start_failed",
                                         "snapshot: bad \xff\xfe bytes\nand \"quotes\"", {});
  EXPECT_EQ(line.find('\n'), std::string::npos);
  const nlohmann::json parsed = nlohmann::json::parse(line);
  EXPECT_THAT(parsed["message"].get<std::string>(), HasSubstr("and \"quotes\""));
  EXPECT_EQ(parsed["level"], "error");
}

TEST(EventLogTest, APlainLineIsTimeNameAndMessageWithTheSeverityWhenNotInfo) {
  EXPECT_THAT(FormatLogLine(LogFormat::kPlain, LogLevel::kInfo, "stopped", "stopped",
                            {{"seconds", 1.0}}),
              MatchesRegex(R"([0-9-]{10}T[0-9:.]{12}Z hier-server: stopped)"));
  EXPECT_THAT(FormatLogLine(LogFormat::kPlain, LogLevel::kWarning, "swap", "not recorded", {}),
              HasSubstr("hier-server: warning: not recorded"));
}

TEST(EventLogTest, OnlyPlainAndJsonAreFormats) {
  EXPECT_EQ(*server::ParseLogFormat("plain"), LogFormat::kPlain);
  EXPECT_EQ(*server::ParseLogFormat("json"), LogFormat::kJson);
  const absl::Status bad = server::ParseLogFormat("xml").status();
  EXPECT_EQ(bad.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(bad.message(), HasSubstr("--log-format"));
}

}  // namespace
}  // namespace hier::testing
