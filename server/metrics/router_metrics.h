// A router's own metrics, beside the gRPC series of its ServerMetrics: each shard's answer time,
// the calls to replicas that failed and the retries they caused, and how many shards can answer.
//
// Series: hier_router_shard_seconds{shard} (histogram of one shard's part of a search, retries
// included), hier_router_replica_failures_total{shard,code}, hier_router_retries_total{shard},
// hier_router_shards (the cluster's shard count), hier_router_shards_healthy (shards with a live
// replica serving the routed model version), hier_router_shard_replicas{shard} (those replicas)
// and hier_router_shard_items{shard} (the items the shard holds, as its replicas announce them).
// Thread-safety: every method may be called from any thread.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"

namespace hier::server {

class RouterMetrics {
 public:
  // Registers the families in `registry` (the router's ServerMetrics registry).
  explicit RouterMetrics(prometheus::Registry& registry);
  RouterMetrics(const RouterMetrics&) = delete;
  RouterMetrics& operator=(const RouterMetrics&) = delete;

  // `shard` is "I/N".
  void ObserveShard(const std::string& shard, double seconds);
  // A call to a replica of `shard` that failed with gRPC status `code` (e.g. "UNAVAILABLE").
  void CountFailure(const std::string& shard, const std::string& code);
  void CountRetry(const std::string& shard);
  void SetShards(int total, int healthy);
  void SetShardMembers(const std::string& shard, int replicas, int64_t items);

 private:
  prometheus::Family<prometheus::Histogram>& shard_seconds_;
  prometheus::Family<prometheus::Counter>& failures_;
  prometheus::Family<prometheus::Counter>& retries_;
  prometheus::Gauge& shards_;
  prometheus::Gauge& shards_healthy_;
  prometheus::Family<prometheus::Gauge>& shard_replicas_;
  prometheus::Family<prometheus::Gauge>& shard_items_;
  // Serialises adding series (Family::Add is thread-safe, the cached pointers are ours).
  std::mutex mutex_;
  std::map<std::string, prometheus::Histogram*> shard_histograms_;  // guarded by mutex_
};

}  // namespace hier::server
