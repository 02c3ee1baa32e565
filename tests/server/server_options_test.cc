// The server's option checks, table-driven: the safe default about tokens and listeners.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "server/app/server_app.h"

namespace hier::testing {
namespace {

using ::testing::HasSubstr;

TEST(ServerOptionsTest, LoopbackAddressesAndUnixSocketsAreLocal) {
  for (const char* local : {"127.0.0.1:50051", "127.0.0.1:0", "127.1.2.3:9", "localhost:50051",
                            "[::1]:50051", "unix:/run/hier.sock"}) {
    EXPECT_TRUE(server::IsLoopbackAddress(local)) << local;
  }
  for (const char* reachable :
       {"0.0.0.0:50051", "[::]:50051", "10.0.0.5:50051", "hier.example.com:50051", ":50051"}) {
    EXPECT_FALSE(server::IsLoopbackAddress(reachable)) << reachable;
  }
}

TEST(ServerOptionsTest, AReachableListenerWithoutATokenIsRefusedUnlessAccepted) {
  server::ServerOptions options;
  options.dim = 8;
  options.listen = "0.0.0.0:50051";
  const absl::Status refused = server::ValidateServerOptions(options).status();
  EXPECT_EQ(refused.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(refused.message(), HasSubstr("--listen: 0.0.0.0:50051 is reachable"));
  EXPECT_THAT(refused.message(), HasSubstr("--token-file"));
  EXPECT_THAT(refused.message(), HasSubstr("--allow-unauthenticated"));

  server::ServerOptions with_token = options;
  with_token.token = "secret";
  EXPECT_TRUE(server::ValidateServerOptions(with_token).ok());
  server::ServerOptions accepted = options;
  accepted.allow_unauthenticated = true;
  EXPECT_TRUE(server::ValidateServerOptions(accepted).ok());
  server::ServerOptions local = options;
  local.listen = "127.0.0.1:0";
  EXPECT_TRUE(server::ValidateServerOptions(local).ok());
}

TEST(ServerOptionsTest, TheHttpListenerFollowsTheSameRulesAndNeverCarriesTokensInClear) {
  server::ServerOptions options;
  options.dim = 8;
  options.listen = "127.0.0.1:50051";
  options.http_listen = "[::]:8080";
  const absl::Status refused = server::ValidateServerOptions(options).status();
  EXPECT_EQ(refused.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(refused.message(), HasSubstr("--http-listen: [::]:8080 is reachable"));
  options.allow_unauthenticated = true;
  EXPECT_TRUE(server::ValidateServerOptions(options).ok());
  options.http_listen = "";
  options.allow_unauthenticated = false;
  EXPECT_TRUE(server::ValidateServerOptions(options).ok()) << "no HTTP listener";

  // With TLS on gRPC, a plain-HTTP listener other machines reach would send tokens in clear.
  server::ServerOptions tls = options;
  tls.token = "secret";
  tls.tls_cert = "cert.pem";
  tls.tls_key = "key.pem";
  tls.http_listen = "0.0.0.0:8080";
  const absl::Status clear = server::ValidateServerOptions(tls).status();
  EXPECT_THAT(clear.message(), HasSubstr("--http-listen: 0.0.0.0:8080 is plain HTTP"));
  tls.http_listen = "127.0.0.1:8080";
  EXPECT_THAT(std::string(server::ValidateServerOptions(tls).status().message()),
              ::testing::Not(HasSubstr("--http-listen")));
}

}  // namespace
}  // namespace hier::testing
