#include "trainer/analysis/class_tree.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "tests/core/error_message.h"
#include "tests/trainer/temp_dir_test.h"

namespace hier::testing {
namespace {

using analysis::ClassTree;
using analysis::LabelHierarchy;

// Depth 3, unbalanced: "car" sits right under "vehicle", beside the group "boat".
constexpr char kThreeLevels[] = R"({
  "animal": {"bird": ["owl", "crow"], "cat": ["lion", "tiger"]},
  "vehicle": ["car", {"boat": ["ferry", "canoe"]}]
})";

struct LcaCase {
  const char* a;
  const char* b;
  int64_t height;
};

// Checks LcaHeight both ways round for labels named in `names`.
void ExpectLcaHeights(const LabelHierarchy& hierarchy, const std::vector<std::string>& names,
                      const std::vector<LcaCase>& cases) {
  const auto label = [&](const std::string& name) {
    return static_cast<int64_t>(std::find(names.begin(), names.end(), name) - names.begin());
  };
  for (const LcaCase& test_case : cases) {
    SCOPED_TRACE(std::string(test_case.a) + ", " + test_case.b);
    EXPECT_EQ(hierarchy.LcaHeight(label(test_case.a), label(test_case.b)), test_case.height);
    EXPECT_EQ(hierarchy.LcaHeight(label(test_case.b), label(test_case.a)), test_case.height);
  }
}

TEST(ClassTreeTest, ReadsTheFashionMnistGroups) {
  const ClassTree tree =
      ClassTree::Load(std::string(HIER_SOURCE_DIR) + "/trainer/data/fashion_mnist_groups.json");
  EXPECT_EQ(tree.TopGroups(), (std::vector<std::string>{"tops", "footwear", "trousers", "bags"}));
  EXPECT_EQ(tree.ClassNames(),
            (std::vector<std::string>{"T-shirt/top", "Pullover", "Coat", "Shirt", "Dress", "Sandal",
                                      "Sneaker", "Ankle boot", "Trouser", "Bag"}));
  EXPECT_EQ(tree.nodes().size(), 1u + 4 + 10);
  EXPECT_EQ(tree.Height(), 2);
  // The data set's label order.
  const std::vector<std::string> names = {"T-shirt/top", "Trouser",   "Pullover", "Dress",
                                          "Coat",        "Sandal",    "Shirt",    "Sneaker",
                                          "Bag",         "Ankle boot"};
  const LabelHierarchy hierarchy = tree.ForLabels(names);
  ASSERT_EQ(hierarchy.num_labels(), 10);
  const std::vector<int64_t> expected_super = {0, 2, 0, 0, 0, 1, 0, 1, 3, 1};
  for (int64_t label = 0; label < 10; ++label) {
    EXPECT_EQ(hierarchy.SuperCategory(label), expected_super[label]) << names[label];
  }
  ExpectLcaHeights(hierarchy, names,
                   {{"Coat", "Coat", 0},
                    {"T-shirt/top", "Pullover", 1},
                    {"Sandal", "Ankle boot", 1},
                    {"T-shirt/top", "Sandal", 2},
                    {"Trouser", "Bag", 2}});
}

TEST(ClassTreeTest, OneLevelTrees) {
  // All classes in one group: they meet at that group, height 1. One class per group: they meet
  // at the root, height 2.
  const LabelHierarchy one_group =
      ClassTree::Parse(R"({"all": ["a", "b", "c"]})", "one group").ForLabels({"a", "b", "c"});
  ExpectLcaHeights(one_group, {"a", "b", "c"}, {{"a", "a", 0}, {"a", "b", 1}, {"b", "c", 1}});
  EXPECT_EQ(one_group.SuperCategory(2), 0);
  const ClassTree singletons = ClassTree::Parse(R"({"x": ["a"], "y": ["b"]})", "singletons");
  EXPECT_EQ(singletons.Height(), 2);
  const LabelHierarchy apart = singletons.ForLabels({"b", "a"});
  ExpectLcaHeights(apart, {"b", "a"}, {{"a", "b", 2}});
  EXPECT_EQ(apart.SuperCategory(0), 1);
  EXPECT_EQ(apart.SuperCategory(1), 0);
}

