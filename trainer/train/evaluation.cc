#include "trainer/train/evaluation.h"

#include <ATen/ATen.h>
#include <torch/utils.h>

#include <algorithm>
#include <numeric>

#include "trainer/core/recall.h"

namespace hier::train {

at::Tensor EmbedImageSet(model::EmbeddingNet& net, const data::ImageSet& set,
                         const data::Preprocessing& preprocessing, const c10::Device& device,
                         int64_t batch_size) {
  const bool was_training = net->is_training();
  net->eval();
  torch::NoGradGuard no_grad;
  std::vector<at::Tensor> parts;
  std::vector<int64_t> indices;
  for (int64_t start = 0; start < set.count; start += batch_size) {
    indices.resize(std::min(batch_size, set.count - start));
    std::iota(indices.begin(), indices.end(), start);
    const at::Tensor images = data::ToInputTensor(set, indices, preprocessing, nullptr, 0);
    parts.push_back(net->forward(images.to(device)).to(at::kCPU, at::kFloat));
  }
  net->train(was_training);
  return at::cat(parts);
}

std::vector<double> SelfRecall(const at::Tensor& embeddings, const std::vector<int64_t>& labels,
                               const std::vector<int64_t>& ks, double c) {
  const int64_t n = embeddings.size(0);
  core::RecallQuery set{embeddings, at::tensor(labels), at::arange(n)};
  std::vector<int64_t> clamped;
  for (int64_t k : ks) clamped.push_back(std::min(k, n - 1));
  return core::RecallAtK(set, set, clamped, c);
}

}  // namespace hier::train
