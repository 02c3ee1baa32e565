// Evaluation on the held-out split: embedding a source's images with the model in inference mode,
// and Recall@K by hyperbolic distance, queries against a gallery or against themselves
// (hier-method.md section 7).
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include <cstdint>
#include <vector>

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
EmbeddedImages EmbedImages(model::EmbeddingNet& net, const data::ImageSource& source,
                           int64_t begin, int64_t end, const c10::Device& device);

// Recall@K for each K of `queries` against `gallery`, or against the queries themselves (each
// excluding itself) when `gallery` is null. Ks are clamped to the gallery's size.
std::vector<double> EvaluateRecall(const EmbeddedImages& queries, const EmbeddedImages* gallery,
                                   const std::vector<int64_t>& ks, double c);

}  // namespace hier::train
