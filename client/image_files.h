// Finds image files in a folder and reads files whole.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace hier::client {

// By extension, case-insensitively: jpg, jpeg, png, bmp, gif, webp, tif, tiff, pgm, ppm, pnm.
bool IsImageFileName(absl::string_view name);

// The image files directly in `dir` (not in subfolders, hidden files skipped), as paths under
// `dir`, sorted by name. NOT_FOUND when `dir` is not a folder.
absl::StatusOr<std::vector<std::string>> ListImageFiles(const std::string& dir);

// The file's bytes; NOT_FOUND or PERMISSION_DENIED etc. naming the file.
absl::StatusOr<std::string> ReadFileBytes(const std::string& path);

}  // namespace hier::client
