#include "index/exact_index.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>
#include <thread>
#include <vector>

#include "index/ball_geometry.h"

namespace hier::testing {
namespace {

using ::testing::HasSubstr;

constexpr double kC = 0.1;
constexpr int64_t kDim = 16;

std::vector<float> RandomPoints(int64_t count, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 0.6f);
  std::vector<float> points(count * kDim);
  for (int64_t i = 0; i < count; ++i) {
    double norm = 0;
    for (int64_t j = 0; j < kDim; ++j) {
      points[i * kDim + j] = normal(rng);
      norm += points[i * kDim + j] * points[i * kDim + j];
    }
    // Keep every point inside the ball (radius 1/sqrt(c) ~ 3.16), some near its edge.
    const double limit = 0.98 / std::sqrt(kC);
    if (std::sqrt(norm) > limit) {
      for (int64_t j = 0; j < kDim; ++j) points[i * kDim + j] *= limit / std::sqrt(norm);
    }
  }
  return points;
}

// Brute force: the k nearest ids among `ids` (rows of `points`) by Poincaré distance.
std::vector<int64_t> BruteForce(const std::vector<float>& points, const std::vector<int64_t>& ids,
                                const float* query, int64_t k) {
  std::vector<std::pair<double, int64_t>> all;
  for (size_t i = 0; i < ids.size(); ++i) {
    all.emplace_back(index::PoincareDistance(query, &points[i * kDim], kDim, kC), ids[i]);
  }
  std::sort(all.begin(), all.end());
  std::vector<int64_t> out;
  for (int64_t i = 0; i < k; ++i) out.push_back(all[i].second);
  return out;
}

std::vector<int64_t> Ids(const std::vector<index::Neighbour>& neighbours) {
  std::vector<int64_t> ids;
  for (const auto& n : neighbours) ids.push_back(n.id);
  return ids;
}

std::unique_ptr<index::ExactIndex> MakeIndex() {
  index::ExactIndexOptions options;
  options.dim = kDim;
  options.c = kC;
  options.max_k = 50;
  return std::move(index::ExactIndex::Create(options)).value();
}

TEST(ExactIndexTest, SearchEqualsBruteForceAndSortsByDistance) {
  auto index = MakeIndex();
  const std::vector<float> points = RandomPoints(1000, 1);
  std::vector<int64_t> ids(1000);
  std::iota(ids.begin(), ids.end(), 5000);
  ASSERT_TRUE(index->Upsert(ids, points).ok());
  EXPECT_EQ(index->size(), 1000);
  const std::vector<float> queries = RandomPoints(30, 2);
  for (int64_t q = 0; q < 30; ++q) {
    const absl::Span<const float> query(&queries[q * kDim], kDim);
    const auto found = index->Search(query, 10);
    ASSERT_TRUE(found.ok()) << found.status();
    EXPECT_EQ(Ids(*found), BruteForce(points, ids, query.data(), 10));
    for (size_t i = 1; i < found->size(); ++i) {
      EXPECT_LE((*found)[i - 1].distance, (*found)[i].distance);
    }
    // The reported distance is the exact one.
    EXPECT_DOUBLE_EQ(
        (*found)[0].distance,
        index::PoincareDistance(query.data(), &points[((*found)[0].id - 5000) * kDim], kDim, kC));
  }
}

TEST(ExactIndexTest, UpsertsAndDeletesAreVisibleToTheNextSearch) {
  auto index = MakeIndex();
  const std::vector<float> points = RandomPoints(200, 3);
  std::vector<int64_t> ids(200);
  std::iota(ids.begin(), ids.end(), 0);
  ASSERT_TRUE(index->Upsert(ids, points).ok());
  const std::vector<float> query = RandomPoints(1, 4);
  const int64_t nearest = (*index->Search(query, 1))[0].id;

  ASSERT_TRUE(index->Delete({nearest}).ok());
  EXPECT_EQ(index->size(), 199);
  EXPECT_NE((*index->Search(query, 1))[0].id, nearest);

  // Re-inserting item 7 at the query itself makes it the nearest, at distance 0.
  ASSERT_TRUE(index->Upsert({7}, query).ok());
  EXPECT_EQ(index->size(), 199);  // replaced, not added
  const auto found = index->Search(query, 3);
  EXPECT_EQ((*found)[0].id, 7);
  EXPECT_EQ((*found)[0].distance, 0.0);
  const std::vector<int64_t> found_ids = Ids(*found);
  EXPECT_EQ(std::count(found_ids.begin(), found_ids.end(), 7), 1);
}

TEST(ExactIndexTest, BadInputNamesTheProblemAndChangesNothing) {
  auto index = MakeIndex();
  const std::vector<float> query = RandomPoints(1, 5);
  EXPECT_EQ(index->Search(query, 1).status().code(), absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(index->Upsert({1, 2}, RandomPoints(2, 6)).ok());

  std::vector<float> outside = RandomPoints(2, 7);
  outside[kDim] = 10.0f;  // row 1 leaves the ball
  const absl::Status rejected = index->Upsert({3, 4}, outside);
  EXPECT_EQ(rejected.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(rejected.message()), HasSubstr("row 1: vectors: the point lies"));
  EXPECT_EQ(index->size(), 2);  // row 0 was not added either

  std::vector<float> nan_query = query;
  nan_query[3] = std::numeric_limits<float>::quiet_NaN();
  struct Case {
    absl::StatusCode code;
    std::string message;
    absl::Status status;
  };
  const std::vector<Case> cases = {
      {absl::StatusCode::kInvalidArgument, "expected 1 x 16 = 16 floats, got 15",
       index->Search(absl::MakeConstSpan(query).subspan(0, 15), 1).status()},
      {absl::StatusCode::kInvalidArgument, "coordinate 3 is nan",
       index->Search(nan_query, 1).status()},
      {absl::StatusCode::kInvalidArgument, "k: must be in [1, 50], got 0",
       index->Search(query, 0).status()},
      {absl::StatusCode::kInvalidArgument, "got 51", index->Search(query, 51).status()},
      {absl::StatusCode::kInvalidArgument, "overfetch: must be >= 0",
       index->Search(query, 1, -1).status()},
      {absl::StatusCode::kInvalidArgument, "expected 2 x 16 = 32 floats, got 16",
       index->Upsert({8, 9}, query)},
      {absl::StatusCode::kNotFound, "no item has id 99", index->Delete({1, 99})},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(c.status.code(), c.code) << c.message;
    EXPECT_THAT(std::string(c.status.message()), HasSubstr(c.message));
  }
  EXPECT_EQ(index->size(), 2);  // the failed delete removed nothing
  // k above the item count returns every item.
  EXPECT_EQ(index->Search(query, 5)->size(), 2u);

  index::ExactIndexOptions bad;
  bad.dim = 0;
  EXPECT_THAT(std::string(index::ExactIndex::Create(bad).status().message()), HasSubstr("dim"));
  bad.dim = 4;
  bad.c = -1;
  EXPECT_THAT(std::string(index::ExactIndex::Create(bad).status().message()), HasSubstr("c: must"));
}

TEST(ExactIndexTest, SearchesRunWhileItemsAreAddedAndDeleted) {
  auto index = MakeIndex();
  const std::vector<float> base = RandomPoints(500, 8);
  std::vector<int64_t> ids(500);
  std::iota(ids.begin(), ids.end(), 0);
  ASSERT_TRUE(index->Upsert(ids, base).ok());
  const std::vector<float> extra = RandomPoints(200, 9);
  std::atomic<bool> writing{true};
  std::atomic<int64_t> failures{0}, searches{0};
  std::vector<std::thread> readers;
  for (int t = 0; t < 3; ++t) {
    readers.emplace_back([&, t] {
      const std::vector<float> query = RandomPoints(1, 100 + t);
      while (writing.load()) {
        const auto found = index->Search(query, 5);
        if (!found.ok() || found->size() != 5) ++failures;
        ++searches;
      }
    });
  }
  for (int64_t i = 0; i < 200; ++i) {
    ASSERT_TRUE(index->Upsert({1000 + i}, absl::MakeConstSpan(&extra[i * kDim], kDim)).ok());
    if (i % 2 == 0) {
      ASSERT_TRUE(index->Delete({1000 + i}).ok());
    }
  }
  writing.store(false);
  for (std::thread& t : readers) t.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_GT(searches.load(), 0);
  EXPECT_EQ(index->size(), 600);
}

}  // namespace
}  // namespace hier::testing
