#include "trainer/data/image_transform.h"

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <functional>
#include <limits>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <set>
#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

#include "tests/trainer/temp_dir_test.h"

namespace hier::testing {
namespace {

using data::CropBox;
using data::DecodeImage;
using data::DecodeResult;
using data::Image;
using data::Normalisation;

std::string Encode(const cv::Mat& mat, const std::string& extension) {
  std::vector<uchar> buffer;
  EXPECT_TRUE(cv::imencode(extension, mat, buffer));
  return std::string(buffer.begin(), buffer.end());
}

cv::Mat RandomMat(int rows, int cols, int type, uint64_t seed) {
  cv::Mat mat(rows, cols, type);
  cv::RNG rng(seed);  // a local generator leaves cv::theRNG() alone
  rng.fill(mat, cv::RNG::UNIFORM, 0, 256);
  return mat;
}

bool StartsWith(const std::string& text, const std::string& prefix) {
  return text.compare(0, prefix.size(), prefix) == 0;
}

uint8_t At(const Image& image, int y, int x, int c) {
  return image.pixels[(static_cast<size_t>(y) * image.width + x) * image.channels + c];
}

// The output value at (channel, y, x) of a planar size x size image.
float Planar(const std::vector<float>& out, int size, int c, int y, int x) {
  return out[(static_cast<size_t>(c) * size + y) * size + x];
}

void ExpectShape(const DecodeResult& result, int height, int width, int channels) {
  ASSERT_TRUE(result.ok()) << result.error;
  EXPECT_EQ(result.image.height, height);
  EXPECT_EQ(result.image.width, width);
  EXPECT_EQ(result.image.channels, channels);
  EXPECT_EQ(result.image.pixels.size(), static_cast<size_t>(height) * width * channels);
}

TEST(DecodeImageTest, PngColourDecodesLosslesslyInRgbOrder) {
  const cv::Mat bgr = RandomMat(3, 5, CV_8UC3, 1);
  const DecodeResult rgb = DecodeImage(Encode(bgr, ".png"), 3);
  ExpectShape(rgb, 3, 5, 3);
  cv::Mat gray;
  cv::cvtColor(bgr, gray, cv::COLOR_BGR2GRAY);
  const DecodeResult one = DecodeImage(Encode(bgr, ".png"), 1);
  ExpectShape(one, 3, 5, 1);
  for (int y = 0; y < 3; ++y) {
    for (int x = 0; x < 5; ++x) {
      const cv::Vec3b pixel = bgr.at<cv::Vec3b>(y, x);
      EXPECT_EQ(At(rgb.image, y, x, 0), pixel[2]);
      EXPECT_EQ(At(rgb.image, y, x, 1), pixel[1]);
      EXPECT_EQ(At(rgb.image, y, x, 2), pixel[0]);
      EXPECT_EQ(At(one.image, y, x, 0), gray.at<uint8_t>(y, x));
    }
  }
}

TEST(DecodeImageTest, PureRedIsRedInRgbAndGrayByOpenCvWeights) {
  const std::string png = Encode(cv::Mat(4, 6, CV_8UC3, cv::Scalar(0, 0, 255)), ".png");
  const DecodeResult rgb = DecodeImage(png, 3);
  ExpectShape(rgb, 4, 6, 3);
  for (size_t i = 0; i < rgb.image.pixels.size(); i += 3) {
    EXPECT_EQ(rgb.image.pixels[i], 255);
    EXPECT_EQ(rgb.image.pixels[i + 1], 0);
    EXPECT_EQ(rgb.image.pixels[i + 2], 0);
  }
  const DecodeResult gray = DecodeImage(png, 1);
  ExpectShape(gray, 4, 6, 1);
  EXPECT_EQ(gray.image.pixels, std::vector<uint8_t>(24, 76));  // 0.299 * 255 = 76.2
}

TEST(DecodeImageTest, GrayPngIsReplicatedToRgb) {
  const cv::Mat gray = RandomMat(6, 4, CV_8UC1, 2);
  const DecodeResult rgb = DecodeImage(Encode(gray, ".png"), 3);
  ExpectShape(rgb, 6, 4, 3);
  const DecodeResult one = DecodeImage(Encode(gray, ".png"), 1);
  ExpectShape(one, 6, 4, 1);
  for (int y = 0; y < 6; ++y) {
    for (int x = 0; x < 4; ++x) {
      for (int c = 0; c < 3; ++c) EXPECT_EQ(At(rgb.image, y, x, c), gray.at<uint8_t>(y, x));
      EXPECT_EQ(At(one.image, y, x, 0), gray.at<uint8_t>(y, x));
    }
  }
}

TEST(DecodeImageTest, JpegColourAndGrayDecodeCloseToTheOriginal) {
  const DecodeResult red =
      DecodeImage(Encode(cv::Mat(16, 24, CV_8UC3, cv::Scalar(0, 0, 255)), ".jpg"), 3);
  ExpectShape(red, 16, 24, 3);
  EXPECT_GE(At(red.image, 8, 8, 0), 245);
  EXPECT_LE(At(red.image, 8, 8, 1), 10);
  EXPECT_LE(At(red.image, 8, 8, 2), 10);

  cv::Mat ramp(16, 24, CV_8UC1);
  for (int y = 0; y < 16; ++y) {
    for (int x = 0; x < 24; ++x) ramp.at<uint8_t>(y, x) = static_cast<uint8_t>(8 * y + 4 * x);
  }
  const DecodeResult gray = DecodeImage(Encode(ramp, ".jpg"), 1);
  ExpectShape(gray, 16, 24, 1);
  for (int y = 0; y < 16; ++y) {
    for (int x = 0; x < 24; ++x) EXPECT_NEAR(At(gray.image, y, x, 0), ramp.at<uint8_t>(y, x), 6);
  }
}

TEST(DecodeImageTest, SixteenBitPngIsScaledTo8Bit) {
  cv::Mat deep(1, 4, CV_16UC1);
  deep.at<uint16_t>(0, 0) = 0;
  deep.at<uint16_t>(0, 1) = 100 * 257;
  deep.at<uint16_t>(0, 2) = 0x80ff;
  deep.at<uint16_t>(0, 3) = 65535;
  for (const int channels : {1, 3}) {
    const DecodeResult result = DecodeImage(Encode(deep, ".png"), channels);
    ExpectShape(result, 1, 4, channels);
    EXPECT_EQ(At(result.image, 0, 0, channels - 1), 0);
    EXPECT_EQ(At(result.image, 0, 1, channels - 1), 100);
    EXPECT_NEAR(At(result.image, 0, 2, channels - 1), 0x80ff / 257.0, 1.0);
    EXPECT_EQ(At(result.image, 0, 3, channels - 1), 255);
  }
}

TEST(DecodeImageTest, AlphaIsDropped) {
  const DecodeResult rgb =
      DecodeImage(Encode(cv::Mat(2, 3, CV_8UC4, cv::Scalar(10, 20, 30, 0)), ".png"), 3);
  ExpectShape(rgb, 2, 3, 3);
  EXPECT_EQ(At(rgb.image, 1, 2, 0), 30);
  EXPECT_EQ(At(rgb.image, 1, 2, 1), 20);
  EXPECT_EQ(At(rgb.image, 1, 2, 2), 10);
}

void Append32(std::string& bytes, uint32_t value) {
  for (int shift = 0; shift < 32; shift += 8) bytes.push_back(static_cast<char>(value >> shift));
}

// A BMP header claiming 10^6 x 10^6 pixels, beyond OpenCV's limit: imdecode throws for it.
std::string HugeBmpHeader() {
  std::string bytes = "BM";
  // File size, reserved, pixel offset, info header size, width, height.
  for (const uint32_t field : {54u, 0u, 54u, 40u, 1000000u, 1000000u}) Append32(bytes, field);
  Append32(bytes, 1 | (24u << 16));                // 1 plane, 24 bits per pixel
  for (int i = 0; i < 6; ++i) Append32(bytes, 0);  // uncompressed, no palette
  return bytes;
}

TEST(DecodeImageTest, BadBytesGiveAnErrorNeverAnException) {
  const std::string png = Encode(RandomMat(64, 64, CV_8UC3, 3), ".png");
  const std::string jpeg = Encode(RandomMat(64, 64, CV_8UC3, 4), ".jpg");
  std::string garbage;
  const core::CounterRng rng{42};
  for (uint32_t i = 0; i < 4096; ++i) garbage.push_back(static_cast<char>(rng.Bits(i)));
  const std::vector<std::tuple<std::string, std::string, std::string>> cases = {
      {"empty", "", "empty file"},
      {"garbage", garbage, "not a decodable image"},
      {"truncated png", png.substr(0, png.size() / 2), "not a decodable image"},
      {"jpeg header only", jpeg.substr(0, 20), "not a decodable image"},
      {"huge bmp", HugeBmpHeader(), "not a decodable image"},
  };
  for (const auto& [name, bytes, error] : cases) {
    for (const int channels : {1, 3}) {
      SCOPED_TRACE(name + ", channels " + std::to_string(channels));
      DecodeResult result;
      EXPECT_NO_THROW(result = DecodeImage(bytes, channels));
      EXPECT_FALSE(result.ok());
      EXPECT_TRUE(StartsWith(result.error, error)) << result.error;
      EXPECT_TRUE(result.image.pixels.empty());
    }
  }
}

class DecodeImageFileTest : public TempDirTest {
 protected:
  void Write(const std::string& name, const std::string& bytes) {
    std::ofstream(Path(name), std::ios::binary) << bytes;
  }
};

TEST_F(DecodeImageFileTest, DecodesAFile) {
  Write("a.png", Encode(cv::Mat(7, 9, CV_8UC3, cv::Scalar(1, 2, 3)), ".png"));
  const DecodeResult result = data::DecodeImageFile(Path("a.png"), 3);
  ExpectShape(result, 7, 9, 3);
  EXPECT_EQ(At(result.image, 6, 8, 0), 3);
}

TEST_F(DecodeImageFileTest, UnreadableOrCorruptFilesAreErrorsNamingThePath) {
  Write("corrupt.jpg", "not a jpeg");
  Write("empty.png", "");
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"missing.png", "cannot read"},
      {"", "cannot read"},  // the directory
      {"corrupt.jpg", "not a decodable image"},
      {"empty.png", "empty file"},
  };
  for (const auto& [name, error] : cases) {
    SCOPED_TRACE(name);
    DecodeResult result;
    EXPECT_NO_THROW(result = data::DecodeImageFile(Path(name), 3));
    EXPECT_FALSE(result.ok());
    EXPECT_TRUE(StartsWith(result.error, Path(name) + ": " + error)) << result.error;
  }
}

