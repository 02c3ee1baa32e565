#include "trainer/data/balanced_sampler.h"

#include <gtest/gtest.h>

#include <set>
#include <string>

#include "tests/core/error_message.h"

namespace hier::testing {
namespace {

// 10 classes of uneven sizes: class c has 5 + c items, labels interleaved over the dataset.
std::vector<int64_t> UnevenLabels() {
  std::vector<int64_t> labels;
  for (int64_t c = 0; c < 10; ++c) {
    for (int64_t k = 0; k < 5 + c; ++k) labels.push_back((c * 7) % 10);
  }
  return labels;
}

data::BalancedSamplerOptions Options(int64_t batch, int64_t ipc, int64_t world = 1,
                                     int64_t rank = 0) {
  data::BalancedSamplerOptions o;
  o.batch_size = batch;
  o.images_per_class = ipc;
  o.world_size = world;
  o.rank = rank;
  o.seed = 42;
  return o;
}

TEST(BalancedSamplerTest, BatchesHoldDistinctClassesInConsecutiveRuns) {
  const std::vector<int64_t> labels = UnevenLabels();
  const data::BalancedSampler sampler(labels, Options(12, 3));
  EXPECT_EQ(sampler.num_classes(), 10);
  EXPECT_EQ(sampler.BatchesPerEpoch(), static_cast<int64_t>(labels.size()) / 12);
  for (int64_t b = 0; b < sampler.BatchesPerEpoch(); ++b) {
    const std::vector<int64_t> batch = sampler.Batch(0, b);
    ASSERT_EQ(batch.size(), 12u);
    std::set<int64_t> classes;
    for (size_t start = 0; start < batch.size(); start += 3) {
      const int64_t label = labels[batch[start]];
      for (size_t k = 1; k < 3; ++k) EXPECT_EQ(labels[batch[start + k]], label);
      classes.insert(label);
    }
    EXPECT_EQ(classes.size(), 4u) << "classes repeat within a batch";
  }
}

TEST(BalancedSamplerTest, SeededPerEpochAndBatch) {
  const std::vector<int64_t> labels = UnevenLabels();
  const data::BalancedSampler a(labels, Options(8, 2)), b(labels, Options(8, 2));
  EXPECT_EQ(a.Batch(3, 1), b.Batch(3, 1));
  EXPECT_NE(a.Batch(3, 1), a.Batch(4, 1));
  EXPECT_NE(a.Batch(3, 1), a.Batch(3, 2));
  data::BalancedSamplerOptions other = Options(8, 2);
  other.seed = 43;
  EXPECT_NE(a.Batch(3, 1), data::BalancedSampler(labels, other).Batch(3, 1));
}

TEST(BalancedSamplerTest, RanksTakeDisjointSharesOfOneGlobalDraw) {
  const std::vector<int64_t> labels = UnevenLabels();
  std::set<int64_t> seen;
  std::vector<int64_t> joined;
  for (int64_t rank = 0; rank < 3; ++rank) {
    const data::BalancedSampler sampler(labels, Options(4, 2, 3, rank));
    EXPECT_EQ(sampler.BatchesPerEpoch(), static_cast<int64_t>(labels.size()) / 12);
    for (int64_t item : sampler.Batch(5, 2)) {
      joined.push_back(item);
      if (joined.size() % 2 == 1) {
        EXPECT_TRUE(seen.insert(labels[item]).second) << "a class on two ranks";
      }
    }
  }
  // The three shares together are the single-process batch of the same global size.
  const data::BalancedSampler single(labels, Options(12, 2, 1, 0));
  EXPECT_EQ(joined, single.Batch(5, 2));
}

TEST(BalancedSamplerTest, DrawsClassesWithReplacementWhenTooFew) {
  const std::vector<int64_t> labels = {0, 0, 1, 1, 1};
  const data::BalancedSampler sampler(labels, Options(8, 2));
  const std::vector<int64_t> batch = sampler.Batch(0, 0);
  ASSERT_EQ(batch.size(), 8u);
  for (size_t start = 0; start < batch.size(); start += 2) {
    EXPECT_EQ(labels[batch[start]], labels[batch[start + 1]]);
  }
}

TEST(BalancedSamplerTest, BadOptionsNameTheProblem) {
  const std::vector<int64_t> labels = UnevenLabels();
  auto message = [](const data::BalancedSamplerOptions& o, const std::vector<int64_t>& l) {
    return ErrorMessage([&] { data::BalancedSampler sampler(l, o); });
  };
  EXPECT_NE(message(Options(9, 2), labels).find("batch_size (9) must be a positive multiple"),
            std::string::npos);
  EXPECT_NE(message(Options(8, 2, 2, 2), labels).find("rank must be in [0, 2), got 2"),
            std::string::npos);
  EXPECT_NE(message(Options(8, 0), labels).find("images_per_class must be >= 1"),
            std::string::npos);
  EXPECT_NE(message(Options(8, 2), {}).find("the dataset is empty"), std::string::npos);
  EXPECT_NE(message(Options(8, 2), {0, -1}).find("labels must be >= 0, got -1 at item 1"),
            std::string::npos);
}

}  // namespace
}  // namespace hier::testing
