#include "trainer/train/training_data.h"

#include <utility>

#include "trainer/data/dataset_layout.h"
#include "trainer/data/image_set.h"

namespace hier::train {
namespace {

const std::vector<double> kImageNetMean = {0.485, 0.456, 0.406};
const std::vector<double> kImageNetStd = {0.229, 0.224, 0.225};

// `values` when given, else `fallback` (replicated when it has one value and the model wants 3).
std::vector<double> PerChannel(const std::vector<double>& values,
                               const std::vector<double>& fallback, int64_t channels) {
  if (!values.empty()) return values;
  if (static_cast<int64_t>(fallback.size()) == channels) return fallback;
  return std::vector<double>(channels, fallback.front());
}

void KeepFirst(data::ImageList& list, int64_t limit) {
  if (limit <= 0 || limit >= list.size()) return;
  list.paths.resize(limit);
  list.labels.resize(limit);
}

std::unique_ptr<data::ImageSource> FileSource(data::ImageList list, const TrainConfig& config,
                                              const TrainingData& data) {
  data::FileSourceOptions options;
  options.train.size = static_cast<int>(config.image_size);
  options.train.scale_min = config.crop_scale_min;
  options.train.flip = config.augment;
  if (!config.augment) options.train.scale_min = options.train.scale_max;
  options.decode_threads = config.decode_threads;
  options.strict = config.strict;
  options.skipped = data.skipped;
  return data::MakeFileSource(std::move(list), data.preprocessing, options);
}

}  // namespace

data::Preprocessing PreprocessingFor(const TrainConfig& config) {
  data::Preprocessing p;
  p.channels = InputChannels(config);
  const bool mnist = config.dataset == "fashion-mnist";
  p.resize = mnist ? 28 : config.resize;
  p.crop = mnist ? 28 : config.image_size;
  const data::Preprocessing mnist_defaults;
  p.mean = PerChannel(config.mean, mnist ? mnist_defaults.mean : kImageNetMean, p.channels);
  p.std = PerChannel(config.std, mnist ? mnist_defaults.std : kImageNetStd, p.channels);
  return p;
}

TrainingData OpenTrainingData(const TrainConfig& config, bool with_train) {
  TrainingData data;
  data.preprocessing = PreprocessingFor(config);
  data.skipped = std::make_shared<data::SkipLog>();
  data.recall_k = RecallKs(config);
  if (config.dataset == "fashion-mnist") {
    data::Augmentation augmentation;
    if (!config.augment) augmentation = {0, false};
    const bool disjoint = config.protocol == "disjoint";
    auto load = [&](data::Split split, int64_t limit, const std::vector<int64_t>& classes) {
      data::ImageSet set = data::LoadFashionMnist(config.data_dir, split, limit);
      if (disjoint) set = data::KeepClasses(set, classes);
      return data::MakeMemorySource(std::move(set), data.preprocessing, augmentation);
    };
    const data::ClassSplit& classes = data::FashionMnistDisjointSplit();
    if (with_train) data.train = load(data::Split::kTrain, config.train_limit, classes.train);
    data.query = load(data::Split::kTest, config.test_limit, classes.test);
    return data;
  }
  data::DatasetSplits splits = data::OpenDataset(config.dataset, config.data_dir, config.strict);
  data.skipped->Merge(splits.skipped);
  KeepFirst(splits.train, config.train_limit);
  KeepFirst(splits.query, config.test_limit);
  KeepFirst(splits.gallery, config.test_limit);
  const bool has_gallery = splits.gallery.size() > 0;
  if (with_train) data.train = FileSource(std::move(splits.train), config, data);
  data.query = FileSource(std::move(splits.query), config, data);
  if (has_gallery) data.gallery = FileSource(std::move(splits.gallery), config, data);
  return data;
}

}  // namespace hier::train
