// Tests of the server's metrics: gRPC calls counted by a real in-process server, the hier_*
// series, process metrics, and MetricsEndpoint serving them over HTTP.
#include <arpa/inet.h>
#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <future>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "prometheus/text_serializer.h"
#include "server/metrics/metrics_endpoint.h"
#include "server/metrics/server_metrics.h"

namespace hier::server {
namespace {

using Labels = std::map<std::string, std::string>;

// One sample line of the Prometheus text format.
struct Sample {
  std::string name;
  Labels labels;
  double value = 0;
};

std::vector<Sample> ParseText(const std::string& text) {
  std::vector<Sample> samples;
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.empty() || line[0] == '#') continue;
    Sample sample;
    size_t pos = line.find_first_of("{ ");
    sample.name = line.substr(0, pos);
    if (line[pos] == '{') {
      ++pos;
      while (line[pos] != '}') {
        const size_t equals = line.find('=', pos);
        const std::string key = line.substr(pos, equals - pos);
        std::string value;
        for (pos = equals + 2; line[pos] != '"'; ++pos) {
          if (line[pos] == '\\') ++pos;
          value += line[pos];
        }
        sample.labels[key] = value;
        pos += line[pos + 1] == ',' ? 2 : 1;
      }
      ++pos;
    }
    sample.value = std::strtod(line.c_str() + pos + 1, nullptr);
    samples.push_back(std::move(sample));
  }
  return samples;
}

// The sum of the samples named `name` whose labels include `want`; nullopt when none match.
std::optional<double> Value(const std::string& text, const std::string& name,
                            const Labels& want = {}) {
  std::optional<double> sum;
  for (const Sample& sample : ParseText(text)) {
    if (sample.name != name) continue;
    bool match = true;
    for (const auto& [key, value] : want) {
      const auto it = sample.labels.find(key);
      match = match && it != sample.labels.end() && it->second == value;
    }
    if (match) sum = sum.value_or(0) + sample.value;
  }
  return sum;
}

// grpc.health.v1.HealthCheckRequest{service} in the wire format (names under 128 bytes).
grpc::ByteBuffer HealthRequest(const std::string& service) {
  std::string bytes;
  if (!service.empty())
    bytes = std::string("\x0a", 1) + static_cast<char>(service.size()) + service;
  grpc::Slice slice(bytes);
  return grpc::ByteBuffer(&slice, 1);
}

// Reads the first message of a server stream, then cancels the call.
class CancelAfterFirstMessage final
    : public grpc::ClientBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer> {
 public:
  CancelAfterFirstMessage(grpc::GenericStub& stub, const std::string& method,
                          const grpc::ByteBuffer& request)
      : request_(request) {
    stub.PrepareBidiStreamingCall(&context_, method, grpc::StubOptions(), this);
    StartWriteLast(&request_, grpc::WriteOptions());
    StartRead(&response_);
    StartCall();
  }

  grpc::Status Wait() { return done_.get_future().get(); }

  void OnReadDone(bool ok) override {
    if (ok) context_.TryCancel();
  }
  void OnDone(const grpc::Status& status) override { done_.set_value(status); }

 private:
  grpc::ClientContext context_;
  grpc::ByteBuffer request_;
  grpc::ByteBuffer response_;
  std::promise<grpc::Status> done_;
};

// An in-process server with the default health service, counted by `metrics`. Other methods
// reach a generic service that answers UNIMPLEMENTED (gRPC 1.51 also needs one service of its
// own before it adds the health service).
class HealthServer {
 public:
  explicit HealthServer(ServerMetrics& metrics) {
    grpc::EnableDefaultHealthCheckService(true);
    grpc::ServerBuilder builder;
    builder.RegisterCallbackGenericService(&unimplemented_);
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
    std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> creators;
    creators.push_back(metrics.MakeInterceptorFactory());
    builder.experimental().SetInterceptorCreators(std::move(creators));
    server_ = builder.BuildAndStart();
    channel_ = grpc::CreateChannel("127.0.0.1:" + std::to_string(port_),
                                   grpc::InsecureChannelCredentials());
  }
  ~HealthServer() { server_->Shutdown(); }

  bool started() const { return server_ != nullptr && port_ > 0; }

  grpc::Status Unary(const std::string& method, const grpc::ByteBuffer& request) {
    grpc::GenericStub stub(channel_);
    grpc::ClientContext context;
    grpc::ByteBuffer response;
    std::promise<grpc::Status> done;
    stub.UnaryCall(&context, method, grpc::StubOptions(), &request, &response,
                   [&done](grpc::Status status) { done.set_value(std::move(status)); });
    return done.get_future().get();
  }

  grpc::Status StreamThenCancel(const std::string& method, const grpc::ByteBuffer& request) {
    grpc::GenericStub stub(channel_);
    CancelAfterFirstMessage call(stub, method, request);
    return call.Wait();
  }

