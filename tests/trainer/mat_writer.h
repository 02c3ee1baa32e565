// Test-only writer of MATLAB level-5 MAT file images, to feed trainer/data/mat_file.h whole or
// assembled element by element into malformed files.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "trainer/data/mat_file.h"

namespace hier::testing {

// Data types of element tags (MAT-File Format, table 1-1).
enum MatType : uint32_t {
  kMiInt8 = 1,
  kMiUint8 = 2,
  kMiInt16 = 3,
  kMiUint16 = 4,
  kMiInt32 = 5,
  kMiUint32 = 6,
  kMiSingle = 7,
  kMiDouble = 9,
  kMiInt64 = 12,
  kMiUint64 = 13,
  kMiMatrix = 14,
  kMiCompressed = 15,
  kMiUtf8 = 16,
  kMiUtf16 = 17,
};

// Array classes of the array flags (MAT-File Format, table 1-3).
enum MatClass : uint8_t {
  kMxCell = 1,
  kMxStruct = 2,
  kMxChar = 4,
  kMxSparse = 5,
  kMxDouble = 6,
  kMxSingle = 7,
  kMxInt8 = 8,
  kMxUint8 = 9,
  kMxInt16 = 10,
  kMxUint16 = 11,
  kMxInt32 = 12,
  kMxUint32 = 13,
  kMxInt64 = 14,
  kMxUint64 = 15,
};

struct MatWriteOptions {
  bool compress = false;          // each variable in its own miCOMPRESSED element (needs zlib)
  bool numbers_as_uint8 = false;  // numeric arrays whose values all fit stored as miUINT8
  bool small_elements = false;    // data of 1 to 4 bytes in small data elements, as MATLAB does
};

namespace internal {

template <typename T>
uint64_t Bits(T value) {
  if constexpr (std::is_floating_point_v<T>) {
    std::conditional_t<sizeof(T) == 4, uint32_t, uint64_t> bits;
    static_assert(sizeof(bits) == sizeof(value));
    std::memcpy(&bits, &value, sizeof(bits));
    return bits;
  } else {
    return static_cast<std::make_unsigned_t<T>>(value);
  }
}

}  // namespace internal

// `values` as little-endian bytes, whatever the host's byte order.
template <typename T>
std::string LittleEndian(const std::vector<T>& values) {
  std::string bytes;
  for (const T value : values) {
    const uint64_t bits = internal::Bits(value);
    for (size_t i = 0; i < sizeof(T); ++i) bytes.push_back(static_cast<char>(bits >> (8 * i)));
  }
  return bytes;
}

// The 128-byte header; `endian` is the two-character indicator ("IM" is little-endian).
std::string MatHeader(const std::string& endian = "IM", uint16_t version = 0x0100);

// A data element: tag, `data` and padding to 8 bytes (none after miCOMPRESSED, as MATLAB writes
// it); a small data element when `small` and `data` has 1 to 4 bytes.
std::string DataElement(uint32_t type, const std::string& data, bool small = false);

// An miMATRIX element of `mat_class` with no flags set; `contents` are the subelements after the
// name (the real part, character data, fields or cells).
std::string MatrixElement(uint8_t mat_class, const std::vector<int64_t>& dims,
                          const std::string& name, const std::string& contents, bool small = false);

// `value` as an miMATRIX element: numbers as class double, text (ASCII only) as a 1xN miUTF16 row.
std::string EncodeMatrix(const std::string& name, const data::MatValue& value,
                         const MatWriteOptions& options);

#ifdef HIER_HAVE_ZLIB
std::string ZlibCompress(const std::string& bytes);
#endif

// A whole MAT file image holding `variables` in order. Throws std::invalid_argument for text that
// is not ASCII, or for compression in a build without zlib.
std::string WriteMat(const std::vector<std::pair<std::string, data::MatValue>>& variables,
                     const MatWriteOptions& options = {});

}  // namespace hier::testing
