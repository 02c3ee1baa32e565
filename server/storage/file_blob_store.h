// Source images as files under the state folder (blobs/<first two hex digits>/<SHA-256>), for one
// machine: written atomically and never rewritten; a file's modification time is when its content
// was last stored.
#pragma once

#include <memory>
#include <string>

#include "server/storage/blob_store.h"

namespace hier::server {

class FileBlobStore final : public BlobStore {
 public:
  // Creates `directory` when missing.
  static absl::StatusOr<std::unique_ptr<FileBlobStore>> Open(const std::string& directory);

  absl::StatusOr<std::string> Put(std::string_view bytes) const override;
  absl::StatusOr<std::string> Get(const std::string& sha256) const override;
  // Also removes files left by interrupted writes (the temporary-file prefix); files of other
  // names are left alone.
  absl::StatusOr<int64_t> RemoveAllBut(const absl::flat_hash_set<std::string>& keep,
                                       std::chrono::seconds min_age) const override;

 private:
  explicit FileBlobStore(std::string directory) : directory_(std::move(directory)) {}
  std::string PathOf(const std::string& sha256) const;

  const std::string directory_;
};

}  // namespace hier::server
