#include "server/app/replication_monitor.h"

#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "server/metrics/event_log.h"

namespace hier::server {

bool ReplicaServes(const index::ReplicationStatus& status, std::chrono::milliseconds max_lag) {
  return status.caught_up && status.store_reachable &&
         status.lag_seconds * 1000.0 <= static_cast<double>(max_lag.count());
}

ReplicationMonitor::ReplicationMonitor(const ServingSlot* serving, ServerMetrics* metrics,
                                       std::function<void(bool)> set_health,
                                       ReplicationMonitorOptions options)
    : serving_(serving),
      metrics_(metrics),
      set_health_(std::move(set_health)),
      options_(options),
      thread_([this] { Run(); }) {
  if (options_.follow) {
    follower_ = std::thread(
        [this] { Every(options_.follow_period, options_.follow, "following the cluster"); });
  }
  if (options_.announce) {
    announcer_ = std::thread(
        [this] { Every(options_.announce_period, options_.announce, "announcing this replica"); });
  }
}

ReplicationMonitor::~ReplicationMonitor() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  stop_cv_.notify_all();
  thread_.join();
  if (follower_.joinable()) follower_.join();
  if (announcer_.joinable()) announcer_.join();
}

void ReplicationMonitor::Every(std::chrono::milliseconds period,
                               const std::function<absl::Status()>& task, const char* what) {
  std::unique_lock<std::mutex> lock(mutex_);
  while (!stopping_) {
    lock.unlock();
    if (absl::Status done = task(); !done.ok()) {
      LogEvent(LogLevel::kWarning, "replication", absl::StrCat(what, ": ", done.ToString()));
    }
    lock.lock();
    stop_cv_.wait_for(lock, period, [this] { return stopping_; });
  }
}

void ReplicationMonitor::Run() {
  std::optional<bool> reported;
  std::unique_lock<std::mutex> lock(mutex_);
  while (!stopping_) {
    lock.unlock();
    const Serving serving = serving_->Get();
    const index::ReplicationStatus status = serving.collection->replication();
    metrics_->SetReplication({status.lag_seconds, status.changes_behind, status.caught_up,
                              status.store_reachable});
    metrics_->SetIndexItems(serving.collection->index().size());
    const bool serves = ReplicaServes(status, options_.max_lag);
    if (reported != serves) {
      set_health_(serves);
      reported = serves;
    }
    lock.lock();
    stop_cv_.wait_for(lock, options_.period, [this] { return stopping_; });
  }
}

}  // namespace hier::server
