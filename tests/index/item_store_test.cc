// The item store suite (tests over every backend through ItemStore::Open), run here over SQLite,
// and the SQLite-only tests (file formats, corrupt files, the WAL journal).
// postgres_item_store_test.cc runs the same suite over PostgreSQL.
#include "index/item_store.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "absl/strings/str_cat.h"
#include "tests/index/item_store_suite.h"

namespace hier::testing {
namespace {

using index::ItemChange;
using index::ItemRecord;
using index::ItemStore;
using index::StoreLocation;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

// A fresh folder per test (removed with the backend), a new file in it per location.
std::filesystem::path TestDirectory() {
  const ::testing::TestInfo* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::string name =
      absl::StrCat("item_store_", info->test_suite_name(), "_", info->name(), "_", getpid());
  std::replace(name.begin(), name.end(), '/', '_');
  return std::filesystem::path(::testing::TempDir()) / name;
}

class SqliteBackend : public StoreBackend {
 public:
  SqliteBackend() : dir_(TestDirectory()) {
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  ~SqliteBackend() override { std::filesystem::remove_all(dir_); }

  absl::Status Available() override { return absl::OkStatus(); }
  absl::StatusOr<StoreLocation> NewLocation() override {
    StoreLocation location;
    location.uri = (dir_ / absl::StrCat("items_", ++locations_, ".db")).string();
    return location;
  }
  std::string DisplayName(const StoreLocation& location) const override { return location.uri; }
  std::string Secret(const StoreLocation&) const override { return ""; }
  absl::Status TruncateStoredVector(const StoreLocation& location, int64_t id) override {
    sqlite3* db = nullptr;
    int rc = sqlite3_open(location.uri.c_str(), &db);
    if (rc == SQLITE_OK) {
      rc = sqlite3_exec(
          db, absl::StrCat("UPDATE items SET vector = x'0000803f' WHERE id = ", id).c_str(),
          nullptr, nullptr, nullptr);
    }
    sqlite3_close(db);
    return rc == SQLITE_OK ? absl::OkStatus() : absl::InternalError(sqlite3_errstr(rc));
  }

 private:
  const std::filesystem::path dir_;
  int locations_ = 0;
};

INSTANTIATE_TEST_SUITE_P(Sqlite, ItemStoreTest,
                         ::testing::Values(BackendParam{
                             "Sqlite", [] { return std::make_unique<SqliteBackend>(); }}),
                         BackendName);

TEST_P(ItemStoreTest, NewStoreIsEmpty) {
  std::unique_ptr<ItemStore> store = OpenStore();
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(store->dim(), kDim);
  EXPECT_EQ(store->last_seq(), 0);
  EXPECT_EQ(ValueOrFail(store->count()), 0);
  EXPECT_TRUE(ChangesAfter(*store, 0).empty());
}

TEST_P(ItemStoreTest, RoundTripsEveryField) {
  std::unique_ptr<ItemStore> store = OpenStore();
  ASSERT_NE(store, nullptr);
  ItemRecord item;
  item.id = -42;
  item.key = "s3://bucket/ünïcödé/photo 1.jpg";
  item.label = "";
  item.attributes = "{\"tags\": [\"a\", \"b\"], \"quote\": \"'\"}";
  item.model_version = "resnet18-hier@step1200";
  item.vector = {-0.0f, std::numeric_limits<float>::denorm_min(), 0.999999f, -1.5e-7f};
  item.image_sha256 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
  ASSERT_TRUE(store->Upsert({item}).ok());

  absl::StatusOr<ItemRecord> got = store->Get(-42);
  ASSERT_TRUE(got.ok()) << got.status();
  ExpectSameItem(*got, item);
  EXPECT_TRUE(std::signbit(got->vector[0]));
}

TEST_P(ItemStoreTest, UpsertReplacesAndNumbersEachChange) {
  std::unique_ptr<ItemStore> store = OpenStore();
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(ValueOrFail(store->Upsert({MakeItem(1), MakeItem(2)})), 2);
  ItemRecord replacement = MakeItem(1, 0.125f);
  replacement.label = "renamed";
  EXPECT_EQ(ValueOrFail(store->Upsert({replacement})), 3);

  ExpectSameItem(ValueOrFail(store->Get(1)), replacement);
  ExpectSameItem(ValueOrFail(store->Get(2)), MakeItem(2));
  EXPECT_EQ(ValueOrFail(store->count()), 2);
  EXPECT_EQ(store->last_seq(), 3);
}

TEST_P(ItemStoreTest, AnIdGivenTwiceKeepsItsLastRecord) {
  std::unique_ptr<ItemStore> store = OpenStore();
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(ValueOrFail(store->Upsert({MakeItem(5), MakeItem(5, 0.5f)})), 2);
  ExpectSameItem(ValueOrFail(store->Get(5)), MakeItem(5, 0.5f));
  EXPECT_EQ(ValueOrFail(store->count()), 1);
}

TEST_P(ItemStoreTest, DeleteThenGetIsNotFound) {
  std::unique_ptr<ItemStore> store = OpenStore();
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->Upsert({MakeItem(7), MakeItem(8)}).ok());
  // A repeated id is deleted once.
  EXPECT_EQ(ValueOrFail(store->Delete({7, 7})), 3);

