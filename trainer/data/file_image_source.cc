// Image files decoded on demand (MakeFileSource): the images of a batch are decoded and transformed
// in parallel by `decode_threads` threads, straight into the batch tensor.
#include <ATen/ATen.h>
#include <c10/util/Exception.h>

#include <algorithm>
#include <exception>
#include <functional>
#include <opencv2/core/utility.hpp>
#include <thread>
#include <unordered_set>
#include <utility>

#include "trainer/core/fast_math.h"
#include "trainer/data/image_source.h"

namespace hier::data {
namespace {

// Runs body(i) for i in [0, n) on up to `threads` threads (the caller's included), in contiguous
// chunks; the first exception thrown is rethrown once all have finished.
void ParallelFor(int64_t n, int64_t threads, const std::function<void(int64_t)>& body) {
  const int64_t workers = std::max<int64_t>(1, std::min(threads, n));
  std::vector<std::exception_ptr> errors(workers);
  auto run_chunk = [&](int64_t w) {
    try {
      for (int64_t i = n * w / workers; i < n * (w + 1) / workers; ++i) body(i);
    } catch (...) {
      errors[w] = std::current_exception();
    }
  };
  std::vector<std::thread> pool;
  for (int64_t w = 1; w < workers; ++w) pool.emplace_back(run_chunk, w);
  run_chunk(0);
  for (std::thread& t : pool) t.join();
  for (const std::exception_ptr& error : errors) {
    if (error) std::rethrow_exception(error);
  }
}

class FileImageSource : public ImageSource {
 public:
  FileImageSource(ImageList list, const Preprocessing& preprocessing,
                  const FileSourceOptions& options)
      : list_(std::move(list)), preprocessing_(preprocessing), options_(options) {
    TORCH_CHECK(options_.skipped != nullptr, "file source: a SkipLog is required");
    TORCH_CHECK(options_.train.size == preprocessing_.crop, "file source: training crop ",
                options_.train.size, " differs from the evaluation crop ", preprocessing_.crop);
    for (int64_t i = 0; i < list_.size(); ++i) {
      const auto label = static_cast<size_t>(list_.labels[i]);
      if (label >= members_.size()) members_.resize(label + 1);
      members_[label].push_back(i);
    }
    // Decode threads already work on different images; OpenCV's own pool would oversubscribe.
    cv::setNumThreads(0);
  }

  int64_t size() const override { return list_.size(); }
  const std::vector<int64_t>& labels() const override { return list_.labels; }
  const std::vector<std::string>& class_names() const override { return list_.class_names; }

  at::Tensor TrainInputs(const std::vector<int64_t>& indices,
                         const std::vector<uint64_t>& item_keys) const override {
    TORCH_CHECK(item_keys.size() == indices.size(), "file source: ", indices.size(),
                " images but ", item_keys.size(), " augmentation keys");
    at::Tensor out = EmptyBatch(indices.size());
    float* dst = out.data_ptr<float>();
    const Normalisation norm = NormalisationOf(preprocessing_);
    ParallelFor(out.size(0), options_.decode_threads, [&](int64_t i) {
      const Image image = DecodeForTraining(indices[i]);
      ApplyTrainTransform(image, options_.train, norm, core::CounterRng{core::Mix64(item_keys[i])},
                          dst + i * PlaneSize());
    });
    return out;
  }

  at::Tensor EvalInputs(const std::vector<int64_t>& indices,
                        std::vector<bool>* decoded) const override {
    at::Tensor out = EmptyBatch(indices.size());
    float* dst = out.data_ptr<float>();
    const Normalisation norm = NormalisationOf(preprocessing_);
    const EvalTransform transform = EvalTransformOf(preprocessing_);
    std::vector<char> ok(indices.size(), 0);  // not vector<bool>: written from several threads
    ParallelFor(out.size(0), options_.decode_threads, [&](int64_t i) {
      const DecodeResult result = Decode(indices[i]);
      if (!result.ok()) {
        std::fill_n(dst + i * PlaneSize(), PlaneSize(), 0.0f);
        return;
      }
      ApplyEvalTransform(result.image, transform, norm, dst + i * PlaneSize());
      ok[i] = 1;
    });
    decoded->assign(ok.begin(), ok.end());
    return out;
  }

 private:
  int64_t PlaneSize() const {
    return preprocessing_.channels * preprocessing_.crop * preprocessing_.crop;
  }

  at::Tensor EmptyBatch(size_t count) const {
    return at::empty({static_cast<int64_t>(count), preprocessing_.channels, preprocessing_.crop,
                      preprocessing_.crop},
                     at::kFloat);
  }

  // Decodes item `index`; a failure is reported once per file, or with `strict` thrown.
  DecodeResult Decode(int64_t index) const {
    TORCH_CHECK(index >= 0 && index < list_.size(), "file source: image index ", index,
                " is outside the set of ", list_.size());
    DecodeResult result =
        DecodeImageFile(list_.paths[index], static_cast<int>(preprocessing_.channels));
    if (result.ok()) return result;
    TORCH_CHECK(!options_.strict, "--strict: ", list_.paths[index], ": ", result.error);
    std::lock_guard<std::mutex> lock(bad_mutex_);
    if (bad_.insert(index).second) options_.skipped->Add(list_.paths[index], result.error);
    return result;
  }

  // Item `index`, or when it will not decode the next decodable image of its class.
  Image DecodeForTraining(int64_t index) const {
    const std::vector<int64_t>& same_class = members_[list_.labels[index]];
    const size_t start = std::find(same_class.begin(), same_class.end(), index) - same_class.begin();
    for (size_t k = 0; k < same_class.size(); ++k) {
      DecodeResult result = Decode(same_class[(start + k) % same_class.size()]);
      if (result.ok()) return std::move(result.image);
    }
    TORCH_CHECK(false, "file source: no image of class '", list_.class_names[list_.labels[index]],
                "' can be decoded");
  }

  const ImageList list_;
  const Preprocessing preprocessing_;
  const FileSourceOptions options_;
  std::vector<std::vector<int64_t>> members_;  // items of each class
  mutable std::mutex bad_mutex_;
  mutable std::unordered_set<int64_t> bad_;  // guarded by bad_mutex_: items already reported
};

}  // namespace

std::unique_ptr<ImageSource> MakeFileSource(ImageList list, const Preprocessing& preprocessing,
                                            const FileSourceOptions& options) {
  return std::make_unique<FileImageSource>(std::move(list), preprocessing, options);
}

}  // namespace hier::data
