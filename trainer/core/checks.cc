#include "trainer/core/checks.h"

#include <ATen/ATen.h>

#include <cmath>

namespace hier::core {

void CheckCurvature(const char* fn, double c) {
  TORCH_CHECK(std::isfinite(c) && c > 0, fn, ": curvature c must be finite and > 0, got ", c);
}

void CheckPoints(const char* fn, const char* name, const at::Tensor& t) {
  TORCH_CHECK(t.defined(), fn, ": ", name, " is undefined");
  TORCH_CHECK(at::isFloatingType(t.scalar_type()), fn, ": ", name,
              " must be a floating-point tensor, got ", t.scalar_type());
  TORCH_CHECK(t.dim() >= 1, fn, ": ", name, " must have at least one dimension, got a scalar");
  TORCH_CHECK(at::isfinite(t).all().item<bool>(), fn, ": ", name, " contains NaN or Inf");
}

void CheckMatrix(const char* fn, const char* name, const at::Tensor& t) {
  TORCH_CHECK(t.defined(), fn, ": ", name, " is undefined");
  TORCH_CHECK(t.dim() == 2, fn, ": ", name, " must be a 2-D [N, D] tensor, got shape ", t.sizes());
  CheckPoints(fn, name, t);
}

void CheckLabels(const char* fn, const char* name, const at::Tensor& labels, int64_t expected) {
  TORCH_CHECK(labels.defined(), fn, ": ", name, " is undefined");
  TORCH_CHECK(labels.dim() == 1, fn, ": ", name, " must be a 1-D tensor, got shape ",
              labels.sizes());
  TORCH_CHECK(!at::isFloatingType(labels.scalar_type()) && labels.scalar_type() != at::kBool, fn,
              ": ", name, " must hold integers, got ", labels.scalar_type());
  TORCH_CHECK(labels.size(0) == expected, fn, ": ", name, " has ", labels.size(0),
              " entries but the batch has ", expected);
}

void CheckSameWidth(const char* fn, const char* name_a, const at::Tensor& a, const char* name_b,
                    const at::Tensor& b) {
  TORCH_CHECK(a.size(-1) == b.size(-1), fn, ": ", name_a, " and ", name_b,
              " must have the same dimension, got ", a.size(-1), " and ", b.size(-1));
  TORCH_CHECK(a.scalar_type() == b.scalar_type(), fn, ": ", name_a, " and ", name_b,
              " must have the same dtype, got ", a.scalar_type(), " and ", b.scalar_type());
}

void CheckKs(const char* fn, const std::vector<int64_t>& ks, int64_t gallery_size) {
  TORCH_CHECK(!ks.empty(), fn, ": ks is empty");
  for (int64_t k : ks) {
    TORCH_CHECK(k >= 1 && k <= gallery_size, fn, ": every k must be in [1, ", gallery_size,
                "] (the gallery size), got ", k);
  }
}

}  // namespace hier::core
