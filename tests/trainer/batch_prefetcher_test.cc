#include "trainer/data/batch_prefetcher.h"

#include <ATen/ATen.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <stdexcept>
#include <utility>
#include <vector>

namespace hier::testing {
namespace {

using data::BatchPrefetcher;
using data::TrainBatch;

TrainBatch Tagged(int64_t epoch, int64_t batch) {
  TrainBatch made;
  made.images = at::full({1}, static_cast<double>(epoch * 100 + batch));
  return made;
}

std::vector<std::pair<int64_t, int64_t>> Drain(BatchPrefetcher& prefetcher) {
  std::vector<std::pair<int64_t, int64_t>> seen;
  while (auto batch = prefetcher.Next()) {
    EXPECT_EQ(batch->images.item<double>(), batch->epoch * 100 + batch->batch);
    seen.emplace_back(batch->epoch, batch->batch);
  }
  return seen;
}

TEST(BatchPrefetcherTest, DeliversEveryPositionInOrderFromTheStart) {
  BatchPrefetcher prefetcher(Tagged, {3, 1, 2, 3}, 2);
  const std::vector<std::pair<int64_t, int64_t>> expected = {{1, 2}, {2, 0}, {2, 1}, {2, 2}};
  EXPECT_EQ(Drain(prefetcher), expected);
  EXPECT_FALSE(prefetcher.Next().has_value());
}

TEST(BatchPrefetcherTest, NothingToDoPastTheLastEpoch) {
  BatchPrefetcher prefetcher(Tagged, {3, 4, 0, 4}, 2);
  EXPECT_FALSE(prefetcher.Next().has_value());
}

TEST(BatchPrefetcherTest, ProducerErrorsReachTheConsumerInPlace) {
  BatchPrefetcher prefetcher(
      [](int64_t epoch, int64_t batch) {
        if (batch == 2) throw std::runtime_error("bad image 42");
        return Tagged(epoch, batch);
      },
      {5, 0, 0, 1}, 4);
  EXPECT_TRUE(prefetcher.Next().has_value());
  EXPECT_TRUE(prefetcher.Next().has_value());
  EXPECT_THROW(
      {
        try {
          prefetcher.Next();
        } catch (const std::runtime_error& e) {
          EXPECT_STREQ(e.what(), "bad image 42");
          throw;
        }
      },
      std::runtime_error);
}

TEST(BatchPrefetcherTest, StaysBoundedAndStopsWhenDestroyedEarly) {
  std::atomic<int> made{0};
  {
    BatchPrefetcher prefetcher(
        [&](int64_t epoch, int64_t batch) {
          ++made;
          return Tagged(epoch, batch);
        },
        {1000, 0, 0, 1000}, 3);
    EXPECT_TRUE(prefetcher.Next().has_value());
  }  // must not wait for a million batches
  // One consumed, at most `depth` queued and one being handed over.
  EXPECT_LE(made.load(), 5);
}

TEST(BatchPrefetcherTest, RejectsADepthBelowOne) {
  EXPECT_THROW(BatchPrefetcher(Tagged, {1, 0, 0, 1}, 0), c10::Error);
}

}  // namespace
}  // namespace hier::testing
