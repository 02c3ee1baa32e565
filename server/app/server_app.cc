#include "server/app/server_app.h"

#include <ATen/Parallel.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <limits>
#include <optional>
#include <random>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "index/collection.h"
#include "server/app/grpc_frontend.h"
#include "server/app/model_swapper.h"
#include "server/app/replication_monitor.h"
#include "server/app/serving_record.h"
#include "server/app/startup_frontend.h"
#include "server/metrics/event_log.h"
#include "server/metrics/metrics_endpoint.h"
#include "server/metrics/server_metrics.h"
#include "server/model/model_catalog.h"
#include "server/model/serving_slot.h"
#include "server/rpc/authorizer.h"
#include "server/rpc/hierarchy_service.h"
#include "server/rpc/models_service.h"
#include "server/router/router_app.h"
#include "server/rpc/training_service.h"
#include "server/storage/blob_store.h"
#include "server/training/job_runner.h"

namespace hier::server {
namespace fs = std::filesystem;

struct ServerApp::State {
  ServerOptions options;
  std::unique_ptr<ServerMetrics> metrics;
  std::unique_ptr<MetricsEndpoint> metrics_endpoint;
  ServingSlot serving;
  std::string replica;                     // this process's name among a cluster's replicas
  std::unique_ptr<ClusterRecord> cluster;  // a replica of a cluster store only
  std::unique_ptr<BlobStore> blobs;
  std::unique_ptr<ModelSwapper> swapper;
  std::unique_ptr<ModelCatalog> catalog;
  std::unique_ptr<Authorizer> authorizer;
  std::unique_ptr<RetrievalService> retrieval;
  std::unique_ptr<ModelsService> models;
  std::unique_ptr<HierarchyService> hierarchy;
  std::unique_ptr<JobRunner> jobs;
  std::unique_ptr<TrainingService> training;
  std::vector<std::string> notices;  // what the operator should know, printed at start
  std::unique_ptr<grpc::Server> server;
  int port = 0;
  std::unique_ptr<HttpApi> http;  // after `server`, so it goes first
  std::unique_ptr<ReplicationMonitor> replication;  // a replica of a cluster store only

