// What a starting hier-server answers on its port: health NOT_SERVING and UNAVAILABLE naming the
// phase, until the server proper takes the same port over and answers SERVING.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>

#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "hier/v1/retrieval.grpc.pb.h"
#include "server/app/grpc_frontend.h"
#include "server/app/startup_frontend.h"

namespace hier::testing {
namespace {

using ::testing::HasSubstr;
using HealthStatus = grpc::health::v1::HealthCheckResponse;

HealthStatus::ServingStatus HealthOf(int port) {
  auto channel = grpc::CreateChannel(absl::StrCat("127.0.0.1:", port),
                                     grpc::InsecureChannelCredentials());
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  grpc::health::v1::HealthCheckResponse response;
  const grpc::Status status = grpc::health::v1::Health::NewStub(channel)->Check(
      &context, grpc::health::v1::HealthCheckRequest(), &response);
  EXPECT_TRUE(status.ok()) << status.error_message();
  return response.status();
}

grpc::Status SearchOn(int port) {
  auto channel = grpc::CreateChannel(absl::StrCat("127.0.0.1:", port),
                                     grpc::InsecureChannelCredentials());
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  hier::v1::SearchResponse response;
  return hier::v1::Retrieval::NewStub(channel)->Search(&context, hier::v1::SearchRequest(),
                                                       &response);
}

TEST(StartupFrontendTest, AnswersNotServingAndNamesThePhaseUntilTheServerTakesThePortOver) {
  server::ServerOptions options;
  options.listen = "127.0.0.1:0";
  server::ServerMetrics metrics;
  absl::StatusOr<std::unique_ptr<server::StartupFrontend>> startup =
      server::StartupFrontend::Start(options, metrics);
  ASSERT_TRUE(startup.ok()) << startup.status();
  const int port = (*startup)->port();
  ASSERT_GT(port, 0);

  EXPECT_EQ(HealthOf(port), HealthStatus::NOT_SERVING);
  (*startup)->SetPhase("loading the index");
  const grpc::Status refused = SearchOn(port);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_THAT(refused.error_message(), HasSubstr("starting (loading the index)"));

  // The server proper binds the same port beside it; once the frontend stops, new connections
  // reach the server proper only.
  server::ServerOptions same_port = options;
  same_port.listen = absl::StrCat("127.0.0.1:", port);
  int bound = 0;
  absl::StatusOr<std::unique_ptr<grpc::Server>> proper =
      server::StartGrpcFrontend(same_port, {}, metrics, &bound);
  ASSERT_TRUE(proper.ok()) << proper.status();
  EXPECT_EQ(bound, port);
  (*proper)->GetHealthCheckService()->SetServingStatus(true);
  (*startup)->Stop();
  EXPECT_EQ(HealthOf(port), HealthStatus::SERVING);
  EXPECT_EQ(SearchOn(port).error_code(), grpc::StatusCode::UNIMPLEMENTED);
  (*proper)->Shutdown();
}

TEST(StartupFrontendTest, AnAddressItCannotListenOnIsAnErrorNamingTheFlag) {
  server::ServerOptions options;
  options.listen = "not an address";
  server::ServerMetrics metrics;
  const absl::Status refused = server::StartupFrontend::Start(options, metrics).status();
  EXPECT_EQ(refused.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(refused.message(), HasSubstr("--listen"));
}

}  // namespace
}  // namespace hier::testing
