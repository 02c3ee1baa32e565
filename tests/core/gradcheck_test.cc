// Finite-difference checks, in float64, of every custom autograd function in hier_core.
#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <torch/csrc/autograd/autograd.h>

#include <functional>

#include "tests/core/test_data.h"
#include "trainer/core/hier_loss.h"
#include "trainer/core/poincare.h"
#include "trainer/core/to_poincare.h"
#include "trainer/core/triplet_mining.h"

namespace hier::testing {
namespace {

using ScalarFn = std::function<at::Tensor(const at::Tensor&)>;

// Central differences of the scalar `fn` at x, one entry at a time.
at::Tensor NumericalGradient(const ScalarFn& fn, const at::Tensor& x, double eps = 1e-6) {
  at::NoGradGuard no_grad;
  at::Tensor grad = at::zeros_like(x);
  at::Tensor probe = x.detach().clone();
  auto flat = probe.view(-1);
  auto out = grad.view(-1);
  for (int64_t e = 0; e < flat.numel(); ++e) {
    const double saved = flat[e].item<double>();
    flat[e] = saved + eps;
    const double up = fn(probe).item<double>();
    flat[e] = saved - eps;
    const double down = fn(probe).item<double>();
    flat[e] = saved;
    out[e] = (up - down) / (2 * eps);
  }
  return grad;
}

at::Tensor AnalyticGradient(const ScalarFn& fn, const at::Tensor& x) {
  const at::Tensor leaf = x.detach().clone().requires_grad_(true);
  return torch::autograd::grad({fn(leaf)}, {leaf})[0];
}

void ExpectGradientsMatch(const ScalarFn& fn, const at::Tensor& x, double tol = 1e-6) {
  const at::Tensor analytic = AnalyticGradient(fn, x);
  const at::Tensor numeric = NumericalGradient(fn, x);
  EXPECT_TRUE(at::allclose(analytic, numeric, tol, tol))
      << "max difference " << (analytic - numeric).abs().max().item<double>();
}

// A fixed random weighting turns a tensor-valued function into a scalar one.
ScalarFn Weighted(std::function<at::Tensor(const at::Tensor&)> f, at::IntArrayRef out_shape,
                  uint64_t seed) {
  at::Generator gen = at::detail::createCPUGenerator(seed);
  const at::Tensor w = at::randn(out_shape, gen, at::TensorOptions().dtype(at::kDouble));
  return [f, w](const at::Tensor& x) { return (f(x) * w).sum(); };
}

TEST(GradCheckTest, ClampedArtanhInsideTheClamp) {
  const at::Tensor x = at::linspace(-0.95, 0.95, 21, at::kDouble);
  ExpectGradientsMatch(Weighted(core::ClampedArtanh, {21}, 1), x);
}

TEST(GradCheckTest, ClampedArtanhKeepsGradientWhereClamped) {
  // Documented reference behaviour: 1 / (1 - t_c^2) with the clamped t_c, not zero.
  const at::Tensor x = at::tensor({1.5, -2.0}, at::kDouble).requires_grad_(true);
  core::ClampedArtanh(x).sum().backward();
  const double tc = 1 - 1e-5;
  EXPECT_NEAR(x.grad()[0].item<double>(), 1 / (1 - tc * tc), 1e-3);
  EXPECT_NEAR(x.grad()[1].item<double>(), 1 / (1 - tc * tc), 1e-3);
}

TEST(GradCheckTest, DistMatrixInBothArguments) {
  const at::Tensor x = BallPoints(5, 6, 0.5, 2);
  const at::Tensor y = BallPoints(4, 6, 0.5, 3);
  ExpectGradientsMatch(
      Weighted([&](const at::Tensor& v) { return core::DistMatrix(v, y, 0.5); }, {5, 4}, 4), x);
  ExpectGradientsMatch(
      Weighted([&](const at::Tensor& v) { return core::DistMatrix(x, v, 0.5); }, {5, 4}, 5), y);
}

TEST(GradCheckTest, DistMatrixOfASetWithItself) {
  const at::Tensor x = BallPoints(6, 5, 1.0, 6);
  ExpectGradientsMatch(
      Weighted([](const at::Tensor& v) { return core::DistMatrix(v, v, 1.0); }, {6, 6}, 7), x);
}

TEST(GradCheckTest, DistMatrixOnNearlyCoincidentPairs) {
  // Pairs this close take the exact per-pair path in both directions.
  const at::Tensor x = BallPoints(4, 8, 0.1, 8);
  const at::Tensor y = x + 1e-3 * BallPoints(4, 8, 0.1, 9);
  ExpectGradientsMatch(
      Weighted([&](const at::Tensor& v) { return core::DistMatrix(v, y, 0.1); }, {4, 4}, 10), x,
      1e-5);
  ExpectGradientsMatch(
      Weighted([&](const at::Tensor& v) { return core::DistMatrix(x, v, 0.1); }, {4, 4}, 11), y,
      1e-5);
}

TEST(GradCheckTest, DistMatrixMatchesBroadcastAutogradAtTinySeparations) {
  // Too close for finite differences: compare with autograd through the broadcast formula.
  const at::Tensor x = BallPoints(4, 8, 0.1, 12);
  const at::Tensor y = at::cat({x.slice(0, 0, 2) + 1e-9, BallPoints(2, 8, 0.1, 13)}, 0);
  const ScalarFn fast =
      Weighted([&](const at::Tensor& v) { return core::DistMatrix(v, y, 0.1); }, {4, 4}, 14);
  const ScalarFn slow = Weighted(
      [&](const at::Tensor& v) { return core::DistMatrixBroadcast(v, y, 0.1); }, {4, 4}, 14);
  // At a separation of 1e-9 the gradient keeps only some of double's digits, and which ones
  // depends on the CPU's vector kernels: the two agreed within 1e-7 (relative) on AVX2 machines
  // and differ by up to 6e-7 on an AVX-512 one.
  EXPECT_TRUE(at::allclose(AnalyticGradient(fast, x), AnalyticGradient(slow, x), 1e-5, 1e-7));
}

TEST(GradCheckTest, RiemannianRescaleScalesTheIdentityGradient) {
  const at::Tensor y = BallPoints(5, 4, 0.3, 15);
  const ScalarFn rescaled = Weighted(
      [](const at::Tensor& v) { return core::RiemannianGradientRescale(v, 0.3); }, {5, 4}, 16);
  const at::Tensor factor = (1 - 0.3 * y.pow(2).sum(-1, true)).pow(2) / 4;
  EXPECT_TRUE(at::allclose(AnalyticGradient(rescaled, y), NumericalGradient(rescaled, y) * factor,
                           1e-7, 1e-9));
}

TEST(GradCheckTest, ToPoincareWithoutTheRescale) {
  core::ToPoincareOptions options(0.1);
  options.riemannian(false).clip_r(2.3);
  at::Generator gen = at::detail::createCPUGenerator(17);
  const at::Tensor x = at::randn({6, 5}, gen, at::TensorOptions().dtype(at::kDouble));
  ExpectGradientsMatch(
      Weighted([&](const at::Tensor& v) { return core::ToPoincare(v, options); }, {6, 5}, 18), x);
}

TEST(GradCheckTest, HierTripletLossStraightThroughGradient) {
  // The forward pass reads one-hot choices, so its finite differences vanish; the straight-through
  // gradient is the exact derivative of the same loss with the choices frozen and the softmax
  // added as s(D') - s(D). Finite differences of that surrogate check the fused backward.
  const at::Tensor z = BallPoints(10, 6, 0.1, 19);
  const at::Tensor proxies = BallPoints(12, 6, 0.1, 20);
  const at::Tensor dist = core::DistMatrix(z, proxies, 0.1).detach();
  const at::Tensor sim = core::SampleSimilarity(core::DistMatrix(z, z, 0.1), GroupedLabels(10, 2));
  const at::Tensor triplets = core::SampleTriplets(core::FindReciprocalNeighbours(sim, 4), 6, 21);
  const double tau = 0.1, margin = 0.1;
  const core::HierPart chosen = core::HierTripletLoss(dist, triplets, tau, margin, std::nullopt);
  ASSERT_GT(chosen.active.sum().item<int64_t>(), 0);

  const int64_t p = dist.size(1);
  const at::Tensor hard_ij = at::one_hot(chosen.lca_ij, p).to(at::kDouble);
  const at::Tensor hard_ijk = at::one_hot(chosen.lca_ijk, p).to(at::kDouble);
  auto soft = [&](const at::Tensor& d, bool with_k) {
    const at::Tensor m =
        at::maximum(d.index_select(0, triplets[0]), d.index_select(0, triplets[1]));
    return at::softmax(-(with_k ? at::maximum(d.index_select(0, triplets[2]), m) : m) / tau, 1);
  };
  const at::Tensor soft_ij0 = soft(dist, false), soft_ijk0 = soft(dist, true);
  const ScalarFn surrogate = [&](const at::Tensor& d) {
    const at::Tensor p_ij = hard_ij + soft(d, false) - soft_ij0;
    const at::Tensor p_ijk = hard_ijk + soft(d, true) - soft_ijk0;
    auto to = [&](int row, const at::Tensor& w) {
      return (d.index_select(0, triplets[row]) * w).sum(1);
    };
    const at::Tensor l = at::relu(to(0, p_ij) - to(0, p_ijk) + margin) +
                         at::relu(to(1, p_ij) - to(1, p_ijk) + margin) +
                         at::relu(to(2, p_ijk) - to(2, p_ij) + margin);
    return (l * chosen.active.to(at::kDouble)).mean();
  };
  const ScalarFn fused = [&](const at::Tensor& d) {
    return core::HierTripletLoss(d, triplets, tau, margin, std::nullopt).loss;
  };
  EXPECT_NEAR(fused(dist).item<double>(), surrogate(dist).item<double>(), 1e-12);
  const at::Tensor analytic = AnalyticGradient(fused, dist);
  const at::Tensor numeric = NumericalGradient(surrogate, dist);
  EXPECT_TRUE(at::allclose(analytic, numeric, 1e-6, 1e-8))
      << "max difference " << (analytic - numeric).abs().max().item<double>();
}

}  // namespace
}  // namespace hier::testing
