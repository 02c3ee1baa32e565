// Deterministic random inputs shared by the hier_core tests.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>

#include "trainer/core/to_poincare.h"

namespace hier::testing {

// n points on the ball of curvature c (features of norm ~spread mapped by ToPoincare, clip 2.3).
inline at::Tensor BallPoints(int64_t n, int64_t dim, double c, uint64_t seed,
                             at::ScalarType dtype = at::kDouble, double spread = 2.0) {
  at::Generator gen = at::detail::createCPUGenerator(seed);
  const at::Tensor features =
      at::randn({n, dim}, gen, at::TensorOptions().dtype(at::kDouble)) * (spread / std::sqrt(dim));
  core::ToPoincareOptions options(c);
  options.riemannian(false);
  return core::ToPoincare(features, options).to(dtype).detach();
}

// Labels 0, 0, 1, 1, ... : `per_class` consecutive samples per class, as the sampler lays them out.
inline at::Tensor GroupedLabels(int64_t n, int64_t per_class) {
  return at::arange(n, at::kLong).div(per_class, "floor");
}

}  // namespace hier::testing