TEST(ClassTreeTest, ThreeLevelTree) {
  const ClassTree tree = ClassTree::Parse(kThreeLevels, "three levels");
  EXPECT_EQ(tree.Height(), 3);
  EXPECT_EQ(tree.TopGroups(), (std::vector<std::string>{"animal", "vehicle"}));
  EXPECT_EQ(tree.ClassNames(),
            (std::vector<std::string>{"owl", "crow", "lion", "tiger", "car", "ferry", "canoe"}));
  // Depth-first, file order: root, animal, bird, owl, crow, cat, lion, tiger, vehicle, car, boat,
  // ferry, canoe.
  const struct {
    const char* name;
    int64_t parent;
    bool is_class;
    int64_t height;
  } expected[] = {{"", -1, false, 3},    {"animal", 0, false, 2}, {"bird", 1, false, 1},
                  {"owl", 2, true, 0},   {"crow", 2, true, 0},    {"cat", 1, false, 1},
                  {"lion", 5, true, 0},  {"tiger", 5, true, 0},   {"vehicle", 0, false, 2},
                  {"car", 8, true, 0},   {"boat", 8, false, 1},   {"ferry", 10, true, 0},
                  {"canoe", 10, true, 0}};
  ASSERT_EQ(tree.nodes().size(), std::size(expected));
  for (size_t i = 0; i < std::size(expected); ++i) {
    SCOPED_TRACE(i);
    EXPECT_EQ(tree.nodes()[i].name, expected[i].name);
    EXPECT_EQ(tree.nodes()[i].parent, expected[i].parent);
    EXPECT_EQ(tree.nodes()[i].is_class, expected[i].is_class);
    EXPECT_EQ(tree.nodes()[i].height, expected[i].height);
  }
  // A subset of the classes, in another order.
  const std::vector<std::string> names = {"canoe", "owl", "car", "lion", "crow", "ferry"};
  const LabelHierarchy hierarchy = tree.ForLabels(names);
  EXPECT_EQ(hierarchy.num_labels(), 6);
  ExpectLcaHeights(hierarchy, names,
                   {{"owl", "owl", 0},
                    {"owl", "crow", 1},
                    {"ferry", "canoe", 1},
                    {"owl", "lion", 2},
                    {"car", "ferry", 2},
                    {"owl", "car", 3},
                    {"lion", "canoe", 3}});
  const std::vector<int64_t> expected_super = {1, 0, 1, 0, 0, 1};
  for (int64_t label = 0; label < 6; ++label) {
    EXPECT_EQ(hierarchy.SuperCategory(label), expected_super[label]) << names[label];
  }
}

TEST(ClassTreeTest, RefusesMalformedFiles) {
  const struct {
    const char* name;
    const char* json;
    const char* message;
  } cases[] = {
      {"top-level array", R"(["a", "b"])", "must be a JSON object mapping group names"},
      {"no groups", "{}", "groups.json has no groups"},
      {"empty array", R"({"g": ["a"], "h": []})", "group 'h' is empty"},
      {"empty object", R"({"g": {"h": {}}})", "group 'g > h' is empty"},
      {"a number among classes", R"({"g": ["a", 3]})",
       "group 'g' holds 3, which is neither a class name (a string) nor an object of groups"},
      {"an empty object among classes", R"({"g": ["a", {}]})", "group 'g' holds {}"},
      {"a string as members", R"({"g": "a"})",
       "group 'g' must hold an array or an object, got a string"},
      {"class twice", R"({"g": ["a"], "h": {"i": ["b", "a"]}})",
       "class 'a' appears twice (again in group 'h > i')"},
      {"group name twice", R"({"g": ["a"], "g": ["b"]})",
       "the name 'g' appears twice in one object"},
      {"empty class name", R"({"g": [""]})", "group 'g' holds an empty class name"},
      {"not JSON", R"({"g": ["a")", "groups.json is not valid JSON"},
  };
  for (const auto& test_case : cases) {
    SCOPED_TRACE(test_case.name);
    const std::string message =
        ErrorMessage([&] { ClassTree::Parse(test_case.json, "groups.json"); });
    EXPECT_NE(message.find(test_case.message), std::string::npos) << message;
    EXPECT_NE(message.find("ClassTree::Parse: groups.json"), std::string::npos) << message;
  }
}

TEST(ClassTreeTest, RefusesLabelsOutsideTheTree) {
  const ClassTree tree = ClassTree::Parse(kThreeLevels, "three levels");
  EXPECT_NE(ErrorMessage([&] {
              tree.ForLabels({"owl", "zebra", "yak"});
            })
                .find("ClassTree::ForLabels: class 'zebra' (label 1) is not in the class tree "
                      "three levels"),
            std::string::npos);
  EXPECT_NE(ErrorMessage([&] {
              tree.ForLabels({"owl", "crow", "owl"});
            }).find("class 'owl' (label 2) is named twice"),
            std::string::npos);
  const LabelHierarchy hierarchy = tree.ForLabels({"owl", "crow"});
  EXPECT_NE(ErrorMessage([&] {
              hierarchy.LcaHeight(0, 2);
            }).find("LabelHierarchy: b must be in [0, 2), got 2"),
            std::string::npos);
  EXPECT_NE(ErrorMessage([&] {
              hierarchy.SuperCategory(-1);
            }).find("LabelHierarchy: label must be in [0, 2), got -1"),
            std::string::npos);
}

class ClassTreeFileTest : public TempDirTest {};

TEST_F(ClassTreeFileTest, ErrorsNameTheFile) {
  EXPECT_NE(ErrorMessage([&] {
              ClassTree::Load(Path("missing.json"));
            }).find("cannot open " + Path("missing.json")),
            std::string::npos);
  std::ofstream(Path("bad.json")) << R"({"g": ["a", "a"]})";
  EXPECT_NE(ErrorMessage([&] {
              ClassTree::Load(Path("bad.json"));
            }).find(Path("bad.json") + ": class 'a' appears twice"),
            std::string::npos);
}

}  // namespace
}  // namespace hier::testing