  // A scrape while the members go must not read the serving gallery's settings.
  ~State() {
    if (metrics != nullptr) metrics->SetCollectHook(nullptr);
  }
};

namespace {

// In a cluster other replicas keep storing images and items while one sweeps: an image stored
// this long ago whose item is not in the store is not waiting for it (BlobStore::RemoveAllBut).
constexpr std::chrono::hours kClusterImageGrace{1};

// Removes the stored images of deleted items and of torn writes, when the server starts (before
// it takes calls: an image is stored before the item that refers to it).
absl::StatusOr<int64_t> RemoveUnreferencedImages(const index::Collection& collection,
                                                 const BlobStore& blobs) {
  absl::StatusOr<absl::flat_hash_set<std::string>> referenced = collection.ImageDigests();
  if (!referenced.ok()) return referenced.status();
  return blobs.RemoveAllBut(*referenced, collection.shared() ? kClusterImageGrace
                                                             : std::chrono::seconds(0));
}

// A new cluster's first replicas race to record what serves: the one that loses must serve the
// same model, since vectors of two models are not comparable.
absl::Status CheckClusterRecord(const ClusterServing& recorded, const ServingModel* model) {
  const std::string version = model != nullptr ? model->description().version : "";
  if (recorded.model_version == version) return absl::OkStatus();
  auto name = [](const std::string& v) {
    return v.empty() ? std::string("no model (vectors only)") : absl::StrCat("model ", v);
  };
  return absl::FailedPreconditionError(absl::StrCat(
      "--model: the cluster's items are embedded by ", name(recorded.model_version),
      ", recorded by another replica while this one started with ", name(version),
      "; start it again to serve the cluster's model"));
}

// A cluster's replicas must all split the gallery the same number of ways; the first one records
// it.
absl::Status CheckShardCount(ClusterRecord& cluster, const index::ShardSpec& shard) {
  absl::StatusOr<int> recorded = cluster.InitShardCount(shard.count);
  if (!recorded.ok()) return recorded.status();
  if (*recorded == shard.count) return absl::OkStatus();
  return absl::FailedPreconditionError(absl::StrCat(
      "--shard: the cluster's gallery is split into ", *recorded, " shard(s), this replica was "
      "started as ", shard.ToString(), "; start it with --shard I/", *recorded,
      " or re-shard the stopped cluster with hier-server --store URI --reshard N"));
}

// The address routers reach this replica at: --advertise, else the listening host (this host's
// name when it listens on every interface) and the port bound.
std::string AdvertisedAddress(const ServerOptions& options, int port) {
  if (!options.advertise.empty()) return options.advertise;
  std::string host = options.listen.substr(0, options.listen.rfind(':'));
  if (host == "0.0.0.0" || host == "[::]" || host.empty()) {
    char name[256] = {};
    ::gethostname(name, sizeof(name) - 1);
    host = name;
  }
  return absl::StrCat(host, ":", port);
}

// A replica that heard nothing from another for this long counts it gone (when deciding whether
// every replica serves the new model after a swap).
constexpr std::chrono::seconds kMemberSilence{5};

// The membership heartbeat: announces `self` as it serves now, and lets the previous pair of a
// model swap go once every live replica serves the current model (no router needs it then).
absl::Status AnnounceReplica(ClusterRecord& cluster, ServingSlot& serving, ClusterMember self,
                             std::chrono::milliseconds max_lag) {
  const Serving now = serving.Get();
  const std::optional<std::string> previous = serving.previous_version();
  self.model_version = now.version();
  self.previous_version = previous.value_or("");
  self.serving = ReplicaServes(now.collection->replication(), max_lag);
  self.items = now.collection->index().size();
  if (absl::Status announced = cluster.Heartbeat(self); !announced.ok()) return announced;
  if (!previous.has_value()) return absl::OkStatus();
  absl::StatusOr<std::vector<ClusterMember>> members = cluster.Members();
  if (!members.ok()) return members.status();
  for (const ClusterMember& member : *members) {
    if (member.heartbeat_age_seconds < kMemberSilence.count() &&
        member.model_version != self.model_version) {
      return absl::OkStatus();
    }
  }
  serving.DropPrevious();
  return absl::OkStatus();
}

SearchSettingsSample SearchSettingsSampleOf(const index::SearchSettings& settings) {
  SearchSettingsSample sample;
  sample.nprobe = settings.effort.nprobe;
  sample.ef_search = settings.effort.ef_search;
  sample.overfetch = settings.effort.overfetch;
  if (settings.tuning.has_value()) {
    sample.target_recall = settings.tuning->target.recall;
    sample.measured_recall = settings.tuning->measured.recall;
  }
  return sample;
}

// The gallery's geometry: the model's when one is loaded, else the options'.
absl::StatusOr<index::CollectionOptions> CollectionOptionsFor(const ServerOptions& options,
                                                              const std::string& directory,
                                                              const std::string& gallery,
                                                              const ServingModel* model) {
  index::CollectionOptions collection;
  collection.directory = directory;
  if (index::IsPostgresUri(options.store.uri)) {
    collection.store = options.store;
    collection.store.schema = gallery;
    collection.shard = options.shard;
  }
  collection.index.candidates.kind = options.index_kind;
  collection.index.threads = options.index_threads;
  collection.index.target_recall = options.target_recall;
  collection.index.max_k = options.max_k;
  if (model != nullptr) {
    const ModelDescription& description = model->description();
    if (options.dim != 0 && options.dim != description.dim) {
      return absl::InvalidArgumentError(absl::StrCat("--dim: ", options.dim, ", but the model ",
                                                     description.version, " embeds in ",
                                                     description.dim, " dimensions"));
    }
    collection.index.dim = description.dim;
    collection.index.c = description.c;
  } else {
    if (options.dim <= 0) {
      return absl::InvalidArgumentError("--dim: needed (> 0) when no --model is given");
    }
    collection.index.dim = options.dim;
    collection.index.c = options.c;
  }
  return collection;
}

// hier-train beside this binary (an installation) or in the build tree's trainer/ folder.
std::string DefaultTrainer() {
  std::error_code error;
  const fs::path here = fs::read_symlink("/proc/self/exe", error).parent_path();
  for (const fs::path& candidate :
       {here / "hier-train", here.parent_path() / "trainer" / "hier-train"}) {
    if (fs::exists(candidate, error)) return candidate.string();
  }
  return (here / "hier-train").string();
}

// This process's name among a cluster's replicas (in job leases): host, pid and a random part, so
// a restarted replica is a new one.
std::string ReplicaName() {
  char host[256] = {};
  ::gethostname(host, sizeof(host) - 1);
  std::random_device random;
  return absl::StrCat(host, ":", ::getpid(), ":", absl::Hex(random(), absl::kZeroPad8));
}

// Training jobs write their runs where the models are listed; a successful job started with
// deploy_on_success is swapped in (in the background; a swap already running wins).
JobRunnerOptions JobOptionsFor(const ServerOptions& options, const std::string& replica,
                               ModelSwapper* swapper) {
  JobRunnerOptions jobs;
  jobs.trainer = options.trainer.empty() ? DefaultTrainer() : options.trainer;
  jobs.state_dir = options.state_dir;
  jobs.runs_dir = options.runs_dir;
  jobs.data_roots = options.data_roots;
  jobs.max_jobs = options.max_jobs;
  jobs.grace = options.job_grace;
  jobs.store = options.store;
  jobs.replica = replica;
  jobs.lease = options.job_lease;
  jobs.on_success = [swapper](const hier::v1::Job& job) {
    (void)swapper->Swap((fs::path(job.run_dir()) / "best").string(), /*wait=*/false);
  };
  return jobs;
}

absl::Status AtLeast(int64_t value, int64_t least, const char* flag) {
  if (value >= least) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(flag, ": must be >= ", least, ", got ", value));
}

// Times the phases of a start: each is logged as it ends with its duration, exported as
// hier_startup_phase_seconds{phase}, and named to the calls that arrive meanwhile.
class StartupPhases {
 public:
  StartupPhases(ServerMetrics& metrics, StartupFrontend& frontend)
      : metrics_(metrics), frontend_(frontend) {}