  void Shutdown() { server_->Shutdown(); }

 private:
  grpc::CallbackGenericService unimplemented_;
  int port_ = 0;
  std::unique_ptr<grpc::Server> server_;
  std::shared_ptr<grpc::Channel> channel_;
};

constexpr char kCheck[] = "/grpc.health.v1.Health/Check";
constexpr char kWatch[] = "/grpc.health.v1.Health/Watch";
const Labels kCheckLabels = {
    {"grpc_type", "unary"}, {"grpc_service", "grpc.health.v1.Health"}, {"grpc_method", "Check"}};
const Labels kWatchLabels = {{"grpc_type", "server_stream"},
                             {"grpc_service", "grpc.health.v1.Health"},
                             {"grpc_method", "Watch"}};

Labels With(Labels labels, const std::string& key, const std::string& value) {
  labels[key] = value;
  return labels;
}

TEST(ServerMetricsTest, CountsGrpcCallsByMethodAndCode) {
  ServerMetrics metrics;
  HealthServer server(metrics);
  ASSERT_TRUE(server.started());
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(server.Unary(kCheck, HealthRequest("")).ok());
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(server.Unary(kCheck, HealthRequest("no.such.Service")).error_code(),
              grpc::StatusCode::NOT_FOUND);
  }

  // The status is counted before it is sent, so the client has seen it only after that.
  const std::string text = metrics.Serialize();
  EXPECT_EQ(Value(text, "grpc_server_started_total", kCheckLabels), 5);
  EXPECT_EQ(Value(text, "grpc_server_handled_total", With(kCheckLabels, "grpc_code", "OK")), 3);
  EXPECT_EQ(Value(text, "grpc_server_handled_total", With(kCheckLabels, "grpc_code", "NotFound")),
            2);
  EXPECT_EQ(Value(text, "grpc_server_handled_total", kCheckLabels), 5);
  EXPECT_EQ(Value(text, "grpc_server_handling_seconds_count", kCheckLabels), 5);
  EXPECT_EQ(Value(text, "grpc_server_handling_seconds_bucket", With(kCheckLabels, "le", "+Inf")),
            5);
  EXPECT_EQ(Value(text, "grpc_server_handling_seconds_bucket", With(kCheckLabels, "le", "30")), 5);
  EXPECT_GT(*Value(text, "grpc_server_handling_seconds_sum", kCheckLabels), 0);
  EXPECT_LT(*Value(text, "grpc_server_handling_seconds_sum", kCheckLabels), 30);
  EXPECT_NE(text.find("# TYPE grpc_server_handling_seconds histogram"), std::string::npos);
  EXPECT_NE(text.find("# TYPE grpc_server_handled_total counter"), std::string::npos);
}

TEST(ServerMetricsTest, ConcurrentCallsAreAllCounted) {
  ServerMetrics metrics;
  HealthServer server(metrics);
  ASSERT_TRUE(server.started());
  constexpr int kThreads = 8;
  constexpr int kCallsPerThread = 50;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&server, &metrics, t] {
      for (int i = 0; i < kCallsPerThread; ++i) {
        server.Unary(kCheck, HealthRequest(t % 2 == 0 ? "" : "no.such.Service"));
        if (i % 10 == 0) metrics.Serialize();  // scrapes while calls are counted
      }
    });
  }
  for (std::thread& thread : threads) thread.join();

  const std::string text = metrics.Serialize();
  EXPECT_EQ(Value(text, "grpc_server_started_total", kCheckLabels), kThreads * kCallsPerThread);
  EXPECT_EQ(Value(text, "grpc_server_handled_total", With(kCheckLabels, "grpc_code", "OK")),
            kThreads * kCallsPerThread / 2);
  EXPECT_EQ(Value(text, "grpc_server_handled_total", With(kCheckLabels, "grpc_code", "NotFound")),
            kThreads * kCallsPerThread / 2);
  EXPECT_EQ(Value(text, "grpc_server_handling_seconds_count", kCheckLabels),
            kThreads * kCallsPerThread);
}

TEST(ServerMetricsTest, GenericServiceCallsAreBidiStreams) {
  ServerMetrics metrics;
  HealthServer server(metrics);
  ASSERT_TRUE(server.started());
  EXPECT_EQ(server.Unary("/test.v1.Nothing/Here", HealthRequest("")).error_code(),
            grpc::StatusCode::UNIMPLEMENTED);

  const Labels labels = {
      {"grpc_type", "bidi_stream"}, {"grpc_service", "test.v1.Nothing"}, {"grpc_method", "Here"}};
  const std::string text = metrics.Serialize();
  EXPECT_EQ(Value(text, "grpc_server_started_total", labels), 1) << text;
  EXPECT_EQ(Value(text, "grpc_server_handled_total", With(labels, "grpc_code", "Unimplemented")), 1)
      << text;
}

