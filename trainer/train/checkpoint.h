// Checkpoints: checkpoints/<step>/ holds the model, the objective's proxies, the optimizer state
// and manifest.json, which names the architecture, preprocessing, classes, configuration and
// training position, with the size and SHA-256 of every file. A checkpoint is staged in a
// temporary folder and published by rename, so a crash leaves either the whole checkpoint or none.
#pragma once

#include <torch/optim/optimizer.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "trainer/core/objective.h"
#include "trainer/data/preprocess.h"
#include "trainer/model/embedding_net.h"

namespace hier::train {

// Where training stands: the next batch to train and the best evaluation so far.
struct TrainingPosition {
  int64_t epoch = 0;  // next batch's epoch
  int64_t batch = 0;  // next batch within that epoch
  int64_t step = 0;   // steps done
  std::vector<double>
      best_recall;  // Recall@K of the best evaluation (by the first K); empty before
  int64_t best_step = -1;
};

// Everything a checkpoint describes besides tensors.
struct CheckpointInfo {
  model::EmbeddingNetOptions architecture;
  data::Preprocessing preprocessing;
  std::vector<std::string> class_names;
  std::string config_json;  // the run's whole configuration
  TrainingPosition position;
};

// The trained state a checkpoint saves and restores.
struct TrainedState {
  model::EmbeddingNet net;
  core::Objective objective;
  torch::optim::Optimizer* optimizer = nullptr;  // not saved / restored when null
};

// Writes `checkpoints_dir`/<position.step>/ and returns its path. Throws on I/O errors (nothing
// partial is left under the final name).
std::string SaveCheckpoint(const std::string& checkpoints_dir, const TrainedState& state,
                           const CheckpointInfo& info);

// Reads a checkpoint's manifest after checking every listed file's size and SHA-256; throws
// naming the folder and the file that does not match.
CheckpointInfo ReadVerifiedManifest(const std::string& checkpoint_dir);

// Loads weights (and the optimizer state when `state.optimizer` is set) into modules built with
// the checkpoint's architecture; returns the manifest.
CheckpointInfo RestoreCheckpoint(const std::string& checkpoint_dir, const TrainedState& state);

// A model ready for inference, rebuilt from the manifest alone.
struct InferenceModel {
  model::EmbeddingNet net{nullptr};  // in eval mode
  CheckpointInfo info;
};
InferenceModel LoadInferenceModel(const std::string& checkpoint_dir);

// The newest checkpoint under `checkpoints_dir` that verifies, or none. Staging folders and
// checkpoints that fail verification are skipped.
std::optional<std::string> LatestCheckpoint(const std::string& checkpoints_dir);

// Removes all but the `keep` newest checkpoints and any leftover staging folders.
void PruneCheckpoints(const std::string& checkpoints_dir, int64_t keep);

// Makes `target_dir` (e.g. runs/x/best) a copy of `checkpoint_dir`, replacing any previous one
// atomically (files hard-linked where possible).
void PublishCopy(const std::string& checkpoint_dir, const std::string& target_dir);

}  // namespace hier::train
