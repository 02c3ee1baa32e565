#include "index/hyperbolic_index.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cmath>
#include <fstream>
#include <functional>
#include <iterator>
#include <limits>
#include <map>
#include <numeric>
#include <random>
#include <thread>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
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

// Points the way embeddings come: around 100 class centres, tangent vectors clipped to norm 2.3
// (the trainer's clip_r) and mapped into the ball by expmap0, from near the origin to the clip
// sphere. The centres are the same for every seed, so queries and items share classes.
std::vector<float> EmbeddingLikePoints(int64_t count, uint32_t seed) {
  constexpr int kClasses = 100;
  std::normal_distribution<double> normal(0.0, 1.0);
  std::mt19937 centre_rng(77);
  std::vector<double> centres(kClasses * kDim);
  for (double& value : centres) value = 0.45 * normal(centre_rng);
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> which(0, kClasses - 1);
  const double sqrt_c = std::sqrt(kC);
  std::vector<float> points(count * kDim);
  std::vector<double> tangent(kDim);
  for (int64_t i = 0; i < count; ++i) {
    const int centre = which(rng);
    double norm = 0;
    for (int64_t j = 0; j < kDim; ++j) {
      tangent[j] = centres[centre * kDim + j] + 0.25 * normal(rng);
      norm += tangent[j] * tangent[j];
    }
    norm = std::sqrt(norm);
    const double length = std::min(norm, 2.3);
    const double scale = std::tanh(sqrt_c * length) / (sqrt_c * norm);
    for (int64_t j = 0; j < kDim; ++j)
      points[i * kDim + j] = static_cast<float>(tangent[j] * scale);
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

index::IndexOptions Options(const std::string& kind) {
  index::IndexOptions options;
  options.dim = kDim;
  options.c = kC;
  options.max_k = 50;
  options.threads = 2;
  options.candidates.kind = kind;
  options.candidates.min_train_items = 1000;
  return options;
}

std::unique_ptr<index::HyperbolicIndex> MakeIndex(const std::string& kind = "exact") {
  return std::move(index::HyperbolicIndex::Create(Options(kind))).value();
}

index::SearchOptions Top(int64_t k, std::string label = "") {
  index::SearchOptions options;
  options.k = k;
  options.label = std::move(label);
  return options;
}

std::vector<int64_t> Sequence(int64_t count, int64_t first) {
  std::vector<int64_t> ids(count);
  std::iota(ids.begin(), ids.end(), first);
  return ids;
}

// Every kind of candidate stage, by name; approximate kinds must reach recall@10 >= 0.99 at
// their defaults.
class CandidateKindTest : public ::testing::TestWithParam<std::string> {};

TEST_P(CandidateKindTest, RerankedTopTenMatchesBruteForce) {
  auto index = MakeIndex(GetParam());
  constexpr int64_t kItems = 20000, kQueries = 100;
  const std::vector<float> points = EmbeddingLikePoints(kItems, 1);
  const std::vector<int64_t> ids = Sequence(kItems, 5000);
  ASSERT_TRUE(index->Upsert(ids, points).ok());
  EXPECT_EQ(index->size(), kItems);
  const std::vector<float> queries = EmbeddingLikePoints(kQueries, 2);
  const auto batch = index->SearchBatch(queries, Top(10));
  ASSERT_TRUE(batch.ok()) << batch.status();
  int64_t hits = 0;
  for (int64_t q = 0; q < kQueries; ++q) {
    const absl::Span<const float> query(&queries[q * kDim], kDim);
    const auto found = index->Search(query, Top(10));
    ASSERT_TRUE(found.ok()) << found.status();
    EXPECT_EQ(Ids(*found), Ids((*batch)[q]));
    const std::vector<int64_t> truth = BruteForce(points, ids, query.data(), 10);
    for (int64_t id : Ids(*found)) hits += std::count(truth.begin(), truth.end(), id);
    for (size_t i = 1; i < found->size(); ++i) {
      EXPECT_LE((*found)[i - 1].distance, (*found)[i].distance);
    }
    // The reported distance is the exact one.
    EXPECT_DOUBLE_EQ(
        (*found)[0].distance,
        index::PoincareDistance(query.data(), &points[((*found)[0].id - 5000) * kDim], kDim, kC));
  }
  const double recall = static_cast<double>(hits) / (10 * kQueries);
  if (GetParam() == "exact") {
    EXPECT_EQ(recall, 1.0);
  } else {
    EXPECT_GE(recall, 0.99) << index->Describe();
  }
}

TEST_P(CandidateKindTest, UpsertsAndDeletesAreVisibleToTheNextSearch) {
  auto index = MakeIndex(GetParam());
  const std::vector<float> points = RandomPoints(3000, 3);
  ASSERT_TRUE(index->Upsert(Sequence(3000, 0), points).ok());
  const std::vector<float> query = RandomPoints(1, 4);
  const int64_t nearest = (*index->Search(query, Top(1)))[0].id;

  ASSERT_TRUE(index->Delete({nearest}).ok());
  EXPECT_EQ(index->size(), 2999);
  EXPECT_NE((*index->Search(query, Top(1)))[0].id, nearest);

  // Re-inserting item 7 at the query itself makes it the nearest, at distance 0.
  ASSERT_TRUE(index->Upsert({7}, query).ok());
  EXPECT_EQ(index->size(), 2999);  // replaced, not added
  const auto found = index->Search(query, Top(3));
  EXPECT_EQ((*found)[0].id, 7);
  EXPECT_EQ((*found)[0].distance, 0.0);
  const std::vector<int64_t> found_ids = Ids(*found);
  EXPECT_EQ(std::count(found_ids.begin(), found_ids.end(), 7), 1);

  // Deleting most items leaves the survivors findable (stages that mark deletions rebuild).
  std::vector<int64_t> doomed = Sequence(2500, 100);
  doomed.erase(std::remove(doomed.begin(), doomed.end(), nearest), doomed.end());
  ASSERT_TRUE(index->Delete(doomed).ok());
  EXPECT_EQ(index->size(), 2999 - static_cast<int64_t>(doomed.size()));
  const std::vector<int64_t> left = Ids(*index->Search(query, Top(50)));
  for (int64_t id : left) EXPECT_TRUE(id < 100 || id >= 2600) << id;
  EXPECT_EQ(left.size(), 50u);
}

TEST_P(CandidateKindTest, LabelFilterKeepsToTheLabelByScanOrByFilteredCandidates) {
  // "rare" (2% of the items) is scanned exactly; "even" (49%) filters the candidates when
  // label_scan_max is 0, and is scanned exactly otherwise.
  for (int64_t label_scan_max : {int64_t{20000}, int64_t{0}}) {
    index::IndexOptions options = Options(GetParam());
    options.label_scan_max = label_scan_max;
    auto index = std::move(index::HyperbolicIndex::Create(options)).value();
    const std::vector<float> points = EmbeddingLikePoints(4000, 10);
    std::vector<std::string> labels(4000);
    std::map<std::string, std::pair<std::vector<int64_t>, std::vector<float>>> by_label;
    for (int64_t i = 0; i < 4000; ++i) {
      labels[i] = i % 50 == 0 ? "rare" : i % 2 == 0 ? "even" : "odd";
      by_label[labels[i]].first.push_back(i);
      by_label[labels[i]].second.insert(by_label[labels[i]].second.end(), &points[i * kDim],
                                        &points[(i + 1) * kDim]);
    }
    ASSERT_TRUE(index->Upsert(Sequence(4000, 0), points, labels).ok());
    const std::vector<float> queries = EmbeddingLikePoints(20, 11);
    for (const std::string label : {"rare", "even"}) {
      const bool filtered = label == "even" && label_scan_max == 0;
      int64_t hits = 0;
      for (int64_t q = 0; q < 20; ++q) {
        const float* query = &queries[q * kDim];
        const auto found = index->Search(absl::MakeConstSpan(query, kDim), Top(10, label));
        ASSERT_TRUE(found.ok()) << found.status();
        ASSERT_EQ(found->size(), 10u);
        const std::vector<int64_t> truth =
            BruteForce(by_label[label].second, by_label[label].first, query, 10);
        if (!filtered || GetParam() == "exact") {
          EXPECT_EQ(Ids(*found), truth) << label;
        }
        for (int64_t id : Ids(*found)) {
          EXPECT_EQ(labels[id], label);
          hits += std::count(truth.begin(), truth.end(), id);
        }
      }
      EXPECT_GE(hits, 0.98 * 200) << label << " label_scan_max " << label_scan_max;
    }
    const auto none = index->Search(absl::MakeConstSpan(queries.data(), kDim), Top(5, "absent"));
    EXPECT_EQ(none.status().code(), absl::StatusCode::kNotFound);
    EXPECT_THAT(std::string(none.status().message()), HasSubstr("label: no item has label"));
  }
}

TEST_P(CandidateKindTest, SearchByIdFindsTheItemsNeighboursWithoutTheItem) {
  auto index = MakeIndex(GetParam());
  const std::vector<float> points = RandomPoints(1500, 12);
  const std::vector<int64_t> ids = Sequence(1500, 0);
  ASSERT_TRUE(index->Upsert(ids, points).ok());
  for (int64_t id : {int64_t{3}, int64_t{700}}) {
    const auto found = index->SearchById(id, Top(5));
    ASSERT_TRUE(found.ok()) << found.status();
    std::vector<int64_t> expected = BruteForce(points, ids, &points[id * kDim], 6);
    expected.erase(std::find(expected.begin(), expected.end(), id));
    EXPECT_EQ(Ids(*found), expected);
  }
  EXPECT_EQ(index->SearchById(99999, Top(5)).status().code(), absl::StatusCode::kNotFound);
}

TEST_P(CandidateKindTest, RestoredStageWithReplayedChangesSearchesLikeTheOriginal) {
  auto original = MakeIndex(GetParam());
  const std::vector<float> points = RandomPoints(3000, 13);
  const std::vector<int64_t> ids = Sequence(3000, 0);
  const std::vector<std::string> labels(3000, "x");
  ASSERT_TRUE(original->Upsert(ids, points, labels).ok());
  const std::vector<uint8_t> snapshot = original->SerializeCandidates();
  EXPECT_EQ(snapshot.empty(), GetParam() == "exact");  // the exact scan is rebuilt instead

  // After the snapshot: item 5 moves onto a query, item 9 is deleted.
  const std::vector<float> query = RandomPoints(1, 14);
  ASSERT_TRUE(original->Upsert({5}, query, {"x"}).ok());
  ASSERT_TRUE(original->Delete({9}).ok());
  std::vector<int64_t> now_ids;
  std::vector<float> now_points;
  for (int64_t i = 0; i < 3000; ++i) {
    if (i == 9) continue;
    now_ids.push_back(i);
    const float* point = i == 5 ? query.data() : &points[i * kDim];
    now_points.insert(now_points.end(), point, point + kDim);
  }
  auto restored = MakeIndex(GetParam());
  std::string problem;
  const auto used = restored->Restore(now_ids, now_points, std::vector<std::string>(2999, "x"),
                                      snapshot, {5, 9}, &problem);
  ASSERT_TRUE(used.ok()) << used.status();
  EXPECT_EQ(*used, GetParam() != "exact") << problem;
  EXPECT_EQ(restored->size(), 2999);
  EXPECT_FALSE(restored->Contains(9));
  EXPECT_EQ((*restored->Search(query, Top(1)))[0].id, 5);
  const std::vector<float> queries = RandomPoints(20, 15);
  EXPECT_EQ(Ids((*restored->SearchBatch(queries, Top(10)))[7]),
            Ids((*original->SearchBatch(queries, Top(10)))[7]));

  // A damaged stage is not used: the index rebuilds it from the items and says why.
  if (!snapshot.empty()) {
    std::vector<uint8_t> damaged(snapshot.begin(), snapshot.begin() + snapshot.size() / 2);
    auto rebuilt = MakeIndex(GetParam());
    problem.clear();
    const auto used_damaged = rebuilt->Restore(
        now_ids, now_points, std::vector<std::string>(2999, "x"), damaged, {5, 9}, &problem);
    ASSERT_TRUE(used_damaged.ok());
    EXPECT_FALSE(*used_damaged);
    EXPECT_THAT(problem, HasSubstr("candidates:"));
    EXPECT_EQ((*rebuilt->Search(query, Top(1)))[0].id, 5);
  }
}

INSTANTIATE_TEST_SUITE_P(Kinds, CandidateKindTest,
                         ::testing::Values("exact", "ivf-flat", "ivf-sq8", "hnsw", "IVF32,Flat"),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           std::string name = info.param;
                           for (char& ch : name) {
                             if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
                           }
                           return name;
                         });

TEST(HyperbolicIndexTest, AutomaticIvfTrainsOnceThereIsEnoughAndRetrainsAsItGrows) {
  auto index = MakeIndex("ivf-flat");
  const std::vector<float> points = RandomPoints(20000, 16);
  ASSERT_TRUE(
      index->Upsert(Sequence(999, 0), absl::MakeConstSpan(points).subspan(0, 999 * kDim)).ok());
  EXPECT_THAT(index->Describe(), HasSubstr("exact L2 scan"));
  ASSERT_TRUE(index->Upsert({999}, absl::MakeConstSpan(&points[999 * kDim], kDim)).ok());
  index->WaitForRebuild();
  EXPECT_THAT(index->Describe(), HasSubstr("IVF20,Flat"));  // 1000 items: 1000 / 50 lists
  ASSERT_TRUE(
      index->Upsert(Sequence(19000, 1000), absl::MakeConstSpan(points).subspan(1000 * kDim)).ok());
  index->WaitForRebuild();
  EXPECT_THAT(index->Describe(), HasSubstr("IVF400,Flat"));  // retrained at 20000 items
}

// Training happens beside the live stage: writes go on meanwhile (into the live stage and a
// journal replayed into the new one), and the stage swapped in holds exactly the items. The last
// retraining here copies 64,021 items in several chunks while deletes move rows about.
TEST(HyperbolicIndexTest, WritesDuringARebuildAreAllInTheStageSwappedIn) {
  auto index = MakeIndex("ivf-flat");
  constexpr int64_t kItems = 72000;
  const std::vector<float> points = RandomPoints(kItems, 21);
  const auto rows = [&](int64_t first, int64_t count) {
    return absl::MakeConstSpan(points).subspan(first * kDim, count * kDim);
  };
  // Trained at 1,000 items, retrained past 4,000 and 16,004 (4x), each time waited for.
  for (const auto& [first, count] : {std::pair<int64_t, int64_t>{0, 1000}, {1000, 3001},
                                     {4001, 12004}}) {
    ASSERT_TRUE(index->Upsert(Sequence(count, first), rows(first, count)).ok());
    index->WaitForRebuild();
  }
  // Past 64,020 the next retraining starts; adds, searches and deletes go on while it runs.
  ASSERT_TRUE(index->Upsert(Sequence(48016, 16005), rows(16005, 48016)).ok());
  std::vector<int64_t> deleted;
  for (int64_t first = 64021; first < kItems; first += 100) {
    const int64_t count = std::min<int64_t>(100, kItems - first);
    ASSERT_TRUE(index->Upsert(Sequence(count, first), rows(first, count)).ok());
    ASSERT_TRUE(index->Search(rows(first, 1), Top(1)).ok());
    std::vector<int64_t> batch;
    for (int64_t id = (first - 64021) / 100 * 16; id < first; id += 16 * 80) batch.push_back(id);
    ASSERT_TRUE(index->Delete(batch).ok());
    deleted.insert(deleted.end(), batch.begin(), batch.end());
  }
  index->WaitForRebuild();
  EXPECT_THAT(index->Describe(), HasSubstr("trained on"));
  const absl::flat_hash_set<int64_t> gone(deleted.begin(), deleted.end());
  EXPECT_EQ(index->size(), kItems - static_cast<int64_t>(gone.size()));
  // Every live item finds itself first (a sample), and no deleted one is ever proposed.
  int64_t live = 0, found_itself = 0;
  for (int64_t id = 0; id < kItems; id += 7) {
    absl::StatusOr<std::vector<index::Neighbour>> nearest = index->Search(rows(id, 1), Top(10));
    ASSERT_TRUE(nearest.ok()) << nearest.status();
    for (const index::Neighbour& neighbour : *nearest) EXPECT_FALSE(gone.contains(neighbour.id));
    if (gone.contains(id)) continue;
    ++live;
    found_itself += !nearest->empty() && (*nearest)[0].id == id;
  }
  EXPECT_EQ(found_itself, live);
}

// Restore replaces the items while a rebuild of the old ones runs: the stale rebuild gives up
// and the restored items are what the index serves.
TEST(HyperbolicIndexTest, RestoreDuringARebuildServesTheRestoredItems) {
  auto index = MakeIndex("ivf-flat");
  const std::vector<float> points = RandomPoints(3000, 22);
  ASSERT_TRUE(index->Upsert(Sequence(2000, 0), absl::MakeConstSpan(points).subspan(0, 2000 * kDim))
                  .ok());
  const std::vector<int64_t> restored = Sequence(1000, 5000);
  const std::vector<std::string> labels(1000, "r");
  ASSERT_TRUE(index
                  ->Restore(restored, absl::MakeConstSpan(points).subspan(2000 * kDim), labels,
                            {}, {}, nullptr)
                  .ok());
  index->WaitForRebuild();
  EXPECT_EQ(index->size(), 1000);
  for (int64_t i = 0; i < 1000; i += 50) {
    absl::StatusOr<std::vector<index::Neighbour>> nearest =
        index->Search(absl::MakeConstSpan(&points[(2000 + i) * kDim], kDim), Top(1));
    ASSERT_TRUE(nearest.ok()) << nearest.status();
    EXPECT_EQ((*nearest)[0].id, 5000 + i);
  }
}

// Found by deploy/fuzz.sh (tests/fuzz/corpus/candidate_stage_fuzz/hnsw-link-outside): an HNSW
// stage read back from altered snapshot bytes, with a link past its vectors, made the next search
// read out of bounds. Such a stage is refused as DataLoss (the index then rebuilds from the store).
TEST(HyperbolicIndexTest, AStageWhoseLinksPointOutsideIsRefused) {
  std::ifstream in(HIER_FUZZ_CORPUS_DIR "/candidate_stage_fuzz/hnsw-link-outside", std::ios::binary);
  const std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)),
                                   std::istreambuf_iterator<char>());
  ASSERT_FALSE(bytes.empty());
  index::CandidateStageOptions options;
  options.kind = "hnsw";
  options.min_train_items = 16;
  std::unique_ptr<index::CandidateStage> stage =
      std::move(index::MakeCandidateStage(options, 8, 1.0)).value();
  const absl::Status read = stage->Deserialize(bytes);
  EXPECT_EQ(read.code(), absl::StatusCode::kDataLoss) << read;

  // The checks pass every stage that holds together: IVF and HNSW stages read back their own bytes.
  for (const char* kind : {"ivf-flat", "ivf-sq8", "hnsw"}) {
    options.kind = kind;
    std::unique_ptr<index::CandidateStage> built =
        std::move(index::MakeCandidateStage(options, 8, 1.0)).value();
    const std::vector<float> points = [] {
      std::vector<float> values(40 * 8);
      for (size_t i = 0; i < values.size(); ++i) values[i] = 0.01f * static_cast<float>(i % 17);
      return values;
    }();
    std::vector<int64_t> ids(40);
    std::iota(ids.begin(), ids.end(), 100);
    built->Rebuild(ids, points, 1);
    std::unique_ptr<index::CandidateStage> reread =
        std::move(index::MakeCandidateStage(options, 8, 1.0)).value();
    EXPECT_TRUE(reread->Deserialize(built->Serialize()).ok()) << kind;
    EXPECT_EQ(reread->Describe(), built->Describe()) << kind;
  }
}

