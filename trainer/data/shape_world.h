// A generated image data set with a known four-level class tree (family > shape > colour >
// texture, 256 leaf classes) and a class-disjoint split, for deep-metric-learning experiments that
// need many classes and a ground-truth hierarchy to score against.
//
// The tree: 4 families of 4 shapes each, every shape in 8 colours, every shape-colour in 2
// textures.
//   round    disc, ring, ellipse, half-disc
//   angular  triangle, square, pentagon, hexagon
//   crossed  plus, y-cross, asterisk, star
//   bars     bar, l-shape, t-shape, arrow
//   colours  red, orange, yellow, green, cyan, blue, purple, magenta
//   textures solid, striped
// A class is named "<family>-<shape>-<colour>-<texture>" ("round-disc-red-solid"); its label is
// ((shape * 8 + colour) * 2 + texture) with shapes numbered 0..15 in the order above. Every shape
// is mirror-symmetric up to rotation, so horizontal-flip augmentation keeps the class.
//
// The split: shape s trains in colours s .. s + 3 (mod 8, both textures) and is retrieved in the
// other four, so each half holds 128 classes (a batch of 180 can take 90 classes x 2 images, as
// the reference's), every family, every shape and every colour, and the retrieval classes are
// shape-colour pairs never seen in training.
//
// Each image varies within its class: position, size (the shape's bounding circle spans 0.45 to
// 0.8 of the frame), full rotation, hue (+-10 degrees), saturation and brightness, a gray
// background with a gentle gradient (kept apart from the shape's brightness), stripe angle and
// phase, and pixel noise; edges are anti-aliased by 3 x 3 supersampling. An image depends only on
// (seed, label, index) through a SplitMix64 generator, so the same options give the same bytes
// whatever the thread count (sin and cos come from the C library, so another libm could move a
// rare byte by one).
//
// Errors throw c10::Error naming the option or path. Functions are thread-safe; two writers must
// not share one directory.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace hier::data {

inline constexpr int kShapeWorldClasses = 256;

struct ShapeWorldOptions {
  uint64_t seed = 0;
  int64_t images_per_class = 40;  // 1 to 100000
  int image_size = 32;            // width and height in pixels, 8 to 1024
  int threads = 0;                // rendering threads; 0: one per hardware thread
};

// One leaf class of the tree.
struct ShapeClass {
  std::string name;  // "round-disc-red-solid"
  std::string family, shape, colour, texture;
  bool train = false;  // in the training half; else in the retrieval (test) half
};

// The 256 classes, indexed by label.
const std::vector<ShapeClass>& ShapeWorldClasses();

// The class tree as JSON in the format analysis::ClassTree reads (class_tree.h): families map to
// shapes ("round-disc"), shapes to shape-colours ("round-disc-red"), and those to arrays of their
// two class names; everything in label order.
std::string ShapeWorldTreeJson();

// Image `index` of class `label`: image_size * image_size RGB pixels, 3 bytes each, rows
// contiguous.
std::vector<uint8_t> RenderShapeImage(int label, int64_t index, const ShapeWorldOptions& options);

// What WriteShapeWorld wrote.
struct ShapeWorldFiles {
  std::string image_dir, list_file, tree_file;
  int64_t train_images = 0, test_images = 0;
};

// Writes the data set under `dir` (created if missing; it must be empty or hold an earlier shape
// world, which is replaced):
//   images/<class name>/<index>.png  (index zero-padded to 4 digits)
//   class_tree.json                  ShapeWorldTreeJson()
//   shapes.tsv                       "images/<class>/<index>.png<TAB><class name><TAB>train|test"
//                                    lines in label order: the `list` layout of dataset_layout.h,
//                                    whose label column names the class, as the tree does
// Images are rendered into a hidden staging folder, synced and renamed into place; the list file
// is removed first and written last (atomically), so no list file ever names a missing image.
ShapeWorldFiles WriteShapeWorld(const std::string& dir, const ShapeWorldOptions& options);

}  // namespace hier::data
