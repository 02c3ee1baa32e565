#include "tests/core/naive_hier.h"

#include <ATen/ATen.h>

namespace hier::testing {
namespace {

struct Selection {
  at::Tensor weights;  // straight-through one-hot: hard forward, softmax gradient
  at::Tensor index;
};

Selection HardGumbelSoftmax(const at::Tensor& logits) {
  const at::Tensor soft = at::softmax(logits, 1);
  const at::Tensor index = std::get<1>(soft.max(1, /*keepdim=*/true));
  const at::Tensor hard = at::zeros_like(logits).scatter_(1, index, 1.0);
  return {hard - soft.detach() + soft, index.squeeze(1)};
}

}  // namespace

NaiveHierPart NaiveHierTripletLoss(const at::Tensor& dist, const at::Tensor& triplets, double tau,
                                   double margin, const at::Tensor& gumbel_ij,
                                   const at::Tensor& gumbel_ijk) {
  const at::Tensor d_i = dist.index_select(0, triplets[0]);
  const at::Tensor d_j = dist.index_select(0, triplets[1]);
  const at::Tensor d_k = dist.index_select(0, triplets[2]);
  const at::Tensor m_ij = at::maximum(d_i, d_j);
  const at::Tensor m_ijk = at::maximum(d_k, m_ij);
  at::Tensor logits_ij = -m_ij / tau;
  at::Tensor logits_ijk = -m_ijk / tau;
  if (gumbel_ij.defined()) logits_ij = logits_ij + gumbel_ij;
  if (gumbel_ijk.defined()) logits_ijk = logits_ijk + gumbel_ijk;
  const Selection ij = HardGumbelSoftmax(logits_ij);
  const Selection ijk = HardGumbelSoftmax(logits_ijk);
  auto to = [](const at::Tensor& rows, const Selection& s) { return (rows * s.weights).sum(1); };
  const at::Tensor per_triplet = at::relu(to(d_i, ij) - to(d_i, ijk) + margin) +
                                 at::relu(to(d_j, ij) - to(d_j, ijk) + margin) +
                                 at::relu(to(d_k, ijk) - to(d_k, ij) + margin);
  const at::Tensor active = ij.index != ijk.index;
  return {(per_triplet * active.to(dist.scalar_type())).mean(), ij.index, ijk.index, active};
}

at::Tensor TorchGumbel(int64_t rows, int64_t cols, at::ScalarType dtype) {
  return -at::empty({rows, cols}, at::TensorOptions().dtype(dtype)).exponential_().log();
}

}  // namespace hier::testing
