// The HTTP/JSON face of a started gRPC server (--http-listen): the JSON gateway over the server's
// in-process channel and the API routes, on an HTTP listener of their own. Calls through it meet
// the same services, authorizer, limits and metrics as gRPC calls.
//
// Ownership: the gRPC server must outlive the HttpApi (destroy it first, which stops serving).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "server/http/api_routes.h"
#include "server/http/http_listener.h"
#include "server/http/json_gateway.h"

namespace grpc {
class Server;
}

namespace hier::server {

struct HttpApiOptions {
  std::string listen;                  // as HttpListenerOptions::listen
  int64_t max_message_bytes = 64 << 20;  // the gRPC server's; a JSON body may take twice as many
  int threads = 8;                     // HTTP requests answered at once
};

class HttpApi {
 public:
  // Starts serving; errors name --http-listen.
  static absl::StatusOr<std::unique_ptr<HttpApi>> Start(const HttpApiOptions& options,
                                                        grpc::Server& server);

  int port() const { return listener_->port(); }

 private:
  explicit HttpApi(std::unique_ptr<JsonGateway> gateway);

  std::unique_ptr<JsonGateway> gateway_;  // used by the listener's handlers
  StreamSlots stream_slots_;              // likewise
  std::unique_ptr<HttpListener> listener_;  // declared last: stops before the gateway goes
};

}  // namespace hier::server
