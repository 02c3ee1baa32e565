// Keeps a replica of a shared store honest towards its callers, and in step with its cluster: health answers NOT_SERVING until
// the replica has caught up with the store after starting, while the store is unreachable, and
// while the replica lags more than a bound behind it; SERVING otherwise. It also keeps the
// replication and index-size metrics current (the follower changes the index between calls), and
// calls `follow` now and then (the model swaps of the cluster).
//
// Thread-safety: owns one thread, which reads the serving collection every `period` and calls
// `set_health` only when the answer changes, and one more for `follow` (which may wait for the
// store, and must not hold health back meanwhile). The destructor stops both.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>

#include "index/collection.h"
#include "server/metrics/server_metrics.h"
#include "server/model/serving_slot.h"

namespace hier::server {

struct ReplicationMonitorOptions {
  std::chrono::milliseconds period{200};
  // A replica that knows of a change older than this it has not applied reports NOT_SERVING.
  std::chrono::milliseconds max_lag{10000};
  // Called every follow_period (e.g. to switch to the model the cluster serves); may be empty.
  std::function<absl::Status()> follow;
  std::chrono::milliseconds follow_period{1000};
};

// Whether a replica standing at `status` should answer SERVING (see the header comment).
bool ReplicaServes(const index::ReplicationStatus& status, std::chrono::milliseconds max_lag);

class ReplicationMonitor {
 public:
  ReplicationMonitor(const ServingSlot* serving, ServerMetrics* metrics,
                     std::function<void(bool serving)> set_health,
                     ReplicationMonitorOptions options);
  ~ReplicationMonitor();
  ReplicationMonitor(const ReplicationMonitor&) = delete;
  ReplicationMonitor& operator=(const ReplicationMonitor&) = delete;

 private:
  void Run();
  void Follow();

  const ServingSlot* const serving_;
  ServerMetrics* const metrics_;
  const std::function<void(bool)> set_health_;
  const ReplicationMonitorOptions options_;
  std::mutex mutex_;  // guards stopping_
  std::condition_variable stop_cv_;
  bool stopping_ = false;
  std::thread thread_;
  std::thread follower_;  // runs options_.follow, when given
};

}  // namespace hier::server