// Expects `box` to be non-empty and inside a height x width image.
void ExpectInside(const CropBox& box, int height, int width) {
  EXPECT_GE(box.x, 0);
  EXPECT_GE(box.y, 0);
  EXPECT_GT(box.width, 0);
  EXPECT_GT(box.height, 0);
  EXPECT_LE(box.x + box.width, width);
  EXPECT_LE(box.y + box.height, height);
}

CropBox DefaultBox(int height, int width, uint64_t key) {
  const data::TrainTransform t;
  return data::RandomResizedCropBox(height, width, t.scale_min, t.scale_max, t.ratio_min,
                                    t.ratio_max, core::CounterRng{core::Mix64(key)});
}

TEST(RandomResizedCropBoxTest, BoxesAreInsideAndWithinTheScaleAndRatioBounds) {
  const data::TrainTransform t;
  const std::vector<std::pair<int, int>> shapes = {{224, 224}, {300, 500}, {500, 300}, {97, 61}};
  for (const auto& [height, width] : shapes) {
    for (uint64_t key = 0; key < 1000; ++key) {
      SCOPED_TRACE(std::to_string(height) + "x" + std::to_string(width) + " key " +
                   std::to_string(key));
      const CropBox box = DefaultBox(height, width, key);
      ExpectInside(box, height, width);
      // Each side is rounded, so the bounds hold up to half a pixel per side.
      const double area = static_cast<double>(height) * width;
      EXPECT_GE((box.width + 0.5) * (box.height + 0.5), t.scale_min * area);
      EXPECT_LE((box.width - 0.5) * (box.height - 0.5), t.scale_max * area);
      EXPECT_GE((box.width + 0.5) / (box.height - 0.5), t.ratio_min);
      EXPECT_LE((box.width - 0.5) / (box.height + 0.5), t.ratio_max);
    }
  }
}

