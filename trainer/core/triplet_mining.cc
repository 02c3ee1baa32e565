#include "trainer/core/triplet_mining.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <numeric>
#include <vector>

#include "trainer/core/checks.h"
#include "trainer/core/fast_math.h"

namespace hier::core {

at::Tensor SampleSimilarity(const at::Tensor& sample_dist, const at::Tensor& labels) {
  CheckMatrix("sample_similarity", "sample_dist", sample_dist);
  CheckLabels("sample_similarity", "labels", labels, sample_dist.size(0));
  const at::Tensor same = labels.unsqueeze(0) == labels.unsqueeze(1);
  return at::exp(-sample_dist) + same.to(sample_dist.scalar_type());
}

at::Tensor ProxySimilarity(const at::Tensor& proxy_dist) {
  CheckMatrix("proxy_similarity", "proxy_dist", proxy_dist);
  return at::exp(-proxy_dist);
}

ReciprocalNeighbours FindReciprocalNeighbours(const at::Tensor& sim, int64_t topk) {
  CheckMatrix("reciprocal_neighbours", "sim", sim);
  const int64_t n = sim.size(0);
  TORCH_CHECK(sim.size(1) == n, "reciprocal_neighbours: sim must be square, got ", sim.sizes());
  TORCH_CHECK(topk >= 1 && topk <= n, "reciprocal_neighbours: topk must be in [1, ", n,
              "] (the number of nodes), got ", topk);
  const at::Tensor s = sim.detach().to(at::kCPU, at::kDouble).contiguous();
  const double* sp = s.data_ptr<double>();
  at::Tensor in_topk = at::zeros({n, n}, at::kFloat);
  float* tp = in_topk.data_ptr<float>();
  at::parallel_for(0, n, 8, [&](int64_t begin, int64_t end) {
    std::vector<int64_t> order(n);
    for (int64_t i = begin; i < end; ++i) {
      const double* row = sp + i * n;
      std::iota(order.begin(), order.end(), 0);
      std::nth_element(
          order.begin(), order.begin() + (topk - 1), order.end(),
          [row](int64_t a, int64_t b) { return row[a] > row[b] || (row[a] == row[b] && a < b); });
      for (int64_t r = 0; r < topk; ++r) tp[i * n + order[r]] = 1.0f;
    }
  });
  ReciprocalNeighbours out;
  out.recip = (in_topk + in_topk.t()) / 2;
  out.recip.fill_diagonal_(-1);
  out.positive = out.recip == 1;
  out.negative = out.recip < 1;
  out.anchor_has_triplets = out.positive.sum(1) > 1;
  return out;
}

at::Tensor SampleTriplets(const ReciprocalNeighbours& neighbours, int64_t per_anchor,
                          uint64_t key) {
  TORCH_CHECK(per_anchor >= 1, "sample_triplets: triplets_per_anchor must be >= 1, got ",
              per_anchor);
  const at::Tensor positive = neighbours.positive.contiguous();
  const at::Tensor negative = neighbours.negative.contiguous();
  const at::Tensor valid = neighbours.anchor_has_triplets.contiguous();
  const int64_t n = positive.size(0);
  const bool* pp = positive.data_ptr<bool>();
  const bool* np = negative.data_ptr<bool>();
  const bool* vp = valid.data_ptr<bool>();
  std::vector<int64_t> anchors;
  for (int64_t i = 0; i < n; ++i) {
    if (vp[i]) anchors.push_back(i);
  }
  const int64_t count = static_cast<int64_t>(anchors.size()) * per_anchor;
  at::Tensor triplets = at::empty({3, count}, at::kLong);
  int64_t* out = triplets.data_ptr<int64_t>();
  const CounterRng rng{key};
  at::parallel_for(0, static_cast<int64_t>(anchors.size()), 16, [&](int64_t begin, int64_t end) {
    std::vector<int64_t> pos, neg;
    for (int64_t r = begin; r < end; ++r) {
      const int64_t a = anchors[r];
      pos.clear();
      neg.clear();
      for (int64_t b = 0; b < n; ++b) {
        if (pp[a * n + b]) pos.push_back(b);
        if (np[a * n + b]) neg.push_back(b);
      }
      // Every draw has its own counter: (anchor, slot, positive-or-negative).
      const uint32_t base = static_cast<uint32_t>(a * 2 * per_anchor);
      for (int64_t t = 0; t < per_anchor; ++t) {
        const int64_t slot = r * per_anchor + t;
        const uint32_t pick_pos = rng.Bits(base + static_cast<uint32_t>(t));
        const uint32_t pick_neg = rng.Bits(base + static_cast<uint32_t>(per_anchor + t));
        out[slot] = a;
        out[count + slot] = pos[pick_pos % pos.size()];
        out[2 * count + slot] = neg[pick_neg % neg.size()];
      }
    }
  });
  return triplets;
}

}  // namespace hier::core
