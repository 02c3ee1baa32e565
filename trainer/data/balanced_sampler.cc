#include "trainer/data/balanced_sampler.h"

#include <c10/util/Exception.h>

#include <algorithm>
#include <map>
#include <numeric>

#include "trainer/core/fast_math.h"

namespace hier::data {

BalancedSampler::BalancedSampler(const std::vector<int64_t>& labels,
                                 const BalancedSamplerOptions& options)
    : options_(options), dataset_size_(static_cast<int64_t>(labels.size())) {
  const BalancedSamplerOptions& o = options_;
  TORCH_CHECK(!labels.empty(), "sampler: the dataset is empty");
  TORCH_CHECK(o.images_per_class >= 1, "sampler: images_per_class must be >= 1, got ",
              o.images_per_class);
  TORCH_CHECK(o.batch_size >= o.images_per_class && o.batch_size % o.images_per_class == 0,
              "sampler: batch_size (", o.batch_size, ") must be a positive multiple of ",
              "images_per_class (", o.images_per_class, ")");
  TORCH_CHECK(o.world_size >= 1, "sampler: world_size must be >= 1, got ", o.world_size);
  TORCH_CHECK(o.rank >= 0 && o.rank < o.world_size, "sampler: rank must be in [0, ", o.world_size,
              "), got ", o.rank);
  std::map<int64_t, std::vector<int64_t>> by_label;
  for (int64_t i = 0; i < dataset_size_; ++i) {
    TORCH_CHECK(labels[i] >= 0, "sampler: labels must be >= 0, got ", labels[i], " at item ", i);
    by_label[labels[i]].push_back(i);
  }
  for (auto& [label, items] : by_label) members_.push_back(std::move(items));
}

int64_t BalancedSampler::BatchesPerEpoch() const {
  return std::max<int64_t>(1, dataset_size_ / (options_.world_size * options_.batch_size));
}

std::vector<int64_t> BalancedSampler::Batch(int64_t epoch, int64_t batch) const {
  TORCH_CHECK(epoch >= 0 && batch >= 0, "sampler: epoch and batch must be >= 0, got ", epoch,
              " and ", batch);
  const int64_t per_rank = options_.batch_size / options_.images_per_class;
  const int64_t global = per_rank * options_.world_size;
  // One stream per (seed, epoch, batch), shared by every rank so their shares fit together.
  const core::CounterRng rng{
      core::Mix64(core::Mix64(options_.seed ^ core::Mix64(epoch)) ^ static_cast<uint64_t>(batch))};
  uint32_t counter = 0;
  auto draw = [&](int64_t bound) {
    return static_cast<int64_t>(rng.Bits(counter++) % static_cast<uint64_t>(bound));
  };

  // Classes: a partial Fisher-Yates shuffle when there are enough, else draws with replacement.
  std::vector<int64_t> classes(global);
  if (num_classes() >= global) {
    std::vector<int64_t> order(num_classes());
    std::iota(order.begin(), order.end(), 0);
    for (int64_t i = 0; i < global; ++i) {
      std::swap(order[i], order[i + draw(num_classes() - i)]);
      classes[i] = order[i];
    }
  } else {
    for (int64_t& c : classes) c = draw(num_classes());
  }

  // Images: every class of the global batch draws its images in order, so the stream position
  // of this rank's share is the same whatever the rank.
  std::vector<int64_t> indices;
  indices.reserve(options_.batch_size);
  for (int64_t slot = 0; slot < global; ++slot) {
    const std::vector<int64_t>& items = members_[classes[slot]];
    const bool mine = slot / per_rank == options_.rank;
    for (int64_t k = 0; k < options_.images_per_class; ++k) {
      const int64_t item = items[draw(static_cast<int64_t>(items.size()))];
      if (mine) indices.push_back(item);
    }
  }
  return indices;
}

}  // namespace hier::data
