// The fused per-triplet pass of the HIER loss: LCA selection, hinge terms and their gradient in one
// sweep over each triplet's distance rows, without materialising [triplets x proxies] temporaries.
//
// Matrix convention: `dist` is row-major [num_rows x row_stride]; row r holds the distances from
// node r (a sample or a proxy) to the `num_proxies` hierarchical proxies, then padding up to
// row_stride (a multiple of kHierKernelRowAlign) filled with kHierKernelPad. Triplet t is
// (anchors[t], positives[t], negatives[t]), indices into the rows. Thread-compatible: concurrent
// calls must write disjoint `grad` buffers and disjoint [begin, end) ranges of the outputs.
#pragma once

#include <cstdint>

namespace hier::core {

inline constexpr int64_t kHierKernelRowAlign = 8;
// Larger than any distance (they stay below 13 / sqrt(c)), finite in float and double.
inline constexpr double kHierKernelPad = 1e30;

inline int64_t HierKernelRowStride(int64_t num_proxies) {
  return (num_proxies + kHierKernelRowAlign - 1) / kHierKernelRowAlign * kHierKernelRowAlign;
}

struct HierTripletKernelParams {
  int64_t num_rows = 0;
  int64_t num_proxies = 0;
  int64_t row_stride = 0;    // HierKernelRowStride(num_proxies)
  double tau = 0.1;          // temperature of the LCA softmax (logits are -max-distance / tau)
  double margin = 0.1;       // hinge margin
  bool gumbel_noise = true;  // add Gumbel(0, 1) noise to the logits (training); false: argmax
  uint64_t noise_key = 0;    // key of the counter-based noise stream
  // The gradient added to `grad` is that of (grad_scale * sum of triplet losses) w.r.t. `dist`.
  double grad_scale = 0.0;
};

struct HierTripletOutputs {
  double* loss;      // [T] the triplet's hinge sum (0 when inactive)
  int64_t* lca_ij;   // [T] proxy chosen as the LCA of (anchor, positive)
  int64_t* lca_ijk;  // [T] proxy chosen as the LCA of (anchor, positive, negative)
  bool* active;      // [T] lca_ij != lca_ijk; inactive triplets contribute zero
};

// Processes triplets [begin, end), writing their outputs at [begin, end). `grad` (nullable) is a
// [num_rows x row_stride] accumulator.
void HierTripletKernel(const float* dist, const int64_t* anchors, const int64_t* positives,
                       const int64_t* negatives, int64_t begin, int64_t end,
                       const HierTripletKernelParams& params, const HierTripletOutputs& out,
                       float* grad);
void HierTripletKernel(const double* dist, const int64_t* anchors, const int64_t* positives,
                       const int64_t* negatives, int64_t begin, int64_t end,
                       const HierTripletKernelParams& params, const HierTripletOutputs& out,
                       double* grad);

}  // namespace hier::core
