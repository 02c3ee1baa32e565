// A durable, searchable set of items: the store of record (item_store.h), the in-memory hyperbolic
// index derived from it (hyperbolic_index.h) and a snapshot of the index's candidate stage
// (candidates.snapshot, snapshot_file.h). Two modes, chosen by CollectionOptions::store:
//
// One machine (store.uri empty: the SQLite file `directory`/items.db). A change is written to the
// store first and acknowledged only once it is durable there, then applied to the index. Open
// reads every item from the store, takes the candidate stage from the snapshot when it is intact
// and was made for this kind, dimension and curvature, and replays the store's changes newer than
// the snapshot's high-water mark; otherwise it rebuilds the stage from the items and writes a
// fresh snapshot. So a crash at any point loses nothing acknowledged.
//
// A replica of a shared store (store.uri a PostgreSQL URI, postgres_item_store.h). Any number of
// Collections, in any processes, share one store; each is a replica: its index is built from the
// store at Open and then follows the store's change log. `directory` is optional and only holds
// this replica's candidate snapshot, whose high-water mark is this replica's applied seq (below).
//   - Read-your-writes: Upsert and Delete commit in the store (acknowledged only after COMMIT),
//     then apply the change to this replica's index before they return. Other replicas see it
//     once their follower applies it (the lag, ReplicationStatus).
//   - Following: a background thread applies every change after the replica's applied seq, in
//     seq order (ItemStore::ForEachChangeAfter: each item's latest state and the tombstones). It
//     wakes when the store announces a commit (ItemStore::Listen: LISTEN/NOTIFY on PostgreSQL) and
//     in any case every FollowOptions::poll_interval, so a lost wake-up only delays it. The
//     store numbers changes in commit order without gaps, so reading after the applied seq never
//     skips a change, and each pass ends with the applied seq at least the counter it read first.
//   - Ordering: an own write at seq S is applied right after its commit while the follower may be
//     applying another replica's newer change to the same item. The replica remembers the seq of
//     the state it holds for every item (and of recent deletions) and applies a change only when
//     its seq is newer, so an older state never overwrites a newer one, whichever thread comes
//     first; a deletion of an item the index does not hold is recorded, not an error. A deletion
//     is remembered until the applied seq passes it (then no older state can arrive: the
//     follower reads only newer changes and this replica's next write takes a newer number).
//   - Applied seq: every change numbered <= it is reflected in the index (or superseded by a
//     newer state there). An own write advances it only when it directly follows it; otherwise
//     the follower advances it when it reads past the write.
//   - Outages: searches never touch the store and keep working from memory; Upsert, Delete and
//     Get fail Unavailable (a write is never acknowledged without its COMMIT); the follower
//     retries with exponential backoff (FollowOptions) and catches up when the store is back (an
//     own write that succeeds ends the backoff at once).
//   - WriteSnapshot does not purge tombstones from a shared store: another replica that is behind
//     would miss the deletion. Purging a shared store (PurgeDeletionsUpTo below every replica's
//     applied seq) is the cluster's job, with the replicas' applied seqs in hand.
//   - The candidate kind is a setting of the shared store, as it is of a SQLite one.
//   - Memory: one (id, seq) pair per item beyond the index itself.
//   - Shards (CollectionOptions::shard): the index holds only the shard's items. Loading and
//     following read every change and skip the other shards' items; an own write commits every
//     item and applies only the shard's. Get reads the store, so it finds any item.
//
// Both modes keep each item's key and label in memory beside the index (Summaries), so answering a
// search never reads the store.
//
// Thread-safety: every method may be called from any thread. Searches (through index()) run
// concurrently with each other, with writes and with the follower; Upsert, Delete and
// WriteSnapshot are serialized. The destructor stops the follower and waits for it.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "index/hyperbolic_index.h"
#include "index/item_store.h"
#include "index/item_summaries.h"
#include "index/shard.h"

namespace hier::index {

// How a replica of a shared store follows it (see the header comment).
struct FollowOptions {
  // The longest the follower waits between two reads of the change log when no change is
  // announced (a lost announcement delays a change by at most this).
  std::chrono::milliseconds poll_interval{500};
  // After a failed read, the follower waits min_backoff, doubling per failure up to max_backoff.
  std::chrono::milliseconds min_backoff{100};
  std::chrono::milliseconds max_backoff{5000};
};

// A step of Open, reported as it ends: "snapshot_read", "store_read", "stage_restored" or
// "stage_rebuilt", "snapshot_written".
struct OpenStep {
  std::string name;
  double seconds = 0;
  std::string detail;  // what the step found, in words (e.g. why the snapshot was not used)
};

struct CollectionOptions {
  CollectionOptions() { index.candidates.kind.clear(); }

