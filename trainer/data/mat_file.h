// Reader for MATLAB level-5 MAT files, enough for Stanford Cars-196's cars_annos.mat.
//
// Not Debian's matio (1.5.23): measured on this reader's fuzz corpus with every byte flipped and
// every truncation, matio allocates whatever size a damaged header claims (0xff0000010 bytes after
// one flipped byte of a cars_annos-like file) and reads a truncated file without an error (a
// variable of the corpus's `truncated`), where this reader refuses both, naming the byte.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace hier::data {

// One MATLAB array. Numeric classes of any width come back as doubles; char arrays as UTF-8.
struct MatValue {
  enum class Kind { kNumeric, kChar, kCell, kStruct };

  Kind kind = Kind::kNumeric;
  std::vector<int64_t> dims;             // as stored, e.g. {1, 16185}
  std::vector<double> numbers;           // kNumeric, column-major
  std::string text;                      // kChar; the rows of a multi-row array are joined by '\n'
  std::vector<MatValue> cells;           // kCell, column-major
  std::vector<std::string> field_names;  // kStruct
  std::vector<std::vector<MatValue>> elements;  // kStruct: elements[i][f] is field f of element i

  // Field `name` of struct element `i` (column-major). Throws std::runtime_error naming the field
  // when this is not a struct, `i` is out of range or there is no such field.
  const MatValue& Field(size_t i, const std::string& name) const;

  // The number of elements, cells or numbers: the product of dims, 0 when dims is empty.
  int64_t count() const;
};

// The variables of the MAT file at `path`, by name. Throws std::runtime_error ("mat: <path>: ...")
// when the file cannot be read, is not a little-endian level-5 MAT file (v6 or v7; v7.3 is HDF5),
// is truncated or corrupt, holds no variables or uses an unsupported feature (sparse, complex or
// object arrays; compressed variables when built without zlib, i.e. without HIER_HAVE_ZLIB).
std::map<std::string, MatValue> ReadMatFile(const std::string& path);

// ParseMat's contract is ReadMatFile's for a file image held in memory; `origin` names the source
// in error messages.
std::map<std::string, MatValue> ParseMat(const std::string& bytes, const std::string& origin);

}  // namespace hier::data