TEST(HyperbolicIndexTest, PreparedAddsGrowFullListsBeforehandAndLoseNoItem) {
  index::CandidateStageOptions options;
  options.kind = "ivf-flat";
  options.nlist = 8;
  options.min_train_items = 200;
  std::unique_ptr<index::CandidateStage> stage =
      std::move(index::MakeCandidateStage(options, kDim, kC)).value();
  std::vector<float> points = RandomPoints(200, 5);
  std::vector<int64_t> ids(200);
  std::iota(ids.begin(), ids.end(), 0);
  stage->Rebuild(ids, points, 1);
  // Room was kept for 4x the items; adding 10x in batches runs every list out of it.
  int64_t grown = 0;
  for (int64_t first = 200; first < 2000; first += 100) {
    const std::vector<float> batch = RandomPoints(100, static_cast<uint32_t>(first));
    std::vector<int64_t> batch_ids(100);
    std::iota(batch_ids.begin(), batch_ids.end(), first);
    index::PreparedAdd prepared = stage->PrepareAdd(batch);
    ASSERT_EQ(prepared.lists.size(), 100u);
    grown += static_cast<int64_t>(prepared.grown.size());
    stage->AddPrepared(batch_ids, batch, prepared);
    // What the add swapped out is left to the caller: each grown list's old storage, which had
    // no room for the rows the batch sent it.
    for (const index::PreparedAdd::GrownList& list : prepared.grown) {
      const auto rows_in = static_cast<size_t>(
          std::count(prepared.lists.begin(), prepared.lists.end(), list.list));
      EXPECT_GT(list.ids.size() + rows_in, list.ids.capacity()) << "list " << list.list;
    }
    points.insert(points.end(), batch.begin(), batch.end());
    ids.insert(ids.end(), batch_ids.begin(), batch_ids.end());
  }
  EXPECT_GT(grown, 0);
  std::vector<int64_t> found(ids.size());
  index::SearchEffort every_list;  // each item must come back as its own first candidate
  every_list.nprobe = 8;
  stage->Search(points, 1, 1, every_list, found.data());
  EXPECT_EQ(found, ids);
}