  absl::StatusOr<ItemRecord> got = store->Get(7);
  EXPECT_EQ(got.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(got.status().message(), HasSubstr("id: no item has id 7"));
  EXPECT_TRUE(store->Get(8).ok());
  EXPECT_EQ(ValueOrFail(store->count()), 1);
  // A deleted item is unknown to a second delete.
  EXPECT_EQ(store->Delete({7}).status().code(), absl::StatusCode::kNotFound);
  // Upserting it again brings it back.
  ASSERT_TRUE(store->Upsert({MakeItem(7)}).ok());
  ExpectSameItem(ValueOrFail(store->Get(7)), MakeItem(7));
}

TEST_P(ItemStoreTest, ImageDigestsAreThoseOfLiveItemsOnceEach) {
  std::unique_ptr<ItemStore> store = OpenStore();
  ASSERT_NE(store, nullptr);
  ItemRecord shared = MakeItem(3);
  shared.image_sha256 = MakeItem(1).image_sha256;  // the same image as item 1
  ItemRecord vector_only = MakeItem(4);
  vector_only.image_sha256.clear();
  ASSERT_TRUE(store->Upsert({MakeItem(1), MakeItem(2), shared, vector_only}).ok());
  EXPECT_THAT(ValueOrFail(store->ImageDigests()),
              ::testing::UnorderedElementsAre("sha-of-1", "sha-of-2"));

  // Item 1's image stays while item 3 refers to it; item 2's goes with it.
  ASSERT_TRUE(store->Delete({1, 2}).ok());
  EXPECT_THAT(ValueOrFail(store->ImageDigests()), ::testing::UnorderedElementsAre("sha-of-1"));
  ASSERT_TRUE(store->Delete({3}).ok());
  EXPECT_THAT(ValueOrFail(store->ImageDigests()), ::testing::IsEmpty());
}

TEST_P(ItemStoreTest, EmptyCallsChangeNothing) {
  std::unique_ptr<ItemStore> store = OpenStore();
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->Upsert({MakeItem(1)}).ok());
  EXPECT_EQ(ValueOrFail(store->Upsert({})), 1);
  EXPECT_EQ(ValueOrFail(store->Delete({})), 1);
  EXPECT_EQ(store->last_seq(), 1);
}

TEST_P(ItemStoreTest, BadInputWritesNothing) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  auto with_vector = [](int64_t id, std::vector<float> vector) {
    ItemRecord item = MakeItem(id);
    item.vector = std::move(vector);
    return item;
  };
  struct Case {
    const char* name;
    std::function<absl::Status(ItemStore&)> act;
    absl::StatusCode code;
    const char* message;
  };
  const std::vector<Case> cases = {
      {"short vector",
       [&](ItemStore& s) {
         return s.Upsert({with_vector(10, {0.1f, 0.2f, 0.3f})}).status();
       },
       absl::StatusCode::kInvalidArgument, "items[0].vector: expected 4 floats, got 3"},
      {"long vector",
       [&](ItemStore& s) {
         return s.Upsert({with_vector(10, {0.1f, 0.2f, 0.3f, 0.4f, 0.5f})}).status();
       },
       absl::StatusCode::kInvalidArgument, "items[0].vector: expected 4 floats, got 5"},
      {"empty vector", [&](ItemStore& s) { return s.Upsert({with_vector(10, {})}).status(); },
       absl::StatusCode::kInvalidArgument, "items[0].vector"},
      {"NaN after a good item",
       [&](ItemStore& s) {
         return s.Upsert({MakeItem(10), with_vector(11, {0.1f, nan, 0.3f, 0.4f})}).status();
       },
       absl::StatusCode::kInvalidArgument, "items[1].vector[1]: not finite"},
      {"+Inf",
       [&](ItemStore& s) {
         return s.Upsert({with_vector(1, {0, 0, 0, inf})}).status();
       },
       absl::StatusCode::kInvalidArgument, "items[0].vector[3]: not finite"},
      {"-Inf",
       [&](ItemStore& s) {
         return s.Upsert({with_vector(1, {-inf, 0, 0, 0})}).status();
       },
       absl::StatusCode::kInvalidArgument, "items[0].vector[0]: not finite"},
      {"unknown id after known ones",
       [](ItemStore& s) {
         return s.Delete({1, 2, 99}).status();
       },
       absl::StatusCode::kNotFound, "ids: no item has id 99"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    NewLocation();
    std::unique_ptr<ItemStore> store = OpenStore();
    ASSERT_NE(store, nullptr);
    ASSERT_TRUE(store->Upsert({MakeItem(1), MakeItem(2)}).ok());

    const absl::Status status = c.act(*store);
    EXPECT_EQ(status.code(), c.code) << status;
    EXPECT_THAT(status.message(), HasSubstr(c.message));

    EXPECT_EQ(ValueOrFail(store->count()), 2);
    EXPECT_EQ(store->last_seq(), 2);
    ExpectSameItem(ValueOrFail(store->Get(1)), MakeItem(1));
    ExpectSameItem(ValueOrFail(store->Get(2)), MakeItem(2));
    EXPECT_EQ(store->Get(10).status().code(), absl::StatusCode::kNotFound);
    EXPECT_EQ(ChangesAfter(*store, 2).size(), 0u);
    // The next change takes the next number: the failed call used none.
    EXPECT_EQ(ValueOrFail(store->Upsert({MakeItem(3)})), 3);
  }
}

TEST_P(ItemStoreTest, ChangesAfterInSeqOrderWithTombstonesAndLatestState) {
  std::unique_ptr<ItemStore> store = OpenStore();
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->Upsert({MakeItem(1), MakeItem(2), MakeItem(3)}).ok());  // seqs 1, 2, 3
  ASSERT_TRUE(store->Upsert({MakeItem(1, 0.5f)}).ok());                      // seq 4
  ASSERT_TRUE(store->Delete({2}).ok());                                      // seq 5

