// Reads an encoded image's width and height from its header without decoding it, so that an image
// whose pixels would not fit in memory (a "decompression bomb") is refused before it is decoded.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace hier::server {

struct ImageSize {
  int64_t width = 0, height = 0;
};

// The size a PNG, JPEG, GIF, BMP or WebP header declares; none for other formats or a header too
// short to read.
std::optional<ImageSize> EncodedImageSize(std::string_view bytes);

// The media type a header declares ("image/png", "image/jpeg", "image/gif", "image/bmp",
// "image/webp"), or "application/octet-stream" for any other bytes.
const char* EncodedImageMediaType(std::string_view bytes);

}  // namespace hier::server