// A generic service sees whatever method names its clients send; the series must stay bounded.
TEST(ServerMetricsTest, ClientChosenMethodNamesAreBounded) {
  ServerMetrics metrics;
  HealthServer server(metrics);
  ASSERT_TRUE(server.started());
  constexpr int kCalls = 530;
  for (int i = 0; i < kCalls; ++i) {
    ASSERT_EQ(server.Unary("/test.v1.Random/M" + std::to_string(i), HealthRequest("")).error_code(),
              grpc::StatusCode::UNIMPLEMENTED);
  }
  const std::vector<Sample> samples = ParseText(metrics.Serialize());
  int series = 0;
  for (const Sample& sample : samples) series += sample.name == "grpc_server_started_total";
  EXPECT_EQ(series, 513);  // 512 methods, then grpc_service="unknown"
  const std::string text = metrics.Serialize();
  EXPECT_EQ(Value(text, "grpc_server_started_total"), kCalls);
  EXPECT_EQ(Value(text, "grpc_server_handled_total"), kCalls);
  EXPECT_EQ(Value(text, "grpc_server_started_total",
                  {{"grpc_service", "unknown"}, {"grpc_method", "unknown"}}),
            kCalls - 512);
}

TEST(ServerMetricsTest, CancelledStreamIsHandledOnce) {
  ServerMetrics metrics;
  HealthServer server(metrics);
  ASSERT_TRUE(server.started());
  EXPECT_EQ(server.StreamThenCancel(kWatch, HealthRequest("")).error_code(),
            grpc::StatusCode::CANCELLED);

  // The server learns of the cancellation asynchronously.
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!Value(metrics.Serialize(), "grpc_server_handled_total", kWatchLabels) &&
         std::chrono::steady_clock::now() < give_up) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  server.Shutdown();
  const std::string text = metrics.Serialize();
  EXPECT_EQ(Value(text, "grpc_server_started_total", kWatchLabels), 1) << text;
  EXPECT_EQ(Value(text, "grpc_server_handled_total", kWatchLabels), 1) << text;
  EXPECT_EQ(Value(text, "grpc_server_handling_seconds_count", kWatchLabels), 1) << text;
}

TEST(ServerMetricsTest, FactoriesShareSeriesAndOutliveTheMetricsObject) {
  auto metrics = std::make_unique<ServerMetrics>();
  const std::shared_ptr<prometheus::Registry> registry = metrics->registry();
  HealthServer first(*metrics);
  HealthServer second(*metrics);
  ASSERT_TRUE(first.started() && second.started());
  EXPECT_TRUE(first.Unary(kCheck, HealthRequest("")).ok());
  EXPECT_TRUE(second.Unary(kCheck, HealthRequest("")).ok());
  EXPECT_EQ(Value(metrics->Serialize(), "grpc_server_handled_total", kCheckLabels), 2);

  metrics.reset();
  EXPECT_TRUE(first.Unary(kCheck, HealthRequest("")).ok());
  const std::string text = prometheus::TextSerializer().Serialize(registry->Collect());
  EXPECT_EQ(Value(text, "grpc_server_handled_total", kCheckLabels), 3);
}

TEST(ServerMetricsTest, ServingModelSeriesFollowsTheVersion) {
  ServerMetrics metrics;
  metrics.SetServingModel("run-a/step-100");
  std::string text = metrics.Serialize();
  EXPECT_EQ(Value(text, "hier_model_info", {{"version", "run-a/step-100"}}), 1);

  metrics.SetServingModel("run-a/step-200");
  text = metrics.Serialize();
  EXPECT_EQ(Value(text, "hier_model_info", {{"version", "run-a/step-200"}}), 1);
  EXPECT_EQ(Value(text, "hier_model_info", {{"version", "run-a/step-100"}}), std::nullopt);
  EXPECT_EQ(Value(text, "hier_model_info"), 1);

  metrics.SetServingModel("");
  EXPECT_EQ(Value(metrics.Serialize(), "hier_model_info"), std::nullopt);
}

// The search settings live in the index; the hook reads them afresh at each scrape.
TEST(ServerMetricsTest, SearchSettingsAreReadAtEachScrape) {
  ServerMetrics metrics;
  SearchSettingsSample sample;
  sample.nprobe = 64;
  sample.ef_search = 256;
  sample.overfetch = 100;
  metrics.SetCollectHook([&] { metrics.SetSearchSettings(sample); });
  std::string text = metrics.Serialize();
  EXPECT_EQ(Value(text, "hier_search_effort", {{"knob", "nprobe"}}), 64);
  EXPECT_EQ(Value(text, "hier_search_effort", {{"knob", "overfetch"}}), 100);
  EXPECT_EQ(Value(text, "hier_search_recall"), std::nullopt);  // not tuned yet

  sample.nprobe = 12;
  sample.target_recall = 0.99;
  sample.measured_recall = 0.9931;
  text = metrics.Serialize();
  EXPECT_EQ(Value(text, "hier_search_effort", {{"knob", "nprobe"}}), 12);
  EXPECT_EQ(Value(text, "hier_search_recall", {{"of", "target"}}), 0.99);
  EXPECT_EQ(Value(text, "hier_search_recall", {{"of", "measured"}}), 0.9931);

  metrics.SetCollectHook(nullptr);
  sample.nprobe = 5;
  EXPECT_EQ(Value(metrics.Serialize(), "hier_search_effort", {{"knob", "nprobe"}}), 12);
}

