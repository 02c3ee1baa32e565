#include "server/model/embedding_batcher.h"

#include <algorithm>
#include <future>
#include <utility>

#include "absl/strings/str_cat.h"

namespace hier::server {
namespace {

// Calibrate's larger pass.
constexpr int64_t kCalibrationBatch = 4;

}  // namespace

struct EmbeddingBatcher::Request {
  std::vector<float> inputs;
  int64_t count = 0;
  std::chrono::steady_clock::time_point deadline;  // past it, the caller has given up
  std::promise<absl::StatusOr<std::vector<float>>> result;
};

EmbeddingBatcher::EmbeddingBatcher(int64_t input_floats, int64_t output_floats, ForwardFn forward,
                                   const BatchingOptions& options, BatchObserver observer)
    : input_floats_(input_floats),
      output_floats_(output_floats),
      forward_(std::move(forward)),
      options_(options),
      observer_(std::move(observer)),
      worker_([this] { Work(); }) {}

EmbeddingBatcher::~EmbeddingBatcher() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  queued_.notify_all();
  worker_.join();
}

absl::StatusOr<std::vector<float>> EmbeddingBatcher::Embed(
    std::vector<float> inputs, int64_t count, std::chrono::steady_clock::time_point deadline) {
  if (count <= 0 || static_cast<int64_t>(inputs.size()) != count * input_floats_) {
    return absl::InvalidArgumentError(
        absl::StrCat("embedding batch: ", inputs.size(), " floats for ", count, " inputs"));
  }
  // Split what one forward pass cannot take, so every request fits in a batch.
  std::vector<std::future<absl::StatusOr<std::vector<float>>>> parts;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (int64_t begin = 0; begin < count; begin += options_.max_batch) {
      auto request = std::make_shared<Request>();
      request->count = std::min(options_.max_batch, count - begin);
      request->deadline = deadline;
      request->inputs.assign(inputs.begin() + begin * input_floats_,
                             inputs.begin() + (begin + request->count) * input_floats_);
      parts.push_back(request->result.get_future());
      queued_images_ += request->count;
      queue_.push_back(std::move(request));
    }
  }
  queued_.notify_all();
  std::vector<float> out;
  out.reserve(count * output_floats_);
  for (auto& part : parts) {
    if (part.wait_until(deadline) != std::future_status::ready) {
      return absl::DeadlineExceededError("images: the deadline passed while waiting for the model");
    }
    absl::StatusOr<std::vector<float>> embedded = part.get();
    if (!embedded.ok()) return embedded.status();
    out.insert(out.end(), embedded->begin(), embedded->end());
  }
  return out;
}

void EmbeddingBatcher::Work() {
  std::unique_lock<std::mutex> lock(mutex_);
  while (true) {
    queued_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
    if (queue_.empty()) return;  // stopping, and nothing left to do
    // The oldest input waits a while for the batch to fill (delay()).
    const auto flush_at = std::chrono::steady_clock::now() + DelayLocked();
    queued_.wait_until(lock, flush_at,
                       [this] { return stopping_ || queued_images_ >= options_.max_batch; });
    std::vector<std::shared_ptr<Request>> batch = TakeBatch(lock);
    lock.unlock();
    Run(batch);
    lock.lock();
  }
}

absl::Status EmbeddingBatcher::Calibrate() {
  // Two sizes fix the line; small ones keep a large model's load short.
  const int64_t larger = std::min(kCalibrationBatch, options_.max_batch);
  for (const int64_t count : {int64_t{1}, larger}) {
    const std::vector<float> zeros(count * input_floats_, 0.0f);
    std::vector<float> out(count * output_floats_);
    for (int pass = 0; pass < 2; ++pass) {
      if (absl::Status ran = TimedForward(zeros.data(), count, out.data()); !ran.ok()) return ran;
    }
  }
  return absl::OkStatus();
}

absl::Status EmbeddingBatcher::TimedForward(const float* inputs, int64_t count, float* out) {
  const auto start = std::chrono::steady_clock::now();
  absl::Status status = forward_(inputs, count, out);
  const std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
  if (status.ok()) {
    std::lock_guard<std::mutex> lock(mutex_);
    cost_.Observe(count, took.count());
  }
  return status;
}

std::chrono::microseconds EmbeddingBatcher::delay() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return DelayLocked();
}

std::chrono::microseconds EmbeddingBatcher::DelayLocked() const {
  const std::chrono::microseconds most(options_.max_delay_us);
  const std::optional<double> fixed = cost_.FixedSeconds();
  if (!fixed.has_value()) return most;
  return std::min(most, std::chrono::microseconds(static_cast<int64_t>(*fixed * 1e6)));
}

std::vector<std::shared_ptr<EmbeddingBatcher::Request>> EmbeddingBatcher::TakeBatch(
    std::unique_lock<std::mutex>&) {
  std::vector<std::shared_ptr<Request>> batch;
  int64_t images = 0;
  const auto now = std::chrono::steady_clock::now();
  while (!queue_.empty() &&
         (batch.empty() || images + queue_.front()->count <= options_.max_batch)) {
    std::shared_ptr<Request> request = std::move(queue_.front());
    queue_.pop_front();
    queued_images_ -= request->count;
    // Work whose caller has given up is not run: under overload the model serves live calls.
    if (request->deadline < now) {
      request->result.set_value(absl::DeadlineExceededError("images: the deadline passed"));
      continue;
    }
    images += request->count;
    batch.push_back(std::move(request));
  }
  return batch;
}

void EmbeddingBatcher::Run(const std::vector<std::shared_ptr<Request>>& batch) {
  if (batch.empty()) return;
  int64_t images = 0;
  for (const auto& request : batch) images += request->count;
  std::vector<float> outputs;
  absl::Status status;
  try {  // no exception may end the worker (and with it the server)
    std::vector<float> inputs;
    inputs.reserve(images * input_floats_);
    for (const auto& request : batch) {
      inputs.insert(inputs.end(), request->inputs.begin(), request->inputs.end());
    }
    outputs.resize(images * output_floats_);
    status = TimedForward(inputs.data(), images, outputs.data());
  } catch (const std::exception& e) {
    status = absl::InternalError(absl::StrCat("embedding batch: ", e.what()));
  }
  if (observer_) observer_(images);
  int64_t offset = 0;
  for (const auto& request : batch) {
    if (status.ok()) {
      const auto first = outputs.begin() + offset * output_floats_;
      request->result.set_value(std::vector<float>(first, first + request->count * output_floats_));
    } else {
      request->result.set_value(status);
    }
    offset += request->count;
  }
}

}  // namespace hier::server
