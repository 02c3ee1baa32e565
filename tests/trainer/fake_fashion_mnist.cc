#include "tests/trainer/fake_fashion_mnist.h"

#include <fstream>
#include <random>
#include <vector>

namespace hier::testing {
namespace {

constexpr int kSide = 28;
constexpr int kClasses = 10;

void PutBigEndian(std::string& out, uint32_t value) {
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<char>(value >> shift));
}

void WriteSplit(const std::string& dir, const std::string& prefix, int64_t per_class,
                std::mt19937& rng) {
  const uint32_t count = static_cast<uint32_t>(per_class * kClasses);
  std::string images = {0, 0, 8, 3}, labels = {0, 0, 8, 1};
  PutBigEndian(images, count);
  PutBigEndian(images, kSide);
  PutBigEndian(images, kSide);
  PutBigEndian(labels, count);
  std::uniform_int_distribution<int> noise(0, 60), jitter(-1, 1);
  for (uint32_t i = 0; i < count; ++i) {
    const int c = static_cast<int>(i % kClasses);
    const int line = 4 + 4 * (c % 5) + jitter(rng);
    const bool vertical = c >= 5;
    for (int y = 0; y < kSide; ++y) {
      for (int x = 0; x < kSide; ++x) {
        const int across = vertical ? x : y;
        const bool bar = across >= line && across < line + 3;
        images.push_back(static_cast<char>(bar ? 255 - noise(rng) : noise(rng)));
      }
    }
    labels.push_back(static_cast<char>(c));
  }
  std::ofstream(dir + "/" + prefix + "-images-idx3-ubyte", std::ios::binary) << images;
  std::ofstream(dir + "/" + prefix + "-labels-idx1-ubyte", std::ios::binary) << labels;
}

}  // namespace

void WriteFakeFashionMnist(const std::string& dir, int64_t train_per_class,
                           int64_t test_per_class) {
  std::mt19937 rng(7);
  WriteSplit(dir, "train", train_per_class, rng);
  WriteSplit(dir, "t10k", test_per_class, rng);
}

}  // namespace hier::testing
