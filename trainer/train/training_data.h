// The images a configuration names, as sources the trainer draws from: the training split, the
// evaluation queries (and gallery), the preprocessing the model is trained with and the protocol's
// Recall@K list.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "trainer/data/image_source.h"
#include "trainer/data/preprocess.h"
#include "trainer/train/train_config.h"

namespace hier::train {

struct TrainingData {
  data::Preprocessing preprocessing;
  std::unique_ptr<data::ImageSource> train;  // null when opened for evaluation only
  std::unique_ptr<data::ImageSource> query;
  std::unique_ptr<data::ImageSource> gallery;  // null: the queries are the gallery
  std::vector<int64_t> recall_k;
  std::shared_ptr<data::SkipLog> skipped;  // missing files found on opening, corrupt ones later
};

// Fashion-MNIST: 28x28, its own mean/std (or --mean/--std). File layouts: --image-size crops
// after resizing to --resize, ImageNet's mean/std unless given.
data::Preprocessing PreprocessingFor(const TrainConfig& config);

// Opens the data set (`config` must have passed Validate), its training split only when
// `with_train`. Throws naming the file that is wrong.
TrainingData OpenTrainingData(const TrainConfig& config, bool with_train = true);

}  // namespace hier::train
