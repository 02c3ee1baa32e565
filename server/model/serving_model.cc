#include "server/model/serving_model.h"

#include <utility>

#include "absl/strings/str_cat.h"

namespace hier::server {

ServingModel::ServingModel(std::unique_ptr<ImageEmbedder> embedder)
    : embedder_(std::move(embedder)),
      hierarchy_(ProxyHierarchy::Load(embedder_->description().run_dir)) {}

absl::StatusOr<std::shared_ptr<ServingModel>> ServingModel::Load(
    const std::string& checkpoint_dir, const BatchingOptions& batching,
    EmbeddingBatcher::BatchObserver observer) {
  absl::StatusOr<std::unique_ptr<ImageEmbedder>> embedder = ImageEmbedder::Load(checkpoint_dir);
  if (!embedder.ok()) return embedder.status();
  std::shared_ptr<ServingModel> model(new ServingModel(*std::move(embedder)));
  const ImageEmbedder* loaded = model->embedder_.get();
  model->batcher_ = std::make_unique<EmbeddingBatcher>(
      loaded->input_floats(), loaded->description().dim,
      [loaded](const float* inputs, int64_t count, float* out) {
        return loaded->Forward(inputs, count, out);
      },
      batching, std::move(observer));
  // The batch delay is sized from the model's own passes before the first call.
  if (absl::Status calibrated = model->batcher_->Calibrate(); !calibrated.ok()) {
    return absl::FailedPreconditionError(absl::StrCat(
        checkpoint_dir, ": the model fails a forward pass on zero inputs: ", calibrated.message()));
  }
  return model;
}

absl::StatusOr<std::vector<float>> ServingModel::EmbedImages(
    const std::vector<EncodedImage>& images, int64_t max_pixels,
    std::chrono::steady_clock::time_point deadline) {
  const int64_t input_floats = embedder_->input_floats();
  std::vector<float> inputs(images.size() * input_floats);
  for (size_t i = 0; i < images.size(); ++i) {
    const absl::Status prepared = embedder_->Prepare(*images[i].bytes, images[i].field, max_pixels,
                                                     inputs.data() + i * input_floats);
    if (!prepared.ok()) return prepared;
  }
  return batcher_->Embed(std::move(inputs), static_cast<int64_t>(images.size()), deadline);
}

}  // namespace hier::server
