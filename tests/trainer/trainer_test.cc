#include "trainer/train/trainer.h"

#include <ATen/ATen.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <torch/script.h>

#include <atomic>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>

#include "tests/core/error_message.h"
#include "tests/trainer/fake_fashion_mnist.h"
#include "tests/trainer/image_fixtures.h"
#include "tests/trainer/temp_dir_test.h"
#include "trainer/data/image_set.h"
#include "trainer/io/atomic_file.h"
#include "trainer/train/checkpoint.h"
#include "trainer/train/run_report.h"
#include "trainer/train/training_data.h"

namespace hier::testing {
namespace {

namespace fs = std::filesystem;
using ::testing::EndsWith;
using ::testing::HasSubstr;
using ::testing::StartsWith;
using Json = nlohmann::json;

class TrainerTest : public TempDirTest {
 protected:
  void SetUp() override {
    TempDirTest::SetUp();
    fs::create_directory(Path("data"));
    WriteFakeFashionMnist(Path("data"), 20, 5);
  }

  // A run of 3 epochs x 6 steps of 20 images, small enough for a unit test.
  train::TrainConfig Tiny(const std::string& run) const {
    train::TrainConfig config;
    config.data_dir = Path("data");
    config.run_dir = Path(run);
    config.batch_size = 20;
    config.ipc = 2;
    config.emb = 16;
    config.num_proxies = 32;
    config.topk = 4;
    config.epochs = 3;
    config.steps_per_epoch = 6;
    config.recall_k = {1, 2};
    config.log_every = 2;
    config.threads = 1;
    config.prefetch = 2;
    train::Validate(config);
    return config;
  }

  train::TrainSummary Train(const train::TrainConfig& config, bool stop_at_once = false) {
    std::ostringstream log;
    train::ProgressReporter progress(log, false, config.log_every);
    std::atomic<bool> stop{stop_at_once};
    train::Trainer trainer(config);
    return trainer.Run(progress, &stop);
  }

