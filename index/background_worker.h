// One job at a time on a thread of its own: HyperbolicIndex rebuilds its candidate stage and tunes
// its search effort this way, beside searches and writes.
//
// Thread-safety: every method may be called from any thread but the worker's own (Start from
// inside a job would wait for itself).
#pragma once

#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>
#include <utility>

namespace hier::index {

class BackgroundWorker {
 public:
  BackgroundWorker() = default;
  BackgroundWorker(const BackgroundWorker&) = delete;
  BackgroundWorker& operator=(const BackgroundWorker&) = delete;
  // Waits for the running job (which should be told to give up first).
  ~BackgroundWorker() { Stop(); }

  // Starts `job` unless one is running or Stop was called; returns whether it started.
  bool Start(std::function<void()> job) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (busy_ || stopped_) return false;
    if (thread_.joinable()) thread_.join();  // a finished one
    busy_ = true;
    thread_ = std::thread([this, job = std::move(job)] {
      job();
      std::lock_guard<std::mutex> done(mutex_);
      busy_ = false;
      idle_.notify_all();
    });
    return true;
  }

  // Blocks until no job runs.
  void WaitIdle() const {
    std::unique_lock<std::mutex> lock(mutex_);
    idle_.wait(lock, [this] { return !busy_; });
  }

  // Starts no more jobs and waits for the running one.
  void Stop() {
    std::thread finishing;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stopped_ = true;
      finishing = std::move(thread_);
    }
    if (finishing.joinable()) finishing.join();
  }

 private:
  mutable std::mutex mutex_;
  mutable std::condition_variable idle_;
  bool busy_ = false;
  bool stopped_ = false;
  std::thread thread_;
};

}  // namespace hier::index
