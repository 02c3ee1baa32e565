#include "client/latency_stats.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace hier::client {

double NearestRankPercentile(const std::vector<double>& sorted, double percent) {
  if (sorted.empty()) return 0;
  const double n = static_cast<double>(sorted.size());
  // The small tolerance keeps e.g. 0.9 * 10 from rounding up to rank 10 through 9.000000000000002.
  const double rank = std::ceil(percent / 100.0 * n - 1e-9);
  const size_t index = static_cast<size_t>(std::clamp(rank, 1.0, n)) - 1;
  return sorted[index];
}

LatencySummary SummarizeLatencies(std::vector<double> samples) {
  LatencySummary summary;
  if (samples.empty()) return summary;
  std::sort(samples.begin(), samples.end());
  summary.count = static_cast<int64_t>(samples.size());
  summary.mean = std::accumulate(samples.begin(), samples.end(), 0.0) / samples.size();
  summary.p50 = NearestRankPercentile(samples, 50);
  summary.p90 = NearestRankPercentile(samples, 90);
  summary.p99 = NearestRankPercentile(samples, 99);
  summary.p999 = NearestRankPercentile(samples, 99.9);
  summary.max = samples.back();
  return summary;
}

}  // namespace hier::client
