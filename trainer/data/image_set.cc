#include "trainer/data/image_set.h"

#include <c10/util/Exception.h>

#include <algorithm>
#include <filesystem>

#include "trainer/data/idx_reader.h"

namespace hier::data {
namespace {

std::string FindIdx(const std::string& dir, const std::string& stem) {
  for (const char* suffix : {"", ".gz"}) {
    const std::filesystem::path path = std::filesystem::path(dir) / (stem + suffix);
    std::error_code error;  // a path the file system refuses (too long, say) is not there
    if (std::filesystem::is_regular_file(path, error)) return path.string();
  }
  TORCH_CHECK(false, "fashion-mnist: ", dir, " has no ", stem, " (nor ", stem, ".gz)");
}

}  // namespace

const std::vector<std::string>& FashionMnistClassNames() {
  static const std::vector<std::string> names = {"T-shirt/top", "Trouser",   "Pullover", "Dress",
                                                 "Coat",        "Sandal",    "Shirt",    "Sneaker",
                                                 "Bag",         "Ankle boot"};
  return names;
}

IdxFiles FashionMnistFiles(const std::string& dir, Split split) {
  const std::string prefix = split == Split::kTrain ? "train" : "t10k";
  return {FindIdx(dir, prefix + "-images-idx3-ubyte"), FindIdx(dir, prefix + "-labels-idx1-ubyte")};
}

ImageSet LoadFashionMnist(const std::string& dir, Split split, int64_t limit) {
  const IdxFiles files = FashionMnistFiles(dir, split);
  IdxArray images = ReadIdx(files.images);
  const IdxArray labels = ReadIdx(files.labels);
  TORCH_CHECK(images.dims.size() == 3, "fashion-mnist: ", files.images,
              " must hold a 3-d array (count, height, width), got ", images.dims.size(), " dims");
  TORCH_CHECK(labels.dims.size() == 1 && labels.dims[0] == images.dims[0],
              "fashion-mnist: ", files.labels, " must hold one label per image of ", files.images,
              " (", images.dims[0], ")");
  ImageSet set;
  set.count = limit > 0 ? std::min(limit, images.dims[0]) : images.dims[0];
  set.height = images.dims[1];
  set.width = images.dims[2];
  images.data.resize(set.count * set.height * set.width);
  set.pixels = std::move(images.data);
  set.class_names = FashionMnistClassNames();
  set.labels.reserve(set.count);
  for (int64_t i = 0; i < set.count; ++i) {
    const int64_t label = labels.data[i];
    TORCH_CHECK(label < static_cast<int64_t>(set.class_names.size()),
                "fashion-mnist: ", files.labels, " item ", i, " has label ", label,
                ", expected 0..9");
    set.labels.push_back(label);
  }
  return set;
}

const ClassSplit& FashionMnistDisjointSplit() {
  static const ClassSplit split = {{0, 1, 2, 3, 5}, {4, 6, 7, 8, 9}};
  return split;
}

ImageSet KeepClasses(const ImageSet& set, const std::vector<int64_t>& classes) {
  std::vector<int64_t> new_label(set.class_names.size(), -1);
  ImageSet kept;
  kept.height = set.height;
  kept.width = set.width;
  for (size_t i = 0; i < classes.size(); ++i) {
    TORCH_CHECK(classes[i] >= 0 && classes[i] < static_cast<int64_t>(set.class_names.size()),
                "KeepClasses: class ", classes[i], " is not one of the set's ",
                set.class_names.size());
    new_label[classes[i]] = static_cast<int64_t>(i);
    kept.class_names.push_back(set.class_names[classes[i]]);
  }
  const int64_t pixels_per_image = set.height * set.width;
  for (int64_t i = 0; i < set.count; ++i) {
    const int64_t label = new_label[set.labels[i]];
    if (label < 0) continue;
    kept.labels.push_back(label);
    const auto first = set.pixels.begin() + i * pixels_per_image;
    kept.pixels.insert(kept.pixels.end(), first, first + pixels_per_image);
  }
  kept.count = static_cast<int64_t>(kept.labels.size());
  return kept;
}

}  // namespace hier::data
