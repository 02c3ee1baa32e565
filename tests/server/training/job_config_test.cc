#include "server/training/job_config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace hier::testing {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

constexpr char kFashionMnist[] = "/usr/share/datasets/fashion-mnist";

TEST(ToTrainerJsonTest, WritesSetFieldsAsNumbersUnderTheirNames) {
  hier::v1::TrainingConfig config;
  config.set_emb(8);
  config.set_lr(0.002);
  config.set_augment(false);
  config.set_seed(7);
  config.set_model("small-cnn");
  config.add_recall_k(1);
  config.add_recall_k(4);
  const nlohmann::json json = nlohmann::json::parse(server::ToTrainerJson(config));
  EXPECT_EQ(json.size(), 6u) << json.dump();
  EXPECT_TRUE(json["emb"].is_number_integer());
  EXPECT_EQ(json["emb"], 8);
  EXPECT_DOUBLE_EQ(json["lr"].get<double>(), 0.002);
  EXPECT_EQ(json["augment"], false);  // set to its default still goes to the trainer
  EXPECT_EQ(json["seed"], 7);
  EXPECT_EQ(json["model"], "small-cnn");
  EXPECT_EQ(json["recall_k"], nlohmann::json::array({1, 4}));
  EXPECT_FALSE(json.contains("data_dir"));
}

TEST(CheckJobNameTest, AcceptsTheAllowedCharactersOnly) {
  struct Case {
    std::string name;
    bool ok;
  };
  const Case cases[] = {{"", true},
                        {"fmnist_v2.1-a", true},
                        {std::string(64, 'a'), true},
                        {std::string(65, 'a'), false},
                        {"has space", false},
                        {"slash/name", false},
                        {"semi;colon", false},
                        {"ümlaut", false}};
  for (const Case& c : cases) {
    const absl::Status status = server::CheckJobName(c.name);
    EXPECT_EQ(status.ok(), c.ok) << c.name;
    if (!status.ok()) {
      EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
      EXPECT_THAT(std::string(status.message()), ::testing::StartsWith("name: "));
    }
  }
}

TEST(MakeJobIdTest, JoinsNameUtcTimeAndRandomHex) {
  const auto when = std::chrono::system_clock::from_time_t(1767225600 + 3723);  // 2026-01-01
  EXPECT_EQ(server::MakeJobId("fmnist", when, 0x00af), "fmnist-20260101-010203-00af");
  EXPECT_EQ(server::MakeJobId("", when, 0xbeef), "job-20260101-010203-beef");
}

class CheckTrainingConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(kFashionMnist)) GTEST_SKIP() << kFashionMnist << " is not installed";
    directory_ = fs::path(::testing::TempDir()) /
                 ("job-config-" + std::to_string(::getpid()) + "-" +
                  ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(directory_);
    fs::create_directories(directory_ / "root");
    fs::create_directories(directory_ / "outside");
    std::ofstream(directory_ / "root" / "groups.json") << R"({"tops": ["T-shirt/top"]})";
    std::ofstream(directory_ / "outside" / "groups.json") << "{}";
    // A link inside the root that points out of it.
    fs::create_directory_symlink(directory_ / "outside", directory_ / "root" / "escape");
    roots_ = {"/usr/share/datasets", (directory_ / "root").string()};
  }
  void TearDown() override { fs::remove_all(directory_); }

  fs::path directory_;
  std::vector<std::string> roots_;
};

TEST_F(CheckTrainingConfigTest, AcceptsAGoodConfigAndResolvesItsPaths) {
  hier::v1::TrainingConfig config;
  config.set_data_dir(std::string(kFashionMnist) + "/./");
  config.set_groups((directory_ / "root" / "groups.json").string());
  config.set_emb(8);
  absl::StatusOr<hier::v1::TrainingConfig> checked = server::CheckTrainingConfig(config, roots_);
  ASSERT_TRUE(checked.ok()) << checked.status();
  EXPECT_EQ(fs::path(checked->data_dir()), fs::weakly_canonical(kFashionMnist));
  EXPECT_EQ(checked->emb(), 8);
  EXPECT_FALSE(checked->has_pretrained());
}

TEST_F(CheckTrainingConfigTest, LeavesAnUnsetDataDirUnsetWhenItsDefaultIsAllowed) {
  absl::StatusOr<hier::v1::TrainingConfig> checked =
      server::CheckTrainingConfig(hier::v1::TrainingConfig(), roots_);
  ASSERT_TRUE(checked.ok()) << checked.status();
  EXPECT_FALSE(checked->has_data_dir());
}