  const std::vector<ItemChange> all = ChangesAfter(*store, 0);
  EXPECT_THAT(Summary(all), ElementsAre(std::make_tuple(3, 3, false), std::make_tuple(4, 1, false),
                                        std::make_tuple(5, 2, true)));
  ExpectSameItem(all[0].item, MakeItem(3));
  ExpectSameItem(all[1].item, MakeItem(1, 0.5f));
  EXPECT_TRUE(all[2].item.vector.empty());

  EXPECT_THAT(Summary(ChangesAfter(*store, 3)),
              ElementsAre(std::make_tuple(4, 1, false), std::make_tuple(5, 2, true)));
  EXPECT_THAT(Summary(ChangesAfter(*store, 4)), ElementsAre(std::make_tuple(5, 2, true)));
  EXPECT_TRUE(ChangesAfter(*store, 5).empty());
}

TEST_P(ItemStoreTest, ChangesAfterWalksManyChangesAndVisitMayCallTheStore) {
  std::unique_ptr<ItemStore> store = OpenStore();
  ASSERT_NE(store, nullptr);
  std::vector<ItemRecord> items;
  for (int64_t id = 0; id < 1000; ++id) items.push_back(MakeItem(id));
  ASSERT_TRUE(store->Upsert(items).ok());

  int64_t expected_seq = 101;
  const absl::Status walked = store->ForEachChangeAfter(100, [&](const ItemChange& change) {
    EXPECT_EQ(change.seq, expected_seq++);
    // Calling back into the store must not deadlock, and writes made during the walk that are
    // newer than the cursor are visited too.
    absl::StatusOr<ItemRecord> got = store->Get(change.item.id);
    if (!got.ok()) return got.status();
    if (change.seq == 500) return store->Upsert({MakeItem(0, 0.5f)}).status();
    return absl::OkStatus();
  });
  EXPECT_TRUE(walked.ok()) << walked;
  EXPECT_EQ(expected_seq, 1002);  // seqs 101..1000, then 1001 (item 0 again)
}

TEST_P(ItemStoreTest, VisitErrorStopsTheWalk) {
  std::unique_ptr<ItemStore> store = OpenStore();
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->Upsert({MakeItem(1), MakeItem(2), MakeItem(3)}).ok());
  int visits = 0;
  const absl::Status walked = store->ForEachChangeAfter(0, [&](const ItemChange&) {
    return ++visits == 2 ? absl::CancelledError("enough") : absl::OkStatus();
  });
  EXPECT_EQ(walked, absl::CancelledError("enough"));
  EXPECT_EQ(visits, 2);
}

