// The item store suite over PostgreSQL (a throwaway server per test process, a fresh schema per
// location), and what only PostgreSQL has: the versioned schema, refusing other applications'
// databases, credentials, concurrent writers from several connections that followers must not
// skip, and outages.
#include "index/postgres_item_store.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <pqxx/pqxx>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "index/item_store.h"
#include "tests/index/item_store_suite.h"
#include "tests/support/postgres_database_test.h"
#include "tests/support/postgres_server.h"

namespace hier::testing {
namespace {

using index::ItemChange;
using index::ItemRecord;
using index::ItemStore;
using index::PostgresItemStore;
using index::StoreLocation;
using ::testing::HasSubstr;
using ::testing::Not;

// The shared suite's locations: a fresh schema each (CREATE SCHEMA takes milliseconds, CREATE
// DATABASE a few hundred), in one database per test process, reached through the URI's
// search_path. The PostgreSQL-only tests below use fresh databases.
class PostgresBackend : public StoreBackend {
 public:
  absl::Status Available() override {
    absl::StatusOr<PostgresServer*> server = PostgresServer::Shared();
    if (!server.ok()) return server.status();
    server_ = *server;
    return absl::OkStatus();
  }
  absl::StatusOr<StoreLocation> NewLocation() override {
    static absl::StatusOr<std::string> database = server_->CreateDatabase();
    if (!database.ok()) return database.status();
    absl::StatusOr<std::string> schema = server_->CreateSchema(*database);
    if (!schema.ok()) return schema.status();
    StoreLocation location;
    location.uri = server_->Uri(*database, *schema);
    schemas_[location.uri] = {*database, *schema};
    return location;
  }
  std::string DisplayName(const StoreLocation& location) const override {
    std::string display = location.uri;
    const std::string password = absl::StrCat(":", server_->password(), "@");
    display.replace(display.find(password), password.size(), ":***@");
    return display;
  }
  std::string Secret(const StoreLocation&) const override { return server_->password(); }
  absl::Status TruncateStoredVector(const StoreLocation& location, int64_t id) override {
    const auto& [database, schema] = schemas_.at(location.uri);
    return server_->Execute(
        database,
        absl::StrCat("SET search_path TO ", schema,
                     "; UPDATE hier_items SET vector = '\\x0000803f'::bytea WHERE id = ", id));
  }

 private:
  PostgresServer* server_ = nullptr;
  // Each location's database and schema, by URI.
  std::map<std::string, std::pair<std::string, std::string>> schemas_;
};

INSTANTIATE_TEST_SUITE_P(Postgres, ItemStoreTest,
                         ::testing::Values(BackendParam{
                             "Postgres", [] { return std::make_unique<PostgresBackend>(); }}),
                         BackendName);

// PostgreSQL only: server_ is the process's test server, database_ a fresh database.
class PostgresItemStoreTest : public PostgresDatabaseTest {
 protected:
  absl::StatusOr<std::unique_ptr<ItemStore>> Open(int64_t dim = kDim) {
    return ItemStore::Open(Uri(), dim);
  }

