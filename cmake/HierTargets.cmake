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

# hier_grpc_library(NAME PROTO_ROOT dir PROTOS a.proto ...): a static library of the C++ messages
# and gRPC stubs protoc generates from PROTOS (paths relative to PROTO_ROOT, which is also the
# import root) into <binary dir>/generated, on that include path.
function(hier_grpc_library name)
  cmake_parse_arguments(ARG "" "PROTO_ROOT" "PROTOS" ${ARGN})
  set(generated_dir ${CMAKE_CURRENT_BINARY_DIR}/generated)
  set(generated_sources)
  foreach(proto IN LISTS ARG_PROTOS)
    string(REGEX REPLACE "\\.proto$" "" stem ${proto})
    set(outputs
      ${generated_dir}/${stem}.pb.cc ${generated_dir}/${stem}.pb.h
      ${generated_dir}/${stem}.grpc.pb.cc ${generated_dir}/${stem}.grpc.pb.h)
    add_custom_command(
      OUTPUT ${outputs}
      COMMAND ${CMAKE_COMMAND} -E make_directory ${generated_dir}
      COMMAND protobuf::protoc
        --proto_path=${ARG_PROTO_ROOT}
        --cpp_out=${generated_dir}
        --grpc_out=${generated_dir}
        --plugin=protoc-gen-grpc=$<TARGET_FILE:gRPC::grpc_cpp_plugin>
        ${ARG_PROTO_ROOT}/${proto}
      DEPENDS ${ARG_PROTO_ROOT}/${proto} protobuf::protoc gRPC::grpc_cpp_plugin
      COMMENT "protoc ${proto}"
      VERBATIM)
    list(APPEND generated_sources ${generated_dir}/${stem}.pb.cc ${generated_dir}/${stem}.grpc.pb.cc)
  endforeach()
  add_library(${name} STATIC ${generated_sources})
  target_include_directories(${name} PUBLIC ${generated_dir})
  target_link_libraries(${name} PUBLIC protobuf::libprotobuf gRPC::grpc++)
endfunction()
