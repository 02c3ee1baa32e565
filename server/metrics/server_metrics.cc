#include "server/metrics/server_metrics.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <iterator>
#include <mutex>
#include <string_view>
#include <utility>
#include <vector>

#include "prometheus/metric_family.h"
#include "prometheus/text_serializer.h"
#include "server/metrics/process_metrics.h"

namespace hier::server {
namespace {

using grpc::experimental::InterceptionHookPoints;
using grpc::experimental::ServerRpcInfo;

// grpc_code values as go-grpc-prometheus writes them (Go's codes.Code.String()), indexed by the
// numeric code, so dashboards and alerts written for grpc-ecosystem servers work unchanged.
constexpr std::array<const char*, 17> kCodeNames = {
    "OK",       "Canceled",       "Unknown",          "InvalidArgument",   "DeadlineExceeded",
    "NotFound", "AlreadyExists",  "PermissionDenied", "ResourceExhausted", "FailedPrecondition",
    "Aborted",  "OutOfRange",     "Unimplemented",    "Internal",          "Unavailable",
    "DataLoss", "Unauthenticated"};

// Indexed by ServerRpcInfo::Type.
constexpr std::array<const char*, 4> kTypeNames = {"unary", "client_stream", "server_stream",
                                                   "bidi_stream"};

// A server with a generic service sees method names chosen by its clients; past this many
// distinct methods, calls are counted under grpc_service="unknown" so the series stay bounded.
constexpr size_t kMaxMethods = 512;

// Prometheus attaches its own "job" label (the scrape job) to every series it stores, so the
// training job's id goes under another name.
constexpr const char* kJobLabel = "job_id";

const prometheus::Histogram::BucketBoundaries& HandlingSecondsBuckets() {
  static const auto* buckets = new prometheus::Histogram::BucketBoundaries{
      .0001, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30};
  return *buckets;
}

prometheus::Histogram::BucketBoundaries SearchStageBuckets() {
  return {.00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1};
}

// "/hier.v1.Retrieval/Search" -> {"hier.v1.Retrieval", "Search"}; anything else is "unknown",
// as in go-grpc-prometheus.
std::pair<std::string_view, std::string_view> SplitMethodPath(std::string_view path) {
  if (!path.empty() && path.front() == '/') path.remove_prefix(1);
  const size_t slash = path.find('/');
  if (slash == std::string_view::npos) return {"unknown", "unknown"};
  return {path.substr(0, slash), path.substr(slash + 1)};
}

// prometheus-cpp 1.0's Registry holds only the families built on it; this one appends the process
// metrics to what it collects, so MetricsEndpoint and Serialize read everything from one registry,
// and runs a hook first that refreshes gauges read from elsewhere.
class RegistryWithProcessMetrics final : public prometheus::Registry {
 public:
  void SetCollectHook(std::function<void()> refresh) {
    std::lock_guard<std::mutex> lock(hook_mutex_);
    refresh_ = std::move(refresh);
  }

  std::vector<prometheus::MetricFamily> Collect() const override {
    {
      std::lock_guard<std::mutex> lock(hook_mutex_);
      if (refresh_) refresh_();
    }
    std::vector<prometheus::MetricFamily> families = Registry::Collect();
    std::vector<prometheus::MetricFamily> process = process_.Collect();
    families.insert(families.end(), std::make_move_iterator(process.begin()),
                    std::make_move_iterator(process.end()));
    return families;
  }

 private:
  ProcessMetrics process_;
  mutable std::mutex hook_mutex_;
  std::function<void()> refresh_;  // guarded by hook_mutex_
};

}  // namespace

// The grpc_server_* families and each method's series, looked up once per method and then
// reused for every call. Held by shared_ptr by ServerMetrics, the interceptor factories and
// every live interceptor; it keeps the registry (which owns the families) alive.
class GrpcCallMetrics {
 public:
  struct Method {
    prometheus::Labels labels;  // grpc_type, grpc_service, grpc_method
    prometheus::Counter* started = nullptr;
    prometheus::Histogram* handling_seconds = nullptr;
    // Indexed by status code; each is added on the method's first call with that code.
    std::array<std::atomic<prometheus::Counter*>, kCodeNames.size()> handled{};
  };

