// Little helpers that append plain values to a byte buffer and read them back with bounds
// checks, for the snapshot formats (host byte order: snapshots are a cache, rebuilt when they do
// not read back).
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <type_traits>
#include <vector>

#include "absl/types/span.h"

namespace hier::index {

template <typename T>
void AppendValue(std::vector<uint8_t>* out, const T& value) {
  static_assert(std::is_trivially_copyable_v<T>);
  const auto* bytes = reinterpret_cast<const uint8_t*>(&value);
  out->insert(out->end(), bytes, bytes + sizeof(T));
}

inline void AppendBytes(std::vector<uint8_t>* out, absl::Span<const uint8_t> bytes) {
  AppendValue<uint64_t>(out, bytes.size());
  out->insert(out->end(), bytes.begin(), bytes.end());
}

inline void AppendString(std::vector<uint8_t>* out, const std::string& text) {
  AppendBytes(
      out, absl::Span<const uint8_t>(reinterpret_cast<const uint8_t*>(text.data()), text.size()));
}

// Reads values in the order they were appended; every read fails (returns false) once the
// buffer runs short, and stays failed.
class ByteReader {
 public:
  explicit ByteReader(absl::Span<const uint8_t> bytes) : bytes_(bytes) {}

  template <typename T>
  bool Read(T* value) {
    static_assert(std::is_trivially_copyable_v<T>);
    if (!ok_ || bytes_.size() - offset_ < sizeof(T)) return ok_ = false;
    std::memcpy(value, bytes_.data() + offset_, sizeof(T));
    offset_ += sizeof(T);
    return true;
  }

  bool ReadBytes(absl::Span<const uint8_t>* out) {
    uint64_t size = 0;
    if (!Read(&size) || bytes_.size() - offset_ < size) return ok_ = false;
    *out = bytes_.subspan(offset_, size);
    offset_ += size;
    return true;
  }

  bool ReadString(std::string* out) {
    absl::Span<const uint8_t> bytes;
    if (!ReadBytes(&bytes)) return false;
    out->assign(bytes.begin(), bytes.end());
    return true;
  }

  bool at_end() const { return ok_ && offset_ == bytes_.size(); }

 private:
  absl::Span<const uint8_t> bytes_;
  size_t offset_ = 0;
  bool ok_ = true;
};

}  // namespace hier::index
