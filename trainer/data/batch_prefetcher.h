// Prepares training batches on a background thread, a bounded number ahead of the training loop,
// in (epoch, batch) order from a given position to the end of the run.
//
// Thread-safety: Next() is called from one thread; the producer runs on the prefetcher's own
// thread. Batches depend only on their (epoch, batch) position, so prefetching changes nothing
// about what is trained on, and a resumed run sees the same batches.
#pragma once

#include <ATen/core/Tensor.h>

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <mutex>
#include <optional>
#include <thread>

namespace hier::data {

struct TrainBatch {
  at::Tensor images;
  at::Tensor labels;
  int64_t epoch = 0;
  int64_t batch = 0;
};

struct BatchRange {
  int64_t batches_per_epoch = 1;
  int64_t start_epoch = 0;
  int64_t start_batch = 0;
  int64_t end_epoch = 1;  // exclusive
};

class BatchPrefetcher {
 public:
  using Producer = std::function<TrainBatch(int64_t epoch, int64_t batch)>;

  // Starts producing immediately, keeping up to `depth` (>= 1) batches ready.
  BatchPrefetcher(Producer producer, const BatchRange& range, int64_t depth);
  ~BatchPrefetcher();  // stops the producer and joins it
  BatchPrefetcher(const BatchPrefetcher&) = delete;
  BatchPrefetcher& operator=(const BatchPrefetcher&) = delete;

  // The next batch in order, waiting for it if needed; nullopt after the last. Rethrows what the
  // producer threw, at the position where it threw.
  std::optional<TrainBatch> Next();

 private:
  void Produce();

  const Producer producer_;
  const BatchRange range_;
  const size_t depth_;
  std::mutex mutex_;
  std::condition_variable changed_;
  std::deque<TrainBatch> ready_;  // guarded by mutex_
  bool finished_ = false;         // guarded by mutex_: the producer is done (or failed)
  bool stopping_ = false;         // guarded by mutex_: the consumer is going away
  std::exception_ptr error_;      // guarded by mutex_
  std::thread thread_;            // last: starts after the members above exist
};

}  // namespace hier::data
