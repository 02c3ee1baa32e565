// One unary call of the public API, by method name, over either face of a server: gRPC, or the
// HTTP/JSON API (the request as protobuf JSON, POST /v1/<service>/<method>). The tests that hold
// every face to the same answers send the same request messages through both.
#pragma once

#include <google/protobuf/message.h>
#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>

namespace hier::testing {

class ApiCaller {
 public:
  virtual ~ApiCaller() = default;
  // Calls `method` ("hier.v1.Retrieval/Search") with `request`; on OK, `*response` holds the
  // answer. `authorization` empty: no Authorization.
  virtual grpc::Status Call(const std::string& method, const google::protobuf::Message& request,
                            google::protobuf::Message* response,
                            const std::string& authorization) = 0;
};

// The gRPC face, over `channel`.
std::unique_ptr<ApiCaller> GrpcCaller(std::shared_ptr<grpc::Channel> channel);

// The HTTP/JSON face on 127.0.0.1:`port`. Besides answering the call's status (from the error
// body's code), it fails the test when the HTTP status is not the one the gRPC code maps to or
// the error body is not {"code", "status", "message"}.
std::unique_ptr<ApiCaller> JsonCaller(int port);

}  // namespace hier::testing