TEST_P(ItemStoreTest, PurgeNeverLetsALaterChangeReuseASeq) {
  {
    std::unique_ptr<ItemStore> store = OpenStore();
    ASSERT_NE(store, nullptr);
    ASSERT_TRUE(store->Upsert({MakeItem(1), MakeItem(2), MakeItem(3)}).ok());
    ASSERT_TRUE(store->Delete({3}).ok());  // seq 4: the highest seq is a tombstone's
    ASSERT_TRUE(store->PurgeDeletionsUpTo(4).ok());
    EXPECT_THAT(Summary(ChangesAfter(*store, 0)),
                ElementsAre(std::make_tuple(1, 1, false), std::make_tuple(2, 2, false)));
  }
  // The counter survives reopening, though no row holds seq 4 any more.
  std::unique_ptr<ItemStore> store = OpenStore();
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(store->last_seq(), 4);
  EXPECT_EQ(ValueOrFail(store->Upsert({MakeItem(5)})), 5);
  EXPECT_THAT(Summary(ChangesAfter(*store, 4)), ElementsAre(std::make_tuple(5, 5, false)));
}

TEST_P(ItemStoreTest, PurgeKeepsNewerDeletions) {
  std::unique_ptr<ItemStore> store = OpenStore();
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->Upsert({MakeItem(1), MakeItem(2), MakeItem(3)}).ok());
  ASSERT_TRUE(store->Delete({1}).ok());  // seq 4
  ASSERT_TRUE(store->Delete({2}).ok());  // seq 5
  ASSERT_TRUE(store->PurgeDeletionsUpTo(4).ok());
  EXPECT_THAT(Summary(ChangesAfter(*store, 0)),
              ElementsAre(std::make_tuple(3, 3, false), std::make_tuple(5, 2, true)));
  EXPECT_EQ(ValueOrFail(store->count()), 1);
}

