#include "trainer/train/train_config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "tests/trainer/fake_fashion_mnist.h"
#include "tests/trainer/temp_dir_test.h"

namespace hier::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;
using train::ConfigError;
using train::TrainConfig;

class TrainConfigTest : public TempDirTest {
 protected:
  void SetUp() override {
    TempDirTest::SetUp();
    WriteFakeFashionMnist(dir_, 2, 1);
  }

  // The one-line message of parsing then validating `args` (on top of a valid data directory).
  std::string Problem(std::vector<std::string> args) const {
    args.insert(args.begin(), {"--data-dir", dir_});
    try {
      TrainConfig config;
      train::ApplyFlags(args, config);
      train::Validate(config);
    } catch (const ConfigError& e) {
      EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos) << e.what();
      return e.what();
    }
    return "valid";
  }
};

TEST_F(TrainConfigTest, DefaultsAreValid) { EXPECT_EQ(Problem({}), "valid"); }

struct BadCase {
  std::vector<std::string> args;
  std::string flag;     // the message starts with it
  std::string details;  // and contains this
};

TEST_F(TrainConfigTest, BadValuesNameTheirFlag) {
  const std::vector<BadCase> cases = {
      {{"--emb", "0"}, "--emb:", "must be > 0, got 0"},
      {{"--emb", "-3"}, "--emb:", "got -3"},
      {{"--ipc", "200"}, "--ipc:", "must be <= --batch-size (180)"},
      {{"--batch-size", "100", "--ipc", "18"}, "--batch-size:", "multiple of --ipc"},
      {{"--c", "0"}, "--c:", "must be > 0"},
      {{"--c", "-0.1"}, "--c:", "must be > 0"},
      {{"--c", "nan"}, "--c:", ""},
      {{"--loss", "Triplet"}, "--loss:", "PA, MS, SupCon"},
      {{"--optimizer", "lbfgs"}, "--optimizer:", "adamw, sgd"},
      {{"--lr-decay", "linear"}, "--lr-decay:", "none, step, cosine"},
      {{"--lr", "0"}, "--lr:", "must be > 0"},
      {{"--epochs", "0"}, "--epochs:", ">= 1"},
      {{"--warmup-epochs", "10"}, "--warmup-epochs:", "[0, --epochs)"},
      {{"--topk", "1"}, "--topk:", "[2, batch size x nproc]"},
      {{"--batch-size", "10", "--ipc", "2", "--topk", "12"}, "--topk:", "got 12"},
      {{"--num-proxies", "8"}, "--topk:", "<= --num-proxies"},
      {{"--lambda1", "0", "--lambda2", "0"}, "--lambda1:", "cannot both be 0"},
      {{"--recall-k", "1,0"}, "--recall-k:", "every K must be >= 1"},
      {{"--recall-k", "1,x"}, "--recall-k:", "expected a number"},
      {{"--emb", "12abc"}, "--emb:", "expected a number, got '12abc'"},
      {{"--seed", "-1"}, "--seed:", ">= 0"},
      {{"--augment", "maybe"}, "--augment:", "true or false"},
      {{"--device", "tpu"}, "--device:", "auto, cpu, cuda"},
      {{"--model", "resnet"}, "--model:", "small-cnn"},
      {{"--groups", "/no/such/groups.json"}, "--groups:", "/no/such/groups.json"},
      {{"--data-dir", "/no/such/dir"}, "--data-dir:", "/no/such/dir"},
      {{"--embb", "3"}, "unknown flag --embb", ""},
      {{"--emb"}, "--emb:", "missing value"},
      {{"extra"}, "unexpected argument 'extra'", ""},
      {{"--dataset", "imagenet"}, "--dataset:", "fashion-mnist, folder, list, cub, cars, sop"},
      {{"--dataset", "cub"}, "--data-dir:", "the cub layout needs"},
      {{"--dataset", "inshop"}, "--data-dir:", "list_eval_partition.txt"},
      // Found by trainer_json_fuzz (corpus: config-data-dir-too-long): a path the file system
      // refuses threw std::filesystem::filesystem_error out of Validate, ending hier-train.
      {{"--dataset", "cub", "--data-dir", std::string(300, 'd')}, "--data-dir:", "layout needs"},
      {{"--data-dir", std::string(300, 'd')}, "--data-dir:", "has no train-images-idx3-ubyte"},
      {{"--model", "torchscript"}, "--backbone-file:", "required by --model torchscript"},
      {{"--model", "torchscript", "--backbone-file", "/no/such.ts"},
       "--backbone-file:",
       "cannot read /no/such.ts"},
      {{"--backbone-file", "x.ts"}, "--backbone-file:", "only used with --model torchscript"},
      {{"--pretrained", "w.ts"}, "--pretrained:", "only for resnet18 and resnet50"},
      {{"--model", "resnet50", "--pretrained", "/no/w.ts"}, "--pretrained:", "cannot read"},
      {{"--mean", "0.1,0.2"}, "--mean:", "needs 1 values (one per input channel) or none"},
      {{"--model", "resnet18", "--std", "0.2"}, "--std:", "needs 3 values"},
      {{"--std", "0"}, "--std:", "every value must be > 0"},
      {{"--image-size", "8"}, "--image-size:", "[16, 4096]"},
      {{"--resize", "100"}, "--resize:", "[--image-size, 8192]"},
      {{"--crop-scale-min", "0"}, "--crop-scale-min:", "(0, 1]"},
      {{"--decode-threads", "0"}, "--decode-threads:", "[1, 256]"},
      {{"--nproc", "0"}, "--nproc:", "[1, 64]"},
      {{"--batch-size", "1"}, "--batch-size:", "must be in [2, 1048576]"},
      // Found with trainer_json_fuzz and job_config_fuzz (corpora: config-global-batch-overflow,
      // global-batch-overflow): the global batch was computed before the batch size was bounded,
      // and overflowed (undefined behaviour, from a StartTraining request too).
      {{"--batch-size", "4611686018427387904", "--nproc", "4"},
       "--batch-size:",
       "must be in [2, 1048576], got 4611686018427387904"},
      {{"--dist-backend", "mpi"}, "--dist-backend:", "auto, gloo, nccl"},
      {{"--dist-timeout", "0"}, "--dist-timeout:", ">= 1 second"},
      {{"--backbone-lr-scale", "-1"}, "--backbone-lr-scale:", ">= 0"},
      {{"--adam-eps", "0"}, "--adam-eps:", "must be > 0"},
      {{"--protocol", "open"}, "--protocol:", "closed, disjoint"},
      {{"--protocol", "disjoint", "--dataset", "list", "--data-dir", "/no/such.tsv"},
       "--protocol:",
       "fashion-mnist only"},
  };
  for (const BadCase& bad : cases) {
    const std::string message = Problem(bad.args);
    EXPECT_THAT(message, StartsWith(bad.flag)) << bad.args[0];
    EXPECT_THAT(message, HasSubstr(bad.details)) << bad.args[0];
  }
}

