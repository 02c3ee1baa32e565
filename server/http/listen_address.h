// The listen addresses the server's HTTP listeners take: "host:port" with an IPv4 address or a
// host name, or "[ipv6]:port"; port 0 asks for any free port. Checked strictly, because a
// resolver reads "1.2.3" or "1.2.3.0255" as some other address rather than failing.
#pragma once

#include <string>

#include "absl/status/statusor.h"

namespace hier::server {

struct ListenAddress {
  std::string host;  // without brackets
  int port = 0;
  bool ipv6 = false;  // the host was written in brackets
};

// The parts of `address`, or InvalidArgument naming `flag` and saying what is wrong.
absl::StatusOr<ListenAddress> ParseListenAddress(const std::string& address,
                                                 const std::string& flag);

}  // namespace hier::server
