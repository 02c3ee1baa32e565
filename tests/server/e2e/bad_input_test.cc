// Bad requests against a running hier-server: each gets the right status code and a message
// naming the field, and afterwards the server still serves and the store is intact.
#include <gtest/gtest.h>

#include <string>

#include "tests/server/e2e/bad_requests.h"
#include "tests/server/e2e/server_fixture.h"

namespace hier::testing {
namespace {

class BadInputTest : public ServerE2eTest {};

TEST_F(BadInputTest, EachBadRequestGetsItsCodeAndFieldAndNothingChanges) {
  const LabelledImages images = TestImages(40);
  StartServer();
  AddImages(images, 0, 30);
  const std::unique_ptr<ApiCaller> api = GrpcCaller(channel_);
  BadRequests requests(api.get());
  requests.ExpectEachRefused(images.png[35]);

  // The server is up and serving, and the store holds exactly what it held.
  grpc::ClientContext health_context;
  grpc::health::v1::HealthCheckResponse health;
  ASSERT_TRUE(health_->Check(&health_context, {}, &health).ok());
  EXPECT_EQ(health.status(), grpc::health::v1::HealthCheckResponse::SERVING);
  EXPECT_EQ(ItemCount(), 30);
  for (int64_t id : {3, 905, 906}) {
    EXPECT_EQ(requests.Get(id).error_code(), id == 3 ? grpc::OK : grpc::NOT_FOUND) << id;
  }
  hier::v1::SearchResponse found;
  ASSERT_TRUE(SearchImage(images.png[3], 1, &found).ok());
  EXPECT_EQ(found.neighbours(0).id(), 3);
}

TEST_F(BadInputTest, AnExpiredDeadlineIsDeadlineExceeded) {
  const LabelledImages images = TestImages(1);
  StartServer();
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::microseconds(1));
  hier::v1::EmbedRequest request;
  request.add_images(images.png[0]);
  hier::v1::EmbedResponse response;
  EXPECT_EQ(retrieval_->Embed(&context, request, &response).error_code(), grpc::DEADLINE_EXCEEDED);
}

}  // namespace
}  // namespace hier::testing
