// Evaluation on the held-out split: embedding a source's images with the model in inference mode,
// and Recall@K by hyperbolic distance, queries against a gallery or against themselves
// (hier-method.md section 7).
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "trainer/analysis/class_tree.h"
#include "trainer/core/retrieval_metrics.h"
#include "trainer/data/image_source.h"
#include "trainer/model/embedding_net.h"

namespace hier::train {

// The embeddings of the images that could be decoded, with the items and labels they belong to.
struct EmbeddedImages {
  at::Tensor embeddings;        // [m, emb] points on the ball, float32, CPU
  std::vector<int64_t> items;   // source item of each row
  std::vector<int64_t> labels;  // label of each row
};

// Embeds items [begin, end) of `source`. The network is put in eval mode for the pass and
// returned to the mode it was in.
EmbeddedImages EmbedImages(model::EmbeddingNet& net, const data::ImageSource& source, int64_t begin,
                           int64_t end, const c10::Device& device);

// Recall@K for each K, MAP@R, R-Precision and, with a label hierarchy, the hierarchy-aware
// metrics of `queries` against `gallery`, or against the queries themselves (each excluding
// itself) when `gallery` is null. Ks are clamped to the gallery's size.
core::RetrievalMetrics EvaluateRetrieval(const EmbeddedImages& queries,
                                         const EmbeddedImages* gallery,
                                         const std::vector<int64_t>& ks, double c,
                                         const analysis::LabelHierarchy* hierarchy);

// The metrics by name, as metrics.jsonl and status.json record them: "R@K", "MAP@R",
// "R-Precision" and, with a hierarchy, "mistake_severity", "HD@K" (mean LCA height of the top K)
// and "super_R@K" (a top-K result in the query's super-category).
std::map<std::string, double> NamedMetrics(const core::RetrievalMetrics& metrics,
                                           const std::vector<int64_t>& ks);

// One line of them for people: "R@1 0.8123 R@2 ... MAP@R 0.4012 R-Precision 0.5012 ...".
std::string FormatMetrics(const std::map<std::string, double>& named);

}  // namespace hier::train
