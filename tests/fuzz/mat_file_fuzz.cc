// Fuzz target: the MAT-file reader (Stanford Cars-196's cars_annos.mat). Whatever the bytes,
// ParseMat throws std::runtime_error or returns variables whose every struct field can be read.
#include <cstddef>
#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>

#include "trainer/data/mat_file.h"

namespace {

// Reads every value the way a data-set layout does: counts, cells and each struct field by name.
void Visit(const hier::data::MatValue& value) {
  (void)value.count();
  for (const hier::data::MatValue& cell : value.cells) Visit(cell);
  for (size_t i = 0; i < value.elements.size(); ++i) {
    for (const std::string& name : value.field_names) Visit(value.Field(i, name));
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::map<std::string, hier::data::MatValue> variables;
  try {
    variables =
        hier::data::ParseMat(std::string(reinterpret_cast<const char*>(data), size), "fuzz");
  } catch (const std::runtime_error&) {
    return 0;  // a clean refusal
  }
  if (variables.empty()) __builtin_trap();
  for (const auto& [name, value] : variables) Visit(value);
  return 0;
}