// Recall@k of the index's searches by id (the item itself left out) over every item, against
// brute force.
double RecallOverEveryItem(const index::HyperbolicIndex& index, const std::vector<float>& points,
                           const std::vector<int64_t>& ids, int64_t k) {
  double found = 0;
  for (size_t i = 0; i < ids.size(); ++i) {
    std::vector<int64_t> exact = BruteForce(points, ids, &points[i * kDim], k + 1);
    exact.erase(std::find(exact.begin(), exact.end(), ids[i]));
    const absl::StatusOr<std::vector<index::Neighbour>> searched = index.SearchById(ids[i], Top(k));
    EXPECT_TRUE(searched.ok()) << searched.status();
    if (!searched.ok()) return 0;
    int64_t hits = 0;
    for (const index::Neighbour& neighbour : *searched) {
      hits += std::count(exact.begin(), exact.end(), neighbour.id);
    }
    found += static_cast<double>(hits) / k;
  }
  return found / static_cast<double>(ids.size());
}

// Settings too small for the target miss it; tuning finds ones that reach it, searches use them,
// and the recall it reports (every item in the sample) is the one brute force measures.
class RecallTuningTest : public ::testing::TestWithParam<std::string> {};

TEST_P(RecallTuningTest, TunedSettingsReachTheTargetTheDefaultsMiss) {
  index::IndexOptions options = Options(GetParam());
  options.candidates.nlist = 64;
  options.candidates.nprobe = 1;
  options.candidates.hnsw_m = 8;
  options.candidates.ef_search = 1;
  options.default_overfetch = 10;
  auto index = std::move(index::HyperbolicIndex::Create(options)).value();
  const std::vector<float> points = EmbeddingLikePoints(2000, 41);
  const std::vector<int64_t> ids = Sequence(2000, 0);
  ASSERT_TRUE(index->Upsert(ids, points).ok());
  index->WaitForRebuild();
  EXPECT_FALSE(index->search_settings().tuning.has_value());
  const double before = RecallOverEveryItem(*index, points, ids, 10);
  EXPECT_LT(before, 0.99);

  index::RecallTarget target;
  target.recall = 0.99;
  target.k = 10;
  target.queries = 100000;  // every item
  const absl::StatusOr<index::RecallTuning> tuned = index->TuneForRecall(target);
  ASSERT_TRUE(tuned.ok()) << tuned.status();
  EXPECT_TRUE(tuned->reached);
  EXPECT_EQ(tuned->queries, 2000);
  EXPECT_GE(tuned->measured.recall, 0.99);
  EXPECT_GT(tuned->settings_tried, 1);
  EXPECT_NEAR(RecallOverEveryItem(*index, points, ids, 10), tuned->measured.recall, 1e-12);
  const index::SearchSettings settings = index->search_settings();
  ASSERT_TRUE(settings.tuning.has_value());
  EXPECT_EQ(settings.effort.overfetch, tuned->effort.overfetch);
  EXPECT_EQ(settings.effort.nprobe, tuned->effort.nprobe);
  EXPECT_EQ(settings.effort.ef_search, tuned->effort.ef_search);
  EXPECT_THAT(index->Describe(), HasSubstr("tuned for recall@10 0.99"));
}

