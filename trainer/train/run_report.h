// The run directory's readable results: hierarchy.json and the Poincaré-disk picture (from the
// proxies and the test embeddings), the loss and recall curves (from metrics.jsonl), and the
// hierarchy-discovery score of a finished run.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
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

struct RunDiscovery {
  analysis::DiscoveryScore score;
  bool trained_proxies = false;  // as hierarchy.json says
  std::string json;              // what discovery.json holds
};

// The hierarchy-discovery score (README) of the run in `run_dir`: its best/ model embeds the test
// split, hierarchy.json supplies the proxies, `groups_file` the super-categories
// ({"group name": ["class name", ...], ...}). Also written to <run_dir>/discovery.json.
RunDiscovery ScoreRun(const std::string& run_dir, const std::string& groups_file);

}  // namespace hier::train
