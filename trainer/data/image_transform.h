// Decoding image files and turning them into normalised model inputs with the standard
// (torchvision-style) training and evaluation transforms, on OpenCV and without torch.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "trainer/core/fast_math.h"

namespace hier::data {

// An 8-bit image, `channels` interleaved bytes per pixel (1 = gray, 3 = RGB order), rows
// contiguous.
struct Image {
  int height = 0, width = 0, channels = 0;
  std::vector<uint8_t> pixels;  // height * width * channels
};

struct DecodeResult {
  Image image;
  std::string error;  // empty on success; else why, e.g. "not a decodable image", "empty file"
  bool ok() const { return error.empty(); }
};

// Decodes encoded bytes (JPEG, PNG, BMP, ... whatever cv::imdecode reads) to `channels` 1 or 3:
// gray input is replicated to RGB, colour input converted to gray with OpenCV's weights, alpha
// dropped, 16-bit samples scaled to 8 bit. EXIF orientation is ignored, as PIL's Image.open does.
// Bad bytes give an error result and never throw (real data sets hold corrupt files); a
// `channels` other than 1 or 3 throws std::invalid_argument.
DecodeResult DecodeImage(const std::string& bytes, int channels);

// Reads the file at `path` and decodes it; every error names the path.
DecodeResult DecodeImageFile(const std::string& path, int channels);

// Where an image is cut: x, y, width, height in source pixels.
struct CropBox {
  int x = 0, y = 0, width = 0, height = 0;
};

// torchvision's RandomResizedCrop.get_params: up to 10 attempts of a box with area
// H * W * U(scale_min, scale_max) and aspect ratio w / h log-uniform in [ratio_min, ratio_max],
// accepted when it fits, at a uniform position; else the centre crop of the whole image with its
// ratio clamped to [ratio_min, ratio_max] (and each side at least 1). Draws from counters [0, 40)
// of `rng`, so the box depends only on its key. Throws std::invalid_argument unless
// height, width > 0, 0 < scale_min <= scale_max < inf and 0 < ratio_min <= ratio_max < inf.
CropBox RandomResizedCropBox(int height, int width, double scale_min, double scale_max,
                             double ratio_min, double ratio_max, const core::CounterRng& rng);

// Training-time view: a random resized crop to `size` x `size` and a horizontal flip
// with probability 1/2.
struct TrainTransform {
  int size = 224;
  double scale_min = 0.08, scale_max = 1.0;
  double ratio_min = 3.0 / 4.0, ratio_max = 4.0 / 3.0;
  bool flip = true;
};

// Evaluation view: resize so the shorter side is `resize` (the longer side becomes
// int(resize * long / short) as in torchvision), then centre-crop `crop` x `crop`. crop <= resize
// is required, so the crop never needs padding.
struct EvalTransform {
  int resize = 256;
  int crop = 224;
};

// Per-channel normalisation to floats: (p / 255 - mean[c]) / std[c], one entry per channel.
struct Normalisation {
  std::vector<double> mean, std;
};

// Throw std::invalid_argument("preprocess: ...") naming the bad field, so that options can be
// checked once at start-up; the Apply functions check them again.
void ValidateTrainTransform(const TrainTransform& transform);
void ValidateEvalTransform(const EvalTransform& transform);
void ValidateNormalisation(const Normalisation& norm, int channels);

// Write the transformed image as planar floats to `out`, which holds image.channels * S * S
// floats (channel-major, CHW) for S = transform.size or transform.crop. Shrinking averages pixel
// areas (antialiased, like the PIL bicubic torchvision uses), enlarging is bicubic (a = -0.75;
// PIL's -0.5): values differ from PIL's by a few grey levels, not in kind. The training flip
// draws from counter 40 of `rng`, after the crop's.
// Throw std::invalid_argument for a malformed image or bad options.
void ApplyTrainTransform(const Image& image, const TrainTransform& transform,
                         const Normalisation& norm, const core::CounterRng& rng, float* out);
void ApplyEvalTransform(const Image& image, const EvalTransform& transform,
                        const Normalisation& norm, float* out);

}  // namespace hier::data
