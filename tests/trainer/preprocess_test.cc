#include "trainer/data/preprocess.h"

#include <ATen/ATen.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <set>
#include <utility>

#include "tests/core/error_message.h"

namespace hier::testing {
namespace {

using ::testing::HasSubstr;

// Two 4x4 images: image 0 has pixel (row 1, col 0) = 255, image 1 is uniformly 51.
data::ImageSet TwoImages() {
  data::ImageSet set;
  set.count = 2;
  set.height = 4;
  set.width = 4;
  set.pixels.assign(32, 0);
  set.pixels[4] = 255;
  for (int i = 16; i < 32; ++i) set.pixels[i] = 51;
  set.labels = {3, 7};
  return set;
}

data::Preprocessing Small() {
  data::Preprocessing p;
  p.resize = 4;
  p.crop = 4;
  p.mean = {0.2};
  p.std = {0.5};
  return p;
}

TEST(PreprocessTest, NormalisesWithTheRecordedMeanAndStd) {
  const at::Tensor x = data::ToInputTensor(TwoImages(), {1, 0}, Small(), nullptr, {});
  ASSERT_EQ(x.sizes(), (at::IntArrayRef{2, 1, 4, 4}));
  // (51 / 255 - 0.2) / 0.5 = 0; (255 / 255 - 0.2) / 0.5 = 1.6; (0 - 0.2) / 0.5 = -0.4.
  EXPECT_NEAR(x[0].abs().max().item<float>(), 0.0f, 1e-6);
  EXPECT_NEAR(x[1][0][1][0].item<float>(), 1.6f, 1e-6);
  EXPECT_NEAR(x[1][0][0][0].item<float>(), -0.4f, 1e-6);
  EXPECT_TRUE(at::equal(data::LabelsTensor(TwoImages().labels, {1, 0}), at::tensor({7, 3})));
}

TEST(PreprocessTest, GrayIsReplicatedToThreeChannelsWithTheirOwnMeanAndStd) {
  data::Preprocessing rgb = Small();
  rgb.channels = 3;
  rgb.mean = {0.2, 0.0, 1.0};
  rgb.std = {0.5, 1.0, 2.0};
  const at::Tensor x = data::ToInputTensor(TwoImages(), {0}, rgb, nullptr, {});
  ASSERT_EQ(x.sizes(), (at::IntArrayRef{1, 3, 4, 4}));
  // The bright pixel (1.0 on [0, 1]) per channel: (1 - 0.2) / 0.5, (1 - 0) / 1, (1 - 1) / 2.
  EXPECT_NEAR(x[0][0][1][0].item<float>(), 1.6f, 1e-6);
  EXPECT_NEAR(x[0][1][1][0].item<float>(), 1.0f, 1e-6);
  EXPECT_NEAR(x[0][2][1][0].item<float>(), 0.0f, 1e-6);
}

// The per-image keys of a batch of copies of image 0, all equal to `key`.
std::vector<uint64_t> Keys(size_t count, uint64_t key) { return std::vector<uint64_t>(count, key); }

TEST(PreprocessTest, AugmentationShiftsAndFlipsTheBrightPixel) {
  const data::Augmentation augmentation;  // shifts up to 2, flips
  std::set<std::pair<int64_t, int64_t>> positions;
  for (uint64_t key = 0; key < 1000; ++key) {
    const at::Tensor x =
        data::ToInputTensor(TwoImages(), {0}, Small(), &augmentation, Keys(1, key));
    const at::Tensor bright = at::nonzero(x[0][0] > 1.0f);
    if (bright.size(0) == 0) continue;  // shifted out of the 4x4 frame
    ASSERT_EQ(bright.size(0), 1);
    const int64_t row = bright[0][0].item<int64_t>(), col = bright[0][1].item<int64_t>();
    positions.emplace(row, col);
    EXPECT_LE(std::abs(row - 1), 2);  // shifted by at most 2 rows
  }
  EXPECT_GT(positions.size(), 6u);  // the draws really vary
  // Column 3 is out of reach of a shift by 2 from column 0: only a flip puts the pixel there.
  EXPECT_EQ(positions.count({1, 3}), 1u);
  EXPECT_EQ(positions.count({1, 0}), 1u);
}

TEST(PreprocessTest, SameKeySameImageOtherKeyOtherImage) {
  const data::Augmentation augmentation;
  const data::ImageSet set = TwoImages();
  const std::vector<int64_t> copies = {0, 0, 0, 0};
  const at::Tensor a = data::ToInputTensor(set, copies, Small(), &augmentation, {1, 2, 3, 4});
  EXPECT_TRUE(
      at::equal(a, data::ToInputTensor(set, copies, Small(), &augmentation, {1, 2, 3, 4})));
  // An image's transform depends on its own key only, not on its place in the batch.
  EXPECT_TRUE(at::equal(a[2], data::ToInputTensor(set, {0}, Small(), &augmentation, {3})[0]));
  EXPECT_FALSE(
      at::equal(a, data::ToInputTensor(set, copies, Small(), &augmentation, {5, 6, 7, 8})));
}

TEST(PreprocessTest, RefusesMismatchedSizesBadIndicesAndMissingKeys) {
  data::Preprocessing wrong = Small();
  wrong.crop = 28;
  const data::Augmentation augmentation;
  EXPECT_THAT(ErrorMessage([&] { data::ToInputTensor(TwoImages(), {0}, wrong, nullptr, {}); }),
              HasSubstr("images are 4x4, the model expects 28x28"));
  EXPECT_THAT(ErrorMessage([&] { data::ToInputTensor(TwoImages(), {2}, Small(), nullptr, {}); }),
              HasSubstr("image index 2 is outside the set of 2"));
  EXPECT_THAT(ErrorMessage([&] {
                data::ToInputTensor(TwoImages(), {0, 1}, Small(), &augmentation, {1});
              }),
              HasSubstr("2 images but 1 augmentation keys"));
  data::Preprocessing two_means = Small();
  two_means.mean = {0.1, 0.2};
  EXPECT_THAT(ErrorMessage([&] { data::ToInputTensor(TwoImages(), {0}, two_means, nullptr, {}); }),
              HasSubstr("mean and std need 1 values each, got 2 and 1"));
}

}  // namespace
}  // namespace hier::testing
