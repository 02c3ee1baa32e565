#include "server/model/image_embedder.h"

#include <ATen/ATen.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <torch/optim/adamw.h>

#include <filesystem>
#include <fstream>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>

#include "server/model/model_catalog.h"
#include "tests/trainer/temp_dir_test.h"
#include "trainer/data/image_source.h"
#include "trainer/io/atomic_file.h"
#include "trainer/train/checkpoint.h"
#include "trainer/train/evaluation.h"

namespace hier::testing {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

std::string Png(const cv::Mat& image) {
  std::vector<uint8_t> bytes;
  cv::imencode(".png", image, bytes);
  return std::string(bytes.begin(), bytes.end());
}

cv::Mat RandomImage(int height, int width, int type, uint64_t seed) {
  cv::Mat image(height, width, type);
  cv::RNG rng(seed);
  rng.fill(image, cv::RNG::UNIFORM, 0, 256);
  return image;
}

class ImageEmbedderTest : public TempDirTest {
 protected:
  // A run directory with an untrained model whose evaluation resizes to 32 and crops 28.
  void SetUp() override {
    TempDirTest::SetUp();
    torch::manual_seed(3);
    model::EmbeddingNet net(model::EmbeddingNetOptions().emb(8));
    core::ObjectiveOptions objective_options(4, 8);
    objective_options.hier(core::HierLossOptions(8).num_proxies(16).topk(4));
    core::Objective objective(objective_options);
    info_.architecture.emb(8).c(0.1);
    info_.preprocessing.resize = 32;
    info_.preprocessing.crop = 28;
    info_.class_names = {"a", "b", "c", "d"};
    info_.config_json = R"({"emb": 8, "recall_k": [1, 4]})";
    info_.position.step = 12;
    info_.position.best_recall = {0.5, 0.75};
    run_ = Path("run-7");
    const std::string saved =
        train::SaveCheckpoint(run_ + "/checkpoints", {net, objective, nullptr}, info_);
    train::PublishCopy(saved, run_ + "/best");
  }

  std::unique_ptr<server::ImageEmbedder> Load(const std::string& path) {
    absl::StatusOr<std::string> checkpoint = server::ResolveCheckpoint(path, "--model");
    EXPECT_TRUE(checkpoint.ok()) << checkpoint.status();
    absl::StatusOr<std::unique_ptr<server::ImageEmbedder>> embedder =
        server::ImageEmbedder::Load(*checkpoint);
    EXPECT_TRUE(embedder.ok()) << embedder.status();
    return embedder.ok() ? *std::move(embedder) : nullptr;
  }