TEST(RandomResizedCropBoxTest, DrawsOnASquareImageFollowTheirDistributions) {
  double log_ratio_sum = 0, scale_sum = 0, centre_x_sum = 0, centre_y_sum = 0;
  for (uint64_t key = 0; key < 1000; ++key) {
    const CropBox box = DefaultBox(224, 224, key);
    log_ratio_sum += std::log(static_cast<double>(box.width) / box.height);
    scale_sum += box.width * box.height / (224.0 * 224.0);
    centre_x_sum += (box.x + box.width / 2.0) / 224;
    centre_y_sum += (box.y + box.height / 2.0) / 224;
  }
  // Log ratios are symmetric about 0 and positions about the centre. Scale s is uniform on
  // [0.08, 1] but a box is refused when s > max(r, 1 / r), which leaves a mean of 0.48.
  EXPECT_NEAR(log_ratio_sum / 1000, 0.0, 0.02);
  EXPECT_NEAR(scale_sum / 1000, 0.48, 0.03);
  EXPECT_NEAR(centre_x_sum / 1000, 0.5, 0.03);
  EXPECT_NEAR(centre_y_sum / 1000, 0.5, 0.03);
}

TEST(RandomResizedCropBoxTest, FallsBackToTheCentreCropWithTheRatioClamped) {
  for (uint64_t key = 0; key < 1000; ++key) {
    const CropBox wide = DefaultBox(1, 1000, key);
    EXPECT_EQ(std::tie(wide.x, wide.y, wide.width, wide.height), std::tuple(499, 0, 1, 1));
    const CropBox tall = DefaultBox(1000, 1, key);
    EXPECT_EQ(std::tie(tall.x, tall.y, tall.width, tall.height), std::tuple(0, 499, 1, 1));
  }
  // The whole area at ratios in [3/4, 4/3] never fits 100 x 400, so the fallback is 100 x 133.
  const CropBox box = data::RandomResizedCropBox(100, 400, 1.0, 1.0, 0.75, 4.0 / 3.0, {7});
  EXPECT_EQ(std::tie(box.x, box.y, box.width, box.height), std::tuple(133, 0, 133, 100));
}

