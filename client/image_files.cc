#include "client/image_files.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace hier::client {
namespace {

namespace fs = std::filesystem;

constexpr absl::string_view kImageExtensions[] = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp",
                                                  ".tif", ".tiff", ".pgm", ".ppm", ".pnm"};

}  // namespace

bool IsImageFileName(absl::string_view name) {
  const std::string extension =
      absl::AsciiStrToLower(fs::path(std::string(name)).extension().string());
  return std::find(std::begin(kImageExtensions), std::end(kImageExtensions), extension) !=
         std::end(kImageExtensions);
}

absl::StatusOr<std::vector<std::string>> ListImageFiles(const std::string& dir) {
  std::error_code error;
  if (!fs::is_directory(dir, error)) {
    return absl::NotFoundError(absl::StrCat("'", dir, "' is not a folder"));
  }
  std::vector<std::string> paths;
  for (fs::directory_iterator it(dir, error), end; !error && it != end; it.increment(error)) {
    const std::string name = it->path().filename().string();
    if (name.empty() || name[0] == '.' || !IsImageFileName(name)) continue;
    if (!it->is_regular_file(error)) continue;
    paths.push_back(it->path().string());
  }
  if (error) {
    return absl::UnavailableError(absl::StrCat("cannot list '", dir, "': ", error.message()));
  }
  std::sort(paths.begin(), paths.end());
  return paths;
}

absl::StatusOr<std::string> ReadFileBytes(const std::string& path) {
  std::error_code error;
  if (fs::is_directory(path, error)) {
    return absl::InvalidArgumentError(absl::StrCat("'", path, "' is a folder, not a file"));
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    const int code = errno;
    const std::string reason = absl::StrCat("cannot read '", path, "': ", std::strerror(code));
    if (code == ENOENT) return absl::NotFoundError(reason);
    if (code == EACCES) return absl::PermissionDeniedError(reason);
    return absl::UnavailableError(reason);
  }
  std::string bytes{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  if (in.bad()) return absl::DataLossError(absl::StrCat("error reading '", path, "'"));
  return bytes;
}

}  // namespace hier::client
