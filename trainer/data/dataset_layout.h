// Where a data set's images lie and how they split into training and evaluation: an image folder,
// a list file, and the four deep-metric-learning benchmarks in their published layouts with their
// standard protocols (hier-method.md section 7).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace hier::data {

// Image files with a label each; labels index class_names.
struct ImageList {
  std::vector<std::string> paths;
  std::vector<int64_t> labels;
  std::vector<std::string> class_names;

  int64_t size() const { return static_cast<int64_t>(paths.size()); }
};

// Listed files that do not exist or cannot be opened: skipped, counted and reported.
struct SkippedFiles {
  int64_t count = 0;
  std::vector<std::string> examples;  // the first few, with the reason

  void Add(const std::string& path, const std::string& reason);
  void Merge(const SkippedFiles& other);
};

struct DatasetSplits {
  ImageList train;
  ImageList query;    // evaluation queries (and the gallery, when `gallery` is empty)
  ImageList gallery;  // In-Shop and list files with query/gallery rows; labels shared with query
  SkippedFiles skipped;
};

// The layouts OpenDataset reads:
//   folder  DIR/<class>/<image>; with DIR/train/ and DIR/test/ those are the splits, else the
//           sorted classes split in halves (the first half trains, as CUB's protocol).
//   list    a text file of "path<TAB>label[<TAB>split]" lines (split: train, test, query or
//           gallery; without it the classes split in halves in order of first appearance); paths
//           relative to the file's folder; '#' starts a comment.
//   cub     CUB_200_2011/: images/ classes 1-100 train, 101-200 test.
//   cars    cars_annos.mat + car_ims/: classes 1-98 train, 99-196 test.
//   sop     Stanford_Online_Products/: Ebay_train.txt, Ebay_test.txt.
//   inshop  In-Shop: list_eval_partition.txt + img/: train; query against gallery.
const std::vector<std::string>& FileLayouts();

// Reads `layout` at `root` (a folder, or the list file itself). Missing files are skipped and
// counted in `skipped`, or with `strict` fail. Throws std::runtime_error naming the file (and
// line) for a malformed or missing index file, and when a split ends up empty.
DatasetSplits OpenDataset(const std::string& layout, const std::string& root, bool strict);

// The Recall@K list of a data set's protocol: SOP 1,10,100,1000; In-Shop 1,10,20,30; else
// 1,2,4,8.
std::vector<int64_t> ProtocolRecallK(const std::string& dataset);

// The file or folder whose absence makes `layout` at `root` unusable, checked cheaply up front;
// empty when it is present.
std::string MissingLayoutPart(const std::string& layout, const std::string& root);

}  // namespace hier::data