// Every field that names a path, through every way out of the data roots: an absolute path
// outside, '..', a relative path (resolved against the server's working directory, not a root)
// and a link inside a root that points out of it.
TEST_F(CheckTrainingConfigTest, EveryPathFieldIsConfinedToTheDataRoots) {
  using Setter = void (hier::v1::TrainingConfig::*)(const std::string&);
  const std::pair<const char*, Setter> fields[] = {
      {"data_dir", &hier::v1::TrainingConfig::set_data_dir},
      {"groups", &hier::v1::TrainingConfig::set_groups},
      {"pretrained", &hier::v1::TrainingConfig::set_pretrained},
      {"backbone_file", &hier::v1::TrainingConfig::set_backbone_file},
  };
  const std::string root = (directory_ / "root").string();
  const std::string escapes[] = {
      (directory_ / "outside" / "groups.json").string(),
      root + "/../outside/groups.json",
      "../outside/groups.json",
      root + "/escape/groups.json",
  };
  for (const auto& [field, setter] : fields) {
    for (const std::string& escape : escapes) {
      hier::v1::TrainingConfig config;
      (config.*setter)(escape);
      const absl::StatusOr<hier::v1::TrainingConfig> checked =
          server::CheckTrainingConfig(config, roots_);
      ASSERT_FALSE(checked.ok()) << field << " = " << escape;
      EXPECT_THAT(checked.status().code(),
                  ::testing::AnyOf(absl::StatusCode::kPermissionDenied,
                                   absl::StatusCode::kInvalidArgument))
          << field << " = " << escape << ": " << checked.status();
      EXPECT_THAT(std::string(checked.status().message()),
                  HasSubstr(std::string("config.") + field + ": "))
          << field << " = " << escape;
    }
  }
}

TEST_F(CheckTrainingConfigTest, NamesTheFieldOfEachProblem) {
  struct Case {
    const char* what;
    std::function<void(hier::v1::TrainingConfig&)> change;
    std::vector<std::string> roots;  // empty: the fixture's
    absl::StatusCode code;
    std::vector<std::string> message_parts;
  };
  const std::string outside = (directory_ / "outside").string();
  const std::string root = (directory_ / "root").string();
  const std::vector<Case> cases = {
      {"bad lr",
       [](auto& c) { c.set_lr(-1); },
       {},
       absl::StatusCode::kInvalidArgument,
       {"config.lr: ", "> 0"}},
      {"ipc over batch",
       [](auto& c) {
         c.set_batch_size(40);
         c.set_ipc(80);
       },
       {},
       absl::StatusCode::kInvalidArgument,
       {"config.ipc: "}},
      // Found with job_config_fuzz (corpus: global-batch-overflow): the trainer's checks
      // multiplied the batch size by nproc before bounding it (signed overflow).
      {"a batch size whose global batch overflows",
       [](auto& c) {
         c.set_batch_size(int64_t{1} << 62);
         c.set_nproc(4);
       },
       {},
       absl::StatusCode::kInvalidArgument,
       {"config.batch_size: ", "[2, 1048576]"}},
      {"unknown loss",
       [](auto& c) { c.set_loss("nope"); },
       {},
       absl::StatusCode::kInvalidArgument,
       {"config.loss: ", "nope"}},
      {"data_dir outside",
       [&](auto& c) { c.set_data_dir(outside); },
       {},
       absl::StatusCode::kPermissionDenied,
       {"config.data_dir: ", outside, "/usr/share/datasets"}},
      {"data_dir with ..",
       [](auto& c) { c.set_data_dir("/usr/share/datasets/../../etc"); },
       {},
       absl::StatusCode::kInvalidArgument,
       {"config.data_dir: ", "'..'"}},
      {"data_dir through a link out of the root",
       [&](auto& c) { c.set_data_dir(root + "/escape"); },
       {},
       absl::StatusCode::kPermissionDenied,
       {"config.data_dir: ", outside}},
      {"groups outside",
       [&](auto& c) { c.set_groups(outside + "/groups.json"); },
       {},
       absl::StatusCode::kPermissionDenied,
       {"config.groups: "}},
      {"pretrained with ..",
       [&](auto& c) { c.set_pretrained(root + "/../outside/w.ts"); },
       {},
       absl::StatusCode::kInvalidArgument,
       {"config.pretrained: ", "'..'"}},
      {"backbone_file outside",
       [](auto& c) { c.set_backbone_file("/etc/passwd"); },
       {},
       absl::StatusCode::kPermissionDenied,
       {"config.backbone_file: ", "/etc/passwd"}},
      {"default data_dir outside the roots",
       [](auto&) {},
       {root},
       absl::StatusCode::kPermissionDenied,
       {"config.data_dir: ", kFashionMnist}},
      {"missing data set",
       [&](auto& c) { c.set_data_dir(root); },
       {},
       absl::StatusCode::kInvalidArgument,
       {"config.data_dir: "}},
  };
  for (const Case& c : cases) {
    hier::v1::TrainingConfig config;
    c.change(config);
    const absl::StatusOr<hier::v1::TrainingConfig> checked =
        server::CheckTrainingConfig(config, c.roots.empty() ? roots_ : c.roots);
    ASSERT_FALSE(checked.ok()) << c.what;
    EXPECT_EQ(checked.status().code(), c.code) << c.what << ": " << checked.status();
    for (const std::string& part : c.message_parts) {
      EXPECT_THAT(std::string(checked.status().message()), HasSubstr(part)) << c.what;
    }
  }
}

}  // namespace
}  // namespace hier::testing
