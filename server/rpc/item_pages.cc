#include "server/rpc/item_pages.h"

#include <algorithm>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace hier::server {

absl::StatusOr<PageRequest> ReadPageRequest(int32_t page_size, const std::string& page_token,
                                            int64_t max_items) {
  if (page_size < 0 || page_size > max_items) {
    return absl::InvalidArgumentError(absl::StrCat("page_size: must be in [0, ", max_items,
                                                   "] (0: ", std::min(kDefaultPageSize, max_items),
                                                   "), got ", page_size));
  }
  PageRequest page;
  page.size = page_size == 0 ? std::min(kDefaultPageSize, max_items) : page_size;
  if (page_token.empty()) return page;
  int64_t after = 0;
  if (!absl::SimpleAtoi(page_token, &after)) {
    return absl::InvalidArgumentError(absl::StrCat("page_token: \"", page_token.substr(0, 40),
                                                   "\" is not a next_page_token of ListItems"));
  }
  page.after_id = after;
  return page;
}

std::string PageTokenAfter(int64_t last_id) { return absl::StrCat(last_id); }

}  // namespace hier::server
