#include "trainer/core/recall.h"

#include <ATen/ATen.h>

#include <algorithm>

#include "trainer/core/checks.h"
#include "trainer/core/poincare.h"

namespace hier::core {
namespace {

void CheckSet(const char* name, const RecallQuery& set) {
  CheckMatrix("recall_at_k", name, set.embeddings);
  CheckLabels("recall_at_k", name, set.labels, set.embeddings.size(0));
  CheckLabels("recall_at_k", name, set.ids, set.embeddings.size(0));
}

}  // namespace

int64_t QueryBlockRows(int64_t gallery_size) {
  return std::max<int64_t>(1, (int64_t{1} << 22) / std::max<int64_t>(1, gallery_size));
}

std::vector<double> RecallAtK(const RecallQuery& queries, const RecallQuery& gallery,
                              const std::vector<int64_t>& ks, double c) {
  CheckCurvature("recall_at_k", c);
  CheckSet("queries", queries);
  CheckSet("gallery", gallery);
  CheckSameWidth("recall_at_k", "queries", queries.embeddings, "gallery", gallery.embeddings);
  const int64_t num_gallery = gallery.embeddings.size(0);
  const int64_t num_queries = queries.embeddings.size(0);
  CheckKs("recall_at_k", ks, num_gallery);
  TORCH_CHECK(num_queries > 0, "recall_at_k: no queries");
  const int64_t max_k = *std::max_element(ks.begin(), ks.end());
  at::NoGradGuard no_grad;
  std::vector<int64_t> hits(ks.size(), 0);
  const at::Tensor gallery_labels = gallery.labels.to(at::kLong);
  const at::Tensor gallery_ids = gallery.ids.to(at::kLong);
  const int64_t block = QueryBlockRows(num_gallery);
  for (int64_t start = 0; start < num_queries; start += block) {
    const int64_t len = std::min(block, num_queries - start);
    const at::Tensor q = queries.embeddings.narrow(0, start, len);
    at::Tensor sim = (-DistMatrix(q, gallery.embeddings, c)).to(at::kFloat);
    const at::Tensor q_ids = queries.ids.narrow(0, start, len).to(at::kLong).unsqueeze(1);
    sim.masked_fill_(q_ids == gallery_ids.unsqueeze(0), -1e4);
    const at::Tensor nearest = std::get<1>(sim.topk(max_k, 1));  // [len, max_k]
    const at::Tensor q_labels = queries.labels.narrow(0, start, len).to(at::kLong).unsqueeze(1);
    const at::Tensor match =
        gallery_labels.index_select(0, nearest.flatten()).view_as(nearest) == q_labels;
    for (size_t r = 0; r < ks.size(); ++r) {
      hits[r] += match.narrow(1, 0, ks[r]).any(1).sum().item<int64_t>();
    }
  }
  std::vector<double> recall(ks.size());
  for (size_t r = 0; r < ks.size(); ++r) {
    recall[r] = static_cast<double>(hits[r]) / static_cast<double>(num_queries);
  }
  return recall;
}

}  // namespace hier::core
