#include "trainer/io/png_writer.h"

#include <c10/util/Exception.h>
#include <png.h>

namespace hier::io {

std::string EncodePng(const uint8_t* pixels, int width, int height, int channels) {
  TORCH_CHECK(width > 0 && height > 0 && width <= 65535 && height <= 65535, "EncodePng: size ",
              width, "x", height, " out of range");
  TORCH_CHECK(channels == 1 || channels == 3, "EncodePng: channels must be 1 or 3, got ", channels);
  png_image image{};
  image.version = PNG_IMAGE_VERSION;
  image.width = static_cast<png_uint_32>(width);
  image.height = static_cast<png_uint_32>(height);
  image.format = channels == 1 ? PNG_FORMAT_GRAY : PNG_FORMAT_RGB;
  const png_int_32 row_stride = width * channels;
  // libpng's simplified API: the first call measures, the second writes.
  png_alloc_size_t bytes = 0;
  TORCH_CHECK(png_image_write_to_memory(&image, nullptr, &bytes, 0, pixels, row_stride, nullptr),
              "EncodePng: ", image.message);
  std::string png(bytes, '\0');
  TORCH_CHECK(png_image_write_to_memory(&image, png.data(), &bytes, 0, pixels, row_stride, nullptr),
              "EncodePng: ", image.message);
  png.resize(bytes);
  return png;
}

}  // namespace hier::io
