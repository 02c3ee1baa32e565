#include "server/storage/file_blob_store.h"

#include <filesystem>
#include <stdexcept>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "trainer/io/atomic_file.h"
#include "trainer/io/sha256.h"

namespace hier::server {
namespace fs = std::filesystem;

absl::StatusOr<std::unique_ptr<FileBlobStore>> FileBlobStore::Open(const std::string& directory) {
  std::error_code error;
  fs::create_directories(directory, error);
  if (error) {
    return absl::UnavailableError(absl::StrCat("blob folder ", directory, ": ", error.message()));
  }
  return std::unique_ptr<FileBlobStore>(new FileBlobStore(directory));
}

std::string FileBlobStore::PathOf(const std::string& sha256) const {
  return (fs::path(directory_) / sha256.substr(0, 2) / sha256).string();
}

absl::StatusOr<std::string> FileBlobStore::Put(std::string_view bytes) const {
  const std::string sha256 = io::Sha256Hex(bytes);
  const std::string path = PathOf(sha256);
  std::error_code error;
  if (fs::exists(path, error)) {
    // Stored again: RemoveAllBut's min_age counts from now.
    fs::last_write_time(path, fs::file_time_type::clock::now(), error);
    if (!error) return sha256;
  }
  try {
    const fs::path folder = fs::path(path).parent_path();
    if (fs::create_directory(folder)) io::SyncDirectory(directory_);
    io::WriteFileAtomically(path, bytes);
  } catch (const std::exception& e) {
    return absl::UnavailableError(absl::StrCat("storing an image: ", e.what()));
  }
  return sha256;
}

absl::StatusOr<std::string> FileBlobStore::Get(const std::string& sha256) const {
  if (absl::Status digest = CheckDigest(sha256); !digest.ok()) return digest;
  const std::string path = PathOf(sha256);
  std::error_code error;
  if (!fs::exists(path, error)) {
    return absl::NotFoundError(absl::StrCat("image_sha256: no stored image ", sha256));
  }
  std::string bytes;
  try {
    bytes = io::ReadFile(path);
  } catch (const std::exception& e) {
    return absl::UnavailableError(absl::StrCat("reading an image: ", e.what()));
  }
  if (io::Sha256Hex(bytes) != sha256) {
    return absl::DataLossError(
        absl::StrCat("stored image ", path, " no longer matches its digest"));
  }
  return bytes;
}

absl::StatusOr<int64_t> FileBlobStore::RemoveAllBut(const absl::flat_hash_set<std::string>& keep,
                                                    std::chrono::seconds min_age) const {
  int64_t removed = 0;
  std::error_code error;
  const fs::file_time_type stored_before = fs::file_time_type::clock::now() - min_age;
  for (fs::recursive_directory_iterator it(directory_, error), end; !error && it != end;
       it.increment(error)) {
    if (it.depth() != 1 || !it->is_regular_file(error)) continue;
    const std::string name = it->path().filename().string();
    const bool unreferenced = CheckDigest(name).ok() && !keep.contains(name);
    if (!unreferenced && !absl::StartsWith(name, io::kTempFilePrefix)) continue;
    std::error_code stat_error;  // the file went meanwhile: nothing to remove
    const fs::file_time_type stored = it->last_write_time(stat_error);
    if (stat_error || stored > stored_before) continue;
    removed += fs::remove(it->path(), error);
    if (error) break;
  }
  if (error) {
    return absl::UnavailableError(
        absl::StrCat("removing unreferenced images from ", directory_, ": ", error.message()));
  }
  return removed;
}

}  // namespace hier::server
