// The store of record for the index's items: a SQLite database that keeps every item's fields and
// Poincaré vector durably, numbers each change with a sequence number that is never reused, and
// replays the changes after a sequence number, so an index rebuilt from a snapshot catches up.
//
// Durability: WAL journal with synchronous=FULL, so a change is on disk once its call returns.
// Thread-safety: every method may be called from many threads at once; one connection serves them
// all, one call at a time. ForEachChangeAfter runs `visit` without holding the store's lock, so
// `visit` may call the store.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "index/rw_mutex.h"

namespace hier::index {

// One item as the store of record holds it.
struct ItemRecord {
  int64_t id = 0;
  std::string key;            // the item's key or uri (source image)
  std::string label;          // may be empty
  std::string attributes;     // free-form text (JSON by convention), may be empty
  std::string model_version;  // the model that made `vector`
  std::vector<float> vector;  // Poincaré coordinates, dim floats
  std::string image_sha256;   // the stored source image (server blob folder), may be empty
};

// One change after a sequence number: the item's latest state, or a deletion (then only
// item.id is meaningful).
struct ItemChange {
  int64_t seq = 0;
  bool deleted = false;
  ItemRecord item;
};

class ItemStore {
 public:
  // Opens or creates the database at `path`. A new database records `dim`; an existing one with
  // another dim fails with FailedPrecondition naming both. SQLite's errors come back with the path
  // and SQLite's message: DataLoss for a corrupt file or one that is not a database, Unavailable
  // for a busy, unreadable or full one, Internal otherwise.
  static absl::StatusOr<std::unique_ptr<ItemStore>> Open(const std::string& path, int64_t dim);
  ~ItemStore();

  // Inserts or replaces items in one transaction and returns the sequence number of the last
  // change (last_seq() when `items` is empty). InvalidArgument naming "items[i].vector" when a
  // vector does not hold dim finite floats (nothing written then). An id given twice keeps its
  // last record.
  absl::StatusOr<int64_t> Upsert(absl::Span<const ItemRecord> items);

  // Deletes items in one transaction; NotFound "ids: no item has id N" for the first unknown id
  // (nothing deleted). An id given twice is deleted once. Returns the sequence number of the last
  // change (last_seq() when `ids` is empty).
  absl::StatusOr<int64_t> Delete(absl::Span<const int64_t> ids);

  // NotFound "id: no item has id N" when absent (or deleted).
  absl::StatusOr<ItemRecord> Get(int64_t id) const;

  // Calls `visit` for every change with seq > after_seq, in increasing seq order: each live item
  // whose latest change is newer, and each deletion newer than after_seq that has not been purged.
  // Changes committed during the walk are visited when newer than the last one visited. Stops at
  // and returns the first non-OK status `visit` returns. A stored vector of the wrong byte length
  // comes back as DataLoss naming the id.
  absl::Status ForEachChangeAfter(
      int64_t after_seq, const std::function<absl::Status(const ItemChange&)>& visit) const;

  // Forgets deletions with seq <= `seq` (a snapshot covering them has been written). Later changes
  // still get numbers above every number handed out before.
  absl::Status PurgeDeletionsUpTo(int64_t seq);

  // Small persistent key/value settings (e.g. which candidate index was chosen).
  absl::Status SetSetting(const std::string& key, const std::string& value);
  absl::StatusOr<std::optional<std::string>> GetSetting(const std::string& key) const;

  int64_t dim() const { return dim_; }
  // The number of the last change this connection opened with or made; 0 for a new store.
  int64_t last_seq() const;
  // Live (not deleted) items.
  absl::StatusOr<int64_t> count() const;
  // The distinct image_sha256 values of live items (the empty one left out).
  absl::StatusOr<absl::flat_hash_set<std::string>> ImageDigests() const;

 private:
  // The SQLite handle, its prepared statements and the SQL behind each method.
  class Connection;

  ItemStore(int64_t dim, std::unique_ptr<Connection> connection, int64_t last_seq);

  const int64_t dim_;
  // Guards the connection (a SQLite handle and its statements serve one call at a time) and the
  // cached last sequence number.
  mutable RwMutex mutex_;
  const std::unique_ptr<Connection> connection_ ABSL_PT_GUARDED_BY(mutex_);
  int64_t last_seq_ ABSL_GUARDED_BY(mutex_);
};

}  // namespace hier::index
