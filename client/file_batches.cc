#include "client/file_batches.h"

#include <filesystem>
#include <system_error>

#include "absl/strings/str_cat.h"

namespace hier::client {

absl::StatusOr<std::vector<FileBatch>> PlanFileBatches(const std::vector<std::string>& paths,
                                                       size_t max_items, int64_t max_bytes) {
  std::vector<FileBatch> batches;
  FileBatch batch;
  int64_t bytes = 0;
  for (size_t i = 0; i < paths.size(); ++i) {
    std::error_code error;
    const auto size = static_cast<int64_t>(std::filesystem::file_size(paths[i], error));
    if (error) {
      return absl::NotFoundError(absl::StrCat("cannot read '", paths[i], "': ", error.message()));
    }
    if (i > batch.begin && (i - batch.begin >= max_items || bytes + size > max_bytes)) {
      batch.end = i;
      batches.push_back(batch);
      batch.begin = i;
      bytes = 0;
    }
    bytes += size;
  }
  if (batch.begin < paths.size()) {
    batch.end = paths.size();
    batches.push_back(batch);
  }
  return batches;
}

}  // namespace hier::client
