#include "tests/bench/synthetic_photos.h"

#include <cmath>
#include <filesystem>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <random>
#include <stdexcept>
#include <vector>

namespace hier::bench {
namespace {

constexpr int kWidth = 500, kHeight = 375;

// Per channel, a few random low-frequency waves plus Gaussian noise, so the JPEG holds real
// detail (a flat or purely smooth image decodes unrealistically fast).
cv::Mat SyntheticPhoto(std::mt19937& rng) {
  std::uniform_real_distribution<float> frequency(0.005f, 0.05f), phase(0.0f, 6.2832f),
      amplitude(20.0f, 60.0f), base(60.0f, 190.0f);
  std::normal_distribution<float> noise(0.0f, 12.0f);
  cv::Mat image(kHeight, kWidth, CV_8UC3);
  for (int ch = 0; ch < 3; ++ch) {
    struct Wave {
      float fx, fy, phase, amplitude;
    };
    std::vector<Wave> waves;
    for (int k = 0; k < 3; ++k) {
      waves.push_back({frequency(rng), frequency(rng), phase(rng), amplitude(rng)});
    }
    const float level = base(rng);
    for (int y = 0; y < kHeight; ++y) {
      auto* row = image.ptr<cv::Vec3b>(y);
      for (int x = 0; x < kWidth; ++x) {
        float v = level + noise(rng);
        for (const Wave& w : waves) v += w.amplitude * std::sin(w.fx * x + w.fy * y + w.phase);
        row[x][ch] = cv::saturate_cast<uint8_t>(v);
      }
    }
  }
  return image;
}

}  // namespace

data::ImageList WriteSyntheticPhotoFolder(const std::string& dir, int classes, int per_class,
                                          uint32_t seed) {
  std::mt19937 rng(seed);
  data::ImageList list;
  for (int k = 0; k < classes; ++k) {
    const std::string name = "class" + std::to_string(k);
    std::filesystem::create_directories(dir + "/" + name);
    list.class_names.push_back(name);
    for (int i = 0; i < per_class; ++i) {
      const std::string path = dir + "/" + name + "/" + std::to_string(i) + ".jpg";
      if (!cv::imwrite(path, SyntheticPhoto(rng), {cv::IMWRITE_JPEG_QUALITY, 90})) {
        throw std::runtime_error("cannot write " + path);
      }
      list.paths.push_back(path);
      list.labels.push_back(k);
    }
  }
  return list;
}

}  // namespace hier::bench