  // Begins `phase`, which calls are told is `doing` (e.g. "loading the index").
  void Begin(std::string phase, const std::string& doing) {
    phase_ = std::move(phase);
    began_ = Clock::now();
    frontend_.SetPhase(doing);
  }
  // Ends the running phase; `found`, when given, is what it found, for the log.
  void End(const std::string& found = "") {
    const double seconds = std::chrono::duration<double>(Clock::now() - began_).count();
    Record(phase_, seconds, found);
  }
  // A step within a phase that timed itself (the index's OpenStep).
  void Record(const std::string& phase, double seconds, const std::string& found) {
    metrics_.SetStartupPhase(phase, seconds);
    LogEvent(LogLevel::kInfo, "startup_phase",
             absl::StrCat(phase, ": ", absl::StrFormat("%.3f", seconds), " s",
                          found.empty() ? "" : absl::StrCat(", ", found)),
             {{"phase", phase}, {"seconds", seconds}, {"detail", found}});
  }
  double total_seconds() const {
    return std::chrono::duration<double>(Clock::now() - start_).count();
  }

 private:
  using Clock = std::chrono::steady_clock;
  ServerMetrics& metrics_;
  StartupFrontend& frontend_;
  const Clock::time_point start_ = Clock::now();
  Clock::time_point began_ = start_;
  std::string phase_;
};

// `listen` with its port replaced by `port` (a port-0 address made the port it bound); a unix
// socket as it is.
std::string ListenAddressWithPort(const std::string& listen, int port) {
  if (absl::StartsWith(listen, "unix:")) return listen;
  return absl::StrCat(listen.substr(0, listen.rfind(':')), ":", port);
}

}  // namespace

