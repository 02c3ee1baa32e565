// Fuzz target: the IDX reader (Fashion-MNIST's image and label files, plain or gzip-compressed).
// Whatever the bytes, ReadIdx throws c10::Error or returns an array holding exactly the product
// of its dimensions in bytes.
#include <c10/util/Exception.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "trainer/data/idx_reader.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // ReadIdx takes a path: the bytes go to an in-memory file, reopened through /proc.
  static const int fd = memfd_create("idx_reader_fuzz", MFD_CLOEXEC);
  if (fd < 0 || ftruncate(fd, 0) != 0 || pwrite(fd, data, size, 0) != static_cast<ssize_t>(size)) {
    __builtin_trap();
  }
  try {
    const hier::data::IdxArray array = hier::data::ReadIdx("/proc/self/fd/" + std::to_string(fd));
    uint64_t count = 1;
    for (const int64_t dim : array.dims) count *= static_cast<uint64_t>(dim);
    if (array.dims.empty() || count != array.data.size()) __builtin_trap();
  } catch (const c10::Error&) {
    // A clean refusal.
  }
  return 0;
}
