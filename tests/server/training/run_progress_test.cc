#include "server/training/run_progress.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

namespace hier::testing {
namespace {

namespace fs = std::filesystem;

class RunProgressTest : public ::testing::Test {
 protected:
  void SetUp() override {
    run_ = fs::path(::testing::TempDir()) /
           ("run-progress-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(run_);
    fs::create_directories(run_);
  }
  void TearDown() override { fs::remove_all(run_); }

  void Write(const char* name, const std::string& text, bool append = false) {
    std::ofstream out(run_ / name, append ? std::ios::app : std::ios::trunc);
    out << text;
  }

  fs::path run_;
};

TEST_F(RunProgressTest, ReadsStatusAndTheLatestEvaluation) {
  server::RunProgress reader(run_.string());
  hier::v1::Progress progress;
  EXPECT_EQ(reader.Poll(&progress).state, "");  // nothing written yet
  EXPECT_EQ(progress.step(), 0);

  Write("status.json", R"({"state": "running", "epoch": 1, "step": 12, "total_steps": 40,
      "eta_seconds": 3.5, "losses": {"loss": 2.5, "metric": 2.0, "hier": 1.0}, "message": ""})");
  Write("metrics.jsonl",
        R"({"kind":"train","step":10,"loss":2.6})"
        "\n"
        R"({"kind":"eval","epoch":1,"step":10,"recall":{"1":0.25,"2":0.5}})"
        "\n"
        R"({"kind":"eval","epoch":2,"step":20,"rec)");  // torn: still being written
  server::TrainerState state = reader.Poll(&progress);
  EXPECT_EQ(state.state, "running");
  EXPECT_EQ(progress.epoch(), 1);
  EXPECT_EQ(progress.step(), 12);
  EXPECT_EQ(progress.total_steps(), 40);
  EXPECT_DOUBLE_EQ(progress.eta_seconds(), 3.5);
  EXPECT_DOUBLE_EQ(progress.loss(), 2.5);
  EXPECT_DOUBLE_EQ(progress.metric_loss(), 2.0);
  EXPECT_DOUBLE_EQ(progress.hier_loss(), 1.0);
  ASSERT_EQ(progress.recall_size(), 2);
  EXPECT_DOUBLE_EQ(progress.recall().at("R@1"), 0.25);

  Write("metrics.jsonl",
        R"(all":{"1":0.75}})"
        "\n",
        /*append=*/true);
  reader.Poll(&progress);
  ASSERT_EQ(progress.recall_size(), 1);
  EXPECT_DOUBLE_EQ(progress.recall().at("R@1"), 0.75);

  // A resumed run rewrites the file shorter, then appends.
  Write("metrics.jsonl", R"({"kind":"eval","step":5,"recall":{"1":0.5}})"
                         "\n");
  reader.Poll(&progress);
  EXPECT_DOUBLE_EQ(progress.recall().at("R@1"), 0.5);

  Write("status.json", R"({"state": "failed", "message": "out of memory"})");
  state = reader.Poll(&progress);
  EXPECT_EQ(state.state, "failed");
  EXPECT_EQ(state.message, "out of memory");
  EXPECT_EQ(progress.step(), 12);  // missing keys keep what was read before
}

// Found by server_json_fuzz (corpus: status-epoch-out-of-range): a float where status.json holds
// an integer was converted to int64 out of range; it now leaves the field as it was.
TEST_F(RunProgressTest, NumbersThatAreNotIntegersLeaveTheirFieldAsItWas) {
  server::RunProgress reader(run_.string());
  hier::v1::Progress progress;
  Write("status.json", R"({"state": "running", "epoch": 2, "step": 12, "total_steps": 40})");
  reader.Poll(&progress);
  Write("status.json", R"({"state": "running", "epoch": 1e300, "step": 13.5,
      "total_steps": 18446744073709551615})");
  EXPECT_EQ(reader.Poll(&progress).state, "running");
  EXPECT_EQ(progress.epoch(), 2);
  EXPECT_EQ(progress.step(), 12);
  EXPECT_EQ(progress.total_steps(), 40);
}

TEST_F(RunProgressTest, TailOfFileKeepsTheLastLinesAndTheLastRedrawOfABar) {
  Write("train.log", "one\n\ntwo\rtwo and a half\nthree  \n\n");
  EXPECT_EQ(server::TailOfFile((run_ / "train.log").string(), 2, 1000), "two and a half\nthree");
  EXPECT_EQ(server::TailOfFile((run_ / "train.log").string(), 5, 1000),
            "one\ntwo and a half\nthree");
  EXPECT_EQ(server::TailOfFile((run_ / "missing.log").string(), 2, 1000), "");
}

}  // namespace
}  // namespace hier::testing
