#include "trainer/io/png_writer.h"

#include <c10/util/Exception.h>
#include <gtest/gtest.h>

#include <vector>

#include "trainer/data/image_transform.h"

namespace hier::testing {
namespace {

std::vector<uint8_t> Pattern(int width, int height, int channels) {
  std::vector<uint8_t> pixels(static_cast<size_t>(width) * height * channels);
  for (size_t i = 0; i < pixels.size(); ++i) pixels[i] = static_cast<uint8_t>(i * 37 + i / 7);
  return pixels;
}

TEST(PngWriterTest, DecodersReadBackEveryPixel) {
  // Gray and RGB, from one pixel to a 300 x 250 image.
  for (const auto& [width, height, channels] :
       std::vector<std::tuple<int, int, int>>{{28, 28, 1}, {1, 1, 1}, {300, 250, 3}}) {
    const std::vector<uint8_t> pixels = Pattern(width, height, channels);
    const data::DecodeResult decoded =
        data::DecodeImage(io::EncodePng(pixels.data(), width, height, channels), channels);
    ASSERT_TRUE(decoded.ok()) << decoded.error;
    EXPECT_EQ(decoded.image.width, width);
    EXPECT_EQ(decoded.image.height, height);
    EXPECT_EQ(decoded.image.pixels, pixels) << width << "x" << height << "x" << channels;
  }
}

TEST(PngWriterTest, RefusesSizesAndChannelsItCannotWrite) {
  const std::vector<uint8_t> pixels(16);
  EXPECT_THROW(io::EncodePng(pixels.data(), 0, 4, 1), c10::Error);
  EXPECT_THROW(io::EncodePng(pixels.data(), 4, 4, 2), c10::Error);
}

}  // namespace
}  // namespace hier::testing