TEST(RandomResizedCropBoxTest, TheKeyAloneDecidesTheBox) {
  std::set<std::tuple<int, int, int, int>> boxes;
  for (uint64_t key = 0; key < 1000; ++key) {
    const CropBox box = DefaultBox(224, 224, key);
    const CropBox again = DefaultBox(224, 224, key);
    EXPECT_EQ(std::tie(box.x, box.y, box.width, box.height),
              std::tie(again.x, again.y, again.width, again.height));
    boxes.emplace(box.x, box.y, box.width, box.height);
  }
  EXPECT_GE(boxes.size(), 990u);
}

// Runs a transform into a buffer with guard values after the expected output, and checks that
// exactly `count` floats were written.
std::vector<float> Output(size_t count, const std::function<void(float*)>& apply) {
  std::vector<float> out(count + 8, std::numeric_limits<float>::quiet_NaN());
  apply(out.data());
  for (size_t i = 0; i < count; ++i) EXPECT_FALSE(std::isnan(out[i])) << "unwritten " << i;
  for (size_t i = count; i < out.size(); ++i) EXPECT_TRUE(std::isnan(out[i])) << "overrun " << i;
  out.resize(count);
  return out;
}

Image Constant(int height, int width, const std::vector<uint8_t>& pixel) {
  Image image{height, width, static_cast<int>(pixel.size()), {}};
  for (int i = 0; i < height * width; ++i) {
    image.pixels.insert(image.pixels.end(), pixel.begin(), pixel.end());
  }
  return image;
}

Image FromMat(const cv::Mat& mat) {
  return Image{mat.rows, mat.cols, mat.channels(),
               std::vector<uint8_t>(mat.datastart, mat.dataend)};
}

const Normalisation kImageNet{{0.485, 0.456, 0.406}, {0.229, 0.224, 0.225}};
const Normalisation kUnit{{0.0}, {1.0}};  // outputs p / 255

