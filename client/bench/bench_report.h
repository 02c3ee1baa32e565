// Summarises a load run (QPS, exact latency percentiles, errors by code) as a table and as JSON.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "client/bench/load_generator.h"
#include "client/latency_stats.h"

namespace hier::client::bench {

struct BenchSummary {
  std::string method;
  std::string server;
  int in_flight = 0;
  int64_t requests = 0;  // measured calls, OK or not
  int64_t ok = 0;
  double seconds = 0;
  double qps = 0;                         // OK calls per second
  int64_t items_per_call = 1;             // images embedded or items added by one call
  double items_per_second = 0;            // qps * items_per_call
  LatencySummary latency_ms;              // of OK calls
  std::map<std::string, int64_t> errors;  // by status code name
};

BenchSummary Summarize(const std::string& method, const std::string& server, int in_flight,
                       int64_t items_per_call, const LoadResult& result);

// Two columns, metric and value, one row per figure (latencies in ms with 3 decimals).
std::string SummaryTable(const BenchSummary& summary);

// {"method", "server", "in_flight", "requests", "ok", "seconds", "qps", "items_per_call",
//  "items_per_second",
//  "latency_ms": {"mean", "p50", "p90", "p99", "max"}, "errors": {"CODE": n}}.
std::string SummaryJson(const BenchSummary& summary);

}  // namespace hier::client::bench
