// The bad requests every front of the public API (one server, or a router before a cluster) must
// refuse with the right status code and a message naming the field: one list, sent by the tests
// of each front. The limits in the expected messages are ServerE2eTest::StartServer's (16 images
// and 100 items per call, 4 MiB messages), and the gallery's model embeds 32 dimensions.
#pragma once

#include <grpcpp/grpcpp.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "hier/v1/retrieval.pb.h"
#include "tests/server/e2e/api_caller.h"
#include "tests/server/e2e/server_fixture.h"

namespace hier::testing {

struct BadCase {
  std::string name;
  std::function<grpc::Status()> call;
  grpc::StatusCode code;
  std::string message;  // a substring the error message must hold (the field)
};

class BadRequests {
 public:
  // Sends the cases through `api` (either face of a server).
  explicit BadRequests(ApiCaller* api) : api_(api) {}

  // The cases (at least 30); `png` is an image the model embeds. They write nothing they are
  // expected to: item 3 must exist, ids 900 and up must not.
  std::vector<BadCase> Cases(const std::string& png);
  // Sends every case: a test failure for each wrong code or message.
  void ExpectEachRefused(const std::string& png);

  grpc::Status Get(int64_t id);

 private:
  grpc::Status Embed(const std::vector<std::string>& images);
  grpc::Status Search(const std::function<void(hier::v1::SearchRequest&)>& fill);
  grpc::Status Add(const std::function<void(hier::v1::AddItemsRequest&)>& fill,
                   const std::string& authorization = std::string("Bearer ") + kToken);
  grpc::Status Delete(std::vector<int64_t> ids, bool authorized = true);
  grpc::Status Load(const std::string& version, bool authorized = true);
  grpc::Status List(int32_t page_size, const std::string& page_token);
  grpc::Status Tune(double target_recall, int32_t sample_queries, bool authorized);
  // `method` of the API with `request`, authorized or not; the answer is dropped.
  template <typename Response>
  grpc::Status Send(const std::string& method, const google::protobuf::Message& request,
                    bool authorized = false) {
    Response response;
    return api_->Call(method, request, &response,
                      authorized ? std::string("Bearer ") + kToken : std::string());
  }

  ApiCaller* const api_;
};

}  // namespace hier::testing
