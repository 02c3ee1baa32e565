#include "trainer/data/mat_file.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>
#include <limits>
#include <sstream>
#include <stdexcept>
#include <string_view>
#include <utility>

#ifdef HIER_HAVE_ZLIB
#include <zlib.h>
#endif

namespace hier::data {
namespace {

constexpr size_t kHeaderBytes = 128;
constexpr size_t kHeaderTextBytes = 124;  // descriptive text and subsystem data offset
constexpr uint16_t kVersion5 = 0x0100;
constexpr uint16_t kVersion73 = 0x0200;
constexpr size_t kTagBytes = 8;
constexpr uint32_t kSmallDataMaxBytes = 4;
constexpr uint32_t kComplexFlag = 0x0800;
constexpr uint32_t kReplacementCharacter = 0xfffd;
// Cars-196 nests two levels; the limit keeps corrupt or hostile nesting off the stack.
constexpr int kMaxDepth = 64;
// Nothing in the file backs the elements of a struct without fields, so without a limit corrupt
// dimensions could demand any amount of memory.
constexpr int64_t kMaxFieldlessStructElements = int64_t{1} << 16;
#ifdef HIER_HAVE_ZLIB
constexpr size_t kInflateChunkBytes = size_t{1} << 16;
#endif

// Data types of element tags (MAT-File Format, table 1-1).
constexpr uint32_t kMiInt8 = 1;
constexpr uint32_t kMiUint8 = 2;
constexpr uint32_t kMiInt16 = 3;
constexpr uint32_t kMiUint16 = 4;
constexpr uint32_t kMiInt32 = 5;
constexpr uint32_t kMiUint32 = 6;
constexpr uint32_t kMiSingle = 7;
constexpr uint32_t kMiDouble = 9;
constexpr uint32_t kMiInt64 = 12;
constexpr uint32_t kMiUint64 = 13;
constexpr uint32_t kMiMatrix = 14;
constexpr uint32_t kMiCompressed = 15;
constexpr uint32_t kMiUtf8 = 16;
constexpr uint32_t kMiUtf16 = 17;

// Array classes of the array flags (MAT-File Format, table 1-3).
constexpr uint32_t kMxCell = 1;
constexpr uint32_t kMxStruct = 2;
constexpr uint32_t kMxChar = 4;
constexpr uint32_t kMxDouble = 6;
constexpr uint32_t kMxUint64 = 15;

// Indexed by data type; null for the reserved numbers.
constexpr const char* kTypeNames[] = {
    nullptr,    "miINT8",       "miUINT8",  "miINT16", "miUINT16", "miINT32", "miUINT32",
    "miSINGLE", nullptr,        "miDOUBLE", nullptr,   nullptr,    "miINT64", "miUINT64",
    "miMATRIX", "miCOMPRESSED", "miUTF8",   "miUTF16", "miUTF32"};

template <typename... Args>
std::string Cat(const Args&... args) {
  std::ostringstream out;
  (out << ... << args);
  return out.str();
}

[[noreturn]] void ThrowError(const std::string& where, const std::string& what) {
  throw std::runtime_error("mat: " + where + ": " + what);
}

bool IsKnownType(uint32_t type) {
  return type < std::size(kTypeNames) && kTypeNames[type] != nullptr;
}

std::string TypeName(uint32_t type) {
  return IsKnownType(type) ? kTypeNames[type] : Cat("type ", type);
}

std::string DimsText(const std::vector<int64_t>& dims) {
  std::string text;
  for (const int64_t dim : dims) text += (text.empty() ? "" : "x") + std::to_string(dim);
  return text;
}

// `bytes` holds at least sizeof(T) bytes; callers pass views their reader has bounds-checked.
template <typename T>
T LoadLittleEndian(std::string_view bytes) {
  uint64_t value = 0;
  for (size_t i = sizeof(T); i-- > 0;) value = (value << 8) | static_cast<uint8_t>(bytes[i]);
  return static_cast<T>(value);
}

template <typename Float, typename Bits>
Float BitCast(Bits bits) {
  static_assert(sizeof(Float) == sizeof(Bits));
  Float value;
  std::memcpy(&value, &bits, sizeof(value));
  return value;
}

// A cursor over bytes whose every read checks the remaining length. Errors name the source and,
// inside an array, the array; both views must outlive the reader (they are only read to fail,
// which keeps the common path free of string building).
class ByteReader {
 public:
  ByteReader(std::string_view bytes, std::string_view source, std::string_view array = {},
             size_t base_offset = 0)
      : bytes_(bytes), source_(source), array_(array), base_offset_(base_offset) {}

