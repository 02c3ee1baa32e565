#include "client/item_sources.h"

#include <algorithm>
#include <filesystem>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "client/image_files.h"
#include "client/status_macros.h"

namespace hier::client {
namespace {

namespace fs = std::filesystem;

void SortByKey(std::vector<ImageEntry>* entries) {
  std::sort(entries->begin(), entries->end(),
            [](const ImageEntry& a, const ImageEntry& b) { return a.key < b.key; });
}

// Splits "some/path with spaces.jpg  label" at the last run of whitespace.
bool SplitListLine(absl::string_view line, std::string* path, std::string* label) {
  const size_t end_of_path = line.find_last_of(" \t");
  if (end_of_path == absl::string_view::npos) return false;
  *label = std::string(line.substr(end_of_path + 1));
  *path = std::string(absl::StripTrailingAsciiWhitespace(line.substr(0, end_of_path)));
  return !path->empty() && !label->empty();
}

}  // namespace

absl::StatusOr<std::vector<ImageEntry>> ReadClassFolder(const std::string& root) {
  std::error_code error;
  if (!fs::is_directory(root, error)) {
    return absl::NotFoundError(absl::StrCat("'", root, "' is not a folder"));
  }
  std::vector<ImageEntry> entries;
  for (fs::directory_iterator it(root, error), end; !error && it != end; it.increment(error)) {
    const std::string label = it->path().filename().string();
    if (label.empty() || label[0] == '.' || !it->is_directory(error)) continue;
    HIER_ASSIGN_OR_RETURN(std::vector<std::string> images, ListImageFiles(it->path().string()));
    for (std::string& image : images) {
      const std::string key = absl::StrCat(label, "/", fs::path(image).filename().string());
      entries.push_back({std::move(image), key, label});
    }
  }
  if (error) {
    return absl::UnavailableError(absl::StrCat("cannot list '", root, "': ", error.message()));
  }
  if (entries.empty()) {
    return absl::NotFoundError(
        absl::StrCat("no images in class subfolders of '", root, "' (expected ROOT/LABEL/IMAGE)"));
  }
  SortByKey(&entries);
  return entries;
}

absl::StatusOr<std::vector<ImageEntry>> ReadListFile(const std::string& list_path) {
  HIER_ASSIGN_OR_RETURN(const std::string text, ReadFileBytes(list_path));
  const fs::path base = fs::path(list_path).parent_path();
  std::vector<ImageEntry> entries;
  std::set<std::string> keys;
  int line_number = 0;
  for (absl::string_view raw_line : absl::StrSplit(text, '\n')) {
    ++line_number;
    const absl::string_view line = absl::StripAsciiWhitespace(raw_line);
    if (line.empty() || line[0] == '#') continue;
    const std::string where = absl::StrCat(list_path, ":", line_number);
    ImageEntry entry;
    if (!SplitListLine(line, &entry.key, &entry.label)) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": expected 'path label', got '", line, "'"));
    }
    if (!keys.insert(entry.key).second) {
      return absl::InvalidArgumentError(absl::StrCat(where, ": '", entry.key, "' listed twice"));
    }
    const fs::path path(entry.key);
    entry.path = (path.is_absolute() ? path : base / path).string();
    std::error_code error;
    if (!fs::is_regular_file(entry.path, error)) {
      return absl::NotFoundError(absl::StrCat(where, ": no file '", entry.path, "'"));
    }
    entries.push_back(std::move(entry));
  }
  if (entries.empty()) {
    return absl::NotFoundError(absl::StrCat("'", list_path, "' lists no images"));
  }
  SortByKey(&entries);
  return entries;
}

}  // namespace hier::client
