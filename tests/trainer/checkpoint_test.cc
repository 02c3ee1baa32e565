#include "trainer/train/checkpoint.h"

#include <ATen/ATen.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <torch/optim/adamw.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <thread>

#include "tests/core/error_message.h"
#include "tests/trainer/temp_dir_test.h"

namespace hier::testing {
namespace {

namespace fs = std::filesystem;
using ::testing::AllOf;
using ::testing::HasSubstr;

// A small model, objective and optimiser that have taken one training step.
struct Trained {
  explicit Trained(uint64_t seed) {
    torch::manual_seed(seed);
    net = model::EmbeddingNet(model::EmbeddingNetOptions().emb(8));
    core::ObjectiveOptions options(4, 8);
    options.hier(core::HierLossOptions(8).num_proxies(16).topk(4));
    objective = core::Objective(options);
    std::vector<at::Tensor> params = net->parameters();
    for (const at::Tensor& p : objective->parameters()) params.push_back(p);
    optimizer = std::make_unique<torch::optim::AdamW>(params);
  }

  void Step(uint64_t seed) {
    torch::manual_seed(seed);
    const at::Tensor images = torch::randn({8, 1, 28, 28});
    const at::Tensor labels = torch::tensor({0, 0, 1, 1, 2, 2, 3, 3});
    objective->forward(net->forward(images), labels, seed).total.backward();
    optimizer->step();
    optimizer->zero_grad();
  }

  train::TrainedState State() { return {net, objective, optimizer.get()}; }