TEST_P(ItemStoreTest, ReopenKeepsEverything) {
  std::vector<ItemChange> before;
  {
    std::unique_ptr<ItemStore> store = OpenStore();
    ASSERT_NE(store, nullptr);
    ASSERT_TRUE(store->Upsert({MakeItem(1), MakeItem(2), MakeItem(3)}).ok());
    ASSERT_TRUE(store->Upsert({MakeItem(2, 0.25f)}).ok());
    ASSERT_TRUE(store->Delete({3}).ok());
    ASSERT_TRUE(store->SetSetting("candidate_index", "exact").ok());
    before = ChangesAfter(*store, 0);
  }
  std::unique_ptr<ItemStore> store = OpenStore();
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(store->last_seq(), 5);
  EXPECT_EQ(ValueOrFail(store->count()), 2);
  ExpectSameItem(ValueOrFail(store->Get(1)), MakeItem(1));
  ExpectSameItem(ValueOrFail(store->Get(2)), MakeItem(2, 0.25f));
  EXPECT_EQ(store->Get(3).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(ValueOrFail(store->GetSetting("candidate_index")), "exact");
  const std::vector<ItemChange> after = ChangesAfter(*store, 0);
  EXPECT_EQ(Summary(after), Summary(before));
  ASSERT_EQ(after.size(), before.size());
  for (size_t i = 0; i < after.size(); ++i) ExpectSameItem(after[i].item, before[i].item);
}

TEST_P(ItemStoreTest, OpeningWithAnotherDimNamesBoth) {
  ASSERT_NE(OpenStore(16), nullptr);
  absl::StatusOr<std::unique_ptr<ItemStore>> store = ItemStore::Open(location_, 24);
  EXPECT_EQ(store.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(store.status().message(), HasSubstr("dim 16"));
  EXPECT_THAT(store.status().message(), HasSubstr("dim 24"));
  ExpectNamesTheStore(store.status());
}

TEST_P(ItemStoreTest, OutOfRangeDimIsInvalid) {
  for (int64_t dim : {int64_t{0}, int64_t{-3}, int64_t{1} << 20}) {
    EXPECT_EQ(ItemStore::Open(location_, dim).status().code(), absl::StatusCode::kInvalidArgument)
        << dim;
  }
}

TEST_P(ItemStoreTest, SettingsRoundTripAndSurviveReopen) {
  {
    std::unique_ptr<ItemStore> store = OpenStore();
    ASSERT_NE(store, nullptr);
    EXPECT_EQ(ValueOrFail(store->GetSetting("candidate_index")), std::nullopt);
    ASSERT_TRUE(store->SetSetting("candidate_index", "ivf").ok());
    ASSERT_TRUE(store->SetSetting("candidate_index", "hnsw").ok());
    ASSERT_TRUE(store->SetSetting("empty", "").ok());
    EXPECT_EQ(ValueOrFail(store->GetSetting("candidate_index")), "hnsw");
  }
  std::unique_ptr<ItemStore> store = OpenStore();
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(ValueOrFail(store->GetSetting("candidate_index")), "hnsw");
  EXPECT_EQ(ValueOrFail(store->GetSetting("empty")), "");
  EXPECT_EQ(ValueOrFail(store->GetSetting("missing")), std::nullopt);
  EXPECT_EQ(store->last_seq(), 0);  // settings are not item changes
}

TEST_P(ItemStoreTest, ConcurrentUpsertsAndGetsGetUniqueSeqs) {
  std::unique_ptr<ItemStore> store = OpenStore();
  ASSERT_NE(store, nullptr);
  constexpr int kThreads = 4;
  constexpr int kPerThread = 50;
  std::vector<std::vector<int64_t>> seqs(kThreads);
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        const ItemRecord item = MakeItem(t * 1000 + i);
        absl::StatusOr<int64_t> seq = store->Upsert({item});
        absl::StatusOr<ItemRecord> got = store->Get(item.id);
        if (!seq.ok() || !got.ok() || got->vector != item.vector) {
          ++failures;
          continue;
        }
        seqs[t].push_back(*seq);
      }
    });
  }
  for (std::thread& thread : threads) thread.join();

  EXPECT_EQ(failures.load(), 0);
  std::set<int64_t> unique;
  for (const std::vector<int64_t>& thread_seqs : seqs) {
    // Each thread sees its own changes numbered in increasing order.
    EXPECT_TRUE(std::is_sorted(thread_seqs.begin(), thread_seqs.end()));
    unique.insert(thread_seqs.begin(), thread_seqs.end());
  }
  EXPECT_EQ(unique.size(), size_t{kThreads * kPerThread});
  EXPECT_EQ(*unique.begin(), 1);
  EXPECT_EQ(*unique.rbegin(), kThreads * kPerThread);
  EXPECT_EQ(ValueOrFail(store->count()), kThreads * kPerThread);
  EXPECT_EQ(store->last_seq(), kThreads * kPerThread);
}

