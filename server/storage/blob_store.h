// Source images kept content-addressed by their SHA-256, so the gallery can be re-embedded when the
// model changes: the interface both backends implement.
//   - FileBlobStore (file_blob_store.h): files under the state folder, for one machine.
//   - PostgresBlobStore (postgres_blob_store.h): the hier_images table of the cluster's database,
//     so every replica can read every image.
// Both pass the same test suite (tests/server/blob_store_test.cc).
//
// Thread-safety: every method may be called from many threads at once.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "index/item_store.h"

namespace hier::server {

class BlobStore {
 public:
  // The store for `location` (index::StoreLocation): a PostgreSQL URI opens the images of that
  // database, anything else `state_dir`/blobs.
  static absl::StatusOr<std::unique_ptr<BlobStore>> Open(const index::StoreLocation& location,
                                                         const std::string& state_dir);

  virtual ~BlobStore() = default;

  // Stores `bytes` durably (once per content) and returns their SHA-256 in hex. Storing content
  // that is already there marks it as stored now (see RemoveAllBut).
  virtual absl::StatusOr<std::string> Put(std::string_view bytes) const = 0;
  // The bytes stored under `sha256`: InvalidArgument naming image_sha256 when it is not a
  // SHA-256 digest, NotFound when absent, DataLoss when they no longer match.
  virtual absl::StatusOr<std::string> Get(const std::string& sha256) const = 0;

  // Removes every stored image whose digest `keep` does not list and that was stored (or stored
  // again) at least `min_age` ago, with what interrupted writes left; returns how many went. An
  // image is stored before the item that refers to it, so `keep` read from the items after every
  // writer finished (min_age 0: the server's start on one machine), or a min_age longer than any
  // write takes (a cluster, whose other replicas keep writing), never removes a referenced image.
  virtual absl::StatusOr<int64_t> RemoveAllBut(const absl::flat_hash_set<std::string>& keep,
                                               std::chrono::seconds min_age) const = 0;

 protected:
  BlobStore() = default;
  // For the backends: InvalidArgument naming image_sha256 unless `sha256` is 64 lower-case hex
  // digits.
  static absl::Status CheckDigest(const std::string& sha256);
};

}  // namespace hier::server
