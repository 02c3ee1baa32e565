#include "trainer/core/fast_math.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

namespace hier::testing {
namespace {

TEST(FastMathTest, ExpIsAccurateOverItsRange) {
  double worst = 0;
  for (float x = -87.0f; x <= 88.0f; x += 0.01171875f) {
    const double want = std::exp(static_cast<double>(x));
    worst = std::max(worst, std::abs(core::FastExp(x) - want) / want);
  }
  EXPECT_LT(worst, 3e-7);
  EXPECT_EQ(core::FastExp(-1000.0f), core::FastExp(-87.0f));
  EXPECT_GT(core::FastExp(-1000.0f), 0.0f);
}

TEST(FastMathTest, LogIsAccurateOnUniformDraws) {
  double worst = 0;
  for (int k = 0; k < (1 << 24); k += 97) {
    const float u = (static_cast<float>(k) + 0.5f) / 16777216.0f;
    const double want = std::log(static_cast<double>(u));
    worst = std::max(worst, std::abs(core::FastLog(u) - want) / std::abs(want));
  }
  EXPECT_LT(worst, 5e-7);
  EXPECT_NEAR(core::FastLog(1.0f), 0.0f, 1e-7);
}

TEST(FastMathTest, VectorAndScalarVersionsAgree) {
  const core::FloatX8 x = {-90.0f, -20.0f, -1.5f, 0.0f, 0.25f, 3.0f, 40.0f, 80.0f};
  const core::FloatX8 u = {1e-7f, 0.01f, 0.3f, 0.7071f, 0.71f, 1.0f, 2.5f, 1e4f};
  const core::FloatX8 e = core::FastExp(x), l = core::FastLog(u);
  for (int lane = 0; lane < 8; ++lane) {
    EXPECT_EQ(e[lane], core::FastExp(x[lane]));
    EXPECT_EQ(l[lane], core::FastLog(u[lane]));
  }
}

TEST(FastMathTest, TripletNoiseIsGumbel) {
  // Uniforms are in (0, 1) with mean 1/2; log(ExpGumbel) is Gumbel(0, 1): mean Euler's gamma,
  // variance pi^2 / 6. Drawn the way the kernel draws: 512 proxies per triplet, many triplets.
  double u_sum = 0, g_sum = 0, g_sq = 0;
  int n = 0;
  for (uint64_t t = 0; t < 800; ++t) {
    const core::TripletNoise noise = core::TripletNoise::For(0x1234, t);
    for (uint32_t q = 0; q < 512; ++q, ++n) {
      const float u = core::UniformFromBits(core::Hash32(q ^ noise.ij));
      ASSERT_GT(u, 0.0f);
      ASSERT_LT(u, 1.0f);
      u_sum += u;
      const double g = std::log(static_cast<double>(core::TripletNoise::ExpGumbel(q, noise.ijk)));
      g_sum += g;
      g_sq += g * g;
    }
  }
  const double mean = g_sum / n;
  EXPECT_NEAR(u_sum / n, 0.5, 3e-3);
  EXPECT_NEAR(mean, 0.5772156649, 1e-2);
  EXPECT_NEAR(g_sq / n - mean * mean, M_PI * M_PI / 6, 2e-2);
}

TEST(FastMathTest, ExtremeBitsGiveFiniteNoise) {
  // One draw in 2^24 has all top bits set; 10^7 draws a step meet it within a few steps, and an
  // infinite Gumbel factor turns the whole softmax into NaN.
  for (uint32_t bits : {0u, 1u, 0xFFu, 0x1FFu, 0x200u, 0x7FFFFFFFu, 0xFFFFFE00u, 0xFFFFFFFFu}) {
    const float u = core::UniformFromBits(bits);
    EXPECT_GT(u, 0.0f) << bits;
    EXPECT_LT(u, 1.0f) << bits;
    const float e = core::ExpGumbelFromBits(bits);
    EXPECT_TRUE(std::isfinite(e) && e > 0) << bits << " -> " << e;
  }
  const core::FloatX8 v = core::ExpGumbelFromBits(core::UintX8{} + 0xFFFFFFFFu);
  for (int lane = 0; lane < 8; ++lane) EXPECT_TRUE(std::isfinite(v[lane]) && v[lane] > 0);
}

TEST(FastMathTest, VectorNoiseMatchesScalarNoise) {
  const core::TripletNoise noise = core::TripletNoise::For(7, 3);
  const core::FloatX8 v =
      core::TripletNoise::ExpGumbel(core::UintX8{0, 1, 2, 3, 4, 5, 6, 7} + 16u, noise.ij);
  for (uint32_t lane = 0; lane < 8; ++lane) {
    EXPECT_EQ(v[lane], core::TripletNoise::ExpGumbel(16u + lane, noise.ij));
  }
}

TEST(FastMathTest, StreamsDependOnKeyAndIndexOnly) {
  const core::CounterRng a{1}, b{1}, c{2};
  EXPECT_EQ(a.Bits(42), b.Bits(42));
  EXPECT_NE(a.Bits(42), c.Bits(42));
  EXPECT_NE(a.Bits(42), a.Bits(43));
  const core::TripletNoise n1 = core::TripletNoise::For(5, 0), n2 = core::TripletNoise::For(5, 1);
  EXPECT_EQ(n1.ij, core::TripletNoise::For(5, 0).ij);
  EXPECT_NE(n1.ij, n1.ijk);
  EXPECT_NE(n1.ij, n2.ij);
}

}  // namespace
}  // namespace hier::testing
