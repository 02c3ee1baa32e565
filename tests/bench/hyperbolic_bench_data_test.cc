#include "tests/bench/hyperbolic_bench_data.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <numeric>
#include <string>
#include <utility>
#include <vector>

#include "index/ball_geometry.h"
#include "tests/trainer/temp_dir_test.h"

namespace hier::testing {
namespace {

namespace fs = std::filesystem;
using bench::BenchData;
using bench::BenchDataOptions;
using ::testing::HasSubstr;

BenchDataOptions SmallOptions() {
  BenchDataOptions options;
  options.items = 2000;
  options.queries = 50;
  return options;
}

BenchData Make(const BenchDataOptions& options) {
  absl::StatusOr<BenchData> data = bench::MakeBenchData(options);
  EXPECT_TRUE(data.ok()) << data.status();
  return data.ok() ? *std::move(data) : BenchData{};
}

void ExpectSameData(const BenchData& a, const BenchData& b) {
  EXPECT_EQ(a.options.items, b.options.items);
  EXPECT_EQ(a.options.seed, b.options.seed);
  EXPECT_TRUE(a.items == b.items);
  EXPECT_TRUE(a.queries == b.queries);
  EXPECT_TRUE(a.truth == b.truth);
}

// Tangent (logmap0) norms of the rows of `points`.
std::vector<double> TangentNorms(const std::vector<float>& points,
                                 const BenchDataOptions& options) {
  std::vector<double> norms;
  std::vector<float> tangent(options.dim);
  for (size_t row = 0; row < points.size(); row += options.dim) {
    index::LogMap0(&points[row], options.dim, options.c, tangent.data());
    double squared = 0;
    for (float x : tangent) squared += static_cast<double>(x) * x;
    norms.push_back(std::sqrt(squared));
  }
  return norms;
}

TEST(HyperbolicBenchDataTest, EveryPointIsInsideTheBall) {
  const BenchData data = Make(SmallOptions());
  const int64_t dim = data.options.dim;
  ASSERT_EQ(data.items.size(), 2000u * dim);
  ASSERT_EQ(data.queries.size(), 50u * dim);
  for (const std::vector<float>* points : {&data.items, &data.queries}) {
    for (size_t row = 0; row < points->size(); row += dim) {
      ASSERT_TRUE(index::ValidateBallPoint(&(*points)[row], dim, data.options.c, "point").ok())
          << "row " << row / dim;
    }
  }
}

TEST(HyperbolicBenchDataTest, NormsSpreadFromTheOriginToTheClipSphere) {
  const BenchData data = Make(SmallOptions());
  const double clip_r = data.options.clip_r;
  const std::vector<double> norms = TangentNorms(data.items, data.options);
  const auto share = [&](const std::function<bool(double)>& predicate) {
    return static_cast<double>(std::count_if(norms.begin(), norms.end(), predicate)) / norms.size();
  };
  EXPECT_GT(share([&](double r) { return r < 0.1 * clip_r; }), 0.03);
  EXPECT_GT(share([&](double r) { return r > 0.4 * clip_r && r < 0.6 * clip_r; }), 0.1);
  EXPECT_GT(share([&](double r) { return std::abs(r - clip_r) < 1e-5; }), 0.1);
  EXPECT_LT(*std::max_element(norms.begin(), norms.end()), clip_r + 1e-5);
}

TEST(HyperbolicBenchDataTest, TheSameSeedGivesTheSameDataAndAnotherSeedOtherData) {
  BenchDataOptions options = SmallOptions();
  const BenchData first = Make(options);
  ExpectSameData(first, Make(options));
  options.seed = 2;
  const BenchData other = Make(options);
  EXPECT_FALSE(other.items == first.items);
  EXPECT_FALSE(other.queries == first.queries);
}

TEST(HyperbolicBenchDataTest, QueriesAreFreshDrawsThatDoNotDependOnTheItemCount) {
  BenchDataOptions options = SmallOptions();
  const BenchData data = Make(options);
  const int64_t dim = options.dim;
  for (int64_t q = 0; q < options.queries; ++q) {
    const auto query = data.queries.begin() + q * dim;
    for (int64_t i = 0; i < options.items; ++i) {
      ASSERT_FALSE(std::equal(query, query + dim, data.items.begin() + i * dim))
          << "query " << q << " copies item " << i;
    }
  }
  options.items = 500;
  EXPECT_TRUE(Make(options).queries == data.queries);
}

TEST(HyperbolicBenchDataTest, TruthEqualsANaiveBruteForce) {
  const BenchData data = Make(SmallOptions());
  const BenchDataOptions& options = data.options;
  ASSERT_EQ(data.truth.size(), static_cast<size_t>(options.queries * options.truth_k));
  for (int64_t q = 0; q < options.queries; ++q) {
    std::vector<std::pair<double, int64_t>> all;
    for (int64_t i = 0; i < options.items; ++i) {
      all.emplace_back(
          index::PoincareDistance(&data.queries[q * options.dim], &data.items[i * options.dim],
                                  options.dim, options.c),
          i);
    }
    std::sort(all.begin(), all.end());
    for (int64_t r = 0; r < options.truth_k; ++r) {
      ASSERT_EQ(data.truth[q * options.truth_k + r], all[r].second)
          << "query " << q << " rank " << r;
    }
  }
}

TEST(HyperbolicBenchDataTest, RejectsOptionsOutOfRange) {
  const std::vector<std::pair<std::function<void(BenchDataOptions&)>, std::string>> cases = {
      {[](BenchDataOptions& o) { o.items = 0; }, "items"},
      {[](BenchDataOptions& o) { o.queries = 0; }, "queries"},
      {[](BenchDataOptions& o) { o.dim = 0; }, "dim"},
      {[](BenchDataOptions& o) { o.c = 0; }, "c must"},
      {[](BenchDataOptions& o) { o.c = NAN; }, "c must"},
      {[](BenchDataOptions& o) { o.clip_r = -1; }, "clip_r"},
      {[](BenchDataOptions& o) { o.clip_r = 20; }, "clip_r"},
      {[](BenchDataOptions& o) { o.truth_k = 0; }, "truth_k"},
      {[](BenchDataOptions& o) { o.truth_k = 2001; }, "truth_k"},
  };
  for (const auto& [change, name] : cases) {
    BenchDataOptions options = SmallOptions();
    change(options);
    const absl::StatusOr<BenchData> data = bench::MakeBenchData(options);
    EXPECT_EQ(data.status().code(), absl::StatusCode::kInvalidArgument) << name;
    EXPECT_THAT(data.status().message(), HasSubstr(name));
  }
}

TEST(HyperbolicBenchDataTest, RecallAtKCountsTheTrueNeighboursFound) {
  const BenchData data = Make(SmallOptions());
  const BenchDataOptions& options = data.options;
  // Per query, the ids at `ranks` of its truth; a negative rank stands for an id no item has.
  const auto answers = [&](const std::vector<int64_t>& ranks) {
    std::vector<std::vector<int64_t>> found(options.queries);
    for (int64_t q = 0; q < options.queries; ++q) {
      for (int64_t rank : ranks) {
        found[q].push_back(rank < 0 ? -1 : data.truth[q * options.truth_k + rank]);
      }
    }
    return found;
  };
  const auto range = [](int64_t first, int64_t last) {
    std::vector<int64_t> ranks(last - first);
    std::iota(ranks.begin(), ranks.end(), first);
    return ranks;
  };
  struct Case {
    std::vector<int64_t> ranks;
    int64_t k;
    double recall;
  };
  const std::vector<Case> cases = {
      {range(0, 100), 1, 1.0},
      {range(0, 100), 10, 1.0},
      {range(0, 100), 100, 1.0},
      {{9, 8, 7, 6, 5, 4, 3, 2, 1, 0}, 10, 1.0},  // order does not matter
      {range(5, 15), 10, 0.5},                    // half of the true top 10
      {{0, 1, 2, -1, -1, -1}, 6, 0.5},
      {range(0, 4), 10, 0.4},    // fewer than k
      {{0, 0, 0, 1}, 4, 0.5},    // a repeated id counts once
      {{-1, -1, 0, 1}, 2, 0.0},  // only the first k count
      {range(10, 20), 10, 0.0},
  };
  for (const Case& c : cases) {
    const absl::StatusOr<double> recall = bench::RecallAtK(answers(c.ranks), data, c.k);
    ASSERT_TRUE(recall.ok()) << recall.status();
    EXPECT_NEAR(*recall, c.recall, 1e-12) << "k " << c.k << ", " << c.ranks.size() << " ids";
  }
}

TEST(HyperbolicBenchDataTest, RecallAtKRejectsBadArguments) {
  const BenchData data = Make(SmallOptions());
  const std::vector<std::vector<int64_t>> found(data.options.queries);
  EXPECT_EQ(bench::RecallAtK(found, data, 0).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(bench::RecallAtK(found, data, 101).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(bench::RecallAtK({{1}}, data, 1).status().code(), absl::StatusCode::kInvalidArgument);
}

class HyperbolicBenchCacheTest : public TempDirTest {
 protected:
  BenchData Load(const BenchDataOptions& options) {
    absl::StatusOr<BenchData> data = bench::LoadOrMakeBenchData(options, Path("cache"));
    EXPECT_TRUE(data.ok()) << data.status();
    return data.ok() ? *std::move(data) : BenchData{};
  }

  std::string CachePath(const BenchDataOptions& options) const {
    return bench::BenchDataCachePath(options, Path("cache"));
  }

  // Dates the file back an hour, so a rewrite shows in its modification time.
  void Backdate(const std::string& path) const {
    fs::last_write_time(path, fs::last_write_time(path) - std::chrono::hours(1));
  }

  bool Rewritten(const std::string& path, fs::file_time_type before) const {
    return fs::last_write_time(path) != before;
  }

  std::vector<std::string> Entries() const {
    std::vector<std::string> names;
    for (const fs::directory_entry& entry : fs::directory_iterator(Path("cache"))) {
      names.push_back(entry.path().filename().string());
    }
    return names;
  }
};

TEST_F(HyperbolicBenchCacheTest, TheSecondCallReadsTheFile) {
  const BenchDataOptions options = SmallOptions();
  const BenchData made = Load(options);
  ExpectSameData(made, Make(options));
  const std::string path = CachePath(options);
  ASSERT_TRUE(fs::exists(path));
  EXPECT_THAT(Entries(), ::testing::ElementsAre(fs::path(path).filename().string()));
  Backdate(path);
  const fs::file_time_type before = fs::last_write_time(path);
  ExpectSameData(Load(options), made);
  EXPECT_FALSE(Rewritten(path, before));
}

TEST_F(HyperbolicBenchCacheTest, ADamagedFileIsReplaced) {
  const BenchDataOptions options = SmallOptions();
  const BenchData made = Load(options);
  const std::string path = CachePath(options);
  const uintmax_t size = fs::file_size(path);
  const auto flip_byte_at = [&](uintmax_t offset) {
    return [&path, offset] {
      std::fstream file(path, std::ios::in | std::ios::out | std::ios::binary);
      file.seekg(offset);
      const char byte = static_cast<char>(file.get() ^ 0x10);
      file.seekp(offset);
      file.put(byte);
    };
  };
  const std::vector<std::pair<std::string, std::function<void()>>> damages = {
      {"payload byte flipped", flip_byte_at(size / 2)},
      {"last byte flipped", flip_byte_at(size - 1)},
      {"magic byte flipped", flip_byte_at(0)},
      {"options byte flipped", flip_byte_at(20)},
      {"checksum byte flipped", flip_byte_at(76)},
      {"truncated", [&] { fs::resize_file(path, size - 8); }},
      {"truncated to a part of the header", [&] { fs::resize_file(path, 30); }},
      {"bytes appended", [&] { std::ofstream(path, std::ios::app | std::ios::binary) << "xy"; }},
  };
  for (const auto& [name, damage] : damages) {
    damage();
    Backdate(path);
    fs::file_time_type before = fs::last_write_time(path);
    ExpectSameData(Load(options), made);
    EXPECT_TRUE(Rewritten(path, before)) << name;
    EXPECT_EQ(fs::file_size(path), size) << name;
    Backdate(path);
    before = fs::last_write_time(path);
    Load(options);
    EXPECT_FALSE(Rewritten(path, before)) << name << ": the replacement is read back";
  }
}

TEST_F(HyperbolicBenchCacheTest, AFileMadeWithOtherOptionsIsReplaced) {
  const BenchDataOptions options = SmallOptions();
  BenchDataOptions other = options;
  other.seed = 7;
  Load(other);
  fs::copy_file(CachePath(other), CachePath(options));
  ExpectSameData(Load(options), Make(options));
}

TEST_F(HyperbolicBenchCacheTest, AnUnwritableDirectoryIsAnErrorNamingIt) {
  std::ofstream(Path("file")) << "not a directory";
  const std::string cache_dir = Path("file") + "/cache";
  const absl::StatusOr<BenchData> data = bench::LoadOrMakeBenchData(SmallOptions(), cache_dir);
  EXPECT_FALSE(data.ok());
  EXPECT_THAT(data.status().message(), HasSubstr(cache_dir));
}

TEST_F(HyperbolicBenchCacheTest, ADirectoryThatExistsButTakesNoFilesFailsBeforeTheDataIsMade) {
  // Linux's /proc exists, and no file can be created in it, even by root.
  if (!fs::is_directory("/proc/self")) GTEST_SKIP() << "no /proc";
  BenchDataOptions options;
  options.items = 1000000;  // minutes to make
  const auto start = std::chrono::steady_clock::now();
  const absl::StatusOr<BenchData> data = bench::LoadOrMakeBenchData(options, "/proc");
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10));
  EXPECT_FALSE(data.ok());
  EXPECT_THAT(data.status().message(), HasSubstr(bench::BenchDataCachePath(options, "/proc")));
}

TEST_F(HyperbolicBenchCacheTest, AFailedPublicationNamesThePathAndLeavesNoTempFile) {
  const BenchDataOptions options = SmallOptions();
  fs::create_directories(CachePath(options));  // a directory the file cannot be renamed over
  const absl::StatusOr<BenchData> data = bench::LoadOrMakeBenchData(options, Path("cache"));
  EXPECT_FALSE(data.ok());
  EXPECT_THAT(data.status().message(), HasSubstr(CachePath(options)));
  EXPECT_THAT(Entries(), ::testing::ElementsAre(fs::path(CachePath(options)).filename().string()));
}

}  // namespace
}  // namespace hier::testing
