#include "server/storage/blob_store.h"

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "server/storage/file_blob_store.h"
#ifdef HIER_HAVE_POSTGRES
#include "server/storage/postgres_blob_store.h"
#endif

namespace hier::server {

absl::StatusOr<std::unique_ptr<BlobStore>> BlobStore::Open(const index::StoreLocation& location,
                                                           const std::string& state_dir) {
  if (index::IsPostgresUri(location.uri)) {
#ifdef HIER_HAVE_POSTGRES
    absl::StatusOr<std::unique_ptr<PostgresBlobStore>> store = PostgresBlobStore::Open(location);
    if (!store.ok()) return store.status();
    return std::unique_ptr<BlobStore>(*std::move(store));
#else
    return index::NoPostgresSupport();
#endif
  }
  absl::StatusOr<std::unique_ptr<FileBlobStore>> store =
      FileBlobStore::Open((std::filesystem::path(state_dir) / "blobs").string());
  if (!store.ok()) return store.status();
  return std::unique_ptr<BlobStore>(*std::move(store));
}

absl::Status BlobStore::CheckDigest(const std::string& sha256) {
  if (sha256.size() == 64 && sha256.find_first_not_of("0123456789abcdef") == std::string::npos) {
    return absl::OkStatus();
  }
  return absl::InvalidArgumentError(absl::StrCat("image_sha256: not a SHA-256 digest: ", sha256));
}

}  // namespace hier::server
