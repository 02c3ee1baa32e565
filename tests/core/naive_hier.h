// The HIER triplet part written the way the reference implementation runs it: whole-tensor ops
// over [triplets x proxies] rows, autograd for the gradient. The oracle the fused kernel is tested
// against and the baseline it is benchmarked against.
#pragma once

#include <ATen/core/Tensor.h>

namespace hier::testing {

struct NaiveHierPart {
  at::Tensor loss, lca_ij, lca_ijk, active;
};

// `gumbel_ij` / `gumbel_ijk` ([T, P] Gumbel noise added to the logits) may be undefined: no noise.
NaiveHierPart NaiveHierTripletLoss(const at::Tensor& dist, const at::Tensor& triplets, double tau,
                                   double margin, const at::Tensor& gumbel_ij,
                                   const at::Tensor& gumbel_ijk);

// Gumbel(0, 1) noise drawn with torch's generator, as the reference's gumbel_softmax does.
at::Tensor TorchGumbel(int64_t rows, int64_t cols, at::ScalarType dtype);

}  // namespace hier::testing
