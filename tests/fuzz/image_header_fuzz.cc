// Fuzz target: the image header sniffer, which reads the size of every image a client sends
// before anything decodes it. It must never read out of bounds and never report a negative size.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

#include "server/model/image_header.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::optional<hier::server::ImageSize> found =
      hier::server::EncodedImageSize(std::string_view(reinterpret_cast<const char*>(data), size));
  if (found.has_value() && (found->width < 0 || found->height < 0)) __builtin_trap();
  return 0;
}
