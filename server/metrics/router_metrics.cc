#include "server/metrics/router_metrics.h"

namespace hier::server {
namespace {

prometheus::Histogram::BucketBoundaries ShardBuckets() {
  return {.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 10};
}

}  // namespace

RouterMetrics::RouterMetrics(prometheus::Registry& registry)
    : shard_seconds_(prometheus::BuildHistogram()
                         .Name("hier_router_shard_seconds")
                         .Help("Time of one shard's part of a routed search, retries included.")
                         .Register(registry)),
      failures_(prometheus::BuildCounter()
                    .Name("hier_router_replica_failures_total")
                    .Help("Calls to a shard's replica that failed (then retried on another).")
                    .Register(registry)),
      retries_(prometheus::BuildCounter()
                   .Name("hier_router_retries_total")
                   .Help("Calls sent again to another replica of the same shard.")
                   .Register(registry)),
      shards_(prometheus::BuildGauge()
                  .Name("hier_router_shards")
                  .Help("Shards the cluster's gallery is split into.")
                  .Register(registry)
                  .Add({})),
      shards_healthy_(prometheus::BuildGauge()
                          .Name("hier_router_shards_healthy")
                          .Help("Shards with a live replica serving the routed model version.")
                          .Register(registry)
                          .Add({})),
      shard_replicas_(prometheus::BuildGauge()
                          .Name("hier_router_shard_replicas")
                          .Help("Live replicas of a shard serving the routed model version.")
                          .Register(registry)),
      shard_items_(prometheus::BuildGauge()
                       .Name("hier_router_shard_items")
                       .Help("Items a shard holds, as its replicas announce them.")
                       .Register(registry)) {}

void RouterMetrics::ObserveShard(const std::string& shard, double seconds) {
  prometheus::Histogram* histogram = nullptr;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    prometheus::Histogram*& cached = shard_histograms_[shard];
    if (cached == nullptr) cached = &shard_seconds_.Add({{"shard", shard}}, ShardBuckets());
    histogram = cached;
  }
  histogram->Observe(seconds);
}

void RouterMetrics::CountFailure(const std::string& shard, const std::string& code) {
  failures_.Add({{"shard", shard}, {"code", code}}).Increment();
}

void RouterMetrics::CountRetry(const std::string& shard) {
  retries_.Add({{"shard", shard}}).Increment();
}

void RouterMetrics::SetShards(int total, int healthy) {
  shards_.Set(total);
  shards_healthy_.Set(healthy);
}

void RouterMetrics::SetShardMembers(const std::string& shard, int replicas, int64_t items) {
  shard_replicas_.Add({{"shard", shard}}).Set(replicas);
  shard_items_.Add({{"shard", shard}}).Set(static_cast<double>(items));
}

}  // namespace hier::server
