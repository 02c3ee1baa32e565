#include "trainer/data/idx_reader.h"

#include <c10/util/Exception.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <limits>

#ifdef HIER_HAVE_ZLIB
#include <zlib.h>
#endif

namespace hier::data {
namespace {

constexpr uint8_t kUnsignedByteType = 0x08;
constexpr int kMaxDims = 4;
// Large reads keep the 47 MB training images to a few dozen calls.
constexpr size_t kChunkBytes = size_t{4} << 20;

#ifndef HIER_HAVE_ZLIB
bool EndsWith(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}
#endif

// The bytes of the file, decompressed when it is gzip data. Read returns fewer bytes than asked
// only at the end of the input, so callers can tell truncation from read errors (which throw).
class ByteSource {
 public:
  explicit ByteSource(const std::string& path) : path_(path) {
#ifdef HIER_HAVE_ZLIB
    // gzread passes non-gzip files through unchanged, so one reader serves both kinds.
    file_ = gzopen(path.c_str(), "rb");
    TORCH_CHECK(file_ != nullptr, "idx: cannot open ", path, ": ",
                errno != 0 ? std::strerror(errno) : "out of memory");
    gzbuffer(file_, 1 << 17);
#else
    TORCH_CHECK(!EndsWith(path, ".gz"), "idx: cannot read ", path,
                ": this build has no zlib (HIER_HAVE_ZLIB is not defined); gunzip the file first");
    fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    TORCH_CHECK(fd_ >= 0, "idx: cannot open ", path, ": ", std::strerror(errno));
#endif
  }
  ByteSource(const ByteSource&) = delete;
  ByteSource& operator=(const ByteSource&) = delete;
  ~ByteSource() {
#ifdef HIER_HAVE_ZLIB
    gzclose(file_);
#else
    ::close(fd_);
#endif
  }

  size_t Read(uint8_t* out, size_t n) {
    size_t total = 0;
    while (total < n) {
      const size_t want = std::min(n - total, kChunkBytes);
#ifdef HIER_HAVE_ZLIB
      const int got = gzread(file_, out + total, static_cast<unsigned>(want));
      if (got < 0) {
        int code = Z_OK;
        const char* message = gzerror(file_, &code);
        TORCH_CHECK(false, "idx: cannot read ", path_, ": ",
                    code == Z_ERRNO ? std::strerror(errno) : message);
      }
#else
      const ssize_t got = ::read(fd_, out + total, want);
      if (got < 0 && errno == EINTR) continue;
      TORCH_CHECK(got >= 0, "idx: cannot read ", path_, ": ", std::strerror(errno));
#endif
      if (got == 0) break;
      total += static_cast<size_t>(got);
    }
    return total;
  }

  // Called at the end of the input: a gzip stream cut inside its trailer still yields all the
  // data, and only zlib's end-of-file error reveals it.
  void CheckComplete() {
#ifdef HIER_HAVE_ZLIB
    int code = Z_OK;
    const char* message = gzerror(file_, &code);
    TORCH_CHECK(code == Z_OK, "idx: ", path_, " is a truncated or corrupt gzip file: ", message);
#endif
  }

 private:
  std::string path_;
#ifdef HIER_HAVE_ZLIB
  gzFile file_;
#else
  int fd_;
#endif
};

std::string HexByte(uint8_t byte) {
  static constexpr char kHex[] = "0123456789abcdef";
  return {'0', 'x', kHex[byte >> 4], kHex[byte & 0xf]};
}

uint32_t BigEndian32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

}  // namespace

IdxArray ReadIdx(const std::string& path) {
  ByteSource source(path);
  std::array<uint8_t, 4> magic;
  const size_t magic_bytes = source.Read(magic.data(), magic.size());
  TORCH_CHECK(magic_bytes == magic.size(), "idx: ", path,
              " is too short for an IDX header: ", magic_bytes, " bytes, expected at least 4");
  TORCH_CHECK(magic[0] == 0 && magic[1] == 0, "idx: ", path,
              " is not an IDX file: the magic must start with two zero bytes, got ",
              HexByte(magic[0]), " ", HexByte(magic[1]),
              magic[0] == 0x1f && magic[1] == 0x8b ? " (that is gzip data; gunzip it first)" : "");
  TORCH_CHECK(magic[2] == kUnsignedByteType, "idx: ", path, " has element type ", HexByte(magic[2]),
              "; only 0x08 (unsigned byte) is supported");
  const int ndims = magic[3];
  TORCH_CHECK(ndims >= 1 && ndims <= kMaxDims, "idx: ", path, " has ", ndims,
              " dimensions; expected 1 to ", kMaxDims);

  std::array<uint8_t, 4 * kMaxDims> sizes;
  const size_t size_bytes = source.Read(sizes.data(), 4 * ndims);
  TORCH_CHECK(size_bytes == static_cast<size_t>(4 * ndims), "idx: ", path,
              " is truncated in its header: expected ", 4 * ndims,
              " bytes of dimension sizes, got ", size_bytes);
  IdxArray array;
  int64_t expected = 1;
  for (int d = 0; d < ndims; ++d) {
    const int64_t dim = BigEndian32(sizes.data() + 4 * d);
    TORCH_CHECK(dim == 0 || expected <= std::numeric_limits<int64_t>::max() / dim, "idx: ", path,
                ": the dimension sizes overflow 64 bits");
    expected *= dim;
    array.dims.push_back(dim);
  }

  // Grows with the data actually read, so a corrupt header cannot force a huge allocation.
  size_t got = 0;
  while (got < static_cast<uint64_t>(expected)) {
    const size_t want = std::min<uint64_t>(kChunkBytes, static_cast<uint64_t>(expected) - got);
    array.data.resize(got + want);
    const size_t n = source.Read(array.data.data() + got, want);
    got += n;
    if (n < want) break;
  }
  TORCH_CHECK(got == static_cast<uint64_t>(expected), "idx: ", path, " is truncated: expected ",
              expected, " data bytes, got ", got);

  std::array<uint8_t, 4096> rest;
  size_t trailing = 0;
  for (size_t n; (n = source.Read(rest.data(), rest.size())) > 0;) trailing += n;
  TORCH_CHECK(trailing == 0, "idx: ", path, " has ", trailing, " trailing bytes after its ",
              expected, " data bytes");
  source.CheckComplete();
  return array;
}

}  // namespace hier::data
