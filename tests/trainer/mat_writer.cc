#include "tests/trainer/mat_writer.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#ifdef HIER_HAVE_ZLIB
#include <zlib.h>
#endif

namespace hier::testing {
namespace {

using data::MatValue;

constexpr size_t kHeaderTextBytes = 116;
constexpr size_t kSubsystemOffsetBytes = 8;
constexpr size_t kSmallDataMaxBytes = 4;

std::string Padding(size_t size) { return std::string((8 - size % 8) % 8, '\0'); }

bool FitsUint8(const std::vector<double>& numbers) {
  return std::all_of(numbers.begin(), numbers.end(),
                     [](double x) { return x >= 0 && x <= 255 && x == std::trunc(x); });
}

std::string EncodeNumbers(const std::vector<double>& numbers, const MatWriteOptions& options) {
  if (options.numbers_as_uint8 && FitsUint8(numbers)) {
    const std::vector<uint8_t> bytes(numbers.begin(), numbers.end());
    return DataElement(kMiUint8, LittleEndian(bytes), options.small_elements);
  }
  return DataElement(kMiDouble, LittleEndian(numbers), options.small_elements);
}

std::string EncodeText(const std::string& name, const std::string& text,
                       const MatWriteOptions& options) {
  std::vector<uint16_t> units;
  for (const char c : text) {
    if (static_cast<unsigned char>(c) >= 0x80) {
      throw std::invalid_argument("mat_writer: text must be ASCII: " + text);
    }
    units.push_back(static_cast<uint16_t>(c));
  }
  // MATLAB gives '' the dimensions 0x0.
  const std::vector<int64_t> dims = {units.empty() ? 0 : 1, static_cast<int64_t>(units.size())};
  return MatrixElement(kMxChar, dims, name,
                       DataElement(kMiUtf16, LittleEndian(units), options.small_elements),
                       options.small_elements);
}

std::string EncodeStruct(const std::string& name, const MatValue& value,
                         const MatWriteOptions& options) {
  size_t length = 1;  // room for each name's terminating NUL
  for (const std::string& field : value.field_names) length = std::max(length, field.size() + 1);
  std::string names;
  for (const std::string& field : value.field_names) {
    names += field + std::string(length - field.size(), '\0');
  }
  std::string contents =
      DataElement(kMiInt32, LittleEndian<int32_t>({static_cast<int32_t>(length)}),
                  options.small_elements) +
      DataElement(kMiInt8, names, options.small_elements);
  for (const std::vector<MatValue>& element : value.elements) {
    for (const MatValue& field : element) contents += EncodeMatrix("", field, options);
  }
  return MatrixElement(kMxStruct, value.dims, name, contents, options.small_elements);
}

std::string EncodeVariable(const std::string& name, const MatValue& value,
                           const MatWriteOptions& options) {
  const std::string matrix = EncodeMatrix(name, value, options);
  if (!options.compress) return matrix;
#ifdef HIER_HAVE_ZLIB
  return DataElement(kMiCompressed, ZlibCompress(matrix));
#else
  throw std::invalid_argument("mat_writer: compression needs a build with HIER_HAVE_ZLIB");
#endif
}

}  // namespace

std::string MatHeader(const std::string& endian, uint16_t version) {
  std::string header = "MATLAB 5.0 MAT-file, written by the hier-serve tests";
  header.resize(kHeaderTextBytes, ' ');
  header.append(kSubsystemOffsetBytes, '\0');
  return header + LittleEndian<uint16_t>({version}) + endian;
}

std::string DataElement(uint32_t type, const std::string& data, bool small) {
  // A small element of 0 bytes would read as a normal tag, so empty data always gets one.
  if (small && !data.empty() && data.size() <= kSmallDataMaxBytes) {
    const auto size = static_cast<uint32_t>(data.size());
    return LittleEndian<uint32_t>({size << 16 | type}) + data +
           std::string(kSmallDataMaxBytes - data.size(), '\0');
  }
  const std::string tag = LittleEndian<uint32_t>({type, static_cast<uint32_t>(data.size())});
  return tag + data + (type == kMiCompressed ? "" : Padding(data.size()));
}

std::string MatrixElement(uint8_t mat_class, const std::vector<int64_t>& dims,
                          const std::string& name, const std::string& contents, bool small) {
  std::vector<int32_t> dims32;
  for (const int64_t dim : dims) dims32.push_back(static_cast<int32_t>(dim));
  return DataElement(kMiMatrix, DataElement(kMiUint32, LittleEndian<uint32_t>({mat_class, 0})) +
                                    DataElement(kMiInt32, LittleEndian(dims32), small) +
                                    DataElement(kMiInt8, name, small) + contents);
}

std::string EncodeMatrix(const std::string& name, const MatValue& value,
                         const MatWriteOptions& options) {
  switch (value.kind) {
    case MatValue::Kind::kNumeric:
      return MatrixElement(kMxDouble, value.dims, name, EncodeNumbers(value.numbers, options),
                           options.small_elements);
    case MatValue::Kind::kChar:
      return EncodeText(name, value.text, options);
    case MatValue::Kind::kCell: {
      std::string contents;
      for (const MatValue& cell : value.cells) contents += EncodeMatrix("", cell, options);
      return MatrixElement(kMxCell, value.dims, name, contents, options.small_elements);
    }
    case MatValue::Kind::kStruct:
      return EncodeStruct(name, value, options);
  }
  throw std::invalid_argument("mat_writer: unknown MatValue kind");
}

#ifdef HIER_HAVE_ZLIB
std::string ZlibCompress(const std::string& bytes) {
  uLongf size = compressBound(static_cast<uLong>(bytes.size()));
  std::string compressed(size, '\0');
  if (compress2(reinterpret_cast<Bytef*>(compressed.data()), &size,
                reinterpret_cast<const Bytef*>(bytes.data()), static_cast<uLong>(bytes.size()),
                Z_DEFAULT_COMPRESSION) != Z_OK) {
    throw std::runtime_error("mat_writer: compress2 failed");
  }
  compressed.resize(size);
  return compressed;
}
#endif

std::string WriteMat(const std::vector<std::pair<std::string, data::MatValue>>& variables,
                     const MatWriteOptions& options) {
  std::string file = MatHeader();
  for (const auto& [name, value] : variables) file += EncodeVariable(name, value, options);
  return file;
}

}  // namespace hier::testing
