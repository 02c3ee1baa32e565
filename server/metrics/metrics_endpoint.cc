#include "server/metrics/metrics_endpoint.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <climits>
#include <exception>
#include <string_view>
#include <system_error>
#include <utility>

#include "absl/status/status.h"
#include "prometheus/text_serializer.h"

namespace hier::server {
namespace {

using Clock = std::chrono::steady_clock;

// A client gets this long from being accepted to finish sending its request head, and
// kResponseDeadline to take the response; connections are served one at a time, so these bound
// how long a stalled client keeps the next one waiting.
constexpr auto kRequestDeadline = std::chrono::seconds(5);
constexpr auto kResponseDeadline = std::chrono::seconds(5);
// Once the endpoint is stopping, a response still being written gets at most this much longer.
constexpr auto kShutdownGrace = std::chrono::seconds(1);
// How long to read and discard what a client still sends after its response before closing.
constexpr auto kLinger = std::chrono::milliseconds(200);
constexpr size_t kMaxRequestHead = 16 * 1024;
constexpr int kBacklog = 16;
constexpr char kMetricsContentType[] = "text/plain; version=0.0.4; charset=utf-8";
constexpr char kTextContentType[] = "text/plain; charset=utf-8";

// Closes the descriptor it owns.
class ScopedFd {
 public:
  explicit ScopedFd(int fd = -1) : fd_(fd) {}
  ScopedFd(ScopedFd&& other) noexcept : fd_(other.Release()) {}
  ScopedFd& operator=(ScopedFd&& other) noexcept {
    if (this != &other) Reset(other.Release());
    return *this;
  }
  ~ScopedFd() { Reset(); }

  int get() const { return fd_; }
  int Release() { return std::exchange(fd_, -1); }
  void Reset(int fd = -1) {
    if (fd_ >= 0) close(fd_);
    fd_ = fd;
  }

