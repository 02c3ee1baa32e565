// Keeps a replica of a shared store honest towards its callers, and in step with its cluster: health answers NOT_SERVING until
// the replica has caught up with the store after starting, while the store is unreachable, and
// while the replica lags more than a bound behind it; SERVING otherwise. It also keeps the
// replication and index-size metrics current (the follower changes the index between calls), and
// calls `follow` (the model swaps of the cluster) and `announce` (the membership heartbeat) now and
// then.
//
// Thread-safety: owns one thread, which reads the serving collection every `period` and calls
// `set_health` only when the answer changes, and one more each for `follow` and `announce` (which
// may wait for the store, and must hold neither health nor each other back). The destructor stops
// them all.
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
  // Called every announce_period (e.g. to refresh this replica's membership); may be empty.
  std::function<absl::Status()> announce;
  std::chrono::milliseconds announce_period{1000};
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
  // Calls `task` every `period` until stopped, printing its failures after `what`.
  void Every(std::chrono::milliseconds period, const std::function<absl::Status()>& task,
             const char* what);

  const ServingSlot* const serving_;
  ServerMetrics* const metrics_;
  const std::function<void(bool)> set_health_;
  const ReplicationMonitorOptions options_;
  std::mutex mutex_;  // guards stopping_
  std::condition_variable stop_cv_;
  bool stopping_ = false;
  std::thread thread_;
  std::thread follower_;   // runs options_.follow, when given
  std::thread announcer_;  // runs options_.announce, when given
};

}  // namespace hier::server
