// Dynamic batching of embedding work: inputs from concurrent calls are gathered into one forward
// pass of at most `max_batch` images, the way Triton's dynamic batcher does. How long the oldest
// input waits for a batch to fill comes from measurement: at most the fixed part of a pass's
// time (forward_cost.h, learnt from every pass and from Calibrate), since waiting longer costs
// more model time than a pass of its own would; never more than `max_delay_us`, which is also the
// wait until passes of two sizes have been timed. Under load, inputs that arrive while a pass runs
// form the next batch.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "server/model/forward_cost.h"

namespace hier::server {

struct BatchingOptions {
  int64_t max_batch = 32;       // images per forward pass
  int64_t max_delay_us = 2000;  // the most the first waiting input waits for others
};

class EmbeddingBatcher {
 public:
  // Runs the model on `count` inputs (count * input_floats floats) and writes count *
  // output_floats.
  using ForwardFn = std::function<absl::Status(const float* inputs, int64_t count, float* out)>;
  // Told the size of every forward pass (for metrics); may be empty.
  using BatchObserver = std::function<void(int64_t images)>;

  // Starts the worker thread. Options must be positive (max_delay_us may be 0).
  EmbeddingBatcher(int64_t input_floats, int64_t output_floats, ForwardFn forward,
                   const BatchingOptions& options, BatchObserver observer);
  // Finishes the queued work, then stops the worker.
  ~EmbeddingBatcher();

  // Times forward passes of 1 and 4 (at most max_batch) zero inputs, each twice (the first to
  // warm up), so that the wait is sized before the first call; for a model just loaded, before
  // calls arrive.
  absl::Status Calibrate();
  // The longest the oldest input waits for its batch to fill now.
  std::chrono::microseconds delay() const;

  // Embeds `count` prepared inputs, waiting until `deadline`: DeadlineExceeded when the result is
  // not ready by then (work not started by then is dropped, not run). A call with more than
  // max_batch inputs is split.
  absl::StatusOr<std::vector<float>> Embed(std::vector<float> inputs, int64_t count,
                                           std::chrono::steady_clock::time_point deadline);

 private:
  struct Request;

  void Work();
  // Takes requests from the queue's front while their images fit in one batch (at least one).
  std::vector<std::shared_ptr<Request>> TakeBatch(std::unique_lock<std::mutex>& lock);
  void Run(const std::vector<std::shared_ptr<Request>>& batch);
  // forward_ on `count` inputs, timed into cost_.
  absl::Status TimedForward(const float* inputs, int64_t count, float* out);
  std::chrono::microseconds DelayLocked() const;

  const int64_t input_floats_, output_floats_;
  const ForwardFn forward_;
  const BatchingOptions options_;
  const BatchObserver observer_;

  mutable std::mutex mutex_;
  std::condition_variable queued_;
  ForwardCost cost_;                            // guarded by mutex_
  std::deque<std::shared_ptr<Request>> queue_;  // guarded by mutex_
  int64_t queued_images_ = 0;                   // guarded by mutex_
  bool stopping_ = false;                       // guarded by mutex_
  std::thread worker_;
};

}  // namespace hier::server