// A constant image comes out as the normalised constant, in gray and in RGB, for both
// transforms (bicubic weights sum to one).
TEST(ApplyTransformTest, ConstantImagesGiveTheNormalisedConstant) {
  const std::vector<std::pair<std::vector<uint8_t>, Normalisation>> cases = {
      {{51}, {{0.2}, {0.5}}},
      {{10, 128, 250}, kImageNet},
  };
  for (const auto& [pixel, norm] : cases) {
    const Image image = Constant(90, 130, pixel);
    const int channels = image.channels;
    data::TrainTransform train;
    train.size = 32;
    const std::vector<float> eval_out = Output(
        channels * 224 * 224, [&](float* out) { data::ApplyEvalTransform(image, {}, norm, out); });
    const std::vector<float> train_out = Output(channels * 32 * 32, [&](float* out) {
      data::ApplyTrainTransform(image, train, norm, {5}, out);
    });
    for (int c = 0; c < channels; ++c) {
      const double expected = (pixel[c] / 255.0 - norm.mean[c]) / norm.std[c];
      for (int y = 0; y < 224; ++y) {
        for (int x = 0; x < 224; ++x) ASSERT_NEAR(Planar(eval_out, 224, c, y, x), expected, 1e-5);
      }
      for (int y = 0; y < 32; ++y) {
        for (int x = 0; x < 32; ++x) ASSERT_NEAR(Planar(train_out, 32, c, y, x), expected, 1e-5);
      }
    }
  }
}

TEST(ApplyEvalTransformTest, KeepsTheLeftRightSplitAtTheCentre) {
  cv::Mat halves(100, 200, CV_8UC1, cv::Scalar(0));
  halves.colRange(100, 200) = 255;
  // Resized to 256 x 512 and cropped at x = 144, the split moves to 256 - 144 = 112.
  const std::vector<float> out = Output(
      224 * 224, [&](float* out) { data::ApplyEvalTransform(FromMat(halves), {}, kUnit, out); });
  for (int y = 0; y < 224; y += 37) {
    for (int x = 0; x < 100; ++x) EXPECT_NEAR(Planar(out, 224, 0, y, x), 0.0, 1e-6) << x;
    EXPECT_LT(Planar(out, 224, 0, y, 111), 0.5);
    EXPECT_GT(Planar(out, 224, 0, y, 112), 0.5);
    for (int x = 124; x < 224; ++x) EXPECT_NEAR(Planar(out, 224, 0, y, x), 1.0, 1e-6) << x;
  }
}

TEST(ApplyEvalTransformTest, KeepsTheAspectRatio) {
  // A 20-pixel band across the middle of a 100 x 200 image becomes 20 * 2.56 = 51.2 pixels wide;
  // squashing to a square would halve it.
  cv::Mat band(100, 200, CV_8UC1, cv::Scalar(0));
  band.colRange(90, 110) = 255;
  for (const bool transpose : {false, true}) {
    const cv::Mat source = transpose ? cv::Mat(band.t()) : band;
    const std::vector<float> out = Output(
        224 * 224, [&](float* out) { data::ApplyEvalTransform(FromMat(source), {}, kUnit, out); });
    int bright = 0;
    for (int i = 0; i < 224; ++i) {
      bright += (transpose ? Planar(out, 224, 0, i, 50) : Planar(out, 224, 0, 50, i)) > 0.5;
    }
    EXPECT_NEAR(bright, 51, 1) << "transpose " << transpose;
  }
}

TEST(ApplyTrainTransformTest, ValuesStayInTheNormalisedRangeOfBytes) {
  const Image image = FromMat(RandomMat(120, 90, CV_8UC3, 5));
  for (uint64_t key = 0; key < 50; ++key) {
    const std::vector<float> out = Output(3 * 224 * 224, [&](float* out) {
      data::ApplyTrainTransform(image, {}, kImageNet, {key}, out);
    });
    for (int c = 0; c < 3; ++c) {
      const double low = (0 - kImageNet.mean[c]) / kImageNet.std[c];
      const double high = (1 - kImageNet.mean[c]) / kImageNet.std[c];
      for (int i = 0; i < 224 * 224; ++i) {
        const float value = out[c * 224 * 224 + i];
        ASSERT_TRUE(value >= low - 1e-5 && value <= high + 1e-5) << value << " key " << key;
      }
    }
  }
}

