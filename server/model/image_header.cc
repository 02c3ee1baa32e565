#include "server/model/image_header.h"

#include <cstdlib>

namespace hier::server {
namespace {

uint32_t BigEndian(std::string_view bytes, size_t at, int width) {
  uint32_t value = 0;
  for (int i = 0; i < width; ++i) value = value << 8 | static_cast<uint8_t>(bytes[at + i]);
  return value;
}

uint32_t LittleEndian(std::string_view bytes, size_t at, int width) {
  uint32_t value = 0;
  for (int i = width - 1; i >= 0; --i) value = value << 8 | static_cast<uint8_t>(bytes[at + i]);
  return value;
}

// Whether `bytes` holds `text` at offset `at` (false when it is too short to).
bool HasAt(std::string_view bytes, size_t at, std::string_view text) {
  return bytes.size() >= at + text.size() && bytes.compare(at, text.size(), text) == 0;
}

bool StartsWith(std::string_view bytes, std::string_view prefix) { return HasAt(bytes, 0, prefix); }

// JPEG: the frame header (any SOFn marker) holds height and width; walk the segments to it.
std::optional<ImageSize> JpegSize(std::string_view bytes) {
  size_t at = 2;
  while (at + 9 <= bytes.size()) {
    if (static_cast<uint8_t>(bytes[at]) != 0xFF) {  // stray bytes between segments, as decoders
      ++at;                                         // skip them
      continue;
    }
    const uint8_t marker = static_cast<uint8_t>(bytes[at + 1]);
    if (marker == 0xFF) {  // fill byte
      ++at;
      continue;
    }
    const bool standalone = marker == 0x01 || (marker >= 0xD0 && marker <= 0xD9);
    if (standalone) {
      at += 2;
      continue;
    }
    const bool frame_header =
        marker >= 0xC0 && marker <= 0xCF && marker != 0xC4 && marker != 0xC8 && marker != 0xCC;
    if (frame_header) return ImageSize{BigEndian(bytes, at + 7, 2), BigEndian(bytes, at + 5, 2)};
    at += 2 + BigEndian(bytes, at + 2, 2);
  }
  return std::nullopt;
}

// WebP: RIFF, then a VP8 (lossy), VP8L (lossless) or VP8X (extended) chunk with the size.
std::optional<ImageSize> WebpSize(std::string_view bytes) {
  if (bytes.size() < 30) return std::nullopt;
  const std::string_view chunk = bytes.substr(12, 4);
  if (chunk == "VP8 ") {
    return ImageSize{LittleEndian(bytes, 26, 2) & 0x3FFF, LittleEndian(bytes, 28, 2) & 0x3FFF};
  }
  if (chunk == "VP8L") {
    const uint32_t bits = LittleEndian(bytes, 21, 4);
    return ImageSize{1 + (bits & 0x3FFF), 1 + ((bits >> 14) & 0x3FFF)};
  }
  if (chunk == "VP8X") {
    return ImageSize{1 + static_cast<int64_t>(LittleEndian(bytes, 24, 3)),
                     1 + static_cast<int64_t>(LittleEndian(bytes, 27, 3))};
  }
  return std::nullopt;
}

}  // namespace

std::optional<ImageSize> EncodedImageSize(std::string_view bytes) {
  if (StartsWith(bytes, "\x89PNG\r\n\x1a\n") && bytes.size() >= 24) {
    return ImageSize{BigEndian(bytes, 16, 4), BigEndian(bytes, 20, 4)};
  }
  if (StartsWith(bytes, "\xFF\xD8")) return JpegSize(bytes);
  if ((StartsWith(bytes, "GIF87a") || StartsWith(bytes, "GIF89a")) && bytes.size() >= 10) {
    return ImageSize{LittleEndian(bytes, 6, 2), LittleEndian(bytes, 8, 2)};
  }
  if (StartsWith(bytes, "RIFF") && HasAt(bytes, 8, "WEBP")) return WebpSize(bytes);
  if (StartsWith(bytes, "BM") && bytes.size() >= 26) {
    // BITMAPINFOHEADER: signed width and height (negative height: rows top-down).
    const auto width = static_cast<int32_t>(LittleEndian(bytes, 18, 4));
    const auto height = static_cast<int32_t>(LittleEndian(bytes, 22, 4));
    return ImageSize{std::abs(static_cast<int64_t>(width)), std::abs(static_cast<int64_t>(height))};
  }
  return std::nullopt;
}

const char* EncodedImageMediaType(std::string_view bytes) {
  if (StartsWith(bytes, "\x89PNG\r\n\x1a\n")) return "image/png";
  if (StartsWith(bytes, "\xFF\xD8")) return "image/jpeg";
  if (StartsWith(bytes, "GIF87a") || StartsWith(bytes, "GIF89a")) return "image/gif";
  if (StartsWith(bytes, "RIFF") && HasAt(bytes, 8, "WEBP")) return "image/webp";
  if (StartsWith(bytes, "BM")) return "image/bmp";
  return "application/octet-stream";
}

}  // namespace hier::server