TEST(ServerMetricsTest, TrainingJobStatesSeenBeforeDropToZero) {
  ServerMetrics metrics;
  metrics.SetTrainingJobs({{"running", 2}, {"queued", 1}});
  metrics.SetTrainingJobs({{"running", 1}, {"succeeded", 1}});
  const std::string text = metrics.Serialize();
  EXPECT_EQ(Value(text, "hier_training_jobs", {{"state", "running"}}), 1);
  EXPECT_EQ(Value(text, "hier_training_jobs", {{"state", "succeeded"}}), 1);
  EXPECT_EQ(Value(text, "hier_training_jobs", {{"state", "queued"}}), 0);
  EXPECT_EQ(Value(text, "hier_training_jobs", {{"state", "failed"}}), std::nullopt);
}

JobProgressSample Progress(double loss, std::optional<double> recall_at_1, double progress_ratio,
                           int64_t epoch) {
  JobProgressSample sample;
  sample.loss = loss;
  sample.recall_at_1 = recall_at_1;
  sample.progress_ratio = progress_ratio;
  sample.epoch = epoch;
  return sample;
}

TEST(ServerMetricsTest, JobProgressGaugesUntilRemoved) {
  ServerMetrics metrics;
  metrics.SetJobProgress("job-1", Progress(0.75, std::nullopt, 0.25, 1));
  std::string text = metrics.Serialize();
  EXPECT_EQ(Value(text, "hier_job_loss", {{"job_id", "job-1"}}), 0.75);
  EXPECT_EQ(Value(text, "hier_job_progress_ratio", {{"job_id", "job-1"}}), 0.25);
  EXPECT_EQ(Value(text, "hier_job_epoch", {{"job_id", "job-1"}}), 1);
  EXPECT_EQ(Value(text, "hier_job_recall_at_1"), std::nullopt);  // not evaluated yet

  metrics.SetJobProgress("job-1", Progress(0.5, 0.625, 1.5, 2));
  metrics.SetJobProgress("job-2", Progress(2, std::nullopt, -1, 0));
  text = metrics.Serialize();
  EXPECT_EQ(Value(text, "hier_job_loss", {{"job_id", "job-1"}}), 0.5);
  EXPECT_EQ(Value(text, "hier_job_recall_at_1", {{"job_id", "job-1"}}), 0.625);
  EXPECT_EQ(Value(text, "hier_job_progress_ratio", {{"job_id", "job-1"}}), 1);
  EXPECT_EQ(Value(text, "hier_job_progress_ratio", {{"job_id", "job-2"}}), 0);

  metrics.RemoveJob("job-1");
  metrics.RemoveJob("never-started");
  text = metrics.Serialize();
  for (const char* name :
       {"hier_job_loss", "hier_job_recall_at_1", "hier_job_progress_ratio", "hier_job_epoch"}) {
    EXPECT_EQ(Value(text, name, {{"job_id", "job-1"}}), std::nullopt) << name;
  }
  EXPECT_EQ(Value(text, "hier_job_loss", {{"job_id", "job-2"}}), 2);
}

TEST(ServerMetricsTest, EmbedBatchSearchStageAndIndexSeries) {
  ServerMetrics metrics;
  for (int64_t images : {3, 8, 256}) metrics.ObserveEmbedBatch(images);
  metrics.ObserveSearchStage(SearchStage::kCandidate, 0.002);
  metrics.ObserveSearchStage(SearchStage::kRerank, 0.0005);
  metrics.ObserveSearchStage(SearchStage::kRerank, 0.0007);
  metrics.SetIndexItems(12345);

  const std::string text = metrics.Serialize();
  EXPECT_EQ(Value(text, "hier_embed_batch_size_count"), 3);
  EXPECT_EQ(Value(text, "hier_embed_batch_size_sum"), 267);
  EXPECT_EQ(Value(text, "hier_embed_batch_size_bucket", {{"le", "2"}}), 0);
  EXPECT_EQ(Value(text, "hier_embed_batch_size_bucket", {{"le", "4"}}), 1);
  EXPECT_EQ(Value(text, "hier_embed_batch_size_bucket", {{"le", "8"}}), 2);
  EXPECT_EQ(Value(text, "hier_embed_batch_size_bucket", {{"le", "256"}}), 3);
  EXPECT_EQ(Value(text, "hier_search_stage_seconds_count", {{"stage", "candidate"}}), 1);
  EXPECT_EQ(Value(text, "hier_search_stage_seconds_count", {{"stage", "rerank"}}), 2);
  EXPECT_DOUBLE_EQ(*Value(text, "hier_search_stage_seconds_sum", {{"stage", "rerank"}}), 0.0012);
  EXPECT_EQ(Value(text, "hier_index_items"), 12345);
}

