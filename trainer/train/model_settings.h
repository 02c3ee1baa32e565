// How a training configuration becomes the options of the network and of the objective, in one
// place for the trainer and the benchmarks.
#pragma once

#include <cstdint>

#include "trainer/core/hier_loss.h"
#include "trainer/core/objective.h"
#include "trainer/data/preprocess.h"
#include "trainer/model/embedding_net.h"
#include "trainer/train/train_config.h"

namespace hier::train {

// The network for `config`, taking inputs as `preprocessing` prepares them.
model::EmbeddingNetOptions Architecture(const TrainConfig& config,
                                        const data::Preprocessing& preprocessing);

core::HierLossOptions HierOptions(const TrainConfig& config);

// lambda1 * metric loss + lambda2 * HIER over `num_classes` training classes.
core::ObjectiveOptions ObjectiveSettings(const TrainConfig& config, int64_t num_classes);

}  // namespace hier::train
