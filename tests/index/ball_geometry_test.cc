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
  const int64_t width = index::LorentzWidth(dim);
  std::vector<float> out(count * width);
  for (int64_t i = 0; i < count; ++i) {
    (query ? index::LorentzQueryVector : index::LorentzItemVector)(&points[i * dim], dim, kC,
                                                                   &out[i * width]);
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

// The inner products (in double) of a query's Lorentz vector with every item's, negated, so that
// smaller is nearer.
std::vector<double> NegativeProducts(const std::vector<float>& query_vectors, int64_t q,
                                     const std::vector<float>& item_vectors) {
  const int64_t width = index::LorentzWidth(kDim);
  const int64_t items = static_cast<int64_t>(item_vectors.size()) / width;
  std::vector<double> negative(items);
  for (int64_t i = 0; i < items; ++i) {
    double product = 0;
    for (int64_t j = 0; j < width; ++j) {
      product += static_cast<double>(query_vectors[q * width + j]) * item_vectors[i * width + j];
    }
    negative[i] = -product;
  }
  return negative;
}

TEST(BallGeometryTest, LorentzInnerProductOrdersLikePoincareDistance) {
  // Items up to 0.999 of the radius (well past the clip sphere of clip_r 2.3, at 0.62).
  const int64_t items = 2000, queries = 50, k = 10, width = index::LorentzWidth(kDim);
  const std::vector<float> item_points = RandomBallPoints(items, kDim, 0.999, 1);
  const std::vector<float> query_points = RandomBallPoints(queries, kDim, 0.95, 2);
  const std::vector<float> item_vectors = Lorentz(item_points, kDim, false);
  const std::vector<float> query_vectors = Lorentz(query_points, kDim, true);
  for (int64_t q = 0; q < queries; ++q) {
    std::vector<double> distance(items);
    const std::vector<double> negative_product = NegativeProducts(query_vectors, q, item_vectors);
    // The product is the Lorentz product -cosh(sqrt(c) d) / c shifted by b / sqrt(c) + 1/c.
    const double b = -query_vectors[q * width + kDim];
    for (int64_t i = 0; i < items; ++i) {
      distance[i] =
          index::PoincareDistance(&query_points[q * kDim], &item_points[i * kDim], kDim, kC);
      const double lorentz = -negative_product[i] - b / std::sqrt(kC) - 1.0 / kC;
      // Float storage: relative error ~1e-6.
      EXPECT_NEAR(std::acosh(std::max(1.0, -kC * lorentz)) / std::sqrt(kC), distance[i],
                  1e-3 * distance[i] + 2e-3);
    }
    const std::vector<int64_t> by_distance = Order(distance), by_product = Order(negative_product);
    EXPECT_TRUE(std::equal(by_distance.begin(), by_distance.begin() + k, by_product.begin()))
        << "query " << q;
  }
}

TEST(BallGeometryTest, Float32LorentzVectorsOrderCloseNeighboursNearTheOrigin) {
  // 500 items within 1e-3 of a query 1e-3 from the origin, in random order: the plain Lorentz
  // product is -1/c to within 1e-6 for all of them, below float32's resolution there; the
  // shifted vectors order them.
  std::mt19937 rng(7);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_real_distribution<float> uniform(0.0f, 1e-3f);
  std::vector<float> query(kDim), items(500 * kDim);
  for (float& value : query) value = 1e-3f * normal(rng) / std::sqrt(float{kDim});
  for (int64_t i = 0; i < 500; ++i) {
    const float scale = uniform(rng);
    for (int64_t j = 0; j < kDim; ++j) {
      items[i * kDim + j] = query[j] + scale * normal(rng) / std::sqrt(float{kDim});
    }
  }
  const std::vector<float> item_vectors = Lorentz(items, kDim, false);
  const std::vector<float> query_vector = Lorentz(query, kDim, true);
  // Float32 products, as the scan computes them.
  const int64_t width = index::LorentzWidth(kDim);
  std::vector<double> negative_product(500), distance(500);
  for (int64_t i = 0; i < 500; ++i) {
    float product = 0;
    for (int64_t j = 0; j < width; ++j) product += query_vector[j] * item_vectors[i * width + j];
    negative_product[i] = -product;
    distance[i] = index::PoincareDistance(query.data(), &items[i * kDim], kDim, kC);
  }
  const std::vector<int64_t> by_distance = Order(distance), by_product = Order(negative_product);
  EXPECT_TRUE(std::equal(by_distance.begin(), by_distance.begin() + 10, by_product.begin()));
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
