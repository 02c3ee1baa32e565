// The message of the c10::Error a call throws, or "no error": how the tests check that bad input
// is refused with a message naming the problem.
#pragma once

#include <c10/util/Exception.h>

#include <functional>
#include <string>

namespace hier::testing {

inline std::string ErrorMessage(const std::function<void()>& call) {
  try {
    call();
  } catch (const c10::Error& e) {
    return e.what_without_backtrace();
  }
  return "no error";
}

}  // namespace hier::testing
