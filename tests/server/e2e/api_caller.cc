#include "tests/server/e2e/api_caller.h"

#include <google/protobuf/util/json_util.h>
#include <grpcpp/impl/codegen/client_unary_call.h>
#include <grpcpp/impl/codegen/proto_utils.h>
#include <grpcpp/impl/codegen/rpc_method.h>
#include <gtest/gtest.h>
#include <httplib.h>

#include <nlohmann/json.hpp>
#include <utility>

#include "server/http/json_gateway.h"

namespace hier::testing {
namespace {

class Grpc final : public ApiCaller {
 public:
  explicit Grpc(std::shared_ptr<grpc::Channel> channel) : channel_(std::move(channel)) {}

  grpc::Status Call(const std::string& method, const google::protobuf::Message& request,
                    google::protobuf::Message* response,
                    const std::string& authorization) override {
    grpc::ClientContext context;
    if (!authorization.empty()) context.AddMetadata("authorization", authorization);
    const std::string path = "/" + method;
    const grpc::internal::RpcMethod rpc(path.c_str(), grpc::internal::RpcMethod::NORMAL_RPC,
                                        channel_);
    return grpc::internal::BlockingUnaryCall<google::protobuf::Message,
                                             google::protobuf::Message>(
        channel_.get(), rpc, &context, request, response);
  }

 private:
  const std::shared_ptr<grpc::Channel> channel_;
};

class Json final : public ApiCaller {
 public:
  explicit Json(int port) : client_("127.0.0.1", port) {
    client_.set_read_timeout(std::chrono::seconds(60));
  }

  grpc::Status Call(const std::string& method, const google::protobuf::Message& request,
                    google::protobuf::Message* response,
                    const std::string& authorization) override {
    std::string body;
    EXPECT_TRUE(google::protobuf::util::MessageToJsonString(request, &body).ok()) << method;
    httplib::Headers headers;
    if (!authorization.empty()) headers.emplace("Authorization", authorization);
    const httplib::Result result = client_.Post("/v1/" + method, headers, body, "application/json");
    if (!result) {
      return grpc::Status(grpc::StatusCode::UNAVAILABLE,
                          "HTTP: " + httplib::to_string(result.error()));
    }
    if (result->status == 200) {
      const auto parsed = google::protobuf::util::JsonStringToMessage(result->body, response);
      EXPECT_TRUE(parsed.ok()) << method << ": " << result->body;
      return grpc::Status::OK;
    }
    const nlohmann::json error = nlohmann::json::parse(result->body, nullptr, false);
    if (!error.is_object() || !error.contains("code") || !error.contains("status") ||
        !error.contains("message")) {
      ADD_FAILURE() << method << ": HTTP " << result->status << " without the error body: "
                    << result->body;
      return grpc::Status(grpc::StatusCode::UNKNOWN, result->body);
    }
    const auto code = static_cast<grpc::StatusCode>(error["code"].get<int>());
    EXPECT_EQ(result->status, server::HttpStatusOf(code))
        << method << ": " << error["status"].get<std::string>();
    return grpc::Status(code, error["message"].get<std::string>());
  }

 private:
  httplib::Client client_;
};

}  // namespace

std::unique_ptr<ApiCaller> GrpcCaller(std::shared_ptr<grpc::Channel> channel) {
  return std::make_unique<Grpc>(std::move(channel));
}

std::unique_ptr<ApiCaller> JsonCaller(int port) { return std::make_unique<Json>(port); }

}  // namespace hier::testing
