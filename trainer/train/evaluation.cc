#include "trainer/train/evaluation.h"

#include <ATen/ATen.h>
#include <c10/util/Exception.h>
#include <torch/utils.h>

#include <algorithm>
#include <cstdio>
#include <numeric>
#include <utility>

#include "trainer/core/recall.h"

namespace hier::train {
namespace {

// About 16 MB of input floats per forward pass: 1000 images at 28x28, 27 at 3x224x224.
int64_t EvalBatchSize(const at::IntArrayRef& image_shape) {
  const int64_t floats = c10::multiply_integers(image_shape);
  return std::clamp<int64_t>((int64_t{1} << 22) / std::max<int64_t>(floats, 1), 16, 1000);
}

core::RecallQuery AsRecallQuery(const EmbeddedImages& images, int64_t id_offset) {
  return {images.embeddings, at::tensor(images.labels, at::kLong),
          at::tensor(images.items, at::kLong) + id_offset};
}

}  // namespace

EmbeddedImages EmbedImages(model::EmbeddingNet& net, const data::ImageSource& source, int64_t begin,
                           int64_t end, const c10::Device& device) {
  TORCH_CHECK(begin >= 0 && begin <= end && end <= source.size(), "evaluation: items [", begin,
              ", ", end, ") are outside the source of ", source.size());
  const bool was_training = net->is_training();
  net->eval();
  torch::NoGradGuard no_grad;
  EmbeddedImages out;
  std::vector<at::Tensor> parts;
  int64_t batch_size = 16;  // until the first batch shows how large an image is
  for (int64_t start = begin; start < end;) {
    std::vector<int64_t> indices(std::min(batch_size, end - start));
    std::iota(indices.begin(), indices.end(), start);
    std::vector<bool> decoded;
    at::Tensor images = source.EvalInputs(indices, &decoded);
    if (start == begin) batch_size = EvalBatchSize(images.sizes().slice(1));
    start += static_cast<int64_t>(indices.size());
    std::vector<int64_t> rows;
    for (size_t i = 0; i < indices.size(); ++i) {
      if (!decoded[i]) continue;
      rows.push_back(static_cast<int64_t>(i));
      out.items.push_back(indices[i]);
      out.labels.push_back(source.labels()[indices[i]]);
    }
    if (rows.size() < indices.size()) images = images.index_select(0, at::tensor(rows, at::kLong));
    if (!rows.empty()) parts.push_back(net->forward(images.to(device)).to(at::kCPU, at::kFloat));
  }
  net->train(was_training);
  out.embeddings = parts.empty() ? at::empty({0, net->options.emb()}) : at::cat(parts);
  return out;
}

core::RetrievalMetrics EvaluateRetrieval(const EmbeddedImages& queries,
                                         const EmbeddedImages* gallery,
                                         const std::vector<int64_t>& ks, double c,
                                         const analysis::LabelHierarchy* hierarchy) {
  const EmbeddedImages& against = gallery != nullptr ? *gallery : queries;
  // Distinct ids on the two sides, so only a query's own row (queries = gallery) is excluded;
  // the reference's In-Shop evaluation also drops one unrelated gallery image per query.
  const int64_t id_offset = gallery != nullptr && !queries.items.empty()
                                ? *std::max_element(queries.items.begin(), queries.items.end()) + 1
                                : 0;
  const int64_t usable = against.embeddings.size(0) - (gallery != nullptr ? 0 : 1);
  TORCH_CHECK(usable >= 1 && queries.embeddings.size(0) >= 1,
              "evaluation: too few decodable images (", queries.embeddings.size(0), " queries, ",
              against.embeddings.size(0), " in the gallery)");
  std::vector<int64_t> clamped;
  for (int64_t k : ks) clamped.push_back(std::min(k, usable));
  return core::EvaluateRetrieval(AsRecallQuery(queries, 0), AsRecallQuery(against, id_offset),
                                 clamped, c, hierarchy);
}

std::map<std::string, double> NamedMetrics(const core::RetrievalMetrics& metrics,
                                           const std::vector<int64_t>& ks) {
  std::map<std::string, double> named;
  for (size_t i = 0; i < ks.size(); ++i) {
    const std::string k = std::to_string(ks[i]);
    named["R@" + k] = metrics.recall[i];
    if (metrics.has_hierarchy) {
      named["HD@" + k] = metrics.hierarchical_distance[i];
      named["super_R@" + k] = metrics.super_recall[i];
    }
  }
  named["MAP@R"] = metrics.map_at_r;
  named["R-Precision"] = metrics.r_precision;
  if (metrics.has_hierarchy) named["mistake_severity"] = metrics.mistake_severity;
  return named;
}

std::string FormatMetrics(const std::map<std::string, double>& named) {
  std::string text;
  // Recall first, in K order, then the rest by name.
  std::vector<std::pair<int64_t, std::string>> recalls;
  for (const auto& [name, value] : named) {
    if (name.rfind("R@", 0) == 0) recalls.emplace_back(std::stoll(name.substr(2)), name);
  }
  std::sort(recalls.begin(), recalls.end());
  auto add = [&](const std::string& name) {
    char value[64];
    std::snprintf(value, sizeof(value), "%s%s %.4f", text.empty() ? "" : " ", name.c_str(),
                  named.at(name));
    text += value;
  };
  for (const auto& recall : recalls) add(recall.second);
  for (const auto& [name, value] : named) {
    if (name.rfind("R@", 0) != 0) add(name);
  }
  return text;
}

}  // namespace hier::train
