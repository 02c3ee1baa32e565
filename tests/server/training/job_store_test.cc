#include "server/training/job_store.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

namespace hier::testing {
namespace {

namespace fs = std::filesystem;
using server::JobRecord;
using server::JobStore;
using ::testing::HasSubstr;

class JobStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    directory_ = fs::path(::testing::TempDir()) /
                 ("job-store-" + std::to_string(::getpid()) + "-" +
                  ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(directory_);
    fs::create_directories(directory_);
    path_ = (directory_ / "jobs.db").string();
  }
  void TearDown() override { fs::remove_all(directory_); }

  static JobRecord Record(const std::string& id, hier::v1::JobState state, int64_t created) {
    JobRecord job;
    job.id = id;
    job.name = "n";
    job.state = state;
    job.config.set_emb(8);
    job.config.set_lr(0.5);
    job.config.add_recall_k(1);
    job.run_dir = "/runs/" + id;
    job.created_unix_ms = created;
    job.deploy_on_success = true;
    job.pid = 4242;
    return job;
  }

  fs::path directory_;
  std::string path_;
};

TEST_F(JobStoreTest, KeepsEveryFieldAndListsNewestFirst) {
  std::unique_ptr<JobStore> store = std::move(JobStore::Open(path_)).value();
  ASSERT_TRUE(store->Insert(Record("a", hier::v1::JOB_STATE_SUCCEEDED, 100)).ok());
  ASSERT_TRUE(store->Insert(Record("b", hier::v1::JOB_STATE_FAILED, 300)).ok());
  ASSERT_TRUE(store->Insert(Record("c", hier::v1::JOB_STATE_CANCELLED, 200)).ok());
  const absl::Status again = store->Insert(Record("a", hier::v1::JOB_STATE_FAILED, 1));
  EXPECT_EQ(again.code(), absl::StatusCode::kAlreadyExists) << again;

  JobRecord changed = Record("b", hier::v1::JOB_STATE_FAILED, 300);
  changed.error = "hier-train exit status 1: boom";
  changed.finished_unix_ms = 400;
  changed.pid = 0;
  ASSERT_TRUE(store->Update(changed).ok());
  absl::StatusOr<JobRecord> read = store->Get("b");
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(read->name, "n");
  EXPECT_EQ(read->state, hier::v1::JOB_STATE_FAILED);
  EXPECT_EQ(read->config.emb(), 8);
  EXPECT_DOUBLE_EQ(read->config.lr(), 0.5);
  EXPECT_FALSE(read->config.has_c());  // unset fields stay unset
  EXPECT_EQ(read->config.recall_k_size(), 1);
  EXPECT_EQ(read->run_dir, "/runs/b");
  EXPECT_EQ(read->error, "hier-train exit status 1: boom");
  EXPECT_EQ(read->created_unix_ms, 300);
  EXPECT_EQ(read->finished_unix_ms, 400);
  EXPECT_TRUE(read->deploy_on_success);
  EXPECT_EQ(read->pid, 0);

  absl::StatusOr<std::vector<JobRecord>> all = store->List();
  ASSERT_TRUE(all.ok()) << all.status();
  ASSERT_EQ(all->size(), 3u);
  EXPECT_EQ((*all)[0].id, "b");
  EXPECT_EQ((*all)[1].id, "c");
  EXPECT_EQ((*all)[2].id, "a");
}

TEST_F(JobStoreTest, UnknownIdsAreNotFound) {
  std::unique_ptr<JobStore> store = std::move(JobStore::Open(path_)).value();
  const absl::StatusOr<JobRecord> read = store->Get("nope");
  EXPECT_EQ(read.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(read.status().message()), HasSubstr("id: no job 'nope'"));
  EXPECT_EQ(store->Update(Record("nope", hier::v1::JOB_STATE_FAILED, 1)).code(),
            absl::StatusCode::kNotFound);
}

TEST_F(JobStoreTest, ReopeningInterruptsWhatWasQueuedOrRunning) {
  {
    std::unique_ptr<JobStore> store = std::move(JobStore::Open(path_)).value();
    ASSERT_TRUE(store->Insert(Record("queued", hier::v1::JOB_STATE_QUEUED, 1)).ok());
    ASSERT_TRUE(store->Insert(Record("running", hier::v1::JOB_STATE_RUNNING, 2)).ok());
    ASSERT_TRUE(store->Insert(Record("done", hier::v1::JOB_STATE_SUCCEEDED, 3)).ok());
    EXPECT_TRUE(store->interrupted_on_open().empty());
  }
  std::unique_ptr<JobStore> store = std::move(JobStore::Open(path_)).value();
  ASSERT_EQ(store->interrupted_on_open().size(), 2u);
  EXPECT_EQ(store->interrupted_on_open()[1].id, "running");
  EXPECT_EQ(store->interrupted_on_open()[1].pid, 4242);  // as it was, for finding a stray trainer
  const JobRecord running = store->Get("running").value();
  EXPECT_EQ(running.state, hier::v1::JOB_STATE_INTERRUPTED);
  EXPECT_THAT(running.error, HasSubstr("the server stopped while the job ran"));
  EXPECT_GT(running.finished_unix_ms, 0);
  EXPECT_EQ(running.pid, 0);
  const JobRecord queued = store->Get("queued").value();
  EXPECT_EQ(queued.state, hier::v1::JOB_STATE_INTERRUPTED);
  EXPECT_THAT(queued.error, HasSubstr("before the job started"));
  EXPECT_EQ(store->Get("done").value().state, hier::v1::JOB_STATE_SUCCEEDED);
}

TEST_F(JobStoreTest, RefusesFilesThatAreNotJobStores) {
  {
    std::ofstream garbage(path_, std::ios::binary);
    garbage << std::string(4096, 'x');
  }
  const absl::StatusOr<std::unique_ptr<JobStore>> garbage = JobStore::Open(path_);
  ASSERT_FALSE(garbage.ok());
  EXPECT_EQ(garbage.status().code(), absl::StatusCode::kDataLoss) << garbage.status();
}

TEST(JobStateTest, NamesAndTerminalStates) {
  EXPECT_EQ(server::JobStateName(hier::v1::JOB_STATE_INTERRUPTED), "interrupted");
  EXPECT_FALSE(server::IsTerminal(hier::v1::JOB_STATE_QUEUED));
  EXPECT_FALSE(server::IsTerminal(hier::v1::JOB_STATE_RUNNING));
  EXPECT_TRUE(server::IsTerminal(hier::v1::JOB_STATE_CANCELLED));
  EXPECT_TRUE(server::IsTerminal(hier::v1::JOB_STATE_INTERRUPTED));
}

}  // namespace
}  // namespace hier::testing
