// The store of record for the index's items: the interface every backend implements. A store keeps
// every item's fields and Poincaré vector durably, numbers each change with a sequence number that
// is never reused, and replays the changes after a sequence number, so an index rebuilt from a
// snapshot (or a replica following the store) catches up.
//
// Backends (ItemStore::Open picks one from the location):
//   - SqliteItemStore (sqlite_item_store.h): a file, for one machine; the default.
//   - PostgresItemStore (postgres_item_store.h): a PostgreSQL database shared by replicas.
// Both pass the same test suite (tests/index/item_store_test.cc).
//
// Durability: a change is durable in the backend once its call returns OK.
// Thread-safety: every method of every backend may be called from many threads at once.
// ForEachChangeAfter runs `visit` without holding any of the store's locks, so `visit` may call
// the store.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

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

// Where the store lives and how to reach it.
struct StoreLocation {
  // A filesystem path (SQLite), or a PostgreSQL URI:
  // postgresql://[user[:password]@]host[:port]/database[?param=value&...] (postgres:// too; the
  // parameters are libpq's, e.g. sslmode, connect_timeout, options=-csearch_path%3Dhier).
  std::string uri;
  // PostgreSQL only. When not empty, used instead of a password in the URI (e.g. read from a
  // --store-password-file); with neither, libpq's password file (PGPASSFILE, ~/.pgpass) applies.
  // Never written into a status message.
  std::string password;
  // PostgreSQL only: the most connections this store opens (one per concurrent call).
  int max_connections = 4;
  // PostgreSQL only: the schema the store lives in, created when missing (one database can hold
  // a cluster's galleries side by side, one per schema); empty: the URI's own search_path.
  std::string schema;
};

// True when `uri` names a PostgreSQL database (postgresql:// or postgres://).
bool IsPostgresUri(const std::string& uri);
// Unimplemented: what opening a PostgreSQL store answers in a build without PostgreSQL support.
absl::Status NoPostgresSupport();

// For the backends: sets item->vector from a stored vector column (`dim` IEEE-754 float32 values,
// little-endian); DataLoss naming `where` and the item's id when the column holds another number
// of bytes. The values are not checked: the index refuses what does not lie in its ball.
absl::Status DecodeStoredVector(absl::string_view bytes, int64_t dim, absl::string_view where,
                                ItemRecord* item);

// Wakes a follower of a shared store when other writers commit changes (ItemStore::Listen).
// Wake-ups are hints: one may be lost (e.g. while the connection is re-established), so a
// follower also polls. Thread-safety: one thread at a time; owned by the follower.
class ChangeListener {
 public:
  virtual ~ChangeListener() = default;
  // Waits up to `timeout` for a change to be committed to the store; returns whether one was
  // announced meanwhile (announcements received since the last call count). Unavailable when the
  // listening connection broke: this listener is spent, ask the store for a new one.
  virtual absl::StatusOr<bool> Wait(std::chrono::milliseconds timeout) = 0;
};

class ItemStore {
 public:
  // The largest dim a store accepts.
  static constexpr int64_t kMaxDim = 65536;

  // Opens or creates the store at `location`: a PostgreSQL URI opens a PostgresItemStore, anything
  // else is a path to a SqliteItemStore. A new store records `dim`; an existing one with another
  // dim fails with FailedPrecondition naming both. InvalidArgument for a dim outside
  // [1, kMaxDim]. Each backend documents how its errors map to status codes.
  static absl::StatusOr<std::unique_ptr<ItemStore>> Open(const StoreLocation& location,
                                                         int64_t dim);
  // As above with only a path or URI.
  static absl::StatusOr<std::unique_ptr<ItemStore>> Open(const std::string& location, int64_t dim);

  virtual ~ItemStore() = default;

  // Inserts or replaces items in one transaction and returns the sequence number of the last
  // change (last_seq() when `items` is empty). InvalidArgument naming "items[i].vector" when a
  // vector does not hold dim finite floats (nothing written then). An id given twice keeps its
  // last record.
  virtual absl::StatusOr<int64_t> Upsert(absl::Span<const ItemRecord> items) = 0;

