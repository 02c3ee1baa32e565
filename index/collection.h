// A durable, searchable set of items in one directory: the SQLite store of record (items.db,
// item_store.h), the in-memory hyperbolic index derived from it (hyperbolic_index.h) and a
// snapshot of the index's candidate stage (candidates.snapshot, snapshot_file.h).
//
// A change is written to the store first and acknowledged only once it is durable there, then
// applied to the index. Open reads every item from the store, takes the candidate stage from the
// snapshot when it is intact and was made for this kind, dimension and curvature, and replays the
// store's changes newer than the snapshot's high-water mark; otherwise it rebuilds the stage from
// the items and writes a fresh snapshot. So a crash at any point loses nothing acknowledged.
//
// Thread-safety: every method may be called from any thread. Searches (through index()) run
// concurrently with each other and with writes; Upsert, Delete and WriteSnapshot are serialized.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "index/hyperbolic_index.h"
#include "index/item_store.h"

namespace hier::index {

struct CollectionOptions {
  CollectionOptions() { index.candidates.kind.clear(); }

  std::string directory;  // created when missing
  // index.candidates.kind empty: the kind the directory was built with ("exact" for a new one);
  // another kind than the persisted one rebuilds the candidate stage and is persisted.
  IndexOptions index;
};

// How Open found the directory.
struct OpenReport {
  int64_t items = 0;
  bool snapshot_used = false;
  std::string snapshot_problem;  // why the snapshot was not used, when there was one
  int64_t replayed_changes = 0;  // store changes newer than the snapshot
};

class Collection {
 public:
  static absl::StatusOr<std::unique_ptr<Collection>> Open(const CollectionOptions& options);

  // Adds or replaces items; InvalidArgument naming items[i] and the field when a vector has the
  // wrong dimension or lies outside the ball (nothing is written then). Returns the store's
  // sequence number of the change once it is durable.
  absl::StatusOr<int64_t> Upsert(absl::Span<const ItemRecord> items);

  // Removes items; NotFound naming the first unknown id (nothing is removed then).
  absl::StatusOr<int64_t> Delete(absl::Span<const int64_t> ids);

  // The stored record; NotFound when there is no such item.
  absl::StatusOr<ItemRecord> Get(int64_t id) const;

  // Writes the candidate stage and the store's last change it covers to the snapshot file
  // (atomically), then lets the store forget deletions the snapshot covers.
  absl::Status WriteSnapshot();

  // Walks the store's changes after `after_seq` (from 0: every item), as ItemStore does; items
  // written meanwhile are visited too or found by a later walk from the last seq seen.
  absl::Status ForEachChangeAfter(
      int64_t after_seq, const std::function<absl::Status(const ItemChange&)>& visit) const {
    return store_->ForEachChangeAfter(after_seq, visit);
  }
  // The source images live items refer to, as ItemStore::ImageDigests.
  absl::StatusOr<absl::flat_hash_set<std::string>> ImageDigests() const {
    return store_->ImageDigests();
  }

  // Searches go straight to the index.
  const HyperbolicIndex& index() const { return *index_; }
  const OpenReport& open_report() const { return open_report_; }
  const std::string& kind() const { return kind_; }

 private:
  Collection(std::string directory, std::string kind, std::unique_ptr<ItemStore> store,
             std::unique_ptr<HyperbolicIndex> index);
  // Fills the index from the store and the snapshot (see the header comment).
  absl::Status Load();
  std::string SnapshotPath() const;

  const std::string directory_;
  const std::string kind_;
  const std::unique_ptr<ItemStore> store_;
  const std::unique_ptr<HyperbolicIndex> index_;
  OpenReport open_report_;
  // Serializes changes, so the store's order is the index's order and a snapshot's high-water
  // mark matches its stage.
  std::mutex writes_;
  // Keeps two snapshots from being written at once (an older one could land last).
  std::mutex snapshots_;
};

}  // namespace hier::index
