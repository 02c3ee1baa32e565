#include "trainer/data/dataset_layout.h"

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>

#include "trainer/data/mat_file.h"

namespace hier::data {
namespace {

namespace fs = std::filesystem;

constexpr size_t kSkippedExamples = 5;

// One image of a layout before labels are assigned: its split is "train", "test", "query" or
// "gallery".
struct Row {
  std::string path;
  std::string class_name;
  std::string split;
};

[[noreturn]] void Fail(const std::string& where, const std::string& problem) {
  throw std::runtime_error("dataset: " + where + ": " + problem);
}

std::string Lower(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(),
                 [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
  return text;
}

bool IsImageFile(const fs::directory_entry& entry) {
  static const std::vector<std::string> extensions = {".jpg", ".jpeg", ".png", ".bmp",
                                                      ".webp", ".tif", ".tiff"};
  const std::string extension = Lower(entry.path().extension().string());
  return entry.is_regular_file() &&
         std::find(extensions.begin(), extensions.end(), extension) != extensions.end();
}

bool IsHidden(const fs::path& path) { return path.filename().string().rfind('.', 0) == 0; }

// Sub-folders (directories = true) or image files of `dir`, sorted by name, hidden ones left out.
std::vector<fs::path> SortedEntries(const fs::path& dir, bool directories) {
  std::vector<fs::path> found;
  for (const fs::directory_entry& entry : fs::directory_iterator(dir)) {
    if (IsHidden(entry.path())) continue;
    if (directories ? entry.is_directory() : IsImageFile(entry)) found.push_back(entry.path());
  }
  std::sort(found.begin(), found.end());
  return found;
}

// The images of each class folder of `dir`, in `split`.
void AddClassFolders(const fs::path& dir, const std::string& split, std::vector<Row>& rows) {
  for (const fs::path& class_dir : SortedEntries(dir, /*directories=*/true)) {
    for (const fs::path& image : SortedEntries(class_dir, /*directories=*/false)) {
      rows.push_back({image.string(), class_dir.filename().string(), split});
    }
  }
}

// Rows without a split get one: the classes in order of first appearance, the first half (rounded
// up) for training and the rest for testing — the DML protocol of unseen test classes.
void SplitClassesInHalves(std::vector<Row>& rows) {
  std::vector<std::string> order;
  for (const Row& row : rows) {
    if (std::find(order.begin(), order.end(), row.class_name) == order.end()) {
      order.push_back(row.class_name);
    }
  }
  const size_t train_classes = (order.size() + 1) / 2;
  for (Row& row : rows) {
    const size_t rank = std::find(order.begin(), order.end(), row.class_name) - order.begin();
    row.split = rank < train_classes ? "train" : "test";
  }
}

std::vector<Row> FolderRows(const fs::path& root) {
  std::vector<Row> rows;
  if (fs::is_directory(root / "train") && fs::is_directory(root / "test")) {
    AddClassFolders(root / "train", "train", rows);
    AddClassFolders(root / "test", "test", rows);
  } else {
    AddClassFolders(root, "", rows);
    SplitClassesInHalves(rows);
  }
  return rows;
}

// Splits a line on `separator`, or on runs of blanks when `separator` is 0.
std::vector<std::string> Columns(const std::string& line, char separator) {
  std::vector<std::string> columns;
  if (separator == 0) {
    std::istringstream in(line);
    for (std::string column; in >> column;) columns.push_back(column);
    return columns;
  }
  std::istringstream in(line);
  for (std::string column; std::getline(in, column, separator);) columns.push_back(column);
  return columns;
}

// The lines of an index file, each with its number; a missing file fails naming it.
std::vector<std::pair<int, std::string>> ReadLines(const fs::path& file) {
  std::ifstream in(file);
  if (!in) Fail(file.string(), "cannot read the file");
  std::vector<std::pair<int, std::string>> lines;
  int number = 0;
  for (std::string line; std::getline(in, line);) {
    ++number;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    lines.emplace_back(number, line);
  }
  return lines;
}

std::string At(const fs::path& file, int line) { return file.string() + ":" + std::to_string(line); }

std::vector<Row> ListFileRows(const fs::path& list_file) {
  static const std::vector<std::string> splits = {"train", "test", "query", "gallery"};
  std::vector<Row> rows;
  int with_split = 0;
  for (const auto& [number, line] : ReadLines(list_file)) {
    if (line.empty() || line[0] == '#') continue;
    const std::vector<std::string> columns = Columns(line, '\t');
    if (columns.size() < 2 || columns.size() > 3 || columns[0].empty() || columns[1].empty()) {
      Fail(At(list_file, number), "expected 'path<TAB>label[<TAB>split]', got '" + line + "'");
    }
    const std::string split = columns.size() == 3 ? columns[2] : "";
    if (!split.empty() && std::find(splits.begin(), splits.end(), split) == splits.end()) {
      Fail(At(list_file, number), "split must be train, test, query or gallery, got '" + split +
                                      "'");
    }
    with_split += !split.empty();
    const fs::path path = list_file.parent_path() / columns[0];
    rows.push_back({path.string(), columns[1], split});
  }
  if (with_split != 0 && with_split != static_cast<int>(rows.size())) {
    Fail(list_file.string(), "either every line names its split or none does");
  }
  if (with_split == 0) SplitClassesInHalves(rows);
  return rows;
}

std::vector<Row> CubRows(const fs::path& root) {
  std::vector<Row> rows;
  AddClassFolders(root / "images", "", rows);
  SplitClassesInHalves(rows);
  return rows;
}

std::vector<Row> CarsRows(const fs::path& root) {
  const fs::path annotations_file = root / "cars_annos.mat";
  const std::map<std::string, MatValue> mat = ReadMatFile(annotations_file.string());
  const auto annotations = mat.find("annotations");
  if (annotations == mat.end() || annotations->second.kind != MatValue::Kind::kStruct) {
    Fail(annotations_file.string(), "holds no 'annotations' struct array");
  }
  std::vector<std::string> names;
  if (const auto class_names = mat.find("class_names"); class_names != mat.end()) {
    for (const MatValue& name : class_names->second.cells) names.push_back(name.text);
  }
  std::vector<Row> rows;
  const MatValue& all = annotations->second;
  for (size_t i = 0; i < all.elements.size(); ++i) {
    const MatValue& label = all.Field(i, "class");
    if (label.numbers.size() != 1 || label.numbers[0] < 1) {
      Fail(annotations_file.string(), "annotation " + std::to_string(i + 1) +
                                          " has no class number >= 1");
    }
    const auto class_number = static_cast<int64_t>(label.numbers[0]);
    const std::string name = class_number <= static_cast<int64_t>(names.size())
                                 ? names[class_number - 1]
                                 : "class " + std::to_string(class_number);
    // Classes 1-98 train and 99-196 test; the file's own "test" flag is ignored, as the
    // reference does.
    rows.push_back({(root / all.Field(i, "relative_im_path").text).string(), name,
                    class_number <= 98 ? "train" : "test"});
  }
  return rows;
}

// Ebay_train.txt / Ebay_test.txt: "image_id class_id super_class_id path" after a header line.
void AddSopRows(const fs::path& root, const std::string& file, const std::string& split,
                std::vector<Row>& rows) {
  const fs::path index = root / file;
  const auto lines = ReadLines(index);
  for (size_t i = 1; i < lines.size(); ++i) {
    const auto& [number, line] = lines[i];
    if (line.empty()) continue;
    const std::vector<std::string> columns = Columns(line, 0);
    if (columns.size() != 4) {
      Fail(At(index, number), "expected 'image_id class_id super_class_id path', got '" + line +
                                  "'");
    }
    rows.push_back({(root / columns[3]).string(), columns[1], split});
  }
}

std::vector<Row> SopRows(const fs::path& root) {
  std::vector<Row> rows;
  AddSopRows(root, "Ebay_train.txt", "train", rows);
  AddSopRows(root, "Ebay_test.txt", "test", rows);
  return rows;
}

// list_eval_partition.txt: a count line, a header line, then "image_name item_id status".
std::vector<Row> InShopRows(const fs::path& root) {
  const fs::path index = root / "list_eval_partition.txt";
  const auto lines = ReadLines(index);
  std::vector<Row> rows;
  for (size_t i = 2; i < lines.size(); ++i) {
    const auto& [number, line] = lines[i];
    if (line.empty()) continue;
    const std::vector<std::string> columns = Columns(line, 0);
    if (columns.size() != 3 ||
        (columns[2] != "train" && columns[2] != "query" && columns[2] != "gallery")) {
      Fail(At(index, number), "expected 'image_name item_id train|query|gallery', got '" + line +
                                  "'");
    }
    rows.push_back({(root / columns[0]).string(), columns[1], columns[2]});
  }
  return rows;
}

// Labels in order of first appearance within one label space.
class ClassIndex {
 public:
  explicit ClassIndex(ImageList* first, ImageList* second = nullptr)
      : first_(first), second_(second) {}

  void Add(ImageList& list, const Row& row) {
    auto [it, added] = labels_.emplace(row.class_name, static_cast<int64_t>(labels_.size()));
    if (added) {
      first_->class_names.push_back(row.class_name);
      if (second_ != nullptr) second_->class_names.push_back(row.class_name);
    }
    list.paths.push_back(row.path);
    list.labels.push_back(it->second);
  }

 private:
  ImageList* first_;
  ImageList* second_;
  std::map<std::string, int64_t> labels_;
};

bool Readable(const std::string& path) {
  return fs::is_regular_file(path) && ::access(path.c_str(), R_OK) == 0;
}

DatasetSplits BuildSplits(const std::vector<Row>& rows, const std::string& root, bool strict) {
  DatasetSplits splits;
  ClassIndex train_classes(&splits.train);
  ClassIndex eval_classes(&splits.query, &splits.gallery);
  bool has_test = false, has_query_gallery = false;
  for (const Row& row : rows) {
    if (!Readable(row.path)) {
      if (strict) Fail(row.path, "missing or unreadable (without --strict it is skipped)");
      splits.skipped.Add(row.path, "missing or unreadable");
      continue;
    }
    if (row.split == "train") {
      train_classes.Add(splits.train, row);
    } else if (row.split == "gallery") {
      has_query_gallery = true;
      eval_classes.Add(splits.gallery, row);
    } else {
      (row.split == "test" ? has_test : has_query_gallery) = true;
      eval_classes.Add(splits.query, row);
    }
  }
  if (has_test && has_query_gallery) {
    Fail(root, "mixes 'test' with 'query'/'gallery' splits; use one or the other");
  }
  if (splits.train.size() == 0) Fail(root, "no readable training images");
  if (splits.query.size() == 0) Fail(root, "no readable evaluation (test or query) images");
  if (has_query_gallery && splits.gallery.size() == 0) Fail(root, "query images but no gallery");
  if (!has_query_gallery) splits.gallery.class_names.clear();
  return splits;
}

}  // namespace

void SkippedFiles::Add(const std::string& path, const std::string& reason) {
  ++count;
  if (examples.size() < kSkippedExamples) examples.push_back(path + " (" + reason + ")");
}

void SkippedFiles::Merge(const SkippedFiles& other) {
  count += other.count;
  for (const std::string& example : other.examples) {
    if (examples.size() < kSkippedExamples) examples.push_back(example);
  }
}

const std::vector<std::string>& FileLayouts() {
  static const std::vector<std::string> layouts = {"folder", "list", "cub",
                                                   "cars",   "sop",  "inshop"};
  return layouts;
}

std::string MissingLayoutPart(const std::string& layout, const std::string& root) {
  const fs::path base(root);
  const std::map<std::string, fs::path> required = {
      {"folder", base},
      {"list", base},
      {"cub", base / "images"},
      {"cars", base / "cars_annos.mat"},
      {"sop", base / "Ebay_train.txt"},
      {"inshop", base / "list_eval_partition.txt"}};
  const auto it = required.find(layout);
  if (it == required.end()) return "a known layout (not '" + layout + "')";
  const bool folder = layout == "folder" || layout == "cub";
  // A path the file system refuses (one too long, say) is missing too, not an exception.
  std::error_code error;
  const bool present =
      folder ? fs::is_directory(it->second, error) : fs::is_regular_file(it->second, error);
  return present ? "" : it->second.string();
}

DatasetSplits OpenDataset(const std::string& layout, const std::string& root, bool strict) {
  const std::string missing = MissingLayoutPart(layout, root);
  if (!missing.empty()) Fail(root, "the " + layout + " layout needs " + missing);
  const fs::path base(root);
  std::vector<Row> rows;
  if (layout == "folder") {
    rows = FolderRows(base);
  } else if (layout == "list") {
    rows = ListFileRows(base);
  } else if (layout == "cub") {
    rows = CubRows(base);
  } else if (layout == "cars") {
    rows = CarsRows(base);
  } else if (layout == "sop") {
    rows = SopRows(base);
  } else {
    rows = InShopRows(base);
  }
  return BuildSplits(rows, root, strict);
}

std::vector<int64_t> ProtocolRecallK(const std::string& dataset) {
  if (dataset == "sop") return {1, 10, 100, 1000};
  if (dataset == "inshop") return {1, 10, 20, 30};
  return {1, 2, 4, 8};
}

}  // namespace hier::data