bool IsLoopbackAddress(const std::string& address) {
  if (absl::StartsWith(address, "unix:")) return true;
  const size_t colon = address.rfind(':');
  std::string host = address.substr(0, colon == std::string::npos ? address.size() : colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  return host == "localhost" || host == "::1" || absl::StartsWith(host, "127.");
}

absl::StatusOr<std::unique_ptr<HttpApi>> StartHttpApi(const ServerOptions& options,
                                                      grpc::Server& server) {
  HttpApiOptions http;
  http.listen = options.http_listen;
  http.max_message_bytes = options.max_message_bytes;
  http.threads = options.http_threads;
  return HttpApi::Start(http, server);
}

absl::StatusOr<ServerOptions> ValidateServerOptions(const ServerOptions& options) {
  for (const absl::Status& status : {
           AtLeast(options.dim, 0, "--dim"),
           AtLeast(options.index_threads, 1, "--index-threads"),
           options.target_recall >= 0 && options.target_recall <= 1
               ? absl::OkStatus()
               : absl::InvalidArgumentError(absl::StrCat("--target-recall: must be in [0, 1], got ",
                                                         options.target_recall)),
           AtLeast(options.torch_threads, 0, "--torch-threads"),
           AtLeast(options.grpc_threads, 0, "--grpc-threads"),
           AtLeast(options.http_threads, 1, "--http-threads"),
           AtLeast(options.batching.max_batch, 1, "--max-batch"),
           AtLeast(options.batching.max_delay_us, 0, "--max-delay-us"),
           AtLeast(options.max_k, 1, "--max-k"),
           AtLeast(options.limits.max_images_per_call, 1, "--max-images-per-call"),
           AtLeast(options.limits.max_items_per_call, 1, "--max-items-per-call"),
           AtLeast(options.limits.max_pixels, 1, "--max-pixels"),
           AtLeast(options.max_message_bytes, 1024, "--max-message-bytes"),
           AtLeast(options.drain.count(), 0, "--drain-seconds"),
           AtLeast(options.max_jobs, 1, "--max-jobs"),
           AtLeast(options.max_watches, 1, "--max-watches"),
           AtLeast(options.job_grace.count(), 0, "--job-grace-seconds"),
           AtLeast(options.store.max_connections, 1, "--store-connections"),
           AtLeast(options.max_replication_lag.count(), 0, "--max-replication-lag-seconds"),
           AtLeast(options.job_lease.count() / 1000, 2, "--job-lease-seconds"),
       }) {
    if (!status.ok()) return status;
  }
  if (options.max_message_bytes > std::numeric_limits<int>::max()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--max-message-bytes: at most ", std::numeric_limits<int>::max()));
  }
  for (const auto& [flag, address] : {std::pair<std::string, std::string>{"--listen", options.listen},
                                      {"--http-listen", options.http_listen}}) {
    if (options.token.empty() && !options.allow_unauthenticated && !address.empty() &&
        !IsLoopbackAddress(address)) {
      return absl::InvalidArgumentError(absl::StrCat(
          flag, ": ", address,
          " is reachable from other machines and no token is set, so anyone who reaches it could "
          "add and delete items, load models and start training jobs; give --token-file FILE, "
          "listen on a loopback address (127.0.0.1:PORT), or accept it with "
          "--allow-unauthenticated"));
    }
  }
  if (!options.tls_cert.empty() && !options.http_listen.empty() &&
      !IsLoopbackAddress(options.http_listen)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--http-listen: ", options.http_listen,
        " is plain HTTP reachable from other machines while gRPC uses TLS: tokens would cross the "
        "network in clear; listen on a loopback address behind a TLS proxy, or leave it empty"));
  }

  if (!options.store.uri.empty() && !index::IsPostgresUri(options.store.uri)) {
    return absl::InvalidArgumentError(
        "--store: not a postgresql:// URI (leave it empty to keep the state in --state-dir)");
  }
  if (options.router && !index::IsPostgresUri(options.store.uri)) {
    return absl::InvalidArgumentError(
        "--router: routes to the replicas of a cluster store; give --store postgresql://...");
  }
  if (options.router && !options.shard.whole()) {
    return absl::InvalidArgumentError("--shard: a router holds no shard; leave it out");
  }
  if (options.member_timeout < std::chrono::seconds(2)) {
    return absl::InvalidArgumentError(
        "--member-timeout-seconds: must be >= 2 (replicas announce themselves every second)");
  }
  if (!options.shard.whole() && !index::IsPostgresUri(options.store.uri)) {
    return absl::InvalidArgumentError(
        "--shard: a gallery is split into shards only in a cluster (--store postgresql://...)");
  }
  if (!(options.c > 0)) {
    return absl::InvalidArgumentError(absl::StrCat("--c: must be > 0, got ", options.c));
  }
  return options;
}

