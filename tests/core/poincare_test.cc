#include "trainer/core/poincare.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include "tests/core/test_data.h"

namespace hier::testing {
namespace {

TEST(PoincareTest, BallCurvatureRoundsToFloat32) {
  EXPECT_EQ(core::BallCurvature(0.1), 0.10000000149011612);
  EXPECT_EQ(core::BallCurvature(1.0), 1.0);
}

TEST(PoincareTest, FastDistMatrixMatchesBroadcastEverywhere) {
  // Random points, near-duplicates, exact duplicates and points near the boundary.
  for (double c : {0.1, 1.0}) {
    const at::Tensor x =
        at::cat({BallPoints(20, 32, c, 1), BallPoints(5, 32, c, 2, at::kDouble, 40)});
    const at::Tensor y =
        at::cat({x.slice(0, 0, 5), x.slice(0, 5, 10) * (1 + 1e-7), BallPoints(10, 32, c, 3)});
    EXPECT_TRUE(
        at::allclose(core::DistMatrix(x, y, c), core::DistMatrixBroadcast(x, y, c), 1e-10, 1e-10));
    const at::Tensor x32 = x.to(at::kFloat), y32 = y.to(at::kFloat);
    EXPECT_TRUE(at::allclose(core::DistMatrix(x32, y32, c), core::DistMatrixBroadcast(x32, y32, c),
                             1e-3, 1e-3));
  }
}

TEST(PoincareTest, DistMatrixOfASetWithItselfHasZeroDiagonalAndIsSymmetric) {
  const at::Tensor x = BallPoints(30, 16, 0.1, 4);
  const at::Tensor d = core::DistMatrix(x, x, 0.1);
  EXPECT_LT(d.diagonal().abs().max().item<double>(), 1e-12);
  EXPECT_TRUE(at::allclose(d, d.t(), 1e-12, 1e-12));
}

TEST(PoincareTest, DistanceToOriginIsTheDistanceFromZero) {
  const at::Tensor x = BallPoints(10, 8, 0.5, 5);
  const at::Tensor from_zero = core::DistMatrix(at::zeros({1, 8}, at::kDouble), x, 0.5)[0];
  // The Möbius sum 0 ⊕ x carries the reference's 1 + 1e-5 denominator.
  EXPECT_TRUE(at::allclose(core::DistanceToOrigin(x / (1 + 1e-5), 0.5), from_zero, 1e-12, 1e-12));
}

TEST(PoincareTest, ExpmapAndLogmapAreInverse) {
  at::Generator gen = at::detail::createCPUGenerator(6);
  const at::Tensor u = at::randn({10, 8}, gen, at::TensorOptions().dtype(at::kDouble));
  EXPECT_TRUE(at::allclose(core::Logmap0(core::Expmap0(u, 0.1), 0.1), u, 1e-9, 1e-9));
}

TEST(PoincareTest, LorentzMapLandsOnTheHyperboloidAndInverts) {
  const double c = 0.1, cb = core::BallCurvature(c);
  const at::Tensor p = BallPoints(12, 6, c, 7);
  const at::Tensor x = core::PoincareToLorentz(p, c);
  ASSERT_EQ(x.size(1), 7);
  const at::Tensor x0 = x.select(1, 0);
  const at::Tensor minkowski = -x0 * x0 + x.slice(1, 1).pow(2).sum(1);
  EXPECT_TRUE(at::allclose(minkowski, at::full_like(minkowski, -1 / cb), 1e-9, 1e-9));
  EXPECT_TRUE(at::allclose(core::LorentzToPoincare(x, c), p, 1e-12, 1e-12));
}

TEST(PoincareTest, LorentzInnerProductOrdersLikeTheDistance) {
  // d = arcosh(-c <x, y>_L) / sqrt(c): the identity the index's candidate stage rests on.
  const double c = 0.1, cb = core::BallCurvature(c);
  const at::Tensor p = BallPoints(8, 6, c, 8), q = BallPoints(9, 6, c, 9);
  const at::Tensor xp = core::PoincareToLorentz(p, c), xq = core::PoincareToLorentz(q, c);
  const at::Tensor inner =
      -at::outer(xp.select(1, 0), xq.select(1, 0)) + at::mm(xp.slice(1, 1), xq.slice(1, 1).t());
  const at::Tensor via_lorentz = at::acosh(-cb * inner) / std::sqrt(cb);
  // The reference distance carries a +1e-5 in the Möbius denominator, hence the loose tolerance.
  EXPECT_TRUE(at::allclose(core::DistMatrix(p, q, c), via_lorentz, 1e-4, 1e-4));
}

TEST(PoincareTest, ProjectKeepsPointsInsideTheBall) {
  const at::Tensor far = at::randn({10, 4}, at::kDouble) * 100;
  const at::Tensor inside = core::Project(far, 1.0);
  EXPECT_LE(at::linalg_vector_norm(inside, 2, {-1}).max().item<double>(), 1 - 1e-3 + 1e-12);
  const at::Tensor near = BallPoints(10, 4, 1.0, 10);
  EXPECT_TRUE(at::equal(core::Project(near, 1.0), near));
}

TEST(PoincareTest, MobiusAddOfTheOriginIsTheIdentityUpToItsEpsilon) {
  const at::Tensor y = BallPoints(5, 4, 0.1, 11);
  const at::Tensor sum = core::MobiusAdd(at::zeros_like(y), y, 0.1);
  EXPECT_TRUE(at::allclose(sum, y / (1 + 1e-5), 1e-12, 1e-12));
}

}  // namespace
}  // namespace hier::testing
