#include "index/collection.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "index/snapshot_file.h"

extern char** environ;

namespace hier::testing {
namespace {

using ::testing::HasSubstr;

constexpr int64_t kDim = 8;
constexpr double kC = 0.1;
// When set, CollectionCrashTest runs as the writer the test kills (see there).
constexpr char kWriterDirVariable[] = "HIER_TEST_COLLECTION_WRITER_DIR";

// A point inside the ball for item `id`, different for every id.
std::vector<float> PointFor(int64_t id) {
  std::mt19937 rng(static_cast<uint32_t>(id) * 7919u + 1u);
  std::uniform_real_distribution<float> uniform(-0.6f, 0.6f);
  std::vector<float> point(kDim);
  for (float& value : point) value = uniform(rng);
  return point;
}

index::ItemRecord Record(int64_t id) {
  index::ItemRecord record;
  record.id = id;
  record.key = "images/" + std::to_string(id) + ".png";
  record.label = id % 3 == 0 ? "three" : "other";
  record.attributes = "{\"n\":" + std::to_string(id) + "}";
  record.model_version = "run-1/best";
  record.vector = PointFor(id);
  return record;
}

std::vector<index::ItemRecord> Records(int64_t first, int64_t count) {
  std::vector<index::ItemRecord> records;
  for (int64_t id = first; id < first + count; ++id) records.push_back(Record(id));
  return records;
}

index::CollectionOptions Options(const std::string& directory, const std::string& kind) {
  index::CollectionOptions options;
  options.directory = directory;
  options.index.dim = kDim;
  options.index.c = kC;
  options.index.candidates.kind = kind;
  options.index.candidates.min_train_items = 300;
  return options;
}

std::unique_ptr<index::Collection> OpenOrDie(const std::string& directory,
                                             const std::string& kind) {
  auto collection = index::Collection::Open(Options(directory, kind));
  EXPECT_TRUE(collection.ok()) << collection.status();
  return std::move(collection).value();
}

// The item's own vector finds it first, at distance 0.
void ExpectFindsItself(const index::Collection& collection, int64_t id) {
  index::SearchOptions options;
  options.k = 1;
  const auto found = collection.index().Search(PointFor(id), options);
  ASSERT_TRUE(found.ok()) << found.status();
  ASSERT_EQ(found->size(), 1u);
  EXPECT_EQ((*found)[0].id, id);
  EXPECT_EQ((*found)[0].distance, 0.0);
}

class ScratchDirectory {
 public:
  ScratchDirectory()
      : path_(std::filesystem::path(::testing::TempDir()) /
              ("collection-" + std::to_string(::getpid()) + "-" +
               ::testing::UnitTest::GetInstance()->current_test_info()->name())) {
    std::filesystem::remove_all(path_);
  }
  ~ScratchDirectory() { std::filesystem::remove_all(path_); }
  std::string path() const { return path_.string(); }
  std::string snapshot() const { return (path_ / "candidates.snapshot").string(); }

