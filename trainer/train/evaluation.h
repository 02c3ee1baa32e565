// Evaluation on a held-out split: embedding every image with the model in inference mode and
// Recall@K by hyperbolic distance with queries = gallery (hier-method.md section 7).
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include <cstdint>
#include <vector>

#include "trainer/data/image_set.h"
#include "trainer/data/preprocess.h"
#include "trainer/model/embedding_net.h"

namespace hier::train {

// Points on the ball [N, emb] (float32, CPU) for every image of `set`, in order. The network is
// put in eval mode for the pass and returned to the mode it was in.
at::Tensor EmbedImageSet(model::EmbeddingNet& net, const data::ImageSet& set,
                         const data::Preprocessing& preprocessing, const c10::Device& device,
                         int64_t batch_size = 1000);

// Recall@K for each K (clamped to the set size minus one) of `embeddings` against themselves.
std::vector<double> SelfRecall(const at::Tensor& embeddings, const std::vector<int64_t>& labels,
                               const std::vector<int64_t>& ks, double c);

}  // namespace hier::train