TEST_P(ItemStoreTest, AStoredVectorOfTheWrongLengthIsDataLoss) {
  {
    std::unique_ptr<ItemStore> store = OpenStore();
    ASSERT_NE(store, nullptr);
    ASSERT_TRUE(store->Upsert({MakeItem(1), MakeItem(2)}).ok());
  }
  ASSERT_TRUE(backend_->TruncateStoredVector(location_, 2).ok());

  std::unique_ptr<ItemStore> store = OpenStore();
  ASSERT_NE(store, nullptr);
  ExpectSameItem(ValueOrFail(store->Get(1)), MakeItem(1));
  absl::StatusOr<ItemRecord> got = store->Get(2);
  EXPECT_EQ(got.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(got.status().message(), HasSubstr("item id 2"));
  const absl::Status walked =
      store->ForEachChangeAfter(0, [](const ItemChange&) { return absl::OkStatus(); });
  EXPECT_EQ(walked.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(walked.message(), HasSubstr("item id 2"));
}

// Two store objects on one location stand for two replicas (or two processes): each sees the
// other's changes, and numbers continue across them.
TEST_P(ItemStoreTest, TwoStoresOnOneLocationShareOneChangeLog) {
  std::unique_ptr<ItemStore> first = OpenStore();
  std::unique_ptr<ItemStore> second = OpenStore();
  ASSERT_NE(first, nullptr);
  ASSERT_NE(second, nullptr);
  EXPECT_EQ(ValueOrFail(first->Upsert({MakeItem(1), MakeItem(2)})), 2);
  EXPECT_EQ(ValueOrFail(second->Upsert({MakeItem(3)})), 3);
  EXPECT_EQ(ValueOrFail(first->Delete({3})), 4);
  ExpectSameItem(ValueOrFail(second->Get(1)), MakeItem(1));
  EXPECT_THAT(Summary(ChangesAfter(*second, 1)),
              ElementsAre(std::make_tuple(2, 2, false), std::make_tuple(4, 3, true)));
  EXPECT_EQ(ValueOrFail(second->count()), 2);
  ASSERT_TRUE(second->SetSetting("candidates.kind", "hnsw").ok());
  EXPECT_EQ(ValueOrFail(first->GetSetting("candidates.kind")), "hnsw");
  // last_seq() counts what each object opened with or wrote itself.
  EXPECT_EQ(first->last_seq(), 4);
  EXPECT_EQ(second->last_seq(), 3);
}

// SQLite only: the file itself.
class SqliteItemStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = TestDirectory();
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    path_ = (dir_ / "items.db").string();
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::unique_ptr<ItemStore> OpenStore(int64_t dim = kDim) {
    absl::StatusOr<std::unique_ptr<ItemStore>> store = ItemStore::Open(path_, dim);
    EXPECT_TRUE(store.ok()) << store.status();
    return store.ok() ? *std::move(store) : nullptr;
  }

  std::filesystem::path dir_;
  std::string path_;
};

TEST_F(SqliteItemStoreTest, AVersion1StoreIsUpgradedWithItsItemsKept) {
  {
    // The version 1 layout, as an earlier build wrote it: no image_sha256 column.
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(db, R"sql(
        CREATE TABLE meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
        CREATE TABLE items (id INTEGER PRIMARY KEY, seq INTEGER NOT NULL,
          deleted INTEGER NOT NULL, key TEXT NOT NULL, label TEXT NOT NULL,
          attributes TEXT NOT NULL, model_version TEXT NOT NULL, vector BLOB NOT NULL);
        CREATE UNIQUE INDEX items_by_seq ON items (seq);
        CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
        INSERT INTO meta VALUES ('schema_version', 1), ('dim', 4), ('last_seq', 1);
        INSERT INTO items VALUES (5, 1, 0, 'k', 'l', '{}', 'v1',
          x'0000803f000000000000000000000000');)sql",
                           nullptr, nullptr, nullptr),
              SQLITE_OK);
    sqlite3_close(db);
  }
  {
    std::unique_ptr<ItemStore> store = OpenStore();
    ASSERT_NE(store, nullptr);
    const ItemRecord old = ValueOrFail(store->Get(5));
    EXPECT_EQ(old.key, "k");
    EXPECT_EQ(old.vector, (std::vector<float>{1, 0, 0, 0}));
    EXPECT_EQ(old.image_sha256, "");
    ASSERT_TRUE(store->Upsert({MakeItem(6)}).ok());
  }
  std::unique_ptr<ItemStore> reopened = OpenStore();
  ASSERT_NE(reopened, nullptr);
  ExpectSameItem(ValueOrFail(reopened->Get(6)), MakeItem(6));
  EXPECT_EQ(reopened->last_seq(), 2);
}

