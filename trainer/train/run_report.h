// The run directory's readable results: hierarchy.json and the Poincaré-disk picture (from the
// proxies and the test embeddings), the loss and recall curves (from metrics.jsonl), and the
// retrieval metrics and hierarchy-discovery score of a finished run.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "trainer/analysis/hierarchy.h"
#include "trainer/train/run_directory.h"

namespace hier::train {

// Writes hierarchy.json and plots/poincare_disk.svg. `proxies` [P, D] and `embeddings` [N, D] are
// points on the ball of curvature c; `trained_proxies` says whether HIER learned them (false: the
// initial proxies of a run without HIER, kept as the chance reference).
void WriteHierarchyReport(const RunDirectory& run, const at::Tensor& proxies, bool trained_proxies,
                          const at::Tensor& embeddings, const std::vector<int64_t>& labels,
                          const std::vector<std::string>& class_names, double c);

// Redraws plots/loss.svg and plots/recall.svg from metrics.jsonl.
void WriteTrainingCurves(const RunDirectory& run);

struct RunScore {
  std::map<std::string, double> metrics;  // NamedMetrics of the best model on the test split
  std::optional<analysis::DiscoveryScore> discovery;  // with a class tree
  bool trained_proxies = false;                       // as hierarchy.json says
  std::string json;                                   // what `hier-train score` prints
};

// Scores the run in `run_dir`: its best/ model embeds the test split and is evaluated as training
// evaluates (Recall@K, MAP@R, R-Precision). With `groups_file` (a class tree,
// trainer/analysis/class_tree.h) also the hierarchy-aware metrics and the hierarchy-discovery
// score (README) of the hierarchy.json proxies against the tree's top-level groups, written to
// <run_dir>/discovery.json.
RunScore ScoreRun(const std::string& run_dir, const std::string& groups_file);

}  // namespace hier::train
