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
}

TEST(FastMathTest, LogIsAccurateOnUniformDraws) {
  double worst = 0;
  for (int k = 0; k < (1 << 24); k += 97) {
    const float u = (static_cast<float>(k) + 0.5f) / 16777216.0f;
    const double want = std::log(static_cast<double>(u));
    worst = std::max(worst, std::abs(core::FastLog(u) - want) / std::abs(want));
  }
  EXPECT_LT(worst, 3e-7);
  EXPECT_NEAR(core::FastLog(1.0f), 0.0f, 1e-7);
}

TEST(FastMathTest, CounterRngGivesGumbelNoise) {
  // Uniforms are in (0, 1) with mean 1/2; log(ExpGumbel) is Gumbel(0, 1): mean Euler's gamma,
  // variance pi^2 / 6.
  const core::CounterRng rng{0x1234};
  const int n = 400000;
  double u_sum = 0, g_sum = 0, g_sq = 0;
  for (int i = 0; i < n; ++i) {
    const float u = rng.Uniform(i);
    ASSERT_GT(u, 0.0f);
    ASSERT_LT(u, 1.0f);
    u_sum += u;
    const double g = std::log(static_cast<double>(rng.ExpGumbel(i)));
    g_sum += g;
    g_sq += g * g;
  }
  const double mean = g_sum / n;
  EXPECT_NEAR(u_sum / n, 0.5, 3e-3);
  EXPECT_NEAR(mean, 0.5772156649, 1e-2);
  EXPECT_NEAR(g_sq / n - mean * mean, M_PI * M_PI / 6, 2e-2);
}

TEST(FastMathTest, CounterRngDependsOnKeyAndCounterOnly) {
  const core::CounterRng a{1}, b{1}, c{2};
  EXPECT_EQ(a.Bits(42), b.Bits(42));
  EXPECT_NE(a.Bits(42), c.Bits(42));
  EXPECT_NE(a.Bits(42), a.Bits(43));
}

}  // namespace
}  // namespace hier::testing