 private:
  int fd_;
};

std::string ErrnoText(int error) { return std::generic_category().message(error); }

absl::Status Invalid(const std::string& address, const std::string& why) {
  return absl::InvalidArgumentError("--metrics-listen: \"" + address + "\" " + why);
}

// The host (without brackets) and port of a listen address.
struct HostPort {
  std::string host;
  std::string port;
  bool ipv6 = false;  // the host was written in brackets
};

// "host:port" with an IPv4 address or a host name, or "[ipv6]:port"; the port is decimal, up to
// 65535. Dotted quads are checked here because the resolver reads "1.2.3" or "1.2.3.0255" as some
// other address rather than failing.
absl::StatusOr<HostPort> ParseListenAddress(const std::string& address) {
  const size_t colon = address.rfind(':');
  if (colon == std::string::npos) return Invalid(address, "is not host:port");
  HostPort parsed;
  parsed.host = address.substr(0, colon);
  parsed.port = address.substr(colon + 1);
  if (parsed.port.empty() || parsed.port.size() > 5 ||
      parsed.port.find_first_not_of("0123456789") != std::string::npos ||
      std::stoi(parsed.port) > 65535) {
    return Invalid(address, "does not end in a port number (0 to 65535)");
  }
  if (!parsed.host.empty() && parsed.host.front() == '[') {
    in6_addr ipv6;
    if (parsed.host.size() < 2 || parsed.host.back() != ']' ||
        inet_pton(AF_INET6, parsed.host.substr(1, parsed.host.size() - 2).c_str(), &ipv6) != 1) {
      return Invalid(address, "does not hold a valid IPv6 address in brackets");
    }
    parsed.host = parsed.host.substr(1, parsed.host.size() - 2);
    parsed.ipv6 = true;
    return parsed;
  }
  if (parsed.host.find(':') != std::string::npos) {
    return Invalid(address, "is not host:port (write an IPv6 address in brackets: [::1]:9090)");
  }
  if (parsed.host.empty() || parsed.host.find_first_not_of(
                                 "abcdefghijklmnopqrstuvwxyz"
                                 "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-") != std::string::npos) {
    return Invalid(address, "is not host:port");
  }
  in_addr ipv4;
  if (parsed.host.find_first_not_of("0123456789.") == std::string::npos &&
      inet_pton(AF_INET, parsed.host.c_str(), &ipv4) != 1) {
    return Invalid(address, "does not hold a valid IPv4 address");
  }
  return parsed;
}

std::string NumericAddress(const sockaddr* address, socklen_t length) {
  char host[NI_MAXHOST];
  if (getnameinfo(address, length, host, sizeof(host), nullptr, 0, NI_NUMERICHOST) != 0) return "?";
  return address->sa_family == AF_INET6 ? "[" + std::string(host) + "]" : host;
}

// A non-blocking, close-on-exec socket listening on the first of the host's addresses that binds.
absl::StatusOr<ScopedFd> Listen(const HostPort& where, const std::string& address) {
  addrinfo hints{};
  hints.ai_family = where.ipv6 ? AF_INET6 : AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV | (where.ipv6 ? AI_NUMERICHOST : 0);
  addrinfo* found = nullptr;
  if (const int error = getaddrinfo(where.host.c_str(), where.port.c_str(), &hints, &found);
      error != 0) {
    return absl::UnavailableError("--metrics-listen: cannot resolve \"" + where.host +
                                  "\": " + gai_strerror(error));
  }
  const std::unique_ptr<addrinfo, decltype(&freeaddrinfo)> addresses(found, &freeaddrinfo);
  std::string errors;
  for (const addrinfo* candidate = found; candidate != nullptr; candidate = candidate->ai_next) {
    ScopedFd fd(socket(candidate->ai_family, candidate->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                       candidate->ai_protocol));
    const int one = 1;
    if (fd.get() >= 0 && setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == 0 &&
        bind(fd.get(), candidate->ai_addr, candidate->ai_addrlen) == 0 &&
        listen(fd.get(), kBacklog) == 0) {
      return fd;
    }
    const int error = errno;
    errors += (errors.empty() ? "" : "; ") +
              NumericAddress(candidate->ai_addr, candidate->ai_addrlen) + ": " + ErrnoText(error);
  }
  return absl::UnavailableError("--metrics-listen: cannot serve metrics on " + address + ": " +
                                errors);
}

absl::StatusOr<int> BoundPort(int fd) {
  sockaddr_storage bound{};
  socklen_t length = sizeof(bound);
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &length) != 0) {
    return absl::UnavailableError("--metrics-listen: getsockname: " + ErrnoText(errno));
  }
  if (bound.ss_family == AF_INET6) return ntohs(reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port);
  return ntohs(reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
}

enum class Wait { kReady, kTimedOut, kWoken };

// Waits until fd has one of `events` (or an error to report), the deadline passes, or wake_fd
// becomes readable (never, if it is negative).
Wait WaitFor(int fd, short events, int wake_fd, Clock::time_point deadline) {
  while (true) {
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) return Wait::kTimedOut;
    pollfd fds[2] = {{fd, events, 0}, {wake_fd, POLLIN, 0}};  // poll skips a negative fd
    const int ready = poll(
        fds, 2, static_cast<int>(std::min<std::chrono::milliseconds::rep>(left.count(), INT_MAX)));
    if (ready < 0 && errno == EINTR) continue;
    if (ready < 0) return Wait::kTimedOut;  // ENOMEM: give the connection up
    if (fds[1].revents != 0) return Wait::kWoken;
    if (fds[0].revents != 0) return Wait::kReady;
  }
}

// Writes all of data, however the socket splits it. False if the client reset the connection or
// did not take it by the deadline; a wake-up shortens the deadline to kShutdownGrace.
bool SendAll(int fd, std::string_view data, int wake_fd, Clock::time_point deadline) {
  while (!data.empty()) {
    // MSG_NOSIGNAL: a client gone away must be an EPIPE here, not a SIGPIPE for the process.
    const ssize_t sent = send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (sent >= 0) {
      data.remove_prefix(static_cast<size_t>(sent));
      continue;
    }
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) return false;
    switch (WaitFor(fd, POLLOUT, wake_fd, deadline)) {
      case Wait::kReady:
        break;
      case Wait::kTimedOut:
        return false;
      case Wait::kWoken:
        // wake_fd stays readable from now on; stop watching it so the wait does not spin.
        wake_fd = -1;
        deadline = std::min(deadline, Clock::now() + kShutdownGrace);
        break;
    }
  }
  return true;
}

// Closing a socket with unread bytes from the client resets the connection, and a reset can
// destroy the response before the client has read it; so first stop sending, then read and drop
// whatever still arrives until the client closes, for at most kLinger.
void LingeringClose(ScopedFd fd, int wake_fd) {
  shutdown(fd.get(), SHUT_WR);
  const Clock::time_point deadline = Clock::now() + kLinger;
  char discard[4096];
  while (WaitFor(fd.get(), POLLIN, wake_fd, deadline) == Wait::kReady) {
    const ssize_t received = recv(fd.get(), discard, sizeof(discard), 0);
    if (received == 0) return;
    if (received < 0 && errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK) return;
  }
}

