// Photo-like synthetic JPEGs for throughput measurements: CUB/Cars-sized (500x375) and with
// enough detail that decoding them costs what decoding real photos costs.
#pragma once

#include <cstdint>
#include <string>

#include "trainer/data/dataset_layout.h"

namespace hier::bench {

// Writes `classes` x `per_class` JPEGs (quality 90) as an image folder, dir/class<k>/<i>.jpg, and
// returns their list; the same seed writes the same files. Throws std::runtime_error when a file
// cannot be written.
data::ImageList WriteSyntheticPhotoFolder(const std::string& dir, int classes, int per_class,
                                          uint32_t seed);

}  // namespace hier::bench
