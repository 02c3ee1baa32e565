// The state folder's record of what serves (serving.json): the checkpoint and the gallery folder
// (under galleries/) holding the vectors it made. Rewritten atomically after every hot swap, so a
// restart serves what served before.
#pragma once

#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace hier::server {

struct ServingRecord {
  std::string checkpoint;  // empty: no model (a gallery of vectors only)
  std::string gallery;     // folder name under <state>/galleries
};

// The record, none for a new state folder; DataLoss when the file does not parse.
absl::StatusOr<std::optional<ServingRecord>> ReadServingRecord(const std::string& state_dir);
absl::Status WriteServingRecord(const std::string& state_dir, const ServingRecord& record);

// <state>/galleries/<gallery>; a cluster's base gallery ("") keeps its snapshot in
// <state>/galleries/replica.
std::string GalleryPath(const std::string& state_dir, const std::string& gallery);

}  // namespace hier::server
