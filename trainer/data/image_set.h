// Grayscale image sets held in memory (the 28x28 default data), loaded from Fashion-MNIST's IDX
// files.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace hier::data {

// `count` images of height x width bytes, row-major and contiguous, with a label each.
struct ImageSet {
  std::vector<uint8_t> pixels;
  std::vector<int64_t> labels;
  int64_t count = 0;
  int64_t height = 0;
  int64_t width = 0;
  std::vector<std::string> class_names;  // index = label
};

enum class Split { kTrain, kTest };

struct IdxFiles {
  std::string images;
  std::string labels;
};

// The split's files under `dir` ("train-images-idx3-ubyte", "t10k-labels-idx1-ubyte", ... each
// plain or ".gz"); throws c10::Error naming the directory and the missing file.
IdxFiles FashionMnistFiles(const std::string& dir, Split split);

// Loads a Fashion-MNIST split; `limit` > 0 keeps only its first `limit` images. Throws when the
// files disagree (counts, label range) or are malformed.
ImageSet LoadFashionMnist(const std::string& dir, Split split, int64_t limit = 0);

// "T-shirt/top", "Trouser", ... in label order.
const std::vector<std::string>& FashionMnistClassNames();

// Fashion-MNIST's class-disjoint protocol: train on T-shirt/top, Trouser, Pullover, Dress and
// Sandal; retrieve among Coat, Shirt, Sneaker, Bag and Ankle boot (test images). Both halves hold
// tops and footwear, so the unseen classes share super-categories with the seen ones.
struct ClassSplit {
  std::vector<int64_t> train;
  std::vector<int64_t> test;
};
const ClassSplit& FashionMnistDisjointSplit();

// The images of `set` whose label is in `classes`, relabelled by position in `classes` (so
// labels are 0..classes.size()-1) with the matching class names. Throws for an unknown label.
ImageSet KeepClasses(const ImageSet& set, const std::vector<int64_t>& classes);

}  // namespace hier::data
