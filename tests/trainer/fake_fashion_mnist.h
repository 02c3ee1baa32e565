// A small synthetic stand-in for Fashion-MNIST written in its IDX layout, so trainer tests run in
// seconds on data whose classes are learnable.
#pragma once

#include <cstdint>
#include <string>

namespace hier::testing {

// Writes train-/t10k- images and labels (plain IDX) into `dir`: 10 classes, class c drawn as a
// bright bar whose position and orientation depend on c, plus per-image noise.
void WriteFakeFashionMnist(const std::string& dir, int64_t train_per_class, int64_t test_per_class);

}  // namespace hier::testing
