#include "client/bench/bench_report.h"

#include "absl/strings/str_cat.h"
#include "client/json_output.h"
#include "client/status_text.h"
#include "client/table.h"

namespace hier::client::bench {

BenchSummary Summarize(const std::string& method, const std::string& server, int in_flight,
                       int64_t items_per_call, const LoadResult& result) {
  BenchSummary summary;
  summary.method = method;
  summary.server = server;
  summary.in_flight = in_flight;
  summary.requests = result.requests;
  summary.ok = static_cast<int64_t>(result.ok_latencies_ms.size());
  summary.seconds = result.seconds;
  summary.qps = result.seconds > 0 ? summary.ok / result.seconds : 0;
  summary.items_per_call = items_per_call;
  summary.items_per_second = summary.qps * static_cast<double>(items_per_call);
  summary.latency_ms = SummarizeLatencies(result.ok_latencies_ms);
  for (const auto& [code, count] : result.errors) summary.errors[StatusCodeName(code)] = count;
  return summary;
}

std::string SummaryTable(const BenchSummary& summary) {
  TextTable table({{"metric"}, {"value", TextTable::Align::kRight}});
  const LatencySummary& latency = summary.latency_ms;
  table.AddRow({"method", summary.method});
  table.AddRow({"server", summary.server});
  table.AddRow({"in flight", absl::StrCat(summary.in_flight)});
  table.AddRow({"requests", absl::StrCat(summary.requests)});
  table.AddRow({"ok", absl::StrCat(summary.ok)});
  table.AddRow({"seconds", FormatFixed(summary.seconds, 3)});
  table.AddRow({"QPS (ok)", FormatFixed(summary.qps, 1)});
  if (summary.items_per_call != 1) {
    table.AddRow({"items per call", absl::StrCat(summary.items_per_call)});
    table.AddRow({"items/s (ok)", FormatFixed(summary.items_per_second, 1)});
  }
  table.AddRow({"latency mean ms", FormatFixed(latency.mean, 3)});
  table.AddRow({"latency p50 ms", FormatFixed(latency.p50, 3)});
  table.AddRow({"latency p90 ms", FormatFixed(latency.p90, 3)});
  table.AddRow({"latency p99 ms", FormatFixed(latency.p99, 3)});
  table.AddRow({"latency p99.9 ms", FormatFixed(latency.p999, 3)});
  table.AddRow({"latency max ms", FormatFixed(latency.max, 3)});
  for (const auto& [code, count] : summary.errors) {
    table.AddRow({absl::StrCat("errors ", code), absl::StrCat(count)});
  }
  return table.Render();
}

std::string SummaryJson(const BenchSummary& summary) {
  const LatencySummary& latency = summary.latency_ms;
  JsonValue errors = JsonValue::object();
  for (const auto& [code, count] : summary.errors) errors[code] = count;
  return DumpJson({{"method", summary.method},
                   {"server", summary.server},
                   {"in_flight", summary.in_flight},
                   {"requests", summary.requests},
                   {"ok", summary.ok},
                   {"seconds", summary.seconds},
                   {"qps", summary.qps},
                   {"items_per_call", summary.items_per_call},
                   {"items_per_second", summary.items_per_second},
                   {"latency_ms",
                    {{"mean", latency.mean},
                     {"p50", latency.p50},
                     {"p90", latency.p90},
                     {"p99", latency.p99},
                     {"p999", latency.p999},
                     {"max", latency.max}}},
                   {"errors", errors}}) +
         "\n";
}

}  // namespace hier::client::bench
