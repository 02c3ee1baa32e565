#include "index/recall_tuning.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>

namespace hier::testing {
namespace {

using index::EffortMeasurement;
using index::SearchEffort;

// A made-up index whose recall rises with both knobs and whose time grows with both.
EffortMeasurement Modelled(const SearchEffort& effort) {
  const double recall = (1 - std::exp(-effort.nprobe / 8.0)) *
                        (1 - std::exp(-static_cast<double>(effort.overfetch) / 10.0));
  return {recall, 0.0, 1e-3 * (effort.nprobe + 0.5 * effort.overfetch)};
}

index::RecallTarget Target(double recall) {
  index::RecallTarget target;
  target.recall = recall;
  target.k = 10;
  return target;
}

TEST(ChooseEffortTest, AMeasurementIsTheMeanRecallAndItsStandardError) {
  const EffortMeasurement measured = index::MeasurementOf({1.0, 0.9, 0.8, 1.0}, 2.5);
  EXPECT_DOUBLE_EQ(measured.recall, 0.925);
  // Sample variance (0.075^2 + 0.025^2 + 0.125^2 + 0.075^2) / 3 = 0.009167, over 4 queries.
  EXPECT_NEAR(measured.recall_error, std::sqrt(0.0275 / 3 / 4), 1e-12);
  EXPECT_EQ(measured.seconds, 2.5);
  EXPECT_EQ(index::MeasurementOf({0.7}, 1.0).recall_error, 0.0);
}

TEST(ChooseEffortTest, ASettingReachesTheTargetByTwoStandardErrors) {
  EXPECT_TRUE(index::Reaches({0.99, 0.0, 1.0}, 0.99));
  EXPECT_TRUE(index::Reaches({0.995, 0.002, 1.0}, 0.99));
  EXPECT_FALSE(index::Reaches({0.995, 0.004, 1.0}, 0.99));
  EXPECT_FALSE(index::Reaches({0.989, 0.0, 1.0}, 0.99));
}

TEST(ChooseEffortTest, PicksNearlyTheFastestSettingThatReachesTheTarget) {
  const SearchEffort most{256, 0, 0};
  int64_t measured = 0;
  const index::RecallTuning tuning = index::ChooseEffort(
      Target(0.9), most, SearchEffort{64, 256, 100},
      [&](const SearchEffort& effort) {
        ++measured;
        return Modelled(effort);
      },
      {});
  ASSERT_TRUE(tuning.reached);
  EXPECT_EQ(tuning.settings_tried, measured);
  EXPECT_GE(tuning.measured.recall, 0.9);
  EXPECT_EQ(tuning.effort.ef_search, 256);  // not a knob of this stage: left as it was
  // The best the same ladder of overfetch allows, by trying every nprobe.
  double best = std::numeric_limits<double>::infinity();
  for (int64_t overfetch = 10; overfetch <= 1280; overfetch *= 2) {
    for (int64_t nprobe = 1; nprobe <= most.nprobe; ++nprobe) {
      const EffortMeasurement m = Modelled({nprobe, 0, overfetch});
      if (m.recall >= 0.9) best = std::min(best, m.seconds);
    }
  }
  // Within the bisection's resolution (an eighth of the last doubling step).
  EXPECT_LE(tuning.measured.seconds, 1.15 * best);
  EXPECT_LT(measured, 60);  // far fewer than the 2,048 settings of the full grid
}

TEST(ChooseEffortTest, WhenNothingReachesTheTargetKeepsTheMostRecall) {
  const index::RecallTuning tuning = index::ChooseEffort(
      Target(0.999999), SearchEffort{4, 0, 0}, SearchEffort{64, 256, 100}, Modelled, {});
  EXPECT_FALSE(tuning.reached);
  EXPECT_EQ(tuning.effort.nprobe, 4);
  EXPECT_GE(tuning.effort.overfetch, 640);  // 640 and 1280 give the same recall in double
  EXPECT_DOUBLE_EQ(tuning.measured.recall, Modelled({4, 0, 1280}).recall);
}

TEST(ChooseEffortTest, WithoutKnobsTakesTheLeastOverfetchThatReaches) {
  const auto exact_scan = [](const SearchEffort& effort) {
    return EffortMeasurement{effort.overfetch >= 40 ? 1.0 : 0.5, 0.0, 1e-6 * effort.overfetch};
  };
  const index::RecallTuning tuning = index::ChooseEffort(
      Target(0.99), SearchEffort{0, 0, 0}, SearchEffort{64, 256, 100}, exact_scan, {});
  EXPECT_TRUE(tuning.reached);
  EXPECT_EQ(tuning.effort.overfetch, 40);
  EXPECT_EQ(tuning.settings_tried, 4);  // the start (100), then 10, 20, 40
}

TEST(ChooseEffortTest, HnswSearchesNoShorterListThanItsCandidates) {
  const index::RecallTuning tuning = index::ChooseEffort(
      Target(0.9), SearchEffort{0, 4096, 0}, SearchEffort{64, 256, 100},
      [](const SearchEffort& effort) {
        EXPECT_GE(effort.ef_search, effort.overfetch);
        return Modelled({effort.ef_search / 4, 0, effort.overfetch});
      },
      {});
  EXPECT_TRUE(tuning.reached);
  EXPECT_EQ(tuning.effort.nprobe, 64);  // not a knob of HNSW: left as it was
}

TEST(ChooseEffortTest, StoppingEndsTheSearchWithWhatItHas) {
  int64_t measured = 0;
  const index::RecallTuning tuning = index::ChooseEffort(
      Target(0.9), SearchEffort{256, 0, 0}, SearchEffort{64, 256, 100},
      [&](const SearchEffort& effort) {
        ++measured;
        return Modelled(effort);
      },
      [&] { return measured >= 2; });
  EXPECT_EQ(measured, 2);  // the start and one more
  EXPECT_EQ(tuning.settings_tried, 2);
}

}  // namespace
}  // namespace hier::testing