TEST_F(TrainConfigTest, ProtocolRecallListsAndInputChannelsFollowTheDataSet) {
  TrainConfig config;
  EXPECT_EQ(train::RecallKs(config), (std::vector<int64_t>{1, 2, 4, 8}));
  EXPECT_EQ(train::InputChannels(config), 1);
  config.dataset = "sop";
  EXPECT_EQ(train::RecallKs(config), (std::vector<int64_t>{1, 10, 100, 1000}));
  EXPECT_EQ(train::InputChannels(config), 3);
  config.dataset = "inshop";
  EXPECT_EQ(train::RecallKs(config), (std::vector<int64_t>{1, 10, 20, 30}));
  config.recall_k = {1, 5};
  EXPECT_EQ(train::RecallKs(config), (std::vector<int64_t>{1, 5}));
  config.dataset = "fashion-mnist";
  config.model = "resnet18";  // ResNets take RGB: Fashion-MNIST's gray is replicated
  EXPECT_EQ(train::InputChannels(config), 3);
}

TEST_F(TrainConfigTest, MissingDataIsReportedBeforeAnyWork) {
  std::filesystem::remove(Path("t10k-labels-idx1-ubyte"));
  EXPECT_THAT(Problem({}), HasSubstr("t10k-labels-idx1-ubyte"));
}

