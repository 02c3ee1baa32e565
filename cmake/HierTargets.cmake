# Helpers that declare the project's targets with one set of warnings and options.

# Warnings for the project's own code only (never global, never for dependencies).
function(hier_set_warnings target)
  # -Wno-psabi: GCC notes that 32-byte vector arguments change the ABI without AVX; ours are all
  # inlined (trainer/core/fast_math.h).
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wno-unused-parameter -Wno-psabi)
endfunction()

# hier_library(NAME SOURCES ... DEPS ...): a static library rooted at the repository top, so
# includes read "trainer/core/poincare.h".
function(hier_library name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS" ${ARGN})
  add_library(${name} STATIC ${ARG_SOURCES})
  target_include_directories(${name} PUBLIC ${PROJECT_SOURCE_DIR})
  target_link_libraries(${name} PUBLIC ${ARG_DEPS})
  hier_set_warnings(${name})
endfunction()

# hier_test(NAME SOURCES ... DEPS ... [LABELS ...] [PROPERTIES name value ...]): a GoogleTest
# binary registered with CTest, each test with the labels and any further CTest properties.
function(hier_test name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS;LABELS;PROPERTIES" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS} GTest::gmock GTest::gtest GTest::gtest_main)
  hier_set_warnings(${name})
  gtest_discover_tests(${name} PROPERTIES LABELS "${ARG_LABELS}" ${ARG_PROPERTIES}
    DISCOVERY_TIMEOUT 60)
endfunction()