  // Created when missing. With the default store: required, it holds items.db and the snapshot.
  // With a shared store: optional, it holds only this replica's snapshot (none when empty).
  std::string directory;
  // Where the items live: uri empty for `directory`/items.db (SQLite, one machine); a PostgreSQL
  // URI to make this Collection a replica of that shared store (any other uri: a SQLite path).
  StoreLocation store;
  // For a replica of a shared store.
  FollowOptions follow;
  // For a replica of a shared store: the shard whose items its index holds (shard.h); writes of
  // other shards' items still commit to the store. Not whole needs a shared store.
  ShardSpec shard;
  // index.candidates.kind empty: the kind the directory was built with ("exact" for a new one);
  // another kind than the persisted one rebuilds the candidate stage and is persisted.
  IndexOptions index;
  // Called on Open's thread as each step of loading the index ends (for the server's log).
  std::function<void(const OpenStep&)> on_step;
};

// How Open found the directory.
struct OpenReport {
  int64_t items = 0;
  bool snapshot_used = false;
  std::string snapshot_problem;  // why the snapshot was not used, when there was one
  int64_t replayed_changes = 0;  // store changes newer than the snapshot
};

// Where a replica stands with the store it follows (Collection::replication). For the server's
// health and metrics; a one-machine Collection reports shared = false, caught up and reachable.
struct ReplicationStatus {
  bool shared = false;         // a replica of a shared store, following it
  int64_t applied_seq = 0;     // every change numbered <= this is reflected in the index
  int64_t latest_seq = 0;      // the store's latest change as this replica last learned it
  int64_t changes_behind = 0;  // latest_seq - applied_seq (numbers are gapless)
  // Seconds since this replica first learned of the oldest change it has not applied; 0 when
  // caught up.
  double lag_seconds = 0;
  bool caught_up = true;        // the first catch-up after Open is complete (caught_up())
  // The follower's last read of the change log succeeded and no write failed for want of the
  // store since.
  bool store_reachable = true;
  std::string last_error;       // the follower's last failure while unreachable, else empty
  int64_t follower_passes = 0;  // reads of the change log that succeeded
  int64_t changes_applied = 0;  // changes the follower applied
  // Changes the follower found already applied (or superseded), or of another shard's items.
  int64_t changes_skipped = 0;
};

class Collection {
 public:
  static absl::StatusOr<std::unique_ptr<Collection>> Open(const CollectionOptions& options);
  ~Collection();
  Collection(const Collection&) = delete;
  Collection& operator=(const Collection&) = delete;

  // Adds or replaces items; InvalidArgument naming items[i] and the field when a vector has the
  // wrong dimension or lies outside the ball (nothing is written then). Returns the store's
  // sequence number of the change once it is durable.
  absl::StatusOr<int64_t> Upsert(absl::Span<const ItemRecord> items);

  // Removes items; NotFound naming the first unknown id (nothing is removed then).
  absl::StatusOr<int64_t> Delete(absl::Span<const int64_t> ids);

  // The stored record; NotFound when there is no such item.
  absl::StatusOr<ItemRecord> Get(int64_t id) const;

  // Writes the candidate stage and the last change it covers to the snapshot file (atomically),
  // then, with the one-machine store, lets the store forget deletions the snapshot covers. A
  // replica of a shared store writes its applied seq as the high-water mark and purges nothing
  // (see the header comment); without a directory it has nothing to write and returns OK.
  absl::Status WriteSnapshot();

  // Where this replica stands (ReplicationStatus). Reads no store: cheap enough for every scrape.
  ReplicationStatus replication() const;
  // Every change numbered <= this is reflected in the index.
  int64_t applied_seq() const;
  // True once the replica has applied every change committed before Open returned (Open loads the
  // store, the follower's first pass covers what was committed during the load). Always true for
  // a one-machine Collection.
  bool caught_up() const;
  // Waits until applied_seq() >= seq; false when `timeout` passed first.
  bool WaitUntilApplied(int64_t seq, std::chrono::milliseconds timeout) const;

  // Walks the store's changes after `after_seq` (from 0: every item), as ItemStore does; items
  // written meanwhile are visited too or found by a later walk from the last seq seen.
  absl::Status ForEachChangeAfter(
      int64_t after_seq, const std::function<absl::Status(const ItemChange&)>& visit) const {
    return store_->ForEachChangeAfter(after_seq, visit);
  }
  // Seals the store of a replica (ItemStore::Seal): no write commits to it afterwards.
  absl::StatusOr<int64_t> Seal(bool sealed) { return store_->Seal(sealed); }
  // The source images live items refer to, as ItemStore::ImageDigests.
  absl::StatusOr<absl::flat_hash_set<std::string>> ImageDigests() const {
    return store_->ImageDigests();
  }

