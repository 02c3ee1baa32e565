// hier-server with the tools users run beside it: the Python client example, Debian's Prometheus
// scraping the metrics endpoint, TLS with a certificate made by openssl, and server reflection
// (what grpcurl uses).
#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "grpc/reflection/v1alpha/reflection.grpc.pb.h"
#include "tests/server/e2e/server_fixture.h"

namespace hier::testing {
namespace {

namespace fs = std::filesystem;

constexpr char kPython[] = "/usr/bin/python3";  // Debian's, with python3-grpcio
constexpr char kPrometheus[] = "/usr/bin/prometheus";

// A TCP port free at the time of the call.
int FreePort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address));
  socklen_t length = sizeof(address);
  getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
  close(fd);
  return ntohs(address.sin_port);
}

std::string UrlEncode(const std::string& text) {
  std::string out;
  for (unsigned char ch : text) {
    if (std::isalnum(ch) || ch == '_' || ch == '.' || ch == '-') {
      out += static_cast<char>(ch);
    } else {
      char hex[4];
      std::snprintf(hex, sizeof(hex), "%%%02X", ch);
      out += hex;
    }
  }
  return out;
}

using IntegrationsTest = ServerE2eTest;

TEST_F(IntegrationsTest, ThePythonExampleFindsWhatTheServerFinds) {
  ASSERT_TRUE(fs::exists(kPython)) << "install python3-grpcio (deploy/install-deps.sh)";
  const LabelledImages images = TestImages(101);
  StartServer();
  AddImages(images, 0, 100);
  const std::string query = state_ + "-query.png";
  std::ofstream(query, std::ios::binary) << images.png[100];
  hier::v1::SearchResponse expected;
  ASSERT_TRUE(SearchImage(images.png[100], 3, &expected).ok());

  const std::string output = state_ + "-python.out";
  ChildProcess python(
      "/usr/bin/env",
      {"PYTHONPATH=" HIER_PYTHON_DIR, kPython, HIER_SOURCE_DIR "/client/python/search_images.py",
       "--server", "127.0.0.1:" + std::to_string(grpc_port_), "--k", "3", "--json", query},
      output);
  ASSERT_EQ(python.Wait(std::chrono::seconds(60)), 0) << ReadText(output);
  const nlohmann::json result = nlohmann::json::parse(ReadText(output));
  EXPECT_EQ(result["query"], query);
  EXPECT_EQ(result["model_version"], "run/best");
  ASSERT_EQ(result["neighbours"].size(), 3u);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(result["neighbours"][i]["id"], expected.neighbours(i).id());
    EXPECT_EQ(result["neighbours"][i]["label"], expected.neighbours(i).label());
    EXPECT_DOUBLE_EQ(result["neighbours"][i]["distance"].get<double>(),
                     expected.neighbours(i).distance());
  }
}

TEST_F(IntegrationsTest, PrometheusScrapesTheServer) {
  ASSERT_TRUE(fs::exists(kPrometheus)) << "install prometheus (deploy/install-deps.sh)";
  const LabelledImages images = TestImages(40);
  StartServer();
  AddImages(images, 0, 40);

  const int prometheus_port = FreePort();
  const std::string config = state_ + "-prometheus.yml";
  std::ofstream(config) << "global:\n  scrape_interval: 1s\n"
                        << "scrape_configs:\n  - job_name: hier-server\n"
                        << "    static_configs:\n      - targets: ['127.0.0.1:" << metrics_port_
                        << "']\n";
  ChildProcess prometheus(kPrometheus,
                          {"--config.file=" + config, "--storage.tsdb.path=" + state_ + "-tsdb",
                           "--web.listen-address=127.0.0.1:" + std::to_string(prometheus_port)},
                          state_ + "-prometheus.log");
  // The value of an instant query once Prometheus has scraped the series, or none after 90 s.
  auto query = [&](const std::string& promql) -> std::optional<double> {
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(90);
    while (std::chrono::steady_clock::now() < until && prometheus.running()) {
      const std::optional<HttpResponse> response =
          HttpGet(prometheus_port, "/api/v1/query?query=" + UrlEncode(promql));
      if (response && response->status == 200) {
        const nlohmann::json body = nlohmann::json::parse(response->body);
        const nlohmann::json& result = body["data"]["result"];
        if (!result.empty()) return std::stod(result[0]["value"][1].get<std::string>());
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(250));
    }
    return std::nullopt;
  };
  EXPECT_EQ(query("hier_index_items{job=\"hier-server\"}"), 40)
      << ReadText(state_ + "-prometheus.log");
  EXPECT_EQ(query("sum(grpc_server_handled_total{grpc_service=\"hier.v1.Retrieval\","
                  "grpc_method=\"AddItemsStream\",grpc_code=\"OK\"})"),
            1);
  EXPECT_EQ(query("up{job=\"hier-server\"}"), 1);
}

TEST_F(IntegrationsTest, TlsServesClientsThatTrustItsCertificate) {
  const std::string cert = scratch_ + "/cert.pem", key = scratch_ + "/key.pem";
  ChildProcess openssl(
      "/usr/bin/openssl",
      {"req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
       "-addext", "subjectAltName=DNS:localhost", "-keyout", key, "-out", cert},
      scratch_ + "/openssl.log");
  ASSERT_EQ(openssl.Wait(std::chrono::seconds(60)), 0) << ReadText(scratch_ + "/openssl.log");
  StartServer({"--tls-cert", cert, "--tls-key", key});

  grpc::SslCredentialsOptions ssl;
  ssl.pem_root_certs = ReadText(cert);
  grpc::ChannelArguments arguments;
  arguments.SetSslTargetNameOverride("localhost");
  auto secure = hier::v1::Retrieval::NewStub(grpc::CreateCustomChannel(
      "127.0.0.1:" + std::to_string(grpc_port_), grpc::SslCredentials(ssl), arguments));
  grpc::ClientContext context;
  hier::v1::StatsResponse stats;
  const grpc::Status status = secure->Stats(&context, {}, &stats);
  EXPECT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(stats.model_version(), "run/best");

  // A client without TLS does not get through.
  grpc::ClientContext plain_context;
  plain_context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  EXPECT_FALSE(retrieval_->Stats(&plain_context, {}, &stats).ok());
}

TEST_F(IntegrationsTest, ReflectionListsEveryService) {
  StartServer();
  auto reflection = grpc::reflection::v1alpha::ServerReflection::NewStub(channel_);
  grpc::ClientContext context;
  auto stream = reflection->ServerReflectionInfo(&context);
  grpc::reflection::v1alpha::ServerReflectionRequest request;
  request.set_list_services("");
  ASSERT_TRUE(stream->Write(request));
  stream->WritesDone();
  grpc::reflection::v1alpha::ServerReflectionResponse response;
  ASSERT_TRUE(stream->Read(&response));
  std::vector<std::string> services;
  for (const auto& service : response.list_services_response().service()) {
    services.push_back(service.name());
  }
  EXPECT_THAT(services,
              ::testing::IsSupersetOf({"hier.v1.Retrieval", "hier.v1.Models", "hier.v1.Hierarchy",
                                       "hier.v1.Training", "grpc.health.v1.Health"}));
  EXPECT_TRUE(stream->Finish().ok());
}

}  // namespace
}  // namespace hier::testing
