#include "server/model/image_embedder.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>
#include <c10/util/Exception.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <stdexcept>
#include <utility>

#include "absl/strings/str_cat.h"
#include "server/model/image_header.h"
#include "trainer/data/image_transform.h"
#include "trainer/data/preprocess.h"
#include "trainer/train/checkpoint.h"
#include "trainer/train/train_config.h"

namespace hier::server {
namespace fs = std::filesystem;

struct ImageEmbedder::Model {
  train::InferenceModel inference;
  ModelDescription description;
  data::EvalTransform transform;
  data::Normalisation normalisation;
  std::mutex forward_mutex;  // one forward pass at a time (LibTorch parallelises inside it)
};

namespace {

constexpr char kManifest[] = "manifest.json";

// "<run>/<checkpoint path in the run>": the run is the folder above best/ or checkpoints/<step>/.
std::pair<std::string, std::string> VersionAndRunDir(const fs::path& checkpoint) {
  const fs::path parent = checkpoint.parent_path();
  const bool in_checkpoints = parent.filename() == "checkpoints";
  const fs::path run = in_checkpoints ? parent.parent_path() : parent;
  const std::string inside = in_checkpoints
                                 ? absl::StrCat("checkpoints/", checkpoint.filename().string())
                                 : checkpoint.filename().string();
  return {absl::StrCat(run.filename().string(), "/", inside), run.string()};
}

ModelDescription Describe(const fs::path& checkpoint, const train::CheckpointInfo& info) {
  ModelDescription description;
  std::tie(description.version, description.run_dir) = VersionAndRunDir(checkpoint);
  description.checkpoint_dir = checkpoint.string();
  description.architecture = info.architecture.architecture();
  description.dim = info.architecture.emb();
  description.c = info.architecture.c();
  description.class_names = info.class_names;
  description.best_recall = info.position.best_recall;
  description.channels = info.preprocessing.channels;
  description.input_size = info.preprocessing.crop;
  train::TrainConfig config;
  try {
    train::ApplyJson(info.config_json, config, "manifest.json");
    description.recall_k = train::RecallKs(config);
  } catch (const std::exception&) {
    // A manifest whose configuration this build does not read still serves; its recall is unnamed.
  }
  return description;
}

}  // namespace

absl::StatusOr<std::string> ResolveCheckpoint(const std::string& path, const std::string& field) {
  std::error_code error;
  if (fs::exists(fs::path(path) / kManifest, error)) return fs::absolute(path).string();
  if (fs::exists(fs::path(path) / "best" / kManifest, error)) {
    return fs::absolute(fs::path(path) / "best").string();
  }
  return absl::NotFoundError(absl::StrCat(field, ": ", path,
                                          " is neither a checkpoint (manifest.json) nor a run "
                                          "directory with a best/ checkpoint"));
}

absl::StatusOr<ModelDescription> ReadModelDescription(const std::string& checkpoint_dir) {
  try {
    return Describe(fs::path(checkpoint_dir), train::ReadVerifiedManifest(checkpoint_dir));
  } catch (const std::exception& e) {
    return absl::FailedPreconditionError(
        absl::StrCat("model: cannot read ", checkpoint_dir, ": ", e.what()));
  }
}

absl::StatusOr<std::unique_ptr<ImageEmbedder>> ImageEmbedder::Load(
    const std::string& checkpoint_dir) {
  auto model = std::make_unique<Model>();
  try {
    model->inference = train::LoadInferenceModel(checkpoint_dir);
  } catch (const std::exception& e) {
    return absl::FailedPreconditionError(
        absl::StrCat("model: cannot load ", checkpoint_dir, ": ", e.what()));
  }
  const train::CheckpointInfo& info = model->inference.info;
  model->description = Describe(fs::path(checkpoint_dir), info);
  model->transform = data::EvalTransformOf(info.preprocessing);
  model->normalisation = data::NormalisationOf(info.preprocessing);
  return std::unique_ptr<ImageEmbedder>(new ImageEmbedder(std::move(model)));
}

ImageEmbedder::ImageEmbedder(std::unique_ptr<Model> model) : model_(std::move(model)) {}
ImageEmbedder::~ImageEmbedder() = default;

const ModelDescription& ImageEmbedder::description() const { return model_->description; }

int64_t ImageEmbedder::input_floats() const {
  const ModelDescription& d = model_->description;
  return d.channels * d.input_size * d.input_size;
}

absl::Status ImageEmbedder::Prepare(const std::string& bytes, const std::string& field,
                                    int64_t max_pixels, float* out) const {
  if (bytes.empty()) return absl::InvalidArgumentError(absl::StrCat(field, ": empty image"));
  // Only formats whose size is known before decoding, so no image is decoded into more memory
  // than --max-pixels allows.
  const std::optional<ImageSize> size = EncodedImageSize(bytes);
  if (!size) {
    return absl::InvalidArgumentError(absl::StrCat(
        field, ": not a PNG, JPEG, GIF, BMP or WebP image (or its header is damaged)"));
  }
  if (size->width <= 0 || size->height <= 0 || size->width > max_pixels / size->height) {
    return absl::InvalidArgumentError(absl::StrCat(field, ": ", size->width, "x", size->height,
                                                   " pixels, at most ", max_pixels, " allowed"));
  }
  const data::DecodeResult decoded =
      data::DecodeImage(bytes, static_cast<int>(model_->description.channels));
  if (!decoded.ok()) return absl::InvalidArgumentError(absl::StrCat(field, ": ", decoded.error));
  try {
    data::ApplyEvalTransform(decoded.image, model_->transform, model_->normalisation, out);
  } catch (const std::invalid_argument& e) {
    return absl::InvalidArgumentError(absl::StrCat(field, ": ", e.what()));
  }
  return absl::OkStatus();
}

absl::Status ImageEmbedder::Forward(const float* inputs, int64_t count, float* out) const {
  const ModelDescription& d = model_->description;
  std::lock_guard<std::mutex> lock(model_->forward_mutex);
  try {
    c10::InferenceMode inference;
    const at::Tensor batch = at::from_blob(
        const_cast<float*>(inputs), {count, d.channels, d.input_size, d.input_size}, at::kFloat);
    const at::Tensor points = model_->inference.net->forward(batch).contiguous();
    std::memcpy(out, points.data_ptr<float>(), sizeof(float) * count * d.dim);
  } catch (const c10::Error& e) {
    return absl::InternalError(absl::StrCat("model ", d.version, ": ", e.what_without_backtrace()));
  } catch (const std::exception& e) {  // e.g. a TorchScript backbone's runtime error
    return absl::InternalError(absl::StrCat("model ", d.version, ": ", e.what()));
  }
  return absl::OkStatus();
}

}  // namespace hier::server