absl::StatusOr<std::unique_ptr<ServingProcess>> StartServingProcess(const ServerOptions& options) {
  if (options.router) {
    absl::StatusOr<std::unique_ptr<RouterApp>> router = RouterApp::Start(options);
    if (!router.ok()) return router.status();
    return std::unique_ptr<ServingProcess>(*std::move(router));
  }
  absl::StatusOr<std::unique_ptr<ServerApp>> server = ServerApp::Start(options);
  if (!server.ok()) return server.status();
  return std::unique_ptr<ServingProcess>(*std::move(server));
}

absl::Status Reshard(const index::StoreLocation& store, int shards,
                     std::chrono::milliseconds alive) {
  absl::StatusOr<std::unique_ptr<ClusterRecord>> cluster = ClusterRecord::Open(store);
  if (!cluster.ok()) return cluster.status();
  return (*cluster)->SetShardCount(shards, alive);
}

absl::StatusOr<std::unique_ptr<ServerApp>> ServerApp::Start(const ServerOptions& options) {
  auto state = std::make_unique<State>();
  state->options = options;
  state->replica = ReplicaName();
  state->metrics = std::make_unique<ServerMetrics>();
  if (options.torch_threads > 0) at::set_num_threads(options.torch_threads);
  if (!options.metrics_listen.empty()) {
    absl::StatusOr<std::unique_ptr<MetricsEndpoint>> endpoint =
        MetricsEndpoint::Start(options.metrics_listen, state->metrics->registry());
    if (!endpoint.ok()) return endpoint.status();
    state->metrics_endpoint = *std::move(endpoint);
  }
  ServerMetrics* metrics = state->metrics.get();
  // Listen at once, NOT_SERVING, so that a long start (a stage rebuilt over a damaged snapshot)
  // shows as one.
  absl::StatusOr<std::unique_ptr<StartupFrontend>> startup =
      StartupFrontend::Start(options, *metrics);
  if (!startup.ok()) return startup.status();
  const int metrics_port = state->metrics_endpoint ? state->metrics_endpoint->port() : 0;
  LogEvent(LogLevel::kInfo, "listening",
           absl::StrCat("listening on gRPC port ", (*startup)->port(), ", metrics on port ",
                        metrics_port, " (health NOT_SERVING until started)"),
           {{"grpc_port", int64_t{(*startup)->port()}}, {"metrics_port", int64_t{metrics_port}}});
  StartupPhases phases(*metrics, **startup);

  // What serves: what served before a restart (the state folder's record, or a cluster's), else
  // --model. A cluster's gallery is a schema of its database ("" for the base one); a replica
  // keeps that gallery's index snapshot in a folder of its own state folder.
  phases.Begin("state", "reading what served before");
  const bool cluster = index::IsPostgresUri(options.store.uri);
  std::optional<ServingRecord> record;
  if (cluster) {
    absl::StatusOr<std::unique_ptr<ClusterRecord>> opened = ClusterRecord::Open(options.store);
    if (!opened.ok()) return opened.status();
    state->cluster = *std::move(opened);
    absl::StatusOr<std::optional<ClusterServing>> serving = state->cluster->ReadServing();
    if (!serving.ok()) return serving.status();
    if (serving->has_value()) record = ServingRecord{(*serving)->checkpoint, (*serving)->gallery};
  } else {
    absl::StatusOr<std::optional<ServingRecord>> read = ReadServingRecord(options.state_dir);
    if (!read.ok()) return read.status();
    record = *std::move(read);
  }
  std::string wanted;  // --model's checkpoint
  if (!options.model.empty()) {
    absl::StatusOr<std::string> checkpoint = ResolveCheckpoint(options.model, "--model");
    if (!checkpoint.ok()) return checkpoint.status();
    wanted = *checkpoint;
  }
  const std::string checkpoint = record.has_value() ? record->checkpoint : wanted;
  const std::string gallery = record.has_value() ? record->gallery : (cluster ? "" : "initial");
  phases.End(record.has_value() ? absl::StrCat("serves gallery \"", gallery, "\"")
                                : std::string("a new state"));
  std::shared_ptr<ServingModel> model;
  if (!checkpoint.empty()) {
    phases.Begin("model", "loading the model");
    absl::StatusOr<std::shared_ptr<ServingModel>> loaded =
        ServingModel::Load(checkpoint, options.batching,
                           [metrics](int64_t images) { metrics->ObserveEmbedBatch(images); });
    if (!loaded.ok()) return loaded.status();
    model = *std::move(loaded);
    metrics->SetServingModel(model->description().version);
    phases.End(absl::StrCat("model ", model->description().version, " from ", checkpoint));
  }
  absl::StatusOr<index::CollectionOptions> collection_options =
      CollectionOptionsFor(options, GalleryPath(options.state_dir, gallery), gallery, model.get());
  if (!collection_options.ok()) return collection_options.status();
  collection_options->on_step = [&phases](const index::OpenStep& step) {
    phases.Record(absl::StrCat("index_", step.name), step.seconds, step.detail);
  };
  phases.Begin("index", "loading the index");
  absl::StatusOr<std::unique_ptr<index::Collection>> collection =
      index::Collection::Open(*collection_options);
  if (!collection.ok()) return collection.status();
  collection_options->on_step = nullptr;  // the swapper's galleries are not this start's
  // The shard count lives beside the items, in tables the collection creates on a fresh store.
  if (cluster) {
    if (absl::Status same = CheckShardCount(*state->cluster, options.shard); !same.ok()) {
      return same;
    }
  }
  if (cluster && !record.has_value()) {
    absl::StatusOr<ClusterServing> recorded = state->cluster->InitServing(
        {gallery, checkpoint, model != nullptr ? model->description().version : ""});
    if (!recorded.ok()) return recorded.status();
    if (absl::Status same = CheckClusterRecord(*recorded, model.get()); !same.ok()) return same;
  } else if (!cluster && !record.has_value()) {
    if (absl::Status written = WriteServingRecord(options.state_dir, {checkpoint, gallery});
        !written.ok()) {
      return written;
    }
  }
  const int64_t items = (*collection)->index().size();
  metrics->SetIndexItems(items);
  state->serving.Set({model, std::shared_ptr<index::Collection>(*std::move(collection))});
  metrics->SetCollectHook([metrics, serving = &state->serving] {
    metrics->SetSearchSettings(SearchSettingsSampleOf(
        serving->Get().collection->index().search_settings()));
  });
  phases.End(absl::StrCat(items, " items"));

  phases.Begin("images", "removing stored images no item refers to");
  absl::StatusOr<std::unique_ptr<BlobStore>> blobs =
      BlobStore::Open(options.store, options.state_dir);
  if (!blobs.ok()) return blobs.status();
  state->blobs = *std::move(blobs);
  SwapOptions swap;
  swap.state_dir = options.state_dir;
  swap.index = collection_options->index;
  swap.batching = options.batching;
  swap.max_pixels = options.limits.max_pixels;
  swap.store = options.store;
  swap.shard = options.shard;
  swap.replica = state->replica;
  swap.gallery = gallery;
  if (!cluster) ModelSwapper::RemoveStrayGalleries(options.state_dir, gallery);
  absl::StatusOr<int64_t> removed =
      RemoveUnreferencedImages(*state->serving.Get().collection, *state->blobs);
  if (!removed.ok()) return removed.status();
  if (*removed > 0) {
    state->notices.push_back(
        absl::StrCat("removed ", *removed, " stored images no item refers to any more"));
  }
  phases.End(absl::StrCat(*removed, " removed"));
  state->swapper = std::make_unique<ModelSwapper>(&state->serving, state->blobs.get(), metrics,
                                                  swap, state->cluster.get());
  state->catalog = std::make_unique<ModelCatalog>(options.runs_dir);

  state->authorizer = std::make_unique<Authorizer>(options.token, options.protect_reads);
  RetrievalBackends retrieval;
  retrieval.serving = &state->serving;
  retrieval.blobs = state->blobs.get();
  retrieval.authorizer = state->authorizer.get();
  retrieval.metrics = metrics;
  state->retrieval = std::make_unique<RetrievalService>(retrieval, options.limits);
  ModelsBackends models;
  models.catalog = state->catalog.get();
  models.serving = &state->serving;
  models.swapper = state->swapper.get();
  models.authorizer = state->authorizer.get();
  state->models = std::make_unique<ModelsService>(models);
  phases.Begin("jobs", "resuming training jobs");
  absl::StatusOr<std::unique_ptr<JobRunner>> jobs =
      JobRunner::Create(JobOptionsFor(options, state->replica, state->swapper.get()), metrics);
  if (!jobs.ok()) return jobs.status();
  state->jobs = *std::move(jobs);
  phases.End();
  const int max_watches =
      options.grpc_threads > 0 ? std::min(options.max_watches, std::max(1, options.grpc_threads / 2))
                               : options.max_watches;
  state->training = std::make_unique<TrainingService>(
      state->jobs.get(), state->authorizer.get(), std::chrono::milliseconds(250), max_watches);
  HierarchyBackends hierarchy;
  hierarchy.catalog = state->catalog.get();
  hierarchy.serving = &state->serving;
  hierarchy.authorizer = state->authorizer.get();
  state->hierarchy = std::make_unique<HierarchyService>(hierarchy, options.limits);

  // The server proper binds the start-up frontend's port beside it (a unix socket cannot be
  // shared: there the frontend goes first), then the frontend goes.
  const int startup_port = (*startup)->port();
  if (absl::StartsWith(options.listen, "unix:")) (*startup)->Stop();
  ServerOptions bound = options;
  bound.listen = ListenAddressWithPort(options.listen, startup_port);
  absl::StatusOr<std::unique_ptr<grpc::Server>> server = StartGrpcFrontend(
      bound,
      {state->retrieval.get(), state->models.get(), state->hierarchy.get(),
       state->training.get()},
      *state->metrics, &state->port);
  if (!server.ok()) return server.status();
  state->server = *std::move(server);
  grpc::HealthCheckServiceInterface* health = state->server->GetHealthCheckService();
  if (cluster) {
    // NOT_SERVING until the replica has caught up with the store (ReplicationMonitor).
    health->SetServingStatus(false);
    ReplicationMonitorOptions monitor;
    monitor.max_lag = options.max_replication_lag;
    ModelSwapper* swapper = state->swapper.get();
    monitor.follow = [swapper] { return swapper->FollowCluster(); };
    ClusterMember self;
    self.name = state->replica;
    self.address = AdvertisedAddress(options, state->port);
    self.shard = options.shard;
    monitor.announce = [cluster = state->cluster.get(), serving = &state->serving, self,
                        max_lag = options.max_replication_lag] {
      return AnnounceReplica(*cluster, *serving, self, max_lag);
    };
    state->replication = std::make_unique<ReplicationMonitor>(
        &state->serving, metrics, [health](bool serving) { health->SetServingStatus(serving); },
        monitor);
  } else {
    health->SetServingStatus(true);
  }
  (*startup)->Stop();
  if (!options.http_listen.empty()) {
    absl::StatusOr<std::unique_ptr<HttpApi>> http = StartHttpApi(options, *state->server);
    if (!http.ok()) return http.status();
    state->http = *std::move(http);
  }
  // The state folder's model wins over --model, which only seeds a new state: a restart never
  // undoes a hot swap or re-embeds a gallery unasked.
  if (!wanted.empty() && wanted != checkpoint) {
    state->notices.push_back(absl::StrCat(cluster ? "the cluster serves " : "the state folder serves ",
                                          checkpoint, "; --model ", wanted,
                                          " is not loaded (hier model load swaps models)"));
  }
  const double started = phases.total_seconds();
  metrics->SetStartupPhase("total", started);
  LogEvent(LogLevel::kInfo, "started",
           absl::StrCat("started in ", absl::StrFormat("%.3f", started), " s: ", items,
                        " items, ", model != nullptr ? model->description().version : "no model",
                        cluster ? " (SERVING once caught up with the cluster store)" : ""),
           {{"seconds", started},
            {"items", items},
            {"model", model != nullptr ? model->description().version : ""}});

  return std::unique_ptr<ServerApp>(new ServerApp(std::move(state)));
}

