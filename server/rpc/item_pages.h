// The paging of Retrieval.ListItems, shared by a server and a router: a page token is the last id
// of the page before it, and a page size is checked against the call's item limit.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/statusor.h"

namespace hier::server {

inline constexpr int64_t kDefaultPageSize = 50;

// The page a ListItems request asks for.
struct PageRequest {
  int64_t size = kDefaultPageSize;
  std::optional<int64_t> after_id;  // none: from the first item
};

// `page_size` 0 means kDefaultPageSize (or `max_items` when smaller); InvalidArgument naming
// page_size below 0 or above `max_items`, or page_token for a token that no page gave.
absl::StatusOr<PageRequest> ReadPageRequest(int32_t page_size, const std::string& page_token,
                                            int64_t max_items);

// The token of the page after the one ending with item `last_id`.
std::string PageTokenAfter(int64_t last_id);

}  // namespace hier::server