  explicit GrpcCallMetrics(std::shared_ptr<prometheus::Registry> registry)
      : registry_(std::move(registry)),
        started_(prometheus::BuildCounter()
                     .Name("grpc_server_started_total")
                     .Help("Total number of RPCs started on the server.")
                     .Register(*registry_)),
        handled_(prometheus::BuildCounter()
                     .Name("grpc_server_handled_total")
                     .Help("Total number of RPCs completed on the server, regardless of success "
                           "or failure.")
                     .Register(*registry_)),
        handling_seconds_(prometheus::BuildHistogram()
                              .Name("grpc_server_handling_seconds")
                              .Help("Histogram of response latency (seconds) of gRPC that had "
                                    "been application-level handled by the server.")
                              .Register(*registry_)) {}

  Method& ForCall(const char* path, ServerRpcInfo::Type type) {
    std::string_view key = path == nullptr ? std::string_view() : path;
    std::lock_guard<std::mutex> lock(mutex_);
    auto& methods = methods_[static_cast<size_t>(type)];
    auto it = methods.find(key);
    if (it == methods.end() && method_count_ >= kMaxMethods) it = methods.find(key = "");
    if (it != methods.end()) return *it->second;
    const auto [service, method] = SplitMethodPath(key);
    auto entry = std::make_unique<Method>();
    entry->labels = {{"grpc_type", kTypeNames[static_cast<size_t>(type)]},
                     {"grpc_service", std::string(service)},
                     {"grpc_method", std::string(method)}};
    entry->started = &started_.Add(entry->labels);
    entry->handling_seconds = &handling_seconds_.Add(entry->labels, HandlingSecondsBuckets());
    ++method_count_;
    return *methods.emplace(std::string(key), std::move(entry)).first->second;
  }

  void Handled(Method& method, grpc::StatusCode code, double seconds) {
    const size_t index = static_cast<size_t>(code) < kCodeNames.size()
                             ? static_cast<size_t>(code)
                             : static_cast<size_t>(grpc::StatusCode::UNKNOWN);
    prometheus::Counter* counter = method.handled[index].load(std::memory_order_acquire);
    if (counter == nullptr) {
      prometheus::Labels labels = method.labels;
      labels.emplace("grpc_code", kCodeNames[index]);
      // Racing first calls get the same counter back from Family::Add.
      counter = &handled_.Add(labels);
      method.handled[index].store(counter, std::memory_order_release);
    }
    counter->Increment();
    method.handling_seconds->Observe(seconds);
  }

 private:
  const std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Family<prometheus::Counter>& started_;
  prometheus::Family<prometheus::Counter>& handled_;
  prometheus::Family<prometheus::Histogram>& handling_seconds_;

  std::mutex mutex_;
  // By ServerRpcInfo::Type, then method path; entries are never removed, so references to them
  // stay valid. "" (grpc_service="unknown") also takes the new methods past kMaxMethods.
  std::array<std::map<std::string, std::unique_ptr<Method>, std::less<>>, kTypeNames.size()>
      methods_;              // guarded by mutex_
  size_t method_count_ = 0;  // guarded by mutex_
};

namespace {

// Counts one call: started when gRPC creates it for the call, handled (with the code and the
// time since) when the status is about to be sent, or as Canceled when it is destroyed before
// any status was sent, so every started call is handled exactly once.
class CallMetricsInterceptor final : public grpc::experimental::Interceptor {
 public:
  CallMetricsInterceptor(std::shared_ptr<GrpcCallMetrics> metrics, GrpcCallMetrics::Method& method)
      : metrics_(std::move(metrics)), method_(method), start_(std::chrono::steady_clock::now()) {
    method_.started->Increment();
  }

  ~CallMetricsInterceptor() override { Handled(grpc::StatusCode::CANCELLED); }

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_STATUS)) {
      Handled(methods->GetSendStatus().error_code());
    }
    methods->Proceed();
  }

 private:
  void Handled(grpc::StatusCode code) {
    if (handled_.exchange(true)) return;
    const std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - start_;
    metrics_->Handled(method_, code, elapsed.count());
  }

  const std::shared_ptr<GrpcCallMetrics> metrics_;
  GrpcCallMetrics::Method& method_;
  const std::chrono::steady_clock::time_point start_;
  std::atomic<bool> handled_{false};
};

