// The labelled images training and evaluation draw from, served as model inputs: Fashion-MNIST
// held in memory, or image files decoded on demand by worker threads.
//
// Thread-safety: TrainInputs and EvalInputs may be called from several threads at once.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "trainer/data/dataset_layout.h"
#include "trainer/data/image_set.h"
#include "trainer/data/image_transform.h"
#include "trainer/data/preprocess.h"

namespace hier::data {

class ImageSource {
 public:
  virtual ~ImageSource() = default;

  virtual int64_t size() const = 0;
  virtual const std::vector<int64_t>& labels() const = 0;
  virtual const std::vector<std::string>& class_names() const = 0;

  // Augmented training inputs [B, C, crop, crop]; image i is transformed with draws keyed on
  // item_keys[i]. An image that cannot be decoded is replaced by another of its class (and
  // counted), or with `strict` the call throws.
  virtual at::Tensor TrainInputs(const std::vector<int64_t>& indices,
                                 const std::vector<uint64_t>& item_keys) const = 0;

  // Evaluation inputs [B, C, crop, crop]; decoded[i] is false (and the slot zero) for an image
  // that cannot be decoded, or with `strict` the call throws.
  virtual at::Tensor EvalInputs(const std::vector<int64_t>& indices,
                                std::vector<bool>* decoded) const = 0;
};

// A thread-safe tally of files skipped because they were missing or would not decode.
class SkipLog {
 public:
  void Add(const std::string& path, const std::string& reason);
  void Merge(const SkippedFiles& skipped);
  SkippedFiles Snapshot() const;

 private:
  mutable std::mutex mutex_;
  SkippedFiles skipped_;  // guarded by mutex_
};

struct FileSourceOptions {
  TrainTransform train;           // size must equal the preprocessing's crop
  int64_t decode_threads = 2;     // images of a batch decoded in parallel
  bool strict = false;            // a corrupt file fails instead of being skipped
  std::shared_ptr<SkipLog> skipped;  // where skipped files are reported (required)
};

std::unique_ptr<ImageSource> MakeMemorySource(ImageSet set, const Preprocessing& preprocessing,
                                              const Augmentation& augmentation);
std::unique_ptr<ImageSource> MakeFileSource(ImageList list, const Preprocessing& preprocessing,
                                            const FileSourceOptions& options);

}  // namespace hier::data
