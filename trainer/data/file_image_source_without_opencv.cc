// MakeFileSource in a build without OpenCV: image files cannot be decoded, so file layouts are
// refused with a message saying what to install.
#include <c10/util/Exception.h>

#include "trainer/data/image_source.h"

namespace hier::data {

std::unique_ptr<ImageSource> MakeFileSource(ImageList list, const Preprocessing&,
                                            const FileSourceOptions&) {
  TORCH_CHECK(false, "--dataset: image files (", list.size(),
              " listed) need OpenCV, and this build has none; install libopencv-imgcodecs-dev "
              "and libopencv-imgproc-dev and rebuild");
}

}  // namespace hier::data