  bool AtEnd() const { return pos_ == bytes_.size(); }
  size_t remaining() const { return bytes_.size() - pos_; }
  // Offsets in messages count from the start of the buffer the reader's bytes came from.
  size_t offset() const { return base_offset_ + pos_; }
  void set_array(std::string_view array) { array_ = array; }

  std::string_view Take(size_t n, std::string_view what) {
    if (n > remaining()) {
      Fail(Cat(what, " needs ", n, " bytes but only ", remaining(), " remain (at byte ", offset(),
               ")"));
    }
    const std::string_view taken = bytes_.substr(pos_, n);
    pos_ += n;
    return taken;
  }

  uint32_t U32(std::string_view what) { return LoadLittleEndian<uint32_t>(Take(4, what)); }

  // Padding carries nothing, so a writer that leaves it off at the very end loses no data.
  void SkipPadding(size_t n) { pos_ += std::min(n, remaining()); }

  [[noreturn]] void Fail(const std::string& what) const {
    ThrowError(array_.empty() ? std::string(source_) : Cat(source_, ": ", array_), what);
  }

 private:
  std::string_view bytes_;
  std::string_view source_;
  std::string_view array_;
  size_t base_offset_;
  size_t pos_ = 0;
};

struct Element {
  uint32_t type = 0;
  std::string_view data;
  size_t tag_offset = 0;
  size_t data_offset = 0;
};

// One data element, in either tag form; normal elements are padded to 8 bytes except
// miCOMPRESSED ones, which MATLAB writes back to back.
Element ReadElement(ByteReader& reader) {
  Element element;
  element.tag_offset = reader.offset();
  const uint32_t first = reader.U32("a data element tag");
  const bool small = (first >> 16) != 0;
  element.type = small ? first & 0xffff : first;
  if (!IsKnownType(element.type)) {
    reader.Fail(
        Cat("unknown data type ", element.type, " in the element at byte ", element.tag_offset));
  }
  const uint32_t size = small ? first >> 16 : reader.U32("a data element tag");
  if (small && size > kSmallDataMaxBytes) {
    reader.Fail(Cat("the ", TypeName(element.type), " element at byte ", element.tag_offset,
                    " is a small data element of ", size, " bytes; they hold at most ",
                    kSmallDataMaxBytes));
  }
  const size_t stored = small ? kSmallDataMaxBytes : size;
  if (stored > reader.remaining()) {
    reader.Fail(Cat("the ", TypeName(element.type), " element at byte ", element.tag_offset,
                    " needs ", stored, " bytes but only ", reader.remaining(), " remain"));
  }
  element.data_offset = reader.offset();
  element.data = reader.Take(stored, "element data").substr(0, size);
  if (small) return element;
  if (element.type != kMiCompressed) reader.SkipPadding((kTagBytes - size % kTagBytes) % kTagBytes);
  return element;
}

Element ReadElementOfType(ByteReader& reader, uint32_t type, std::string_view what) {
  const Element element = ReadElement(reader);
  if (element.type != type) {
    reader.Fail(Cat(what, " at byte ", element.tag_offset, " has type ", TypeName(element.type),
                    "; expected ", TypeName(type)));
  }
  return element;
}

struct ArrayFlags {
  uint32_t mat_class = 0;
  bool complex = false;
};

ArrayFlags ReadArrayFlags(ByteReader& reader) {
  const Element element = ReadElementOfType(reader, kMiUint32, "the array flags");
  if (element.data.size() != 8) {
    reader.Fail(Cat("the array flags hold ", element.data.size(), " bytes; expected 8"));
  }
  const uint32_t word = LoadLittleEndian<uint32_t>(element.data);
  return {word & 0xff, (word & kComplexFlag) != 0};
}

std::vector<int64_t> ReadDims(ByteReader& reader) {
  const Element element = ReadElementOfType(reader, kMiInt32, "the dimensions");
  if (element.data.empty() || element.data.size() % 4 != 0) {
    reader.Fail(Cat("the dimensions hold ", element.data.size(),
                    " bytes; expected a positive multiple of 4"));
  }
  std::vector<int64_t> dims;
  dims.reserve(element.data.size() / 4);
  for (size_t at = 0; at < element.data.size(); at += 4) {
    const int32_t dim = static_cast<int32_t>(LoadLittleEndian<uint32_t>(element.data.substr(at)));
    if (dim < 0) reader.Fail(Cat("dimension ", dims.size() + 1, " is negative (", dim, ")"));
    dims.push_back(dim);
  }
  return dims;
}

int64_t ElementCount(const ByteReader& reader, const std::vector<int64_t>& dims) {
  int64_t count = 1;
  for (const int64_t dim : dims) {
    if (dim != 0 && count > std::numeric_limits<int64_t>::max() / dim) {
      reader.Fail(Cat("the dimensions ", DimsText(dims), " overflow 64 bits"));
    }
    count *= dim;
  }
  return count;
}

// Every array takes at least a tag, so dimensions that promise more arrays than the remaining
// bytes could hold are corrupt; refusing them first keeps allocations bounded by the input.
void CheckRoomForArrays(const ByteReader& reader, int64_t count, int64_t arrays_per_element) {
  const auto room = static_cast<int64_t>(reader.remaining() / kTagBytes);
  if (count > room / arrays_per_element) {
    reader.Fail(Cat("the dimensions promise ", count, " elements of ", arrays_per_element,
                    " arrays each, but only ", reader.remaining(), " bytes remain"));
  }
}

struct NumericType {
  uint32_t type;
  size_t width;
  double (*decode)(std::string_view bytes);
};

// MATLAB stores numeric data in the smallest type that holds the values exactly, whatever the
// class, so any of these may back any numeric class.
constexpr NumericType kNumericTypes[] = {
    {kMiInt8, 1,
     [](std::string_view b) -> double {
       return static_cast<int8_t>(LoadLittleEndian<uint8_t>(b));
     }},
    {kMiUint8, 1, [](std::string_view b) -> double { return LoadLittleEndian<uint8_t>(b); }},
    {kMiInt16, 2,
     [](std::string_view b) -> double {
       return static_cast<int16_t>(LoadLittleEndian<uint16_t>(b));
     }},
    {kMiUint16, 2, [](std::string_view b) -> double { return LoadLittleEndian<uint16_t>(b); }},
    {kMiInt32, 4,
     [](std::string_view b) -> double {
       return static_cast<int32_t>(LoadLittleEndian<uint32_t>(b));
     }},
    {kMiUint32, 4, [](std::string_view b) -> double { return LoadLittleEndian<uint32_t>(b); }},
    {kMiInt64, 8,
     [](std::string_view b) -> double {
       return static_cast<double>(static_cast<int64_t>(LoadLittleEndian<uint64_t>(b)));
     }},
    {kMiUint64, 8,
     [](std::string_view b) -> double {
       return static_cast<double>(LoadLittleEndian<uint64_t>(b));
     }},
    {kMiSingle, 4,
     [](std::string_view b) -> double { return BitCast<float>(LoadLittleEndian<uint32_t>(b)); }},
    {kMiDouble, 8,
     [](std::string_view b) { return BitCast<double>(LoadLittleEndian<uint64_t>(b)); }},
};

const NumericType* FindNumericType(uint32_t type) {
  for (const NumericType& numeric : kNumericTypes) {
    if (numeric.type == type) return &numeric;
  }
  return nullptr;
}

std::vector<double> ReadNumbers(ByteReader& reader, const std::vector<int64_t>& dims,
                                int64_t count) {
  const Element real = ReadElement(reader);
  const NumericType* numeric = FindNumericType(real.type);
  if (numeric == nullptr) {
    reader.Fail(Cat("the real part at byte ", real.tag_offset, " has type ", TypeName(real.type),
                    "; expected a numeric type"));
  }
  if (real.data.size() % numeric->width != 0) {
    reader.Fail(Cat("the real part holds ", real.data.size(), " bytes, not a multiple of the ",
                    numeric->width, "-byte ", TypeName(real.type)));
  }
  const size_t stored = real.data.size() / numeric->width;
  if (stored != static_cast<uint64_t>(count)) {
    reader.Fail(Cat("the real part holds ", stored, " values but the dimensions ", DimsText(dims),
                    " need ", count));
  }
  std::vector<double> numbers;
  numbers.reserve(stored);
  for (size_t i = 0; i < stored; ++i) {
    numbers.push_back(numeric->decode(real.data.substr(i * numeric->width, numeric->width)));
  }
  return numbers;
}

std::vector<uint32_t> SixteenBitUnits(const ByteReader& reader, std::string_view bytes) {
  if (bytes.size() % 2 != 0) {
    reader.Fail(Cat("the 16-bit character data holds an odd number of bytes (", bytes.size(), ")"));
  }
  std::vector<uint32_t> units;
  for (size_t at = 0; at < bytes.size(); at += 2) {
    units.push_back(LoadLittleEndian<uint16_t>(bytes.substr(at)));
  }
  return units;
}

// The number of continuation bytes after a UTF-8 lead byte, or -1 when it cannot lead.
int Utf8ContinuationCount(uint8_t lead) {
  if (lead < 0x80) return 0;
  if ((lead & 0xe0) == 0xc0) return 1;
  if ((lead & 0xf0) == 0xe0) return 2;
  if ((lead & 0xf8) == 0xf0) return 3;
  return -1;
}

std::vector<uint32_t> DecodeUtf8(const ByteReader& reader, std::string_view bytes) {
  std::vector<uint32_t> points;
  for (size_t i = 0; i < bytes.size();) {
    const auto lead = static_cast<uint8_t>(bytes[i]);
    const int extra = Utf8ContinuationCount(lead);
    if (extra < 0 || bytes.size() - i <= static_cast<size_t>(extra)) {
      reader.Fail(Cat("the miUTF8 character data is not valid UTF-8 at byte ", i));
    }
    uint32_t point = extra == 0 ? lead : lead & (0x3fu >> extra);
    for (int k = 1; k <= extra; ++k) {
      const auto next = static_cast<uint8_t>(bytes[i + k]);
      if ((next & 0xc0) != 0x80) {
        reader.Fail(Cat("the miUTF8 character data is not valid UTF-8 at byte ", i + k));
      }
      point = (point << 6) | (next & 0x3f);
    }
    points.push_back(point);
    i += extra + 1;
  }
  return points;
}

// One value per character: UTF-16 code units, code points or bytes, as the data type stores them.
std::vector<uint32_t> CharUnits(const ByteReader& reader, const Element& element) {
  switch (element.type) {
    case kMiUtf16:
    case kMiUint16:
      return SixteenBitUnits(reader, element.data);
    case kMiUtf8:
      return DecodeUtf8(reader, element.data);
    case kMiInt8:
    case kMiUint8:
      return {reinterpret_cast<const uint8_t*>(element.data.data()),
              reinterpret_cast<const uint8_t*>(element.data.data() + element.data.size())};
    default:
      reader.Fail(Cat("the character data at byte ", element.tag_offset, " has type ",
                      TypeName(element.type), "; expected miUTF16, miUINT16, miUTF8 or miINT8"));
  }
}

void AppendCodePoint(uint32_t point, std::string* text) {
  if (point > 0x10ffff) point = kReplacementCharacter;
  if (point < 0x80) {
    text->push_back(static_cast<char>(point));
  } else if (point < 0x800) {
    text->push_back(static_cast<char>(0xc0 | (point >> 6)));
    text->push_back(static_cast<char>(0x80 | (point & 0x3f)));
  } else if (point < 0x10000) {
    text->push_back(static_cast<char>(0xe0 | (point >> 12)));
    text->push_back(static_cast<char>(0x80 | ((point >> 6) & 0x3f)));
    text->push_back(static_cast<char>(0x80 | (point & 0x3f)));
  } else {
    text->push_back(static_cast<char>(0xf0 | (point >> 18)));
    text->push_back(static_cast<char>(0x80 | ((point >> 12) & 0x3f)));
    text->push_back(static_cast<char>(0x80 | ((point >> 6) & 0x3f)));
    text->push_back(static_cast<char>(0x80 | (point & 0x3f)));
  }
}

// Appends one row of characters as UTF-8, joining UTF-16 surrogate pairs; a lone surrogate
// cannot be encoded and becomes U+FFFD.
void AppendUtf8(const std::vector<uint32_t>& row, std::string* text) {
  for (size_t i = 0; i < row.size(); ++i) {
    uint32_t point = row[i];
    const bool high = point >= 0xd800 && point < 0xdc00;
    if (high && i + 1 < row.size() && row[i + 1] >= 0xdc00 && row[i + 1] < 0xe000) {
      point = 0x10000 + ((point - 0xd800) << 10) + (row[++i] - 0xdc00);
    } else if (point >= 0xd800 && point < 0xe000) {
      point = kReplacementCharacter;
    }
    AppendCodePoint(point, text);
  }
}

std::string ReadText(ByteReader& reader, const std::vector<int64_t>& dims, int64_t count) {
  const std::vector<uint32_t> units = CharUnits(reader, ReadElement(reader));
  if (units.size() != static_cast<uint64_t>(count)) {
    reader.Fail(Cat("the character data holds ", units.size(), " characters but the dimensions ",
                    DimsText(dims), " need ", count));
  }
  std::string text;
  if (count == 0) return text;
  const int64_t rows = dims[0];
  const int64_t columns = count / rows;
  for (int64_t r = 0; r < rows; ++r) {
    std::vector<uint32_t> row;
    for (int64_t c = 0; c < columns; ++c) row.push_back(units[r + c * rows]);
    if (r > 0) text.push_back('\n');
    AppendUtf8(row, &text);
  }
  return text;
}

std::vector<std::string> ReadFieldNames(ByteReader& reader) {
  const Element length_element = ReadElementOfType(reader, kMiInt32, "the field name length");
  if (length_element.data.size() != 4) {
    reader.Fail(
        Cat("the field name length holds ", length_element.data.size(), " bytes; expected 4"));
  }
  const auto length = static_cast<int32_t>(LoadLittleEndian<uint32_t>(length_element.data));
  if (length <= 0) {
    reader.Fail(Cat("the field name length is ", length, "; it must be positive"));
  }
  const Element names = ReadElementOfType(reader, kMiInt8, "the field names");
  const auto stride = static_cast<size_t>(length);
  if (names.data.size() % stride != 0) {
    reader.Fail(Cat("the field names hold ", names.data.size(),
                    " bytes, not a multiple of the field name length ", length));
  }
  std::vector<std::string> field_names;
  for (size_t at = 0; at < names.data.size(); at += stride) {
    const std::string_view padded = names.data.substr(at, stride);
    field_names.emplace_back(padded.substr(0, padded.find('\0')));
    if (field_names.back().empty()) {
      reader.Fail(Cat("field ", field_names.size(), " has an empty name"));
    }
  }
  return field_names;
}

std::pair<std::string, MatValue> ReadMatrix(const Element& element, const std::string& label,
                                            const std::string& path, int depth);

// MATLAB's notation, 1-based: "annotations(3).class", "class_names{5}".
std::string ChildPath(const std::string& path, int64_t i, std::string_view open,
                      std::string_view close) {
  std::string child = path;
  child.append(open).append(std::to_string(i + 1)).append(close);
  return child;
}

MatValue ReadChild(ByteReader& reader, const std::string& label, const std::string& path,
                   int depth) {
  const Element element = ReadElementOfType(reader, kMiMatrix, path);
  return ReadMatrix(element, label, path, depth + 1).second;
}

std::vector<MatValue> ReadCells(ByteReader& reader, int64_t count, const std::string& label,
                                const std::string& path, int depth) {
  CheckRoomForArrays(reader, count, 1);
  std::vector<MatValue> cells;
  cells.reserve(count);
  for (int64_t i = 0; i < count; ++i) {
    cells.push_back(ReadChild(reader, label, ChildPath(path, i, "{", "}"), depth));
  }
  return cells;
}

void ReadStruct(ByteReader& reader, int64_t count, const std::string& label,
                const std::string& path, int depth, MatValue* value) {
  value->field_names = ReadFieldNames(reader);
  const auto num_fields = static_cast<int64_t>(value->field_names.size());
  if (num_fields > 0) {
    CheckRoomForArrays(reader, count, num_fields);
  } else if (count > kMaxFieldlessStructElements) {
    reader.Fail(Cat("the struct has no fields and ", count, " elements; at most ",
                    kMaxFieldlessStructElements, " are supported"));
  }
  value->elements.resize(count);
  for (int64_t i = 0; i < count; ++i) {
    value->elements[i].reserve(value->field_names.size());
    for (const std::string& field : value->field_names) {
      value->elements[i].push_back(
          ReadChild(reader, label, ChildPath(path, i, "(", ")." + field), depth));
    }
  }
}

void ReadContents(ByteReader& reader, const ArrayFlags& flags, int64_t count,
                  const std::string& label, const std::string& path, int depth, MatValue* value) {
  switch (flags.mat_class) {
    case kMxCell:
      value->kind = MatValue::Kind::kCell;
      value->cells = ReadCells(reader, count, label, path, depth);
      return;
    case kMxStruct:
      value->kind = MatValue::Kind::kStruct;
      ReadStruct(reader, count, label, path, depth, value);
      return;
    case kMxChar:
      value->kind = MatValue::Kind::kChar;
      value->text = ReadText(reader, value->dims, count);
      return;
    default:
      if (flags.mat_class < kMxDouble || flags.mat_class > kMxUint64) {
        reader.Fail(Cat("array class ", flags.mat_class,
                        " is not supported; only numeric, char, cell and struct arrays are"));
      }
      if (flags.complex) reader.Fail("complex arrays are not supported");
      value->numbers = ReadNumbers(reader, value->dims, count);
  }
}

// One miMATRIX element and the name it stores. `path` names the array in messages, e.g.
// "annotations(3).class"; it is empty for a top-level variable, which its own name then names.
std::pair<std::string, MatValue> ReadMatrix(const Element& element, const std::string& label,
                                            const std::string& path, int depth) {
  const std::string unnamed =
      path.empty() ? "the variable at byte " + std::to_string(element.tag_offset) : "";
  ByteReader reader(element.data, label, path.empty() ? unnamed : path, element.data_offset);
  if (depth > kMaxDepth) reader.Fail(Cat("arrays nest deeper than ", kMaxDepth, " levels"));
  MatValue value;
  // Some writers store an empty array, such as an empty cell, as an miMATRIX without contents.
  if (element.data.empty()) {
    value.dims = {0, 0};
    return {"", value};
  }
  const ArrayFlags flags = ReadArrayFlags(reader);
  value.dims = ReadDims(reader);
  std::string name(ReadElementOfType(reader, kMiInt8, "the array name").data);
  const std::string& own_path = path.empty() ? name : path;
  if (path.empty() && !name.empty()) reader.set_array(name);
  const int64_t count = ElementCount(reader, value.dims);
  ReadContents(reader, flags, count, label, own_path, depth, &value);
  if (!reader.AtEnd()) {
    reader.Fail(Cat(reader.remaining(), " unexpected bytes after the array's data (at byte ",
                    reader.offset(), ")"));
  }
  return {std::move(name), std::move(value)};
}

void AddVariable(const Element& element, const std::string& label,
                 std::map<std::string, MatValue>* variables) {
  if (element.type != kMiMatrix) {
    ThrowError(label, Cat("the element at byte ", element.tag_offset, " has type ",
                          TypeName(element.type), "; variables must be miMATRIX or miCOMPRESSED"));
  }
  auto [name, value] = ReadMatrix(element, label, "", 0);
  if (name.empty())
    ThrowError(label, Cat("the variable at byte ", element.tag_offset, " has no name"));
  if (!variables->emplace(name, std::move(value)).second) {
    ThrowError(label, Cat("variable '", name, "' appears twice"));
  }
}

#ifdef HIER_HAVE_ZLIB
std::string Inflate(const Element& element, const std::string& origin) {
  const std::string where = Cat(origin, ": the compressed element at byte ", element.tag_offset);
  z_stream stream{};
  if (inflateInit(&stream) != Z_OK) ThrowError(where, "zlib cannot start (out of memory)");
  stream.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(element.data.data()));
  stream.avail_in = static_cast<uInt>(element.data.size());  // tags hold 32-bit sizes
  std::string inflated;
  int status = Z_OK;
  while (status == Z_OK) {
    if (stream.avail_out == 0) {
      const size_t used = inflated.size();
      inflated.resize(used + std::max(kInflateChunkBytes, used));
      stream.next_out = reinterpret_cast<Bytef*>(inflated.data() + used);
      stream.avail_out = static_cast<uInt>(inflated.size() - used);
    }
    status = inflate(&stream, Z_NO_FLUSH);
  }
  const std::string message = stream.msg != nullptr ? stream.msg : "no details";
  inflated.resize(stream.total_out);
  inflateEnd(&stream);
  if (status == Z_BUF_ERROR) {
    ThrowError(where, Cat("the zlib stream is truncated after ", element.data.size(), " bytes"));
  }
  if (status != Z_STREAM_END) ThrowError(where, "is not valid zlib data: " + message);
  return inflated;
}
#else
[[noreturn]] std::string Inflate(const Element& element, const std::string& origin) {
  ThrowError(origin, Cat("the variable at byte ", element.tag_offset,
                         " is compressed; this build has no zlib (HIER_HAVE_ZLIB is not "
                         "defined); save the file with -v6 to read it"));
}
#endif

void AddCompressedVariables(const Element& element, const std::string& origin,
                            std::map<std::string, MatValue>* variables) {
  const std::string inflated = Inflate(element, origin);
  const std::string label = Cat(origin, " (decompressed from byte ", element.tag_offset, ")");
  ByteReader reader(inflated, label);
  while (!reader.AtEnd()) AddVariable(ReadElement(reader), label, variables);
}

void CheckHeader(std::string_view header, const std::string& origin) {
  ByteReader reader(header, origin);
  reader.Take(kHeaderTextBytes, "the header text");
  const auto version = LoadLittleEndian<uint16_t>(reader.Take(2, "the version"));
  const std::string_view endian = reader.Take(2, "the endian indicator");
  if (endian == "MI") {
    reader.Fail(
        "is big-endian (endian indicator 'MI'); only little-endian MAT files are supported");
  }
  if (endian != "IM") {
    reader.Fail("is not a level-5 MAT file: bytes 126-127 are not the endian indicator 'IM'");
  }
  if (version != kVersion5) {
    reader.Fail(Cat("has MAT-file version 0x", std::hex, version, "; only 0x100 is supported",
                    version == kVersion73 ? " (v7.3 files are HDF5; save with -v7 instead)" : ""));
  }
}

}  // namespace

