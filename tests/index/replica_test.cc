// Replicas of one shared PostgreSQL store (collection.h, "A replica of a shared store"): several
// Collections on one database follow its change log. Against a real server
// (tests/support/postgres_server.h, a fresh database per test); skipped without PostgreSQL.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <pqxx/pqxx>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "index/collection.h"
#include "index/item_store.h"
#include "tests/support/postgres_database_test.h"
#include "tests/support/postgres_server.h"

namespace hier::testing {
namespace {

using index::Collection;
using index::ItemChange;
using index::ItemRecord;
using index::ItemSummary;
using index::ItemStore;
using Clock = std::chrono::steady_clock;

constexpr int64_t kDim = 8;
constexpr double kC = 0.1;
// How long a change may take to reach every replica before a test fails.
constexpr std::chrono::seconds kReachBound{5};

// A point inside the ball, different for every `version` (an id, or an id's n-th state).
std::vector<float> PointFor(int64_t version) {
  std::mt19937 rng(static_cast<uint32_t>(version) * 7919u + 1u);
  std::uniform_real_distribution<float> uniform(-0.6f, 0.6f);
  std::vector<float> point(kDim);
  for (float& value : point) value = uniform(rng);
  return point;
}

ItemRecord Record(int64_t id, int64_t version) {
  ItemRecord record;
  record.id = id;
  record.key = absl::StrCat("images/", id, ".png");
  record.label = id % 3 == 0 ? "three" : "other";
  record.model_version = "run-1/best";
  record.vector = PointFor(version);
  return record;
}

std::vector<ItemRecord> Records(int64_t first, int64_t count) {
  std::vector<ItemRecord> records;
  for (int64_t id = first; id < first + count; ++id) records.push_back(Record(id, id));
  return records;
}

double Seconds(Clock::duration duration) { return std::chrono::duration<double>(duration).count(); }

// Polls `done` every millisecond until it holds or `bound` passes; returns the time it took, or
// a negative number when it never held.
template <typename Done>
double SecondsUntil(Done done, std::chrono::milliseconds bound = kReachBound) {
  const Clock::time_point start = Clock::now();
  while (!done()) {
    if (Clock::now() - start > bound) return -1;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return Seconds(Clock::now() - start);
}

class ReplicaTest : public PostgresDatabaseTest {
 protected:
  index::CollectionOptions Options(
      const std::string& directory = "",
      std::chrono::milliseconds poll_interval = std::chrono::milliseconds(500)) const {
    index::CollectionOptions options;
    options.directory = directory;
    options.store.uri = Uri();
    options.index.dim = kDim;
    options.index.c = kC;
    options.index.candidates.kind = "exact";
    options.follow.poll_interval = poll_interval;
    options.follow.min_backoff = std::chrono::milliseconds(50);
    options.follow.max_backoff = std::chrono::milliseconds(400);
    return options;
  }

  std::unique_ptr<Collection> OpenReplica(
      const std::string& directory = "",
      std::chrono::milliseconds poll_interval = std::chrono::milliseconds(500)) {
    absl::StatusOr<std::unique_ptr<Collection>> replica =
        Collection::Open(Options(directory, poll_interval));
    EXPECT_TRUE(replica.ok()) << replica.status();
    return replica.ok() ? *std::move(replica) : nullptr;
  }

  // Every live item of the store with its vector, read through a store object of its own.
  std::map<int64_t, std::vector<float>> StoreItems() const {
    std::map<int64_t, std::vector<float>> items;
    absl::StatusOr<std::unique_ptr<ItemStore>> store = ItemStore::Open(Uri(), kDim);
    EXPECT_TRUE(store.ok()) << store.status();
    if (!store.ok()) return items;
    const absl::Status walked = (*store)->ForEachChangeAfter(0, [&](const ItemChange& change) {
      if (change.deleted) {
        items.erase(change.item.id);
      } else {
        items[change.item.id] = change.item.vector;
      }
      return absl::OkStatus();
    });
    EXPECT_TRUE(walked.ok()) << walked;
    return items;
  }

  int64_t StoreLatestSeq() const {
    absl::StatusOr<std::unique_ptr<ItemStore>> store = ItemStore::Open(Uri(), kDim);
    EXPECT_TRUE(store.ok()) << store.status();
    if (!store.ok()) return -1;
    absl::StatusOr<int64_t> latest = (*store)->LatestSeq();
    EXPECT_TRUE(latest.ok()) << latest.status();
    return latest.ok() ? *latest : -1;
  }

  // The replica holds exactly the store's items, each with the store's latest vector: the item's
  // own vector finds it first at distance 0 (the exact scan).
  static void ExpectHolds(const Collection& replica,
                          const std::map<int64_t, std::vector<float>>& items,
                          const std::string& name) {
    SCOPED_TRACE(name);
    EXPECT_EQ(replica.index().size(), static_cast<int64_t>(items.size()));
    index::SearchOptions options;
    options.k = 1;
    int mismatches = 0;
    for (const auto& [id, vector] : items) {
      if (!replica.index().Contains(id)) {
        if (++mismatches <= 5) ADD_FAILURE() << "missing item " << id;
        continue;
      }
      absl::StatusOr<std::vector<index::Neighbour>> found = replica.index().Search(vector, options);
      ASSERT_TRUE(found.ok()) << found.status();
      ASSERT_EQ(found->size(), 1u);
      if ((*found)[0].id != id || (*found)[0].distance != 0.0) {
        if (++mismatches <= 5) {
          ADD_FAILURE() << "item " << id << " holds another vector: its latest finds item "
                        << (*found)[0].id << " at " << (*found)[0].distance;
        }
      }
    }
    EXPECT_EQ(mismatches, 0);
  }

  // Waits until every replica has applied the store's latest change.
  void WaitForAll(const std::vector<Collection*>& replicas) {
    const int64_t latest = StoreLatestSeq();
    for (size_t r = 0; r < replicas.size(); ++r) {
      EXPECT_TRUE(replicas[r]->WaitUntilApplied(latest, std::chrono::seconds(10)))
          << "replica " << r << " stuck at " << replicas[r]->applied_seq() << " of " << latest;
    }
  }
};

TEST_F(ReplicaTest, WritesThroughOneReplicaReachTheOthersAndSearchesAgree) {
  const std::string directory =
      (std::filesystem::path(::testing::TempDir()) / absl::StrCat("replica-", getpid())).string();
  std::filesystem::remove_all(directory);
  // Polling every 10 s: a change that arrives within the bound was announced (LISTEN/NOTIFY).
  constexpr std::chrono::milliseconds kRarely{10000};
  std::unique_ptr<Collection> a = OpenReplica(directory, kRarely);
  std::unique_ptr<Collection> b = OpenReplica("", kRarely);
  std::unique_ptr<Collection> c = OpenReplica("", kRarely);
  ASSERT_TRUE(a && b && c);
  EXPECT_TRUE(a->shared() && a->caught_up() && b->caught_up());

  // Items added through A: read-your-writes on A, found by B and C within the bound.
  double worst_lag = 0;
  for (int64_t batch = 0; batch < 10; ++batch) {
    const std::vector<ItemRecord> items = Records(batch * 30, 30);
    absl::StatusOr<int64_t> seq = a->Upsert(items);
    ASSERT_TRUE(seq.ok()) << seq.status();
    for (const ItemRecord& item : items) ASSERT_TRUE(a->index().Contains(item.id));
    const int64_t last_id = items.back().id;
    for (Collection* replica : {b.get(), c.get()}) {
      const double took = SecondsUntil([&] { return replica->index().Contains(last_id); });
      ASSERT_GE(took, 0) << "item " << last_id << " did not reach a replica within 5 s";
      worst_lag = std::max(worst_lag, took);
    }
  }
  // Deletions likewise.
  std::vector<int64_t> doomed;
  for (int64_t id = 0; id < 300; id += 7) doomed.push_back(id);
  ASSERT_TRUE(a->Delete(doomed).ok());
  for (const int64_t id : doomed) ASSERT_FALSE(a->index().Contains(id));
  for (Collection* replica : {b.get(), c.get()}) {
    const double took = SecondsUntil([&] {
      return std::none_of(doomed.begin(), doomed.end(),
                          [&](int64_t id) { return replica->index().Contains(id); });
    });
    ASSERT_GE(took, 0) << "a deletion did not reach a replica within 5 s";
    worst_lag = std::max(worst_lag, took);
  }
  std::printf("[ replica ] worst time for a write on A to be searchable on B and C: %.1f ms\n",
              worst_lag * 1e3);
  // The followers keep what results show (key, label) beside the index.
  const int64_t kept[] = {1, doomed[1]};
  for (Collection* replica : {b.get(), c.get()}) {
    const std::vector<std::optional<ItemSummary>> summaries = replica->Summaries(kept);
    ASSERT_TRUE(summaries[0].has_value());
    EXPECT_EQ(summaries[0]->key, Records(1, 1)[0].key);
    EXPECT_EQ(summaries[0]->label, Records(1, 1)[0].label);
    EXPECT_FALSE(summaries[1].has_value());
  }
  RecordProperty("worst_replication_ms", static_cast<int>(worst_lag * 1e3));
  EXPECT_LT(worst_lag, 2.0) << "changes arrived by polling, not by announcement";

  // Caught up, the three answer the same 50 queries identically (ids and distances).
  WaitForAll({a.get(), b.get(), c.get()});
  const std::map<int64_t, std::vector<float>> items = StoreItems();
  ExpectHolds(*a, items, "A");
  ExpectHolds(*b, items, "B");
  ExpectHolds(*c, items, "C");
  index::SearchOptions options;
  options.k = 10;
  for (int64_t q = 0; q < 50; ++q) {
    const std::vector<float> query = PointFor(1000000 + q);
    absl::StatusOr<std::vector<index::Neighbour>> want = a->index().Search(query, options);
    ASSERT_TRUE(want.ok()) << want.status();
    ASSERT_EQ(want->size(), 10u);
    for (Collection* replica : {b.get(), c.get()}) {
      absl::StatusOr<std::vector<index::Neighbour>> got = replica->index().Search(query, options);
      ASSERT_TRUE(got.ok()) << got.status();
      ASSERT_EQ(got->size(), want->size());
      for (size_t i = 0; i < want->size(); ++i) {
        EXPECT_EQ((*got)[i].id, (*want)[i].id) << "query " << q << " rank " << i;
        EXPECT_EQ((*got)[i].distance, (*want)[i].distance) << "query " << q << " rank " << i;
      }
    }
  }
  for (Collection* replica : {a.get(), b.get(), c.get()}) {
    const index::ReplicationStatus status = replica->replication();
    EXPECT_TRUE(status.shared);
    EXPECT_TRUE(status.store_reachable);
    EXPECT_TRUE(status.caught_up);
    EXPECT_EQ(status.changes_behind, 0);
    EXPECT_EQ(status.lag_seconds, 0);
    EXPECT_EQ(status.applied_seq, StoreLatestSeq());
  }

  // A replica's snapshot records its applied seq and purges nothing from the shared store.
  ASSERT_TRUE(a->WriteSnapshot().ok());
  absl::StatusOr<std::unique_ptr<ItemStore>> store = ItemStore::Open(Uri(), kDim);
  ASSERT_TRUE(store.ok()) << store.status();
  int64_t tombstones = 0;
  ASSERT_TRUE((*store)
                  ->ForEachChangeAfter(0,
                                       [&](const ItemChange& change) {
                                         tombstones += change.deleted;
                                         return absl::OkStatus();
                                       })
                  .ok());
  EXPECT_EQ(tombstones, static_cast<int64_t>(doomed.size()));
  a.reset();
  std::unique_ptr<Collection> reopened = OpenReplica(directory);
  ASSERT_TRUE(reopened);
  ExpectHolds(*reopened, items, "A reopened");
  std::filesystem::remove_all(directory);
}

// Writers on two replicas, plus transactions that follow the store's numbering by hand (some
// rolled back, none announced: only polling finds them). No replica may miss or double-apply a
// change: each ends with exactly the store's items and their latest vectors.
TEST_F(ReplicaTest, ConcurrentWritersAndRolledBackTransactionsAreAppliedExactlyOnce) {
  std::unique_ptr<Collection> a = OpenReplica();
  std::unique_ptr<Collection> b = OpenReplica();
  std::unique_ptr<Collection> c = OpenReplica();  // writes nothing
  ASSERT_TRUE(a && b && c);
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int w = 0; w < 2; ++w) {
    Collection* replica = w == 0 ? a.get() : b.get();
    threads.emplace_back([&, replica, w] {
      std::mt19937 rng(w + 1);
      for (int round = 0; round < 40; ++round) {
        // Own ids, plus ids 0..49 that both writers update.
        std::vector<ItemRecord> items;
        for (int k = 0; k < 4; ++k) {
          const int64_t id = (w + 1) * 10000 + round * 4 + k;
          items.push_back(Record(id, id));
        }
        const int64_t shared_id = rng() % 50;
        items.push_back(Record(shared_id, (w + 1) * 1000000 + round));
        if (!replica->Upsert(items).ok()) ++failures;
        if (round % 5 == 4) {
          const int64_t own = (w + 1) * 10000 + (round - 2) * 4;
          if (!replica->Delete({own}).ok()) ++failures;
        }
      }
    });
  }
  threads.emplace_back([&] {
    try {
      pqxx::connection connection(Uri());
      for (int round = 0; round < 20; ++round) {
        const int64_t first = 50000 + round * 2 + 1;
        WriteRawItems(connection, {first, first + 1}, "other", PointFor,
                      std::chrono::milliseconds(5), /*roll_back=*/round % 3 == 1);
      }
    } catch (const std::exception& e) {
      ADD_FAILURE() << e.what();
      ++failures;
    }
  });
  for (std::thread& thread : threads) thread.join();
  ASSERT_EQ(failures.load(), 0);

  WaitForAll({a.get(), b.get(), c.get()});
  const std::map<int64_t, std::vector<float>> items = StoreItems();
  ASSERT_GT(items.size(), 300u);
  ExpectHolds(*a, items, "A");
  ExpectHolds(*b, items, "B");
  ExpectHolds(*c, items, "C");
  // C only followed: it applied each change at most once.
  const index::ReplicationStatus status = c->replication();
  EXPECT_LE(status.changes_applied, status.applied_seq);
  EXPECT_EQ(status.changes_behind, 0);
}

// The own-write race: writers on two replicas update the same few ids over and over, so each
// replica's own write at S meets the follower applying the other replica's S+1. Every replica
// must end with the store's latest vector (or deletion) per id.
TEST_F(ReplicaTest, AnOwnWriteNeverOverwritesANewerChangeFromTheFollower) {
  std::unique_ptr<Collection> a = OpenReplica();
  std::unique_ptr<Collection> b = OpenReplica();
  ASSERT_TRUE(a && b);
  constexpr int64_t kIds = 8;
  std::atomic<int64_t> version{1};
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int w = 0; w < 4; ++w) {
    Collection* replica = w % 2 == 0 ? a.get() : b.get();
    threads.emplace_back([&, replica, w] {
      std::mt19937 rng(100 + w);
      for (int round = 0; round < 120; ++round) {
        const int64_t id = rng() % kIds;
        if (round % 10 == 9) {
          const absl::Status deleted = replica->Delete({id}).status();
          if (!deleted.ok() && !absl::IsNotFound(deleted)) ++failures;
        } else if (!replica->Upsert({Record(id, 5000000 + version++)}).ok()) {
          ++failures;
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  ASSERT_EQ(failures.load(), 0);
  WaitForAll({a.get(), b.get()});
  const std::map<int64_t, std::vector<float>> items = StoreItems();
  ExpectHolds(*a, items, "A");
  ExpectHolds(*b, items, "B");
  EXPECT_GT(a->replication().changes_skipped + b->replication().changes_skipped, 0)
      << "the follower never met an own write: the race was not exercised";
}

// PostgreSQL crashes (pg_ctl stop -m immediate) under search and write load: searches never fail,
// writes during the outage fail Unavailable, and after the restart every acknowledged write is on
// every replica.
TEST_F(ReplicaTest, AnOutageKeepsSearchesWorkingAndLosesNoAcknowledgedWrite) {
  std::unique_ptr<Collection> a = OpenReplica();
  std::unique_ptr<Collection> b = OpenReplica();
  ASSERT_TRUE(a && b);
  ASSERT_TRUE(a->Upsert(Records(0, 100)).ok());
  ASSERT_TRUE(b->WaitUntilApplied(a->applied_seq(), std::chrono::seconds(5)));

  std::atomic<bool> done{false};
  std::atomic<int> search_failures{0};
  std::atomic<int64_t> searches{0};
  std::vector<std::thread> threads;
  for (Collection* replica : {a.get(), b.get()}) {
    threads.emplace_back([&, replica] {
      index::SearchOptions options;
      options.k = 5;
      for (int64_t q = 0; !done; ++q) {
        if (!replica->index().Search(PointFor(2000000 + q % 100), options).ok()) ++search_failures;
        ++searches;
        std::this_thread::sleep_for(std::chrono::microseconds(200));
      }
    });
  }
  std::mutex acknowledged_mutex;
  std::vector<int64_t> acknowledged;
  std::atomic<int> unavailable{0};
  std::atomic<int> other_errors{0};
  std::atomic<bool> outage{false};
  std::atomic<int> failed_in_outage{0};
  std::atomic<int> tried_in_outage{0};
  threads.emplace_back([&] {
    for (int64_t id = 1000; !done; ++id) {
      const bool during = outage;
      const absl::Status written = a->Upsert({Record(id, id)}).status();
      if (during && outage) {
        ++tried_in_outage;
        failed_in_outage += !written.ok();
      }
      if (written.ok()) {
        std::lock_guard<std::mutex> lock(acknowledged_mutex);
        acknowledged.push_back(id);
      } else if (absl::IsUnavailable(written)) {
        ++unavailable;
      } else {
        ++other_errors;
        ADD_FAILURE() << written;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
  });

  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  ASSERT_TRUE(server_->Stop().ok());
  outage = true;
  // B notices: its follower finds the store unreachable; searches keep going meanwhile.
  EXPECT_GE(SecondsUntil([&] { return !b->replication().store_reachable; }), 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  outage = false;
  const absl::Status started = server_->Start();
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  done = true;
  for (std::thread& thread : threads) thread.join();
  ASSERT_TRUE(started.ok()) << started;

  EXPECT_EQ(search_failures.load(), 0) << "of " << searches.load() << " searches";
  EXPECT_GT(tried_in_outage.load(), 0);
  EXPECT_EQ(failed_in_outage.load(), tried_in_outage.load()) << "a write was acknowledged while "
                                                                "PostgreSQL was down";
  EXPECT_GT(unavailable.load(), 0);
  EXPECT_EQ(other_errors.load(), 0);
  ASSERT_GT(acknowledged.size(), 10u);
  // Both catch up after the restart and hold every acknowledged write.
  const double took = SecondsUntil(
      [&] {
        return b->replication().store_reachable && b->index().Contains(acknowledged.back()) &&
               a->replication().store_reachable;
      },
      std::chrono::seconds(10));
  EXPECT_GE(took, 0);
  std::printf("[ replica ] B caught up %.1f ms after writes stopped (300 ms after the restart)\n",
              took * 1e3);
  WaitForAll({a.get(), b.get()});
  for (Collection* replica : {a.get(), b.get()}) {
    for (const int64_t id : acknowledged) ASSERT_TRUE(replica->index().Contains(id)) << id;
  }
  const std::map<int64_t, std::vector<float>> items = StoreItems();
  ExpectHolds(*a, items, "A");
  ExpectHolds(*b, items, "B");
}

// A replica opened over a database that already holds items, while another keeps writing: once
// caught_up() says so, it holds everything acknowledged before it was opened.
TEST_F(ReplicaTest, AReplicaOpenedOverExistingItemsIsCaughtUpOnlyOnceItHoldsThem) {
  std::unique_ptr<Collection> a = OpenReplica();
  ASSERT_TRUE(a);
  ASSERT_TRUE(a->Upsert(Records(0, 2000)).ok());
  std::atomic<bool> done{false};
  std::atomic<int64_t> last_acknowledged{-1};
  std::thread writer([&] {
    for (int64_t id = 10000; !done; ++id) {
      if (a->Upsert({Record(id, id)}).ok()) last_acknowledged = id;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  const int64_t acknowledged_before_open = last_acknowledged;
  std::unique_ptr<Collection> d = OpenReplica();
  ASSERT_TRUE(d);
  EXPECT_GE(d->open_report().items, 2000);
  const double took = SecondsUntil([&] { return d->caught_up(); });
  EXPECT_GE(took, 0);
  for (int64_t id = 0; id < 2000; ++id) ASSERT_TRUE(d->index().Contains(id)) << id;
  for (int64_t id = 10000; id <= acknowledged_before_open; ++id) {
    ASSERT_TRUE(d->index().Contains(id)) << id;
  }
  done = true;
  writer.join();
  WaitForAll({a.get(), d.get()});
  ExpectHolds(*d, StoreItems(), "D");
}

}  // namespace
}  // namespace hier::testing
