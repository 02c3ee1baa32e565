// Retrieval metrics beyond Recall@K by Poincaré distance: MAP@R and R-Precision, and, given the
// class hierarchy, how bad the mistakes are (mistake severity, hierarchical distance@k) and
// super-category Recall@K.
#pragma once

#include <cstdint>
#include <vector>

#include "trainer/analysis/class_tree.h"
#include "trainer/core/recall.h"

namespace hier::core {

struct RetrievalMetrics {
  // Per k of ks; equals RecallAtK's wherever no two distances tie (RecallAtK compares them
  // rounded to float32, and breaks ties in no set order).
  std::vector<double> recall;
  double map_at_r = 0;  // MAP@R (Musgrave et al., "A Metric Learning Reality Check", 2020)
  double r_precision = 0;
  int64_t scored_queries = 0;  // queries with R >= 1: the only ones in MAP@R and R-Precision

  // With a LabelHierarchy only (else has_hierarchy is false and the vectors are empty). Heights
  // are LabelHierarchy::LcaHeight (0 for a result of the query's own class).
  bool has_hierarchy = false;
  double mistake_severity = 0;  // mean LCA height of the wrong top-1 results; 0 when none is wrong
  int64_t mistakes = 0;         // queries whose top-1 result has another label
  // Per k: the mean over queries of the mean LCA height of the top-k results ("average
  // hierarchical distance of top-k", Bertinetto et al., CVPR 2020).
  std::vector<double> hierarchical_distance;
  // Per k: the share of queries with a top-k result in their super-category.
  std::vector<double> super_recall;
};

// Ranks, for every query, the gallery by Poincaré distance (DistMatrix, curvature c), ascending,
// with ties going to the earlier gallery position (a stable sort). A gallery item whose id equals
// the query's id is ranked after all others, as RecallAtK does (hier-method.md section 7): with
// queries = gallery it removes the query itself.
//
// R, a query's relevant count, is the number of gallery items with its label, leaving out those
// with its id. MAP@R averages over queries (1/R) sum_{i=1..R} P(i) rel(i), with P(i) the share of
// relevant items among the first i; R-Precision averages the share of relevant items among the
// first R. Queries with R = 0 (nothing to find) are left out of both, but count for the rest.
//
// `hierarchy`, when given, must cover every query and gallery label (0 <= label < num_labels()).
// Every k must be in [1, gallery size]. Queries go in blocks (about 32 MiB of distances each),
// and only the max(largest k, largest R in the block) nearest items of each query are ordered.
RetrievalMetrics EvaluateRetrieval(const RecallQuery& queries, const RecallQuery& gallery,
                                   const std::vector<int64_t>& ks, double c,
                                   const analysis::LabelHierarchy* hierarchy = nullptr);

}  // namespace hier::core
