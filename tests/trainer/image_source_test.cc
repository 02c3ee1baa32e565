#include "trainer/data/image_source.h"

#include <ATen/ATen.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "tests/core/error_message.h"
#include "tests/trainer/image_fixtures.h"
#include "tests/trainer/temp_dir_test.h"

namespace hier::testing {
namespace {

using data::FileSourceOptions;
using data::ImageList;
using data::ImageSet;
using data::Preprocessing;
using data::SkipLog;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr int64_t kCorrupt = 2;   // the item of class 0 that does not decode
constexpr int64_t kGray = 3;      // a single-channel PNG
constexpr int64_t kConstant = 5;  // one colour everywhere
// The constant image's colour, in RGB order (OpenCV writes BGR).
constexpr uint8_t kRed = 200, kGreen = 120, kBlue = 30;

Preprocessing ImageNet() {
  Preprocessing p;
  p.channels = 3;
  p.resize = 40;
  p.crop = 32;
  p.mean = {0.485, 0.456, 0.406};
  p.std = {0.229, 0.224, 0.225};
  return p;
}

FileSourceOptions Options(int64_t decode_threads = 2, bool strict = false) {
  FileSourceOptions options;
  options.train.size = 32;
  options.decode_threads = decode_threads;
  options.strict = strict;
  options.skipped = std::make_shared<SkipLog>();
  return options;
}

class ImageSourceTest : public TempDirTest {
 protected:
  // Two classes of three: sizes, formats and colour modes differ; item kCorrupt is garbage.
  void SetUp() override {
    TempDirTest::SetUp();
    const cv::Mat constant(48, 64, CV_8UC3, cv::Scalar(kBlue, kGreen, kRed));
    const std::vector<std::pair<std::string, cv::Mat>> images = {
        {"a/0.png", NoiseImage(60, 80, CV_8UC3, 1)},
        {"a/1.jpg", NoiseImage(50, 40, CV_8UC3, 2)},
        {"a/2.jpg", cv::Mat()},
        {"b/3.png", NoiseImage(45, 45, CV_8UC1, 3)},
        {"b/4.png", NoiseImage(70, 50, CV_8UC3, 4)},
        {"b/5.png", constant},
    };
    for (const auto& [name, image] : images) {
      list_.paths.push_back(Path(name));
      if (image.empty()) {
        WriteCorruptImage(Path(name));
      } else {
        WriteImage(Path(name), image);
      }
    }
    list_.labels = {0, 0, 0, 1, 1, 1};
    list_.class_names = {"a", "b"};
  }

  std::unique_ptr<data::ImageSource> Source(const FileSourceOptions& options,
                                            const Preprocessing& p = ImageNet()) const {
    return data::MakeFileSource(list_, p, options);
  }

