// A trained model ready to embed encoded images: rebuilt from a checkpoint's manifest alone, its
// inputs prepared by the very code the trainer's evaluation uses. LibTorch stays in the .cc file.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace hier::server {

// What a loaded model is, for responses and metrics.
struct ModelDescription {
  std::string version;         // "<run>/<checkpoint path in the run>", e.g. "fmnist/best"
  std::string checkpoint_dir;  // the folder holding manifest.json
  std::string run_dir;         // the run directory above it
  std::string architecture;
  int64_t dim = 0;
  double c = 0;
  std::vector<std::string> class_names;
  std::vector<int64_t> recall_k;         // the Ks of best_recall
  std::vector<double> best_recall;       // Recall@K of the checkpoint's best evaluation
  int64_t channels = 0, input_size = 0;  // model input: channels x input_size x input_size
};

// `path` is a checkpoint folder (it holds manifest.json) or a run directory (its best/ is used);
// returns the checkpoint folder, or NotFound naming `field`.
absl::StatusOr<std::string> ResolveCheckpoint(const std::string& path, const std::string& field);

// The description of the checkpoint at `checkpoint_dir` from its verified manifest, without
// loading the weights; FailedPrecondition naming the file when it does not verify.
absl::StatusOr<ModelDescription> ReadModelDescription(const std::string& checkpoint_dir);

class ImageEmbedder {
 public:
  // Verifies and loads the checkpoint at `checkpoint_dir` (see ResolveCheckpoint). A damaged or
  // unreadable checkpoint gives FailedPrecondition naming the file.
  static absl::StatusOr<std::unique_ptr<ImageEmbedder>> Load(const std::string& checkpoint_dir);
  ~ImageEmbedder();

  const ModelDescription& description() const;
  // Floats of one prepared input (channels * size * size).
  int64_t input_floats() const;

  // Decodes encoded image bytes and writes the model input at `out` (input_floats() floats).
  // Bytes that are empty, not a PNG, JPEG, GIF, BMP or WebP image, undecodable, or declaring more
  // than `max_pixels` give InvalidArgument naming `field`. Thread-safe.
  absl::Status Prepare(const std::string& bytes, const std::string& field, int64_t max_pixels,
                       float* out) const;

  // Runs the network on `count` prepared inputs and writes count * dim floats at `out` (points on
  // the ball). Thread-safe (calls are serialised).
  absl::Status Forward(const float* inputs, int64_t count, float* out) const;

 private:
  struct Model;
  explicit ImageEmbedder(std::unique_ptr<Model> model);
  std::unique_ptr<Model> model_;
};

}  // namespace hier::server
