// Reader for the IDX array files of MNIST and Fashion-MNIST (plain or gzip-compressed).
//
// The format: big-endian magic 0x00 0x00 <type> <ndims>, ndims big-endian uint32 sizes, then the
// elements row-major. Only type 0x08 (unsigned byte) is supported, which covers the image and
// label files of both data sets.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace hier::data {

struct IdxArray {
  std::vector<int64_t> dims;  // outermost first, e.g. {60000, 28, 28}
  std::vector<uint8_t> data;  // row-major, product(dims) bytes
};

// Reads the IDX file at `path`; a path ending in ".gz" is decompressed, which needs a build with
// zlib (HIER_HAVE_ZLIB). Throws c10::Error naming the path when the file is missing, unreadable,
// not IDX, of another element type, truncated or followed by trailing bytes.
IdxArray ReadIdx(const std::string& path);

}  // namespace hier::data
