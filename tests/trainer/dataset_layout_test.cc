#include "trainer/data/dataset_layout.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "tests/trainer/image_fixtures.h"
#include "tests/trainer/mat_writer.h"
#include "tests/trainer/temp_dir_test.h"
#include "trainer/data/mat_file.h"

namespace hier::testing {
namespace {

using data::DatasetSplits;
using data::ImageList;
using data::MatValue;
using data::OpenDataset;
using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;

// The message of the std::runtime_error `call` throws, or "no error". Other exception types
// escape and fail the test: the layout code promises std::runtime_error.
std::string RuntimeError(const std::function<void()>& call) {
  try {
    call();
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return "no error";
}

// Writes a miniature data set under `base`: images alternate gray and colour, and their sizes
// vary, so that nothing depends on one shape.
class Tree {
 public:
  explicit Tree(std::string base) : base_(std::move(base)) {}

  void Image(const std::string& relative) {
    const int type = count_ % 2 == 0 ? CV_8UC3 : CV_8UC1;
    WriteImage(Path(relative), NoiseImage(6 + count_ % 3, 8, type, count_));
    ++count_;
  }
  void Corrupt(const std::string& relative) { WriteCorruptImage(Path(relative)); }
  void Text(const std::string& relative, const std::string& text) {
    WriteFile(Path(relative), text);
  }
  std::string Path(const std::string& relative) const { return base_ + "/" + relative; }

 private:
  std::string base_;
  int count_ = 0;
};

// What one split should hold: paths relative to the tree and labels.
struct ExpectedList {
  std::vector<std::string> paths;
  std::vector<int64_t> labels;
};

struct LayoutCase {
  std::string name;    // the tree's folder under the test directory
  std::string layout;  // as OpenDataset takes it
  std::string open;    // what OpenDataset opens, relative to the tree ("" for the tree itself)
  std::function<void(Tree&)> build;
  ExpectedList train, query, gallery;
  std::vector<std::string> train_classes, eval_classes;
  std::string missing;  // the listed file that does not exist, relative to the tree
};

std::string Joined(const std::string& base, const std::string& relative) {
  return relative.empty() ? base : base + "/" + relative;
}

void ExpectList(const ImageList& list, const std::string& base, const ExpectedList& expected,
                const std::vector<std::string>& classes) {
  std::vector<std::string> paths;
  for (const std::string& path : expected.paths) paths.push_back(base + "/" + path);
  EXPECT_THAT(list.paths, ElementsAreArray(paths));
  EXPECT_THAT(list.labels, ElementsAreArray(expected.labels));
  EXPECT_THAT(list.class_names, ElementsAreArray(classes));
}

// Folder: sorted class folders split in halves; the corrupt image is listed (decoding is the image
// source's business), hidden entries and non-images are not.
void BuildFolder(Tree& tree) {
  for (const char* name : {"apple/1.png", "apple/2.jpg", "banana/1.png", "banana/2.jpg",
                           "cherry/1.png", "cherry/2.jpg", "date/1.png", ".cache/1.png"}) {
    tree.Image(name);
  }
  tree.Corrupt("date/broken.jpg");
  tree.Image("date/.hidden.png");
  tree.Text("date/notes.txt", "not an image");
  tree.Text("README.txt", "a file beside the class folders");
}

// Folder with train/ and test/: the folders are the splits; each has its own label space.
void BuildFolderTrainTest(Tree& tree) {
  for (const char* name : {"train/dog/a.png", "train/cat/a.jpg", "train/cat/b.png",
                           "test/fox/a.jpg", "test/emu/a.png", "test/emu/b.jpg"}) {
    tree.Image(name);
  }
  tree.Corrupt("test/fox/bad.jpg");
}

// List: classes in order of first appearance (not sorted), comments, a blank line, a CRLF line.
void BuildList(Tree& tree) {
  tree.Text("index.txt",
            "# path<TAB>label\n"
            "imgs/z1.png\tzebra\n"
            "imgs/a1.jpg\tant\n"
            "\n"
            "imgs/z2.jpg\tzebra\n"
            "imgs/gone.png\tant\n"
            "imgs/a2.png\tant\n"
            "imgs/m1.png\tmoose\n"
            "imgs/b1.jpg\tbee\n"
            "imgs/bad.jpg\tbee\n"
            "imgs/m2.jpg\tmoose\r\n");
  for (const char* name : {"imgs/z1.png", "imgs/a1.jpg", "imgs/z2.jpg", "imgs/a2.png",
                           "imgs/m1.png", "imgs/b1.jpg", "imgs/m2.jpg"}) {
    tree.Image(name);
  }
  tree.Corrupt("imgs/bad.jpg");
}

// List with query/gallery splits: one label space shared by both, whichever comes first.
void BuildListQueryGallery(Tree& tree) {
  tree.Text("split.txt",
            "train/a.png\tshirt\ttrain\n"
            "train/b.jpg\tshoe\ttrain\n"
            "train/c.png\tshirt\ttrain\n"
            "eval/q1.png\that\tquery\n"
            "eval/g1.jpg\that\tgallery\n"
            "eval/g2.png\tsock\tgallery\n"
            "eval/q2.jpg\tsock\tquery\n"
            "eval/gone.jpg\tsock\tgallery\n"
            "eval/bad.jpg\that\tgallery\n");
  for (const char* name : {"train/a.png", "train/b.jpg", "train/c.png", "eval/q1.png",
                           "eval/g1.jpg", "eval/g2.png", "eval/q2.jpg"}) {
    tree.Image(name);
  }
  tree.Corrupt("eval/bad.jpg");
}

// CUB: five classes, so the first three (rounded up) train.
void BuildCub(Tree& tree) {
  for (const char* name : {"images/001.Black_footed_Albatross/Black_Footed_Albatross_0001.jpg",
                           "images/001.Black_footed_Albatross/Black_Footed_Albatross_0002.png",
                           "images/002.Laysan_Albatross/Laysan_Albatross_0001.jpg",
                           "images/003.Sooty_Albatross/Sooty_Albatross_0001.jpg",
                           "images/004.Groove_billed_Ani/Groove_Billed_Ani_0001.jpg",
                           "images/005.Crested_Auklet/Crested_Auklet_0001.png",
                           "images/005.Crested_Auklet/Crested_Auklet_0002.jpg"}) {
    tree.Image(name);
  }
  tree.Corrupt("images/004.Groove_billed_Ani/Groove_Billed_Ani_0002.jpg");
  tree.Text("classes.txt", "1 001.Black_footed_Albatross\n");
}

MatValue Number(double value) {
  MatValue number;
  number.dims = {1, 1};
  number.numbers = {value};
  return number;
}

MatValue Text(const std::string& text) {
  MatValue value;
  value.kind = MatValue::Kind::kChar;
  value.dims = {1, static_cast<int64_t>(text.size())};
  value.text = text;
  return value;
}

std::string CarName(int number) { return "Make " + std::to_string(number) + " Sedan 2012"; }

// cars_annos.mat as the published file has it: annotations with bounding boxes, a class and a test
// flag per image, and (optionally) the 196 class names.
std::string CarsAnnotations(const std::vector<std::pair<std::string, double>>& images,
                            bool with_class_names) {
  MatValue annotations;
  annotations.kind = MatValue::Kind::kStruct;
  annotations.dims = {1, static_cast<int64_t>(images.size())};
  annotations.field_names = {"relative_im_path", "bbox_x1", "bbox_y1", "bbox_x2",
                             "bbox_y2",          "class",   "test"};
  for (size_t i = 0; i < images.size(); ++i) {
    // The test flag contradicts the class split on purpose: the reference ignores it.
    annotations.elements.push_back({Text(images[i].first), Number(1), Number(2), Number(5),
                                    Number(6), Number(images[i].second), Number(i % 2)});
  }
  std::vector<std::pair<std::string, MatValue>> variables = {{"annotations", annotations}};
  if (with_class_names) {
    MatValue names;
    names.kind = MatValue::Kind::kCell;
    names.dims = {1, 196};
    for (int number = 1; number <= 196; ++number) names.cells.push_back(Text(CarName(number)));
    variables.emplace_back("class_names", names);
  }
  MatWriteOptions options;
  options.numbers_as_uint8 = true;  // as MATLAB stores the class numbers
  options.small_elements = true;
  return WriteMat(variables, options);
}

// Cars: classes 1-98 train and 99-196 test, whatever the test flag says.
void BuildCars(Tree& tree) {
  tree.Text("cars_annos.mat", CarsAnnotations({{"car_ims/000001.jpg", 1},
                                               {"car_ims/000002.png", 1},
                                               {"car_ims/000003.jpg", 98},
                                               {"car_ims/000004.jpg", 98},
                                               {"car_ims/000005.jpg", 99},
                                               {"car_ims/000006.jpg", 196},
                                               {"car_ims/000007.png", 99},
                                               {"car_ims/000008.jpg", 196},
                                               {"car_ims/000009.jpg", 99}},
                                              /*with_class_names=*/true));
  for (const char* name :
       {"car_ims/000001.jpg", "car_ims/000002.png", "car_ims/000003.jpg", "car_ims/000004.jpg",
        "car_ims/000005.jpg", "car_ims/000006.jpg", "car_ims/000007.png"}) {
    tree.Image(name);
  }
  tree.Corrupt("car_ims/000009.jpg");
}

constexpr char kSopHeader[] = "image_id class_id super_class_id path\n";

// SOP: the two index files with their header; upper-case .JPG names as published.
void BuildSop(Tree& tree) {
  tree.Text("Ebay_train.txt", std::string(kSopHeader) +
                                  "1 1 1 bicycle_final/111085122871_0.JPG\n"
                                  "2 1 1 bicycle_final/111085122871_1.JPG\n"
                                  "3 2 1 bicycle_final/111265328556_0.JPG\n"
                                  "4 2 1 bicycle_final/111265328556_1.JPG\n");
  tree.Text("Ebay_test.txt", std::string(kSopHeader) +
                                 "1 11319 1 bicycle_final/251952414262_0.JPG\n"
                                 "2 11320 2 cabinet_final/110940573316_0.JPG\n"
                                 "3 11319 1 bicycle_final/251952414262_1.JPG\n"
                                 "4 11320 2 cabinet_final/110940573316_1.JPG\n"
                                 "5 11321 2 cabinet_final/111021406283_0.JPG\n"
                                 "\n");
  for (const char* name : {"bicycle_final/111085122871_0.JPG", "bicycle_final/111085122871_1.JPG",
                           "bicycle_final/111265328556_0.JPG", "bicycle_final/111265328556_1.JPG",
                           "bicycle_final/251952414262_0.JPG", "bicycle_final/251952414262_1.JPG",
                           "cabinet_final/110940573316_0.JPG"}) {
    tree.Image(name);
  }
  tree.Corrupt("cabinet_final/111021406283_0.JPG");
}

// In-Shop: a count line, a header, then blank-aligned rows; id_00000007 shows up in the gallery
// before the query.
void BuildInShop(Tree& tree) {
  tree.Text("list_eval_partition.txt",
            "10\n"
            "image_name item_id evaluation_status\n"
            "img/WOMEN/Dresses/id_00000002/02_1_front.jpg    id_00000002    train\n"
            "img/WOMEN/Dresses/id_00000002/02_2_side.jpg     id_00000002    train\n"
            "img/MEN/Denim/id_00000080/01_1_front.jpg        id_00000080    train\n"
            "img/MEN/Denim/id_00000080/01_2_side.png         id_00000080    train\n"
            "img/WOMEN/Blouses_Shirts/id_00000001/02_1_front.jpg id_00000001 query\n"
            "img/WOMEN/Blouses_Shirts/id_00000001/02_2_side.jpg  id_00000001 gallery\n"
            "img/MEN/Tees_Tanks/id_00000007/01_1_front.jpg   id_00000007    gallery\n"
            "img/MEN/Tees_Tanks/id_00000007/01_2_side.jpg    id_00000007    query\n"
            "img/MEN/Tees_Tanks/id_00000007/01_3_back.jpg    id_00000007    gallery\n"
            "img/WOMEN/Blouses_Shirts/id_00000001/02_3_back.jpg  id_00000001 gallery\n");
  for (const char* name :
       {"img/WOMEN/Dresses/id_00000002/02_1_front.jpg",
        "img/WOMEN/Dresses/id_00000002/02_2_side.jpg", "img/MEN/Denim/id_00000080/01_1_front.jpg",
        "img/MEN/Denim/id_00000080/01_2_side.png",
        "img/WOMEN/Blouses_Shirts/id_00000001/02_1_front.jpg",
        "img/WOMEN/Blouses_Shirts/id_00000001/02_2_side.jpg",
        "img/MEN/Tees_Tanks/id_00000007/01_1_front.jpg",
        "img/MEN/Tees_Tanks/id_00000007/01_2_side.jpg"}) {
    tree.Image(name);
  }
  tree.Corrupt("img/WOMEN/Blouses_Shirts/id_00000001/02_3_back.jpg");
}

// Each case: name, layout, open, build, train, query, gallery, train classes, evaluation classes,
// missing file.
std::vector<LayoutCase> LayoutCases() {
  return {
      {"folder",
       "folder",
       "",
       BuildFolder,
       {{"apple/1.png", "apple/2.jpg", "banana/1.png", "banana/2.jpg"}, {0, 0, 1, 1}},
       {{"cherry/1.png", "cherry/2.jpg", "date/1.png", "date/broken.jpg"}, {0, 0, 1, 1}},
       {},
       {"apple", "banana"},
       {"cherry", "date"},
       ""},
      {"folder_train_test",
       "folder",
       "",
       BuildFolderTrainTest,
       {{"train/cat/a.jpg", "train/cat/b.png", "train/dog/a.png"}, {0, 0, 1}},
       {{"test/emu/a.png", "test/emu/b.jpg", "test/fox/a.jpg", "test/fox/bad.jpg"}, {0, 0, 1, 1}},
       {},
       {"cat", "dog"},
       {"emu", "fox"},
       ""},
      {"list",
       "list",
       "index.txt",
       BuildList,
       {{"imgs/z1.png", "imgs/a1.jpg", "imgs/z2.jpg", "imgs/a2.png"}, {0, 1, 0, 1}},
       {{"imgs/m1.png", "imgs/b1.jpg", "imgs/bad.jpg", "imgs/m2.jpg"}, {0, 1, 1, 0}},
       {},
       {"zebra", "ant"},
       {"moose", "bee"},
       "imgs/gone.png"},
      {"list_query_gallery",
       "list",
       "split.txt",
       BuildListQueryGallery,
       {{"train/a.png", "train/b.jpg", "train/c.png"}, {0, 1, 0}},
       {{"eval/q1.png", "eval/q2.jpg"}, {0, 1}},
       {{"eval/g1.jpg", "eval/g2.png", "eval/bad.jpg"}, {0, 1, 0}},
       {"shirt", "shoe"},
       {"hat", "sock"},
       "eval/gone.jpg"},
      {"cub",
       "cub",
       "",
       BuildCub,
       {{"images/001.Black_footed_Albatross/Black_Footed_Albatross_0001.jpg",
         "images/001.Black_footed_Albatross/Black_Footed_Albatross_0002.png",
         "images/002.Laysan_Albatross/Laysan_Albatross_0001.jpg",
         "images/003.Sooty_Albatross/Sooty_Albatross_0001.jpg"},
        {0, 0, 1, 2}},
       {{"images/004.Groove_billed_Ani/Groove_Billed_Ani_0001.jpg",
         "images/004.Groove_billed_Ani/Groove_Billed_Ani_0002.jpg",
         "images/005.Crested_Auklet/Crested_Auklet_0001.png",
         "images/005.Crested_Auklet/Crested_Auklet_0002.jpg"},
        {0, 0, 1, 1}},
       {},
       {"001.Black_footed_Albatross", "002.Laysan_Albatross", "003.Sooty_Albatross"},
       {"004.Groove_billed_Ani", "005.Crested_Auklet"},
       ""},
      {"cars",
       "cars",
       "",
       BuildCars,
       {{"car_ims/000001.jpg", "car_ims/000002.png", "car_ims/000003.jpg", "car_ims/000004.jpg"},
        {0, 0, 1, 1}},
       {{"car_ims/000005.jpg", "car_ims/000006.jpg", "car_ims/000007.png", "car_ims/000009.jpg"},
        {0, 1, 0, 0}},
       {},
       {CarName(1), CarName(98)},
       {CarName(99), CarName(196)},
       "car_ims/000008.jpg"},
      {"sop",
       "sop",
       "",
       BuildSop,
       {{"bicycle_final/111085122871_0.JPG", "bicycle_final/111085122871_1.JPG",
         "bicycle_final/111265328556_0.JPG", "bicycle_final/111265328556_1.JPG"},
        {0, 0, 1, 1}},
       {{"bicycle_final/251952414262_0.JPG", "cabinet_final/110940573316_0.JPG",
         "bicycle_final/251952414262_1.JPG", "cabinet_final/111021406283_0.JPG"},
        {0, 1, 0, 2}},
       {},
       {"1", "2"},
       {"11319", "11320", "11321"},
       "cabinet_final/110940573316_1.JPG"},
      {"inshop",
       "inshop",
       "",
       BuildInShop,
       {{"img/WOMEN/Dresses/id_00000002/02_1_front.jpg",
         "img/WOMEN/Dresses/id_00000002/02_2_side.jpg", "img/MEN/Denim/id_00000080/01_1_front.jpg",
         "img/MEN/Denim/id_00000080/01_2_side.png"},
        {0, 0, 1, 1}},
       {{"img/WOMEN/Blouses_Shirts/id_00000001/02_1_front.jpg",
         "img/MEN/Tees_Tanks/id_00000007/01_2_side.jpg"},
        {0, 1}},
       {{"img/WOMEN/Blouses_Shirts/id_00000001/02_2_side.jpg",
         "img/MEN/Tees_Tanks/id_00000007/01_1_front.jpg",
         "img/WOMEN/Blouses_Shirts/id_00000001/02_3_back.jpg"},
        {0, 1, 0}},
       {"id_00000002", "id_00000080"},
       {"id_00000001", "id_00000007"},
       "img/MEN/Tees_Tanks/id_00000007/01_3_back.jpg"},
  };
}

using DatasetLayoutTest = TempDirTest;

TEST_F(DatasetLayoutTest, OpensEachLayoutIntoSplitsWithLabelsInFirstAppearanceOrder) {
  for (const LayoutCase& c : LayoutCases()) {
    SCOPED_TRACE(c.name);
    Tree tree(Path(c.name));
    c.build(tree);
    const std::string base = Path(c.name);
    const std::string root = Joined(base, c.open);
    EXPECT_EQ(data::MissingLayoutPart(c.layout, root), "");
    const DatasetSplits splits = OpenDataset(c.layout, root, /*strict=*/false);
    ExpectList(splits.train, base, c.train, c.train_classes);
    ExpectList(splits.query, base, c.query, c.eval_classes);
    // The gallery shares the query's label space, and has no classes when there is no gallery.
    ExpectList(splits.gallery, base, c.gallery,
               c.gallery.paths.empty() ? std::vector<std::string>{} : c.eval_classes);
    if (c.missing.empty()) {
      EXPECT_EQ(splits.skipped.count, 0);
      EXPECT_THAT(splits.skipped.examples, IsEmpty());
    } else {
      EXPECT_EQ(splits.skipped.count, 1);
      EXPECT_THAT(splits.skipped.examples, ElementsAre(HasSubstr(Path(c.name + "/" + c.missing))));
    }
  }
}

TEST_F(DatasetLayoutTest, StrictFailsNamingAMissingFileButLeavesCorruptOnesToTheDecoder) {
  for (const LayoutCase& c : LayoutCases()) {
    SCOPED_TRACE(c.name);
    Tree tree(Path(c.name));
    c.build(tree);
    const std::string root = Joined(Path(c.name), c.open);
    if (c.missing.empty()) {
      // Folder layouts list only what exists; the corrupt image is still listed.
      const DatasetSplits splits = OpenDataset(c.layout, root, /*strict=*/true);
      EXPECT_EQ(splits.train.size() + splits.query.size() + splits.gallery.size(),
                static_cast<int64_t>(c.train.paths.size() + c.query.paths.size() +
                                     c.gallery.paths.size()));
    } else {
      EXPECT_THAT(RuntimeError([&] { OpenDataset(c.layout, root, /*strict=*/true); }),
                  HasSubstr(Path(c.name + "/" + c.missing)));
    }
  }
}

TEST_F(DatasetLayoutTest, CarsWithoutClassNamesNamesClassesByNumber) {
  Tree tree(dir_);
  tree.Text("cars_annos.mat", CarsAnnotations({{"car_ims/a.jpg", 7},
                                               {"car_ims/b.jpg", 3},
                                               {"car_ims/c.jpg", 7},
                                               {"car_ims/d.jpg", 150}},
                                              /*with_class_names=*/false));
  for (const char* name : {"car_ims/a.jpg", "car_ims/b.jpg", "car_ims/c.jpg", "car_ims/d.jpg"}) {
    tree.Image(name);
  }
  const DatasetSplits splits = OpenDataset("cars", dir_, /*strict=*/true);
  EXPECT_THAT(splits.train.class_names, ElementsAre("class 7", "class 3"));
  EXPECT_THAT(splits.train.labels, ElementsAre(0, 1, 0));
  EXPECT_THAT(splits.query.class_names, ElementsAre("class 150"));
}

TEST_F(DatasetLayoutTest, FolderIgnoresHiddenEntriesAndNonImageFiles) {
  Tree tree(dir_);
  for (const char* name : {"a/1.png", "a/2.JPG", "a/.1.png", "a/._2.jpg", ".git/x.png",
                           ".thumbs/y.png", "b/1.jpeg", "b/sub/deeper.png"}) {
    tree.Image(name);
  }
  tree.Text("a/labels.txt", "a\n");
  tree.Text("a/Thumbs.db", "cache");
  tree.Text("b/image.jpg.part", "partial download");
  tree.Text("notes.md", "beside the class folders");
  const DatasetSplits splits = OpenDataset("folder", dir_, /*strict=*/false);
  // Upper-case extensions count; hidden files and folders, other files and nested folders do not.
  EXPECT_THAT(splits.train.paths, ElementsAre(Path("a/1.png"), Path("a/2.JPG")));
  EXPECT_THAT(splits.train.class_names, ElementsAre("a"));
  EXPECT_THAT(splits.query.paths, ElementsAre(Path("b/1.jpeg")));
  EXPECT_THAT(splits.query.class_names, ElementsAre("b"));
}

TEST_F(DatasetLayoutTest, ProtocolRecallKFollowsEachBenchmark) {
  const std::vector<std::pair<std::string, std::vector<int64_t>>> cases = {
      {"sop", {1, 10, 100, 1000}},    {"inshop", {1, 10, 20, 30}}, {"cub", {1, 2, 4, 8}},
      {"cars", {1, 2, 4, 8}},         {"folder", {1, 2, 4, 8}},    {"list", {1, 2, 4, 8}},
      {"fashion-mnist", {1, 2, 4, 8}}};
  for (const auto& [dataset, ks] : cases) {
    EXPECT_THAT(data::ProtocolRecallK(dataset), ElementsAreArray(ks)) << dataset;
  }
}

TEST_F(DatasetLayoutTest, FileLayoutsAreTheSixReadByOpenDataset) {
  EXPECT_THAT(data::FileLayouts(), ElementsAre("folder", "list", "cub", "cars", "sop", "inshop"));
}

TEST_F(DatasetLayoutTest, MissingLayoutPartNamesWhatIsAbsent) {
  Tree tree(dir_);
  tree.Text("a_file.txt", "x");
  std::filesystem::create_directories(Path("cars_as_dir/cars_annos.mat"));
  tree.Text("cub_with_file/images", "a file where a folder belongs");
  struct Case {
    std::string layout, root, missing;
  };
  const std::vector<Case> cases = {
      {"folder", Path("nowhere"), Path("nowhere")},
      {"folder", Path("a_file.txt"), Path("a_file.txt")},
      {"list", Path("nowhere.txt"), Path("nowhere.txt")},
      {"list", dir_, dir_},
      {"cub", dir_, Path("images")},
      {"cub", Path("cub_with_file"), Path("cub_with_file/images")},
      {"cars", dir_, Path("cars_annos.mat")},
      {"cars", Path("cars_as_dir"), Path("cars_as_dir/cars_annos.mat")},
      {"sop", dir_, Path("Ebay_train.txt")},
      {"inshop", dir_, Path("list_eval_partition.txt")},
      {"coco", dir_, "a known layout (not 'coco')"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.layout + " at " + c.root);
    EXPECT_EQ(data::MissingLayoutPart(c.layout, c.root), c.missing);
    // OpenDataset refuses the same up front, naming the missing part.
    EXPECT_THAT(RuntimeError([&] { OpenDataset(c.layout, c.root, /*strict=*/false); }),
                HasSubstr(c.missing));
  }
}

TEST_F(DatasetLayoutTest, MalformedIndexFilesFailNamingFileAndLine) {
  struct Case {
    std::string name, layout, open;
    std::map<std::string, std::string> files;
    std::string where;  // expected in the message, relative to the case's folder
  };
  const std::string two_columns_header = "image_name item_id evaluation_status\n";
  const std::vector<Case> cases = {
      {"list_one_column", "list", "l.txt", {{"l.txt", "# ok\na.png\tcat\nb.png\n"}}, "l.txt:3"},
      {"list_four_columns", "list", "l.txt", {{"l.txt", "a.png\tcat\ttrain\tx\n"}}, "l.txt:1"},
      {"list_empty_label", "list", "l.txt", {{"l.txt", "a.png\t\n"}}, "l.txt:1"},
      {"list_spaces_not_tabs", "list", "l.txt", {{"l.txt", "a.png cat\n"}}, "l.txt:1"},
      {"list_bad_split",
       "list",
       "l.txt",
       {{"l.txt", "a.png\tcat\ttrain\nb.png\tdog\tvalidation\n"}},
       "l.txt:2"},
      {"list_mixed_split",
       "list",
       "l.txt",
       {{"l.txt", "a.png\tcat\ttrain\nb.png\tdog\n"}},
       "l.txt: either every line names its split or none does"},
      {"sop_three_columns",
       "sop",
       "",
       {{"Ebay_train.txt", std::string(kSopHeader) + "1 1 1 a/1.JPG\n2 1 a/2.JPG\n"},
        {"Ebay_test.txt", kSopHeader}},
       "Ebay_train.txt:3"},
      {"sop_bad_test_row",
       "sop",
       "",
       {{"Ebay_train.txt", std::string(kSopHeader) + "1 1 1 a/1.JPG\n"},
        {"Ebay_test.txt", std::string(kSopHeader) + "1 2 1 b/1.JPG extra\n"}},
       "Ebay_test.txt:2"},
      {"sop_missing_test_file",
       "sop",
       "",
       {{"Ebay_train.txt", std::string(kSopHeader) + "1 1 1 a/1.JPG\n"}},
       "Ebay_test.txt: cannot read the file"},
      {"inshop_bad_status",
       "inshop",
       "",
       {{"list_eval_partition.txt",
         "2\n" + two_columns_header + "img/a.jpg id_1 train\nimg/b.jpg id_2 val\n"}},
       "list_eval_partition.txt:4"},
      {"inshop_two_columns",
       "inshop",
       "",
       {{"list_eval_partition.txt", "1\n" + two_columns_header + "img/a.jpg train\n"}},
       "list_eval_partition.txt:3"},
      {"cars_no_annotations",
       "cars",
       "",
       {{"cars_annos.mat", WriteMat({{"class_names", Text("x")}})}},
       "cars_annos.mat: holds no 'annotations'"},
      {"cars_class_zero",
       "cars",
       "",
       {{"cars_annos.mat", CarsAnnotations({{"car_ims/a.jpg", 1}, {"car_ims/b.jpg", 0}}, false)}},
       "cars_annos.mat: annotation 2 has no class number"},
      {"cars_not_a_mat_file", "cars", "", {{"cars_annos.mat", "plain text"}}, "cars_annos.mat"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    Tree tree(Path(c.name));
    for (const auto& [name, contents] : c.files) tree.Text(name, contents);
    EXPECT_THAT(RuntimeError(
                    [&] { OpenDataset(c.layout, Joined(Path(c.name), c.open), /*strict=*/false); }),
                HasSubstr(Path(c.name + "/" + c.where)));
  }
}

TEST_F(DatasetLayoutTest, RefusesUnusableSplits) {
  struct Case {
    std::string name, list, error;
  };
  // a.png, b.png, c.png and d.png exist; gone.png does not.
  const std::vector<Case> cases = {
      {"test_and_query", "a.png\tx\ttrain\nb.png\ty\ttest\nc.png\ty\tquery\nd.png\ty\tgallery\n",
       "mixes 'test' with 'query'/'gallery'"},
      {"no_training_image", "gone.png\tx\nb.png\ty\n", "no readable training images"},
      {"only_test_classes", "a.png\tx\ttest\nb.png\ty\ttest\n", "no readable training images"},
      {"no_evaluation_image", "a.png\tx\ngone.png\ty\n", "no readable evaluation"},
      {"query_without_gallery", "a.png\tx\ttrain\nb.png\ty\tquery\ngone.png\ty\tgallery\n",
       "query images but no gallery"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    Tree tree(Path(c.name));
    for (const char* name : {"a.png", "b.png", "c.png", "d.png"}) tree.Image(name);
    tree.Text("list.txt", c.list);
    const std::string root = Path(c.name + "/list.txt");
    const std::string message = RuntimeError([&] { OpenDataset("list", root, false); });
    EXPECT_THAT(message, HasSubstr(root));
    EXPECT_THAT(message, HasSubstr(c.error));
  }
}

TEST_F(DatasetLayoutTest, SkippedFilesCountsAllButKeepsTheFirstFiveExamples) {
  Tree tree(dir_);
  std::string list = "a.png\tx\nb.png\ty\n";
  for (int i = 0; i < 7; ++i) list += "gone" + std::to_string(i) + ".png\tx\n";
  tree.Text("list.txt", list);
  tree.Image("a.png");
  tree.Image("b.png");
  const DatasetSplits splits = OpenDataset("list", Path("list.txt"), /*strict=*/false);
  EXPECT_EQ(splits.skipped.count, 7);
  ASSERT_THAT(splits.skipped.examples, SizeIs(5));
  EXPECT_EQ(splits.skipped.examples[0], Path("gone0.png") + " (missing or unreadable)");
  EXPECT_THAT(splits.skipped.examples[4], HasSubstr(Path("gone4.png")));

  data::SkippedFiles merged;
  merged.Add("first.jpg", "not a decodable image");
  merged.Merge(splits.skipped);
  EXPECT_EQ(merged.count, 8);
  EXPECT_THAT(merged.examples, SizeIs(5));
  EXPECT_EQ(merged.examples[0], "first.jpg (not a decodable image)");
  EXPECT_THAT(merged.examples[4], HasSubstr(Path("gone3.png")));
}

}  // namespace
}  // namespace hier::testing
