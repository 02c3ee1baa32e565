#include "trainer/io/png_writer.h"

#include <c10/util/Exception.h>

#include <algorithm>
#include <array>

namespace hier::io {
namespace {

const std::array<uint32_t, 256>& CrcTable() {
  static const std::array<uint32_t, 256> table = [] {
    std::array<uint32_t, 256> t{};
    for (uint32_t n = 0; n < 256; ++n) {
      uint32_t c = n;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      t[n] = c;
    }
    return t;
  }();
  return table;
}

void PutBigEndian(std::string& out, uint32_t value) {
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<char>(value >> shift));
}

// A chunk: length, type, data, CRC-32 of type and data.
void PutChunk(std::string& out, const char* type, const std::string& data) {
  PutBigEndian(out, static_cast<uint32_t>(data.size()));
  const std::string body = std::string(type, 4) + data;
  uint32_t crc = 0xFFFFFFFFu;
  for (unsigned char byte : body) crc = CrcTable()[(crc ^ byte) & 0xFF] ^ (crc >> 8);
  out += body;
  PutBigEndian(out, crc ^ 0xFFFFFFFFu);
}

// A zlib stream of stored deflate blocks (at most 65,535 bytes each) with its Adler-32.
std::string StoredZlib(const std::string& raw) {
  std::string out = "\x78\x01";
  size_t at = 0;
  do {
    const size_t length = std::min<size_t>(65535, raw.size() - at);
    const bool last = at + length == raw.size();
    out.push_back(last ? 1 : 0);
    out.push_back(static_cast<char>(length & 0xFF));
    out.push_back(static_cast<char>(length >> 8));
    out.push_back(static_cast<char>(~length & 0xFF));
    out.push_back(static_cast<char>((~length >> 8) & 0xFF));
    out.append(raw, at, length);
    at += length;
  } while (at < raw.size());
  uint32_t a = 1, b = 0;
  for (unsigned char byte : raw) {
    a = (a + byte) % 65521;
    b = (b + a) % 65521;
  }
  PutBigEndian(out, b << 16 | a);
  return out;
}

}  // namespace

std::string EncodePng(const uint8_t* pixels, int width, int height, int channels) {
  TORCH_CHECK(width > 0 && height > 0 && width <= 65535 && height <= 65535, "EncodePng: size ",
              width, "x", height, " out of range");
  TORCH_CHECK(channels == 1 || channels == 3, "EncodePng: channels must be 1 or 3, got ", channels);
  std::string header;
  PutBigEndian(header, static_cast<uint32_t>(width));
  PutBigEndian(header, static_cast<uint32_t>(height));
  header += std::string{8, static_cast<char>(channels == 1 ? 0 : 2), 0, 0, 0};
  // Each row: filter type 0 (none), then its bytes.
  const size_t row_bytes = static_cast<size_t>(width) * channels;
  std::string raw;
  raw.reserve((row_bytes + 1) * height);
  for (int y = 0; y < height; ++y) {
    raw.push_back(0);
    raw.append(reinterpret_cast<const char*>(pixels + y * row_bytes), row_bytes);
  }
  std::string png = "\x89PNG\r\n\x1a\n";
  PutChunk(png, "IHDR", header);
  PutChunk(png, "IDAT", StoredZlib(raw));
  PutChunk(png, "IEND", "");
  return png;
}

}  // namespace hier::io