const MatValue& MatValue::Field(size_t i, const std::string& name) const {
  if (kind != Kind::kStruct) {
    throw std::runtime_error("mat: field '" + name +
                             "' requested of an array that is not a struct");
  }
  if (i >= elements.size()) {
    throw std::runtime_error(Cat("mat: field '", name, "' requested of element ", i,
                                 " of a struct with ", elements.size(), " elements"));
  }
  const auto found = std::find(field_names.begin(), field_names.end(), name);
  if (found == field_names.end()) {
    std::string fields;
    for (const std::string& field : field_names) fields += (fields.empty() ? "" : ", ") + field;
    throw std::runtime_error("mat: the struct has no field '" + name +
                             "'; its fields are: " + fields);
  }
  return elements[i].at(found - field_names.begin());
}

int64_t MatValue::count() const {
  if (dims.empty()) return 0;
  int64_t product = 1;
  for (const int64_t dim : dims) product *= dim;
  return product;
}

std::map<std::string, MatValue> ParseMat(const std::string& bytes, const std::string& origin) {
  if (bytes.empty()) ThrowError(origin, "is empty; expected a MAT file");
  ByteReader reader(bytes, origin);
  CheckHeader(reader.Take(kHeaderBytes, "the MAT-file header"), origin);
  std::map<std::string, MatValue> variables;
  while (!reader.AtEnd()) {
    const Element element = ReadElement(reader);
    if (element.type == kMiCompressed) {
      AddCompressedVariables(element, origin, &variables);
    } else {
      AddVariable(element, origin, &variables);
    }
  }
  if (variables.empty()) ThrowError(origin, "holds no variables");
  return variables;
}

std::map<std::string, MatValue> ReadMatFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) ThrowError(path, Cat("cannot open: ", std::strerror(errno)));
  std::string bytes{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  if (in.bad()) ThrowError(path, Cat("cannot read: ", std::strerror(errno)));
  return ParseMat(bytes, path);
}

}  // namespace hier::data