TEST_F(SqliteItemStoreTest, UsesTheWalJournal) {
  ASSERT_NE(OpenStore(), nullptr);
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open_v2(path_.c_str(), &db, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
  sqlite3_stmt* stmt = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &stmt, nullptr), SQLITE_OK);
  ASSERT_EQ(sqlite3_step(stmt), SQLITE_ROW);
  EXPECT_STREQ(reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0)), "wal");
  sqlite3_finalize(stmt);
  sqlite3_close(db);
}

TEST_F(SqliteItemStoreTest, OpenRejectsWhatIsNotAnItemStore) {
  struct Case {
    const char* name;
    std::function<void(const std::string&)> make;
    absl::StatusCode code;
  };
  const std::vector<Case> cases = {
      {"garbage bytes",
       [](const std::string& path) {
         std::ofstream out(path, std::ios::binary);
         for (int i = 0; i < 8192; ++i) out.put(static_cast<char>((i * 131 + 7) % 256));
       },
       absl::StatusCode::kDataLoss},
      {"a short text file",
       [](const std::string& path) { std::ofstream(path) << "not a database at all, sorry\n"; },
       absl::StatusCode::kDataLoss},
      {"another SQLite database",
       [](const std::string& path) {
         sqlite3* db = nullptr;
         sqlite3_open(path.c_str(), &db);
         sqlite3_exec(db, "CREATE TABLE photos (name TEXT)", nullptr, nullptr, nullptr);
         sqlite3_close(db);
       },
       absl::StatusCode::kFailedPrecondition},
      {"a directory", [](const std::string& path) { std::filesystem::create_directories(path); },
       absl::StatusCode::kUnavailable},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    std::filesystem::remove_all(path_);
    c.make(path_);
    absl::StatusOr<std::unique_ptr<ItemStore>> store = ItemStore::Open(path_, kDim);
    EXPECT_EQ(store.status().code(), c.code) << store.status();
    EXPECT_THAT(store.status().message(), HasSubstr(path_));
  }
}

}  // namespace
}  // namespace hier::testing
