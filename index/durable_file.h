// Whole-file writes that are atomic and durable (temp file, fsync, rename, fsync the directory),
// and whole-file reads, reporting failures as absl::Status naming the path.
#pragma once

#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace hier::index {

// Replaces `path` with `bytes`: readers see the old content or the new, never a mix, and the new
// content survives a crash once this returns OK. The temp file is removed on failure.
absl::Status WriteFileDurably(const std::string& path, std::string_view bytes);

// The whole content of the file at `path`; NotFound when it does not exist.
absl::StatusOr<std::string> ReadWholeFile(const std::string& path);

}  // namespace hier::index