TEST(ApplyTrainTransformTest, FlipsAboutHalfTheTime) {
  cv::Mat halves(64, 64, CV_8UC1, cv::Scalar(0));
  halves.colRange(32, 64) = 255;
  const Image image = FromMat(halves);
  // The whole image, so that only the flip is random.
  data::TrainTransform transform;
  transform.size = 32;
  transform.scale_min = 1;
  transform.ratio_min = transform.ratio_max = 1;
  for (const bool flip : {true, false}) {
    transform.flip = flip;
    int flipped = 0;
    for (uint64_t key = 0; key < 200; ++key) {
      const std::vector<float> out = Output(32 * 32, [&](float* out) {
        data::ApplyTrainTransform(image, transform, kUnit, {core::Mix64(key)}, out);
      });
      const bool left_bright = Planar(out, 32, 0, 9, 0) > 0.5;
      EXPECT_NE(left_bright, Planar(out, 32, 0, 9, 31) > 0.5);
      flipped += left_bright;
    }
    if (flip) {
      EXPECT_GT(flipped, 70);
      EXPECT_LT(flipped, 130);
    } else {
      EXPECT_EQ(flipped, 0);
    }
  }
}

TEST(ApplyTrainTransformTest, TheKeyAloneDecidesTheOutput) {
  const Image image = FromMat(RandomMat(200, 300, CV_8UC3, 6));
  data::TrainTransform transform;
  transform.size = 64;
  const auto apply = [&](uint64_t key) {
    return Output(3 * 64 * 64, [&](float* out) {
      data::ApplyTrainTransform(image, transform, kImageNet, {key}, out);
    });
  };
  for (uint64_t key = 0; key < 20; ++key) {
    EXPECT_EQ(apply(key), apply(key));
    EXPECT_NE(apply(key), apply(key + 1));
  }
}

std::string InvalidArgumentMessage(const std::function<void()>& call) {
  try {
    call();
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "no error";
}

TEST(ApplyTransformTest, BadOptionsThrowNamingTheField) {
  const Image rgb = Constant(8, 8, {1, 2, 3});
  std::vector<float> out(3 * 256 * 256);
  const auto train = [&](const std::function<void(data::TrainTransform&)>& change,
                         const Normalisation& norm = kImageNet) {
    data::TrainTransform transform;
    change(transform);
    return [=, &rgb, &out] { data::ApplyTrainTransform(rgb, transform, norm, {0}, out.data()); };
  };
  const auto eval = [&](int resize, int crop, const Image& image) {
    data::EvalTransform transform;
    transform.resize = resize;
    transform.crop = crop;
    return [=, &out] { data::ApplyEvalTransform(image, transform, kImageNet, out.data()); };
  };
  const auto keep = [](data::TrainTransform&) {};
  Image short_pixels = rgb;
  short_pixels.pixels.pop_back();
  const Image two_channels = Constant(8, 8, {1, 2});
  const std::vector<std::pair<std::string, std::function<void()>>> cases = {
      {"size", train([](auto& t) { t.size = 0; })},
      {"scale_min", train([](auto& t) { t.scale_min = 0; })},
      {"scale_max", train([](auto& t) {
         t.scale_min = 0.5;
         t.scale_max = 0.4;
       })},
      {"ratio_min", train([](auto& t) { t.ratio_min = -1; })},
      {"ratio_max", train([](auto& t) { t.ratio_max = std::numeric_limits<double>::infinity(); })},
      {"mean has 1 entries", train(keep, {{0.5}, {0.2, 0.2, 0.2}})},
      {"std has 2 entries", train(keep, {{0.5, 0.5, 0.5}, {0.2, 0.2}})},
      {"std[1]", train(keep, {{0.5, 0.5, 0.5}, {0.2, 0.0, 0.2}})},
      {"std[2]", train(keep, {{0.5, 0.5, 0.5}, {0.2, 0.2, -1.0}})},
      {"resize", eval(0, 0, rgb)},
      {"crop", eval(256, 257, rgb)},
      {"crop", eval(256, 0, rgb)},
      {"pixels", eval(256, 224, short_pixels)},
      {"channels", eval(256, 224, two_channels)},
      {"channels", [] { DecodeImage("", 2); }},
      {"0x5", [] { data::RandomResizedCropBox(0, 5, 0.1, 1, 1, 1, {0}); }},
  };
  for (const auto& [field, call] : cases) {
    const std::string message = InvalidArgumentMessage(call);
    EXPECT_TRUE(StartsWith(message, "preprocess: ")) << message;
    EXPECT_NE(message.find(field), std::string::npos) << field << " not in: " << message;
  }
  EXPECT_NO_THROW(data::ValidateTrainTransform({}));
  EXPECT_NO_THROW(data::ValidateEvalTransform({}));
  EXPECT_NO_THROW(data::ValidateNormalisation(kImageNet, 3));
}

}  // namespace
}  // namespace hier::testing