TEST(ServerMetricsTest, ProcessMetricsArePlausible) {
  ServerMetrics metrics;
  const std::string text = metrics.Serialize();
  const double now = static_cast<double>(std::time(nullptr));
  ASSERT_TRUE(Value(text, "process_start_time_seconds").has_value()) << text;
  EXPECT_LE(*Value(text, "process_start_time_seconds"), now + 1);
  EXPECT_GT(*Value(text, "process_start_time_seconds"), now - 24 * 3600);
  EXPECT_GE(Value(text, "process_cpu_seconds_total").value_or(-1), 0);
  EXPECT_GT(Value(text, "process_resident_memory_bytes").value_or(0), 0);
  EXPECT_GE(Value(text, "process_virtual_memory_bytes").value_or(0),
            Value(text, "process_resident_memory_bytes").value_or(0));
  EXPECT_GE(Value(text, "process_open_fds").value_or(0), 3);  // at least stdin, stdout, stderr
  EXPECT_GE(Value(text, "process_threads").value_or(0), 1);
  EXPECT_NE(text.find("# TYPE process_cpu_seconds_total counter"), std::string::npos);
  ASSERT_TRUE(Value(text, "hier_malloc_in_use_bytes").has_value()) << text;
  EXPECT_GE(Value(text, "hier_malloc_free_bytes").value_or(-1), 0);
}

TEST(ServerMetricsTest, MallocInUseFollowsWhatTheProgramHolds) {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  GTEST_SKIP() << "a sanitizer's allocator replaces the C library's, whose counts stay still";
#endif
  ServerMetrics metrics;
  const double before = *Value(metrics.Serialize(), "hier_malloc_in_use_bytes");
  std::vector<std::unique_ptr<char[]>> held;
  for (int i = 0; i < 64; ++i) {
    held.emplace_back(new char[64 * 1024]);
    std::memset(held.back().get(), 1, 64 * 1024);
  }
  const double during = *Value(metrics.Serialize(), "hier_malloc_in_use_bytes");
  EXPECT_GE(during - before, 0.9 * 64 * 64 * 1024);
  held.clear();
  const double after = *Value(metrics.Serialize(), "hier_malloc_in_use_bytes");
  EXPECT_LE(after - before, 0.1 * 64 * 64 * 1024);
}