  std::vector<Json> Metrics(const std::string& run, const std::string& kind) const {
    std::vector<Json> lines;
    std::istringstream in(io::ReadFile(Path(run) + "/metrics.jsonl"));
    for (std::string line; std::getline(in, line);) {
      Json record = Json::parse(line);
      if (record["kind"] == kind) lines.push_back(record);
    }
    return lines;
  }
};

TEST_F(TrainerTest, ShortRunLearnsAndFillsTheRunDirectory) {
  const train::TrainSummary summary = Train(Tiny("run"));
  EXPECT_FALSE(summary.interrupted);
  EXPECT_EQ(summary.steps, 18);
  ASSERT_EQ(summary.best_recall.size(), 2u);

  const std::vector<Json> train_lines = Metrics("run", "train");
  ASSERT_GE(train_lines.size(), 6u);
  const double first = train_lines[0]["loss"].get<double>() + train_lines[1]["loss"].get<double>();
  const double last = train_lines[train_lines.size() - 1]["loss"].get<double>() +
                      train_lines[train_lines.size() - 2]["loss"].get<double>();
  EXPECT_LT(last, first);
  EXPECT_TRUE(train_lines[0].contains("hier"));
  EXPECT_EQ(Metrics("run", "eval").size(), 3u);  // every epoch

  const Json status = Json::parse(io::ReadFile(Path("run/status.json")));
  EXPECT_EQ(status["state"], "finished");
  EXPECT_EQ(status["step"], 18);
  const Json config = Json::parse(io::ReadFile(Path("run/config.json")));
  EXPECT_EQ(config["emb"], 16);
  EXPECT_EQ(train::ReadVerifiedManifest(Path("run/best")).position.best_recall,
            summary.best_recall);
  EXPECT_LE(std::distance(fs::directory_iterator(Path("run/checkpoints")), {}), 3);

  for (const char* plot : {"poincare_disk.svg", "loss.svg", "recall.svg"}) {
    const std::string svg = io::ReadFile(Path("run/plots/") + plot);
    EXPECT_THAT(svg, StartsWith("<svg")) << plot;
    EXPECT_THAT(svg, EndsWith("</svg>\n")) << plot;
  }
}

TEST_F(TrainerTest, DisjointProtocolTrainsOnHalfTheClassesAndRetrievesAmongTheOthers) {
  train::TrainConfig config = Tiny("run");
  config.protocol = "disjoint";
  const train::TrainingData data = train::OpenTrainingData(config);
  EXPECT_EQ(data.train->class_names(),
            (std::vector<std::string>{"T-shirt/top", "Trouser", "Pullover", "Dress", "Sandal"}));
  EXPECT_EQ(data.query->class_names(),
            (std::vector<std::string>{"Coat", "Shirt", "Sneaker", "Bag", "Ankle boot"}));
  EXPECT_EQ(data.train->size(), 5 * 20);
  EXPECT_EQ(data.query->size(), 5 * 5);
  for (int64_t label : data.query->labels()) EXPECT_TRUE(label >= 0 && label < 5) << label;
  // The fake set draws class c as a bar placed by c: check a query image is the unseen class's.
  const data::ImageSet all = data::LoadFashionMnist(Path("data"), data::Split::kTest);
  const data::ImageSet coats = data::KeepClasses(all, {4});
  ASSERT_EQ(coats.count, 5);
  for (int64_t i = 0, j = 0; i < all.count; ++i) {
    if (all.labels[i] != 4) continue;
    EXPECT_TRUE(std::equal(coats.pixels.begin() + j * 784, coats.pixels.begin() + (j + 1) * 784,
                           all.pixels.begin() + i * 784));
    ++j;
  }
  const train::TrainSummary summary = Train(config);
  EXPECT_EQ(summary.steps, 18);
}

TEST_F(TrainerTest, HierDiagnosticsAreLoggedWhileTraining) {
  Train(Tiny("run"));
  for (const Json& line : Metrics("run", "train")) {
    for (const char* share : {"active_sample_proxy", "active_proxy_proxy"}) {
      ASSERT_TRUE(line.contains(share)) << line.dump();
      EXPECT_GE(line[share].get<double>(), 0.0);
      EXPECT_LE(line[share].get<double>(), 1.0);
    }
    EXPECT_GE(line["lca_proxies"].get<double>(), 1.0);
    EXPECT_LE(line["lca_proxies"].get<double>(), 32.0);
  }
  const Json proxies = Metrics("run", "eval").back()["proxies"];
  EXPECT_EQ(proxies["proxies"], 32);
  EXPECT_GE(proxies["on_clip_sphere"].get<int64_t>(), 0);
  EXPECT_LE(proxies["depth"]["min"].get<double>(), proxies["depth"]["median"].get<double>());
  EXPECT_LE(proxies["depth"]["median"].get<double>(), proxies["depth"]["max"].get<double>());
  EXPECT_THAT(io::ReadFile(Path("run/plots/hier_diagnostics.svg")), StartsWith("<svg"));

  train::TrainConfig no_hier = Tiny("plain");
  no_hier.lambda2 = 0;
  Train(no_hier);
  EXPECT_FALSE(Metrics("plain", "train")[0].contains("active_sample_proxy"));
  EXPECT_FALSE(Metrics("plain", "eval")[0].contains("proxies"));
}

TEST_F(TrainerTest, HierarchyJsonIsATreeTowardTheOrigin) {
  Train(Tiny("run"));
  const Json hierarchy = Json::parse(io::ReadFile(Path("run/hierarchy.json")));
  const Json& proxies = hierarchy["proxies"];
  ASSERT_EQ(proxies.size(), 32u);
  EXPECT_TRUE(hierarchy["trained_proxies"].get<bool>());
  int64_t members = 0;
  for (const Json& proxy : proxies) {
    members += proxy["members"].get<int64_t>();
    const int64_t parent = proxy["parent"];
    if (parent >= 0) {
      EXPECT_LT(proxies[parent]["depth"].get<double>(), proxy["depth"].get<double>());
      EXPECT_EQ(proxy["level"].get<int64_t>(), proxies[parent]["level"].get<int64_t>() + 1);
    }
    // Following parents reaches the root (-1) within as many steps as there are proxies.
    int64_t node = proxy["id"], hops = 0;
    while (node >= 0 && hops <= 32) node = proxies[node]["parent"], ++hops;
    EXPECT_EQ(node, -1);
  }
  EXPECT_EQ(members, 50);  // every test image belongs to one proxy
  ASSERT_EQ(hierarchy["classes"].size(), 10u);
  EXPECT_EQ(hierarchy["classes"][1]["name"], "Trouser");
}

TEST_F(TrainerTest, InterruptedAndResumedRunEndsWhereAnUninterruptedOneDoes) {
  Train(Tiny("straight"));
  const train::TrainSummary stopped = Train(Tiny("resumed"), /*stop_at_once=*/true);
  EXPECT_TRUE(stopped.interrupted);
  EXPECT_EQ(stopped.steps, 1);
  EXPECT_EQ(Json::parse(io::ReadFile(Path("resumed/status.json")))["state"], "interrupted");

  train::TrainConfig resume = Tiny("resumed");
  resume.resume = true;
  const train::TrainSummary finished = Train(resume);
  EXPECT_EQ(finished.steps, 18);

  const train::InferenceModel a =
      train::LoadInferenceModel(*train::LatestCheckpoint(Path("straight/checkpoints")));
  const train::InferenceModel b =
      train::LoadInferenceModel(*train::LatestCheckpoint(Path("resumed/checkpoints")));
  const auto pa = a.net->named_parameters(), pb = b.net->named_parameters();
  for (const auto& item : pa) {
    EXPECT_TRUE(at::allclose(item.value(), pb[item.key()], 1e-4, 1e-5)) << item.key();
  }
  const std::vector<Json> eval_a = Metrics("straight", "eval"), eval_b = Metrics("resumed", "eval");
  ASSERT_EQ(eval_a.size(), eval_b.size());
  EXPECT_EQ(eval_a.back()["recall"], eval_b.back()["recall"]);
  EXPECT_EQ(Metrics("straight", "train").size(), Metrics("resumed", "train").size());
}

TEST_F(TrainerTest, RefusesToOverwriteAFinishedRun) {
  Train(Tiny("run"));
  EXPECT_THAT(ErrorMessage([&] { train::Trainer again(Tiny("run")); }),
              HasSubstr("--run-dir: " + Path("run") + " already holds a run"));
}

TEST_F(TrainerTest, ScoreReadsTheRunAndTheClassTree) {
  io::WriteFileAtomically(Path("groups.json"),
                          R"({"tops": ["T-shirt/top", "Pullover", "Coat", "Shirt", "Dress"],
                              "footwear": ["Sandal", "Sneaker", "Ankle boot"],
                              "trousers": ["Trouser"], "bags": ["Bag"]})");
  Train(Tiny("run"));
  const train::RunScore score = train::ScoreRun(Path("run"), Path("groups.json"));
  ASSERT_TRUE(score.discovery.has_value());
  EXPECT_EQ(score.discovery->same_pairs, 10 + 3);
  EXPECT_EQ(score.discovery->cross_pairs, 45 - 13);
  EXPECT_TRUE(score.trained_proxies);
  const Json saved = Json::parse(io::ReadFile(Path("run/discovery.json")));
  EXPECT_EQ(saved["lca_height_auc"].get<double>(), score.discovery->lca_height_auc);
  EXPECT_EQ(saved["same_pairs"], 13);
  // The best model's metrics are the ones its own evaluation logged (same images, same model; the
  // embeddings may differ in the last bits with another thread count).
  const Json best_eval = [&] {
    const int64_t best_step = train::ReadVerifiedManifest(Path("run/best")).position.step;
    for (const Json& line : Metrics("run", "eval")) {
      if (line["step"] == best_step) return line;
    }
    return Json();
  }();
  ASSERT_TRUE(best_eval.contains("metrics"));
  for (const char* name : {"R@1", "R@2", "MAP@R", "R-Precision"}) {
    EXPECT_NEAR(score.metrics.at(name), best_eval["metrics"][name].get<double>(), 1e-6) << name;
  }
  for (const char* name : {"mistake_severity", "HD@1", "super_R@2"}) {
    EXPECT_TRUE(score.metrics.count(name)) << name;
  }
  const Json printed = Json::parse(score.json);
  EXPECT_EQ(printed["metrics"]["MAP@R"].get<double>(), score.metrics.at("MAP@R"));

