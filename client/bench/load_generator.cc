#include "client/bench/load_generator.h"

#include <grpcpp/alarm.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <memory>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace hier::client::bench {
namespace {

using Clock = std::chrono::steady_clock;

// One in-flight position: it runs one call after another until the run is over.
struct Slot {
  std::unique_ptr<grpc::ClientContext> context;
  // The pacing timer (LoadOptions::rate); replaced only once it has fired and the call it
  // started has completed.
  std::unique_ptr<grpc::Alarm> alarm;
  Clock::time_point started;
  bool measured = false;
  int64_t requests = 0;
  std::vector<double> ok_latencies_ms;
  std::map<absl::StatusCode, int64_t> errors;
  Clock::time_point last_end;
};

// Shared with every completion callback, so that it outlives the last one even though RunLoad
// returns as soon as the last slot retires.
class LoadRun : public std::enable_shared_from_this<LoadRun> {
 public:
  LoadRun(const LoadOptions& options, const StartCall& start_call)
      : options_(options),
        start_call_(start_call),
        slots_(static_cast<size_t>(std::max(1, options.in_flight))) {}

  LoadResult Run() {
    measure_start_ = Clock::now() + absl::ToChronoNanoseconds(options_.warmup);
    measure_end_ = measure_start_ + absl::ToChronoNanoseconds(options_.duration);
    {
      absl::MutexLock lock(&mu_);
      active_ = static_cast<int>(slots_.size());
    }
    for (Slot& slot : slots_) StartNext(&slot);
    absl::MutexLock lock(&mu_);
    mu_.Await(absl::Condition(
        +[](int* active) { return *active == 0; }, &active_));
    return Collect();
  }

 private:
  // Starts the slot's next call (at its paced time), or retires the slot once the run is over.
  void StartNext(Slot* slot) {
    const Clock::time_point now = Clock::now();
    const Clock::time_point start = std::max(now, NextPacedStart(now));
    slot->measured = start >= measure_start_;
    if (slot->measured && Finished(start)) {
      slot->context.reset();
      absl::MutexLock lock(&mu_);
      --active_;
      return;
    }
    if (start <= now) {
      Launch(slot);
      return;
    }
    slot->alarm = std::make_unique<grpc::Alarm>();
    slot->alarm->Set(std::chrono::system_clock::now() + (start - now),
                     [self = shared_from_this(), slot](bool) { self->Launch(slot); });
  }

  // With a rate, the time the next call may start (each start books the next interval); `now`
  // without one. Turns missed while the server was slow are not made up.
  Clock::time_point NextPacedStart(Clock::time_point now) {
    if (!(options_.rate > 0)) return now;
    absl::MutexLock lock(&pace_mu_);
    const Clock::time_point start = std::max(now, next_start_);
    next_start_ = start + std::chrono::duration_cast<Clock::duration>(
                              std::chrono::duration<double>(1.0 / options_.rate));
    return start;
  }

  void Launch(Slot* slot) {
    // The previous call has completed, so its context may go (gRPC's own benchmark client does
    // this inside the completion too).
    slot->context = std::make_unique<grpc::ClientContext>();
    if (options_.prepare) options_.prepare(slot->context.get());
    slot->started = Clock::now();
    start_call_(slot->context.get(), sequence_.fetch_add(1),
                [self = shared_from_this(), slot](const grpc::Status& status) {
                  self->OnDone(slot, status);
                });
  }

  // Counts the call that is about to start as measured, unless the budget is spent.
  bool Finished(Clock::time_point now) {
    if (!options_.stop_file.empty() && ::access(options_.stop_file.c_str(), F_OK) == 0) return true;
    if (options_.requests > 0) return measured_started_.fetch_add(1) >= options_.requests;
    return now >= measure_end_;
  }

  void OnDone(Slot* slot, const grpc::Status& status) {
    const Clock::time_point end = Clock::now();
    if (slot->measured) {
      ++slot->requests;
      if (status.ok()) {
        slot->ok_latencies_ms.push_back(
            std::chrono::duration<double, std::milli>(end - slot->started).count());
      } else {
        ++slot->errors[static_cast<absl::StatusCode>(status.error_code())];
      }
      slot->last_end = std::max(slot->last_end, end);
    }
    StartNext(slot);
  }

  LoadResult Collect() const {
    LoadResult result;
    Clock::time_point last_end = measure_start_;
    for (const Slot& slot : slots_) {
      result.requests += slot.requests;
      result.ok_latencies_ms.insert(result.ok_latencies_ms.end(), slot.ok_latencies_ms.begin(),
                                    slot.ok_latencies_ms.end());
      for (const auto& [code, count] : slot.errors) result.errors[code] += count;
      last_end = std::max(last_end, slot.last_end);
    }
    result.seconds = std::chrono::duration<double>(last_end - measure_start_).count();
    return result;
  }

  const LoadOptions options_;
  const StartCall start_call_;
  std::vector<Slot> slots_;  // each touched only by its own outstanding call's completion
  Clock::time_point measure_start_;
  Clock::time_point measure_end_;
  std::atomic<int64_t> sequence_{0};
  std::atomic<int64_t> measured_started_{0};
  absl::Mutex mu_;
  int active_ ABSL_GUARDED_BY(mu_) = 0;  // slots not yet retired
  absl::Mutex pace_mu_;
  Clock::time_point next_start_ ABSL_GUARDED_BY(pace_mu_);  // the next paced start
};

}  // namespace

LoadResult RunLoad(const LoadOptions& options, const StartCall& start_call) {
  return std::make_shared<LoadRun>(options, start_call)->Run();
}

}  // namespace hier::client::bench