  model::EmbeddingNet net{nullptr};
  core::Objective objective{nullptr};
  std::unique_ptr<torch::optim::AdamW> optimizer;
};

train::CheckpointInfo Info(int64_t step) {
  train::CheckpointInfo info;
  info.architecture.emb(8);
  info.class_names = {"a", "b", "c", "d"};
  info.config_json = R"({"emb": 8})";
  info.position.step = step;
  info.position.epoch = step / 10;
  info.position.batch = step % 10;
  info.position.best_recall = {0.5, 0.75};
  info.position.best_step = step;
  return info;
}

void ExpectSameParameters(torch::nn::Module& a, torch::nn::Module& b) {
  const auto pa = a.named_parameters(), pb = b.named_parameters();
  ASSERT_EQ(pa.size(), pb.size());
  for (const auto& item : pa) {
    EXPECT_TRUE(at::equal(item.value(), pb[item.key()])) << item.key();
  }
}

void FlipByte(const fs::path& file, std::streamoff offset) {
  std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
  f.seekg(offset);
  char byte = 0;
  f.read(&byte, 1);
  byte ^= 0x5a;
  f.seekp(offset);
  f.write(&byte, 1);
}

class CheckpointTest : public TempDirTest {};

TEST_F(CheckpointTest, RoundTripRestoresWeightsOptimizerAndPosition) {
  Trained original(1);
  original.Step(10);
  const std::string dir = train::SaveCheckpoint(Path("ckpt"), original.State(), Info(7));
  EXPECT_EQ(fs::path(dir).filename(), "0000000007");

  Trained restored(2);  // different initial weights
  const train::CheckpointInfo info = train::RestoreCheckpoint(dir, restored.State());
  ExpectSameParameters(*original.net, *restored.net);
  ExpectSameParameters(*original.objective, *restored.objective);
  EXPECT_EQ(info.position.step, 7);
  EXPECT_EQ(info.position.batch, 7);
  EXPECT_EQ(info.position.best_recall, (std::vector<double>{0.5, 0.75}));
  EXPECT_EQ(info.class_names, (std::vector<std::string>{"a", "b", "c", "d"}));
  // The optimiser state came back too: the same next step gives the same weights.
  original.Step(11);
  restored.Step(11);
  ExpectSameParameters(*original.net, *restored.net);
}

TEST_F(CheckpointTest, InferenceModelIsRebuiltFromTheManifestAlone) {
  Trained original(3);
  original.Step(4);
  const std::string dir = train::SaveCheckpoint(Path("ckpt"), original.State(), Info(1));
  train::InferenceModel loaded = train::LoadInferenceModel(dir);
  EXPECT_EQ(loaded.net->options.emb(), 8);
  EXPECT_EQ(loaded.info.preprocessing.crop, 28);
  EXPECT_EQ(loaded.info.preprocessing.mean, std::vector<double>{0.2860});
  original.net->eval();
  const at::Tensor images = torch::randn({3, 1, 28, 28});
  EXPECT_TRUE(at::allclose(loaded.net->forward(images), original.net->forward(images)));
}

TEST_F(CheckpointTest, CorruptionIsDetectedAndTheOlderCheckpointUsed) {
  Trained trained(5);
  const std::string older = train::SaveCheckpoint(Path("ckpt"), trained.State(), Info(1));
  const std::string newer = train::SaveCheckpoint(Path("ckpt"), trained.State(), Info(2));
  EXPECT_EQ(train::LatestCheckpoint(Path("ckpt")), newer);

  FlipByte(fs::path(newer) / "model.pt", 100);
  EXPECT_THAT(ErrorMessage([&] { train::ReadVerifiedManifest(newer); }),
              HasSubstr("model.pt does not match its SHA-256"));
  EXPECT_EQ(train::LatestCheckpoint(Path("ckpt")), older);

  fs::resize_file(fs::path(older) / "optimizer.pt", 10);
  EXPECT_THAT(ErrorMessage([&] { train::ReadVerifiedManifest(older); }),
              HasSubstr("optimizer.pt has 10 bytes"));
  EXPECT_FALSE(train::LatestCheckpoint(Path("ckpt")).has_value());
  EXPECT_THAT(ErrorMessage([&] { train::LoadInferenceModel(older); }), HasSubstr(older));
}

// Found by trainer_json_fuzz (tests/fuzz/corpus/trainer_json_fuzz/manifest-*): a manifest of
// another shape let nlohmann's exceptions out of ReadVerifiedManifest, past LatestCheckpoint
// (which passes over damaged checkpoints) and out of hier-train, and a float where an integer
// belongs was converted out of range.
TEST_F(CheckpointTest, AManifestOfAnotherShapeIsADamagedCheckpoint) {
  Trained trained(9);
  const std::string saved = train::SaveCheckpoint(Path("ckpt"), trained.State(), Info(1));
  const fs::path manifest = fs::path(saved) / "manifest.json";
  const nlohmann::json good = nlohmann::json::parse(std::ifstream(manifest));
  const struct {
    const char* name;
    std::function<void(nlohmann::json&)> damage;
    const char* problem;
  } cases[] = {
      {"a listed file without its size",
       [](nlohmann::json& m) { m["files"]["model.pt"].erase("bytes"); }, "key 'bytes' not found"},
      {"files that are not an object",
       [](nlohmann::json& m) {
         m["files"] = {1, 2};
       },
       "lists no model.pt"},
      {"a size that is a string", [](nlohmann::json& m) { m["files"]["model.pt"]["bytes"] = "1"; },
       "the size \"1\""},
      {"a file outside the folder",
       [](nlohmann::json& m) {
         m["files"]["../ckpt/x"] = {{"bytes", 0}, {"sha256", ""}};
       },
       "'../ckpt/x', which is not a file name"},
      {"a file name too long for the file system",
       [](nlohmann::json& m) {
         m["files"][std::string(300, 'x')] = {{"bytes", 0}, {"sha256", ""}};
       },
       "File name too long"},
      {"an epoch out of the integer range",
       [](nlohmann::json& m) { m["position"]["epoch"] = 1e300; },
       "epoch is 1e+300, not an integer"},
      {"a version that is a string", [](nlohmann::json& m) { m["version"] = "2"; },
       "not a version 2 checkpoint manifest"},
  };
  for (const auto& c : cases) {
    nlohmann::json damaged = good;
    c.damage(damaged);
    std::ofstream(manifest, std::ios::trunc) << damaged.dump();
    EXPECT_THAT(ErrorMessage([&] { train::ReadVerifiedManifest(saved); }),
                AllOf(HasSubstr("checkpoint " + saved + ": "), HasSubstr(c.problem)))
        << c.name;
    EXPECT_FALSE(train::LatestCheckpoint(Path("ckpt")).has_value()) << c.name;
  }
}

TEST_F(CheckpointTest, PruneKeepsTheNewestAndRemovesStagingFolders) {
  Trained trained(6);
  for (int64_t step : {5, 10, 15, 20})
    train::SaveCheckpoint(Path("ckpt"), trained.State(), Info(step));
  fs::create_directory(Path("ckpt/.tmp-0000000025-999"));
  train::PruneCheckpoints(Path("ckpt"), 2);
  std::vector<std::string> left;
  for (const auto& entry : fs::directory_iterator(Path("ckpt"))) {
    left.push_back(entry.path().filename().string());
  }
  std::sort(left.begin(), left.end());
  EXPECT_EQ(left, (std::vector<std::string>{"0000000015", "0000000020"}));
}

TEST_F(CheckpointTest, PublishCopyReplacesTheTargetWhole) {
  Trained trained(7);
  const std::string first = train::SaveCheckpoint(Path("ckpt"), trained.State(), Info(1));
  train::PublishCopy(first, Path("best"));
  EXPECT_EQ(train::ReadVerifiedManifest(Path("best")).position.step, 1);
  trained.Step(3);
  const std::string second = train::SaveCheckpoint(Path("ckpt"), trained.State(), Info(2));
  train::PublishCopy(second, Path("best"));
  EXPECT_EQ(train::ReadVerifiedManifest(Path("best")).position.step, 2);
  // The copy outlives its source.
  train::PruneCheckpoints(Path("ckpt"), 1);
  fs::remove_all(second);
  EXPECT_EQ(train::ReadVerifiedManifest(Path("best")).position.step, 2);
  for (const auto& entry : fs::directory_iterator(dir_)) {
    EXPECT_NE(entry.path().filename().string().rfind(".tmp-", 0), 0u) << entry.path();
  }
}

TEST_F(CheckpointTest, KilledWhileWritingLeavesThePreviousCheckpointLoadable) {
  Trained trained(8);
  trained.Step(1);
  for (int attempt = 0; attempt < 6; ++attempt) {
    const std::string root = Path("kill" + std::to_string(attempt));
    const pid_t child = fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      for (int64_t step = 1;; ++step) train::SaveCheckpoint(root, trained.State(), Info(step));
    }
    // Wait for a first complete checkpoint, then kill at a varying point of a later write.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (!train::LatestCheckpoint(root) && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(3 * attempt + 1));
    kill(child, SIGKILL);
    waitpid(child, nullptr, 0);

    const std::optional<std::string> latest = train::LatestCheckpoint(root);
    ASSERT_TRUE(latest.has_value()) << root;
    Trained restored(9);
    EXPECT_NO_THROW(train::RestoreCheckpoint(*latest, restored.State())) << *latest;
    ExpectSameParameters(*trained.net, *restored.net);
    // Whatever the kill interrupted is a staging folder or absent, never a bad final folder.
    for (const auto& entry : fs::directory_iterator(root)) {
      const std::string name = entry.path().filename().string();
      if (name.rfind(".tmp-", 0) == 0) continue;
      EXPECT_NO_THROW(train::ReadVerifiedManifest(entry.path().string())) << name;
    }
  }
}

}  // namespace
}  // namespace hier::testing
