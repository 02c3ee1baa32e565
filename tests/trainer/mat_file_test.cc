#include "trainer/data/mat_file.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <fstream>
#include <limits>
#include <map>
#include <ostream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "tests/trainer/mat_writer.h"
#include "tests/trainer/temp_dir_test.h"

namespace hier::testing {

// Names write options in test output, e.g. "CompressedSmallUint8".
void PrintTo(const MatWriteOptions& options, std::ostream* out) {
  *out << (options.compress ? "Compressed" : "Plain")
       << (options.small_elements ? "Small" : "Normal")
       << (options.numbers_as_uint8 ? "Uint8" : "Double");
}

namespace {

using data::MatValue;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::StartsWith;
using Variables = std::vector<std::pair<std::string, MatValue>>;

constexpr char kOrigin[] = "test.mat";

MatValue Numbers(std::vector<int64_t> dims, std::vector<double> numbers) {
  MatValue value;
  value.dims = std::move(dims);
  value.numbers = std::move(numbers);
  return value;
}

MatValue Scalar(double x) { return Numbers({1, 1}, {x}); }

MatValue Text(const std::string& text) {
  MatValue value;
  value.kind = MatValue::Kind::kChar;
  value.dims = {text.empty() ? 0 : 1, static_cast<int64_t>(text.size())};
  value.text = text;
  return value;
}

MatValue Cells(std::vector<MatValue> cells) {
  MatValue value;
  value.kind = MatValue::Kind::kCell;
  value.dims = {1, static_cast<int64_t>(cells.size())};
  value.cells = std::move(cells);
  return value;
}

MatValue Struct(std::vector<std::string> field_names, std::vector<std::vector<MatValue>> elements) {
  MatValue value;
  value.kind = MatValue::Kind::kStruct;
  value.dims = {1, static_cast<int64_t>(elements.size())};
  value.field_names = std::move(field_names);
  value.elements = std::move(elements);
  return value;
}

// A five-image stand-in for cars_annos.mat, with the real file's fields and realistic values:
// class and test fit in uint8, the bounding boxes do not.
Variables CarsLikeVariables() {
  const std::vector<std::string> paths = {"car_ims/000001.jpg", "car_ims/000002.jpg",
                                          "car_ims/000046.jpg", "car_ims/016185.jpg",
                                          "car_ims/008144.jpg"};
  const std::vector<std::vector<double>> boxes = {{112, 7, 853, 717},
                                                  {48, 24, 441, 202},
                                                  {7, 4, 277, 180},
                                                  {33, 12, 1280, 660},
                                                  {5, 8, 598, 466}};
  const std::vector<double> classes = {1, 1, 2, 196, 98};
  const std::vector<double> tests = {0, 0, 1, 1, 0};
  std::vector<std::vector<MatValue>> elements;
  for (size_t i = 0; i < paths.size(); ++i) {
    elements.push_back({Text(paths[i]), Scalar(boxes[i][0]), Scalar(boxes[i][1]),
                        Scalar(boxes[i][2]), Scalar(boxes[i][3]), Scalar(classes[i]),
                        Scalar(tests[i])});
  }
  MatValue annotations = Struct(
      {"relative_im_path", "bbox_x1", "bbox_y1", "bbox_x2", "bbox_y2", "class", "test"}, elements);
  MatValue class_names = Cells({Text("AM General Hummer SUV 2000"), Text("Acura RL Sedan 2012"),
                                Text("smart fortwo Convertible 2012")});
  return {{"annotations", annotations}, {"class_names", class_names}};
}

// Whether `got` equals `want` in kind, dimensions and contents, naming the first difference.
::testing::AssertionResult SameArray(const MatValue& want, const MatValue& got,
                                     const std::string& path) {
  if (got.kind != want.kind) return ::testing::AssertionFailure() << path << ": kind differs";
  if (got.dims != want.dims) return ::testing::AssertionFailure() << path << ": dims differ";
  if (got.numbers != want.numbers) return ::testing::AssertionFailure() << path << ": numbers";
  if (got.text != want.text) {
    return ::testing::AssertionFailure() << path << ": text '" << got.text << "'";
  }
  if (got.field_names != want.field_names) {
    return ::testing::AssertionFailure() << path << ": field names differ";
  }
  if (got.cells.size() != want.cells.size() || got.elements.size() != want.elements.size()) {
    return ::testing::AssertionFailure() << path << ": element counts differ";
  }
  for (size_t i = 0; i < want.cells.size(); ++i) {
    auto same = SameArray(want.cells[i], got.cells[i], path + "{" + std::to_string(i + 1) + "}");
    if (!same) return same;
  }
  for (size_t i = 0; i < want.elements.size(); ++i) {
    if (got.elements[i].size() != want.elements[i].size()) {
      return ::testing::AssertionFailure() << path << ": field counts differ";
    }
    for (size_t f = 0; f < want.elements[i].size(); ++f) {
      auto same = SameArray(want.elements[i][f], got.elements[i][f],
                            path + "(" + std::to_string(i + 1) + ")." + want.field_names[f]);
      if (!same) return same;
    }
  }
  return ::testing::AssertionSuccess();
}

uint32_t FirstTagWord(const std::string& file) {
  uint32_t word = 0;
  for (int i = 3; i >= 0; --i) word = word << 8 | static_cast<uint8_t>(file.at(128 + i));
  return word;
}

// The message of the runtime_error ParseMat throws on `bytes`, or "no error". Other exceptions
// escape and fail the test.
std::string ErrorOf(const std::string& bytes) {
  try {
    data::ParseMat(bytes, kOrigin);
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return "no error";
}

// Parses possibly damaged `bytes`, which must either succeed or be refused with a "mat: " error;
// returns whether they parsed.
bool ParsesOrRefuses(const std::string& bytes) {
  const std::string error = ErrorOf(bytes);
  if (error != "no error") {
    EXPECT_THAT(error, StartsWith("mat: test.mat"));
  }
  return error == "no error";
}

std::string File(const std::string& elements) { return MatHeader() + elements; }

// A 1x1 double named x.
std::string ScalarX() {
  return MatrixElement(kMxDouble, {1, 1}, "x", DataElement(kMiDouble, LittleEndian<double>({1})));
}

std::vector<MatWriteOptions> AllWriteOptions() {
  std::vector<MatWriteOptions> options;
  for (const bool compress : {false, true}) {
#ifndef HIER_HAVE_ZLIB
    if (compress) continue;
#endif
    for (const bool small : {false, true}) {
      for (const bool as_uint8 : {false, true}) options.push_back({compress, as_uint8, small});
    }
  }
  return options;
}

class MatRoundTripTest : public ::testing::TestWithParam<MatWriteOptions> {};

TEST_P(MatRoundTripTest, ReadsBackACarsAnnosLikeFile) {
  const MatWriteOptions& options = GetParam();
  const Variables variables = CarsLikeVariables();
  const std::string file = WriteMat(variables, options);
  EXPECT_EQ(FirstTagWord(file), options.compress ? kMiCompressed : kMiMatrix);

  const std::map<std::string, MatValue> read = data::ParseMat(file, "cars_annos.mat");
  ASSERT_EQ(read.size(), 2u);
  for (const auto& [name, want] : variables) {
    ASSERT_EQ(read.count(name), 1u) << name;
    EXPECT_TRUE(SameArray(want, read.at(name), name));
  }
  const MatValue& annotations = read.at("annotations");
  EXPECT_EQ(annotations.count(), 5);
  EXPECT_EQ(annotations.Field(3, "relative_im_path").text, "car_ims/016185.jpg");
  EXPECT_THAT(annotations.Field(3, "class").numbers, ElementsAre(196));
  EXPECT_THAT(annotations.Field(3, "bbox_x2").numbers, ElementsAre(1280));
  EXPECT_EQ(read.at("class_names").cells.at(2).text, "smart fortwo Convertible 2012");
}

std::string OptionsName(const ::testing::TestParamInfo<MatWriteOptions>& info) {
  return ::testing::PrintToString(info.param);
}

INSTANTIATE_TEST_SUITE_P(Options, MatRoundTripTest, ::testing::ValuesIn(AllWriteOptions()),
                         OptionsName);

TEST(MatFileTest, SmallElementsAndUint8MakeSmallerFiles) {
  const Variables variables = CarsLikeVariables();
  const size_t plain = WriteMat(variables, {false, false, false}).size();
  const size_t small = WriteMat(variables, {false, false, true}).size();
  EXPECT_LT(small, plain);
  // A 1-byte value pads to the 8 bytes of a double unless it fits in a small element.
  EXPECT_LT(WriteMat(variables, {false, true, true}).size(), small);
}

struct NumericCase {
  const char* name;
  uint8_t mat_class;
  uint32_t stored_type;
  std::string data;
  std::vector<double> want;
};

TEST(MatFileTest, NumericClassesStoredInAnyTypeConvertExactly) {
  const std::vector<NumericCase> cases = {
      {"int16 as int8",
       kMxInt16,
       kMiInt8,
       LittleEndian<int8_t>({-128, -1, 0, 127}),
       {-128, -1, 0, 127}},
      {"int16 as uint8", kMxInt16, kMiUint8, LittleEndian<uint8_t>({0, 200, 255}), {0, 200, 255}},
      {"int16 as int16",
       kMxInt16,
       kMiInt16,
       LittleEndian<int16_t>({-32768, 32767}),
       {-32768, 32767}},
      {"uint8 as uint8", kMxUint8, kMiUint8, LittleEndian<uint8_t>({1, 196}), {1, 196}},
      {"double as uint8", kMxDouble, kMiUint8, LittleEndian<uint8_t>({0, 1, 196}), {0, 1, 196}},
      {"double as int16", kMxDouble, kMiInt16, LittleEndian<int16_t>({-300, 1000}), {-300, 1000}},
      {"double as uint16",
       kMxDouble,
       kMiUint16,
       LittleEndian<uint16_t>({65535, 1280}),
       {65535, 1280}},
      {"double as int32",
       kMxDouble,
       kMiInt32,
       LittleEndian<int32_t>({std::numeric_limits<int32_t>::min(), 2147483647}),
       {-2147483648.0, 2147483647.0}},
      {"double as uint32",
       kMxDouble,
       kMiUint32,
       LittleEndian<uint32_t>({4294967295u}),
       {4294967295.0}},
      {"double as single",
       kMxDouble,
       kMiSingle,
       LittleEndian<float>({0.5f, -1.25f, 3e38f}),
       {0.5, -1.25, static_cast<double>(3e38f)}},
      {"double as double",
       kMxDouble,
       kMiDouble,
       LittleEndian<double>({0.1, -1e300}),
       {0.1, -1e300}},
      {"single as single",
       kMxSingle,
       kMiSingle,
       LittleEndian<float>({0.1f}),
       {static_cast<double>(0.1f)}},
      {"single as uint8", kMxSingle, kMiUint8, LittleEndian<uint8_t>({7}), {7}},
      {"int64 as int64",
       kMxInt64,
       kMiInt64,
       LittleEndian<int64_t>({-(int64_t{1} << 53), int64_t{1} << 53}),
       {-9007199254740992.0, 9007199254740992.0}},
      {"uint64 as uint64",
       kMxUint64,
       kMiUint64,
       LittleEndian<uint64_t>({uint64_t{1} << 63}),
       {9223372036854775808.0}},
  };
  for (const NumericCase& c : cases) {
    for (const bool small : {false, true}) {
      SCOPED_TRACE(std::string(c.name) + (small ? ", small elements" : ""));
      const auto n = static_cast<int64_t>(c.want.size());
      const std::string file = File(MatrixElement(
          c.mat_class, {1, n}, "x", DataElement(c.stored_type, c.data, small), small));
      const std::map<std::string, MatValue> read = data::ParseMat(file, kOrigin);
      ASSERT_EQ(read.count("x"), 1u);
      EXPECT_EQ(read.at("x").kind, MatValue::Kind::kNumeric);
      EXPECT_THAT(read.at("x").dims, ElementsAre(1, n));
      EXPECT_EQ(read.at("x").numbers, c.want);
    }
  }
}

struct CharCase {
  const char* name;
  std::vector<int64_t> dims;
  uint32_t stored_type;
  std::string data;
  std::string want;
};

TEST(MatFileTest, CharArraysInEveryEncodingBecomeUtf8) {
  const std::vector<CharCase> cases = {
      {"utf16", {1, 4}, kMiUtf16, LittleEndian<uint16_t>({'A', 'u', 'd', 'i'}), "Audi"},
      {"uint16", {1, 3}, kMiUint16, LittleEndian<uint16_t>({'B', 'M', 'W'}), "BMW"},
      {"utf16 non-ASCII", {1, 2}, kMiUtf16, LittleEndian<uint16_t>({0x160, 0xe9}), "\u0160\u00e9"},
      {"utf16 surrogate pair",
       {1, 2},
       kMiUtf16,
       LittleEndian<uint16_t>({0xd83d, 0xde97}),
       "\xf0\x9f\x9a\x97"},
      {"utf16 lone surrogate", {1, 1}, kMiUtf16, LittleEndian<uint16_t>({0xd83d}), "\ufffd"},
      {"utf8", {1, 5}, kMiUtf8, "\xc5\xa0koda", "\xc5\xa0koda"},
      {"int8", {1, 4}, kMiInt8, "Fiat", "Fiat"},
      {"uint8", {1, 3}, kMiUint8, "Kia", "Kia"},
      {"two rows, column-major",
       {2, 3},
       kMiUtf16,
       LittleEndian<uint16_t>({'a', 'd', 'b', 'e', 'c', 'f'}),
       "abc\ndef"},
      {"empty", {0, 0}, kMiUtf16, "", ""},
  };
  for (const CharCase& c : cases) {
    SCOPED_TRACE(c.name);
    const std::string file =
        File(MatrixElement(kMxChar, c.dims, "c", DataElement(c.stored_type, c.data)));
    const std::map<std::string, MatValue> read = data::ParseMat(file, kOrigin);
    ASSERT_EQ(read.count("c"), 1u);
    EXPECT_EQ(read.at("c").kind, MatValue::Kind::kChar);
    EXPECT_EQ(read.at("c").dims, c.dims);
    EXPECT_EQ(read.at("c").text, c.want);
  }
}

TEST(MatFileTest, AnEmptyMatrixElementIsAnEmptyArray) {
  const std::string file = File(MatrixElement(
      kMxCell, {1, 2}, "c", DataElement(kMiMatrix, "") + EncodeMatrix("", Text("x"), {})));
  const MatValue c = data::ParseMat(file, kOrigin).at("c");
  ASSERT_EQ(c.cells.size(), 2u);
  EXPECT_EQ(c.cells[0].kind, MatValue::Kind::kNumeric);
  EXPECT_THAT(c.cells[0].dims, ElementsAre(0, 0));
  EXPECT_EQ(c.cells[0].count(), 0);
  EXPECT_TRUE(c.cells[0].numbers.empty());
  EXPECT_EQ(c.cells[1].text, "x");
}

TEST(MatFileTest, ReadsAStructWithoutFields) {
  const std::string file = File(
      MatrixElement(kMxStruct, {1, 2}, "s",
                    DataElement(kMiInt32, LittleEndian<int32_t>({32})) + DataElement(kMiInt8, "")));
  const MatValue s = data::ParseMat(file, kOrigin).at("s");
  EXPECT_EQ(s.kind, MatValue::Kind::kStruct);
  EXPECT_TRUE(s.field_names.empty());
  EXPECT_EQ(s.elements.size(), 2u);
}

TEST(MatFileTest, FieldNamesTheMissingFieldOrElement) {
  const MatValue annotations =
      data::ParseMat(WriteMat(CarsLikeVariables()), kOrigin).at("annotations");
  EXPECT_EQ(annotations.Field(0, "test").numbers, std::vector<double>{0});
  auto error_of = [&](size_t i, const std::string& name) -> std::string {
    try {
      annotations.Field(i, name);
    } catch (const std::runtime_error& e) {
      return e.what();
    }
    return "no error";
  };
  EXPECT_THAT(error_of(0, "bbox"), HasSubstr("no field 'bbox'; its fields are: relative_im_path"));
  EXPECT_THAT(error_of(5, "class"), HasSubstr("element 5 of a struct with 5 elements"));
  EXPECT_THROW(Scalar(1).Field(0, "class"), std::runtime_error);
}

struct MalformedCase {
  const char* name;
  std::string bytes;
  const char* message;
};

std::vector<MalformedCase> MalformedCases() {
  const std::string x = ScalarX();
  const std::string flags = DataElement(kMiUint32, LittleEndian<uint32_t>({kMxDouble, 0}));
  const std::string dims_1x1 = DataElement(kMiInt32, LittleEndian<int32_t>({1, 1}));
  const std::string one = DataElement(kMiDouble, LittleEndian<double>({1}));
  const auto field_names = [](int32_t length, const std::string& names) {
    return DataElement(kMiInt32, LittleEndian<int32_t>({length})) + DataElement(kMiInt8, names);
  };
  std::string nested = EncodeMatrix("", Scalar(1), {});
  for (int depth = 0; depth < 100; ++depth) {
    nested = MatrixElement(kMxCell, {1, 1}, depth == 99 ? "deep" : "", nested);
  }
  std::vector<MalformedCase> cases = {
      {"empty file", "", "is empty"},
      {"header only", MatHeader(), "holds no variables"},
      {"short header", MatHeader().substr(0, 100), "header needs 128 bytes but only 100 remain"},
      {"big-endian", MatHeader("MI") + x, "big-endian (endian indicator 'MI')"},
      {"not a MAT file", std::string(200, 'x'), "not the endian indicator 'IM'"},
      {"v7.3", MatHeader("IM", 0x0200) + x, "version 0x200; only 0x100 is supported (v7.3"},
      {"truncated tag", File(x.substr(0, 2)), "tag needs 4 bytes but only 2 remain (at byte 128)"},
      {"tag without size", File(x.substr(0, 4)),
       "tag needs 4 bytes but only 0 remain (at byte 132)"},
      {"element past the end", File(x.substr(0, x.size() - 8)),
       "the miMATRIX element at byte 128 needs 64 bytes but only 56 remain"},
      {"subelement past its matrix",
       File(DataElement(kMiMatrix, flags + dims_1x1 + DataElement(kMiInt8, "x") +
                                       LittleEndian<uint32_t>({kMiDouble, 64}))),
       "x: the miDOUBLE element at byte 184 needs 64 bytes but only 0 remain"},
      {"unknown data type", File(DataElement(99, "12345678")), "unknown data type 99"},
      {"reserved data type inside",
       File(DataElement(kMiMatrix, flags + DataElement(8, LittleEndian<int32_t>({1, 1})))),
       "unknown data type 8 in the element at byte 152"},
      {"small element over 4 bytes", File(LittleEndian<uint32_t>({5 << 16 | kMiInt8}) + "abcd"),
       "small data element of 5 bytes"},
      {"negative dimension",
       File(MatrixElement(kMxDouble, {1, -3}, "x", DataElement(kMiDouble, ""))),
       "dimension 2 is negative (-3)"},
      {"dimensions overflowing",
       File(MatrixElement(kMxDouble, {2147483647, 2147483647, 2147483647}, "x", one)),
       "the dimensions 2147483647x2147483647x2147483647 overflow 64 bits"},
      {"no dimensions", File(DataElement(kMiMatrix, flags + DataElement(kMiInt32, ""))),
       "the dimensions hold 0 bytes"},
      {"array flags of the wrong type", File(DataElement(kMiMatrix, dims_1x1)),
       "the array flags at byte 136 has type miINT32; expected miUINT32"},
      {"too few values", File(MatrixElement(kMxDouble, {1, 3}, "x", one)),
       "x: the real part holds 1 values but the dimensions 1x3 need 3"},
      {"partial value", File(MatrixElement(kMxDouble, {1, 1}, "x", DataElement(kMiInt16, "abc"))),
       "3 bytes, not a multiple of the 2-byte miINT16"},
      {"text as numbers", File(MatrixElement(kMxDouble, {1, 1}, "x", DataElement(kMiUtf16, "ab"))),
       "has type miUTF16; expected a numeric type"},
      {"trailing bytes in a matrix", File(MatrixElement(kMxDouble, {1, 1}, "x", one + one)),
       "16 unexpected bytes after the array's data"},
      {"struct with field name length 0",
       File(MatrixElement(kMxStruct, {1, 1}, "s", field_names(0, ""))),
       "s: the field name length is 0; it must be positive"},
      {"field names not a multiple of the length",
       File(MatrixElement(kMxStruct, {1, 1}, "s", field_names(4, "abcdef"))),
       "6 bytes, not a multiple of the field name length 4"},
      {"empty field name",
       File(
           MatrixElement(kMxStruct, {1, 1}, "s", field_names(4, std::string("ab\0\0\0\0\0\0", 8)))),
       "field 2 has an empty name"},
      {"struct elements past the data",
       File(MatrixElement(kMxStruct, {1, 1000000}, "s", field_names(2, std::string("a\0", 2)))),
       "promise 1000000 elements of 1 arrays each"},
      {"huge struct without fields",
       File(MatrixElement(kMxStruct, {65536, 65536}, "s", field_names(1, ""))),
       "no fields and 4294967296 elements"},
      {"cell element that is not a matrix", File(MatrixElement(kMxCell, {1, 1}, "c", one + one)),
       "c{1} at byte 184 has type miDOUBLE; expected miMATRIX"},
      {"struct field that is not a matrix",
       File(MatrixElement(kMxStruct, {1, 1}, "s", field_names(2, std::string("a\0", 2)) + one)),
       "s(1).a at byte"},
      {"too few characters", File(MatrixElement(kMxChar, {1, 3}, "c", DataElement(kMiUtf16, "ab"))),
       "holds 1 characters but the dimensions 1x3 need 3"},
      {"odd UTF-16 data", File(MatrixElement(kMxChar, {1, 1}, "c", DataElement(kMiUtf16, "abc"))),
       "odd number of bytes"},
      {"invalid UTF-8", File(MatrixElement(kMxChar, {1, 1}, "c", DataElement(kMiUtf8, "\xff"))),
       "not valid UTF-8 at byte 0"},
      {"cut UTF-8", File(MatrixElement(kMxChar, {1, 1}, "c", DataElement(kMiUtf8, "\xc5"))),
       "not valid UTF-8 at byte 0"},
      {"char data of a numeric type",
       File(MatrixElement(kMxChar, {1, 1}, "c", DataElement(kMiDouble, LittleEndian<double>({1})))),
       "has type miDOUBLE; expected miUTF16"},
      {"sparse array", File(MatrixElement(kMxSparse, {1, 1}, "x", one)),
       "array class 5 is not supported"},
      {"complex array",
       File(DataElement(kMiMatrix,
                        DataElement(kMiUint32, LittleEndian<uint32_t>({0x0800 | kMxDouble, 0})) +
                            dims_1x1 + DataElement(kMiInt8, "x") + one + one)),
       "x: complex arrays are not supported"},
      {"variable that is not a matrix", File(one), "has type miDOUBLE; variables must be miMATRIX"},
      {"variable without a name", File(MatrixElement(kMxDouble, {1, 1}, "", one)),
       "the variable at byte 128 has no name"},
      {"empty variable", File(DataElement(kMiMatrix, "")), "the variable at byte 128 has no name"},
      {"duplicate variable", File(x + x), "variable 'x' appears twice"},
      {"nesting too deep", File(nested), "arrays nest deeper than 64 levels"},
  };
#ifdef HIER_HAVE_ZLIB
  const std::string compressed = ZlibCompress(x);
  cases.push_back({"truncated compressed stream",
                   File(DataElement(kMiCompressed, compressed.substr(0, compressed.size() / 2))),
                   "compressed element at byte 128: the zlib stream is truncated"});
  cases.push_back({"compressed stream without its checksum",
                   File(DataElement(kMiCompressed, compressed.substr(0, compressed.size() - 2))),
                   "the zlib stream is truncated"});
  cases.push_back(
      {"garbage zlib data", File(DataElement(kMiCompressed, "not zlib data at all")),
       "compressed element at byte 128: is not valid zlib data: incorrect header check"});
  cases.push_back(
      {"compressed non-matrix", File(DataElement(kMiCompressed, ZlibCompress(one))),
       "test.mat (decompressed from byte 128): the element at byte 0 has type miDOUBLE"});
  cases.push_back(
      {"damaged inside a compressed variable",
       File(DataElement(kMiCompressed, ZlibCompress(MatrixElement(kMxDouble, {1, 2}, "x", one)))),
       "test.mat (decompressed from byte 128): x: the real part holds 1 values"});
#else
  cases.push_back({"compressed without zlib", File(DataElement(kMiCompressed, "zlib data")),
                   "the variable at byte 128 is compressed; this build has no zlib"});
#endif
  return cases;
}

TEST(MatFileTest, MalformedInputsAreRefusedWithAHelpfulMessage) {
  for (const MalformedCase& c : MalformedCases()) {
    SCOPED_TRACE(c.name);
    const std::string error = ErrorOf(c.bytes);
    EXPECT_THAT(error, StartsWith("mat: test.mat"));
    EXPECT_THAT(error, HasSubstr(c.message));
  }
}

TEST(MatFileTest, EveryTruncationIsRefusedCleanly) {
  for (const MatWriteOptions& options : AllWriteOptions()) {
    const std::string file = WriteMat(CarsLikeVariables(), options);
    int parsed = 0;
    for (size_t size = 0; size < file.size(); ++size)
      parsed += ParsesOrRefuses(file.substr(0, size));
    // Only the cut right after the first variable leaves a whole file.
    EXPECT_EQ(parsed, 1) << ::testing::PrintToString(options);
  }
}

TEST(MatFileTest, EveryCorruptedByteIsHandled) {
  // Both tag layouts uncompressed, where corruption reaches the parser unfiltered, and one
  // compressed file, where it mostly reaches zlib.
  std::vector<MatWriteOptions> layouts = {{false, false, false}, {false, true, true}};
#ifdef HIER_HAVE_ZLIB
  layouts.push_back({true, true, true});
#endif
  for (const MatWriteOptions& options : layouts) {
    std::string file = WriteMat(CarsLikeVariables(), options);
    int refused = 0;
    for (size_t i = 0; i < file.size(); ++i) {
      for (const uint8_t mask : {0x01, 0xff}) {
        file[i] = static_cast<char>(file[i] ^ mask);
        refused += !ParsesOrRefuses(file);
        file[i] = static_cast<char>(file[i] ^ mask);
      }
    }
    EXPECT_GT(refused, 0) << ::testing::PrintToString(options);
  }
}

class MatFileOnDiskTest : public TempDirTest {};

TEST_F(MatFileOnDiskTest, ReadsAFile) {
  const std::string path = Path("cars_annos.mat");
  const std::string file = WriteMat(CarsLikeVariables(), {false, true, true});
  std::ofstream(path, std::ios::binary)
      .write(file.data(), static_cast<std::streamsize>(file.size()));
  const std::map<std::string, MatValue> read = data::ReadMatFile(path);
  ASSERT_EQ(read.count("annotations"), 1u);
  EXPECT_EQ(read.at("annotations").Field(4, "relative_im_path").text, "car_ims/008144.jpg");
}

TEST_F(MatFileOnDiskTest, ErrorsNameTheFile) {
  const std::string missing = Path("missing.mat");
  try {
    data::ReadMatFile(missing);
    ADD_FAILURE() << "no error";
  } catch (const std::runtime_error& e) {
    EXPECT_THAT(e.what(), StartsWith("mat: " + missing + ": cannot open"));
  }
  const std::string empty = Path("empty.mat");
  std::ofstream{empty};
  try {
    data::ReadMatFile(empty);
    ADD_FAILURE() << "no error";
  } catch (const std::runtime_error& e) {
    EXPECT_THAT(e.what(), StartsWith("mat: " + empty + ": is empty"));
  }
}

}  // namespace
}  // namespace hier::testing
