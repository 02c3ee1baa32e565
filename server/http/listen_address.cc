#include "server/http/listen_address.h"

#include <arpa/inet.h>

#include "absl/status/status.h"

namespace hier::server {

absl::StatusOr<ListenAddress> ParseListenAddress(const std::string& address,
                                                 const std::string& flag) {
  const auto invalid = [&](const std::string& why) {
    return absl::InvalidArgumentError(flag + ": \"" + address + "\" " + why);
  };
  const size_t colon = address.rfind(':');
  if (colon == std::string::npos) return invalid("is not host:port");
  ListenAddress parsed;
  std::string host = address.substr(0, colon);
  const std::string port = address.substr(colon + 1);
  if (port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos ||
      std::stoi(port) > 65535) {
    return invalid("does not end in a port number (0 to 65535)");
  }
  parsed.port = std::stoi(port);
  if (!host.empty() && host.front() == '[') {
    in6_addr ipv6;
    if (host.size() < 2 || host.back() != ']' ||
        inet_pton(AF_INET6, host.substr(1, host.size() - 2).c_str(), &ipv6) != 1) {
      return invalid("does not hold a valid IPv6 address in brackets");
    }
    parsed.host = host.substr(1, host.size() - 2);
    parsed.ipv6 = true;
    return parsed;
  }
  if (host.find(':') != std::string::npos) {
    return invalid("is not host:port (write an IPv6 address in brackets: [::1]:9090)");
  }
  if (host.empty() || host.find_first_not_of("abcdefghijklmnopqrstuvwxyz"
                                             "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-") !=
                          std::string::npos) {
    return invalid("is not host:port");
  }
  in_addr ipv4;
  if (host.find_first_not_of("0123456789.") == std::string::npos &&
      inet_pton(AF_INET, host.c_str(), &ipv4) != 1) {
    return invalid("does not hold a valid IPv4 address");
  }
  parsed.host = host;
  return parsed;
}

}  // namespace hier::server
