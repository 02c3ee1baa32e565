// Argument checks shared by the hier_core entry points; each throws c10::Error (TORCH_CHECK) with
// a message naming the function, the argument and the offending value.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <vector>

namespace hier::core {

// c must be finite and > 0.
void CheckCurvature(const char* fn, double c);
// A floating-point tensor with at least one dimension, free of NaN and Inf.
void CheckPoints(const char* fn, const char* name, const at::Tensor& t);
// As CheckPoints, and exactly two dimensions [N, D].
void CheckMatrix(const char* fn, const char* name, const at::Tensor& t);
// An integer vector with `expected` entries (the batch size of the matching embeddings).
void CheckLabels(const char* fn, const char* name, const at::Tensor& labels, int64_t expected);
// `ks` is not empty and every k is in [1, gallery_size] (a Recall@K list).
void CheckKs(const char* fn, const std::vector<int64_t>& ks, int64_t gallery_size);
// Both tensors have the same last dimension and dtype.
void CheckSameWidth(const char* fn, const char* name_a, const at::Tensor& a, const char* name_b,
                    const at::Tensor& b);

}  // namespace hier::core
