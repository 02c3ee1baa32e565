#include "trainer/core/hier_loss.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <gtest/gtest.h>
#include <torch/csrc/autograd/autograd.h>

#include "tests/core/naive_hier.h"
#include "tests/core/test_data.h"
#include "trainer/core/fast_math.h"
#include "trainer/core/poincare.h"
#include "trainer/core/triplet_mining.h"

namespace hier::testing {
namespace {

constexpr double kC = 0.1;

// Distance rows of a batch against proxies, and triplets mined from the batch.
struct Problem {
  at::Tensor dist;      // [B, P], a leaf
  at::Tensor triplets;  // [3, T]
};

Problem MakeProblem(int64_t batch, int64_t proxies, int64_t dim, uint64_t seed,
                    at::ScalarType dtype = at::kDouble) {
  const at::Tensor z = BallPoints(batch, dim, kC, seed, dtype);
  const at::Tensor p = BallPoints(proxies, dim, kC, seed + 1, dtype);
  const at::Tensor dist = core::DistMatrix(z, p, kC).detach().requires_grad_(true);
  const at::Tensor sim =
      core::SampleSimilarity(core::DistMatrix(z, z, kC), GroupedLabels(batch, 2));
  return {dist, core::SampleTriplets(core::FindReciprocalNeighbours(sim, 5), 20, seed)};
}

// The Gumbel noise the kernel draws for a stream key, as [T, P] logit offsets.
std::pair<at::Tensor, at::Tensor> KernelNoise(uint64_t key, int64_t count, int64_t proxies) {
  at::Tensor ij = at::empty({count, proxies}, at::kDouble);
  at::Tensor ijk = at::empty({count, proxies}, at::kDouble);
  for (int64_t t = 0; t < count; ++t) {
    const core::TripletNoise noise = core::TripletNoise::For(key, t);
    for (uint32_t q = 0; q < proxies; ++q) {
      ij[t][q] = std::log(static_cast<double>(core::TripletNoise::ExpGumbel(q, noise.ij)));
      ijk[t][q] = std::log(static_cast<double>(core::TripletNoise::ExpGumbel(q, noise.ijk)));
    }
  }
  return {ij, ijk};
}

void ExpectSameAsNaive(const Problem& pb, std::optional<uint64_t> key) {
  const core::HierPart fused = core::HierTripletLoss(pb.dist, pb.triplets, 0.1, 0.1, key);
  const at::Tensor grad_fused = torch::autograd::grad({fused.loss}, {pb.dist})[0];
  at::Tensor g_ij, g_ijk;
  if (key) std::tie(g_ij, g_ijk) = KernelNoise(*key, pb.triplets.size(1), pb.dist.size(1));
  const NaiveHierPart naive = NaiveHierTripletLoss(pb.dist, pb.triplets, 0.1, 0.1, g_ij, g_ijk);
  const at::Tensor grad_naive = torch::autograd::grad({naive.loss}, {pb.dist})[0];
  EXPECT_TRUE(at::equal(fused.lca_ij, naive.lca_ij));
  EXPECT_TRUE(at::equal(fused.lca_ijk, naive.lca_ijk));
  EXPECT_TRUE(at::equal(fused.active, naive.active));
  EXPECT_GT(fused.active.sum().item<int64_t>(), 0);
  EXPECT_NEAR(fused.loss.item<double>(), naive.loss.item<double>(), 1e-12);
  // Noise factors multiply weights by up to 3e7, so the two evaluation orders drift by ~1e-10.
  EXPECT_TRUE(at::allclose(grad_fused, grad_naive, 1e-7, 1e-9))
      << "max difference " << (grad_fused - grad_naive).abs().max().item<double>();
}

TEST(HierTripletLossTest, MatchesWholeTensorImplementationWithoutNoise) {
  ExpectSameAsNaive(MakeProblem(24, 40, 16, 1), std::nullopt);
}

TEST(HierTripletLossTest, MatchesWholeTensorImplementationWithTheSameNoise) {
  ExpectSameAsNaive(MakeProblem(24, 40, 16, 2), uint64_t{77});
}

TEST(HierTripletLossTest, HandlesTiesAndSelfNegatives) {
  // Duplicate rows (the sampler may draw one image twice) tie everywhere in max(d_i, d_j);
  // self-negatives (k == i) tie in max(d_k, m_ij). Both split the gradient as torch does.
  Problem pb = MakeProblem(12, 30, 8, 3);
  at::Tensor dist = pb.dist.detach().clone();
  dist[1].copy_(dist[0]);
  pb.dist = dist.requires_grad_(true);
  pb.triplets = at::tensor({0, 0, 1, 2, 1, 0, 3, 0, 4, 0, 5, 1}, at::kLong).view({3, 4});
  pb.triplets = at::cat({pb.triplets, MakeProblem(12, 30, 8, 3).triplets}, 1);
  ExpectSameAsNaive(pb, std::nullopt);
  ExpectSameAsNaive(pb, uint64_t{5});
}

TEST(HierTripletLossTest, Float32AgreesWithFloat64) {
  const Problem pb = MakeProblem(32, 64, 16, 4);
  const at::Tensor dist32 = pb.dist.detach().to(at::kFloat).requires_grad_(true);
  const core::HierPart r64 = core::HierTripletLoss(pb.dist, pb.triplets, 0.1, 0.1, 9);
  const core::HierPart r32 = core::HierTripletLoss(dist32, pb.triplets, 0.1, 0.1, 9);
  const at::Tensor g64 = torch::autograd::grad({r64.loss}, {pb.dist})[0];
  const at::Tensor g32 = torch::autograd::grad({r32.loss}, {dist32})[0];
  // Near-ties may flip between precisions; nearly all selections must agree.
  EXPECT_GT((r64.lca_ij == r32.lca_ij).to(at::kDouble).mean().item<double>(), 0.99);
  EXPECT_NEAR(r32.loss.item<double>(), r64.loss.item<double>(), 1e-2 * r64.loss.item<double>());
  EXPECT_LT((g32.to(at::kDouble) - g64).abs().sum().item<double>(),
            0.05 * g64.abs().sum().item<double>());
}

TEST(HierTripletLossTest, NoTripletsGiveZeroLossAndGradient) {
  const Problem pb = MakeProblem(8, 10, 4, 5);
  const core::HierPart part =
      core::HierTripletLoss(pb.dist, at::empty({3, 0}, at::kLong), 0.1, 0.1, std::nullopt);
  EXPECT_EQ(part.loss.item<double>(), 0.0);
  EXPECT_EQ(part.lca_ij.numel(), 0);
  const at::Tensor grad = torch::autograd::grad({part.loss}, {pb.dist})[0];
  EXPECT_EQ(grad.abs().sum().item<double>(), 0.0);
}

core::HierLossOptions SmallOptions() {
  core::HierLossOptions options(16);
  options.num_proxies(48).topk(6).c(kC);
  return options;
}

TEST(HierLossTest, SameSeedReproducesLossAndGradientsExactlyAtAnyThreadCount) {
  const at::Tensor z = BallPoints(30, 16, kC, 6);
  const at::Tensor labels = GroupedLabels(30, 2);
  at::manual_seed(0);
  core::HierLoss loss(SmallOptions());
  auto run = [&](uint64_t seed) {
    loss->zero_grad();
    const at::Tensor zz = z.clone().requires_grad_(true);
    const at::Tensor value = loss->forward(zz, labels, seed).loss;
    value.backward();
    return std::make_tuple(value.item<double>(), zz.grad().clone(), loss->proxies.grad().clone());
  };
  const int threads = at::get_num_threads();
  const auto [a, ga, pa] = run(11);
  at::set_num_threads(1);
  const auto [b, gb, pb] = run(11);
  at::set_num_threads(threads);
  const auto [c, gc, pc] = run(12);
  EXPECT_EQ(a, b);
  EXPECT_TRUE(at::equal(ga, gb));
  EXPECT_TRUE(at::equal(pa, pb));
  EXPECT_NE(a, c);
}

TEST(HierLossTest, MinedTripletsComeFromTheReciprocalCandidates) {
  const at::Tensor z = BallPoints(30, 16, kC, 7);
  const at::Tensor labels = GroupedLabels(30, 2);
  core::HierLoss loss(SmallOptions());
  const core::HierTriplets triplets = loss->MineTriplets(z, labels, 3);
  const at::Tensor all = at::cat({z, loss->MappedProxies().detach()}, 0);
  const at::Tensor sim = core::SampleSimilarity(
      core::DistMatrix(all, all, kC).slice(0, 0, 30).slice(1, 0, 30), labels);
  const core::ReciprocalNeighbours nb = core::FindReciprocalNeighbours(sim, 6);
  const at::Tensor t = triplets.sample_proxy;
  ASSERT_EQ(t.size(1), nb.anchor_has_triplets.sum().item<int64_t>() * 50);
  EXPECT_TRUE(nb.anchor_has_triplets.index_select(0, t[0]).all().item<bool>());
  EXPECT_TRUE(nb.positive.index({t[0], t[1]}).all().item<bool>());
  EXPECT_TRUE(nb.negative.index({t[0], t[2]}).all().item<bool>());
  // With two images per class and the label boost, every classmate is a mutual neighbour.
  EXPECT_TRUE(nb.positive.index({at::arange(0, 30, 2), at::arange(1, 30, 2)}).all().item<bool>());
  EXPECT_GT(triplets.proxy_proxy.size(1), 0);
}

TEST(HierLossTest, GradientStepsLowerTheLoss) {
  // Plain gradient descent on the embeddings and proxies with the noise off lowers the loss on
  // fixed triplets: the straight-through gradient points somewhere useful.
  at::manual_seed(1);
  core::HierLossOptions options = SmallOptions();
  options.gumbel_noise(false);
  core::HierLoss loss(options);
  const at::Tensor features = (BallPoints(30, 16, kC, 8) * 3).requires_grad_(true);
  const core::HierTriplets triplets =
      loss->MineTriplets(core::Expmap0(features, kC).detach(), GroupedLabels(30, 2), 1);
  double first = 0, last = 0;
  for (int step = 0; step < 30; ++step) {
    const at::Tensor value =
        loss->ForwardWithTriplets(core::Expmap0(features, kC), triplets, 0).loss;
    if (step == 0) first = value.item<double>();
    last = value.item<double>();
    loss->zero_grad();
    if (features.grad().defined()) features.grad().zero_();
    value.backward();
    at::NoGradGuard no_grad;
    features.sub_(features.grad() * 0.5);
    loss->proxies.sub_(loss->proxies.grad() * 2.0);
  }
  EXPECT_LT(last, 0.7 * first) << "first " << first << " last " << last;
}

}  // namespace
}  // namespace hier::testing
