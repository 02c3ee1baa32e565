// The class-balanced batch sampler of HIER training (hier-method.md section 5): every batch draws
// classes, then `images_per_class` images of each, laid out consecutively; ranks of a
// data-parallel job take disjoint contiguous shares of one global draw.
//
// Thread-safe after construction (Batch is const and draws from a counter-based stream).
#pragma once

#include <cstdint>
#include <vector>

namespace hier::data {

struct BalancedSamplerOptions {
  int64_t batch_size = 90;  // per rank; a multiple of images_per_class
  int64_t images_per_class = 2;
  int64_t world_size = 1;
  int64_t rank = 0;
  uint64_t seed = 0;
};

class BalancedSampler {
 public:
  // `labels[i]` is the class of dataset item i (any non-negative integers). Throws c10::Error
  // naming the offending option.
  BalancedSampler(const std::vector<int64_t>& labels, const BalancedSamplerOptions& options);

  // len(dataset) / (world_size * batch_size), as the reference; at least 1.
  int64_t BatchesPerEpoch() const;

  // This rank's dataset indices for batch `batch` of `epoch`: batch_size / images_per_class
  // classes, each followed by images_per_class of its images drawn with replacement. Classes are
  // drawn without replacement across the global batch when there are enough of them.
  std::vector<int64_t> Batch(int64_t epoch, int64_t batch) const;

  int64_t num_classes() const { return static_cast<int64_t>(members_.size()); }

 private:
  BalancedSamplerOptions options_;
  int64_t dataset_size_;
  std::vector<std::vector<int64_t>> members_;  // items of each class, in dataset order
};

}  // namespace hier::data
