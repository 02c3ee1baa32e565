// Source images in the cluster's PostgreSQL database (table hier_images: sha256, bytes, stored_at),
// so every replica can read the images any replica stored. The table belongs to the store of
// record's versioned schema (index/postgres_item_store.h), which the server opens first; this
// store refuses a database without it.
//
// Durability: Put returns once its INSERT committed. Errors are the pool's (index/postgres_pool.h).
// Thread-safety: every method may be called from many threads at once.
#pragma once

#include <memory>
#include <string>

#include "index/postgres_pool.h"
#include "server/storage/blob_store.h"

namespace hier::server {

class PostgresBlobStore final : public BlobStore {
 public:
  // FailedPrecondition when the database has no hier_images table (the item store was not opened
  // on it first); the pool's errors otherwise.
  static absl::StatusOr<std::unique_ptr<PostgresBlobStore>> Open(
      const index::StoreLocation& location);

  absl::StatusOr<std::string> Put(std::string_view bytes) const override;
  absl::StatusOr<std::string> Get(const std::string& sha256) const override;
  absl::StatusOr<int64_t> RemoveAllBut(const absl::flat_hash_set<std::string>& keep,
                                       std::chrono::seconds min_age) const override;

 private:
  explicit PostgresBlobStore(std::unique_ptr<index::PostgresPool> pool) : pool_(std::move(pool)) {}

  const std::unique_ptr<index::PostgresPool> pool_;
};

}  // namespace hier::server
