#include "tests/support/tcp_forwarder.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace hier::testing {
namespace {

sockaddr_in Address(const std::string& host, int port) {
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  inet_pton(AF_INET, host.c_str(), &address.sin_addr);
  return address;
}

}  // namespace

absl::StatusOr<std::unique_ptr<TcpForwarder>> TcpForwarder::Start(const std::string& listen_host,
                                                                  const std::string& target_host,
                                                                  int target_port) {
  const int listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (listener < 0) return absl::InternalError(absl::StrCat("socket: ", std::strerror(errno)));
  const int one = 1;
  setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in address = Address(listen_host, 0);
  socklen_t length = sizeof(address);
  if (bind(listener, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0 ||
      listen(listener, 64) != 0 ||
      getsockname(listener, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    const std::string error = std::strerror(errno);
    close(listener);
    return absl::InternalError(absl::StrCat("listening on ", listen_host, ": ", error));
  }
  return std::unique_ptr<TcpForwarder>(
      new TcpForwarder(listener, ntohs(address.sin_port), target_host, target_port));
}

TcpForwarder::TcpForwarder(int listener, int port, std::string target_host, int target_port)
    : listener_(listener),
      port_(port),
      target_host_(std::move(target_host)),
      target_port_(target_port),
      acceptor_([this] { AcceptLoop(); }) {}

TcpForwarder::~TcpForwarder() {
  stopping_ = true;
  shutdown(listener_, SHUT_RDWR);
  acceptor_.join();
  close(listener_);
  std::vector<std::thread> relays;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (const int socket : sockets_) shutdown(socket, SHUT_RDWR);
    relays.swap(relays_);
  }
  for (std::thread& relay : relays) relay.join();
  for (const int socket : sockets_) close(socket);
}

void TcpForwarder::AcceptLoop() {
  while (!stopping_) {
    pollfd waiting{listener_, POLLIN, 0};
    if (poll(&waiting, 1, 100) <= 0) continue;
    const int client = accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC);
    if (client < 0) continue;
    const int server = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    const sockaddr_in target = Address(target_host_, target_port_);
    if (server < 0 ||
        connect(server, reinterpret_cast<const sockaddr*>(&target), sizeof(target)) != 0) {
      close(client);
      if (server >= 0) close(server);
      continue;
    }
    std::lock_guard<std::mutex> lock(mutex_);
    sockets_.push_back(client);
    sockets_.push_back(server);
    relays_.emplace_back(Pump, client, server);
    relays_.emplace_back(Pump, server, client);
  }
}

void TcpForwarder::Pump(int from, int to) {
  char buffer[16384];
  for (;;) {
    const ssize_t read = recv(from, buffer, sizeof(buffer), 0);
    if (read <= 0) break;
    ssize_t sent = 0;
    while (sent < read) {
      const ssize_t n = send(to, buffer + sent, static_cast<size_t>(read - sent), MSG_NOSIGNAL);
      if (n <= 0) break;
      sent += n;
    }
    if (sent < read) break;
  }
  shutdown(from, SHUT_RDWR);
  shutdown(to, SHUT_RDWR);
}

}  // namespace hier::testing
