#include "trainer/data/image_source.h"

#include <utility>

namespace hier::data {
namespace {

// Fashion-MNIST (or any ImageSet) held in memory; images are already crop x crop.
class MemoryImageSource : public ImageSource {
 public:
  MemoryImageSource(ImageSet set, const Preprocessing& preprocessing,
                    const Augmentation& augmentation)
      : set_(std::move(set)), preprocessing_(preprocessing), augmentation_(augmentation) {}

  int64_t size() const override { return set_.count; }
  const std::vector<int64_t>& labels() const override { return set_.labels; }
  const std::vector<std::string>& class_names() const override { return set_.class_names; }

  at::Tensor TrainInputs(const std::vector<int64_t>& indices,
                         const std::vector<uint64_t>& item_keys) const override {
    return ToInputTensor(set_, indices, preprocessing_, &augmentation_, item_keys);
  }

  at::Tensor EvalInputs(const std::vector<int64_t>& indices,
                        std::vector<bool>* decoded) const override {
    decoded->assign(indices.size(), true);
    return ToInputTensor(set_, indices, preprocessing_, nullptr, {});
  }

 private:
  const ImageSet set_;
  const Preprocessing preprocessing_;
  const Augmentation augmentation_;
};

}  // namespace

void SkipLog::Add(const std::string& path, const std::string& reason) {
  std::lock_guard<std::mutex> lock(mutex_);
  skipped_.Add(path, reason);
}

void SkipLog::Merge(const SkippedFiles& skipped) {
  std::lock_guard<std::mutex> lock(mutex_);
  skipped_.Merge(skipped);
}

SkippedFiles SkipLog::Snapshot() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return skipped_;
}

std::unique_ptr<ImageSource> MakeMemorySource(ImageSet set, const Preprocessing& preprocessing,
                                              const Augmentation& augmentation) {
  return std::make_unique<MemoryImageSource>(std::move(set), preprocessing, augmentation);
}

}  // namespace hier::data
