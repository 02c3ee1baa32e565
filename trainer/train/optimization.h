// Optimisation as hier-method.md section 6.2: parameter groups (backbone, head, HIER proxies,
// class proxies) with their lr scales, the batch-size scaling of the lr, warm-up (backbone frozen),
// constant / step / cosine decay, element-wise gradient clamping, AdamW or SGD.
#pragma once

#include <torch/optim/optimizer.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "trainer/core/objective.h"
#include "trainer/model/embedding_net.h"
#include "trainer/train/train_config.h"

namespace hier::train {

// The lr multiplier of the schedule at global step `step` (before group scales and warm-up).
double ScheduleFactor(const TrainConfig& config, int64_t step, int64_t steps_per_epoch);

class Optimization {
 public:
  // Groups the parameters of `net` and `objective` (empty groups are left out).
  Optimization(const TrainConfig& config, model::EmbeddingNet& net, core::Objective& objective,
               int64_t steps_per_epoch, int64_t world_size);

  // Sets every group's lr for global step `step`.
  void SetLearningRates(int64_t step);

  // Clamps gradients (clip_grad), applies the update and clears the gradients.
  void Step();

  // The group names ("backbone", "head", "hier_proxies", "class_proxies") and current lrs.
  const std::vector<std::string>& group_names() const { return names_; }
  std::vector<double> LearningRates() const;

  torch::optim::Optimizer& optimizer() { return *optimizer_; }

 private:
  const TrainConfig config_;
  const int64_t steps_per_epoch_;
  const double batch_scale_;
  std::vector<std::string> names_;
  std::vector<double> scales_;
  std::vector<bool> frozen_in_warmup_;
  std::vector<at::Tensor> parameters_;
  std::unique_ptr<torch::optim::Optimizer> optimizer_;
};

}  // namespace hier::train