class CallMetricsInterceptorFactory final
    : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  explicit CallMetricsInterceptorFactory(std::shared_ptr<GrpcCallMetrics> metrics)
      : metrics_(std::move(metrics)) {}

  grpc::experimental::Interceptor* CreateServerInterceptor(ServerRpcInfo* info) override {
    return new CallMetricsInterceptor(metrics_, metrics_->ForCall(info->method(), info->type()));
  }

 private:
  const std::shared_ptr<GrpcCallMetrics> metrics_;
};

prometheus::Family<prometheus::Gauge>& GaugeFamily(prometheus::Registry& registry, const char* name,
                                                   const char* help) {
  return prometheus::BuildGauge().Name(name).Help(help).Register(registry);
}

}  // namespace

ServerMetrics::ServerMetrics()
    : registry_(std::make_shared<RegistryWithProcessMetrics>()),
      grpc_calls_(std::make_shared<GrpcCallMetrics>(registry_)),
      embed_batch_size_(
          prometheus::BuildHistogram()
              .Name("hier_embed_batch_size")
              .Help("Images per embedding forward pass.")
              .Register(*registry_)
              .Add({}, prometheus::Histogram::BucketBoundaries{1, 2, 4, 8, 16, 32, 64, 128, 256})),
      search_stage_seconds_(prometheus::BuildHistogram()
                                .Name("hier_search_stage_seconds")
                                .Help("Time of one search stage: FAISS candidates, or the exact "
                                      "hyperbolic re-rank.")
                                .Register(*registry_)),
      search_candidate_seconds_(
          search_stage_seconds_.Add({{"stage", "candidate"}}, SearchStageBuckets())),
      search_rerank_seconds_(
          search_stage_seconds_.Add({{"stage", "rerank"}}, SearchStageBuckets())),
      index_items_(
          GaugeFamily(*registry_, "hier_index_items", "Items in the search index.").Add({})),
      search_effort_(GaugeFamily(*registry_, "hier_search_effort",
                                 "How hard searches look: IVF lists visited (nprobe), HNSW's "
                                 "candidate list (ef_search), candidates re-ranked (overfetch).")),
      search_recall_(GaugeFamily(*registry_, "hier_search_recall",
                                 "The recall@k the search settings were tuned for (target) and "
                                 "measured with them on a sample of the gallery (measured).")),
      startup_phase_seconds_(GaugeFamily(*registry_, "hier_startup_phase_seconds",
                                         "How long each phase of this process's start took.")),
      replication_lag_seconds_(
          GaugeFamily(*registry_, "hier_replication_lag_seconds",
                      "How long the oldest change committed to the store and not yet in this "
                      "replica's index has been known; 0 when caught up.")
              .Add({})),
      replication_changes_behind_(
          GaugeFamily(*registry_, "hier_replication_changes_behind",
                      "Changes committed to the store and not yet in this replica's index.")
              .Add({})),
      replication_caught_up_(GaugeFamily(*registry_, "hier_replication_caught_up",
                                         "1 once the replica has caught up with the store "
                                         "after starting, else 0.")
                                 .Add({})),
      store_reachable_(GaugeFamily(*registry_, "hier_store_reachable",
                                   "1 when the last read or write of the store of record "
                                   "succeeded, else 0.")
                           .Add({})),
      model_info_(GaugeFamily(*registry_, "hier_model_info",
                              "1 for the model version that serves embedding calls.")),
      training_jobs_(GaugeFamily(*registry_, "hier_training_jobs", "Training jobs in each state.")),
      job_loss_(GaugeFamily(*registry_, "hier_job_loss", "A training job's latest loss.")),
      job_recall_at_1_(GaugeFamily(*registry_, "hier_job_recall_at_1",
                                   "A training job's latest validation Recall@1.")),
      job_progress_ratio_(GaugeFamily(*registry_, "hier_job_progress_ratio",
                                      "Fraction of a training job's steps done (0 to 1).")),
      job_epoch_(
          GaugeFamily(*registry_, "hier_job_epoch", "The epoch a training job is in (0-based).")) {
  SetReplication({});  // one machine's values until a replica reports
}

std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>
ServerMetrics::MakeInterceptorFactory() {
  return std::make_unique<CallMetricsInterceptorFactory>(grpc_calls_);
}

void ServerMetrics::ObserveEmbedBatch(int64_t images) {
  embed_batch_size_.Observe(static_cast<double>(images));
}