 private:
  std::filesystem::path path_;
};

class CollectionKindTest : public ::testing::TestWithParam<std::string> {};

TEST_P(CollectionKindTest, ReopeningKeepsItemsDeletesAndReplaysChangesAfterTheSnapshot) {
  ScratchDirectory dir;
  {
    auto collection = OpenOrDie(dir.path(), GetParam());
    ASSERT_TRUE(collection->Upsert(Records(0, 1000)).ok());
    ASSERT_TRUE(collection->WriteSnapshot().ok());
    // After the snapshot: 50 new items, 20 deleted, item 5 moved.
    ASSERT_TRUE(collection->Upsert(Records(1000, 50)).ok());
    std::vector<int64_t> doomed;
    for (int64_t id = 100; id < 120; ++id) doomed.push_back(id);
    ASSERT_TRUE(collection->Delete(doomed).ok());
    index::ItemRecord moved = Record(5);
    moved.vector = PointFor(777777);
    moved.label = "moved";
    ASSERT_TRUE(collection->Upsert({moved}).ok());
  }
  auto reopened = OpenOrDie(dir.path(), "");
  EXPECT_EQ(reopened->kind(), GetParam());  // the persisted choice
  const index::OpenReport& report = reopened->open_report();
  EXPECT_EQ(report.items, 1030);
  EXPECT_EQ(reopened->index().size(), 1030);
  EXPECT_TRUE(report.snapshot_problem.empty()) << report.snapshot_problem;
  if (GetParam() == "exact") {
    EXPECT_FALSE(report.snapshot_used);  // the exact scan is rebuilt, not read
  } else {
    EXPECT_TRUE(report.snapshot_used);
    EXPECT_EQ(report.replayed_changes, 71);
  }
  for (int64_t id : {0, 99, 120, 999, 1000, 1049}) ExpectFindsItself(*reopened, id);
  EXPECT_FALSE(reopened->index().Contains(110));
  EXPECT_EQ(reopened->Get(110).status().code(), absl::StatusCode::kNotFound);
  const auto record = reopened->Get(1049);
  ASSERT_TRUE(record.ok());
  EXPECT_EQ(record->key, "images/1049.png");
  EXPECT_EQ(record->attributes, "{\"n\":1049}");
  EXPECT_EQ(record->model_version, "run-1/best");
  // Item 5 lives at its new place, under its new label.
  index::SearchOptions moved_search;
  moved_search.k = 1;
  moved_search.label = "moved";
  const auto moved = reopened->index().Search(PointFor(777777), moved_search);
  ASSERT_TRUE(moved.ok()) << moved.status();
  EXPECT_EQ((*moved)[0].id, 5);
}

INSTANTIATE_TEST_SUITE_P(Kinds, CollectionKindTest, ::testing::Values("exact", "ivf-flat", "hnsw"),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           return info.param == "ivf-flat" ? std::string("ivf_flat") : info.param;
                         });

TEST(CollectionTest, ADamagedOrForeignSnapshotIsDetectedAndRebuiltFromTheStore) {
  ScratchDirectory dir;
  {
    auto collection = OpenOrDie(dir.path(), "ivf-flat");
    ASSERT_TRUE(collection->Upsert(Records(0, 800)).ok());
    ASSERT_TRUE(collection->WriteSnapshot().ok());
  }
  std::string intact;
  {
    std::ifstream in(dir.snapshot(), std::ios::binary);
    intact.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  ASSERT_GT(intact.size(), 1000u);
  index::Snapshot foreign = std::move(index::ReadSnapshotFile(dir.snapshot())).value();
  foreign.dim = kDim * 2;

  struct Damage {
    std::string name;
    std::function<void()> apply;
    std::string problem;
  };
  const auto write = [&](const std::string& bytes) {
    std::ofstream(dir.snapshot(), std::ios::binary | std::ios::trunc) << bytes;
  };
  const std::vector<Damage> damages = {
      {"truncated", [&] { write(intact.substr(0, intact.size() / 2)); }, "checksum mismatch"},
      {"flipped byte",
       [&] {
         std::string flipped = intact;
         flipped[flipped.size() / 3] ^= 0x20;
         write(flipped);
       },
       "checksum mismatch"},
      {"not a snapshot", [&] { write("garbage"); }, "not an index snapshot"},
      {"wrong dimension",
       [&] { ASSERT_TRUE(index::WriteSnapshotFile(dir.snapshot(), foreign).ok()); },
       "made for dim 16, the index has dim 8"},
  };
  for (const Damage& damage : damages) {
    damage.apply();
    {
      auto collection = OpenOrDie(dir.path(), "");
      const index::OpenReport& report = collection->open_report();
      EXPECT_FALSE(report.snapshot_used) << damage.name;
      EXPECT_THAT(report.snapshot_problem, HasSubstr(damage.problem)) << damage.name;
      EXPECT_EQ(collection->index().size(), 800) << damage.name;
      for (int64_t id : {0, 400, 799}) ExpectFindsItself(*collection, id);
    }
    // The rebuilt stage was snapshotted again, so the next start reads it.
    auto again = OpenOrDie(dir.path(), "");
    EXPECT_TRUE(again->open_report().snapshot_used) << damage.name;
  }
  // Another kind than the snapshot's rebuilds and is persisted.
  {
    auto collection = OpenOrDie(dir.path(), "exact");
    EXPECT_THAT(collection->open_report().snapshot_problem,
                HasSubstr("made for candidates \"ivf-flat\", the index uses \"exact\""));
    ExpectFindsItself(*collection, 42);
  }
  EXPECT_EQ(OpenOrDie(dir.path(), "")->kind(), "exact");
}

TEST(CollectionTest, SummariesFollowEveryWriteAndAReopen) {
  ScratchDirectory dir;
  auto summary_of = [](const index::Collection& collection, int64_t id) {
    const int64_t ids[] = {id};
    const std::optional<index::ItemSummary> summary = collection.Summaries(ids)[0];
    return summary.has_value() ? summary->key + "|" + summary->label : std::string("none");
  };
  {
    auto collection = OpenOrDie(dir.path(), "exact");
    ASSERT_TRUE(collection->Upsert(Records(0, 4)).ok());
    index::ItemRecord moved = Record(1);
    moved.key = "images/moved.png";
    moved.label = "renamed";
    ASSERT_TRUE(collection->Upsert({moved}).ok());
    const int64_t gone[] = {2};
    ASSERT_TRUE(collection->Delete(gone).ok());
    EXPECT_EQ(summary_of(*collection, 0), "images/0.png|three");
    EXPECT_EQ(summary_of(*collection, 1), "images/moved.png|renamed");
    EXPECT_EQ(summary_of(*collection, 2), "none");
    EXPECT_EQ(summary_of(*collection, 99), "none");
  }
  auto reopened = OpenOrDie(dir.path(), "exact");
  EXPECT_EQ(summary_of(*reopened, 1), "images/moved.png|renamed");
  EXPECT_EQ(summary_of(*reopened, 2), "none");
  EXPECT_EQ(summary_of(*reopened, 3), "images/3.png|three");
}

TEST(CollectionTest, BadItemsNameTheFieldAndWriteNothing) {
  ScratchDirectory dir;
  auto collection = OpenOrDie(dir.path(), "exact");
  ASSERT_TRUE(collection->Upsert(Records(0, 3)).ok());
  std::vector<index::ItemRecord> short_vector = Records(10, 2);
  short_vector[1].vector.pop_back();
  std::vector<index::ItemRecord> nan_vector = Records(10, 2);
  nan_vector[0].vector[2] = std::numeric_limits<float>::quiet_NaN();
  std::vector<index::ItemRecord> outside = Records(10, 2);
  outside[1].vector[0] = 5.0f;
  struct Case {
    std::vector<index::ItemRecord> items;
    std::string message;
  };
  for (const Case& c : std::vector<Case>{
           {short_vector, "items[1].vector: expected 8 floats, got 7"},
           {nan_vector, "items[0].vector: coordinate 2 is nan"},
           {outside, "items[1].vector: the point lies on or outside the Poincare ball"},
       }) {
    const auto status = collection->Upsert(c.items).status();
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << c.message;
    EXPECT_THAT(std::string(status.message()), HasSubstr(c.message));
  }
  const auto missing = collection->Delete({1, 12345}).status();
  EXPECT_EQ(missing.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(missing.message()), HasSubstr("no item has id 12345"));
  EXPECT_EQ(collection->index().size(), 3);
  EXPECT_EQ(collection->Get(10).status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(collection->Get(1).ok());  // the failed delete removed nothing

  index::CollectionOptions no_directory;
  EXPECT_THAT(std::string(index::Collection::Open(no_directory).status().message()),
              HasSubstr("directory: empty"));
  index::CollectionOptions other_dim = Options(dir.path(), "");
  other_dim.index.dim = 4;
  collection.reset();
  EXPECT_EQ(index::Collection::Open(other_dim).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

// The writer side of the crash test: adds items in small batches, snapshotting now and then,
// and prints "ack <id>" for each item once Upsert has returned. Never returns.
[[noreturn]] void RunWriter(const std::string& directory) {
  auto collection = OpenOrDie(directory, "ivf-flat");
  for (int64_t batch = 0;; ++batch) {
    const std::vector<index::ItemRecord> records = Records(batch * 7, 7);
    if (!collection->Upsert(records).ok()) std::_Exit(2);
    for (const index::ItemRecord& record : records) std::printf("ack %lld\n", (long long)record.id);
    std::fflush(stdout);
    if (batch % 40 == 39 && !collection->WriteSnapshot().ok()) std::_Exit(3);
  }
}

TEST(CollectionCrashTest, EveryAcknowledgedItemSurvivesSigkillOfTheWriter) {
  if (const char* directory = std::getenv(kWriterDirVariable)) RunWriter(directory);
  ScratchDirectory dir;
  int pipe_fds[2];
  ASSERT_EQ(::pipe(pipe_fds), 0);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], STDOUT_FILENO);
  posix_spawn_file_actions_addclose(&actions, pipe_fds[0]);
  const std::string filter = "--gtest_filter=CollectionCrashTest.*";
  const std::string variable = std::string(kWriterDirVariable) + "=" + dir.path();
  std::vector<char*> argv = {const_cast<char*>("/proc/self/exe"), const_cast<char*>(filter.c_str()),
                             nullptr};
  std::vector<char*> envp;
  for (char** entry = environ; *entry != nullptr; ++entry) envp.push_back(*entry);
  envp.push_back(const_cast<char*>(variable.c_str()));
  envp.push_back(nullptr);
  pid_t child = 0;
  ASSERT_EQ(posix_spawn(&child, "/proc/self/exe", &actions, nullptr, argv.data(), envp.data()), 0);
  posix_spawn_file_actions_destroy(&actions);
  ::close(pipe_fds[1]);

  // Read acknowledgements until the writer has passed its training size and a few snapshots,
  // then kill it mid-stream.
  FILE* acks = ::fdopen(pipe_fds[0], "r");
  std::set<int64_t> acknowledged;
  char line[256];
  while (acknowledged.size() < 1500 && std::fgets(line, sizeof(line), acks) != nullptr) {
    long long id = 0;
    if (std::sscanf(line, "ack %lld", &id) == 1) acknowledged.insert(id);
  }
  ASSERT_EQ(::kill(child, SIGKILL), 0);
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << "writer exited " << status;
  // Acknowledgements already in the pipe count too.
  while (std::fgets(line, sizeof(line), acks) != nullptr) {
    long long id = 0;
    if (std::sscanf(line, "ack %lld", &id) == 1) acknowledged.insert(id);
  }
  std::fclose(acks);
  ASSERT_GE(acknowledged.size(), 1500u);

  auto reopened = OpenOrDie(dir.path(), "");
  EXPECT_GE(reopened->index().size(), static_cast<int64_t>(acknowledged.size()));
  for (int64_t id : acknowledged) {
    ASSERT_TRUE(reopened->index().Contains(id)) << id;
    EXPECT_TRUE(reopened->Get(id).ok()) << id;
  }
  for (int64_t id : {*acknowledged.begin(), *acknowledged.rbegin()}) {
    ExpectFindsItself(*reopened, id);
  }
}

}  // namespace
}  // namespace hier::testing