  // Deletes items in one transaction; NotFound "ids: no item has id N" for the first unknown id
  // (nothing deleted). An id given twice is deleted once. Returns the sequence number of the last
  // change (last_seq() when `ids` is empty).
  virtual absl::StatusOr<int64_t> Delete(absl::Span<const int64_t> ids) = 0;

  // NotFound "id: no item has id N" when absent (or deleted).
  virtual absl::StatusOr<ItemRecord> Get(int64_t id) const = 0;

  // Calls `visit` for every change with seq > after_seq, in increasing seq order: each live item
  // whose latest change is newer, and each deletion newer than after_seq that has not been purged.
  // Changes committed during the walk are visited when newer than the last one visited. Stops at
  // and returns the first non-OK status `visit` returns. A stored vector of the wrong byte length
  // comes back as DataLoss naming the id.
  virtual absl::Status ForEachChangeAfter(
      int64_t after_seq, const std::function<absl::Status(const ItemChange&)>& visit) const = 0;

  // Forgets deletions with seq <= `seq` (a snapshot covering them has been written). Later changes
  // still get numbers above every number handed out before.
  virtual absl::Status PurgeDeletionsUpTo(int64_t seq) = 0;

  // Small persistent key/value settings (e.g. which candidate index was chosen).
  virtual absl::Status SetSetting(const std::string& key, const std::string& value) = 0;
  virtual absl::StatusOr<std::optional<std::string>> GetSetting(const std::string& key) const = 0;

  virtual int64_t dim() const = 0;
  // The number of the last change this store object opened with or made; 0 for a new store.
  // (Changes other writers make to a shared store later are not counted.)
  virtual int64_t last_seq() const = 0;
  // The number of the last change committed to the store by anyone (a shared store's other
  // writers included), read from the store: the high-water mark a follower is behind of. A
  // backend with a single writer (SQLite) returns last_seq().
  virtual absl::StatusOr<int64_t> LatestSeq() const { return last_seq(); }
  // A listener that wakes when a change is committed (ChangeListener). Unimplemented for a backend
  // without announcements (SQLite: there is nothing to follow); a follower then only polls.
  virtual absl::StatusOr<std::unique_ptr<ChangeListener>> Listen() const {
    return absl::UnimplementedError("this store announces no changes");
  }
  // A store shared by replicas, when a model swap replaces it with another: `sealed` true makes
  // every later Upsert and Delete fail Aborted (a write in progress finishes first); false lifts
  // that (the swap failed). Returns the last change's number, final while sealed. Unimplemented
  // for a store of one server, whose swaps hold writes back in the server instead.
  virtual absl::StatusOr<int64_t> Seal(bool sealed) {
    return absl::UnimplementedError("a store of one server is never sealed");
  }
  // Live (not deleted) items.
  virtual absl::StatusOr<int64_t> count() const = 0;
  // The distinct image_sha256 values of live items (the empty one left out).
  virtual absl::StatusOr<absl::flat_hash_set<std::string>> ImageDigests() const = 0;

 protected:
  ItemStore() = default;

  // For the backends: InvalidArgument unless 1 <= dim <= kMaxDim.
  static absl::Status CheckDim(int64_t dim);
  // For the backends: InvalidArgument naming "items[i].vector" unless every vector holds `dim`
  // finite floats.
  static absl::Status CheckVectors(absl::Span<const ItemRecord> items, int64_t dim);
  // For the backends: the paging loop of ForEachChangeAfter. `read_page(cursor, limit)` returns up
  // to `limit` changes with seq > cursor in seq order; `visit` runs between pages, when the
  // backend holds no lock.
  static absl::Status WalkChanges(
      int64_t after_seq, int64_t page_size,
      const std::function<absl::StatusOr<std::vector<ItemChange>>(int64_t cursor, int64_t limit)>&
          read_page,
      const std::function<absl::Status(const ItemChange&)>& visit);
};

}  // namespace hier::index