  train::CheckpointInfo info_;
  std::string run_;
};

TEST_F(ImageEmbedderTest, EmbedsExactlyAsTheTrainersEvaluationDoes) {
  const auto embedder = Load(run_);
  ASSERT_NE(embedder, nullptr);
  // Images of other sizes and of colour, so resize, crop and gray conversion all take part.
  const std::vector<cv::Mat> images = {RandomImage(40, 36, CV_8UC1, 1),
                                       RandomImage(28, 28, CV_8UC1, 2),
                                       RandomImage(50, 64, CV_8UC3, 3)};
  data::ImageList list;
  std::vector<float> inputs(images.size() * embedder->input_floats());
  for (size_t i = 0; i < images.size(); ++i) {
    const std::string bytes = Png(images[i]);
    const std::string path = Path("image" + std::to_string(i) + ".png");
    std::ofstream(path, std::ios::binary) << bytes;
    list.paths.push_back(path);
    list.labels.push_back(0);
    ASSERT_TRUE(
        embedder->Prepare(bytes, "images[0]", 1 << 20, inputs.data() + i * embedder->input_floats())
            .ok());
  }
  list.class_names = {"a"};
  std::vector<float> served(images.size() * 8);
  ASSERT_TRUE(embedder->Forward(inputs.data(), images.size(), served.data()).ok());

  // The trainer's own path: files decoded by its file source, embedded by its evaluation.
  data::FileSourceOptions options;
  options.train.size = 28;
  options.skipped = std::make_shared<data::SkipLog>();
  const auto source = data::MakeFileSource(list, info_.preprocessing, options);
  const train::InferenceModel model = train::LoadInferenceModel(run_ + "/best");
  model::EmbeddingNet net = model.net;
  const train::EmbeddedImages trained =
      train::EmbedImages(net, *source, 0, static_cast<int64_t>(images.size()), at::kCPU);
  const at::Tensor expected = trained.embeddings.flatten();
  ASSERT_EQ(expected.numel(), static_cast<int64_t>(served.size()));
  for (size_t i = 0; i < served.size(); ++i) {
    EXPECT_NEAR(served[i], expected[i].item<float>(), 1e-6) << i;
  }
}

TEST_F(ImageEmbedderTest, DescribesTheCheckpoint) {
  const auto embedder = Load(run_);
  ASSERT_NE(embedder, nullptr);
  const server::ModelDescription& d = embedder->description();
  EXPECT_EQ(d.version, "run-7/best");
  EXPECT_EQ(d.run_dir, fs::absolute(run_).string());
  EXPECT_EQ(d.architecture, "small-cnn");
  EXPECT_EQ(d.dim, 8);
  EXPECT_DOUBLE_EQ(d.c, 0.1);
  EXPECT_EQ(d.recall_k, (std::vector<int64_t>{1, 4}));
  EXPECT_EQ(d.best_recall, (std::vector<double>{0.5, 0.75}));
  EXPECT_EQ(embedder->input_floats(), 28 * 28);
  const auto step = Load(run_ + "/checkpoints/0000000012");
  ASSERT_NE(step, nullptr);
  EXPECT_EQ(step->description().version, "run-7/checkpoints/0000000012");
}

TEST_F(ImageEmbedderTest, BadImagesNameTheirField) {
  const auto embedder = Load(run_);
  ASSERT_NE(embedder, nullptr);
  std::vector<float> input(embedder->input_floats());
  const std::string png = Png(RandomImage(30, 30, CV_8UC1, 4));
  std::string huge = Png(RandomImage(8, 8, CV_8UC1, 5));
  huge[16] = 0x01;  // IHDR width: 16,777,224 pixels wide
  const std::pair<std::string, std::string> cases[] = {
      {"", "empty image"},
      {"not an image at all", "not a PNG, JPEG, GIF, BMP or WebP image"},
      {png.substr(0, 40) + std::string(200, '\0'), "not a decodable image"},
      {png.substr(0, png.size() / 2), "items[3].image"},
      {huge, "pixels, at most"},
  };
  for (const auto& [bytes, message] : cases) {
    const absl::Status status = embedder->Prepare(bytes, "items[3].image", 1 << 20, input.data());
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << message;
    EXPECT_THAT(status.message(), HasSubstr("items[3].image")) << status;
    EXPECT_THAT(status.message(), HasSubstr(message)) << status;
  }
}

TEST_F(ImageEmbedderTest, MissingAndDamagedCheckpointsAreRefused) {
  const absl::StatusOr<std::string> missing = server::ResolveCheckpoint(Path("nowhere"), "--model");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(missing.status().message(), HasSubstr("--model"));
  {
    std::fstream file(run_ + "/best/model.pt", std::ios::in | std::ios::out | std::ios::binary);
    file.seekp(100);
    file.put('\x5a');
  }
  const auto damaged = server::ImageEmbedder::Load(run_ + "/best");
  EXPECT_EQ(damaged.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(damaged.status().message(), HasSubstr("model.pt"));
}

std::vector<std::string> VersionsOf(const std::vector<server::ModelDescription>& models) {
  std::vector<std::string> versions;
  for (const server::ModelDescription& model : models) versions.push_back(model.version);
  return versions;
}

TEST_F(ImageEmbedderTest, TheCatalogHashesACheckpointOncePerManifestFile) {
  const server::ModelCatalog catalog(dir_);
  const std::vector<std::string> both = {"run-7/best", "run-7/checkpoints/0000000012"};
  EXPECT_EQ(VersionsOf(catalog.List()), both);

  // Damaged in place: still listed, as already verified, but loading verifies again and refuses
  // it, and a catalog that has not seen it leaves it out.
  const std::string step = run_ + "/checkpoints/0000000012";
  {
    std::fstream file(step + "/model.pt", std::ios::in | std::ios::out | std::ios::binary);
    file.seekp(100);
    file.put('\x5a');
  }
  EXPECT_EQ(VersionsOf(catalog.List()), both);
  EXPECT_EQ(server::ImageEmbedder::Load(step).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(VersionsOf(server::ModelCatalog(dir_).List()),
              ::testing::Not(::testing::Contains(both[1])));

  // A checkpoint whose manifest is written again is verified again.
  io::WriteFileAtomically(step + "/manifest.json", io::ReadFile(step + "/manifest.json"));
  EXPECT_EQ(VersionsOf(catalog.List()), std::vector<std::string>{both[0]});
}

}  // namespace
}  // namespace hier::testing
