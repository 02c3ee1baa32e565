// Scratch folders for fuzz targets whose parsers read files rather than bytes: one folder per
// process under the temp directory ($TMPDIR), removed when the process exits normally.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>

namespace hier::fuzz {

// `<temp>/<name>-<pid>`, created on the first call; the same folder for every call with `name`.
const std::filesystem::path& ScratchDir(const char* name);

// Replaces the file at `path` with `size` bytes of `data`; traps when it cannot.
void WriteScratchFile(const std::filesystem::path& path, const uint8_t* data, size_t size);

}  // namespace hier::fuzz
