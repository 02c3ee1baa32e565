#include "server/model/model_catalog.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "server/app/model_swapper.h"
#include "server/app/serving_record.h"
#include "tests/trainer/temp_dir_test.h"

namespace hier::testing {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

class ModelCatalogTest : public TempDirTest {};

TEST_F(ModelCatalogTest, ABestCheckpointIsRefusedWhileItsRunTrains) {
  server::ModelDescription best;
  best.version = "run/best";
  best.run_dir = Path("run");
  best.checkpoint_dir = Path("run/best");
  fs::create_directories(best.checkpoint_dir);
  EXPECT_TRUE(server::CheckNotTraining(best).ok());  // no status.json: not a run in progress

  std::ofstream(Path("run/status.json")) << R"({"state": "running", "step": 3})";
  const absl::Status training = server::CheckNotTraining(best);
  EXPECT_EQ(training.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(training.message(), HasSubstr("version: run/best is still training"));
  server::ModelDescription step = best;
  step.checkpoint_dir = Path("run/checkpoints/0000000003");
  EXPECT_TRUE(server::CheckNotTraining(step).ok());  // a step's checkpoint never changes

  std::ofstream(Path("run/status.json"), std::ios::trunc) << R"({"state": "finished"})";
  EXPECT_TRUE(server::CheckNotTraining(best).ok());
}

TEST_F(ModelCatalogTest, VersionsThatLeaveTheRunsFolderAreRefused) {
  const server::ModelCatalog catalog(Path("runs"));
  for (const std::string version : {"", "/etc", "../x", "run/../../x"}) {
    const absl::Status status = catalog.Resolve(version, "model_version").status();
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << version;
    EXPECT_THAT(status.message(), HasSubstr("model_version")) << version;
  }
  EXPECT_EQ(catalog.Resolve("absent/best").status().code(), absl::StatusCode::kNotFound);
}

// The serving model's folder comes from --model made absolute; the catalog's from --runs-dir as
// given (often relative): ListModels must still mark the serving one.
TEST_F(ModelCatalogTest, OneCheckpointSpelledTwoWaysIsTheSame) {
  fs::create_directories(Path("runs/run/best"));
  fs::create_directories(Path("runs/other/best"));
  fs::create_directory_symlink(Path("runs/run"), Path("link"));
  const fs::path cwd = fs::current_path();
  fs::current_path(dir_);
  EXPECT_TRUE(server::SameCheckpoint("runs/run/best", Path("runs/run/best")));
  EXPECT_TRUE(server::SameCheckpoint("./runs/run/best/", Path("runs/run/best")));
  EXPECT_TRUE(server::SameCheckpoint("runs/other/../run/best", "runs/run/best"));
  EXPECT_TRUE(server::SameCheckpoint("link/best", Path("runs/run/best")));
  EXPECT_FALSE(server::SameCheckpoint("runs/other/best", Path("runs/run/best")));
  EXPECT_FALSE(server::SameCheckpoint("runs/run/best", "runs/run/checkpoints/3"));
  fs::current_path(cwd);
}

TEST_F(ModelCatalogTest, GalleriesNoRecordNamesAreRemovedAtStart) {
  for (const std::string gallery : {"gallery-1", "gallery-2", "initial"}) {
    fs::create_directories(server::GalleryPath(dir_, gallery));
    std::ofstream(server::GalleryPath(dir_, gallery) + "/items.db") << "x";
  }
  server::ModelSwapper::RemoveStrayGalleries(dir_, "gallery-2");
  EXPECT_TRUE(fs::exists(server::GalleryPath(dir_, "gallery-2") + "/items.db"));
  EXPECT_FALSE(fs::exists(server::GalleryPath(dir_, "gallery-1")));
  EXPECT_FALSE(fs::exists(server::GalleryPath(dir_, "initial")));
}

}  // namespace
}  // namespace hier::testing
