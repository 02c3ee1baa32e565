#include "trainer/io/atomic_file.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "tests/core/error_message.h"
#include "tests/trainer/temp_dir_test.h"

namespace hier::testing {
namespace {

namespace fs = std::filesystem;

class AtomicFileTest : public TempDirTest {
 protected:
  std::vector<std::string> Entries(const std::string& dir) const {
    std::vector<std::string> names;
    for (const fs::directory_entry& entry : fs::directory_iterator(dir)) {
      names.push_back(entry.path().filename().string());
    }
    return names;
  }
};

TEST_F(AtomicFileTest, RoundTripsBytes) {
  const std::string path = dir_ + "/model.bin";
  const std::string bytes("binary\0data\n\xff", 13);
  io::WriteFileAtomically(path, bytes);
  EXPECT_EQ(io::ReadFile(path), bytes);
  io::WriteFileAtomically(dir_ + "/empty", "");
  EXPECT_EQ(io::ReadFile(dir_ + "/empty"), "");
}

TEST_F(AtomicFileTest, OverwriteReplacesContent) {
  const std::string path = dir_ + "/state.json";
  io::WriteFileAtomically(path, "a much longer first version");
  io::WriteFileAtomically(path, "v2");
  EXPECT_EQ(io::ReadFile(path), "v2");
}

TEST_F(AtomicFileTest, LeavesNoTempFiles) {
  for (int i = 0; i < 3; ++i) io::WriteFileAtomically(dir_ + "/f" + std::to_string(i), "x");
  EXPECT_THAT(Entries(dir_), ::testing::UnorderedElementsAre("f0", "f1", "f2"));
}

TEST_F(AtomicFileTest, WritesLargeContent) {
  const std::string bytes(5 << 20, 'z');
  io::WriteFileAtomically(dir_ + "/big", bytes);
  EXPECT_EQ(io::ReadFile(dir_ + "/big"), bytes);
}

TEST_F(AtomicFileTest, MissingDirectoryNamesThePath) {
  const std::string path = dir_ + "/no/such/dir/file.txt";
  EXPECT_THAT(ErrorMessage([&] { io::WriteFileAtomically(path, "x"); }),
              ::testing::AllOf(::testing::HasSubstr(path),
                               ::testing::HasSubstr("No such file or directory")));
}

TEST_F(AtomicFileTest, FailedRenameRemovesTheTempFile) {
  // Renaming a file over a non-empty directory fails after the temp file is written.
  fs::create_directories(dir_ + "/target/child");
  const std::string path = dir_ + "/target";
  EXPECT_THAT(ErrorMessage([&] { io::WriteFileAtomically(path, "x"); }),
              ::testing::HasSubstr("rename over " + path));
  EXPECT_THAT(Entries(dir_), ::testing::ElementsAre("target"));
}

TEST_F(AtomicFileTest, ReadFileNamesAMissingPath) {
  const std::string path = dir_ + "/missing";
  EXPECT_THAT(ErrorMessage([&] { io::ReadFile(path); }), ::testing::HasSubstr(path));
}

TEST_F(AtomicFileTest, SyncsExistingPathsAndNamesMissingOnes) {
  io::WriteFileAtomically(dir_ + "/f", "x");
  io::SyncFile(dir_ + "/f");
  io::SyncDirectory(dir_);
  EXPECT_THAT(ErrorMessage([&] { io::SyncFile(dir_ + "/missing"); }),
              ::testing::HasSubstr(dir_ + "/missing"));
  EXPECT_THAT(ErrorMessage([&] { io::SyncDirectory(dir_ + "/f"); }),
              ::testing::HasSubstr(dir_ + "/f"));
}

TEST_F(AtomicFileTest, PublishDirectoryMovesContent) {
  const std::string staging = dir_ + "/.staging-run1";
  const std::string final_dir = dir_ + "/run1";
  fs::create_directories(staging + "/sub");
  io::WriteFileAtomically(staging + "/weights.bin", "w");
  io::WriteFileAtomically(staging + "/sub/meta.json", "{}");
  io::PublishDirectory(staging, final_dir);
  EXPECT_FALSE(fs::exists(staging));
  EXPECT_EQ(io::ReadFile(final_dir + "/weights.bin"), "w");
  EXPECT_EQ(io::ReadFile(final_dir + "/sub/meta.json"), "{}");
}

TEST_F(AtomicFileTest, PublishDirectoryRefusesAnExistingTarget) {
  const std::string staging = dir_ + "/staging";
  const std::string final_dir = dir_ + "/final";
  fs::create_directories(staging);
  io::WriteFileAtomically(staging + "/new", "new");
  // An empty target is refused too, although rename(2) would replace it.
  fs::create_directories(final_dir);
  EXPECT_THAT(
      ErrorMessage([&] { io::PublishDirectory(staging, final_dir); }),
      ::testing::AllOf(::testing::HasSubstr(final_dir), ::testing::HasSubstr("already exists")));
  EXPECT_EQ(io::ReadFile(staging + "/new"), "new");
  EXPECT_TRUE(fs::is_empty(final_dir));
}

TEST_F(AtomicFileTest, PublishDirectoryNamesAMissingStagingDirectory) {
  const std::string staging = dir_ + "/missing";
  EXPECT_THAT(ErrorMessage([&] { io::PublishDirectory(staging, dir_ + "/final"); }),
              ::testing::HasSubstr(staging));
}

TEST_F(AtomicFileTest, AppendLineAppendsInOrder) {
  const std::string path = dir_ + "/log.jsonl";
  io::AppendLine(path, "first", /*sync=*/true);
  io::AppendLine(path, "", /*sync=*/false);
  io::AppendLine(path, "third", /*sync=*/true);
  EXPECT_EQ(io::ReadFile(path), "first\n\nthird\n");
}

TEST_F(AtomicFileTest, AppendLineRefusesEmbeddedNewlines) {
  const std::string path = dir_ + "/log.jsonl";
  EXPECT_THAT(ErrorMessage([&] { io::AppendLine(path, "a\nb", false); }),
              ::testing::HasSubstr(path));
  EXPECT_FALSE(fs::exists(path));
}

TEST_F(AtomicFileTest, AppendLineNamesAMissingDirectory) {
  const std::string path = dir_ + "/missing/log.jsonl";
  EXPECT_THAT(ErrorMessage([&] { io::AppendLine(path, "x", true); }), ::testing::HasSubstr(path));
}

}  // namespace
}  // namespace hier::testing
