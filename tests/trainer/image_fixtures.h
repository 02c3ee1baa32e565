// Writes the small image trees the data-set tests read: real images encoded by OpenCV, corrupt
// files and index files, creating folders as needed.
#pragma once

#include <cstdint>
#include <opencv2/core.hpp>
#include <string>

namespace hier::testing {

// A rows x cols image of `type` (CV_8UC1 or CV_8UC3) of uniform noise drawn from `seed`.
cv::Mat NoiseImage(int rows, int cols, int type, uint64_t seed);

// `image` encoded in the format its extension names, in any case (".JPG" is JPEG).
std::string EncodeImage(const cv::Mat& image, const std::string& extension);

// Writes `bytes` to `path`, creating the parent folders; throws std::runtime_error on failure.
void WriteFile(const std::string& path, const std::string& bytes);

// Writes `image` to `path` in the format of its extension.
void WriteImage(const std::string& path, const cv::Mat& image);

// Writes bytes that no codec decodes under an image's name, as real data sets hold.
void WriteCorruptImage(const std::string& path);

}  // namespace hier::testing