INSTANTIATE_TEST_SUITE_P(Kinds, RecallTuningTest, ::testing::Values("ivf-flat", "ivf-sq8", "hnsw"),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           std::string name = info.param;
                           std::replace(name.begin(), name.end(), '-', '_');
                           return name;
                         });

// With a target in the options, the index tunes itself once the stage is trained.
TEST(HyperbolicIndexTest, ATargetInTheOptionsIsTunedForAfterTraining) {
  index::IndexOptions options = Options("ivf-flat");
  options.candidates.nprobe = 1;
  options.default_overfetch = 10;
  options.target_recall = 0.95;
  auto index = std::move(index::HyperbolicIndex::Create(options)).value();
  const std::vector<float> points = EmbeddingLikePoints(2000, 43);
  ASSERT_TRUE(index->Upsert(Sequence(2000, 0), points).ok());
  index->WaitForRebuild();
  const index::SearchSettings settings = index->search_settings();
  ASSERT_TRUE(settings.tuning.has_value());
  EXPECT_TRUE(settings.tuning->reached);
  EXPECT_EQ(settings.tuning->target.recall, 0.95);
  EXPECT_EQ(settings.tuning->queries, 200);
  EXPECT_GE(settings.tuning->measured.recall, 0.95);
  EXPECT_THAT(index->Describe(), HasSubstr("IVF40,Flat"));
}

