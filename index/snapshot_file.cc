#include "index/snapshot_file.h"

#include <zlib.h>

#include <cstring>

#include "absl/strings/str_cat.h"
#include "index/byte_io.h"
#include "index/durable_file.h"

namespace hier::index {
namespace {

constexpr char kMagic[8] = {'H', 'I', 'E', 'R', 'S', 'N', 'A', 'P'};
constexpr uint32_t kFormat = 1;

uint32_t Checksum(const uint8_t* bytes, size_t size) {
  uLong crc = crc32(0L, Z_NULL, 0);
  // zlib takes 32-bit lengths; feed large payloads in pieces.
  constexpr size_t kPiece = 1u << 30;
  for (size_t offset = 0; offset < size; offset += kPiece) {
    crc = crc32(crc, bytes + offset, static_cast<uInt>(std::min(kPiece, size - offset)));
  }
  return static_cast<uint32_t>(crc);
}

}  // namespace

absl::Status WriteSnapshotFile(const std::string& path, const Snapshot& snapshot) {
  std::vector<uint8_t> bytes(kMagic, kMagic + sizeof(kMagic));
  AppendValue(&bytes, kFormat);
  AppendString(&bytes, snapshot.kind);
  AppendValue(&bytes, snapshot.dim);
  AppendValue(&bytes, snapshot.c);
  AppendValue(&bytes, snapshot.high_water_seq);
  AppendBytes(&bytes, snapshot.candidates);
  AppendValue(&bytes, Checksum(bytes.data(), bytes.size()));
  return WriteFileDurably(
      path, std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
}

absl::StatusOr<Snapshot> ReadSnapshotFile(const std::string& path) {
  absl::StatusOr<std::string> content = ReadWholeFile(path);
  if (!content.ok()) return content.status();
  const auto* bytes = reinterpret_cast<const uint8_t*>(content->data());
  const size_t size = content->size();
  const auto damaged = [&](const char* problem) {
    return absl::DataLossError(absl::StrCat("snapshot ", path, ": ", problem));
  };
  if (size < sizeof(kMagic) + sizeof(uint32_t) || std::memcmp(bytes, kMagic, sizeof(kMagic)) != 0) {
    return damaged("not an index snapshot");
  }
  uint32_t stored_checksum = 0;
  std::memcpy(&stored_checksum, bytes + size - sizeof(uint32_t), sizeof(uint32_t));
  if (Checksum(bytes, size - sizeof(uint32_t)) != stored_checksum) {
    return damaged("checksum mismatch (the file is cut short or altered)");
  }
  ByteReader reader(
      absl::MakeConstSpan(bytes + sizeof(kMagic), size - sizeof(kMagic) - sizeof(uint32_t)));
  Snapshot snapshot;
  uint32_t format = 0;
  absl::Span<const uint8_t> candidates;
  if (!reader.Read(&format) || format != kFormat) return damaged("unknown format version");
  if (!reader.ReadString(&snapshot.kind) || !reader.Read(&snapshot.dim) ||
      !reader.Read(&snapshot.c) || !reader.Read(&snapshot.high_water_seq) ||
      !reader.ReadBytes(&candidates) || !reader.at_end()) {
    return damaged("malformed contents");
  }
  snapshot.candidates.assign(candidates.begin(), candidates.end());
  return snapshot;
}

}  // namespace hier::index
