// The shared store of record (ItemStore on PostgreSQL): items, the change counter and settings in
// one database that every replica of a cluster writes to and follows. Same contract as
// SqliteItemStore; what a cluster needs on top is the change numbering below.
//
// Change numbering. Every write transaction takes its sequence numbers from one counter row:
//   UPDATE hier_change_counter SET seq = seq + n RETURNING seq - n
// as its first statement, and writes its rows numbered base+1 .. base+n. The row lock that UPDATE
// takes is held until the transaction ends, so concurrent writers (threads, processes, replicas)
// serialise on it:
//   - numbers are handed out in commit order: a writer gets its numbers only after the previous
//     holder committed (or rolled back), so no transaction with higher numbers can commit first;
//   - a rolled-back transaction consumes none (its UPDATE of the counter is undone), so the
//     counter has no gaps from failures;
//   - the holder becomes visible (ProcArray) before its row lock is released, so a reader whose
//     snapshot shows a change numbered S also shows every committed change numbered <= S.
// A replica that has applied every change up to S can therefore ask for seq > S and never skip
// one (ForEachChangeAfter, tests/index/postgres_item_store_test.cc
// ConcurrentWritersWithRollbacksLeaveNoGapsForFollowers). A PostgreSQL SEQUENCE would not do:
// nextval() is neither rolled back nor ordered by commit. The price is that writes across all
// replicas are serialised for the length of one write transaction (the same as SQLite, where a
// writer holds the database lock). Deletions stay as tombstones until PurgeDeletionsUpTo, which a
// cluster may call only below every replica's high-water mark.
//
// Following. Every write transaction also runs pg_notify('hier_changes', '<its last number>'),
// which PostgreSQL delivers to the listeners of the database at COMMIT (never for a rolled-back
// transaction). Listen() opens a connection of its own that LISTENs on hier_changes; followers
// treat a wake-up as a hint and read the changes with ForEachChangeAfter (the channel is per
// database, so stores in other schemas of the same database wake it too, harmlessly). LatestSeq()
// reads the counter row, a plain MVCC read that never waits for a writer holding it: the last
// number a committed transaction took.
//
// Schema (created at first open, in one transaction under pg_advisory_xact_lock so replicas
// starting together create it once), in the connection's current schema (search_path):
//   hier_meta (key, value)            application = 'hier-serve', schema_version, dim
//   hier_change_counter (seq)         one row, the last number handed out
//   hier_items (id, seq, deleted, key, label, attributes, model_version, vector bytea (dim
//               float32 little-endian), image_sha256)   seq UNIQUE, tombstones: deleted = true
//   hier_settings (key, value)
//   hier_images (sha256, bytes, stored_at)   source images, content-addressed (written by the
//               server: server/storage/postgres_blob_store.h)
//   hier_jobs (id, ..., owner, lease_until, resume, cancel_requested)   training jobs and their
//               runners' leases (server/training/postgres_job_store.h)
//   hier_members (name, address, shard_index, shard_count, model_version, previous_version,
//               serving, items, heartbeat_at)   the replicas that serve, with their heartbeats
//               (server/storage/cluster_record.h)
// An older schema is migrated when opened, in the same transaction. Opening a database whose hier_meta names another application, or whose schema holds tables but
// no hier_meta (another application's database), is FailedPrecondition and writes nothing; so is
// a schema_version newer than kSchemaVersion ("schema version N is newer than this binary's M").
//
// Durability: a call returns OK only after COMMIT returned, and with synchronous_commit = on (the
// server's default; this store never lowers it) COMMIT returns once the commit record is flushed
// (and, with synchronous standbys configured, replicated as the server is told).
//
// Errors are the pool's (postgres_pool.h: the URI with the password replaced by "***", libpq's
// message, Unavailable for outages, FailedPrecondition for what needs an operator). Text fields
// cannot hold NUL bytes in PostgreSQL: such an item is InvalidArgument naming the field.
//
// Thread-safety: every method may be called from many threads at once, on a pool of at most
// max_connections connections (postgres_pool.h); a call that finds a pooled connection broken by a
// server restart retries once on a fresh one. ForEachChangeAfter holds a connection only while
// reading a page, never while `visit` runs.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "index/item_store.h"
#include "index/postgres_pool.h"
#include "index/rw_mutex.h"

namespace hier::index {

class PostgresItemStore final : public ItemStore {
 public:
  // The schema this binary creates and reads.
  // Version 2 added hier_images (the source images, server/storage/postgres_blob_store.h),
  // version 3 hier_jobs (training jobs, server/training/postgres_job_store.h).
  static constexpr int64_t kSchemaVersion = 4;
  // The channel write transactions NOTIFY at commit, with their last sequence number as payload.
  static constexpr char kChangeChannel[] = "hier_changes";

  // Connects, then creates the schema in an empty database or checks an existing one's
  // application, schema version and dim (see the header comment).
  static absl::StatusOr<std::unique_ptr<PostgresItemStore>> Open(
      const PostgresStoreOptions& options, int64_t dim);
  ~PostgresItemStore() override;

  absl::StatusOr<int64_t> Upsert(absl::Span<const ItemRecord> items) override;
  absl::StatusOr<int64_t> Delete(absl::Span<const int64_t> ids) override;
  absl::StatusOr<ItemRecord> Get(int64_t id) const override;
  absl::Status ForEachChangeAfter(
      int64_t after_seq,
      const std::function<absl::Status(const ItemChange&)>& visit) const override;
  absl::Status PurgeDeletionsUpTo(int64_t seq) override;
  absl::Status SetSetting(const std::string& key, const std::string& value) override;
  absl::StatusOr<std::optional<std::string>> GetSetting(const std::string& key) const override;
  int64_t dim() const override { return dim_; }
  int64_t last_seq() const override;
  absl::StatusOr<int64_t> LatestSeq() const override;
  absl::StatusOr<int64_t> Seal(bool sealed) override;
  // A listener on its own connection (not one of the pool's); it must not outlive this store.
  absl::StatusOr<std::unique_ptr<ChangeListener>> Listen() const override;
  absl::StatusOr<int64_t> count() const override;
  absl::StatusOr<absl::flat_hash_set<std::string>> ImageDigests() const override;

  // The URI as status messages name the store: any password replaced by "***".
  const std::string& display_uri() const;

 private:
  // ChangeListener on a connection that LISTENs on kChangeChannel.
  class Listener;

  PostgresItemStore(int64_t dim, std::unique_ptr<PostgresPool> pool, int64_t last_seq);
  // Raises the cached last sequence number to `seq` (concurrent writes return out of order).
  void NoteSeq(int64_t seq) const;

  const int64_t dim_;
  const std::unique_ptr<PostgresPool> pool_;
  mutable RwMutex seq_mutex_;
  // The highest sequence number this object opened with or handed out.
  mutable int64_t last_seq_ ABSL_GUARDED_BY(seq_mutex_);
};

}  // namespace hier::index