ServerApp::ServerApp(std::unique_ptr<State> state) : state_(std::move(state)) {}

ServerApp::~ServerApp() {
  // The server first: it ends the streams an HTTP handler may be relaying (WatchJob).
  if (state_->server != nullptr) state_->server->Shutdown();
  state_->http.reset();
}

int ServerApp::port() const { return state_->port; }
const std::vector<std::string>& ServerApp::notices() const { return state_->notices; }
int ServerApp::metrics_port() const {
  return state_->metrics_endpoint ? state_->metrics_endpoint->port() : 0;
}
int ServerApp::http_port() const { return state_->http ? state_->http->port() : 0; }

absl::Status ServerApp::Shutdown() {
  using Clock = std::chrono::steady_clock;
  Clock::time_point began = Clock::now();
  // Logs a shutdown phase that ran since `began`, and starts timing the next.
  auto phase_done = [&began](const std::string& phase, const std::string& message) {
    const double seconds = std::chrono::duration<double>(Clock::now() - began).count();
    LogEvent(LogLevel::kInfo, "shutdown_phase",
             absl::StrCat(message, " in ", absl::StrFormat("%.3f", seconds), " s"),
             {{"phase", phase}, {"seconds", seconds}});
    began = Clock::now();
  };
  state_->replication.reset();  // it would answer SERVING again, and announce this replica
  state_->server->GetHealthCheckService()->SetServingStatus(false);
  if (state_->cluster != nullptr) {
    // Routers stop sending calls here now rather than when the heartbeat goes stale.
    if (absl::Status left = state_->cluster->Leave(state_->replica); !left.ok()) {
      LogEvent(LogLevel::kWarning, "shutdown_phase",
               absl::StrCat("leaving the cluster: ", left.ToString()));
    }
    phase_done("leave", "left the cluster");
  }
  // First the trainers (their WatchJob streams end with the INTERRUPTED event) and a swap in
  // progress (its new gallery goes; no job can start another), then the calls.
  state_->jobs->Shutdown();
  state_->swapper->Stop();
  phase_done("jobs", "stopped training jobs and swaps");
  state_->server->Shutdown(std::chrono::system_clock::now() + state_->options.drain);
  state_->server->Wait();
  state_->http.reset();  // its calls in flight were the server's: answered or cancelled by now
  phase_done("drain", "drained calls in flight");
  absl::Status written = state_->serving.Get().collection->WriteSnapshot();
  if (written.ok()) phase_done("snapshot", "wrote the index snapshot");
  return written;
}

}  // namespace hier::server
