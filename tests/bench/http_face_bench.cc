// The HTTP/JSON face against gRPC on one running hier-server (deploy/experiments/http-bench.sh):
// the same searches by vector through each, from the same number of client threads each keeping
// one call in flight (a gRPC stub each, or an HTTP client with keep-alive each), so the difference
// is the face's: JSON printing and parsing, HTTP/1.1 framing, the gateway's in-process hop.
//
// http_face_bench --grpc_port P --http_port H [--in_flight 1,8] [--seconds 10] [--rounds 3]
//                 [--k 10] [--json FILE]
// Each round runs every in-flight count through both faces, the face going first alternating by
// round. The client parses each answer into a SearchResponse on both faces (protobuf's binary or
// JSON parser). One JSON object per (round, in-flight, face) goes to FILE, one line each:
// {"round", "in_flight", "face", "qps", "p50_ms", "p99_ms", "errors"}.
#include <google/protobuf/util/json_util.h>
#include <grpcpp/grpcpp.h>
#include <httplib.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <functional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "client/bench/bench_queries.h"
#include "client/latency_stats.h"
#include "hier/v1/retrieval.grpc.pb.h"

ABSL_FLAG(int, grpc_port, 0, "the server's gRPC port on 127.0.0.1");
ABSL_FLAG(int, http_port, 0, "the server's HTTP/JSON port on 127.0.0.1");
ABSL_FLAG(std::string, in_flight, "1,8", "client threads, each with one call in flight");
ABSL_FLAG(double, seconds, 10, "measured seconds per face and in-flight count");
ABSL_FLAG(int, rounds, 3, "rounds of every in-flight count through both faces");
ABSL_FLAG(int, k, 10, "neighbours per search");
ABSL_FLAG(std::string, json, "", "where to write one JSON line per measurement");

namespace hier::bench {
namespace {

constexpr int kQueries = 1000;

// One call: true when it succeeded.
using Call = std::function<bool(int thread, int64_t sequence)>;

struct Measured {
  double qps = 0;
  double p50_ms = 0;
  double p99_ms = 0;
  int64_t errors = 0;
};

// `threads` threads make calls back to back for `seconds` (after a second's warm-up, not counted).
Measured RunFor(int threads, double seconds, const Call& call) {
  using Clock = std::chrono::steady_clock;
  const Clock::time_point start = Clock::now() + std::chrono::seconds(1);
  const Clock::time_point end =
      start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
  std::vector<std::vector<double>> latencies(threads);
  std::atomic<int64_t> errors{0};
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      for (int64_t sequence = t;; sequence += threads) {
        const Clock::time_point began = Clock::now();
        if (began >= end) return;
        const bool ok = call(t, sequence);
        if (began < start) continue;
        if (!ok) ++errors;
        latencies[t].push_back(
            std::chrono::duration<double, std::milli>(Clock::now() - began).count());
      }
    });
  }
  for (std::thread& worker : workers) worker.join();
  std::vector<double> all;
  for (const std::vector<double>& some : latencies) all.insert(all.end(), some.begin(), some.end());
  // The load generator's nearest-rank percentiles, so both benchmarks quote latency alike.
  const client::LatencySummary summary = client::SummarizeLatencies(std::move(all));
  Measured measured;
  measured.errors = errors;
  measured.qps = static_cast<double>(summary.count) / seconds;
  measured.p50_ms = summary.p50;
  measured.p99_ms = summary.p99;
  return measured;
}

int Main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  const int grpc_port = absl::GetFlag(FLAGS_grpc_port), http_port = absl::GetFlag(FLAGS_http_port);
  if (grpc_port <= 0 || http_port <= 0) {
    std::fprintf(stderr, "http_face_bench: --grpc_port and --http_port are required\n");
    return 2;
  }
  std::vector<int> in_flight;
  for (const absl::string_view part : absl::StrSplit(absl::GetFlag(FLAGS_in_flight), ',')) {
    int n = 0;
    if (!absl::SimpleAtoi(part, &n) || n < 1) {
      std::fprintf(stderr, "http_face_bench: --in_flight: not a list of counts\n");
      return 2;
    }
    in_flight.push_back(n);
  }
  const std::shared_ptr<grpc::Channel> channel = grpc::CreateChannel(
      absl::StrFormat("127.0.0.1:%d", grpc_port), grpc::InsecureChannelCredentials());
  const auto stub = hier::v1::Retrieval::NewStub(channel);
  hier::v1::StatsResponse stats;
  {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    const grpc::Status status = stub->Stats(&context, hier::v1::StatsRequest(), &stats);
    if (!status.ok()) {
      std::fprintf(stderr, "http_face_bench: Stats: %s\n", status.error_message().c_str());
      return 1;
    }
  }
  // The same queries for both faces, built (and printed as JSON) before any is timed.
  client::bench::SearchSettings settings;
  settings.k = absl::GetFlag(FLAGS_k);
  const std::vector<hier::v1::SearchRequest> requests = client::bench::VectorSearches(
      client::bench::RandomBallPoints(kQueries, stats.dim(), stats.c(), 7), settings);
  std::vector<std::string> bodies;
  for (const hier::v1::SearchRequest& request : requests) {
    bodies.emplace_back();
    (void)google::protobuf::util::MessageToJsonString(request, &bodies.back());
  }

  const Call through_grpc = [&](int, int64_t sequence) {
    grpc::ClientContext context;
    hier::v1::SearchResponse response;
    return stub->Search(&context, requests[sequence % kQueries], &response).ok() &&
           response.neighbours_size() > 0;
  };
  std::vector<std::unique_ptr<httplib::Client>> clients;
  const Call through_http = [&](int thread, int64_t sequence) {
    httplib::Client& client = *clients[thread];
    const httplib::Result answer = client.Post("/v1/hier.v1.Retrieval/Search",
                                               bodies[sequence % kQueries], "application/json");
    hier::v1::SearchResponse response;
    return answer && answer->status == 200 &&
           google::protobuf::util::JsonStringToMessage(answer->body, &response).ok() &&
           response.neighbours_size() > 0;
  };

  std::ofstream json;
  if (!absl::GetFlag(FLAGS_json).empty()) json.open(absl::GetFlag(FLAGS_json), std::ios::trunc);
  for (int round = 1; round <= absl::GetFlag(FLAGS_rounds); ++round) {
    for (const int n : in_flight) {
      clients.clear();
      for (int t = 0; t < n; ++t) {
        clients.push_back(std::make_unique<httplib::Client>("127.0.0.1", http_port));
        clients.back()->set_keep_alive(true);
        clients.back()->set_tcp_nodelay(true);  // as curl and browsers do
      }
      std::vector<std::pair<std::string, const Call*>> faces = {{"grpc", &through_grpc},
                                                                {"http", &through_http}};
      if (round % 2 == 0) std::swap(faces[0], faces[1]);
      for (const auto& [face, call] : faces) {
        const Measured m = RunFor(n, absl::GetFlag(FLAGS_seconds), *call);
        const std::string line = absl::StrFormat(
            R"({"round": %d, "in_flight": %d, "face": "%s", "qps": %.1f, "p50_ms": %.3f, "p99_ms": %.3f, "errors": %d})",
            round, n, face, m.qps, m.p50_ms, m.p99_ms, m.errors);
        std::printf("%s\n", line.c_str());
        std::fflush(stdout);
        if (json.is_open()) json << line << "\n";
      }
    }
  }
  return 0;
}

}  // namespace
}  // namespace hier::bench

int main(int argc, char** argv) { return hier::bench::Main(argc, argv); }
