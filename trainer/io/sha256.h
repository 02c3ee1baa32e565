// SHA-256 digests as lowercase hex (OpenSSL's), for content-addressing artifacts and checking
// downloads.
#pragma once

#include <string>
#include <string_view>

namespace hier::io {

// The 64-character lowercase hex SHA-256 digest of `bytes`.
std::string Sha256Hex(std::string_view bytes);

// The digest of the file at `path`, read in chunks so large files need little memory. Throws
// c10::Error naming the path when it cannot be opened or read.
std::string Sha256OfFile(const std::string& path);

}  // namespace hier::io