  const train::RunScore without_tree = train::ScoreRun(Path("run"), "");
  EXPECT_FALSE(without_tree.discovery.has_value());
  EXPECT_EQ(without_tree.metrics.count("mistake_severity"), 0u);
  EXPECT_EQ(without_tree.metrics.at("MAP@R"), score.metrics.at("MAP@R"));

  io::WriteFileAtomically(Path("bad.json"), R"({"tops": ["Jumper"]})");
  EXPECT_THAT(ErrorMessage([&] { train::ScoreRun(Path("run"), Path("bad.json")); }),
              HasSubstr("class 'T-shirt/top'"));
}

// A scripted backbone written without Python: a strided conv and ReLU whose maps the network
// pools, times a per-channel `scale` saved with requires_grad off (so it must stay frozen).
void WriteScriptedBackbone(const std::string& path) {
  torch::jit::Module script("TinyBackbone");
  torch::manual_seed(3);
  script.register_parameter("weight", (torch::randn({8, 3, 3, 3}) * 0.3).requires_grad_(), false);
  script.register_parameter("bias", torch::zeros({8}).requires_grad_(), false);
  script.register_parameter("scale", torch::full({8}, 0.5), false);
  script.define(R"(
    def forward(self, x):
        y = torch.conv2d(x, self.weight, self.bias, [2, 2], [1, 1])
        return torch.relu(y) * self.scale.view(1, -1, 1, 1)
  )");
  script.save(path);
}

TEST_F(TrainerTest, TorchScriptBackboneFromAFileTrainsAndTravelsWithTheCheckpoint) {
  WriteScriptedBackbone(Path("backbone.pt"));
  train::TrainConfig config = Tiny("run");
  config.model = "torchscript";
  config.backbone_file = Path("backbone.pt");
  config.epochs = 1;
  train::Validate(config);
  const train::TrainSummary summary = Train(config);
  EXPECT_EQ(summary.steps, 6);
  EXPECT_GT(summary.best_recall[0], 0.0);

  // best/ holds its own copy of the script: the model is rebuilt without the original file.
  fs::remove(Path("backbone.pt"));
  train::InferenceModel model = train::LoadInferenceModel(Path("run/best"));
  EXPECT_EQ(model.info.architecture.architecture(), "torchscript");
  EXPECT_EQ(model.info.preprocessing.channels, 3);  // Fashion-MNIST's gray, replicated
  const auto trained = model.net->body->named_parameters();
  WriteScriptedBackbone(Path("original.pt"));
  const torch::jit::Module original = torch::jit::load(Path("original.pt"));
  const at::Tensor weight = original.attr("weight").toTensor();
  EXPECT_FALSE(at::allclose(trained["weight"], weight));                        // trained
  EXPECT_TRUE(at::equal(trained["scale"], original.attr("scale").toTensor()));  // frozen
  const at::Tensor z = model.net->forward(torch::rand({2, 3, 28, 28}));
  EXPECT_EQ(z.sizes(), (at::IntArrayRef{2, 16}));
}

TEST_F(TrainerTest, ImageFolderWithAResNetAndACorruptFileTrainsAndReportsTheSkip) {
  // 4 classes of 5 images: classes a, b train and c, d evaluate; one of d's files is corrupt.
  for (int c = 0; c < 4; ++c) {
    for (int i = 0; i < 5; ++i) {
      const std::string path = Path("images/" + std::string(1, 'a' + c) + "/" + std::to_string(i) +
                                    (i % 2 ? ".png" : ".jpg"));
      if (c == 3 && i == 4) {
        WriteCorruptImage(path);
      } else {
        WriteImage(path, NoiseImage(40 + 4 * i, 48, i == 1 ? CV_8UC1 : CV_8UC3, 10 * c + i));
      }
    }
  }
  train::TrainConfig config = Tiny("run");
  config.dataset = "folder";
  config.data_dir = Path("images");
  config.model = "resnet18";
  config.bn_freeze = true;
  config.image_size = 32;
  config.resize = 36;
  config.batch_size = 4;
  config.epochs = 1;
  config.steps_per_epoch = 2;
  config.recall_k = {1};
  train::Validate(config);
  const train::TrainSummary summary = Train(config);
  EXPECT_EQ(summary.steps, 2);
  ASSERT_EQ(summary.best_recall.size(), 1u);

  const Json status = Json::parse(io::ReadFile(Path("run/status.json")));
  EXPECT_EQ(status["state"], "finished");
  EXPECT_EQ(status["skipped_files"], 1);
  const train::CheckpointInfo info = train::ReadVerifiedManifest(Path("run/best"));
  EXPECT_EQ(info.architecture.architecture(), "resnet18");
  EXPECT_EQ(info.preprocessing.channels, 3);
  EXPECT_EQ(info.preprocessing.resize, 36);
  EXPECT_EQ(info.preprocessing.crop, 32);
  EXPECT_EQ(info.preprocessing.mean, (std::vector<double>{0.485, 0.456, 0.406}));
  EXPECT_EQ(info.class_names, (std::vector<std::string>{"a", "b"}));
  // The hierarchy report covers the 9 decodable evaluation images, of classes c and d.
  const Json hierarchy = Json::parse(io::ReadFile(Path("run/hierarchy.json")));
  EXPECT_EQ(hierarchy["points"]["count"], 9);
  int64_t members = 0;
  for (const Json& proxy : hierarchy["proxies"]) members += proxy["members"].get<int64_t>();
  EXPECT_EQ(members, 9);
  ASSERT_EQ(hierarchy["classes"].size(), 2u);
  EXPECT_EQ(hierarchy["classes"][1]["name"], "d");
  EXPECT_EQ(hierarchy["classes"][1]["members"], 4);
}

}  // namespace
}  // namespace hier::testing
