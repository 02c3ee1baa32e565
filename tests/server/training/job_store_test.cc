// The job store suite over both backends (SQLite for one server, PostgreSQL for a cluster), what
// is particular to each: SQLite's interruption of unfinished jobs at open, PostgreSQL's claims and
// leases.
#include "server/training/job_store.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <functional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "server/training/sqlite_job_store.h"
#ifdef HIER_HAVE_POSTGRES
#include "index/postgres_item_store.h"
#include "server/training/postgres_job_store.h"
#include "tests/support/postgres_server.h"
#endif

namespace hier::testing {
namespace {

namespace fs = std::filesystem;
using server::JobRecord;
using server::JobStore;
using ::testing::HasSubstr;

JobRecord Record(const std::string& id, hier::v1::JobState state, int64_t created) {
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

// A folder of the test's own.
class TestDirectory {
 public:
  TestDirectory()
      : path_(fs::path(::testing::TempDir()) /
              ("job-store-" + std::to_string(::getpid()) + "-" +
               ::testing::UnitTest::GetInstance()->current_test_info()->name())) {
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TestDirectory() { fs::remove_all(path_); }
  std::string Path(const std::string& name) const { return (path_ / name).string(); }

 private:
  const fs::path path_;
};

// A kind of job store the suite runs over; Open gives a new, empty store (NotFound: skip).
struct JobBackend {
  std::string name;
  std::function<absl::StatusOr<std::unique_ptr<JobStore>>(const TestDirectory&)> open;
};
void PrintTo(const JobBackend& backend, std::ostream* out) { *out << backend.name; }

#ifdef HIER_HAVE_POSTGRES
// A fresh database with the store of record's schema (which holds hier_jobs); its location.
absl::StatusOr<index::StoreLocation> NewClusterDatabase() {
  absl::StatusOr<PostgresServer*> server = PostgresServer::Shared();
  if (!server.ok()) return server.status();
  absl::StatusOr<std::string> database = (*server)->CreateDatabase();
  if (!database.ok()) return database.status();
  index::StoreLocation location;
  location.uri = (*server)->Uri(*database);
  absl::StatusOr<std::unique_ptr<index::ItemStore>> items = index::ItemStore::Open(location, 4);
  if (!items.ok()) return items.status();
  return location;
}
#endif

class JobStoreTest : public ::testing::TestWithParam<JobBackend> {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<JobStore>> store = GetParam().open(directory_);
    if (absl::IsNotFound(store.status())) GTEST_SKIP() << store.status();
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
  }

  TestDirectory directory_;
  std::unique_ptr<JobStore> store_;
};

TEST_P(JobStoreTest, KeepsEveryFieldAndListsNewestFirst) {
  ASSERT_TRUE(store_->Insert(Record("a", hier::v1::JOB_STATE_SUCCEEDED, 100)).ok());
  ASSERT_TRUE(store_->Insert(Record("b", hier::v1::JOB_STATE_FAILED, 300)).ok());
  ASSERT_TRUE(store_->Insert(Record("c", hier::v1::JOB_STATE_CANCELLED, 200)).ok());
  const absl::Status again = store_->Insert(Record("a", hier::v1::JOB_STATE_FAILED, 1));
  EXPECT_EQ(again.code(), absl::StatusCode::kAlreadyExists) << again;

  JobRecord changed = Record("b", hier::v1::JOB_STATE_FAILED, 300);
  changed.error = "hier-train exit status 1: boom";
  changed.finished_unix_ms = 400;
  changed.pid = 0;
  ASSERT_TRUE(store_->Update(changed).ok());
  absl::StatusOr<JobRecord> read = store_->Get("b");
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

  absl::StatusOr<std::vector<JobRecord>> all = store_->List();
  ASSERT_TRUE(all.ok()) << all.status();
  ASSERT_EQ(all->size(), 3u);
  EXPECT_EQ((*all)[0].id, "b");
  EXPECT_EQ((*all)[1].id, "c");
  EXPECT_EQ((*all)[2].id, "a");
}

TEST_P(JobStoreTest, UnknownIdsAreNotFound) {
  const absl::StatusOr<JobRecord> read = store_->Get("nope");
  EXPECT_EQ(read.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(read.status().message()), HasSubstr("id: no job 'nope'"));
  EXPECT_EQ(store_->Update(Record("nope", hier::v1::JOB_STATE_FAILED, 1)).code(),
            absl::StatusCode::kNotFound);
}

INSTANTIATE_TEST_SUITE_P(
    Backends, JobStoreTest,
    ::testing::Values(
        JobBackend{"Sqlite",
                   [](const TestDirectory& directory)
                       -> absl::StatusOr<std::unique_ptr<JobStore>> {
                     return JobStore::Open(index::StoreLocation{}, directory.Path("."));
                   }}
#ifdef HIER_HAVE_POSTGRES
        ,
        JobBackend{"Postgres",
                   [](const TestDirectory&) -> absl::StatusOr<std::unique_ptr<JobStore>> {
                     absl::StatusOr<index::StoreLocation> location = NewClusterDatabase();
                     if (!location.ok()) return location.status();
                     return JobStore::Open(*location, "unused");
                   }}
#endif
        ),
    [](const auto& info) { return info.param.name; });

// SQLite: one server's jobs; what it left unfinished is interrupted at the next open.
class SqliteJobStoreTest : public ::testing::Test {
 protected:
  TestDirectory directory_;
  const std::string path_ = directory_.Path("jobs.db");
};

TEST_F(SqliteJobStoreTest, ReopeningInterruptsWhatWasQueuedOrRunning) {
  using server::SqliteJobStore;
  {
    std::unique_ptr<SqliteJobStore> store = std::move(SqliteJobStore::Open(path_)).value();
    ASSERT_TRUE(store->Insert(Record("queued", hier::v1::JOB_STATE_QUEUED, 1)).ok());
    ASSERT_TRUE(store->Insert(Record("running", hier::v1::JOB_STATE_RUNNING, 2)).ok());
    ASSERT_TRUE(store->Insert(Record("done", hier::v1::JOB_STATE_SUCCEEDED, 3)).ok());
    EXPECT_TRUE(store->interrupted_on_open().empty());
  }
  std::unique_ptr<SqliteJobStore> store = std::move(SqliteJobStore::Open(path_)).value();
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

TEST_F(SqliteJobStoreTest, RefusesFilesThatAreNotJobStores) {
  {
    std::ofstream garbage(path_, std::ios::binary);
    garbage << std::string(4096, 'x');
  }
  const auto garbage = server::SqliteJobStore::Open(path_);
  ASSERT_FALSE(garbage.ok());
  EXPECT_EQ(garbage.status().code(), absl::StatusCode::kDataLoss) << garbage.status();
}

#ifdef HIER_HAVE_POSTGRES
// PostgreSQL: the claims and leases that let exactly one replica run a job.
class PostgresJobStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<index::StoreLocation> location = NewClusterDatabase();
    if (absl::IsNotFound(location.status())) GTEST_SKIP() << location.status();
    ASSERT_TRUE(location.ok()) << location.status();
    location_ = *location;
    store_ = std::move(server::PostgresJobStore::Open(location_)).value();
  }

  index::StoreLocation location_;
  std::unique_ptr<server::PostgresJobStore> store_;
};

constexpr std::chrono::milliseconds kLong{60000};

TEST_F(PostgresJobStoreTest, ConcurrentClaimsTakeEachJobOnce) {
  constexpr int kJobs = 40;
  for (int i = 0; i < kJobs; ++i) {
    ASSERT_TRUE(store_->Insert(Record("j" + std::to_string(i), hier::v1::JOB_STATE_QUEUED, i)).ok());
  }
  ASSERT_TRUE(store_->Insert(Record("done", hier::v1::JOB_STATE_SUCCEEDED, 0)).ok());
  std::mutex mutex;
  std::multiset<std::string> claimed;
  std::vector<std::thread> replicas;
  for (int r = 0; r < 4; ++r) {
    replicas.emplace_back([&, r] {
      // Each replica its own store object (its own connections), as separate processes have.
      auto store = std::move(server::PostgresJobStore::Open(location_)).value();
      for (;;) {
        absl::StatusOr<std::optional<JobRecord>> job =
            store->Claim("replica-" + std::to_string(r), kLong);
        ASSERT_TRUE(job.ok()) << job.status();
        if (!job->has_value()) return;
        EXPECT_EQ((*job)->state, hier::v1::JOB_STATE_RUNNING);
        EXPECT_EQ((*job)->owner, "replica-" + std::to_string(r));
        EXPECT_FALSE((*job)->resume);
        std::lock_guard<std::mutex> lock(mutex);
        claimed.insert((*job)->id);
      }
    });
  }
  for (std::thread& replica : replicas) replica.join();
  EXPECT_EQ(claimed.size(), static_cast<size_t>(kJobs));
  for (const std::string& id : claimed) EXPECT_EQ(claimed.count(id), 1u) << id;
  EXPECT_EQ(claimed.count("done"), 0u);
}

TEST_F(PostgresJobStoreTest, AnExpiredLeaseIsClaimedAgainToResumeAndFencesItsFormerRunner) {
  ASSERT_TRUE(store_->Insert(Record("j", hier::v1::JOB_STATE_QUEUED, 1)).ok());
  JobRecord mine = store_->Claim("a", std::chrono::milliseconds(300)).value().value();
  // Renewed, it stays a's.
  absl::StatusOr<server::LeaseRenewal> renewed =
      store_->Renew("a", {"j"}, std::chrono::milliseconds(300));
  ASSERT_TRUE(renewed.ok()) << renewed.status();
  EXPECT_TRUE(renewed->lost.empty());
  EXPECT_FALSE(store_->Claim("b", kLong).value().has_value());
  // Not renewed, b takes it over, to continue the run.
  std::this_thread::sleep_for(std::chrono::milliseconds(400));
  JobRecord theirs = store_->Claim("b", kLong).value().value();
  EXPECT_EQ(theirs.id, "j");
  EXPECT_EQ(theirs.owner, "b");
  EXPECT_TRUE(theirs.resume);
  // a learns it lost the job, and can no longer write it.
  renewed = store_->Renew("a", {"j"}, kLong);
  ASSERT_TRUE(renewed.ok());
  EXPECT_THAT(renewed->lost, ::testing::ElementsAre("j"));
  mine.state = hier::v1::JOB_STATE_FAILED;
  EXPECT_EQ(store_->UpdateOwned("a", mine).code(), absl::StatusCode::kFailedPrecondition);
  theirs.state = hier::v1::JOB_STATE_SUCCEEDED;
  theirs.owner.clear();
  EXPECT_TRUE(store_->UpdateOwned("b", theirs).ok());
  EXPECT_EQ(store_->Get("j").value().state, hier::v1::JOB_STATE_SUCCEEDED);
}

TEST_F(PostgresJobStoreTest, CancelEndsAQueuedJobAndMarksARunningOneForItsRunner) {
  ASSERT_TRUE(store_->Insert(Record("queued", hier::v1::JOB_STATE_QUEUED, 2)).ok());
  ASSERT_TRUE(store_->Insert(Record("running", hier::v1::JOB_STATE_QUEUED, 1)).ok());
  ASSERT_EQ(store_->Claim("a", kLong).value().value().id, "running");
  absl::StatusOr<JobRecord> queued = store_->RequestCancel("queued");
  ASSERT_TRUE(queued.ok()) << queued.status();
  EXPECT_EQ(queued->state, hier::v1::JOB_STATE_CANCELLED);
  EXPECT_GT(queued->finished_unix_ms, 0);
  absl::StatusOr<JobRecord> running = store_->RequestCancel("running");
  ASSERT_TRUE(running.ok()) << running.status();
  EXPECT_EQ(running->state, hier::v1::JOB_STATE_RUNNING);
  EXPECT_TRUE(running->cancel_requested);
  absl::StatusOr<server::LeaseRenewal> renewed = store_->Renew("a", {"running"}, kLong);
  ASSERT_TRUE(renewed.ok());
  EXPECT_THAT(renewed->cancel_requested, ::testing::ElementsAre("running"));
  const absl::Status ended = store_->RequestCancel("queued").status();
  EXPECT_EQ(ended.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(ended.message(), HasSubstr("has already ended (cancelled)"));
  EXPECT_EQ(store_->RequestCancel("nope").status().code(), absl::StatusCode::kNotFound);
}
#endif

TEST(JobStateTest, NamesAndTerminalStates) {
  EXPECT_EQ(server::JobStateName(hier::v1::JOB_STATE_INTERRUPTED), "interrupted");
  EXPECT_FALSE(server::IsTerminal(hier::v1::JOB_STATE_QUEUED));
  EXPECT_FALSE(server::IsTerminal(hier::v1::JOB_STATE_RUNNING));
  EXPECT_TRUE(server::IsTerminal(hier::v1::JOB_STATE_CANCELLED));
  EXPECT_TRUE(server::IsTerminal(hier::v1::JOB_STATE_INTERRUPTED));
}

}  // namespace
}  // namespace hier::testing
