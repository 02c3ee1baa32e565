// hier_synthetic_photos DIR CLASSES PER_CLASS: writes an image folder of photo-like synthetic
// JPEGs (500x375) for throughput runs of hier-train (deploy/experiments/trainer-throughput.sh).
#include <cstdio>
#include <exception>
#include <string>

#include "tests/bench/synthetic_photos.h"

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: hier_synthetic_photos DIR CLASSES PER_CLASS\n");
    return 2;
  }
  try {
    const int classes = std::stoi(argv[2]), per_class = std::stoi(argv[3]);
    const auto list = hier::bench::WriteSyntheticPhotoFolder(argv[1], classes, per_class, 7);
    std::printf("%lld JPEGs in %s\n", static_cast<long long>(list.size()), argv[1]);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "hier_synthetic_photos: %s\n", e.what());
    return 1;
  }
  return 0;
}