enum class Head { kComplete, kTooLarge, kTimedOut, kDropped };

// Reads up to the blank line that ends the request head; `head` gets the lines before it.
// kDropped: the client closed or reset the connection, or the endpoint is stopping.
Head ReadRequestHead(int fd, int wake_fd, Clock::time_point deadline, std::string& head) {
  std::string received;
  char chunk[4096];
  while (true) {
    // A client may send empty lines before the request line (RFC 9112, section 2.2).
    received.erase(0, received.find_first_not_of("\r\n"));
    // Lines end in CRLF, or a bare LF from lenient clients.
    const size_t crlf = received.find("\r\n\r\n");
    const size_t end = std::min(crlf, received.find("\n\n"));
    if (end != std::string::npos) {
      if (end > kMaxRequestHead) return Head::kTooLarge;
      head = received.substr(0, end);
      return Head::kComplete;
    }
    if (received.size() > kMaxRequestHead + 3) return Head::kTooLarge;
    const ssize_t count = recv(fd, chunk, sizeof(chunk), 0);
    if (count > 0) {
      received.append(chunk, static_cast<size_t>(count));
      continue;
    }
    if (count == 0) return Head::kDropped;
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) return Head::kDropped;
    switch (WaitFor(fd, POLLIN, wake_fd, deadline)) {
      case Wait::kReady:
        break;
      case Wait::kTimedOut:
        return Head::kTimedOut;
      case Wait::kWoken:
        return Head::kDropped;
    }
  }
}

struct Response {
  int status = 200;
  const char* reason = "OK";
  const char* content_type = kTextContentType;
  std::string body;
  std::string extra_headers;  // each line ends in CRLF
};

Response Error(int status, const char* reason) {
  Response response;
  response.status = status;
  response.reason = reason;
  response.body = std::to_string(status) + " " + reason + "\n";
  return response;
}

// The whole response; the body is left out for HEAD, though Content-Length still gives its size.
std::string Render(const Response& response, bool with_body) {
  std::string text = "HTTP/1.1 " + std::to_string(response.status) + " " + response.reason +
                     "\r\nContent-Type: " + response.content_type +
                     "\r\nContent-Length: " + std::to_string(response.body.size()) +
                     "\r\nConnection: close\r\n" + response.extra_headers + "\r\n";
  if (with_body) text += response.body;
  return text;
}

// The path of a request target: origin form ("/metrics?x=1") or absolute form
// ("http://host:9090/metrics"), without its query.
std::string_view TargetPath(std::string_view target) {
  for (std::string_view scheme : {"http://", "https://"}) {
    if (target.substr(0, scheme.size()) == scheme) {
      target.remove_prefix(scheme.size());
      const size_t slash = target.find('/');
      target = slash == std::string_view::npos ? "/" : target.substr(slash);
      break;
    }
  }
  return target.substr(0, target.find_first_of("?#"));
}

// Answers a request head; *with_body is false for HEAD.
Response Answer(std::string_view head, const prometheus::Registry& registry, bool* with_body) {
  *with_body = true;
  std::string_view line = head.substr(0, head.find('\n'));
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  const size_t first_space = line.find(' ');
  const size_t second_space =
      first_space == std::string_view::npos ? first_space : line.find(' ', first_space + 1);
  if (first_space == 0 || second_space == std::string_view::npos ||
      second_space == first_space + 1 ||
      line.find(' ', second_space + 1) != std::string_view::npos ||
      line.substr(second_space + 1, 7) != "HTTP/1.") {
    return Error(400, "Bad Request");
  }
  const std::string_view method = line.substr(0, first_space);
  const std::string_view path =
      TargetPath(line.substr(first_space + 1, second_space - first_space - 1));
  if (method == "HEAD") *with_body = false;

  if (path != "/metrics" && path != "/") return Error(404, "Not Found");
  if (method != "GET" && method != "HEAD") {
    Response response = Error(405, "Method Not Allowed");
    response.extra_headers = "Allow: GET, HEAD\r\n";
    return response;
  }
  Response response;
  if (path == "/") {
    response.body = "Prometheus metrics are at /metrics\n";
    return response;
  }
  try {
    response.body = prometheus::TextSerializer().Serialize(registry.Collect());
  } catch (const std::exception& e) {
    Response error = Error(500, "Internal Server Error");
    error.body += std::string(e.what()) + "\n";
    return error;
  }
  response.content_type = kMetricsContentType;
  return response;
}

