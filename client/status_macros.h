// RETURN_IF_ERROR / ASSIGN_OR_RETURN for absl::Status, which Abseil 20220623 does not provide.
#pragma once

#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

// Returns the status of `expr` from the enclosing function when it is not OK.
#define HIER_RETURN_IF_ERROR(expr)               \
  do {                                           \
    ::absl::Status hier_status_ = (expr);        \
    if (!hier_status_.ok()) return hier_status_; \
  } while (false)

#define HIER_STATUS_CONCAT_INNER_(a, b) a##b
#define HIER_STATUS_CONCAT_(a, b) HIER_STATUS_CONCAT_INNER_(a, b)

// Evaluates `expr` (an absl::StatusOr<T>); returns its status when not OK, else moves the value
// into `lhs` (a declaration such as `auto x` or an existing variable). Expands to several
// statements: put it in braces under an `if`.
#define HIER_ASSIGN_OR_RETURN(lhs, expr) \
  HIER_ASSIGN_OR_RETURN_IMPL_(HIER_STATUS_CONCAT_(hier_statusor_, __LINE__), lhs, expr)

#define HIER_ASSIGN_OR_RETURN_IMPL_(statusor, lhs, expr)   \
  auto statusor = (expr);                                  \
  if (!statusor.ok()) return std::move(statusor).status(); \
  lhs = std::move(statusor).value()
