#include "tests/trainer/image_fixtures.h"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <opencv2/imgcodecs.hpp>
#include <stdexcept>
#include <vector>

namespace hier::testing {

cv::Mat NoiseImage(int rows, int cols, int type, uint64_t seed) {
  cv::Mat image(rows, cols, type);
  cv::RNG rng(seed);  // a local generator leaves cv::theRNG() alone
  rng.fill(image, cv::RNG::UNIFORM, 0, 256);
  return image;
}

std::string EncodeImage(const cv::Mat& image, const std::string& extension) {
  std::string lower = extension;
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
  std::vector<uchar> buffer;
  if (!cv::imencode(lower, image, buffer)) {
    throw std::runtime_error("image_fixtures: cannot encode " + extension);
  }
  return std::string(buffer.begin(), buffer.end());
}

void WriteFile(const std::string& path, const std::string& bytes) {
  const std::filesystem::path parent = std::filesystem::path(path).parent_path();
  if (!parent.empty()) std::filesystem::create_directories(parent);
  std::ofstream out(path, std::ios::binary);
  out << bytes;
  if (!out) throw std::runtime_error("image_fixtures: cannot write " + path);
}

void WriteImage(const std::string& path, const cv::Mat& image) {
  WriteFile(path, EncodeImage(image, std::filesystem::path(path).extension().string()));
}

void WriteCorruptImage(const std::string& path) {
  WriteFile(path, "these bytes are no JPEG, PNG or any other image format");
}

}  // namespace hier::testing
