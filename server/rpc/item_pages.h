// The paging of Retrieval.ListItems, shared by a server and a router: a page token is the last id
// of the page before it, and a page size is checked against the call's item limit.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/statusor.h"

namespace hier::server {

inline constexpr int64_t kDefaultPageSize = 50;

// The id a page starts after: none for an empty token; InvalidArgument naming page_token for a
// token that is not one a page gave.
absl::StatusOr<std::optional<int64_t>> PageStartOf(const std::string& page_token);
// The token of the page after the one ending with item `last_id`.
std::string PageTokenAfter(int64_t last_id);
// The page size asked for: 0 means kDefaultPageSize (or `max_items` when smaller); InvalidArgument
// naming page_size below 0 or above `max_items`.
absl::StatusOr<int64_t> PageSizeOf(int32_t page_size, int64_t max_items);

}  // namespace hier::server
