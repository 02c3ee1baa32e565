// The HTTP/JSON face of the gRPC API: a body in protobuf's JSON mapping is parsed as the method's
// request message and sent over a channel to the server's own gRPC services, so the same
// authorizer, limits, deadlines and metrics apply to both faces; the answer comes back as JSON,
// and a gRPC error as the HTTP status grpc-gateway gives its code, with {"code", "status",
// "message"} as the body.
//
// Thread-safety: every method may be called from any number of threads at once.
// Ownership: the gateway shares the channel; the channel's server must outlive the calls.
#pragma once

#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace google::protobuf {
class Message;
class MethodDescriptor;
}

namespace hier::server {

// What an HTTP handler writes back.
struct HttpAnswer {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
};

// What the HTTP request carries into the call.
struct GatewayCall {
  std::string authorization;  // the Authorization header, as the gRPC metadata of that name
  std::optional<std::chrono::milliseconds> timeout;  // the call's deadline, when the client set one
};

// The HTTP status grpc-gateway maps a gRPC code to (INVALID_ARGUMENT 400, NOT_FOUND 404, ...).
int HttpStatusOf(grpc::StatusCode code);

// {"code": 3, "status": "INVALID_ARGUMENT", "message": "..."} with the HTTP status of that code,
// or `http_status` when given (415 for a wrong content type, say, which no gRPC code maps to).
HttpAnswer ErrorAnswer(grpc::StatusCode code, std::string_view message, int http_status = 0);

class JsonGateway {
 public:
  // `services` are the full names of the services reachable ("hier.v1.Retrieval", ...).
  JsonGateway(std::shared_ptr<grpc::Channel> channel, std::vector<std::string> services);

  // The method "<service>/<method>" (e.g. "hier.v1.Retrieval/Search") of a reachable service,
  // or null.
  const google::protobuf::MethodDescriptor* FindMethod(std::string_view name) const;

  // A unary call with messages: `*response` holds the answer when the status is OK.
  grpc::Status CallUnary(const google::protobuf::MethodDescriptor& method,
                         const google::protobuf::Message& request,
                         google::protobuf::Message* response, const GatewayCall& call) const;

  // A unary call: `json` is the request message (empty: the empty message).
  HttpAnswer Unary(const google::protobuf::MethodDescriptor& method, std::string_view json,
                   const GatewayCall& call) const;

  // A streaming call (client, server or both): the request messages are `json_lines`, one JSON
  // object per line (blank lines skipped; a server-streaming method takes one, or none for the
  // empty message). Answers the error when the call fails before its first answer message (so
  // that the HTTP status can say so), else the open stream.
  class Stream;
  std::variant<HttpAnswer, std::unique_ptr<Stream>> OpenStream(
      const google::protobuf::MethodDescriptor& method, std::string_view json_lines,
      const GatewayCall& call) const;

 private:
  void Prepare(grpc::ClientContext& context, const GatewayCall& call) const;

  const std::shared_ptr<grpc::Channel> channel_;
  const std::vector<std::string> services_;
  mutable grpc::GenericStub stub_;  // thread-safe; its methods are not const
};

// A streaming call in progress, read by one thread; Cancel may come from any thread.
class JsonGateway::Stream {
 public:
  ~Stream();
  // The next answer message as one JSON line (ending with '\n'); false once the call has ended,
  // with `*line` then the error line to end the stream with, or empty when it ended OK.
  bool Next(std::string* line);
  // Ends the call early (the client went away).
  void Cancel();

 private:
  friend class JsonGateway;
  struct Call;
  explicit Stream(std::unique_ptr<Call> call);
  std::unique_ptr<Call> call_;
};

}  // namespace hier::server
