#include "trainer/core/retrieval_metrics.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <limits>
#include <numeric>
#include <unordered_map>
#include <utility>

#include "trainer/core/checks.h"
#include "trainer/core/poincare.h"

namespace hier::core {
namespace {

constexpr char kFn[] = "evaluate_retrieval";

std::vector<int64_t> ToVector(const at::Tensor& t) {
  const at::Tensor values = t.to(at::kCPU, at::kLong).contiguous();
  const int64_t* data = values.data_ptr<int64_t>();
  return std::vector<int64_t>(data, data + values.numel());
}

// A set's labels and ids on the host, once its tensors have been checked.
struct LabelledSet {
  std::vector<int64_t> labels;
  std::vector<int64_t> ids;
};

LabelledSet CheckedSet(const char* name, const RecallQuery& set) {
  CheckMatrix(kFn, name, set.embeddings);
  CheckLabels(kFn, name, set.labels, set.embeddings.size(0));
  CheckLabels(kFn, name, set.ids, set.embeddings.size(0));
  return {ToVector(set.labels), ToVector(set.ids)};
}

void CheckCovered(const char* name, const std::vector<int64_t>& labels,
                  const analysis::LabelHierarchy& hierarchy) {
  for (int64_t label : labels) {
    TORCH_CHECK(label >= 0 && label < hierarchy.num_labels(), kFn, ": ", name, " label ", label,
                " is outside the hierarchy's labels [0, ", hierarchy.num_labels(), ")");
  }
}

// What a query needs to know about the gallery besides distances.
struct GalleryIndex {
  explicit GalleryIndex(LabelledSet set) : labels(std::move(set.labels)) {
    for (int64_t i = 0; i < static_cast<int64_t>(labels.size()); ++i) {
      ++label_count[labels[i]];
      positions_of_id[set.ids[i]].push_back(i);
    }
  }

  // R: the items with this label, leaving out those with this id.
  int64_t RelevantCount(int64_t label, int64_t id) const {
    const auto count = label_count.find(label);
    if (count == label_count.end()) return 0;
    int64_t relevant = count->second;
    for (int64_t position : PositionsOf(id)) relevant -= labels[position] == label;
    return relevant;
  }

  const std::vector<int64_t>& PositionsOf(int64_t id) const {
    static const std::vector<int64_t> kNone;
    const auto it = positions_of_id.find(id);
    return it == positions_of_id.end() ? kNone : it->second;
  }

  std::vector<int64_t> labels;
  std::unordered_map<int64_t, int64_t> label_count;
  std::unordered_map<int64_t, std::vector<int64_t>> positions_of_id;
};

// Labels of the n nearest gallery items of each of `rows` rows of `dist` (row-major, `num_gallery`
// wide), nearest first, ties by gallery position: [rows * n]. Rows are ranked in parallel.
std::vector<int64_t> RankedLabels(const double* dist, int64_t rows, int64_t num_gallery, int64_t n,
                                  const std::vector<int64_t>& gallery_labels) {
  std::vector<int64_t> ranked(rows * n);
  at::parallel_for(0, rows, 1, [&](int64_t begin, int64_t end) {
    std::vector<int64_t> order(num_gallery);
    for (int64_t r = begin; r < end; ++r) {
      const double* d = dist + r * num_gallery;
      const auto nearer = [d](int64_t a, int64_t b) {
        return d[a] < d[b] || (d[a] == d[b] && a < b);
      };
      std::iota(order.begin(), order.end(), 0);
      std::nth_element(order.begin(), order.begin() + (n - 1), order.end(), nearer);
      std::sort(order.begin(), order.begin() + n, nearer);
      for (int64_t i = 0; i < n; ++i) ranked[r * n + i] = gallery_labels[order[i]];
    }
  });
  return ranked;
}

// Adds 1 to hits[j] for every ks[j] beyond `first`, the rank (from 0) of the first hit.
void CountHits(int64_t first, const std::vector<int64_t>& ks, std::vector<int64_t>& hits) {
  for (size_t j = 0; j < ks.size(); ++j) hits[j] += first < ks[j];
}

// Running totals over the queries, turned into RetrievalMetrics at the end.
class Totals {
 public:
  Totals(const std::vector<int64_t>& ks, const analysis::LabelHierarchy* hierarchy)
      : ks_(ks),
        max_k_(*std::max_element(ks.begin(), ks.end())),
        hierarchy_(hierarchy),
        recall_hits_(ks.size(), 0),
        hierarchical_distance_(ks.size(), 0.0),
        super_hits_(ks.size(), 0) {}

  // One query: the labels of its n nearest gallery items (n >= max(ks), n >= relevant), nearest
  // first, its label and its R.
  void Add(const int64_t* ranked, int64_t n, int64_t label, int64_t relevant) {
    CountHits(std::find(ranked, ranked + n, label) - ranked, ks_, recall_hits_);
    if (relevant > 0) AddPrecision(ranked, label, relevant);
    if (hierarchy_ != nullptr) AddHierarchy(ranked, label);
  }

