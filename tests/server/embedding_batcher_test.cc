#include "server/model/embedding_batcher.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <thread>
#include <vector>

namespace hier::testing {
namespace {

using server::BatchingOptions;
using server::EmbeddingBatcher;
using ::testing::Each;
using ::testing::ElementsAre;

std::chrono::steady_clock::time_point InSeconds(int seconds) {
  return std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
}

// A "model" of two inputs floats -> their sum and difference, recording batch sizes.
struct FakeModel {
  absl::Status Forward(const float* in, int64_t count, float* out) {
    for (int64_t i = 0; i < count; ++i) {
      out[2 * i] = in[2 * i] + in[2 * i + 1];
      out[2 * i + 1] = in[2 * i] - in[2 * i + 1];
    }
    std::lock_guard<std::mutex> lock(mutex);
    batches.push_back(count);
    return absl::OkStatus();
  }

  EmbeddingBatcher::ForwardFn Fn() {
    return [this](const float* in, int64_t count, float* out) { return Forward(in, count, out); };
  }

  std::mutex mutex;
  std::vector<int64_t> batches;
};

TEST(EmbeddingBatcherTest, GathersConcurrentCallsIntoOneBatchWithTheirOwnResults) {
  FakeModel model;
  std::atomic<int64_t> observed{0};
  {
    // A long delay: the batch runs once it is full, not when the delay ends.
    EmbeddingBatcher batcher(2, 2, model.Fn(), BatchingOptions{8, 10'000'000},
                             [&](int64_t images) { observed += images; });
    std::vector<std::thread> callers;
    std::vector<std::vector<float>> results(8);
    for (int i = 0; i < 8; ++i) {
      callers.emplace_back([&, i] {
        auto out = batcher.Embed({float(i), 1.0f}, 1, InSeconds(30));
        ASSERT_TRUE(out.ok()) << out.status();
        results[i] = *out;
      });
    }
    for (auto& caller : callers) caller.join();
    for (int i = 0; i < 8; ++i) EXPECT_THAT(results[i], ElementsAre(i + 1.0f, i - 1.0f));
  }
  EXPECT_THAT(model.batches, ElementsAre(8));
  EXPECT_EQ(observed.load(), 8);
}

TEST(EmbeddingBatcherTest, ALoneCallRunsWhenItsDelayEnds) {
  FakeModel model;
  EmbeddingBatcher batcher(2, 2, model.Fn(), BatchingOptions{32, 1000}, nullptr);
  auto out = batcher.Embed({2.0f, 3.0f, 4.0f, 1.0f}, 2, InSeconds(30));
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_THAT(*out, ElementsAre(5.0f, -1.0f, 5.0f, 3.0f));
  EXPECT_THAT(model.batches, ElementsAre(2));
}

TEST(ForwardCostTest, RecoversTheFixedPartOfAPassFromPassesOfTwoSizes) {
  server::ForwardCost cost;
  cost.Observe(4, 0.010 + 4 * 0.002);
  cost.Observe(4, 0.010 + 4 * 0.002);
  EXPECT_EQ(cost.FixedSeconds(), std::nullopt);  // one size: no line yet
  for (int pass = 0; pass < 5; ++pass) {
    cost.Observe(1, 0.010 + 0.002);
    cost.Observe(32, 0.010 + 32 * 0.002);
  }
  ASSERT_TRUE(cost.FixedSeconds().has_value());
  EXPECT_NEAR(*cost.FixedSeconds(), 0.010, 1e-9);
  // Passes that cost nothing up front clamp at 0, not below.
  server::ForwardCost per_image_only;
  per_image_only.Observe(1, 0.0001);
  per_image_only.Observe(10, 0.0020);
  EXPECT_EQ(per_image_only.FixedSeconds(), 0.0);
}

// The wait for a batch to fill follows the model's measured passes: about the fixed part of a
// pass, and never the cap when that part is small.
TEST(EmbeddingBatcherTest, CalibrationSizesTheDelayFromTheModelsPasses) {
  const auto model = [](std::chrono::milliseconds fixed) {
    return [fixed](const float*, int64_t count, float* out) {
      std::this_thread::sleep_for(fixed + count * std::chrono::milliseconds(2));
      std::fill(out, out + count, 0.0f);
      return absl::OkStatus();
    };
  };
  const BatchingOptions ten_seconds{16, 10'000'000};
  EmbeddingBatcher cheap(1, 1, model(std::chrono::milliseconds(0)), ten_seconds, nullptr);
  EXPECT_EQ(cheap.delay(), std::chrono::seconds(10));  // nothing measured: the cap
  ASSERT_TRUE(cheap.Calibrate().ok());
  EXPECT_LT(cheap.delay(), std::chrono::milliseconds(20));
  const auto start = std::chrono::steady_clock::now();
  ASSERT_TRUE(cheap.Embed({1.0f}, 1, InSeconds(30)).ok());
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));