void ServeConnection(ScopedFd fd, int wake_fd, const prometheus::Registry& registry) {
  std::string head;
  Response response;
  bool with_body = true;
  switch (ReadRequestHead(fd.get(), wake_fd, Clock::now() + kRequestDeadline, head)) {
    case Head::kComplete:
      response = Answer(head, registry, &with_body);
      break;
    case Head::kTooLarge:
      response = Error(431, "Request Header Fields Too Large");
      break;
    case Head::kTimedOut:
      response = Error(408, "Request Timeout");
      break;
    case Head::kDropped:
      return;
  }
  if (SendAll(fd.get(), Render(response, with_body), wake_fd, Clock::now() + kResponseDeadline)) {
    LingeringClose(std::move(fd), wake_fd);
  }
}

// Sleeps for `pause` unless wake_fd becomes readable first; true if it did.
bool WokenWithin(int wake_fd, std::chrono::milliseconds pause) {
  pollfd fds[1] = {{wake_fd, POLLIN, 0}};
  return poll(fds, 1, static_cast<int>(pause.count())) > 0;
}

}  // namespace

absl::StatusOr<std::unique_ptr<MetricsEndpoint>> MetricsEndpoint::Start(
    const std::string& listen_address, std::shared_ptr<prometheus::Registry> registry) {
  absl::StatusOr<HostPort> where = ParseListenAddress(listen_address);
  if (!where.ok()) return where.status();
  absl::StatusOr<ScopedFd> listener = Listen(*where, listen_address);
  if (!listener.ok()) return listener.status();
  absl::StatusOr<int> port = BoundPort(listener->get());
  if (!port.ok()) return port.status();
  ScopedFd wake(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  if (wake.get() < 0) {
    return absl::UnavailableError("--metrics-listen: eventfd: " + ErrnoText(errno));
  }
  std::unique_ptr<MetricsEndpoint> endpoint(
      new MetricsEndpoint(std::move(registry), listener->Release(), wake.Release(), *port));
  try {
    // std::thread asks for the default stack size (RLIMIT_STACK), which leaves room for
    // LibTorch's static TLS, unlike civetweb's fixed small stacks.
    endpoint->thread_ = std::thread(&MetricsEndpoint::Serve, endpoint.get());
  } catch (const std::system_error& e) {
    return absl::UnavailableError(std::string("--metrics-listen: cannot start the thread: ") +
                                  e.what());
  }
  pthread_setname_np(endpoint->thread_.native_handle(), "hier-metrics");
  return endpoint;
}

MetricsEndpoint::MetricsEndpoint(std::shared_ptr<prometheus::Registry> registry, int listen_fd,
                                 int wake_fd, int port)
    : registry_(std::move(registry)), listen_fd_(listen_fd), wake_fd_(wake_fd), port_(port) {}

MetricsEndpoint::~MetricsEndpoint() {
  eventfd_write(wake_fd_, 1);
  if (thread_.joinable()) thread_.join();
  close(listen_fd_);
  close(wake_fd_);
}

void MetricsEndpoint::Serve() {
  constexpr auto kBackOff = std::chrono::milliseconds(100);
  while (true) {
    pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {wake_fd_, POLLIN, 0}};
    const int ready = poll(fds, 2, -1);
    if (ready < 0 && errno != EINTR && WokenWithin(wake_fd_, kBackOff)) return;
    if (ready <= 0) continue;
    if (fds[1].revents != 0) return;
    ScopedFd connection(accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
    if (connection.get() < 0) {
      // EAGAIN and ECONNABORTED: the client left before it was accepted. Anything else (EMFILE,
      // ENOBUFS) leaves the listener readable, so back off rather than spin on it.
      const int error = errno;
      if (error != EAGAIN && error != EWOULDBLOCK && error != ECONNABORTED && error != EINTR &&
          WokenWithin(wake_fd_, kBackOff)) {
        return;
      }
      continue;
    }
    ServeConnection(std::move(connection), wake_fd_, *registry_);
  }
}

}  // namespace hier::server
