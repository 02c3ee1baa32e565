#include "trainer/data/image_transform.h"

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cmath>
#include <cstring>
#include <fstream>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <sstream>
#include <stdexcept>
#include <utility>

namespace hier::data {
namespace {

constexpr int kMaxCropAttempts = 10;  // as torchvision
constexpr uint32_t kCountersPerAttempt = 4;
constexpr uint32_t kFlipCounter = kMaxCropAttempts * kCountersPerAttempt;

// ANYCOLOR keeps gray sources 1-channel (a gray output is then a copy, not a round trip through
// BGR) and reduces colour with alpha to 3 channels; without ANYDEPTH the codecs scale 16-bit
// samples to 8 bit themselves. Orientation is ignored to match PIL, which most training recipes
// decode with.
constexpr int kDecodeFlags = cv::IMREAD_ANYCOLOR | cv::IMREAD_IGNORE_ORIENTATION;

template <typename... Parts>
void Check(bool ok, const Parts&... parts) {
  if (ok) return;
  std::ostringstream message;
  message << "preprocess: ";
  (message << ... << parts);
  throw std::invalid_argument(message.str());
}

void CheckChannels(int channels) {
  Check(channels == 1 || channels == 3, "channels must be 1 or 3, got ", channels);
}

void CheckImage(const Image& image) {
  Check(image.height > 0 && image.width > 0, "image is ", image.height, "x", image.width);
  CheckChannels(image.channels);
  const size_t expected = static_cast<size_t>(image.height) * image.width * image.channels;
  Check(image.pixels.size() == expected, "image pixels hold ", image.pixels.size(), " bytes, ",
        image.height, "x", image.width, "x", image.channels, " needs ", expected);
}

void CheckCropBounds(double scale_min, double scale_max, double ratio_min, double ratio_max) {
  Check(scale_min > 0 && scale_min <= scale_max && std::isfinite(scale_max),
        "need 0 < scale_min <= scale_max < inf, got scale_min ", scale_min, ", scale_max ",
        scale_max);
  Check(ratio_min > 0 && ratio_min <= ratio_max && std::isfinite(ratio_max),
        "need 0 < ratio_min <= ratio_max < inf, got ratio_min ", ratio_min, ", ratio_max ",
        ratio_max);
}

// Python's round(), which torchvision uses: halves go to even, as std::nearbyint does in the
// default rounding mode.
double RoundHalfEven(double x) { return std::nearbyint(x); }

// Uniform in [0, 1).
double Uniform(const core::CounterRng& rng, uint32_t counter) {
  return rng.Bits(counter) * 0x1p-32;
}

// Uniform in [0, n) by multiply-shift; its bias (below n / 2^32) is negligible for image sizes.
int UniformBelow(const core::CounterRng& rng, uint32_t counter, int n) {
  return static_cast<int>((static_cast<uint64_t>(rng.Bits(counter)) * n) >> 32);
}

DecodeResult Failure(std::string error) { return {Image{}, std::move(error)}; }

// Converts a decoded (BGR or gray) image into `image`'s buffer, which has the wanted channels.
void ConvertInto(const cv::Mat& decoded, Image& image) {
  cv::Mat dst(image.height, image.width, CV_8UC(image.channels), image.pixels.data());
  if (decoded.channels() == 1 && image.channels == 1) {
    decoded.copyTo(dst);
  } else if (decoded.channels() == 1) {
    cv::cvtColor(decoded, dst, cv::COLOR_GRAY2RGB);
  } else {
    cv::cvtColor(decoded, dst, image.channels == 1 ? cv::COLOR_BGR2GRAY : cv::COLOR_BGR2RGB);
  }
}

// A header over the image's pixels; OpenCV has no const Mat, and the callers only read it.
cv::Mat MatView(const Image& image) {
  return cv::Mat(image.height, image.width, CV_8UC(image.channels),
                 const_cast<uint8_t*>(image.pixels.data()));
}

// Area averaging when shrinking (bicubic would alias: it does not widen its kernel), bicubic
// when enlarging.
int Resampling(int from_width, int from_height, int to_width, int to_height) {
  return to_width < from_width && to_height < from_height ? cv::INTER_AREA : cv::INTER_CUBIC;
}

// The size after torchvision's shorter-side resize; integer division truncates like its int().
cv::Size ShorterSideSize(int height, int width, int shorter) {
  const int64_t longer =
      static_cast<int64_t>(shorter) * std::max(height, width) / std::min(height, width);
  return height <= width ? cv::Size(static_cast<int>(longer), shorter)
                         : cv::Size(shorter, static_cast<int>(longer));
}

// torchvision's centre-crop offset.
int CentreOffset(int length, int crop) {
  return static_cast<int>(RoundHalfEven((length - crop) / 2.0));
}

// Writes an 8-bit view as normalised planar floats, mirrored left-right when `flip`.
void WritePlanar(const cv::Mat& view, const Normalisation& norm, bool flip, float* out) {
  const int channels = view.channels();
  const size_t plane = static_cast<size_t>(view.rows) * view.cols;
  for (int c = 0; c < channels; ++c) {
    // (p / 255 - mean) / std as one multiply-add.
    const float scale = static_cast<float>(1.0 / (255.0 * norm.std[c]));
    const float offset = static_cast<float>(-norm.mean[c] / norm.std[c]);
    for (int y = 0; y < view.rows; ++y) {
      const uint8_t* src = view.ptr<uint8_t>(y);
      float* dst = out + c * plane + static_cast<size_t>(y) * view.cols;
      for (int x = 0; x < view.cols; ++x) {
        const int sx = flip ? view.cols - 1 - x : x;
        dst[x] = src[sx * channels + c] * scale + offset;
      }
    }
  }
}

}  // namespace

DecodeResult DecodeImage(const std::string& bytes, int channels) {
  CheckChannels(channels);
  if (bytes.empty()) return Failure("empty file");
  if (bytes.size() > INT_MAX) return Failure("larger than 2 GiB");
  try {
    const cv::Mat buffer(1, static_cast<int>(bytes.size()), CV_8U, const_cast<char*>(bytes.data()));
    const cv::Mat decoded = cv::imdecode(buffer, kDecodeFlags);
    if (decoded.empty()) return Failure("not a decodable image");
    DecodeResult result;
    result.image.height = decoded.rows;
    result.image.width = decoded.cols;
    result.image.channels = channels;
    result.image.pixels.resize(static_cast<size_t>(decoded.total()) * channels);
    ConvertInto(decoded, result.image);
    return result;
  } catch (const cv::Exception& e) {
    // imdecode throws for headers its size limits refuse (e.g. a claimed 10^6 x 10^6 image).
    return Failure("not a decodable image (" + e.err + ")");
  }
}

DecodeResult DecodeImageFile(const std::string& path, int channels) {
  std::ifstream in(path, std::ios::binary);
  std::string bytes;
  char chunk[1 << 16];
  // istream::read, unlike istreambuf_iterator, turns read errors (e.g. EISDIR) into badbit.
  while (in.read(chunk, sizeof(chunk)) || in.gcount() > 0) bytes.append(chunk, in.gcount());
  if (!in.eof()) return Failure(path + ": cannot read (" + std::strerror(errno) + ")");
  DecodeResult result = DecodeImage(bytes, channels);
  if (!result.ok()) result.error = path + ": " + result.error;
  return result;
}

CropBox RandomResizedCropBox(int height, int width, double scale_min, double scale_max,
                             double ratio_min, double ratio_max, const core::CounterRng& rng) {
  Check(height > 0 && width > 0, "cannot crop a ", height, "x", width, " image");
  CheckCropBounds(scale_min, scale_max, ratio_min, ratio_max);
  const double area = static_cast<double>(height) * width;
  const double log_ratio_min = std::log(ratio_min), log_ratio_max = std::log(ratio_max);
  for (uint32_t attempt = 0; attempt < kMaxCropAttempts; ++attempt) {
    const uint32_t counter = attempt * kCountersPerAttempt;
    const double target_area = area * (scale_min + (scale_max - scale_min) * Uniform(rng, counter));
    const double ratio =
        std::exp(log_ratio_min + (log_ratio_max - log_ratio_min) * Uniform(rng, counter + 1));
    // Compared as doubles so that huge scales cannot overflow an int.
    const double w = RoundHalfEven(std::sqrt(target_area * ratio));
    const double h = RoundHalfEven(std::sqrt(target_area / ratio));
    if (w > 0 && w <= width && h > 0 && h <= height) {
      CropBox box;
      box.width = static_cast<int>(w);
      box.height = static_cast<int>(h);
      box.y = UniformBelow(rng, counter + 2, height - box.height + 1);
      box.x = UniformBelow(rng, counter + 3, width - box.width + 1);
      return box;
    }
  }
  // The fallback: the whole image, narrowed to the nearest allowed ratio. torchvision can return
  // a side of 0 here for extreme ratio bounds; at least 1 keeps the crop usable.
  const double image_ratio = static_cast<double>(width) / height;
  CropBox box{0, 0, width, height};
  if (image_ratio < ratio_min) {
    box.height = std::max(1, static_cast<int>(RoundHalfEven(width / ratio_min)));
  } else if (image_ratio > ratio_max) {
    box.width = std::max(1, static_cast<int>(RoundHalfEven(height * ratio_max)));
  }
  box.y = (height - box.height) / 2;
  box.x = (width - box.width) / 2;
  return box;
}

void ValidateTrainTransform(const TrainTransform& transform) {
  Check(transform.size > 0, "size must be > 0, got ", transform.size);
  CheckCropBounds(transform.scale_min, transform.scale_max, transform.ratio_min,
                  transform.ratio_max);
}

void ValidateEvalTransform(const EvalTransform& transform) {
  Check(transform.resize > 0, "resize must be > 0, got ", transform.resize);
  Check(transform.crop > 0 && transform.crop <= transform.resize,
        "crop must be in [1, resize = ", transform.resize, "], got ", transform.crop);
}

void ValidateNormalisation(const Normalisation& norm, int channels) {
  Check(norm.mean.size() == static_cast<size_t>(channels), "normalisation mean has ",
        norm.mean.size(), " entries for ", channels, " channels");
  Check(norm.std.size() == static_cast<size_t>(channels), "normalisation std has ", norm.std.size(),
        " entries for ", channels, " channels");
  for (int c = 0; c < channels; ++c) {
    Check(std::isfinite(norm.mean[c]), "normalisation mean[", c, "] must be finite, got ",
          norm.mean[c]);
    Check(norm.std[c] > 0 && std::isfinite(norm.std[c]), "normalisation std[", c,
          "] must be > 0 and finite, got ", norm.std[c]);
  }
}

void ApplyTrainTransform(const Image& image, const TrainTransform& transform,
                         const Normalisation& norm, const core::CounterRng& rng, float* out) {
  CheckImage(image);
  ValidateTrainTransform(transform);
  ValidateNormalisation(norm, image.channels);
  const CropBox box =
      RandomResizedCropBox(image.height, image.width, transform.scale_min, transform.scale_max,
                           transform.ratio_min, transform.ratio_max, rng);
  cv::Mat resized;
  // resize treats the ROI as a whole image (its border never reads outside the box), as
  // torchvision's crop-then-resize does.
  cv::resize(MatView(image)(cv::Rect(box.x, box.y, box.width, box.height)), resized,
             cv::Size(transform.size, transform.size), 0, 0,
             Resampling(box.width, box.height, transform.size, transform.size));
  const bool flip = transform.flip && (rng.Bits(kFlipCounter) & 1u);
  WritePlanar(resized, norm, flip, out);
}

void ApplyEvalTransform(const Image& image, const EvalTransform& transform,
                        const Normalisation& norm, float* out) {
  CheckImage(image);
  ValidateEvalTransform(transform);
  ValidateNormalisation(norm, image.channels);
  cv::Mat resized;
  const cv::Size size = ShorterSideSize(image.height, image.width, transform.resize);
  cv::resize(MatView(image), resized, size, 0, 0,
             Resampling(image.width, image.height, size.width, size.height));
  const cv::Rect crop(CentreOffset(resized.cols, transform.crop),
                      CentreOffset(resized.rows, transform.crop), transform.crop, transform.crop);
  WritePlanar(resized(crop), norm, /*flip=*/false, out);
}

}  // namespace hier::data
