// Exact latency percentiles from every sample (no histogram), for the load generator's report.
#pragma once

#include <cstdint>
#include <vector>

namespace hier::client {

struct LatencySummary {
  int64_t count = 0;
  double mean = 0;
  double p50 = 0;
  double p90 = 0;
  double p99 = 0;
  double p999 = 0;  // p99.9
  double max = 0;
};

// The nearest-rank percentile of ascending `sorted` samples: the smallest sample with at least
// `percent` % of the samples at or below it (sorted[ceil(percent / 100 * n) - 1]); 0 when empty.
double NearestRankPercentile(const std::vector<double>& sorted, double percent);

// Sorts the samples and summarises them; all zero when there are none.
LatencySummary SummarizeLatencies(std::vector<double> samples);

}  // namespace hier::client
