// Reciprocal top-k triplet mining for HIER: mutual nearest neighbours are positives, everything
// else (the anchor included, as in the reference) negatives; triplets are drawn per anchor.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>

namespace hier::core {

// The candidate structure of one similarity matrix.
struct ReciprocalNeighbours {
  at::Tensor recip;                // [N, N] float32: 1 mutual, 0.5 one-sided, 0 neither; diag -1
  at::Tensor positive;             // [N, N] bool: recip == 1
  at::Tensor negative;             // [N, N] bool: recip < 1 (the anchor itself included)
  at::Tensor anchor_has_triplets;  // [N] bool: more than one positive
};

// Mining similarity of the samples: exp(-distance) + 1 for every same-label pair (the label boost,
// diagonal included). `sample_dist` is [B, B], labels [B].
at::Tensor SampleSimilarity(const at::Tensor& sample_dist, const at::Tensor& labels);
// Mining similarity of the proxies: exp(-distance).
at::Tensor ProxySimilarity(const at::Tensor& proxy_dist);

// Marks row i's `topk` largest entries (itself included; ties go to the lower index), then keeps
// the mutual ones. Needs 1 <= topk <= N.
ReciprocalNeighbours FindReciprocalNeighbours(const at::Tensor& sim, int64_t topk);

// Draws `per_anchor` positives and, independently, `per_anchor` negatives uniformly with
// replacement for every anchor that has triplets. Returns int64 [3, T] rows (anchor, positive,
// negative), anchors ascending; T = 0 when no anchor qualifies. The draws depend only on `key`.
at::Tensor SampleTriplets(const ReciprocalNeighbours& neighbours, int64_t per_anchor, uint64_t key);

}  // namespace hier::core