  EmbeddingBatcher costly(1, 1, model(std::chrono::milliseconds(200)), ten_seconds, nullptr);
  ASSERT_TRUE(costly.Calibrate().ok());
  EXPECT_GT(costly.delay(), std::chrono::milliseconds(100));
  EXPECT_LT(costly.delay(), std::chrono::seconds(1));
}

TEST(EmbeddingBatcherTest, SplitsACallLargerThanABatch) {
  FakeModel model;
  EmbeddingBatcher batcher(2, 2, model.Fn(), BatchingOptions{4, 0}, nullptr);
  std::vector<float> inputs;
  for (int i = 0; i < 10; ++i) inputs.insert(inputs.end(), {float(i), float(i)});
  auto out = batcher.Embed(inputs, 10, InSeconds(30));
  ASSERT_TRUE(out.ok()) << out.status();
  ASSERT_EQ(out->size(), 20u);
  for (int i = 0; i < 10; ++i) EXPECT_EQ((*out)[2 * i], 2.0f * i);
  EXPECT_THAT(model.batches, Each(::testing::Le(4)));
  int64_t total = 0;
  for (int64_t b : model.batches) total += b;
  EXPECT_EQ(total, 10);
}

TEST(EmbeddingBatcherTest, AFailedForwardFailsEveryCallInItsBatch) {
  EmbeddingBatcher batcher(
      1, 1, [](const float*, int64_t, float*) { return absl::InternalError("model broke"); },
      BatchingOptions{4, 100'000}, nullptr);
  std::vector<std::thread> callers;
  std::atomic<int> failed{0};
  for (int i = 0; i < 4; ++i) {
    callers.emplace_back([&] {
      auto out = batcher.Embed({1.0f}, 1, InSeconds(30));
      if (out.status().code() == absl::StatusCode::kInternal) ++failed;
    });
  }
  for (auto& caller : callers) caller.join();
  EXPECT_EQ(failed.load(), 4);
}

TEST(EmbeddingBatcherTest, WorkWhoseDeadlinePassedIsDroppedNotRun) {
  std::atomic<int> ran{0};
  {
    EmbeddingBatcher batcher(
        1, 1,
        [&](const float*, int64_t count, float* out) {
          std::this_thread::sleep_for(std::chrono::milliseconds(300));
          for (int64_t i = 0; i < count; ++i) out[i] = 0;
          ++ran;
          return absl::OkStatus();
        },
        BatchingOptions{1, 0}, nullptr);
    // The first call keeps the model busy; the second gives up while it waits behind it.
    std::thread first([&] { EXPECT_TRUE(batcher.Embed({1.0f}, 1, InSeconds(30)).ok()); });
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    auto late =
        batcher.Embed({2.0f}, 1, std::chrono::steady_clock::now() + std::chrono::milliseconds(20));
    EXPECT_EQ(late.status().code(), absl::StatusCode::kDeadlineExceeded);
    first.join();
  }  // the destructor finishes what is queued: the expired call is dropped, not run
  EXPECT_EQ(ran.load(), 1);
}

TEST(EmbeddingBatcherTest, AThrowingModelFailsItsBatchAndTheBatcherGoesOn) {
  std::atomic<int> calls{0};
  EmbeddingBatcher batcher(
      1, 1,
      [&](const float*, int64_t count, float* out) -> absl::Status {
        if (calls++ == 0) throw std::runtime_error("scripted backbone failed");
        for (int64_t i = 0; i < count; ++i) out[i] = 7;
        return absl::OkStatus();
      },
      BatchingOptions{1, 0}, nullptr);
  const auto failed = batcher.Embed({1.0f}, 1, InSeconds(30));
  EXPECT_EQ(failed.status().code(), absl::StatusCode::kInternal);
  EXPECT_THAT(failed.status().message(), ::testing::HasSubstr("scripted backbone failed"));
  const auto next = batcher.Embed({1.0f}, 1, InSeconds(30));
  ASSERT_TRUE(next.ok()) << next.status();
  EXPECT_THAT(*next, ElementsAre(7.0f));
}

TEST(EmbeddingBatcherTest, MismatchedInputsAreRefused) {
  FakeModel model;
  EmbeddingBatcher batcher(2, 2, model.Fn(), BatchingOptions{}, nullptr);
  EXPECT_EQ(batcher.Embed({1.0f}, 1, InSeconds(1)).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(batcher.Embed({}, 0, InSeconds(1)).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(model.batches.empty());
}

}  // namespace
}  // namespace hier::testing
