#include "server/router/router_app.h"

#include <grpcpp/health_check_service_interface.h>

#include <atomic>
#include <map>
#include <utility>

#include "server/app/grpc_frontend.h"
#include "server/metrics/metrics_endpoint.h"
#include "server/metrics/router_metrics.h"
#include "server/metrics/server_metrics.h"
#include "server/router/replica_calls.h"
#include "server/router/routed_search.h"
#include "server/router/router_services.h"
#include "server/router/topology.h"
#include "server/rpc/authorizer.h"

namespace hier::server {

struct RouterApp::State {
  ServerOptions options;
  std::unique_ptr<ServerMetrics> metrics;
  std::unique_ptr<RouterMetrics> router_metrics;
  std::unique_ptr<MetricsEndpoint> metrics_endpoint;
  std::unique_ptr<Authorizer> authorizer;
  // The health service, once the server exists; the topology's refreshes report to it.
  std::atomic<grpc::HealthCheckServiceInterface*> health{nullptr};
  std::unique_ptr<Topology> topology;
  std::unique_ptr<ReplicaCalls> calls;
  std::unique_ptr<RoutedSearch> search;
  std::unique_ptr<RouterRetrieval> retrieval;
  std::unique_ptr<RouterModels> models;
  std::unique_ptr<RouterTraining> training;
  std::unique_ptr<RouterHierarchy> hierarchy;
  std::vector<std::string> notices;
  std::unique_ptr<grpc::Server> server;
  int port = 0;
  std::unique_ptr<HttpApi> http;  // after `server`, so it goes first
};

namespace {

// Publishes what the router sees of each shard: its live replicas answering for the routed
// version and its items (the largest count its members announce); returns the gallery's items.
int64_t ReportShards(const TopologyView& view, RouterMetrics& metrics) {
  std::map<int, int64_t> items;
  for (const RouteMember& member : view.members) {
    int64_t& held = items[member.record.shard.index];
    held = std::max(held, member.record.items);
  }
  int64_t total = 0;
  for (int shard = 0; shard < view.shard_count; ++shard) {
    const int replicas =
        view.version.has_value() ? static_cast<int>(view.Replicas(shard, *view.version, 0).size())
                                 : 0;
    metrics.SetShardMembers(view.ShardName(shard), replicas, items[shard]);
    total += items[shard];
  }
  metrics.SetShards(view.shard_count, view.HealthyShards());
  return total;
}

}  // namespace

absl::StatusOr<std::unique_ptr<RouterApp>> RouterApp::Start(const ServerOptions& options) {
  auto state = std::make_unique<State>();
  state->options = options;
  state->metrics = std::make_unique<ServerMetrics>();
  state->router_metrics = std::make_unique<RouterMetrics>(*state->metrics->registry());
  if (!options.metrics_listen.empty()) {
    absl::StatusOr<std::unique_ptr<MetricsEndpoint>> endpoint =
        MetricsEndpoint::Start(options.metrics_listen, state->metrics->registry());
    if (!endpoint.ok()) return endpoint.status();
    state->metrics_endpoint = *std::move(endpoint);
  }
  absl::StatusOr<std::unique_ptr<ClusterRecord>> record = ClusterRecord::Open(options.store);
  if (!record.ok()) return record.status();
  TopologyOptions topology;
  topology.member_timeout = options.member_timeout;
  topology.max_message_bytes = options.max_message_bytes;
  State* raw = state.get();
  state->topology = std::make_unique<Topology>(
      *std::move(record), topology, [raw](const TopologyView& view) {
        raw->metrics->SetIndexItems(ReportShards(view, *raw->router_metrics));
        raw->metrics->SetServingModel(view.version.value_or(""));
        if (grpc::HealthCheckServiceInterface* health = raw->health.load()) {
          health->SetServingStatus(view.version.has_value() && view.shard_count > 0 &&
                                   view.HealthyShards() == view.shard_count);
        }
      });
  if (const std::string problem = state->topology->View()->problem; !problem.empty()) {
    state->notices.push_back("the cluster's membership is not readable yet: " + problem);
  }
  state->calls = std::make_unique<ReplicaCalls>(state->topology.get(), state->router_metrics.get());
  state->search = std::make_unique<RoutedSearch>(state->topology.get(), state->calls.get());
  state->authorizer = std::make_unique<Authorizer>(options.token, options.protect_reads);
  RouterBackends backends;
  backends.topology = state->topology.get();
  backends.calls = state->calls.get();
  backends.search = state->search.get();
  backends.authorizer = state->authorizer.get();
  backends.max_queries_per_call = options.limits.max_items_per_call;
  state->retrieval = std::make_unique<RouterRetrieval>(backends);
  state->models = std::make_unique<RouterModels>(backends);
  state->training = std::make_unique<RouterTraining>(backends);
  state->hierarchy = std::make_unique<RouterHierarchy>(backends);
  absl::StatusOr<std::unique_ptr<grpc::Server>> server = StartGrpcFrontend(
      options,
      {state->retrieval.get(), state->models.get(), state->hierarchy.get(),
       state->training.get()},
      *state->metrics, &state->port);
  if (!server.ok()) return server.status();
  state->server = *std::move(server);
  state->server->GetHealthCheckService()->SetServingStatus(false);
  state->health.store(state->server->GetHealthCheckService());
  state->topology->Refresh();  // reports the health it finds
  if (!options.http_listen.empty()) {
    absl::StatusOr<std::unique_ptr<HttpApi>> http = StartHttpApi(options, *state->server);
    if (!http.ok()) return http.status();
    state->http = *std::move(http);
  }
  return std::unique_ptr<RouterApp>(new RouterApp(std::move(state)));
}

RouterApp::RouterApp(std::unique_ptr<State> state) : state_(std::move(state)) {}

RouterApp::~RouterApp() {
  // The server first: it ends the streams an HTTP handler may be relaying (WatchJob).
  if (state_->server != nullptr) state_->server->Shutdown();
  state_->http.reset();
  state_->topology.reset();  // joins the thread that reports to the server's health service
}

int RouterApp::port() const { return state_->port; }
int RouterApp::metrics_port() const {
  return state_->metrics_endpoint ? state_->metrics_endpoint->port() : 0;
}
int RouterApp::http_port() const { return state_->http ? state_->http->port() : 0; }
const std::vector<std::string>& RouterApp::notices() const { return state_->notices; }

absl::Status RouterApp::Shutdown() {
  state_->health.store(nullptr);
  state_->server->GetHealthCheckService()->SetServingStatus(false);
  state_->server->Shutdown(std::chrono::system_clock::now() + state_->options.drain);
  state_->server->Wait();
  state_->http.reset();
  return absl::OkStatus();
}

}  // namespace hier::server
