// A TCP forwarder for tests: listens on an address of the test's choosing and relays every
// connection to a target, so a server bound to loopback can be reached through a link the test
// controls (e.g. a veth pair into a network namespace it made).
//
// Thread-safety: construct and destroy from one thread; one relay thread per direction of each
// connection and one accept thread, all joined by the destructor.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"

namespace hier::testing {

class TcpForwarder {
 public:
  // Listens on listen_host:0 (IPv4) and relays to target_host:target_port.
  static absl::StatusOr<std::unique_ptr<TcpForwarder>> Start(const std::string& listen_host,
                                                             const std::string& target_host,
                                                             int target_port);
  ~TcpForwarder();  // closes the listener and every relayed connection
  TcpForwarder(const TcpForwarder&) = delete;
  TcpForwarder& operator=(const TcpForwarder&) = delete;

  int port() const { return port_; }

 private:
  TcpForwarder(int listener, int port, std::string target_host, int target_port);
  void AcceptLoop();
  // Copies from `from` to `to` until either side ends, then shuts both down.
  static void Pump(int from, int to);

  const int listener_;
  const int port_;
  const std::string target_host_;
  const int target_port_;
  std::atomic<bool> stopping_{false};
  std::mutex mutex_;             // guards sockets_ and relays_
  std::vector<int> sockets_;     // every relayed connection's two sockets
  std::vector<std::thread> relays_;
  std::thread acceptor_;
};

}  // namespace hier::testing
