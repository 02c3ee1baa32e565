#include "server/model/image_header.h"

#include <gtest/gtest.h>

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>

namespace hier::testing {
namespace {

std::string Encode(const std::string& extension, int width, int height) {
  const cv::Mat image(height, width, CV_8UC3, cv::Scalar(10, 200, 30));
  std::vector<uint8_t> bytes;
  EXPECT_TRUE(cv::imencode(extension, image, bytes)) << extension;
  return std::string(bytes.begin(), bytes.end());
}

TEST(ImageHeaderTest, ReadsTheDeclaredSizeOfCommonFormats) {
  for (const std::string extension : {".png", ".jpg", ".bmp", ".webp"}) {
    const std::optional<server::ImageSize> size =
        server::EncodedImageSize(Encode(extension, 37, 21));
    ASSERT_TRUE(size.has_value()) << extension;
    EXPECT_EQ(size->width, 37) << extension;
    EXPECT_EQ(size->height, 21) << extension;
  }
  const std::string gif("GIF89a\x10\x02\x20\x01", 10);
  EXPECT_EQ(server::EncodedImageSize(gif)->width, 0x210);
  EXPECT_EQ(server::EncodedImageSize(gif)->height, 0x120);
}

TEST(ImageHeaderTest, UnknownOrTruncatedHeadersGiveNoSize) {
  EXPECT_FALSE(server::EncodedImageSize("").has_value());
  EXPECT_FALSE(server::EncodedImageSize("plain text").has_value());
  EXPECT_FALSE(server::EncodedImageSize(Encode(".png", 5, 5).substr(0, 20)).has_value());
  EXPECT_FALSE(server::EncodedImageSize(Encode(".jpg", 5, 5).substr(0, 40)).has_value());
}

// Found by deploy/fuzz.sh (tests/fuzz/corpus/image_header_fuzz/riff-cut-short): a RIFF header
// shorter than its WEBP tag threw std::out_of_range, which would have ended the server.
TEST(ImageHeaderTest, ARiffHeaderCutShortGivesNoSize) {
  for (const std::string_view cut : {std::string_view("RIFF\0RI", 7), std::string_view("RIFF"),
                                     std::string_view("RIFF\0\0\0\0WEB", 11)}) {
    EXPECT_FALSE(server::EncodedImageSize(cut).has_value()) << cut.size();
  }
}

}  // namespace
}  // namespace hier::testing