void ServerMetrics::ObserveSearchStage(SearchStage stage, double seconds) {
  (stage == SearchStage::kCandidate ? search_candidate_seconds_ : search_rerank_seconds_)
      .Observe(seconds);
}

void ServerMetrics::SetIndexItems(int64_t items) { index_items_.Set(static_cast<double>(items)); }

void ServerMetrics::SetSearchSettings(const SearchSettingsSample& sample) {
  for (const auto& [knob, value] : {std::pair<const char*, int64_t>{"nprobe", sample.nprobe},
                                    {"ef_search", sample.ef_search},
                                    {"overfetch", sample.overfetch}}) {
    search_effort_.Add({{"knob", knob}}).Set(static_cast<double>(value));
  }
  for (const auto& [of, value] : {std::pair<const char*, std::optional<double>>{
                                      "target", sample.target_recall},
                                  {"measured", sample.measured_recall}}) {
    if (value.has_value()) search_recall_.Add({{"of", of}}).Set(*value);
  }
}

void ServerMetrics::SetCollectHook(std::function<void()> refresh) {
  static_cast<RegistryWithProcessMetrics&>(*registry_).SetCollectHook(std::move(refresh));
}

void ServerMetrics::SetStartupPhase(const std::string& phase, double seconds) {
  startup_phase_seconds_.Add({{"phase", phase}}).Set(seconds);
}

void ServerMetrics::SetReplication(const ReplicationSample& sample) {
  replication_lag_seconds_.Set(sample.lag_seconds);
  replication_changes_behind_.Set(static_cast<double>(sample.changes_behind));
  replication_caught_up_.Set(sample.caught_up ? 1 : 0);
  store_reachable_.Set(sample.store_reachable ? 1 : 0);
}

void ServerMetrics::SetServingModel(const std::string& version) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (serving_model_ != nullptr) model_info_.Remove(serving_model_);
  serving_model_ = nullptr;
  if (version.empty()) return;
  serving_model_ = &model_info_.Add({{"version", version}});
  serving_model_->Set(1);
}

void ServerMetrics::SetTrainingJobs(const std::map<std::string, int64_t>& count_by_state) {
  std::lock_guard<std::mutex> lock(mutex_);
  for (const auto& [state, gauge] : jobs_by_state_) {
    if (count_by_state.count(state) == 0) gauge->Set(0);
  }
  for (const auto& [state, count] : count_by_state) {
    prometheus::Gauge*& gauge = jobs_by_state_[state];
    if (gauge == nullptr) gauge = &training_jobs_.Add({{"state", state}});
    gauge->Set(static_cast<double>(count));
  }
}

void ServerMetrics::SetJobProgress(const std::string& job_id, const JobProgressSample& sample) {
  const prometheus::Labels labels = {{kJobLabel, job_id}};
  std::lock_guard<std::mutex> lock(mutex_);
  JobGauges& gauges = jobs_[job_id];
  if (gauges.loss == nullptr) {
    gauges.loss = &job_loss_.Add(labels);
    gauges.progress_ratio = &job_progress_ratio_.Add(labels);
    gauges.epoch = &job_epoch_.Add(labels);
  }
  if (sample.recall_at_1.has_value() && gauges.recall_at_1 == nullptr) {
    gauges.recall_at_1 = &job_recall_at_1_.Add(labels);
  }
  gauges.loss->Set(sample.loss);
  if (sample.recall_at_1.has_value()) gauges.recall_at_1->Set(*sample.recall_at_1);
  gauges.progress_ratio->Set(std::clamp(sample.progress_ratio, 0.0, 1.0));
  gauges.epoch->Set(static_cast<double>(sample.epoch));
}

void ServerMetrics::RemoveJob(const std::string& job_id) {
  std::lock_guard<std::mutex> lock(mutex_);
  const auto it = jobs_.find(job_id);
  if (it == jobs_.end()) return;
  const JobGauges& gauges = it->second;
  job_loss_.Remove(gauges.loss);
  if (gauges.recall_at_1 != nullptr) job_recall_at_1_.Remove(gauges.recall_at_1);
  job_progress_ratio_.Remove(gauges.progress_ratio);
  job_epoch_.Remove(gauges.epoch);
  jobs_.erase(it);
}

std::string ServerMetrics::Serialize() const {
  return prometheus::TextSerializer().Serialize(registry_->Collect());
}

}  // namespace hier::server