TEST(HyperbolicIndexTest, TuningRefusesBadTargetsAndTooFewItems) {
  auto index = MakeIndex("hnsw");
  index::RecallTarget target;
  ASSERT_TRUE(index->Upsert(Sequence(10, 0), RandomPoints(10, 3)).ok());
  const absl::Status too_few = index->TuneForRecall(target).status();
  EXPECT_EQ(too_few.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(too_few.message()), HasSubstr("needs more than 10 items"));
  for (const auto& [field, change] :
       std::vector<std::pair<std::string, std::function<void(index::RecallTarget&)>>>{
           {"target_recall: must be in (0, 1], got 0", [](auto& t) { t.recall = 0; }},
           {"target_recall: must be in (0, 1], got 1.5", [](auto& t) { t.recall = 1.5; }},
           {"k: must be >= 1, got 0", [](auto& t) { t.k = 0; }},
           {"sample_queries: must be >= 1, got -2", [](auto& t) { t.queries = -2; }}}) {
    index::RecallTarget bad;
    change(bad);
    const absl::Status refused = index->TuneForRecall(bad).status();
    EXPECT_EQ(refused.code(), absl::StatusCode::kInvalidArgument) << field;
    EXPECT_THAT(std::string(refused.message()), HasSubstr(field));
  }
  EXPECT_FALSE(index->search_settings().tuning.has_value());
}