  // The first column of the first row of `sql`, run as the test role; "<null>" or "<no row>".
  std::string QueryOne(const std::string& sql) const {
    pqxx::connection connection(Uri());
    pqxx::nontransaction tx(connection);
    const pqxx::result result = tx.exec(sql);
    if (result.empty()) return "<no row>";
    return result[0][0].is_null() ? "<null>" : result[0][0].as<std::string>();
  }
};

TEST_F(PostgresItemStoreTest, CreatesAVersionedSchemaThatNamesTheApplication) {
  ASSERT_TRUE(Open(16).ok());
  EXPECT_EQ(QueryOne("SELECT value FROM hier_meta WHERE key = 'application'"), "hier-serve");
  EXPECT_EQ(QueryOne("SELECT value FROM hier_meta WHERE key = 'schema_version'"),
            absl::StrCat(PostgresItemStore::kSchemaVersion));
  EXPECT_EQ(QueryOne("SELECT value FROM hier_meta WHERE key = 'dim'"), "16");
  EXPECT_EQ(QueryOne("SELECT seq FROM hier_change_counter"), "0");
  // Vectors are float32 little-endian bytes.
  absl::StatusOr<std::unique_ptr<ItemStore>> store = Open(16);
  ASSERT_TRUE(store.ok()) << store.status();
  ItemRecord item = MakeItem(1);
  item.vector.assign(16, 0.0f);
  item.vector[0] = 1.0f;
  ASSERT_TRUE((*store)->Upsert({item}).ok());
  EXPECT_EQ(QueryOne("SELECT encode(substring(vector FROM 1 FOR 4), 'hex') FROM hier_items"),
            "0000803f");
}

TEST_F(PostgresItemStoreTest, ANewerSchemaVersionIsRefused) {
  ASSERT_TRUE(Open().ok());
  ASSERT_TRUE(
      server_->Execute(database_, "UPDATE hier_meta SET value = '99' WHERE key = 'schema_version'")
          .ok());
  absl::StatusOr<std::unique_ptr<ItemStore>> store = Open();
  EXPECT_EQ(store.status().code(), absl::StatusCode::kFailedPrecondition) << store.status();
  EXPECT_THAT(store.status().message(),
              HasSubstr(absl::StrCat("schema version 99 is newer than this binary's ",
                                     PostgresItemStore::kSchemaVersion)));
}

TEST_F(PostgresItemStoreTest, AVersionOneSchemaIsMigratedKeepingItsItems) {
  {
    absl::StatusOr<std::unique_ptr<ItemStore>> store = Open();
    ASSERT_TRUE(store.ok()) << store.status();
    ASSERT_TRUE((*store)->Upsert({MakeItem(7)}).ok());
  }
  // What a version 1 store looks like: no hier_images, hier_jobs or hier_members.
  ASSERT_TRUE(server_
                  ->Execute(database_,
                            "DROP TABLE hier_images, hier_jobs, hier_members; UPDATE hier_meta "
                            "SET value = '1' WHERE key = 'schema_version'")
                  .ok());
  absl::StatusOr<std::unique_ptr<ItemStore>> store = Open();
  ASSERT_TRUE(store.ok()) << store.status();
  EXPECT_EQ(QueryOne("SELECT value FROM hier_meta WHERE key = 'schema_version'"),
            absl::StrCat(PostgresItemStore::kSchemaVersion));
  EXPECT_EQ(QueryOne("SELECT count(*) FROM hier_images"), "0");
  EXPECT_EQ(QueryOne("SELECT count(*) FROM hier_members"), "0");
  absl::StatusOr<ItemRecord> kept = (*store)->Get(7);
  ASSERT_TRUE(kept.ok()) << kept.status();
  EXPECT_EQ(kept->key, MakeItem(7).key);
}

TEST_F(PostgresItemStoreTest, StoresInOtherSchemasOfOneDatabaseAreIndependent) {
  StoreLocation base;
  base.uri = Uri();
  StoreLocation gallery = base;
  gallery.schema = "hier_gallery_42";
  absl::StatusOr<std::unique_ptr<ItemStore>> first = ItemStore::Open(base, kDim);
  absl::StatusOr<std::unique_ptr<ItemStore>> second = ItemStore::Open(gallery, 2 * kDim);
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_TRUE(second.ok()) << second.status();  // created with its schema, its own dim
  ASSERT_TRUE((*first)->Upsert({MakeItem(1), MakeItem(2)}).ok());
  ItemRecord wide = MakeItem(1);
  wide.vector.resize(2 * kDim, 0.0f);
  ASSERT_TRUE((*second)->Upsert({wide}).ok());
  EXPECT_EQ(*(*first)->count(), 2);
  EXPECT_EQ(*(*second)->count(), 1);
  EXPECT_EQ((*second)->last_seq(), 1);  // its own change log
  EXPECT_EQ(QueryOne("SELECT count(*) FROM hier_gallery_42.hier_items"), "1");
}

TEST_F(PostgresItemStoreTest, ASealedStoreRefusesWritesUntilUnsealed) {
  absl::StatusOr<std::unique_ptr<ItemStore>> store = Open();
  ASSERT_TRUE(store.ok()) << store.status();
  ASSERT_TRUE((*store)->Upsert({MakeItem(1)}).ok());
  absl::StatusOr<int64_t> sealed = (*store)->Seal(true);
  ASSERT_TRUE(sealed.ok()) << sealed.status();
  EXPECT_EQ(*sealed, 1);
  // Every writer, also another store object (another replica), is refused; nothing is numbered.
  absl::StatusOr<std::unique_ptr<ItemStore>> other = Open();
  ASSERT_TRUE(other.ok());
  for (ItemStore* writer : {store->get(), other->get()}) {
    const absl::Status upsert = writer->Upsert({MakeItem(2)}).status();
    EXPECT_EQ(upsert.code(), absl::StatusCode::kAborted) << upsert;
    EXPECT_THAT(upsert.message(), HasSubstr("send the write again"));
    const int64_t ids[] = {1};
    EXPECT_EQ(writer->Delete(ids).status().code(), absl::StatusCode::kAborted);
  }
  EXPECT_EQ(QueryOne("SELECT seq FROM hier_change_counter"), "1");
  EXPECT_EQ(*(*store)->count(), 1);
  ASSERT_TRUE((*store)->Seal(false).ok());
  EXPECT_EQ(*(*other)->Upsert({MakeItem(2)}), 2);
}

TEST_F(PostgresItemStoreTest, AnotherApplicationsDatabaseIsRefusedAndLeftAlone) {
  ASSERT_TRUE(server_
                  ->Execute(database_, absl::StrCat("CREATE TABLE foo (bar int); ALTER TABLE ",
                                                    "foo OWNER TO ", server_->user()))
                  .ok());
  absl::StatusOr<std::unique_ptr<ItemStore>> store = Open();
  EXPECT_EQ(store.status().code(), absl::StatusCode::kFailedPrecondition) << store.status();
  EXPECT_THAT(store.status().message(), HasSubstr("another application"));
  EXPECT_THAT(store.status().message(), HasSubstr("foo"));
  EXPECT_THAT(store.status().message(), Not(HasSubstr(server_->password())));
  // Nothing was written.
  EXPECT_EQ(QueryOne("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"), "1");
}

TEST_F(PostgresItemStoreTest, HierMetaOfAnotherApplicationIsRefused) {
  ASSERT_TRUE(
      server_
          ->Execute(database_, absl::StrCat("CREATE TABLE hier_meta (key text, value text); "
                                            "INSERT INTO hier_meta VALUES ('application', "
                                            "'other-app'); ALTER TABLE hier_meta OWNER TO ",
                                            server_->user()))
          .ok());
  absl::StatusOr<std::unique_ptr<ItemStore>> store = Open();
  EXPECT_EQ(store.status().code(), absl::StatusCode::kFailedPrecondition) << store.status();
  EXPECT_THAT(store.status().message(), HasSubstr("\"other-app\""));
  EXPECT_EQ(QueryOne("SELECT to_regclass('hier_items')"), "<null>");
}

TEST_F(PostgresItemStoreTest, ReplicasOpeningAnEmptyDatabaseTogetherCreateTheSchemaOnce) {
  constexpr int kReplicas = 6;
  std::vector<absl::Status> opened(kReplicas);
  std::vector<std::thread> threads;
  for (int r = 0; r < kReplicas; ++r) {
    threads.emplace_back([&, r] { opened[r] = Open().status(); });
  }
  for (std::thread& thread : threads) thread.join();
  for (const absl::Status& status : opened) EXPECT_TRUE(status.ok()) << status;
  EXPECT_EQ(QueryOne("SELECT count(*) FROM hier_meta"), "3");
  EXPECT_EQ(QueryOne("SELECT count(*) FROM hier_change_counter"), "1");
}

TEST_F(PostgresItemStoreTest, AWrongPasswordIsAClearErrorWithoutThePassword) {
  const std::string wrong = "not-the-password-4711";
  const std::string uri = absl::StrCat("postgresql://", server_->user(), ":", wrong,
                                       "@127.0.0.1:", server_->port(), "/", database_);
  absl::StatusOr<std::unique_ptr<ItemStore>> store = ItemStore::Open(uri, kDim);
  EXPECT_EQ(store.status().code(), absl::StatusCode::kFailedPrecondition) << store.status();
  EXPECT_THAT(store.status().message(), HasSubstr("password authentication failed"));
  EXPECT_THAT(store.status().message(), HasSubstr(":***@127.0.0.1"));
  EXPECT_THAT(store.status().message(), Not(HasSubstr(wrong)));

  // The same through StoreLocation::password, which overrides the URI's.
  StoreLocation location;
  location.uri = server_->Uri(database_);
  location.password = wrong;
  store = ItemStore::Open(location, kDim);
  EXPECT_EQ(store.status().code(), absl::StatusCode::kFailedPrecondition) << store.status();
  EXPECT_THAT(store.status().message(), Not(HasSubstr(wrong)));
  EXPECT_THAT(store.status().message(), Not(HasSubstr(server_->password())));
}

TEST_F(PostgresItemStoreTest, AnUnreachableServerIsUnavailable) {
  const int port = PostgresServer::FreePort();
  const std::string uri = absl::StrCat("postgresql://", server_->user(), ":", server_->password(),
                                       "@127.0.0.1:", port, "/", database_);
  absl::StatusOr<std::unique_ptr<ItemStore>> store = ItemStore::Open(uri, kDim);
  EXPECT_EQ(store.status().code(), absl::StatusCode::kUnavailable) << store.status();
  EXPECT_THAT(store.status().message(), HasSubstr(absl::StrCat(port)));
  EXPECT_THAT(store.status().message(), Not(HasSubstr(server_->password())));
}

TEST_F(PostgresItemStoreTest, AMalformedUriIsInvalidArgument) {
  absl::StatusOr<std::unique_ptr<ItemStore>> store =
      ItemStore::Open("postgresql://u:s3cret-pw@127.0.0.1:5432/db?no_such_option=1", kDim);
  EXPECT_EQ(store.status().code(), absl::StatusCode::kInvalidArgument) << store.status();
  EXPECT_THAT(store.status().message(), HasSubstr("no_such_option"));
  EXPECT_THAT(store.status().message(), Not(HasSubstr("s3cret-pw")));
}

TEST_F(PostgresItemStoreTest, ThePasswordMayComeFromOptionsOrThePasswordFile) {
  StoreLocation location;
  location.uri = server_->UriWithoutPassword(database_);
  location.password = server_->password();
  absl::StatusOr<std::unique_ptr<ItemStore>> store = ItemStore::Open(location, kDim);
  ASSERT_TRUE(store.ok()) << store.status();
  ASSERT_TRUE((*store)->Upsert({MakeItem(1)}).ok());

  const std::string passfile = absl::StrCat(::testing::TempDir(), "/hier-pgpass-", getpid());
  std::ofstream(passfile) << "127.0.0.1:" << server_->port() << ":" << database_ << ":"
                          << server_->user() << ":" << server_->password() << "\n";
  chmod(passfile.c_str(), 0600);
  setenv("PGPASSFILE", passfile.c_str(), 1);
  store = ItemStore::Open(server_->UriWithoutPassword(database_), kDim);
  unsetenv("PGPASSFILE");
  std::filesystem::remove(passfile);
  ASSERT_TRUE(store.ok()) << store.status();
  ExpectSameItem(ValueOrFail((*store)->Get(1)), MakeItem(1));
}

TEST_F(PostgresItemStoreTest, TextWithANulByteIsInvalidArgument) {
  absl::StatusOr<std::unique_ptr<ItemStore>> store = Open();
  ASSERT_TRUE(store.ok()) << store.status();
  ItemRecord item = MakeItem(1);
  item.label = std::string("a\0b", 3);
  const absl::Status status = (*store)->Upsert({MakeItem(2), item}).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_THAT(status.message(), HasSubstr("items[1].label"));
  EXPECT_EQ(ValueOrFail((*store)->count()), 0);
}

// The numbering design (postgres_item_store.h): writers on several connections, some transactions
// rolled back after taking numbers, and followers polling ForEachChangeAfter from their high-water
// mark. Every follower must see every committed change exactly once, in order, with no gaps, and
// a walk from any high-water mark a follower reached must give exactly the changes after it.
TEST_F(PostgresItemStoreTest, ConcurrentWritersWithRollbacksLeaveNoGapsForFollowers) {
  constexpr int kStoreWriters = 3;
  constexpr int kBatchesPerWriter = 25;
  constexpr int kRawWriters = 2;
  constexpr int kRawRoundsPerWriter = 15;
  constexpr int kFollowers = 2;
  ASSERT_TRUE(Open().ok());  // creates the schema

  std::atomic<int> writers_left{kStoreWriters + kRawWriters};
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  // Writers through the store, each its own store object (its own connections), as replicas are.
  // Every other batch also tries a delete of an unknown id: it takes numbers, then rolls back.
  for (int w = 0; w < kStoreWriters; ++w) {
    threads.emplace_back([&, w] {
      absl::StatusOr<std::unique_ptr<ItemStore>> store = Open();
      if (!store.ok()) {
        ++failures;
        --writers_left;
        return;
      }
      for (int b = 0; b < kBatchesPerWriter; ++b) {
        const int64_t id = (w + 1) * 100000 + b * 10;
        if (!(*store)->Upsert({MakeItem(id), MakeItem(id + 1)}).ok()) ++failures;
        if (b % 2 == 0 && !absl::IsNotFound((*store)->Delete({id, -1}).status())) ++failures;
      }
      --writers_left;
    });
  }
  // Writers that follow the same protocol by hand and hold the counter a while before committing
  // or rolling back, so followers poll while numbers are taken but not yet committed.
  for (int w = 0; w < kRawWriters; ++w) {
    threads.emplace_back([&, w] {
      try {
        pqxx::connection connection(Uri());
        for (int round = 0; round < kRawRoundsPerWriter; ++round) {
          const int64_t first = (w + 10) * 100000 + round * 10 + 1;
          WriteRawItems(
              connection, {first, first + 1}, "",
              [](int64_t) { return std::vector<float>(kDim, 0.0f); },
              std::chrono::milliseconds(3), /*roll_back=*/round % 3 == 1);
        }
      } catch (const std::exception& e) {
        ADD_FAILURE() << e.what();
        ++failures;
      }
      --writers_left;
    });
  }
  // Followers: poll from the last seq seen; remember every high-water mark reached.
  std::vector<std::vector<int64_t>> seen(kFollowers);
  std::vector<std::vector<int64_t>> high_waters(kFollowers);
  for (int f = 0; f < kFollowers; ++f) {
    threads.emplace_back([&, f] {
      absl::StatusOr<std::unique_ptr<ItemStore>> store = Open();
      if (!store.ok()) {
        ++failures;
        return;
      }
      int64_t high_water = 0;
      for (;;) {
        const bool last_round = writers_left.load() == 0;
        const absl::Status walked =
            (*store)->ForEachChangeAfter(high_water, [&](const ItemChange& change) {
              seen[f].push_back(change.seq);
              high_water = change.seq;
              return absl::OkStatus();
            });
        if (!walked.ok()) ++failures;
        if (high_waters[f].empty() || high_waters[f].back() != high_water) {
          high_waters[f].push_back(high_water);
        }
        if (last_round) return;
        std::this_thread::sleep_for(std::chrono::microseconds(500));
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  ASSERT_EQ(failures.load(), 0);

  // No gaps: the committed changes (2 items per store batch, 2 per raw round not rolled back)
  // are numbered 1..N; the rolled-back transactions consumed no numbers.
  int raw_committed_rounds = 0;
  for (int round = 0; round < kRawRoundsPerWriter; ++round) raw_committed_rounds += round % 3 != 1;
  const int64_t committed =
      2 * kStoreWriters * kBatchesPerWriter + 2 * kRawWriters * raw_committed_rounds;
  std::vector<int64_t> all(committed);
  for (int64_t i = 0; i < committed; ++i) all[i] = i + 1;
  absl::StatusOr<std::unique_ptr<ItemStore>> store = Open();
  ASSERT_TRUE(store.ok()) << store.status();
  std::vector<int64_t> stored;  // items are never replaced here: one row per change
  for (const ItemChange& change : ChangesAfter(**store, 0)) stored.push_back(change.seq);
  EXPECT_EQ(stored, all);
  EXPECT_EQ(QueryOne("SELECT seq FROM hier_change_counter"), absl::StrCat(committed));
  // Nothing skipped: each follower saw every committed change once, in order, and a walk from
  // any high-water mark it reached gives exactly the changes after it.
  for (int f = 0; f < kFollowers; ++f) {
    SCOPED_TRACE(absl::StrCat("follower ", f));
    EXPECT_EQ(seen[f], stored);
    for (const int64_t high_water : high_waters[f]) {
      std::vector<int64_t> after;
      for (const int64_t seq : stored) {
        if (seq > high_water) after.push_back(seq);
      }
      std::vector<int64_t> walked;
      for (const ItemChange& change : ChangesAfter(**store, high_water)) {
        walked.push_back(change.seq);
      }
      EXPECT_EQ(walked, after) << "from high-water mark " << high_water;
    }
  }
}

TEST_F(PostgresItemStoreTest, CallsDuringAnOutageFailUnavailableAndLaterCallsSucceed) {
  absl::StatusOr<std::unique_ptr<ItemStore>> opened = Open();
  ASSERT_TRUE(opened.ok()) << opened.status();
  ItemStore& store = **opened;
  ASSERT_EQ(ValueOrFail(store.Upsert({MakeItem(1), MakeItem(2)})), 2);
  // Another store (replica) that keeps an idle connection and makes no call during the outage.
  absl::StatusOr<std::unique_ptr<ItemStore>> idle = Open();
  ASSERT_TRUE(idle.ok()) << idle.status();

  ASSERT_TRUE(server_->Stop().ok());
  const absl::Status upsert = store.Upsert({MakeItem(3)}).status();
  EXPECT_EQ(upsert.code(), absl::StatusCode::kUnavailable) << upsert;
  EXPECT_THAT(upsert.message(), Not(HasSubstr(server_->password())));
  EXPECT_EQ(store.Get(1).status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(store.count().status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(store.ForEachChangeAfter(0, [](const ItemChange&) { return absl::OkStatus(); }).code(),
            absl::StatusCode::kUnavailable);
  EXPECT_EQ(ItemStore::Open(Uri(), kDim).status().code(), absl::StatusCode::kUnavailable);

  ASSERT_TRUE(server_->Start().ok());
  // What was acknowledged before the crash is there; the failed upsert used no number.
  ExpectSameItem(ValueOrFail(store.Get(1)), MakeItem(1));
  EXPECT_EQ(ValueOrFail(store.Upsert({MakeItem(3)})), 3);
  EXPECT_EQ(ValueOrFail(store.count()), 3);
  // Its pooled connection died with the server; the first call after the restart still succeeds.
  EXPECT_EQ(ValueOrFail((*idle)->count()), 3);
  EXPECT_EQ(ValueOrFail((*idle)->Upsert({MakeItem(4)})), 4);
}

}  // namespace
}  // namespace hier::testing
