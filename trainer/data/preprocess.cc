#include "trainer/data/preprocess.h"

#include <ATen/ATen.h>
#include <c10/util/Exception.h>

#include "trainer/core/fast_math.h"

namespace hier::data {
namespace {

// Writes one channel of a normalised image, shifted by (dy, dx) and mirrored when `flip`.
void WritePlane(const uint8_t* src, int64_t height, int64_t width, int64_t dy, int64_t dx,
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

void CheckPreprocessing(const Preprocessing& p) {
  TORCH_CHECK(p.channels == 1 || p.channels == 3, "preprocess: channels must be 1 or 3, got ",
              p.channels);
  TORCH_CHECK(static_cast<int64_t>(p.mean.size()) == p.channels &&
                  static_cast<int64_t>(p.std.size()) == p.channels,
              "preprocess: mean and std need ", p.channels, " values each, got ", p.mean.size(),
              " and ", p.std.size());
  for (double s : p.std) TORCH_CHECK(s > 0, "preprocess: std must be > 0, got ", s);
}

}  // namespace

EvalTransform EvalTransformOf(const Preprocessing& preprocessing) {
  EvalTransform transform;
  transform.resize = static_cast<int>(preprocessing.resize);
  transform.crop = static_cast<int>(preprocessing.crop);
  return transform;
}

Normalisation NormalisationOf(const Preprocessing& preprocessing) {
  return Normalisation{preprocessing.mean, preprocessing.std};
}

at::Tensor ToInputTensor(const ImageSet& set, const std::vector<int64_t>& indices,
                         const Preprocessing& preprocessing, const Augmentation* augmentation,
                         const std::vector<uint64_t>& item_keys) {
  CheckPreprocessing(preprocessing);
  TORCH_CHECK(set.height == preprocessing.crop && set.width == preprocessing.crop,
              "preprocess: images are ", set.height, "x", set.width, ", the model expects ",
              preprocessing.crop, "x", preprocessing.crop);
  TORCH_CHECK(augmentation == nullptr || item_keys.size() == indices.size(), "preprocess: ",
              indices.size(), " images but ", item_keys.size(), " augmentation keys");
  const int64_t b = static_cast<int64_t>(indices.size());
  const int64_t channels = preprocessing.channels;
  const int64_t h = set.height, w = set.width;
  at::Tensor out = at::empty({b, channels, h, w}, at::kFloat);
  float* dst = out.data_ptr<float>();
  for (int64_t i = 0; i < b; ++i) {
    TORCH_CHECK(indices[i] >= 0 && indices[i] < set.count, "preprocess: image index ", indices[i],
                " is outside the set of ", set.count);
    int64_t dy = 0, dx = 0;
    bool flip = false;
    if (augmentation != nullptr) {
      const core::CounterRng rng{core::Mix64(item_keys[i])};
      const int64_t span = 2 * augmentation->max_shift + 1;
      dy = static_cast<int64_t>(rng.Bits(0) % span) - augmentation->max_shift;
      dx = static_cast<int64_t>(rng.Bits(1) % span) - augmentation->max_shift;
      flip = augmentation->flip && (rng.Bits(2) & 1u);
    }
    for (int64_t ch = 0; ch < channels; ++ch) {
      // (p / 255 - mean) / std as one multiply-add; gray is replicated to every channel.
      const float scale = static_cast<float>(1.0 / (255.0 * preprocessing.std[ch]));
      const float offset = static_cast<float>(-preprocessing.mean[ch] / preprocessing.std[ch]);
      WritePlane(set.pixels.data() + indices[i] * h * w, h, w, dy, dx, flip, scale, offset,
                 dst + (i * channels + ch) * h * w);
    }
  }
  return out;
}

at::Tensor LabelsTensor(const std::vector<int64_t>& labels, const std::vector<int64_t>& indices) {
  at::Tensor out = at::empty({static_cast<int64_t>(indices.size())}, at::kLong);
  int64_t* dst = out.data_ptr<int64_t>();
  for (size_t i = 0; i < indices.size(); ++i) dst[i] = labels.at(indices[i]);
  return out;
}

}  // namespace hier::data
