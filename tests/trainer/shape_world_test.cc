#include "trainer/data/shape_world.h"

#include <c10/util/Exception.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>
#include <set>
#include <string>
#include <vector>

#include "tests/trainer/temp_dir_test.h"
#include "trainer/data/dataset_layout.h"
#include "trainer/io/atomic_file.h"

namespace hier::testing {
namespace {

namespace fs = std::filesystem;

using data::ShapeClass;
using data::ShapeWorldClasses;
using data::ShapeWorldOptions;
using ::testing::HasSubstr;

// The message of the c10::Error `call` throws, or "no error".
std::string ErrorOf(const std::function<void()>& call) {
  try {
    call();
  } catch (const c10::Error& e) {
    return e.what_without_backtrace();
  }
  return "no error";
}

// Every regular file below `dir` with its bytes, by relative path.
std::map<std::string, std::string> FilesBelow(const std::string& dir) {
  std::map<std::string, std::string> files;
  for (const auto& entry : fs::recursive_directory_iterator(dir)) {
    if (entry.is_regular_file()) {
      files[fs::relative(entry.path(), dir).string()] = io::ReadFile(entry.path().string());
    }
  }
  return files;
}

// The class names that are leaves of a class-tree JSON value, in file order.
void CollectLeaves(const nlohmann::ordered_json& node, std::vector<std::string>& leaves) {
  if (node.is_string()) {
    leaves.push_back(node.get<std::string>());
    return;
  }
  for (const auto& child : node) CollectLeaves(child, leaves);
}

ShapeWorldOptions SmallOptions(uint64_t seed) {
  ShapeWorldOptions options;
  options.seed = seed;
  options.images_per_class = 2;
  options.threads = 2;
  return options;
}

class ShapeWorldTest : public TempDirTest {};

TEST(ShapeWorldClassesTest, SplitsHalvesThatEachHoldEveryFamilyShapeAndColour) {
  const std::vector<ShapeClass>& classes = ShapeWorldClasses();
  ASSERT_EQ(classes.size(), 256u);
  std::set<std::string> names;
  std::map<bool, std::set<std::string>> families, shapes, colours;
  std::map<std::string, std::set<bool>> textures_split;  // shape-colour -> sides of its textures
  int train = 0;
  for (const ShapeClass& shape_class : classes) {
    names.insert(shape_class.name);
    EXPECT_EQ(shape_class.name, shape_class.family + "-" + shape_class.shape + "-" +
                                    shape_class.colour + "-" + shape_class.texture);
    families[shape_class.train].insert(shape_class.family);
    shapes[shape_class.train].insert(shape_class.shape);
    colours[shape_class.train].insert(shape_class.colour);
    textures_split[shape_class.shape + shape_class.colour].insert(shape_class.train);
    train += shape_class.train;
  }
  EXPECT_EQ(names.size(), 256u);
  EXPECT_EQ(train, 128);
  for (const bool side : {true, false}) {
    EXPECT_EQ(families[side].size(), 4u) << side;
    EXPECT_EQ(shapes[side].size(), 16u) << side;
    EXPECT_EQ(colours[side].size(), 8u) << side;
  }
  for (const auto& [shape_colour, sides] : textures_split) {
    EXPECT_EQ(sides.size(), 1u) << shape_colour << ": both textures go to one side";
  }
  EXPECT_EQ(classes[0].name, "round-disc-red-solid");
  EXPECT_EQ(classes[1].name, "round-disc-red-striped");
  EXPECT_EQ(classes[255].name, "bars-arrow-magenta-striped");
}

TEST(ShapeWorldClassesTest, TreeLeavesAreTheClassesInLabelOrder) {
  const auto tree = nlohmann::ordered_json::parse(data::ShapeWorldTreeJson());
  ASSERT_TRUE(tree.is_object());
  EXPECT_EQ(tree.size(), 4u);
  EXPECT_EQ(tree.at("round").at("round-disc").at("round-disc-red"),
            nlohmann::ordered_json({"round-disc-red-solid", "round-disc-red-striped"}));
  // Family, shape and shape-colour objects, then arrays of class names.
  std::vector<std::string> leaves;
  for (const auto& [family, family_node] : tree.items()) {
    for (const auto& [shape, shape_node] : family_node.items()) {
      for (const auto& [colour, members] : shape_node.items()) {
        ASSERT_TRUE(members.is_array()) << colour;
        for (const auto& member : members) leaves.push_back(member.get<std::string>());
      }
    }
  }
  std::vector<std::string> names;
  for (const ShapeClass& shape_class : ShapeWorldClasses()) names.push_back(shape_class.name);
  EXPECT_EQ(leaves, names);
}

TEST(ShapeWorldRenderTest, SameSeedSameBytesOtherSeedOtherImage) {
  const ShapeWorldOptions a = SmallOptions(7);
  const ShapeWorldOptions b = SmallOptions(8);
  for (const int label : {0, 37, 127}) {
    EXPECT_EQ(data::RenderShapeImage(label, 3, a), data::RenderShapeImage(label, 3, a));
    EXPECT_NE(data::RenderShapeImage(label, 3, a), data::RenderShapeImage(label, 3, b));
    EXPECT_NE(data::RenderShapeImage(label, 3, a), data::RenderShapeImage(label, 4, a));
  }
}

TEST(ShapeWorldRenderTest, RefusesBadOptionsNamingThem) {
  const std::vector<std::pair<std::function<void(ShapeWorldOptions&)>, std::string>> cases = {
      {[](ShapeWorldOptions& o) { o.image_size = 7; }, "image_size"},
      {[](ShapeWorldOptions& o) { o.image_size = 2000; }, "image_size"},
      {[](ShapeWorldOptions& o) { o.images_per_class = 0; }, "images_per_class"},
      {[](ShapeWorldOptions& o) { o.threads = -1; }, "threads"},
  };
  for (const auto& [change, name] : cases) {
    ShapeWorldOptions options;
    change(options);
    EXPECT_THAT(ErrorOf([&] { data::RenderShapeImage(0, 0, options); }), HasSubstr(name));
  }
  EXPECT_THAT(ErrorOf([] { data::RenderShapeImage(256, 0, {}); }), HasSubstr("label"));
  EXPECT_THAT(ErrorOf([] { data::RenderShapeImage(0, -1, {}); }), HasSubstr("index"));
}

TEST_F(ShapeWorldTest, SameSeedWritesIdenticalFilesAndOtherSeedsDiffer) {
  data::WriteShapeWorld(Path("a"), SmallOptions(5));
  ShapeWorldOptions one_thread = SmallOptions(5);
  one_thread.threads = 1;
  data::WriteShapeWorld(Path("b"), one_thread);
  data::WriteShapeWorld(Path("c"), SmallOptions(6));
  const auto a = FilesBelow(Path("a")), b = FilesBelow(Path("b")), c = FilesBelow(Path("c"));
  EXPECT_EQ(a.size(), 256u * 2 + 2);
  EXPECT_TRUE(a == b) << "the thread count changed the bytes";
  ASSERT_EQ(a.size(), c.size());
  int differing_images = 0;
  for (const auto& [path, bytes] : a) differing_images += c.at(path) != bytes;
  EXPECT_EQ(differing_images, 256 * 2);  // every image; the list and tree stay the same
}

TEST_F(ShapeWorldTest, ImagesDecodeAtTheirSizeAndShowAShape) {
  ShapeWorldOptions options = SmallOptions(1);
  options.image_size = 24;
  const data::ShapeWorldFiles files = data::WriteShapeWorld(dir_, options);
  EXPECT_EQ(files.image_dir, Path("images"));
  for (const ShapeClass& shape_class : ShapeWorldClasses()) {
    const std::string path = files.image_dir + "/" + shape_class.name + "/0001.png";
    const cv::Mat image = cv::imread(path, cv::IMREAD_COLOR);
    ASSERT_FALSE(image.empty()) << path;
    EXPECT_EQ(image.rows, 24);
    EXPECT_EQ(image.cols, 24);
    EXPECT_EQ(image.channels(), 3);
    double low = 0, high = 0;
    cv::minMaxLoc(image.reshape(1), &low, &high);
    EXPECT_GT(high - low, 60) << path << " looks blank";
  }
}

TEST_F(ShapeWorldTest, ListOpensWithTheListLayoutAndMatchesTheTree) {
  const data::ShapeWorldFiles files = data::WriteShapeWorld(dir_, SmallOptions(2));
  EXPECT_EQ(files.train_images, 256);
  EXPECT_EQ(files.test_images, 256);
  const data::DatasetSplits splits = data::OpenDataset("list", files.list_file, /*strict=*/true);
  EXPECT_EQ(splits.train.class_names.size(), 128u);
  EXPECT_EQ(splits.query.class_names.size(), 128u);
  EXPECT_EQ(splits.train.size(), 256);
  EXPECT_EQ(splits.query.size(), 256);
  EXPECT_EQ(splits.skipped.count, 0);

  std::vector<std::string> leaves;
  CollectLeaves(nlohmann::ordered_json::parse(io::ReadFile(files.tree_file)), leaves);
  const std::multiset<std::string> leaf_set(leaves.begin(), leaves.end());
  std::multiset<std::string> listed(splits.train.class_names.begin(),
                                    splits.train.class_names.end());
  listed.insert(splits.query.class_names.begin(), splits.query.class_names.end());
  EXPECT_EQ(leaf_set, listed);
  for (const std::string& name : listed) EXPECT_EQ(leaf_set.count(name), 1u) << name;
}

TEST_F(ShapeWorldTest, ReplacesAnEarlierShapeWorldButNoOtherFolder) {
  ShapeWorldOptions options = SmallOptions(3);
  options.images_per_class = 3;
  data::WriteShapeWorld(dir_, options);
  ASSERT_TRUE(fs::exists(Path("images/round-disc-red-solid/0002.png")));
  data::WriteShapeWorld(dir_, SmallOptions(3));
  EXPECT_FALSE(fs::exists(Path("images/round-disc-red-solid/0002.png")));
  EXPECT_EQ(data::OpenDataset("list", Path("shapes.tsv"), true).train.size(), 256);
  for (const auto& entry : fs::directory_iterator(dir_)) {
    EXPECT_NE(entry.path().filename().string().rfind(io::kTempFilePrefix, 0), 0u)
        << entry.path() << " left behind";
  }

  fs::create_directory(Path("other"));
  std::ofstream(Path("other/notes.txt")) << "mine";
  std::ofstream(Path("other/.tmp-1-0")) << "someone else's temp file";
  EXPECT_THAT(ErrorOf([&] { data::WriteShapeWorld(Path("other"), SmallOptions(3)); }),
              HasSubstr("notes.txt"));
  EXPECT_TRUE(fs::exists(Path("other/notes.txt")));
  EXPECT_TRUE(fs::exists(Path("other/.tmp-1-0")));
}

TEST_F(ShapeWorldTest, RefusesAnUnwritableDirAndBadOptions) {
  std::ofstream(Path("file")) << "x";
  EXPECT_THAT(ErrorOf([&] { data::WriteShapeWorld(Path("file/sub"), SmallOptions(0)); }),
              HasSubstr("output dir"));
  ShapeWorldOptions options = SmallOptions(0);
  options.images_per_class = 0;
  EXPECT_THAT(ErrorOf([&] { data::WriteShapeWorld(Path("new"), options); }),
              HasSubstr("images_per_class"));
  options = SmallOptions(0);
  options.image_size = 4;
  EXPECT_THAT(ErrorOf([&] { data::WriteShapeWorld(Path("new"), options); }),
              HasSubstr("image_size"));
  EXPECT_FALSE(fs::exists(Path("new")));
}

}  // namespace
}  // namespace hier::testing
