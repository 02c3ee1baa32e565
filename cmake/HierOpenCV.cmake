# OpenCV's core, imgproc and imgcodecs as imported targets OpenCV::<module>, and
# HIER_HAVE_OPENCV when all three are present. Debian ships OpenCV's CMake package only with
# libopencv-dev (every module and its dependencies), so the three modules the trainer uses are
# found directly.
# HIER_WITH_OPENCV=OFF leaves it out, e.g. beside a LibTorch built with the pre-C++11 string ABI.
option(HIER_WITH_OPENCV "Decode image files with OpenCV when it is found" ON)
find_path(HIER_OPENCV_INCLUDE_DIR opencv2/core.hpp PATH_SUFFIXES opencv4)
set(HIER_HAVE_OPENCV ${HIER_WITH_OPENCV})
if(NOT HIER_OPENCV_INCLUDE_DIR)
  set(HIER_HAVE_OPENCV OFF)
endif()
foreach(module core imgproc imgcodecs)
  find_library(HIER_OPENCV_${module}_LIBRARY opencv_${module})
  if(NOT HIER_OPENCV_${module}_LIBRARY)
    set(HIER_HAVE_OPENCV OFF)
  elseif(HIER_HAVE_OPENCV)
    add_library(OpenCV::${module} UNKNOWN IMPORTED)
    set_target_properties(OpenCV::${module} PROPERTIES
      IMPORTED_LOCATION "${HIER_OPENCV_${module}_LIBRARY}"
      INTERFACE_INCLUDE_DIRECTORIES "${HIER_OPENCV_INCLUDE_DIR}")
  endif()
endforeach()