  RetrievalMetrics Finish(int64_t num_queries) const {
    const auto mean = [](double sum, int64_t count) { return count > 0 ? sum / count : 0.0; };
    RetrievalMetrics metrics;
    for (int64_t hits : recall_hits_) metrics.recall.push_back(mean(hits, num_queries));
    metrics.map_at_r = mean(average_precision_, scored_);
    metrics.r_precision = mean(r_precision_, scored_);
    metrics.scored_queries = scored_;
    if (hierarchy_ == nullptr) return metrics;
    metrics.has_hierarchy = true;
    metrics.mistake_severity = mean(severity_, mistakes_);
    metrics.mistakes = mistakes_;
    for (size_t j = 0; j < ks_.size(); ++j) {
      metrics.hierarchical_distance.push_back(mean(hierarchical_distance_[j], num_queries));
      metrics.super_recall.push_back(mean(super_hits_[j], num_queries));
    }
    return metrics;
  }

 private:
  void AddPrecision(const int64_t* ranked, int64_t label, int64_t relevant) {
    int64_t hits = 0;
    double precision_sum = 0.0;
    for (int64_t i = 0; i < relevant; ++i) {
      if (ranked[i] != label) continue;
      ++hits;
      precision_sum += static_cast<double>(hits) / static_cast<double>(i + 1);
    }
    average_precision_ += precision_sum / static_cast<double>(relevant);
    r_precision_ += static_cast<double>(hits) / static_cast<double>(relevant);
    ++scored_;
  }

  void AddHierarchy(const int64_t* ranked, int64_t label) {
    if (ranked[0] != label) {
      ++mistakes_;
      severity_ += static_cast<double>(hierarchy_->LcaHeight(label, ranked[0]));
    }
    const int64_t super = hierarchy_->SuperCategory(label);
    int64_t first_super = max_k_;
    height_prefix_.assign(max_k_ + 1, 0.0);
    for (int64_t i = 0; i < max_k_; ++i) {
      height_prefix_[i + 1] = height_prefix_[i] + hierarchy_->LcaHeight(label, ranked[i]);
      if (first_super == max_k_ && hierarchy_->SuperCategory(ranked[i]) == super) first_super = i;
    }
    CountHits(first_super, ks_, super_hits_);
    for (size_t j = 0; j < ks_.size(); ++j) {
      hierarchical_distance_[j] += height_prefix_[ks_[j]] / static_cast<double>(ks_[j]);
    }
  }

  const std::vector<int64_t>& ks_;
  const int64_t max_k_;
  const analysis::LabelHierarchy* hierarchy_;  // may be null
  std::vector<int64_t> recall_hits_;
  double average_precision_ = 0.0;
  double r_precision_ = 0.0;
  int64_t scored_ = 0;
  double severity_ = 0.0;
  int64_t mistakes_ = 0;
  std::vector<double> hierarchical_distance_;  // sums of the per-query means
  std::vector<int64_t> super_hits_;
  std::vector<double> height_prefix_;  // scratch: sums of the first i heights
};

}  // namespace

RetrievalMetrics EvaluateRetrieval(const RecallQuery& queries, const RecallQuery& gallery,
                                   const std::vector<int64_t>& ks, double c,
                                   const analysis::LabelHierarchy* hierarchy) {
  CheckCurvature(kFn, c);
  const LabelledSet query_set = CheckedSet("queries", queries);
  LabelledSet gallery_set = CheckedSet("gallery", gallery);
  CheckSameWidth(kFn, "queries", queries.embeddings, "gallery", gallery.embeddings);
  const int64_t num_queries = queries.embeddings.size(0);
  const int64_t num_gallery = gallery.embeddings.size(0);
  TORCH_CHECK(num_queries > 0, kFn, ": no queries");
  CheckKs(kFn, ks, num_gallery);
  if (hierarchy != nullptr) {
    CheckCovered("queries", query_set.labels, *hierarchy);
    CheckCovered("gallery", gallery_set.labels, *hierarchy);
  }
  at::NoGradGuard no_grad;
  const GalleryIndex index(std::move(gallery_set));
  const int64_t max_k = *std::max_element(ks.begin(), ks.end());
  Totals totals(ks, hierarchy);
  const int64_t block = QueryBlockRows(num_gallery);
  for (int64_t start = 0; start < num_queries; start += block) {
    const int64_t len = std::min(block, num_queries - start);
    const at::Tensor dist =
        DistMatrix(queries.embeddings.narrow(0, start, len), gallery.embeddings, c)
            .to(at::kCPU, at::kDouble)
            .contiguous();
    double* d = dist.data_ptr<double>();
    std::vector<int64_t> relevant(len);
    int64_t n = max_k;
    for (int64_t r = 0; r < len; ++r) {
      const int64_t id = query_set.ids[start + r];
      for (int64_t position : index.PositionsOf(id)) {
        d[r * num_gallery + position] = std::numeric_limits<double>::infinity();
      }
      relevant[r] = index.RelevantCount(query_set.labels[start + r], id);
      n = std::max(n, relevant[r]);
    }
    const std::vector<int64_t> ranked = RankedLabels(d, len, num_gallery, n, index.labels);
    for (int64_t r = 0; r < len; ++r) {
      totals.Add(ranked.data() + r * n, n, query_set.labels[start + r], relevant[r]);
    }
  }
  return totals.Finish(num_queries);
}

}  // namespace hier::core
