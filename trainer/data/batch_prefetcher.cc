#include "trainer/data/batch_prefetcher.h"

#include <c10/util/Exception.h>

#include <utility>

namespace hier::data {

BatchPrefetcher::BatchPrefetcher(Producer producer, const BatchRange& range, int64_t depth)
    : producer_(std::move(producer)), range_(range), depth_(static_cast<size_t>(depth)) {
  TORCH_CHECK(depth >= 1, "prefetch: depth must be >= 1, got ", depth);
  TORCH_CHECK(range.batches_per_epoch >= 1, "prefetch: batches_per_epoch must be >= 1, got ",
              range.batches_per_epoch);
  thread_ = std::thread([this] { Produce(); });
}

BatchPrefetcher::~BatchPrefetcher() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  changed_.notify_all();
  thread_.join();
}

void BatchPrefetcher::Produce() {
  try {
    for (int64_t epoch = range_.start_epoch; epoch < range_.end_epoch; ++epoch) {
      const int64_t first = epoch == range_.start_epoch ? range_.start_batch : 0;
      for (int64_t batch = first; batch < range_.batches_per_epoch; ++batch) {
        TrainBatch made = producer_(epoch, batch);
        made.epoch = epoch;
        made.batch = batch;
        std::unique_lock<std::mutex> lock(mutex_);
        changed_.wait(lock, [this] { return stopping_ || ready_.size() < depth_; });
        if (stopping_) return;
        ready_.push_back(std::move(made));
        changed_.notify_all();
      }
    }
  } catch (...) {
    std::lock_guard<std::mutex> lock(mutex_);
    error_ = std::current_exception();
  }
  std::lock_guard<std::mutex> lock(mutex_);
  finished_ = true;
  changed_.notify_all();
}

std::optional<TrainBatch> BatchPrefetcher::Next() {
  std::unique_lock<std::mutex> lock(mutex_);
  changed_.wait(lock, [this] { return !ready_.empty() || finished_; });
  if (ready_.empty()) {
    if (error_) std::rethrow_exception(error_);
    return std::nullopt;
  }
  TrainBatch next = std::move(ready_.front());
  ready_.pop_front();
  changed_.notify_all();
  return next;
}

}  // namespace hier::data
