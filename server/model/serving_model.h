// The model that serves embedding calls — a loaded checkpoint behind a dynamic batcher — with its
// run's proxy tree.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "server/model/embedding_batcher.h"
#include "server/model/image_embedder.h"
#include "server/model/proxy_hierarchy.h"

namespace hier::server {

// One image to embed and the request field it came from (named in errors).
struct EncodedImage {
  const std::string* bytes = nullptr;
  std::string field;  // e.g. "images[3]", "items[0].image"
};

class ServingModel {
 public:
  // Loads the checkpoint at `checkpoint_dir` and starts its batcher.
  static absl::StatusOr<std::shared_ptr<ServingModel>> Load(
      const std::string& checkpoint_dir, const BatchingOptions& batching,
      EmbeddingBatcher::BatchObserver observer);

  const ModelDescription& description() const { return embedder_->description(); }
  // The run's proxy tree, or why there is none (NotFound before the run's first evaluation).
  const absl::StatusOr<std::shared_ptr<const ProxyHierarchy>>& hierarchy() const {
    return hierarchy_;
  }

  // Decodes and prepares every image in the calling thread, then embeds them in shared batches:
  // images.size() * dim floats, or the first image's error (InvalidArgument naming its field).
  absl::StatusOr<std::vector<float>> EmbedImages(const std::vector<EncodedImage>& images,
                                                 int64_t max_pixels,
                                                 std::chrono::steady_clock::time_point deadline);

 private:
  explicit ServingModel(std::unique_ptr<ImageEmbedder> embedder);

  std::unique_ptr<ImageEmbedder> embedder_;
  absl::StatusOr<std::shared_ptr<const ProxyHierarchy>> hierarchy_;
  std::unique_ptr<EmbeddingBatcher> batcher_;
};

}  // namespace hier::server
