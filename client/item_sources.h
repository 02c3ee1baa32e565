// Reads the images to add as items, with their keys and labels, from a class folder or a list
// file.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace hier::client {

struct ImageEntry {
  std::string path;   // where to read the image
  std::string key;    // the item's key
  std::string label;  // the item's label
};

// ROOT/<label>/<image>: one subfolder per class (hidden ones skipped), its image files directly
// inside; the key is the path relative to ROOT ("cat/001.jpg"). Sorted by key. NOT_FOUND when
// ROOT is not a folder or holds no images.
absl::StatusOr<std::vector<ImageEntry>> ReadClassFolder(const std::string& root);

// A text file with one "path label" per line (the label is the last whitespace-separated word;
// blank lines and lines starting with '#' are skipped). Relative paths are read against the list
// file's folder; the key is the path as written. Sorted by key. NOT_FOUND naming the list or the
// first image that does not exist; INVALID_ARGUMENT naming the line of a malformed or repeated
// entry.
absl::StatusOr<std::vector<ImageEntry>> ReadListFile(const std::string& list_path);

}  // namespace hier::client