  ImageList list_;
};

at::Tensor Eval(const data::ImageSource& source, const std::vector<int64_t>& indices,
                std::vector<bool>* decoded = nullptr) {
  std::vector<bool> ignored;
  return source.EvalInputs(indices, decoded != nullptr ? decoded : &ignored);
}

TEST_F(ImageSourceTest, ServesItsListAsIs) {
  const auto source = Source(Options());
  EXPECT_EQ(source->size(), 6);
  EXPECT_EQ(source->labels(), list_.labels);
  EXPECT_THAT(source->class_names(), ElementsAre("a", "b"));
}

TEST_F(ImageSourceTest, TrainInputsAreCropsNormalisedFromTheByteRange) {
  const auto source = Source(Options());
  const at::Tensor x = source->TrainInputs({0, 1, 3, 4, 5}, {11, 12, 13, 14, 15});
  ASSERT_EQ(x.sizes(), (at::IntArrayRef{5, 3, 32, 32}));
  ASSERT_EQ(x.scalar_type(), at::kFloat);
  const Preprocessing p = ImageNet();
  for (int64_t c = 0; c < 3; ++c) {
    const at::Tensor channel = x.select(1, c);
    // Every value is (byte / 255 - mean) / std for a byte in [0, 255].
    EXPECT_GE(channel.min().item<double>(), (0.0 - p.mean[c]) / p.std[c] - 1e-5) << c;
    EXPECT_LE(channel.max().item<double>(), (1.0 - p.mean[c]) / p.std[c] + 1e-5) << c;
  }
  // Noise images spread over the range; a blank batch would not.
  EXPECT_GT((x.max() - x.min()).item<double>(), 1.0);
}

TEST_F(ImageSourceTest, TrainInputsDependOnlyOnImagesAndKeys) {
  const auto source = Source(Options());
  const at::Tensor first = source->TrainInputs({0, 4}, {7, 8});
  EXPECT_TRUE(at::equal(first, source->TrainInputs({0, 4}, {7, 8})));
  // Another source and another batch composition draw the same views for the same keys.
  const at::Tensor alone = Source(Options())->TrainInputs({4}, {8});
  EXPECT_TRUE(at::equal(first[1], alone[0]));
  // Other keys give other crops.
  const at::Tensor other = source->TrainInputs({0, 4}, {9, 10});
  EXPECT_FALSE(at::equal(first[0], other[0]));
  EXPECT_FALSE(at::equal(first[1], other[1]));
}

TEST_F(ImageSourceTest, DecodeThreadsDoNotChangeTheInputs) {
  const std::vector<int64_t> indices = {5, 4, 3, 1, 0, 2, 4};
  const std::vector<uint64_t> keys = {1, 2, 3, 4, 5, 6, 7};
  const auto one = Source(Options(1));
  const auto four = Source(Options(4));
  EXPECT_TRUE(at::equal(one->TrainInputs(indices, keys), four->TrainInputs(indices, keys)));
  std::vector<bool> decoded_one, decoded_four;
  EXPECT_TRUE(at::equal(Eval(*one, indices, &decoded_one), Eval(*four, indices, &decoded_four)));
  EXPECT_EQ(decoded_one, decoded_four);
}

TEST_F(ImageSourceTest, CorruptTrainingImageIsReplacedByTheNextOfItsClassAndReportedOnce) {
  const FileSourceOptions options = Options();
  const auto source = Source(options);
  const at::Tensor x = source->TrainInputs({3, kCorrupt, 4}, {21, 22, 23});
  EXPECT_TRUE(at::isfinite(x).all().item<bool>());
  EXPECT_GT(x[1].abs().max().item<float>(), 0.0f);
  // Items 0, 1 and 2 make class 0, so after item 2 comes item 0, drawn with item 2's key.
  EXPECT_TRUE(at::equal(x[1], source->TrainInputs({0}, {22})[0]));
  // More batches, and evaluation too, meet the same file without reporting it again.
  source->TrainInputs({kCorrupt, kCorrupt}, {1, 2});
  source->TrainInputs({kCorrupt, 0}, {3, 4});
  Eval(*source, {kCorrupt});
  const data::SkippedFiles skipped = options.skipped->Snapshot();
  EXPECT_EQ(skipped.count, 1);
  EXPECT_THAT(skipped.examples, ElementsAre(HasSubstr(list_.paths[kCorrupt])));
}

// The header promises thread safety: concurrent batches see the same views and still report
// the corrupt file once.
TEST_F(ImageSourceTest, ConcurrentCallsAgreeAndReportTheCorruptFileOnce) {
  const FileSourceOptions options = Options();
  const auto source = Source(options);
  const std::vector<int64_t> indices = {kCorrupt, 0, 4, kCorrupt};
  const std::vector<uint64_t> keys = {31, 32, 33, 34};
  std::vector<at::Tensor> outputs(4);
  std::vector<std::thread> threads;
  for (size_t t = 0; t < outputs.size(); ++t) {
    threads.emplace_back([&, t] { outputs[t] = source->TrainInputs(indices, keys); });
  }
  for (std::thread& thread : threads) thread.join();
  const at::Tensor expected = Source(Options())->TrainInputs(indices, keys);
  for (const at::Tensor& output : outputs) EXPECT_TRUE(at::equal(output, expected));
  EXPECT_EQ(options.skipped->Snapshot().count, 1);
}

TEST_F(ImageSourceTest, ClassWithoutADecodableImageFails) {
  list_.paths = {list_.paths[kCorrupt], list_.paths[0]};
  list_.labels = {0, 1};
  const auto source = Source(Options());
  EXPECT_THAT(ErrorMessage([&] {
                source->TrainInputs({1, 0}, {1, 2});
              }),
              HasSubstr("no image of class 'a' can be decoded"));
}

TEST_F(ImageSourceTest, StrictFailsNamingTheCorruptFile) {
  const FileSourceOptions options = Options(2, /*strict=*/true);
  const auto source = Source(options);
  EXPECT_THAT(ErrorMessage([&] {
                source->TrainInputs({0, kCorrupt}, {1, 2});
              }),
              HasSubstr(list_.paths[kCorrupt]));
  EXPECT_THAT(ErrorMessage([&] {
                Eval(*source, {kCorrupt, 0});
              }),
              HasSubstr(list_.paths[kCorrupt]));
  EXPECT_EQ(options.skipped->Snapshot().count, 0);
  // Decodable images are served as without --strict.
  EXPECT_TRUE(at::equal(Eval(*source, {0, 4}), Eval(*Source(Options()), {0, 4})));
}

TEST_F(ImageSourceTest, EvalInputsMarkAndZeroExactlyTheCorruptImage) {
  const FileSourceOptions options = Options();
  const auto source = Source(options);
  std::vector<bool> decoded;
  const at::Tensor x = Eval(*source, {0, 1, kCorrupt, 3, 4, 5}, &decoded);
  ASSERT_EQ(x.sizes(), (at::IntArrayRef{6, 3, 32, 32}));
  EXPECT_THAT(decoded, ElementsAre(true, true, false, true, true, true));
  EXPECT_EQ(x[kCorrupt].abs().max().item<float>(), 0.0f);
  for (int64_t i : {0, 1, 3, 4}) EXPECT_GT(x[i].abs().max().item<float>(), 0.0f) << i;
  EXPECT_EQ(options.skipped->Snapshot().count, 1);
  // Deterministic, and independent of the batch an image is in.
  EXPECT_TRUE(at::equal(x, Eval(*source, {0, 1, kCorrupt, 3, 4, 5})));
  EXPECT_TRUE(at::equal(x[4], Eval(*source, {4})[0]));
}

TEST_F(ImageSourceTest, EvalOfAConstantImageIsItsNormalisedColour) {
  const Preprocessing p = ImageNet();
  const at::Tensor x = Eval(*Source(Options()), {kConstant})[0];
  const double rgb[] = {kRed, kGreen, kBlue};
  for (int64_t c = 0; c < 3; ++c) {
    const double expected = (rgb[c] / 255.0 - p.mean[c]) / p.std[c];
    EXPECT_NEAR(x[c].min().item<double>(), expected, 1e-5) << c;
    EXPECT_NEAR(x[c].max().item<double>(), expected, 1e-5) << c;
  }
}

TEST_F(ImageSourceTest, GrayImageFillsThreeEqualChannels) {
  Preprocessing p = ImageNet();
  p.mean = {0.5, 0.5, 0.5};
  p.std = {0.25, 0.25, 0.25};
  const at::Tensor x = Eval(*Source(Options(), p), {kGray})[0];
  EXPECT_TRUE(at::equal(x[0], x[1]));
  EXPECT_TRUE(at::equal(x[0], x[2]));
  EXPECT_GT((x.max() - x.min()).item<float>(), 1.0f);  // the noise survives the resize
}

TEST_F(ImageSourceTest, RefusesOptionsItCannotServe) {
  FileSourceOptions no_log = Options();
  no_log.skipped = nullptr;
  EXPECT_THAT(ErrorMessage([&] { Source(no_log); }), HasSubstr("SkipLog is required"));
  FileSourceOptions other_size = Options();
  other_size.train.size = 28;
  EXPECT_THAT(ErrorMessage([&] { Source(other_size); }), HasSubstr("training crop 28"));
  const auto source = Source(Options());
  EXPECT_THAT(ErrorMessage([&] {
                source->TrainInputs({0, 1}, {1});
              }),
              HasSubstr("2 images but 1 augmentation keys"));
  EXPECT_THAT(ErrorMessage([&] { Eval(*source, {6}); }), HasSubstr("image index 6"));
}

// Three 28x28 gray images of distinct patterns.
ImageSet SmallSet() {
  ImageSet set;
  set.count = 3;
  set.height = 28;
  set.width = 28;
  set.labels = {2, 0, 1};
  set.class_names = {"zero", "one", "two"};
  for (int64_t i = 0; i < set.count; ++i) {
    const cv::Mat image = NoiseImage(28, 28, CV_8UC1, 100 + i);
    set.pixels.insert(set.pixels.end(), image.data, image.data + image.total());
  }
  return set;
}

Preprocessing FashionMnist() {
  Preprocessing p;
  p.channels = 1;
  p.resize = 28;
  p.crop = 28;
  p.mean = {0.286};
  p.std = {0.353};
  return p;
}

TEST(MemoryImageSourceTest, ServesTheSetThroughToInputTensor) {
  const ImageSet set = SmallSet();
  const data::Augmentation augmentation{3, true};
  const auto source = data::MakeMemorySource(set, FashionMnist(), augmentation);
  EXPECT_EQ(source->size(), 3);
  EXPECT_EQ(source->labels(), set.labels);
  EXPECT_EQ(source->class_names(), set.class_names);
  std::vector<bool> decoded;
  const at::Tensor eval = source->EvalInputs({2, 0}, &decoded);
  EXPECT_THAT(decoded, ElementsAre(true, true));
  // Evaluation never augments.
  EXPECT_TRUE(at::equal(eval, data::ToInputTensor(set, {2, 0}, FashionMnist(), nullptr, {})));
  EXPECT_TRUE(at::equal(source->TrainInputs({1, 2}, {5, 6}),
                        data::ToInputTensor(set, {1, 2}, FashionMnist(), &augmentation, {5, 6})));
}

// Serving decodes the uploaded bytes and applies the evaluation transform; a model trained on the
// in-memory set must see the same numbers for the same pixels.
TEST(MemoryImageSourceTest, EvalMatchesServingDecodeAndTransform) {
  const ImageSet set = SmallSet();
  const Preprocessing p = FashionMnist();
  const auto source = data::MakeMemorySource(set, p, data::Augmentation{});
  for (int64_t i = 0; i < set.count; ++i) {
    SCOPED_TRACE(i);
    const cv::Mat pixels(28, 28, CV_8UC1, const_cast<uint8_t*>(set.pixels.data() + i * 28 * 28));
    const data::DecodeResult decoded = data::DecodeImage(EncodeImage(pixels, ".png"), 1);
    ASSERT_TRUE(decoded.ok()) << decoded.error;
    std::vector<float> served(28 * 28);
    data::ApplyEvalTransform(decoded.image, data::EvalTransformOf(p), data::NormalisationOf(p),
                             served.data());
    std::vector<bool> flags;
    const at::Tensor trained = source->EvalInputs({i}, &flags).contiguous();
    ASSERT_EQ(trained.numel(), 28 * 28);
    const float* expected = trained.data_ptr<float>();
    for (int k = 0; k < 28 * 28; ++k) ASSERT_NEAR(served[k], expected[k], 1e-6) << k;
  }
}

// The same pixels as PNG files: a file source and the memory source agree at evaluation.
TEST_F(ImageSourceTest, FileSourceOfGrayPngsMatchesTheMemorySource) {
  const ImageSet set = SmallSet();
  ImageList list;
  for (int64_t i = 0; i < set.count; ++i) {
    const cv::Mat pixels(28, 28, CV_8UC1, const_cast<uint8_t*>(set.pixels.data() + i * 28 * 28));
    list.paths.push_back(Path("mnist/" + std::to_string(i) + ".png"));
    WriteImage(list.paths.back(), pixels);
  }
  list.labels = set.labels;
  list.class_names = set.class_names;
  FileSourceOptions options = Options();
  options.train.size = 28;
  const auto files = data::MakeFileSource(list, FashionMnist(), options);
  const auto memory = data::MakeMemorySource(set, FashionMnist(), data::Augmentation{});
  EXPECT_TRUE(at::allclose(Eval(*files, {0, 1, 2}), Eval(*memory, {0, 1, 2}), 0, 1e-6));
}

}  // namespace
}  // namespace hier::testing
