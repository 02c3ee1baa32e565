#include "trainer/data/preprocess.h"

#include <ATen/ATen.h>
#include <c10/util/Exception.h>

#include "trainer/core/fast_math.h"

namespace hier::data {
namespace {

// Writes one normalised image, shifted by (dy, dx) and mirrored when `flip`.
void WriteImage(const uint8_t* src, int64_t height, int64_t width, int64_t dy, int64_t dx,
                bool flip, float scale, float offset, float* dst) {
  for (int64_t y = 0; y < height; ++y) {
    const int64_t sy = y - dy;
    for (int64_t x = 0; x < width; ++x) {
      const int64_t sx = (flip ? width - 1 - x : x) - dx;
      const bool inside = sy >= 0 && sy < height && sx >= 0 && sx < width;
      const float pixel = inside ? src[sy * width + sx] : 0.0f;
      dst[y * width + x] = pixel * scale + offset;
    }
  }
}

}  // namespace

at::Tensor ToInputTensor(const ImageSet& set, const std::vector<int64_t>& indices,
                         const Preprocessing& preprocessing, const Augmentation* augmentation,
                         uint64_t key) {
  TORCH_CHECK(set.height == preprocessing.height && set.width == preprocessing.width,
              "preprocess: images are ", set.height, "x", set.width, ", the model expects ",
              preprocessing.height, "x", preprocessing.width);
  TORCH_CHECK(preprocessing.std > 0, "preprocess: std must be > 0, got ", preprocessing.std);
  const int64_t b = static_cast<int64_t>(indices.size());
  const int64_t h = set.height, w = set.width;
  at::Tensor out = at::empty({b, 1, h, w}, at::kFloat);
  float* dst = out.data_ptr<float>();
  // (p / 255 - mean) / std as one multiply-add.
  const float scale = static_cast<float>(1.0 / (255.0 * preprocessing.std));
  const float offset = static_cast<float>(-preprocessing.mean / preprocessing.std);
  const core::CounterRng rng{core::Mix64(key)};
  for (int64_t i = 0; i < b; ++i) {
    TORCH_CHECK(indices[i] >= 0 && indices[i] < set.count, "preprocess: image index ", indices[i],
                " is outside the set of ", set.count);
    int64_t dy = 0, dx = 0;
    bool flip = false;
    if (augmentation != nullptr) {
      const int64_t span = 2 * augmentation->max_shift + 1;
      const uint32_t first = static_cast<uint32_t>(3 * i);
      dy = static_cast<int64_t>(rng.Bits(first) % span) - augmentation->max_shift;
      dx = static_cast<int64_t>(rng.Bits(first + 1) % span) - augmentation->max_shift;
      flip = augmentation->flip && (rng.Bits(first + 2) & 1u);
    }
    WriteImage(set.pixels.data() + indices[i] * h * w, h, w, dy, dx, flip, scale, offset,
               dst + i * h * w);
  }
  return out;
}

at::Tensor LabelsTensor(const ImageSet& set, const std::vector<int64_t>& indices) {
  at::Tensor labels = at::empty({static_cast<int64_t>(indices.size())}, at::kLong);
  int64_t* out = labels.data_ptr<int64_t>();
  for (size_t i = 0; i < indices.size(); ++i) out[i] = set.labels.at(indices[i]);
  return labels;
}

}  // namespace hier::data