  // Searches go straight to the index.
  const HyperbolicIndex& index() const { return *index_; }
  // HyperbolicIndex::TuneForRecall.
  absl::StatusOr<RecallTuning> TuneSearch(const RecallTarget& target) {
    return index_->TuneForRecall(target);
  }
  // The key and label of each id the index holds (none for an id it does not), from memory: what
  // a search result shows, without reading the store (item_summaries.h).
  std::vector<std::optional<ItemSummary>> Summaries(absl::Span<const int64_t> ids) const {
    return summaries_.Get(ids);
  }
  // A page of the items the index holds, in id order (ItemSummaries::Page).
  std::vector<ListedItem> ListItems(std::optional<int64_t> after_id, int64_t limit,
                                    const std::string& label) const {
    return summaries_.Page(after_id, limit, label);
  }
  const OpenReport& open_report() const { return open_report_; }
  const std::string& kind() const { return kind_; }
  bool shared() const { return shared_; }
  const ShardSpec& shard() const { return shard_; }

 private:
  using Clock = std::chrono::steady_clock;

  Collection(std::string directory, std::string kind, bool shared, FollowOptions follow,
             ShardSpec shard, std::unique_ptr<ItemStore> store,
             std::unique_ptr<HyperbolicIndex> index);
  // Fills the index from the store and the snapshot (see the header comment).
  absl::Status Load(const std::function<void(const OpenStep&)>& on_step);
  std::string SnapshotPath() const;
  // The replica's write path: commit, then apply unless a newer state got there first.
  absl::StatusOr<int64_t> UpsertShared(absl::Span<const ItemRecord> items);
  absl::StatusOr<int64_t> DeleteShared(absl::Span<const int64_t> ids);

  // The follower thread: passes over the change log, wake-ups, backoff.
  void Follow();
  // One pass: reads the store's counter, then applies every change after the applied seq.
  absl::Status FollowOnce();
  // Applies `changes` (in seq order) that are newer than the state held for their item, then
  // raises the applied seq to `covered` (every change <= it has been read).
  void ApplyChanges(const std::vector<ItemChange>& changes, int64_t covered);
  // The seq of the state held for `id` (a live item or a remembered deletion); 0 when none.
  int64_t HeldSeq(int64_t id) const;
  // Records that the store's latest change is at least `seq` (for the lag).
  void NoteLatest(int64_t seq);
  void SetAppliedSeq(int64_t seq);
  // Forgets deletions at or below the applied seq; the caller holds writes_ (see the header).
  void ForgetCoveredDeletions();
  // Sleeps up to `duration`; returns early: true when the Collection is being destroyed, false
  // when a write found the store reachable again (NoteWriteOutcome).
  bool SleepUnlessStopping(std::chrono::milliseconds duration);
  // After an own write: Unavailable marks the store unreachable; success while it was marked so
  // ends the follower's backoff, so it catches up now (the replica counts as reachable again only
  // once the follower has read the change log: ReplicationStatus::store_reachable).
  void NoteWriteOutcome(const absl::Status& outcome);

  const std::string directory_;
  const std::string kind_;
  const bool shared_;
  const FollowOptions follow_;
  const ShardSpec shard_;
  const std::unique_ptr<ItemStore> store_;
  const std::unique_ptr<HyperbolicIndex> index_;
  // Changed with the index, by the same writes (put before an item enters the index, removed
  // after it left).
  ItemSummaries summaries_;
  OpenReport open_report_;
  // Serializes this Collection's writes, so the store's order is the index's order (one machine)
  // and no own write is between its commit and its apply while deletions are forgotten (shared).
  std::mutex writes_;
  // Keeps two snapshots from being written at once (an older one could land last).
  std::mutex snapshots_;

  // Shared store only. Guards what the index holds and everything the replica knows about the
  // store (the members below, down to stop_mutex_): taken around every index change, so the held
  // seqs match the index. The private methods above that read or write them run under it.
  // std::mutex, not absl::Mutex: ThreadSanitizer sees it (rw_mutex.h), and the condition
  // variable needs it; hence comments rather than ABSL_GUARDED_BY. Taken after writes_.
  mutable std::mutex apply_mutex_;
  // Signalled when the applied seq rises.
  mutable std::condition_variable applied_cv_;
  int64_t applied_seq_ = 0;
  int64_t latest_seq_ = 0;
  // Set after Open: the store's counter once the load was done; caught up once applied.
  int64_t open_target_seq_ = 0;
  bool caught_up_ = true;
  // The seq of the state the index holds, per live item.
  absl::flat_hash_map<int64_t, int64_t> item_seq_;
  // Deletions newer than the applied seq, per item (see the header comment).
  absl::flat_hash_map<int64_t, int64_t> deleted_seq_;
  // Changes known but not applied, as (latest seq learned, when): the front is the oldest.
  std::deque<std::pair<int64_t, Clock::time_point>> unapplied_;
  bool reachable_ = true;
  std::string last_error_;
  int64_t passes_ = 0;
  int64_t changes_applied_ = 0;
  int64_t changes_skipped_ = 0;

  // Stops or wakes the follower: stopping_ and wake_follower_ are guarded by stop_mutex_ and
  // signalled through stop_cv_.
  std::mutex stop_mutex_;
  std::condition_variable stop_cv_;
  bool stopping_ = false;
  bool wake_follower_ = false;
  std::thread follower_;
};

}  // namespace hier::index
