#include "index/ball_geometry.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>
#include <vector>

namespace hier::testing {
namespace {

using ::testing::HasSubstr;

constexpr double kC = 0.1;
constexpr int64_t kDim = 128;

// `count` points of `dim` coordinates at radii spread from the origin to `max_scaled_radius` of
// the ball's radius 1/sqrt(c), in random directions.
std::vector<float> RandomBallPoints(int64_t count, int64_t dim, double max_scaled_radius,
                                    uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<double> normal;
  std::uniform_real_distribution<double> fraction(0.0, max_scaled_radius);
  std::vector<float> points(count * dim);
  for (int64_t i = 0; i < count; ++i) {
    std::vector<double> direction(dim);
    double norm = 0;
    for (double& x : direction) {
      x = normal(rng);
      norm += x * x;
    }
    const double radius = fraction(rng) / std::sqrt(kC) / std::sqrt(norm);
    for (int64_t j = 0; j < dim; ++j)
      points[i * dim + j] = static_cast<float>(direction[j] * radius);
  }
  return points;
}

std::vector<float> Lorentz(const std::vector<float>& points, int64_t dim, bool query) {
  const int64_t count = static_cast<int64_t>(points.size()) / dim;
  std::vector<float> out(count * (dim + 1));
  for (int64_t i = 0; i < count; ++i) {
    (query ? index::LorentzQueryVector : index::LorentzItemVector)(&points[i * dim], dim, kC,
                                                                   &out[i * (dim + 1)]);
  }
  return out;
}

// Item indices sorted by `key` (smallest first), ties by index.
std::vector<int64_t> Order(const std::vector<double>& key) {
  std::vector<int64_t> order(key.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](int64_t a, int64_t b) { return key[a] < key[b]; });
  return order;
}

TEST(BallGeometryTest, LorentzInnerProductOrdersLikePoincareDistance) {
  // Items up to 0.999 of the radius (well past the clip sphere of clip_r 2.3, at 0.62).
  const int64_t items = 2000, queries = 50, k = 10;
  const std::vector<float> item_points = RandomBallPoints(items, kDim, 0.999, 1);
  const std::vector<float> query_points = RandomBallPoints(queries, kDim, 0.95, 2);
  const std::vector<float> item_vectors = Lorentz(item_points, kDim, false);
  const std::vector<float> query_vectors = Lorentz(query_points, kDim, true);
  for (int64_t q = 0; q < queries; ++q) {
    std::vector<double> distance(items), negative_product(items);
    for (int64_t i = 0; i < items; ++i) {
      distance[i] =
          index::PoincareDistance(&query_points[q * kDim], &item_points[i * kDim], kDim, kC);
      double product = 0;
      for (int64_t j = 0; j <= kDim; ++j) {
        product += static_cast<double>(query_vectors[q * (kDim + 1) + j]) *
                   item_vectors[i * (kDim + 1) + j];
      }
      negative_product[i] = -product;
      // The product is -cosh(sqrt(c) d) / c (float storage: relative error ~1e-6).
      EXPECT_NEAR(std::acosh(-kC * product) / std::sqrt(kC), distance[i],
                  1e-3 * distance[i] + 1e-4);
    }
    const std::vector<int64_t> by_distance = Order(distance), by_product = Order(negative_product);
    EXPECT_TRUE(std::equal(by_distance.begin(), by_distance.begin() + k, by_product.begin()))
        << "query " << q;
  }
}

TEST(BallGeometryTest, DistanceHasTheClosedFormOfAPointFromTheOrigin) {
  const float origin[2] = {0, 0};
  for (double x : {0.0, 0.5, 1.9, 3.0}) {
    const float p[2] = {0, static_cast<float>(x)};
    // d(0, p) = (2 / sqrt c) artanh(sqrt c |p|).
    EXPECT_NEAR(index::PoincareDistance(origin, p, 2, kC),
                2.0 / std::sqrt(kC) * std::atanh(std::sqrt(kC) * static_cast<float>(x)), 1e-9);
    EXPECT_NEAR(index::PoincareDistance(p, origin, 2, kC),
                index::PoincareDistance(origin, p, 2, kC), 1e-12);
  }
  const std::vector<float> points = RandomBallPoints(1, kDim, 0.9, 5);
  EXPECT_EQ(index::PoincareDistance(points.data(), points.data(), kDim, kC), 0.0);
}

TEST(BallGeometryTest, LogMap0KeepsTheDirectionAndHalvesTheDistanceFromTheOrigin) {
  const std::vector<float> points = RandomBallPoints(20, kDim, 0.99, 3);
  const std::vector<float> origin(kDim, 0.0f);
  std::vector<float> tangent(kDim);
  for (int64_t i = 0; i < 20; ++i) {
    const float* p = &points[i * kDim];
    index::LogMap0(p, kDim, kC, tangent.data());
    double norm = 0, cosine = 0, p_norm = 0;
    for (int64_t j = 0; j < kDim; ++j) {
      norm += static_cast<double>(tangent[j]) * tangent[j];
      p_norm += static_cast<double>(p[j]) * p[j];
      cosine += static_cast<double>(tangent[j]) * p[j];
    }
    EXPECT_NEAR(2 * std::sqrt(norm), index::PoincareDistance(origin.data(), p, kDim, kC), 1e-4);
    EXPECT_NEAR(cosine / std::sqrt(norm * p_norm), 1.0, 1e-6);
  }
  index::LogMap0(origin.data(), kDim, kC, tangent.data());
  EXPECT_EQ(*std::max_element(tangent.begin(), tangent.end()), 0.0f);
}

TEST(BallGeometryTest, ValidationNamesTheFieldAndTheProblem) {
  const float radius = static_cast<float>(1 / std::sqrt(kC));
  const float inf = std::numeric_limits<float>::infinity();
  const float nan = std::numeric_limits<float>::quiet_NaN();
  struct Case {
    std::vector<float> point;
    std::string message;  // empty: valid
  };
  const std::vector<Case> cases = {
      {{0.0f, 0.0f}, ""},
      {{0.0f, 0.99f * radius}, ""},
      {{nan, 0.0f}, "vector: coordinate 0 is nan"},
      {{0.0f, inf}, "vector: coordinate 1 is inf"},
      {{0.0f, -inf}, "coordinate 1 is -inf"},
      {{radius, 0.0f}, "on or outside the Poincare ball of curvature 0.1"},
      {{2 * radius, 0.0f}, "c|p|^2 = 4"},
  };
  for (const Case& test : cases) {
    const absl::Status status = index::ValidateBallPoint(test.point.data(), 2, kC, "vector");
    if (test.message.empty()) {
      EXPECT_TRUE(status.ok()) << status;
    } else {
      EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
      EXPECT_THAT(std::string(status.message()), HasSubstr(test.message));
    }
  }
}

}  // namespace
}  // namespace hier::testing
