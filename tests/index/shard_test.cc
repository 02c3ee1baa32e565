// The shard function and the --shard syntax: the function is pinned (replicas, routers and an
// offline re-shard of any version must agree), spreads ids evenly, and bad specs name the flag.
#include "index/shard.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <vector>

namespace hier::index {
namespace {

using ::testing::HasSubstr;

TEST(ShardTest, MixIdIsSplitMix64sOutputFunction) {
  // SplitMix64 seeded with 0 first returns 0xE220A8397B1DCDAF (the published reference value):
  // MixId(0) is that step on state 0.
  EXPECT_EQ(MixId(0), 0xE220A8397B1DCDAFULL);
}

TEST(ShardTest, AssignmentsArePinned) {
  // Values of today's function: a change would move items between shards of running clusters.
  EXPECT_EQ(ShardOf(0, 2), 1);
  EXPECT_EQ(ShardOf(2, 2), 0);
  EXPECT_EQ(ShardOf(1, 3), 2);
  EXPECT_EQ(ShardOf(41, 16), 9);
  EXPECT_EQ(ShardOf(1000000, 16), 7);
  EXPECT_EQ(ShardOf(-5, 3), 1);
  for (int64_t id = -100; id < 100; ++id) EXPECT_EQ(ShardOf(id, 1), 0);
}

TEST(ShardTest, SequentialAndStridedIdsSpreadEvenly) {
  for (const int64_t stride : {1, 2, 1024}) {
    for (const int count : {2, 3, 7, 16}) {
      constexpr int kIds = 160000;
      std::vector<int> held(count, 0);
      for (int64_t i = 0; i < kIds; ++i) ++held[ShardOf(i * stride, count)];
      for (int shard = 0; shard < count; ++shard) {
        // Binomial: within 5 standard deviations of kIds / count.
        const double expected = static_cast<double>(kIds) / count;
        EXPECT_NEAR(held[shard], expected, 5 * std::sqrt(expected))
            << "stride " << stride << ", shard " << shard << " of " << count;
      }
    }
  }
}

TEST(ShardTest, SpecHoldsItsShardsIds) {
  const ShardSpec whole;
  EXPECT_TRUE(whole.whole());
  EXPECT_EQ(whole.ToString(), "0/1");
  const ShardSpec second{1, 3};
  for (int64_t id = 0; id < 1000; ++id) EXPECT_EQ(second.Holds(id), ShardOf(id, 3) == 1);
  EXPECT_TRUE(whole.Holds(12345));
}

TEST(ShardTest, ParsesIOverN) {
  absl::StatusOr<ShardSpec> parsed = ParseShard("2/5", "--shard");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->index, 2);
  EXPECT_EQ(parsed->count, 5);
  EXPECT_EQ(parsed->ToString(), "2/5");
  EXPECT_TRUE(ParseShard("0/1", "--shard").ok());
  EXPECT_TRUE(ParseShard("1023/1024", "--shard").ok());
}

TEST(ShardTest, RefusesWhatIsNotAShardNamingTheFlag) {
  for (const char* bad : {"", "1", "2/2", "-1/2", "0/0", "0/1025", "a/b", "1/2/3"}) {
    absl::StatusOr<ShardSpec> parsed = ParseShard(bad, "--shard");
    ASSERT_FALSE(parsed.ok()) << bad;
    EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_THAT(parsed.status().message(), HasSubstr("--shard")) << bad;
  }
}

}  // namespace
}  // namespace hier::index