// A connected TCP socket to the loopback address of `family` (AF_INET or AF_INET6), or -1. Reads
// give up after 10 s, so a server that never answers fails the test instead of hanging it.
// receive_buffer > 0 sets SO_RCVBUF first (so the window is small from the handshake on).
int ConnectLoopback(int port, int family = AF_INET, int receive_buffer = 0) {
  const int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  if (receive_buffer > 0) {
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &receive_buffer, sizeof(receive_buffer));
  }
  timeval timeout{};
  timeout.tv_sec = 10;
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  sockaddr_storage address{};
  socklen_t length = 0;
  if (family == AF_INET6) {
    auto* ipv6 = reinterpret_cast<sockaddr_in6*>(&address);
    ipv6->sin6_family = AF_INET6;
    ipv6->sin6_port = htons(static_cast<uint16_t>(port));
    ipv6->sin6_addr = in6addr_loopback;
    length = sizeof(*ipv6);
  } else {
    auto* ipv4 = reinterpret_cast<sockaddr_in*>(&address);
    ipv4->sin_family = AF_INET;
    ipv4->sin_port = htons(static_cast<uint16_t>(port));
    ipv4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    length = sizeof(*ipv4);
  }
  if (connect(fd, reinterpret_cast<sockaddr*>(&address), length) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

bool WriteAll(int fd, const std::string& data) {
  for (size_t done = 0; done < data.size();) {
    const ssize_t n = send(fd, data.data() + done, data.size() - done, MSG_NOSIGNAL);
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

// Everything the peer sends until it closes (or a read times out).
std::string ReadAll(int fd) {
  std::string received;
  char buffer[4096];
  for (ssize_t n; (n = read(fd, buffer, sizeof(buffer))) > 0;) received.append(buffer, n);
  return received;
}

// Sends `request` as it is and returns the whole response, or "" if the connection failed.
std::string Exchange(int port, const std::string& request, int family = AF_INET) {
  const int fd = ConnectLoopback(port, family);
  if (fd < 0) return "";
  std::string response;
  if (WriteAll(fd, request)) response = ReadAll(fd);
  close(fd);
  return response;
}

std::string Get(const std::string& path, const char* method = "GET") {
  return std::string(method) + " " + path + " HTTP/1.1\r\nHost: localhost\r\nAccept: */*\r\n\r\n";
}

struct HttpResponse {
  std::string status_line;
  std::map<std::string, std::string> headers;  // names in lower case
  std::string body;

  std::string Header(const std::string& name) const {
    const auto it = headers.find(name);
    return it == headers.end() ? "" : it->second;
  }
};

HttpResponse Parse(const std::string& raw) {
  HttpResponse response;
  const size_t end = raw.find("\r\n\r\n");
  if (end == std::string::npos) return response;
  response.body = raw.substr(end + 4);
  std::istringstream lines(raw.substr(0, end));
  std::string line;
  std::getline(lines, line);
  response.status_line = line.substr(0, line.find('\r'));
  while (std::getline(lines, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    const size_t colon = line.find(':');
    std::string name = line.substr(0, colon);
    for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    response.headers[name] = line.substr(line.find_first_not_of(' ', colon + 1));
  }
  return response;
}

std::unique_ptr<MetricsEndpoint> StartOnLoopback(const ServerMetrics& metrics) {
  absl::StatusOr<std::unique_ptr<MetricsEndpoint>> endpoint =
      MetricsEndpoint::Start("127.0.0.1:0", metrics.registry());
  EXPECT_TRUE(endpoint.ok()) << endpoint.status();
  if (!endpoint.ok()) return nullptr;
  EXPECT_GT((*endpoint)->port(), 0);
  return *std::move(endpoint);
}

TEST(MetricsEndpointTest, ServesTheRegistryOverHttp) {
  ServerMetrics metrics;
  metrics.SetIndexItems(42);
  const std::unique_ptr<MetricsEndpoint> endpoint = StartOnLoopback(metrics);
  ASSERT_NE(endpoint, nullptr);

  const HttpResponse response = Parse(Exchange(endpoint->port(), Get("/metrics")));
  EXPECT_EQ(response.status_line, "HTTP/1.1 200 OK");
  EXPECT_EQ(response.Header("content-type"), "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_EQ(response.Header("content-length"), std::to_string(response.body.size()));
  EXPECT_EQ(response.Header("connection"), "close");
  EXPECT_EQ(Value(response.body, "hier_index_items"), 42) << response.body;
  EXPECT_TRUE(Value(response.body, "process_resident_memory_bytes").has_value());
  EXPECT_NE(response.body.find("# TYPE hier_index_items gauge"), std::string::npos);
}

TEST(MetricsEndpointTest, AnswersByMethodAndPath) {
  ServerMetrics metrics;
  metrics.SetIndexItems(7);
  const std::unique_ptr<MetricsEndpoint> endpoint = StartOnLoopback(metrics);
  ASSERT_NE(endpoint, nullptr);
  struct Case {
    std::string request;
    std::string status_line;
    std::string body_has;
  };
  // A request with a method that may carry a body says how long it is (none here).
  const auto without_body = [](const std::string& path, const char* method) {
    return std::string(method) + " " + path +
           " HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\n\r\n";
  };
  const std::vector<Case> cases = {
      {Get("/metrics"), "HTTP/1.1 200 OK", "hier_index_items 7"},
      {Get("/metrics?name[]=hier_index_items"), "HTTP/1.1 200 OK", "hier_index_items 7"},
      {"GET /metrics HTTP/1.0\r\n\r\n", "HTTP/1.1 200 OK", "hier_index_items 7"},
      {Get("/"), "HTTP/1.1 200 OK", "/metrics"},
      {Get("/other"), "HTTP/1.1 404 Not Found", "404"},
      {Get("/metrics/"), "HTTP/1.1 404 Not Found", "404"},
      {without_body("/metrics", "POST"), "HTTP/1.1 405 Method Not Allowed", ""},
      {without_body("/", "DELETE"), "HTTP/1.1 405 Method Not Allowed", ""},
      {"nonsense\r\n\r\n", "HTTP/1.1 400 Bad Request", "400"},
      {"GET /metrics\r\n\r\n", "HTTP/1.1 400 Bad Request", "400"},
      {"GET /metrics SPDY/3\r\n\r\n", "HTTP/1.1 400 Bad Request", "400"},
  };
  for (const Case& c : cases) {
    const HttpResponse response = Parse(Exchange(endpoint->port(), c.request));
    EXPECT_EQ(response.status_line, c.status_line) << c.request;
    EXPECT_NE(response.body.find(c.body_has), std::string::npos) << c.request << response.body;
    EXPECT_EQ(response.Header("content-length"), std::to_string(response.body.size()));
    EXPECT_EQ(response.Header("connection"), "close");
  }
  EXPECT_EQ(Parse(Exchange(endpoint->port(), without_body("/metrics", "PUT"))).Header("allow"),
            "GET, HEAD");
}

TEST(MetricsEndpointTest, HeadHasNoBody) {
  ServerMetrics metrics;
  const std::unique_ptr<MetricsEndpoint> endpoint = StartOnLoopback(metrics);
  ASSERT_NE(endpoint, nullptr);

  const HttpResponse response = Parse(Exchange(endpoint->port(), Get("/metrics", "HEAD")));
  EXPECT_EQ(response.status_line, "HTTP/1.1 200 OK");
  EXPECT_EQ(response.Header("content-type"), "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_GT(std::stoul(response.Header("content-length")), 0u);  // the size GET would send
  EXPECT_EQ(response.body, "");
  EXPECT_EQ(Parse(Exchange(endpoint->port(), Get("/nothing", "HEAD"))).body, "");
}

TEST(MetricsEndpointTest, ServesClientsOneAfterAnother) {
  ServerMetrics metrics;
  metrics.SetIndexItems(3);
  const std::unique_ptr<MetricsEndpoint> endpoint = StartOnLoopback(metrics);
  ASSERT_NE(endpoint, nullptr);
  constexpr int kClients = 4;
  constexpr int kRequests = 25;
  std::vector<std::future<int>> served;
  for (int c = 0; c < kClients; ++c) {
    served.push_back(std::async(std::launch::async, [&endpoint] {
      int ok = 0;
      for (int i = 0; i < kRequests; ++i) {
        ok +=
            Value(Parse(Exchange(endpoint->port(), Get("/metrics"))).body, "hier_index_items") == 3;
      }
      return ok;
    }));
  }
  for (std::future<int>& ok : served) EXPECT_EQ(ok.get(), kRequests);
}

TEST(MetricsEndpointTest, OversizedRequestHeadIsRefused) {
  ServerMetrics metrics;
  const std::unique_ptr<MetricsEndpoint> endpoint = StartOnLoopback(metrics);
  ASSERT_NE(endpoint, nullptr);
  const std::string request =
      "GET /metrics HTTP/1.1\r\nX-Padding: " + std::string(17 * 1024, 'x') + "\r\n\r\n";
  EXPECT_EQ(Parse(Exchange(endpoint->port(), request)).status_line.substr(0, 10), "HTTP/1.1 4");
  EXPECT_EQ(Parse(Exchange(endpoint->port(), Get("/metrics"))).status_line, "HTTP/1.1 200 OK");
}

// A client that never finishes its request holds one of the endpoint's two threads until the
// read timeout (5 s) drops it; the next client is served meanwhile.
TEST(MetricsEndpointTest, StalledClientIsDroppedAtTheDeadline) {
  ServerMetrics metrics;
  const std::unique_ptr<MetricsEndpoint> endpoint = StartOnLoopback(metrics);
  ASSERT_NE(endpoint, nullptr);
  const int stalled = ConnectLoopback(endpoint->port());
  ASSERT_GE(stalled, 0);
  ASSERT_TRUE(WriteAll(stalled, "GET /metr"));
  std::this_thread::sleep_for(std::chrono::milliseconds(100));  // accepted first

  const auto start = std::chrono::steady_clock::now();
  const HttpResponse next = Parse(Exchange(endpoint->port(), Get("/metrics")));
  const auto waited = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(next.status_line, "HTTP/1.1 200 OK");
  EXPECT_LT(waited, std::chrono::seconds(2));
  const auto dropping = std::chrono::steady_clock::now();
  EXPECT_EQ(Parse(ReadAll(stalled)).status_line, "");  // closed without an answer
  EXPECT_LT(std::chrono::steady_clock::now() - dropping, std::chrono::seconds(8));
  close(stalled);
}

// A client that leaves in the middle of a response must neither stop the endpoint nor kill the
// process with SIGPIPE. This one half-closes after its request (so the endpoint's side is in
// CLOSE_WAIT), reads nothing through a small window while a response larger than the endpoint's
// send buffer waits, and then closes: its reset makes the endpoint's next write fail with EPIPE,
// which raises SIGPIPE unless the write says MSG_NOSIGNAL.
TEST(MetricsEndpointTest, ClientThatLeavesMidResponseDoesNotStopIt) {
  const auto registry = std::make_shared<prometheus::Registry>();
  const std::string padding(8 << 20, 'x');  // beyond the largest TCP send buffer (tcp_wmem)
  prometheus::BuildGauge().Name("test_padding").Register(*registry).Add({{"padding", padding}});
  absl::StatusOr<std::unique_ptr<MetricsEndpoint>> endpoint =
      MetricsEndpoint::Start("127.0.0.1:0", registry);
  ASSERT_TRUE(endpoint.ok()) << endpoint.status();
  const int port = (*endpoint)->port();
  for (int i = 0; i < 2; ++i) {
    const int fd = ConnectLoopback(port, AF_INET, /*receive_buffer=*/4096);
    ASSERT_GE(fd, 0);
    ASSERT_TRUE(WriteAll(fd, Get("/metrics")));
    shutdown(fd, SHUT_WR);
    std::this_thread::sleep_for(std::chrono::milliseconds(200));  // the response is under way
    close(fd);
  }
  const HttpResponse response = Parse(Exchange(port, Get("/metrics")));
  EXPECT_EQ(response.status_line, "HTTP/1.1 200 OK");
  EXPECT_GT(response.body.size(), padding.size());
  EXPECT_EQ(response.Header("content-length"), std::to_string(response.body.size()));
}

TEST(MetricsEndpointTest, DestructionWithAnIdleClientWaitsNoLongerThanTheReadTimeout) {
  ServerMetrics metrics;
  std::unique_ptr<MetricsEndpoint> endpoint = StartOnLoopback(metrics);
  ASSERT_NE(endpoint, nullptr);
  const int idle = ConnectLoopback(endpoint->port());
  ASSERT_GE(idle, 0);
  const int queued = ConnectLoopback(endpoint->port());  // waits in the backlog behind `idle`
  ASSERT_GE(queued, 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));  // `idle` accepted

  // The idle client's thread waits out its read timeout (5 s), no longer.
  const auto start = std::chrono::steady_clock::now();
  endpoint.reset();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(7));
  EXPECT_EQ(ReadAll(idle), "");  // closed without an answer
  close(idle);
  close(queued);
}

TEST(MetricsEndpointTest, BusyPortIsUnavailableAndNamesTheFlag) {
  ServerMetrics metrics;
  const std::unique_ptr<MetricsEndpoint> first = StartOnLoopback(metrics);
  ASSERT_NE(first, nullptr);
  const std::string address = "127.0.0.1:" + std::to_string(first->port());

  absl::StatusOr<std::unique_ptr<MetricsEndpoint>> second =
      MetricsEndpoint::Start(address, metrics.registry());
  EXPECT_EQ(second.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(second.status().message().find("--metrics-listen"), std::string::npos)
      << second.status();
  EXPECT_NE(second.status().message().find(address), std::string::npos) << second.status();
}

TEST(MetricsEndpointTest, MalformedAddressIsInvalidArgument) {
  ServerMetrics metrics;
  for (const char* address :
       {"",           "9090",          "localhost",      "localhost:",       ":9090",
        "host:99999", "host:90a",      "host:-1",        "::1:9090",         "[]:9090",
        "[::1:9090",  "::1]:9090",     "[::g]:9090",     "[127.0.0.1]:9090", "[::1]9090",
        "a:1,b:2",    "bad host:9090", "host_name:9090", "999.1.1.1:9090",   "1.2.3:9090"}) {
    absl::StatusOr<std::unique_ptr<MetricsEndpoint>> endpoint =
        MetricsEndpoint::Start(address, metrics.registry());
    EXPECT_EQ(endpoint.status().code(), absl::StatusCode::kInvalidArgument) << address;
    EXPECT_NE(endpoint.status().message().find("--metrics-listen"), std::string::npos) << address;
  }
}

// Whether this machine can listen on ::1 (containers often run without IPv6).
bool HasIpv6Loopback() {
  const int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_in6 address{};
  address.sin6_family = AF_INET6;
  address.sin6_addr = in6addr_loopback;
  const bool ok = bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0;
  close(fd);
  return ok;
}

TEST(MetricsEndpointTest, ServesOnIpv6Loopback) {
  if (!HasIpv6Loopback()) GTEST_SKIP() << "no IPv6 loopback on this machine";
  ServerMetrics metrics;
  metrics.SetIndexItems(6);
  absl::StatusOr<std::unique_ptr<MetricsEndpoint>> endpoint =
      MetricsEndpoint::Start("[::1]:0", metrics.registry());
  ASSERT_TRUE(endpoint.ok()) << endpoint.status();
  const HttpResponse response = Parse(Exchange((*endpoint)->port(), Get("/metrics"), AF_INET6));
  EXPECT_EQ(response.status_line, "HTTP/1.1 200 OK");
  EXPECT_EQ(Value(response.body, "hier_index_items"), 6);
}

TEST(MetricsEndpointTest, ResolvesHostNames) {
  ServerMetrics metrics;
  metrics.SetIndexItems(5);
  absl::StatusOr<std::unique_ptr<MetricsEndpoint>> endpoint =
      MetricsEndpoint::Start("localhost:0", metrics.registry());
  if (endpoint.status().message().find("cannot resolve") != std::string::npos) {
    GTEST_SKIP() << endpoint.status();
  }
  ASSERT_TRUE(endpoint.ok()) << endpoint.status();
  // localhost is 127.0.0.1 or ::1, whichever the resolver put first.
  std::string raw = Exchange((*endpoint)->port(), Get("/metrics"), AF_INET);
  if (raw.empty()) raw = Exchange((*endpoint)->port(), Get("/metrics"), AF_INET6);
  EXPECT_EQ(Value(Parse(raw).body, "hier_index_items"), 5);
}

}  // namespace
}  // namespace hier::server