TEST_F(TrainConfigTest, FlagsAcceptBothSpellingsAndBareBooleans) {
  TrainConfig config;
  train::ApplyFlags({"--batch_size=60", "--eval-every", "2", "--resume", "--recall-k", "1,5"},
                    config);
  EXPECT_EQ(config.batch_size, 60);
  EXPECT_EQ(config.eval_every, 2);
  EXPECT_TRUE(config.resume);
  EXPECT_EQ(config.recall_k, (std::vector<int64_t>{1, 5}));
}

TEST_F(TrainConfigTest, ConfigFileAndFlagsApplyInOrder) {
  std::ofstream(Path("config.json")) << R"({"emb": 32, "lr": 0.01, "loss": "MS"})";
  TrainConfig config;
  train::ApplyFlags({"--emb", "16", "--config", Path("config.json"), "--lr", "0.5"}, config);
  EXPECT_EQ(config.emb, 32);  // the file came after --emb
  EXPECT_EQ(config.loss, "MS");
  EXPECT_DOUBLE_EQ(config.lr, 0.5);  // the flag came after the file
}

TEST_F(TrainConfigTest, JsonRoundTripsEveryField) {
  TrainConfig config;
  train::ApplyFlags({"--emb", "24", "--lambda2", "0", "--recall-k", "1,3", "--seed", "9",
                     "--augment", "false", "--run-dir", "runs/x"},
                    config);
  TrainConfig copy;
  train::ApplyJson(train::ToJson(config), copy, "round trip");
  EXPECT_EQ(train::ToJson(copy), train::ToJson(config));
  EXPECT_EQ(copy.recall_k, config.recall_k);
  EXPECT_FALSE(copy.augment);
}

TEST_F(TrainConfigTest, JsonMistakesNameTheKey) {
  TrainConfig config;
  auto problem = [&](const std::string& json) {
    try {
      train::ApplyJson(json, config, "test.json");
    } catch (const ConfigError& e) {
      return std::string(e.what());
    }
    return std::string("accepted");
  };
  EXPECT_THAT(problem(R"({"embedding": 3})"), HasSubstr("unknown key 'embedding' in test.json"));
  EXPECT_THAT(problem(R"({"emb": "big"})"), StartsWith("--emb: in test.json"));
  EXPECT_THAT(problem(R"({"emb": 1.5})"), StartsWith("--emb:"));
  EXPECT_THAT(problem(R"({"seed": -2})"), StartsWith("--seed:"));
  EXPECT_THAT(problem(R"([1, 2])"), HasSubstr("must hold a JSON object"));
  EXPECT_THAT(problem(R"({"emb": )"), HasSubstr("not valid JSON"));
  // Found by trainer_json_fuzz (corpus: config-number-overflow): a number beyond a double threw
  // nlohmann's out_of_range, which ApplyJson let out (hier-train ended on it).
  EXPECT_THAT(problem(R"({"lr": 1e999})"), HasSubstr("not valid JSON"));
}

// Found by trainer_json_fuzz (corpus: config-recall-k-out-of-range): a float in an integer list
// was converted to int64 out of range; an unsigned number beyond int64 wrapped around.
TEST_F(TrainConfigTest, NumbersThatAreNotTheMembersTypeAreRefused) {
  for (const char* json :
       {R"({"recall_k": [1, 1e300]})", R"({"recall_k": [2.5]})", R"({"recall_k": 4})",
        R"({"emb": 18446744073709551615})", R"({"seed": 1.0})"}) {
    TrainConfig config;
    EXPECT_THROW(train::ApplyJson(json, config, "test.json"), ConfigError) << json;
  }
  TrainConfig config;
  train::ApplyJson(R"({"recall_k": [1, 5], "seed": 18446744073709551615})", config, "test.json");
  EXPECT_EQ(config.recall_k, (std::vector<int64_t>{1, 5}));
  EXPECT_EQ(config.seed, 18446744073709551615u);
}

TEST_F(TrainConfigTest, HelpListsEveryFlagWithItsDefault) {
  const std::string help = train::ConfigHelp();
  EXPECT_THAT(help, HasSubstr("--emb"));
  EXPECT_THAT(help, HasSubstr("(default 128)"));
  EXPECT_THAT(help, HasSubstr("--lambda2"));
}

}  // namespace
}  // namespace hier::testing
