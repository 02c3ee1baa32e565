#include "server/model/proxy_hierarchy.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>

#include "index/ball_geometry.h"
#include "tests/trainer/temp_dir_test.h"

namespace hier::testing {
namespace {

using ::testing::HasSubstr;

// Three proxies on a line in the plane (c = 1): 0 nearest the origin, 1 beyond it, 2 beyond 1.
constexpr char kChain[] = R"({"c": 1.0, "proxies": [
  {"id": 0, "coords": [0.1, 0.0], "parent": -1, "depth": 0.2007, "level": 0, "members": 5},
  {"id": 1, "coords": [0.4, 0.0], "parent": 0, "depth": 0.8473, "level": 1, "members": 3},
  {"id": 2, "coords": [0.7, 0.0], "parent": 1, "depth": 1.7346, "level": 2, "members": 1}]})";

class ProxyHierarchyTest : public TempDirTest {
 protected:
  absl::StatusOr<std::shared_ptr<const server::ProxyHierarchy>> LoadText(const std::string& text) {
    std::ofstream(Path("hierarchy.json")) << text;
    return server::ProxyHierarchy::Load(dir_);
  }
};

TEST_F(ProxyHierarchyTest, ChainsRunFromTheNearestProxiesToTheRoot) {
  auto hierarchy = LoadText(kChain);
  ASSERT_TRUE(hierarchy.ok()) << hierarchy.status();
  EXPECT_EQ((*hierarchy)->dim(), 2);
  EXPECT_EQ((*hierarchy)->proxies()[1].members, 3);
  const std::vector<float> point = {0.65f, 0.05f};
  auto chains = (*hierarchy)->ChainsAbove(point, 2, "vector");
  ASSERT_TRUE(chains.ok()) << chains.status();
  ASSERT_EQ(chains->size(), 2u);
  ASSERT_EQ((*chains)[0].size(), 3u);  // 2 -> 1 -> 0
  EXPECT_EQ((*chains)[0][0].proxy, 2);
  EXPECT_EQ((*chains)[0][1].proxy, 1);
  EXPECT_EQ((*chains)[0][2].proxy, 0);
  EXPECT_EQ((*chains)[1][0].proxy, 1);  // the second nearest starts the second chain
  const std::vector<float> proxy1 = {0.4f, 0.0f};
  EXPECT_DOUBLE_EQ((*chains)[0][1].distance,
                   index::PoincareDistance(point.data(), proxy1.data(), 2, 1.0));
}

TEST_F(ProxyHierarchyTest, ProxiesAndQueriesHaveTheirPlaceInTheTrainersDiskPicture) {
  auto hierarchy = LoadText(kChain);
  ASSERT_TRUE(hierarchy.ok()) << hierarchy.status();
  // The same projection as the trainer's plots, fitted on the proxies.
  analysis::BallPoints points;
  points.rows = 3;
  points.dim = 2;
  points.coords = {0.1f, 0.0f, 0.4f, 0.0f, 0.7f, 0.0f};
  const auto expected =
      analysis::ProjectToDisk(analysis::FitDiskProjection(points, 1.0), points, 1.0);
  for (int p = 0; p < 3; ++p) {
    const std::array<double, 2>& disk = (*hierarchy)->proxies()[p].disk;
    EXPECT_DOUBLE_EQ(disk[0], expected[p][0]) << p;
    EXPECT_DOUBLE_EQ(disk[1], expected[p][1]) << p;
    EXPECT_LT(std::hypot(disk[0], disk[1]), 1.0) << p;
  }
  // Farther from the origin in the ball, farther from the centre in the picture.
  const std::array<double, 2> near = (*hierarchy)->DiskPosition(std::vector<float>{0.0f, 0.05f});
  const std::array<double, 2> far = (*hierarchy)->DiskPosition(std::vector<float>{0.0f, 0.9f});
  EXPECT_LT(std::hypot(near[0], near[1]), std::hypot(far[0], far[1]));
  const std::array<double, 2> origin = (*hierarchy)->DiskPosition(std::vector<float>{0.0f, 0.0f});
  EXPECT_EQ(origin[0], 0.0);
  EXPECT_EQ(origin[1], 0.0);
}

TEST_F(ProxyHierarchyTest, BadQueriesNameTheirField) {
  auto hierarchy = LoadText(kChain);
  ASSERT_TRUE(hierarchy.ok());
  const std::vector<float> ok = {0.1f, 0.1f}, wrong_dim = {0.1f}, outside = {1.0f, 0.5f};
  for (const auto& [point, nearest, field] :
       std::vector<std::tuple<std::vector<float>, int64_t, std::string>>{{wrong_dim, 1, "vector"},
                                                                         {outside, 1, "vector"},
                                                                         {ok, 0, "nearest"},
                                                                         {ok, 4, "nearest"}}) {
    const absl::Status status = (*hierarchy)->ChainsAbove(point, nearest, "vector").status();
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << field;
    EXPECT_THAT(status.message(), HasSubstr(field)) << status;
  }
}

TEST_F(ProxyHierarchyTest, MissingAndMalformedFilesAreReported) {
  EXPECT_EQ(server::ProxyHierarchy::Load(Path("no-run")).status().code(),
            absl::StatusCode::kNotFound);
  const std::string malformed[] = {
      "not json",
      R"({"c": 1.0, "proxies": []})",
      // A parent farther from the origin than its child would make a cycle possible.
      R"({"c": 1.0, "proxies": [
        {"coords": [0.1, 0.0], "parent": 1, "depth": 0.2, "level": 1, "members": 0},
        {"coords": [0.4, 0.0], "parent": 0, "depth": 0.8, "level": 0, "members": 0}]})",
      R"({"c": 1.0, "proxies": [
        {"coords": [1.5, 0.0], "parent": -1, "depth": 0.2, "level": 0, "members": 0}]})",
      R"({"c": 1.0, "proxies": [
        {"coords": [0.1, 0.0], "parent": -1, "depth": 0.2, "level": 0, "members": 0},
        {"coords": [0.1], "parent": -1, "depth": 0.2, "level": 0, "members": 0}]})",
      // Found by server_json_fuzz (corpus: hierarchy-parent-out-of-range): a float where an
      // integer belongs was converted to int64 out of range.
      R"({"c": 1.0, "proxies": [
        {"coords": [0.1, 0.0], "parent": 1e300, "depth": 0.2, "level": 0, "members": 0}]})",
      R"({"c": 1.0, "proxies": [
        {"coords": [0.1, 0.0], "parent": -1, "depth": 0.2, "level": 0.5, "members": 0}]})",
  };
  for (const std::string& text : malformed) {
    EXPECT_EQ(LoadText(text).status().code(), absl::StatusCode::kDataLoss) << text;
  }
}

}  // namespace
}  // namespace hier::testing
