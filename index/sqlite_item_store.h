// The embedded store of record (ItemStore on SQLite): one database file that keeps every item, the
// change counter and the settings, for a server on one machine. The default backend.
//
// Durability: WAL journal with synchronous=FULL, so a change is on disk once its call returns.
// Errors come back with the path and SQLite's message: DataLoss for a corrupt file or one that is
// not a database, Unavailable for a busy, unreadable or full one, FailedPrecondition for another
// application's SQLite database or a schema version this build does not read, Internal otherwise.
// Thread-safety: every method may be called from many threads at once; one connection serves them
// all, one call at a time. ForEachChangeAfter runs `visit` without holding the store's lock, so
// `visit` may call the store.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "index/item_store.h"
#include "index/rw_mutex.h"

namespace hier::index {

class SqliteItemStore final : public ItemStore {
 public:
  // Opens or creates the database file at `path` (see ItemStore::Open); a version 1 store is
  // upgraded in place.
  static absl::StatusOr<std::unique_ptr<SqliteItemStore>> Open(const std::string& path,
                                                               int64_t dim);
  ~SqliteItemStore() override;

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
  absl::StatusOr<int64_t> count() const override;
  absl::StatusOr<absl::flat_hash_set<std::string>> ImageDigests() const override;

 private:
  // The SQLite handle, its prepared statements and the SQL behind each method.
  class Connection;

  SqliteItemStore(int64_t dim, std::unique_ptr<Connection> connection, int64_t last_seq);

  const int64_t dim_;
  // Guards the connection (a SQLite handle and its statements serve one call at a time) and the
  // cached last sequence number.
  mutable RwMutex mutex_;
  const std::unique_ptr<Connection> connection_ ABSL_PT_GUARDED_BY(mutex_);
  int64_t last_seq_ ABSL_GUARDED_BY(mutex_);
};

}  // namespace hier::index
