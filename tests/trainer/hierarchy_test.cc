#include "trainer/analysis/hierarchy.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <string>

#include "tests/core/error_message.h"

namespace hier::testing {
namespace {

using analysis::BallPoints;

BallPoints Rows(const std::vector<std::vector<float>>& rows) {
  BallPoints points{{}, static_cast<int64_t>(rows.size()), static_cast<int64_t>(rows[0].size())};
  for (const auto& row : rows) points.coords.insert(points.coords.end(), row.begin(), row.end());
  return points;
}

std::vector<double> UnitVector(int64_t dim, std::mt19937_64& rng) {
  std::normal_distribution<double> normal;
  std::vector<double> v(dim);
  for (double& x : v) x = normal(rng);
  const double norm = std::sqrt(std::inner_product(v.begin(), v.end(), v.begin(), 0.0));
  for (double& x : v) x /= norm;
  return v;
}

// expmap0 of a tangent vector, appended to `points` as a float row.
void AppendExpmap0(const std::vector<double>& v, double c, BallPoints& points) {
  const double n = std::sqrt(c * std::inner_product(v.begin(), v.end(), v.begin(), 0.0));
  const double factor = n > 0 ? std::tanh(n) / n : 1.0;
  for (double x : v) points.coords.push_back(static_cast<float>(x * factor));
  ++points.rows;
  points.dim = static_cast<int64_t>(v.size());
}

// Points at the given radii (fractions of the ball radius 1/sqrt(c)) in random directions.
BallPoints AtRadii(const std::vector<double>& fractions, int64_t dim, double c, uint64_t seed) {
  std::mt19937_64 rng(seed);
  BallPoints points{{}, 0, dim};
  for (double fraction : fractions) {
    for (double x : UnitVector(dim, rng)) {
      points.coords.push_back(static_cast<float>(x * fraction / std::sqrt(c)));
    }
    ++points.rows;
  }
  return points;
}

// (2/sqrt(c)) artanh(sqrt(c) |(-x) ⊕ y|), straight from the definition.
double MobiusDistance(const float* x, const float* y, int64_t dim, double c) {
  double xy = 0, x2 = 0, y2 = 0;
  for (int64_t k = 0; k < dim; ++k) {
    xy -= double(x[k]) * y[k];
    x2 += double(x[k]) * x[k];
    y2 += double(y[k]) * y[k];
  }
  const double denominator = 1 + 2 * c * xy + c * c * x2 * y2;
  double sum2 = 0;
  for (int64_t k = 0; k < dim; ++k) {
    const double s =
        ((1 + 2 * c * xy + c * y2) * -double(x[k]) + (1 - c * x2) * y[k]) / denominator;
    sum2 += s * s;
  }
  return 2 / std::sqrt(c) * std::atanh(std::sqrt(c * sum2));
}

TEST(PoincareDistanceTest, MatchesHandComputedValues) {
  const std::vector<float> x = {0.5f, 0.0f};
  const std::vector<float> minus_x = {-0.5f, 0.0f};
  const std::vector<float> origin = {0.0f, 0.0f};
  // c = 1: 2 artanh(0.5) = ln 3.
  EXPECT_NEAR(analysis::PoincareDistance(x.data(), origin.data(), 2, 1.0), std::log(3.0), 1e-15);
  EXPECT_NEAR(analysis::DistanceToOrigin(x.data(), 2, 1.0), std::log(3.0), 1e-15);
  // c = 0.5, on a line: (-x) ⊕ (-x) = -2x / (1 + c x^2) = -1 / 1.125.
  EXPECT_NEAR(analysis::PoincareDistance(x.data(), minus_x.data(), 2, 0.5),
              2 / std::sqrt(0.5) * std::atanh(std::sqrt(0.5) / 1.125), 1e-14);
  EXPECT_EQ(analysis::PoincareDistance(x.data(), x.data(), 2, 0.5), 0.0);
}

TEST(PoincareDistanceTest, SymmetricAndEqualToTheMobiusFormOnRandomPoints) {
  const double c = 0.3;
  const BallPoints points = AtRadii({0.01, 0.2, 0.5, 0.8, 0.95, 0.99, 0.3, 0.7}, 6, c, 7);
  for (int64_t i = 0; i < points.rows; ++i) {
    for (int64_t j = 0; j < points.rows; ++j) {
      const double d = analysis::PoincareDistance(points.Row(i), points.Row(j), 6, c);
      EXPECT_EQ(d, analysis::PoincareDistance(points.Row(j), points.Row(i), 6, c));
      if (i != j) {
        EXPECT_NEAR(d, MobiusDistance(points.Row(i), points.Row(j), 6, c), 1e-9 * d);
      }
    }
  }
}

TEST(PoincareDistanceTest, AccurateNearTheBoundary) {
  const float r = 1.0f - 1e-6f;  // c = 1: about 1e-6 from the boundary
  const std::vector<float> x = {r, 0.0f, 0.0f};
  const double expected = std::log((1.0 + r) / (1.0 - r));  // 2 artanh(r), exact inputs
  EXPECT_NEAR(analysis::DistanceToOrigin(x.data(), 3, 1.0), expected, 1e-12 * expected);
  const std::vector<float> minus_x = {-r, 0.0f, 0.0f};
  EXPECT_NEAR(analysis::PoincareDistance(x.data(), minus_x.data(), 3, 1.0), 2 * expected,
              1e-12 * expected);
  EXPECT_EQ(analysis::PoincareDistance(x.data(), x.data(), 3, 1.0), 0.0);
}

TEST(PoincareDistanceTest, RefusesPointsOutsideTheBallAndBadCurvature) {
  const std::vector<float> x = {0.8f, 0.8f};
  const std::vector<float> origin = {0.0f, 0.0f};
  EXPECT_NE(ErrorMessage([&] {
              analysis::PoincareDistance(x.data(), origin.data(), 2, 1.0);
            }).find("strictly inside the ball"),
            std::string::npos);
  EXPECT_NE(ErrorMessage([&] {
              analysis::DistanceToOrigin(origin.data(), 2, -1.0);
            }).find("DistanceToOrigin: c must be finite and > 0, got -1"),
            std::string::npos);
  const BallPoints short_coords{{0.1f, 0.2f, 0.3f}, 2, 2};
  EXPECT_NE(ErrorMessage([&] {
              analysis::BuildProxyTree(short_coords, 1.0);
            }).find("BuildProxyTree: proxies has 3 coordinates, expected rows * dim = 2 * 2"),
            std::string::npos);
}

// Every documented property of the tree, with the parent re-derived by brute force.
void ExpectTreeInvariants(const analysis::ProxyTree& tree, const BallPoints& proxies, double c) {
  const int64_t n = proxies.rows;
  ASSERT_EQ(static_cast<int64_t>(tree.parent.size()), n);
  ASSERT_EQ(static_cast<int64_t>(tree.depth.size()), n);
  ASSERT_EQ(static_cast<int64_t>(tree.level.size()), n);
  for (int64_t i = 0; i < n; ++i) {
    EXPECT_EQ(tree.depth[i], analysis::DistanceToOrigin(proxies.Row(i), proxies.dim, c));
    int64_t expected_parent = -1;
    double nearest = 0.0;
    for (int64_t j = 0; j < n; ++j) {
      if (tree.depth[j] >= tree.depth[i]) continue;
      const double d = analysis::PoincareDistance(proxies.Row(i), proxies.Row(j), proxies.dim, c);
      if (expected_parent == -1 || d < nearest) {
        expected_parent = j;
        nearest = d;
      }
    }
    EXPECT_EQ(tree.parent[i], expected_parent) << "proxy " << i;
    const int64_t parent = tree.parent[i];
    if (parent == -1) {
      EXPECT_EQ(tree.level[i], 0) << "proxy " << i;
    } else {
      EXPECT_LT(tree.depth[parent], tree.depth[i]) << "proxy " << i;
      EXPECT_EQ(tree.level[i], tree.level[parent] + 1) << "proxy " << i;
    }
    int64_t node = i;
    for (int64_t steps = 0; node != -1 && steps <= n; ++steps) node = tree.parent[node];
    EXPECT_EQ(node, -1) << "proxy " << i << " does not reach the root";
  }
}

// 40 random directions, each copied with all 8 sign patterns of its first three coordinates:
// groups of 8 proxies at bit-identical depth.
BallPoints EqualRadiusGroups(double c) {
  const BallPoints base = AtRadii(std::vector<double>(40, 0.6), 5, c, 11);
  BallPoints proxies{{}, 0, 5};
  for (int64_t i = 0; i < base.rows; ++i) {
    for (int signs = 0; signs < 8; ++signs) {
      for (int64_t k = 0; k < 5; ++k) {
        const bool flip = k < 3 && (signs >> k) & 1;
        proxies.coords.push_back(flip ? -base.Row(i)[k] : base.Row(i)[k]);
      }
      ++proxies.rows;
    }
  }
  return proxies;
}

// `count` radii (as fractions of the ball's radius) uniform in [0, max), from `seed`.
std::vector<double> RandomRadii(size_t count, double max, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> uniform(0.0, max);
  std::vector<double> radii(count);
  for (double& r : radii) r = uniform(rng);
  return radii;
}

TEST(ProxyTreeTest, InvariantsHoldOnRandomProxies) {
  const double c = 0.1;
  const std::vector<double> random_radii = RandomRadii(300, 0.999, 3);
  std::vector<double> near_boundary(100);
  for (size_t i = 0; i < near_boundary.size(); ++i) near_boundary[i] = 1.0 - 1e-6 * (1 + i % 7);
  const struct {
    const char* name;
    BallPoints proxies;
  } cases[] = {
      {"random radii", AtRadii(random_radii, 8, c, 1)},
      {"groups at equal radius", EqualRadiusGroups(c)},
      {"near the boundary", AtRadii(near_boundary, 4, c, 2)},
  };
  for (const auto& test_case : cases) {
    SCOPED_TRACE(test_case.name);
    ExpectTreeInvariants(analysis::BuildProxyTree(test_case.proxies, c), test_case.proxies, c);
  }
}

TEST(ProxyTreeTest, ProxiesAtEqualDepthAreNeverEachOthersParent) {
  const BallPoints proxies = Rows({{0.5f, 0.0f}, {0.0f, 0.5f}, {-0.5f, 0.0f}, {0.0f, -0.5f}});
  const analysis::ProxyTree tree = analysis::BuildProxyTree(proxies, 1.0);
  EXPECT_EQ(tree.parent, (std::vector<int64_t>{-1, -1, -1, -1}));
  EXPECT_EQ(tree.level, (std::vector<int64_t>{0, 0, 0, 0}));
}

TEST(ProxyTreeTest, HandBuiltDiskCase) {
  // c = 1. Radii: 0.05, 0.4, 0.70, 0.32, 0.63, 0.67. Proxy 2 sits just past 1 on nearly the same
  // ray, 4 just past 3, and 5 is nearer 1 than 0 (arcosh arguments 2.10 and 2.50).
  const BallPoints proxies = Rows(
      {{0.05f, 0.0f}, {0.4f, 0.0f}, {0.7f, 0.05f}, {-0.3f, 0.1f}, {-0.6f, 0.2f}, {0.45f, -0.5f}});
  const analysis::ProxyTree tree = analysis::BuildProxyTree(proxies, 1.0);
  EXPECT_EQ(tree.parent, (std::vector<int64_t>{-1, 0, 1, 0, 3, 1}));
  EXPECT_EQ(tree.level, (std::vector<int64_t>{0, 1, 2, 1, 2, 2}));
  EXPECT_NEAR(tree.depth[1], std::log(1.4 / 0.6), 1e-7);  // float 0.4 is inexact
}

TEST(NearestProxyTest, AssignsPointsAndCountsMembers) {
  const BallPoints proxies = Rows({{0.0f, 0.0f}, {0.6f, 0.0f}, {-0.6f, 0.0f}});
  const BallPoints points =
      Rows({{0.7f, 0.1f}, {0.5f, -0.1f}, {-0.65f, 0.0f}, {0.05f, 0.05f}, {0.62f, 0.0f}});
  EXPECT_EQ(analysis::NearestProxy(points, proxies, 1.0), (std::vector<int64_t>{1, 1, 2, 0, 1}));
  EXPECT_EQ(analysis::MemberCounts(points, proxies, 1.0), (std::vector<int64_t>{1, 3, 1}));
}

TEST(LowestCommonAncestorTest, HandBuiltCase) {
  // Proxies: the origin and one on each side. Two points right of the origin meet at the right
  // proxy; a right and a left point meet at the origin, which is equally far from both.
  const BallPoints proxies = Rows({{0.0f, 0.0f}, {0.5f, 0.0f}, {-0.5f, 0.0f}});
  const std::vector<float> right_up = {0.6f, 0.1f};
  const std::vector<float> right_down = {0.6f, -0.1f};
  const std::vector<float> left_up = {-0.6f, 0.1f};
  EXPECT_EQ(analysis::LowestCommonAncestor(right_up.data(), right_down.data(), proxies, 1.0), 1);
  EXPECT_EQ(analysis::LowestCommonAncestor(right_up.data(), left_up.data(), proxies, 1.0), 0);
  EXPECT_EQ(analysis::LowestCommonAncestor(left_up.data(), left_up.data(), proxies, 1.0), 2);
}

TEST(SummariseClassesTest, CentresPickTheNearestProxies) {
  const BallPoints proxies =
      Rows({{0.0f, 0.0f}, {0.5f, 0.0f}, {-0.5f, 0.0f}, {0.55f, 0.3f}, {0.0f, 0.6f}});
  // Class 7: two points mirrored about the x axis, centre on the axis near proxy 1. Class 3: one
  // point, its own centre, nearest proxy 4 then 0.
  const BallPoints points = Rows({{0.5f, 0.2f}, {0.0f, 0.55f}, {0.5f, -0.2f}});
  const auto summaries = analysis::SummariseClasses(points, {7, 3, 7}, proxies, 1.0, 2);
  ASSERT_EQ(summaries.size(), 2u);
  EXPECT_EQ(summaries[0].label, 3);
  EXPECT_EQ(summaries[0].members, 1);
  EXPECT_EQ(summaries[0].nearest_proxies, (std::vector<int64_t>{4, 0}));
  EXPECT_EQ(summaries[1].label, 7);
  EXPECT_EQ(summaries[1].members, 2);
  EXPECT_EQ(summaries[1].nearest_proxies, (std::vector<int64_t>{1, 3}));
  EXPECT_NE(ErrorMessage([&] {
              analysis::SummariseClasses(points, {7, 3, 7}, proxies, 1.0, 6);
            }).find("SummariseClasses: top_m must be in [1, 5]"),
            std::string::npos);
}

TEST(RocAucTest, HandCases) {
  const struct {
    const char* name;
    std::vector<double> positives;
    std::vector<double> negatives;
    double expected;
  } cases[] = {
      {"perfect", {3, 4, 5}, {1, 2}, 1.0},
      {"reversed", {1, 2}, {3, 4, 5}, 0.0},
      {"all ties", {1, 1}, {1, 1, 1}, 0.5},
      // 0.9 beats all three; 0.4 beats 0.1 and ties 0.4; 0.6 beats all three: 7.5 / 9.
      {"mixed", {0.9, 0.4, 0.6}, {0.5, 0.4, 0.1}, 7.5 / 9},
  };
  for (const auto& test_case : cases) {
    EXPECT_DOUBLE_EQ(analysis::RocAuc(test_case.positives, test_case.negatives), test_case.expected)
        << test_case.name;
  }
  EXPECT_NE(ErrorMessage([] { analysis::RocAuc({}, {1.0}); }).find("RocAuc: both sets"),
            std::string::npos);
  EXPECT_NE(ErrorMessage([] { analysis::RocAuc({NAN}, {1.0}); }).find("finite"), std::string::npos);
}

// Four super-categories of five classes each: classes of one super-category share most of their
// direction; the proxies are one near the origin, one per super-category and one per class.
struct PlantedHierarchy {
  BallPoints points;
  std::vector<int64_t> labels;
  BallPoints proxies;
  std::map<int64_t, int64_t> super_of_label;
};

constexpr double kPlantedC = 0.5;

PlantedHierarchy MakePlantedHierarchy() {
  const int64_t dim = 16, supers = 4, classes_per_super = 5, points_per_class = 12;
  std::mt19937_64 rng(5);
  PlantedHierarchy data{{{}, 0, dim}, {}, {{}, 0, dim}, {}};
  AppendExpmap0(std::vector<double>(dim, 0.01), kPlantedC, data.proxies);
  const auto mix = [&](const std::vector<double>& base, double spread, double length) {
    std::vector<double> v = UnitVector(dim, rng);
    for (int64_t k = 0; k < dim; ++k) v[k] = length * (base[k] + spread * v[k]);
    return v;
  };
  for (int64_t s = 0; s < supers; ++s) {
    const std::vector<double> super_direction = UnitVector(dim, rng);
    AppendExpmap0(mix(super_direction, 0.0, 1.5), kPlantedC, data.proxies);
    for (int64_t k = 0; k < classes_per_super; ++k) {
      const int64_t label = 100 + s * classes_per_super + k;
      data.super_of_label[label] = s;
      const std::vector<double> class_direction = mix(super_direction, 0.5, 1.0);
      AppendExpmap0(mix(class_direction, 0.0, 3.0), kPlantedC, data.proxies);
      for (int64_t p = 0; p < points_per_class; ++p) {
        AppendExpmap0(mix(class_direction, 0.2, 3.0), kPlantedC, data.points);
        data.labels.push_back(label);
      }
    }
  }
  return data;
}

TEST(HierarchyDiscoveryTest, FindsPlantedSuperCategories) {
  const PlantedHierarchy data = MakePlantedHierarchy();
  const analysis::DiscoveryScore score = analysis::HierarchyDiscovery(
      data.points, data.labels, data.proxies, data.super_of_label, kPlantedC, 8, 42);
  EXPECT_EQ(score.same_pairs, 4 * 10);
  EXPECT_EQ(score.cross_pairs, 20 * 19 / 2 - 40);
  EXPECT_GT(score.centre_distance_auc, 0.9);
  EXPECT_GT(score.lca_depth_auc, 0.9);
  EXPECT_GT(score.lca_height_auc, 0.9);
  const analysis::DiscoveryScore again = analysis::HierarchyDiscovery(
      data.points, data.labels, data.proxies, data.super_of_label, kPlantedC, 8, 42);
  EXPECT_EQ(again.lca_depth_auc, score.lca_depth_auc);
}

TEST(HierarchyDiscoveryTest, ShuffledGroupsScoreNearChance) {
  const PlantedHierarchy data = MakePlantedHierarchy();
  std::vector<int64_t> labels;
  for (const auto& entry : data.super_of_label) labels.push_back(entry.first);
  std::mt19937_64 rng(9);
  double lca_sum = 0.0, height_sum = 0.0, centre_sum = 0.0;
  const int shuffles = 10;
  for (int t = 0; t < shuffles; ++t) {
    std::shuffle(labels.begin(), labels.end(), rng);
    std::map<int64_t, int64_t> shuffled;
    for (size_t i = 0; i < labels.size(); ++i) shuffled[labels[i]] = i % 4;
    const analysis::DiscoveryScore score = analysis::HierarchyDiscovery(
        data.points, data.labels, data.proxies, shuffled, kPlantedC, 4, t);
    lca_sum += score.lca_depth_auc;
    height_sum += score.lca_height_auc;
    centre_sum += score.centre_distance_auc;
  }
  EXPECT_NEAR(lca_sum / shuffles, 0.5, 0.1);
  EXPECT_NEAR(height_sum / shuffles, 0.5, 0.1);
  EXPECT_NEAR(centre_sum / shuffles, 0.5, 0.1);
}

TEST(HierarchyDiscoveryTest, SkipsUngroupedClassesAndNeedsBothKindsOfPair) {
  const PlantedHierarchy data = MakePlantedHierarchy();
  std::map<int64_t, int64_t> two_supers;
  for (const auto& [label, super] : data.super_of_label) {
    if (super < 2) two_supers[label] = super;
  }
  const analysis::DiscoveryScore score = analysis::HierarchyDiscovery(
      data.points, data.labels, data.proxies, two_supers, kPlantedC, 2, 1);
  EXPECT_EQ(score.same_pairs, 2 * 10);
  EXPECT_EQ(score.cross_pairs, 5 * 5);
  std::map<int64_t, int64_t> singletons;
  for (const auto& entry : data.super_of_label) singletons[entry.first] = entry.first;
  EXPECT_NE(ErrorMessage([&] {
              analysis::HierarchyDiscovery(data.points, data.labels, data.proxies, singletons,
                                           kPlantedC, 2, 1);
            }).find("needs both same- and cross-category class pairs, got 0 same"),
            std::string::npos);
}

TEST(DiskProjectionTest, StaysInTheDiskAndKeepsTheOriginAtTheCentre) {
  const double c = 0.1;
  const std::vector<double> radii = RandomRadii(200, 0.999999, 4);
  BallPoints points = AtRadii(radii, 8, c, 6);
  points.coords.insert(points.coords.end(), 8, 0.0f);  // the origin, last
  ++points.rows;
  const analysis::DiskProjection projection = analysis::FitDiskProjection(points, c);
  ASSERT_EQ(projection.axes.size(), 16u);
  const auto disk = analysis::ProjectToDisk(projection, points, c);
  ASSERT_EQ(disk.size(), 201u);
  for (const auto& p : disk) EXPECT_LT(std::hypot(p[0], p[1]), 1.0);
  EXPECT_EQ(disk.back()[0], 0.0);
  EXPECT_EQ(disk.back()[1], 0.0);
}

TEST(DiskProjectionTest, PointsInAPlaneKeepTheirScaledRadius) {
  // Points spread over the plane of two orthonormal directions, more along a than b, each with its
  // mirror image across a (no a-b correlation): the first axis is a, the second b, and a point at
  // Euclidean radius |x| lands at sqrt(c)|x| in the disk.
  const double c = 0.5, s = std::sqrt(0.5);
  const std::vector<double> a = {s, s, 0, 0, 0}, b = {0, 0, 0.6, 0.8, 0};
  std::mt19937_64 rng(8);
  std::uniform_real_distribution<double> uniform(-1.0, 1.0);
  BallPoints points{{}, 0, 5};
  for (int i = 0; i < 50; ++i) {
    const double u = 2.0 * uniform(rng), w = 0.7 * uniform(rng);
    for (double mirror : {1.0, -1.0}) {
      std::vector<double> v(5);
      for (int k = 0; k < 5; ++k) v[k] = u * a[k] + mirror * w * b[k];
      AppendExpmap0(v, c, points);
    }
  }
  const analysis::DiskProjection projection = analysis::FitDiskProjection(points, c);
  const double* axis0 = projection.axes.data();
  const double* axis1 = axis0 + 5;
  EXPECT_NEAR(std::inner_product(axis0, axis0 + 5, axis0, 0.0), 1.0, 1e-12);
  EXPECT_NEAR(std::inner_product(axis1, axis1 + 5, axis1, 0.0), 1.0, 1e-12);
  EXPECT_NEAR(std::inner_product(axis0, axis0 + 5, axis1, 0.0), 0.0, 1e-12);
  EXPECT_NEAR(std::fabs(std::inner_product(axis0, axis0 + 5, a.begin(), 0.0)), 1.0, 1e-6);
  EXPECT_NEAR(std::fabs(std::inner_product(axis1, axis1 + 5, b.begin(), 0.0)), 1.0, 1e-6);
  const auto disk = analysis::ProjectToDisk(projection, points, c);
  for (int64_t i = 0; i < points.rows; ++i) {
    const double x2 = std::inner_product(points.Row(i), points.Row(i) + 5, points.Row(i), 0.0);
    EXPECT_NEAR(std::hypot(disk[i][0], disk[i][1]), std::sqrt(c * x2), 1e-6);
  }
}

TEST(DiskProjectionTest, PointsAllAtTheOriginStillGiveOrthonormalAxes) {
  const BallPoints points{std::vector<float>(6, 0.0f), 2, 3};
  const analysis::DiskProjection projection = analysis::FitDiskProjection(points, 1.0);
  const double* axis0 = projection.axes.data();
  const double* axis1 = axis0 + 3;
  EXPECT_NEAR(std::inner_product(axis0, axis0 + 3, axis0, 0.0), 1.0, 1e-12);
  EXPECT_NEAR(std::inner_product(axis1, axis1 + 3, axis1, 0.0), 1.0, 1e-12);
  EXPECT_NEAR(std::inner_product(axis0, axis0 + 3, axis1, 0.0), 0.0, 1e-12);
  const auto disk = analysis::ProjectToDisk(projection, points, 1.0);
  EXPECT_EQ(disk[0], (std::array<double, 2>{0.0, 0.0}));
}

}  // namespace
}  // namespace hier::testing
