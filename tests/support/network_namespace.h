// A network namespace made by a test and joined to the test's own namespace by veth pairs
// ("links"), so a process run inside it can be cut off from what it reaches through one link
// while the test still reaches it through another. Link i is a /30: the test's side holds
// HostAddress(i), the namespace's side InsideAddress(i). The destructor deletes the namespace and
// its links. Only the test's namespaces and loopback carry traffic.
//
// Needs CAP_NET_ADMIN (root) and iproute2's `ip`: Create returns FailedPrecondition without them,
// and the tests skip.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace hier::testing {

class NetworkNamespace {
 public:
  static absl::StatusOr<std::unique_ptr<NetworkNamespace>> Create(int links);
  ~NetworkNamespace();
  NetworkNamespace(const NetworkNamespace&) = delete;
  NetworkNamespace& operator=(const NetworkNamespace&) = delete;

  std::string HostAddress(int link) const;
  std::string InsideAddress(int link) const;
  // Takes link `link` down (nothing passes either way) or up again.
  absl::Status SetLinkUp(int link, bool up) const;
  // The binary and arguments that run `argv` inside the namespace (ip netns exec).
  const std::string& ip_binary() const { return ip_; }
  std::vector<std::string> Inside(const std::vector<std::string>& argv) const;

 private:
  NetworkNamespace(std::string ip, std::string name, int links);
  // Runs `ip` with `args`; the status carries its output on failure.
  absl::Status Ip(const std::vector<std::string>& args) const;
  std::string HostLink(int link) const;
  std::string InsideLink(int link) const;

  const std::string ip_;
  const std::string name_;
  const int links_;
};

}  // namespace hier::testing
