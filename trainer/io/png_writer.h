// Writes 8-bit images as PNG files with libpng; used to export Fashion-MNIST as an image folder.
#pragma once

#include <cstdint>
#include <string>

namespace hier::io {

// The PNG file of a `width` x `height` image with `channels` 1 (gray) or 3 (RGB) interleaved
// bytes per pixel, rows contiguous. Throws c10::Error for sizes out of range.
std::string EncodePng(const uint8_t* pixels, int width, int height, int channels);

}  // namespace hier::io