TEST(HyperbolicIndexTest, BadInputNamesTheProblemAndChangesNothing) {
  auto index = MakeIndex();
  const std::vector<float> query = RandomPoints(1, 5);
  EXPECT_EQ(index->Search(query, Top(1)).status().code(), absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(index->Upsert({1, 2}, RandomPoints(2, 6), {"a", "b"}).ok());

  std::vector<float> outside = RandomPoints(2, 7);
  outside[kDim] = 10.0f;  // row 1 leaves the ball
  const absl::Status rejected = index->Upsert({3, 4}, outside);
  EXPECT_EQ(rejected.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(rejected.message()), HasSubstr("row 1: vectors: the point lies"));
  EXPECT_EQ(index->size(), 2);  // row 0 was not added either

  std::vector<float> nan_query = query;
  nan_query[3] = std::numeric_limits<float>::quiet_NaN();
  std::vector<float> inf_query = query;
  inf_query[0] = std::numeric_limits<float>::infinity();
  index::SearchOptions negative_overfetch = Top(1);
  negative_overfetch.overfetch = -1;
  struct Case {
    absl::StatusCode code;
    std::string message;
    absl::Status status;
  };
  const std::vector<Case> cases = {
      {absl::StatusCode::kInvalidArgument, "expected 1 x 16 = 16 floats, got 15",
       index->Search(absl::MakeConstSpan(query).subspan(0, 15), Top(1)).status()},
      {absl::StatusCode::kInvalidArgument, "coordinate 3 is nan",
       index->Search(nan_query, Top(1)).status()},
      {absl::StatusCode::kInvalidArgument, "coordinate 0 is inf",
       index->Search(inf_query, Top(1)).status()},
      {absl::StatusCode::kInvalidArgument, "k: must be in [1, 50], got 0",
       index->Search(query, Top(0)).status()},
      {absl::StatusCode::kInvalidArgument, "got 51", index->Search(query, Top(51)).status()},
      {absl::StatusCode::kInvalidArgument, "k: must be in [1, 50], got -3",
       index->SearchBatch(query, Top(-3)).status()},
      {absl::StatusCode::kInvalidArgument, "overfetch: must be >= 0",
       index->Search(query, negative_overfetch).status()},
      {absl::StatusCode::kInvalidArgument, "queries: expected 0 x 16",
       index->SearchBatch(absl::MakeConstSpan(query).subspan(0, 7), Top(1)).status()},
      {absl::StatusCode::kInvalidArgument, "expected 2 x 16 = 32 floats, got 16",
       index->Upsert({8, 9}, query)},
      {absl::StatusCode::kInvalidArgument, "labels: expected none or 1",
       index->Upsert({8}, query, {"a", "b"})},
      {absl::StatusCode::kNotFound, "no item has id 99", index->Delete({1, 99})},
      {absl::StatusCode::kNotFound, "id: no item has id 42",
       index->SearchById(42, Top(1)).status()},
      {absl::StatusCode::kNotFound, "label: no item has label \"c\"",
       index->SearchById(1, Top(1, "c")).status()},
      {absl::StatusCode::kNotFound, "label: no item has label \"c\"",
       index->SearchBatch(query, Top(1, "c")).status()},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(c.status.code(), c.code) << c.message;
    EXPECT_THAT(std::string(c.status.message()), HasSubstr(c.message));
  }
  EXPECT_EQ(index->size(), 2);  // the failed delete removed nothing
  // k above the item count returns every item.
  EXPECT_EQ(index->Search(query, Top(5))->size(), 2u);

  const auto create_error = [](auto change) {
    index::IndexOptions options = Options("exact");
    change(options);
    return std::string(index::HyperbolicIndex::Create(options).status().message());
  };
  EXPECT_THAT(create_error([](auto& o) { o.dim = 0; }), HasSubstr("dim"));
  EXPECT_THAT(create_error([](auto& o) { o.c = -1; }), HasSubstr("c: must"));
  EXPECT_THAT(create_error([](auto& o) { o.threads = 0; }), HasSubstr("threads: must"));
  EXPECT_THAT(create_error([](auto& o) { o.candidates.kind = "ivf-nonsense"; }),
              HasSubstr("candidates.kind: \"ivf-nonsense\" is neither"));
  EXPECT_THAT(create_error([](auto& o) { o.candidates.coordinates = "polar"; }),
              HasSubstr("candidates.coordinates: must be poincare or tangent, got \"polar\""));
  EXPECT_THAT(create_error([](auto& o) { o.candidates.nprobe = 0; }),
              HasSubstr("candidates.nprobe: must be >= 1, got 0"));
}

TEST(HyperbolicIndexTest, SearchesRunWhileItemsAreAddedAndDeleted) {
  for (const std::string kind : {"exact", "ivf-flat"}) {
    // The callers' threads are under test: no OpenMP teams, whose synchronisation (libgomp)
    // ThreadSanitizer cannot see (index/README.md).
    index::IndexOptions options = Options(kind);
    options.threads = 1;
    auto index = std::move(index::HyperbolicIndex::Create(options)).value();
    const std::vector<float> base = RandomPoints(1500, 8);
    ASSERT_TRUE(index->Upsert(Sequence(1500, 0), base).ok());
    const std::vector<float> extra = RandomPoints(200, 9);
    std::atomic<bool> writing{true};
    std::atomic<int64_t> failures{0}, searches{0};
    std::vector<std::thread> readers;
    for (int t = 0; t < 3; ++t) {
      readers.emplace_back([&, t] {
        const std::vector<float> query = RandomPoints(1, 100 + t);
        while (writing.load()) {
          const auto found = index->Search(query, Top(5));
          if (!found.ok() || found->size() != 5) ++failures;
          ++searches;
        }
      });
    }
    while (searches.load() < 3) std::this_thread::yield();
    for (int64_t i = 0; i < 200; ++i) {
      ASSERT_TRUE(index->Upsert({10000 + i}, absl::MakeConstSpan(&extra[i * kDim], kDim)).ok());
      if (i % 2 == 0) {
        ASSERT_TRUE(index->Delete({10000 + i}).ok());
      }
    }
    writing.store(false);
    for (std::thread& t : readers) t.join();
    EXPECT_EQ(failures.load(), 0) << kind;
    EXPECT_GT(searches.load(), 0);
    EXPECT_EQ(index->size(), 1600) << kind;
  }
}

}  // namespace
}  // namespace hier::testing
