// The server's metrics: gRPC call counters and latencies (grpc-ecosystem names), embedding batch
// sizes, search stage times, index size, the serving model, training jobs, and process metrics.
//
// main owns one ServerMetrics and hands it to whoever records; every family is built in the
// constructor and lives in registry(), which also yields the process metrics when collected
// (MetricsEndpoint serves it over HTTP).
// Thread-safety: every method may be called from any thread. The interceptor factories share
// the gRPC families with this object, so they (and the servers using them) may outlive it.
#pragma once

#include <grpcpp/support/server_interceptor.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"

namespace hier::server {

enum class SearchStage { kCandidate, kRerank };

// One report of a training job's progress.
struct JobProgressSample {
  double loss = 0;
  std::optional<double> recall_at_1;  // unset until the job's first evaluation
  double progress_ratio = 0;          // steps done / total steps; clamped to 0..1
  int64_t epoch = 0;
};

// How searches look now (index::SearchSettings's gist); the recalls are set once tuned.
struct SearchSettingsSample {
  int64_t nprobe = 0;
  int64_t ef_search = 0;
  int64_t overfetch = 0;
  std::optional<double> target_recall;
  std::optional<double> measured_recall;
};

// Where a replica stands with the store it follows (index::ReplicationStatus's gist).
struct ReplicationSample {
  double lag_seconds = 0;
  int64_t changes_behind = 0;
  bool caught_up = true;
  bool store_reachable = true;
};

class GrpcCallMetrics;

class ServerMetrics {
 public:
  ServerMetrics();
  ServerMetrics(const ServerMetrics&) = delete;
  ServerMetrics& operator=(const ServerMetrics&) = delete;

  std::shared_ptr<prometheus::Registry> registry() const { return registry_; }

  // grpc_server_started_total, grpc_server_handled_total and grpc_server_handling_seconds for
  // every call of a server built with it. One factory per grpc::ServerBuilder
  // (builder.experimental().SetInterceptorCreators(...)); factories share the same series.
  std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface> MakeInterceptorFactory();

  // hier_embed_batch_size: images per forward pass.
  void ObserveEmbedBatch(int64_t images);
  // hier_search_stage_seconds{stage="candidate"|"rerank"}.
  void ObserveSearchStage(SearchStage stage, double seconds);
  // hier_index_items.
  void SetIndexItems(int64_t items);
  // hier_search_effort{knob="nprobe"|"ef_search"|"overfetch"} and, once tuned,
  // hier_search_recall{of="target"|"measured"}.
  void SetSearchSettings(const SearchSettingsSample& sample);
  // Runs `refresh` at the start of every collection (each scrape), for gauges whose values live
  // elsewhere; replaces the previous one (nullptr: none). It must not call SetCollectHook.
  void SetCollectHook(std::function<void()> refresh);
  // hier_startup_phase_seconds{phase}: how long a phase of this process's start took (reading
  // the state, loading the model, each step of loading the index, ...), set as each one ends.
  void SetStartupPhase(const std::string& phase, double seconds);
  // hier_replication_lag_seconds, hier_replication_changes_behind, hier_replication_caught_up
  // and hier_store_reachable (1 or 0). One machine: 0, 0, 1, 1.
  void SetReplication(const ReplicationSample& sample);
  // hier_model_info{version} = 1 for the serving version only; "" means no model is serving.
  void SetServingModel(const std::string& version);
  // hier_training_jobs{state}; a state seen before but missing from the map drops to 0.
  void SetTrainingJobs(const std::map<std::string, int64_t>& count_by_state);
  // hier_job_loss, hier_job_recall_at_1 (once set), hier_job_progress_ratio, hier_job_epoch, all
  // labelled {job_id} (not "job": Prometheus gives that label to the scrape job).
  void SetJobProgress(const std::string& job_id, const JobProgressSample& sample);
  // Removes the job's series (a finished job's last values stay until this is called).
  void RemoveJob(const std::string& job_id);

  // The Prometheus text format of everything in registry().
  std::string Serialize() const;

 private:
  struct JobGauges {
    prometheus::Gauge* loss = nullptr;
    prometheus::Gauge* recall_at_1 = nullptr;  // null until the first evaluation
    prometheus::Gauge* progress_ratio = nullptr;
    prometheus::Gauge* epoch = nullptr;
  };

  const std::shared_ptr<prometheus::Registry> registry_;
  const std::shared_ptr<GrpcCallMetrics> grpc_calls_;
  prometheus::Histogram& embed_batch_size_;
  prometheus::Family<prometheus::Histogram>& search_stage_seconds_;
  prometheus::Histogram& search_candidate_seconds_;
  prometheus::Histogram& search_rerank_seconds_;
  prometheus::Gauge& index_items_;
  prometheus::Family<prometheus::Gauge>& search_effort_;
  prometheus::Family<prometheus::Gauge>& search_recall_;
  prometheus::Family<prometheus::Gauge>& startup_phase_seconds_;
  prometheus::Gauge& replication_lag_seconds_;
  prometheus::Gauge& replication_changes_behind_;
  prometheus::Gauge& replication_caught_up_;
  prometheus::Gauge& store_reachable_;
  prometheus::Family<prometheus::Gauge>& model_info_;
  prometheus::Family<prometheus::Gauge>& training_jobs_;
  prometheus::Family<prometheus::Gauge>& job_loss_;
  prometheus::Family<prometheus::Gauge>& job_recall_at_1_;
  prometheus::Family<prometheus::Gauge>& job_progress_ratio_;
  prometheus::Family<prometheus::Gauge>& job_epoch_;

  // Serialises the series that are added and removed, so no gauge is used after its removal.
  std::mutex mutex_;
  prometheus::Gauge* serving_model_ = nullptr;               // guarded by mutex_
  std::map<std::string, prometheus::Gauge*> jobs_by_state_;  // guarded by mutex_
  std::map<std::string, JobGauges> jobs_;                    // guarded by mutex_
};

}  // namespace hier::server
