// Source images kept content-addressed (blobs/<first two hex digits>/<SHA-256>), so the gallery
// can be re-embedded when the model changes. Files are written atomically and never rewritten.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace hier::server {

class BlobStore {
 public:
  // Creates `directory` when missing.
  static absl::StatusOr<BlobStore> Open(const std::string& directory);

  // Stores `bytes` durably (once per content) and returns their SHA-256 in hex.
  absl::StatusOr<std::string> Put(std::string_view bytes) const;
  // The bytes stored under `sha256`: NotFound when absent, DataLoss when they no longer match.
  absl::StatusOr<std::string> Get(const std::string& sha256) const;

  // Removes every stored image whose digest `keep` does not list, and files left by interrupted
  // writes; returns how many files went. Only while nothing calls Put (the server's start).
  absl::StatusOr<int64_t> RemoveAllBut(const absl::flat_hash_set<std::string>& keep) const;

 private:
  explicit BlobStore(std::string directory) : directory_(std::move(directory)) {}
  std::string PathOf(const std::string& sha256) const;

  std::string directory_;
};

}  // namespace hier::server
