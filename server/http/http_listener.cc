#include "server/http/http_listener.h"

#include <httplib.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <atomic>
#include <chrono>
#include <utility>

#include "absl/status/status.h"
#include "server/http/listen_address.h"

namespace hier::server {
namespace {

constexpr auto kStartPoll = std::chrono::milliseconds(1);

}  // namespace

absl::StatusOr<std::unique_ptr<HttpListener>> HttpListener::Start(
    const HttpListenerOptions& options, const std::function<void(httplib::Server&)>& routes) {
  absl::StatusOr<ListenAddress> address = ParseListenAddress(options.listen, options.flag);
  if (!address.ok()) return address.status();
  auto server = std::make_unique<httplib::Server>();
  const int threads = options.threads;
  server->new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  server->set_read_timeout(options.read_timeout);
  server->set_write_timeout(options.write_timeout);
  server->set_keep_alive_timeout(options.read_timeout.count());
  server->set_keep_alive_max_count(options.requests_per_connection);
  server->set_payload_max_length(options.max_body_bytes);
  // httplib's default options add SO_REUSEPORT, which would let a second server bind a port in
  // use and share its connections: a busy port must fail to bind. TCP_NODELAY (which accepted
  // connections inherit): httplib writes an answer's headers and body apart, and with Nagle's
  // algorithm the body waited for the client's delayed ACK, about 40 ms per answer.
  server->set_socket_options([](int socket) {
    const int yes = 1;
    setsockopt(socket, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
    setsockopt(socket, IPPROTO_TCP, TCP_NODELAY, &yes, sizeof(yes));
  });
  routes(*server);
  int port = address->port;
  if (port == 0) {
    port = server->bind_to_any_port(address->host);
    if (port < 0) port = 0;
  } else if (!server->bind_to_port(address->host, port)) {
    port = 0;
  }
  if (port == 0) {
    return absl::UnavailableError(options.flag + ": cannot listen on \"" + options.listen +
                                  "\" (the address is not this machine's, or the port is taken)");
  }
  return std::unique_ptr<HttpListener>(new HttpListener(std::move(server), port));
}

HttpListener::HttpListener(std::unique_ptr<httplib::Server> server, int port)
    : server_(std::move(server)), port_(port) {
  thread_ = std::thread([this] {
    server_->listen_after_bind();
    loop_returned_ = true;
  });
  // stop() only stops a server that is running: wait until it is (or its loop gave up), so that
  // a listener destroyed at once still stops.
  while (!server_->is_running() && !loop_returned_) std::this_thread::sleep_for(kStartPoll);
}

HttpListener::~HttpListener() {
  server_->stop();
  if (thread_.joinable()) thread_.join();
}

}  // namespace hier::server
