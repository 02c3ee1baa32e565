// hier-server: serves retrieval over gRPC (and metrics over HTTP) until SIGTERM or SIGINT, then
// drains the calls in flight, snapshots the index and exits 0.
#include <signal.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstring>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/flags/usage_config.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "index/item_store.h"
#include "server/app/memory_trimmer.h"
#include "server/app/server_app.h"
#include "server/metrics/event_log.h"
#include "trainer/io/atomic_file.h"

ABSL_FLAG(std::string, listen, "0.0.0.0:50051", "gRPC address (port 0: any free port)");
ABSL_FLAG(std::string, metrics_listen, "0.0.0.0:9464",
          "Prometheus /metrics address (empty: none; port 0: any free port)");
ABSL_FLAG(std::string, http_listen, "127.0.0.1:8080",
          "HTTP/JSON API address: POST /v1/<package.Service>/<Method> (empty: none; port 0: any "
          "free port)");
ABSL_FLAG(int, http_threads, 8, "HTTP requests answered at once");
ABSL_FLAG(std::string, state_dir, "state",
          "the serving record, galleries (items in SQLite, index snapshots) and source images");
ABSL_FLAG(
    std::string, model, "",
    "a run directory (its best/) or a checkpoint folder to serve; a state folder that already "
    "serves a model keeps it (hier model load swaps)");
ABSL_FLAG(std::string, store, "",
          "where items, images and the serving model are kept: empty for the state folder (one "
          "machine), or postgresql://user@host:port/database for a replica of a shared cluster "
          "store");
ABSL_FLAG(std::string, store_password_file, "",
          "the PostgreSQL password, read from this file (else the URI's, or libpq's PGPASSFILE)");
ABSL_FLAG(int, store_connections, 8, "most PostgreSQL connections this replica opens");
ABSL_FLAG(int64_t, max_replication_lag_seconds, 10,
          "a replica further behind its shared store answers health NOT_SERVING");
ABSL_FLAG(std::string, shard, "",
          "with --store postgresql://...: I/N makes this replica hold shard I of a gallery split "
          "into N (empty: the whole gallery, 0/1)");
ABSL_FLAG(std::string, advertise, "",
          "with --store postgresql://...: the host:port routers reach this replica at (empty: "
          "this host's name and the port bound)");
ABSL_FLAG(bool, router, false,
          "route the public API to the replicas of --store postgresql://... instead of serving a "
          "gallery: searches go to every shard and are merged");
ABSL_FLAG(int64_t, member_timeout_seconds, 3,
          "a router routes to replicas whose last heartbeat is younger than this");
ABSL_FLAG(int, reshard, 0,
          "with --store: record that the stopped cluster's gallery is split into N shards from "
          "now on, then exit (the replicas start again with --shard I/N)");
ABSL_FLAG(std::string, runs_dir, "runs", "training runs: the models listed and loaded by version");
ABSL_FLAG(int64_t, dim, 0, "without --model: the gallery's vector dimension");
ABSL_FLAG(double, c, 0.1, "without --model: the ball's curvature");
ABSL_FLAG(std::string, index_kind, "",
          "candidate stage: exact, ivf-flat, ivf-sq8, hnsw or a FAISS factory string (empty: the "
          "persisted one, exact when new)");
ABSL_FLAG(int, index_threads, 1, "FAISS / OpenMP threads per search");
ABSL_FLAG(double, target_recall, 0.99,
          "approximate index kinds tune nprobe / efSearch / overfetch for this recall@10 after "
          "each training, on a sample of the gallery (0: keep the fixed defaults)");
ABSL_FLAG(int, torch_threads, 0, "model intra-op threads (0: LibTorch's default)");
ABSL_FLAG(int, grpc_threads, 0, "most gRPC handler threads (0: gRPC's default)");
ABSL_FLAG(int64_t, max_batch, 32, "images per forward pass (dynamic batching)");
ABSL_FLAG(int64_t, max_delay_us, 2000,
          "the most an image waits for its batch to fill (the wait is the fixed part of the "
          "model's measured pass time, when shorter)");
ABSL_FLAG(int64_t, max_k, 1000, "largest k a search may ask for");
ABSL_FLAG(int64_t, max_images_per_call, 256, "images one call may carry");
ABSL_FLAG(int64_t, max_items_per_call, 10000, "items one AddItems message may carry");
ABSL_FLAG(int64_t, max_pixels, 40'000'000, "largest decoded image, in pixels");
ABSL_FLAG(int64_t, max_message_bytes, 64 << 20, "largest gRPC message, in bytes");
ABSL_FLAG(std::string, token, "", "bearer token required for writes (empty: none)");
ABSL_FLAG(std::string, token_file, "", "read the token from this file instead");
ABSL_FLAG(bool, protect_reads, false, "require the token for read-only calls too");
ABSL_FLAG(bool, allow_unauthenticated, false,
          "serve without a token on an address other machines reach (refused otherwise)");
ABSL_FLAG(std::string, tls_cert, "", "PEM certificate chain (TLS with --tls-key)");
ABSL_FLAG(std::string, tls_key, "", "PEM private key");
ABSL_FLAG(int64_t, drain_seconds, 30, "on SIGTERM, how long calls in flight may finish");
ABSL_FLAG(std::string, trainer, "", "the hier-train binary jobs run (empty: beside this one)");
ABSL_FLAG(std::vector<std::string>, data_roots, {"/usr/share/datasets"},
          "folders training jobs may read data sets, weights and group files from");
ABSL_FLAG(int, max_jobs, 1, "training jobs running at once (the rest wait)");
ABSL_FLAG(int, max_watches, 64,
          "WatchJob streams at once, each holding a handler thread (with --grpc-threads, at most "
          "half of them); more get RESOURCE_EXHAUSTED");
ABSL_FLAG(int64_t, job_grace_seconds, 30, "a cancelled job's time to checkpoint before SIGKILL");
ABSL_FLAG(int64_t, job_lease_seconds, 15,
          "with --store postgresql://...: a job whose replica stopped renewing its claim this long "
          "is resumed by another replica");
ABSL_FLAG(std::string, port_file, "",
          "write {\"grpc\": port, \"metrics\": port, \"http\": port} here once started (for scripts and tests; "
          "the ports listen earlier, NOT_SERVING, as the log's first line says)");
ABSL_FLAG(std::string, log_format, "plain",
          "plain: lines for a person; json: one JSON object per line (time, level, event, "
          "message and the event's fields) for a log collector");

namespace {

using hier::server::ServerOptions;

// A secret (token, password) from a file, without trailing whitespace; InvalidArgument naming
// `flag` when the file cannot be read or holds nothing (`why_not_empty` says why that matters).
absl::StatusOr<std::string> ReadSecretFile(const std::string& path, const char* flag,
                                           const char* why_not_empty) {
  std::string secret;
  try {
    secret = hier::io::ReadFile(path);
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(flag, ": ", e.what()));
  }
  while (!secret.empty() && std::isspace(static_cast<unsigned char>(secret.back()))) {
    secret.pop_back();
  }
  if (secret.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(flag, ": ", path, " is empty (", why_not_empty, ")"));
  }
  return secret;
}

// The store of record: --store, --store-connections, --store-password-file.
absl::StatusOr<hier::index::StoreLocation> StoreFromFlags() {
  hier::index::StoreLocation store;
  store.uri = absl::GetFlag(FLAGS_store);
  store.max_connections = absl::GetFlag(FLAGS_store_connections);
  if (const std::string file = absl::GetFlag(FLAGS_store_password_file); !file.empty()) {
    absl::StatusOr<std::string> password =
        ReadSecretFile(file, "--store-password-file", "no password to give PostgreSQL");
    if (!password.ok()) return password.status();
    store.password = *std::move(password);
  }
  return store;
}

// --reshard N: records the stopped cluster's new shard count (no server starts, so the serving
// flags do not matter).
absl::Status ReshardFromFlags(int shards) {
  if (shards < 1) return absl::InvalidArgumentError("--reshard: must be >= 1");
  absl::StatusOr<hier::index::StoreLocation> store = StoreFromFlags();
  if (!store.ok()) return store.status();
  if (!hier::index::IsPostgresUri(store->uri)) {
    return absl::InvalidArgumentError("--reshard: needs --store postgresql://...");
  }
  return hier::server::Reshard(
      *store, shards, std::chrono::seconds(absl::GetFlag(FLAGS_member_timeout_seconds)));
}

absl::StatusOr<ServerOptions> OptionsFromFlags() {
  ServerOptions options;
  options.listen = absl::GetFlag(FLAGS_listen);
  options.metrics_listen = absl::GetFlag(FLAGS_metrics_listen);
  options.http_listen = absl::GetFlag(FLAGS_http_listen);
  options.http_threads = absl::GetFlag(FLAGS_http_threads);
  options.state_dir = absl::GetFlag(FLAGS_state_dir);
  options.model = absl::GetFlag(FLAGS_model);
  options.runs_dir = absl::GetFlag(FLAGS_runs_dir);
  options.dim = absl::GetFlag(FLAGS_dim);
  options.c = absl::GetFlag(FLAGS_c);
  options.index_kind = absl::GetFlag(FLAGS_index_kind);
  options.index_threads = absl::GetFlag(FLAGS_index_threads);
  options.target_recall = absl::GetFlag(FLAGS_target_recall);
  options.torch_threads = absl::GetFlag(FLAGS_torch_threads);
  options.grpc_threads = absl::GetFlag(FLAGS_grpc_threads);
  options.batching.max_batch = absl::GetFlag(FLAGS_max_batch);
  options.batching.max_delay_us = absl::GetFlag(FLAGS_max_delay_us);
  options.max_k = absl::GetFlag(FLAGS_max_k);
  options.limits.max_images_per_call = absl::GetFlag(FLAGS_max_images_per_call);
  options.limits.max_items_per_call = absl::GetFlag(FLAGS_max_items_per_call);
  options.limits.max_pixels = absl::GetFlag(FLAGS_max_pixels);
  options.max_message_bytes = absl::GetFlag(FLAGS_max_message_bytes);
  options.token = absl::GetFlag(FLAGS_token);
  if (const std::string file = absl::GetFlag(FLAGS_token_file); !file.empty()) {
    absl::StatusOr<std::string> token =
        ReadSecretFile(file, "--token-file", "an empty token would open every call");
    if (!token.ok()) return token.status();
    options.token = *std::move(token);
  }
  absl::StatusOr<hier::index::StoreLocation> store = StoreFromFlags();
  if (!store.ok()) return store.status();
  options.store = *std::move(store);
  options.max_replication_lag = std::chrono::seconds(absl::GetFlag(FLAGS_max_replication_lag_seconds));
  if (const std::string shard = absl::GetFlag(FLAGS_shard); !shard.empty()) {
    absl::StatusOr<hier::index::ShardSpec> parsed = hier::index::ParseShard(shard, "--shard");
    if (!parsed.ok()) return parsed.status();
    options.shard = *parsed;
  }
  options.advertise = absl::GetFlag(FLAGS_advertise);
  options.router = absl::GetFlag(FLAGS_router);
  options.member_timeout = std::chrono::seconds(absl::GetFlag(FLAGS_member_timeout_seconds));
  options.protect_reads = absl::GetFlag(FLAGS_protect_reads);
  options.allow_unauthenticated = absl::GetFlag(FLAGS_allow_unauthenticated);
  options.tls_cert = absl::GetFlag(FLAGS_tls_cert);
  options.tls_key = absl::GetFlag(FLAGS_tls_key);
  options.drain = std::chrono::seconds(absl::GetFlag(FLAGS_drain_seconds));
  options.trainer = absl::GetFlag(FLAGS_trainer);
  options.data_roots = absl::GetFlag(FLAGS_data_roots);
  options.max_jobs = absl::GetFlag(FLAGS_max_jobs);
  options.max_watches = absl::GetFlag(FLAGS_max_watches);
  options.job_grace = std::chrono::seconds(absl::GetFlag(FLAGS_job_grace_seconds));
  options.job_lease = std::chrono::seconds(absl::GetFlag(FLAGS_job_lease_seconds));
  return hier::server::ValidateServerOptions(options);
}

// Flags may be spelled --state-dir or --state_dir (as hier-train's are); Abseil reads the latter.
std::vector<char*> WithUnderscores(int argc, char** argv, std::vector<std::string>& storage) {
  storage.assign(argv, argv + argc);
  std::vector<char*> args;
  for (std::string& arg : storage) {
    if (arg.rfind("--", 0) == 0) {
      const size_t name_end = std::min(arg.find('='), arg.size());
      std::replace(arg.begin() + 2, arg.begin() + name_end, '-', '_');
    }
    args.push_back(arg.data());
  }
  return args;
}

}  // namespace

int main(int argc, char** argv) {
  using hier::server::LogEvent;
  using hier::server::LogLevel;
  absl::SetProgramUsageMessage(
      "serves hyperbolic image retrieval over gRPC; SIGTERM drains and exits 0");
  // --help lists this file's flags (Abseil would look for a file named after the binary).
  absl::FlagsUsageConfig usage;
  usage.contains_help_flags = [](absl::string_view file) {
    return absl::EndsWith(file, "hier_server_main.cc");
  };
  usage.contains_helpshort_flags = usage.contains_help_flags;
  absl::SetFlagsUsageConfig(usage);
  std::vector<std::string> storage;
  std::vector<char*> args = WithUnderscores(argc, argv, storage);
  absl::ParseCommandLine(static_cast<int>(args.size()), args.data());
  absl::StatusOr<hier::server::LogFormat> log_format =
      hier::server::ParseLogFormat(absl::GetFlag(FLAGS_log_format));
  if (!log_format.ok()) {
    LogEvent(LogLevel::kError, "bad_flags", log_format.status().message());
    return 2;
  }
  hier::server::SetLogFormat(*log_format);
  if (const int shards = absl::GetFlag(FLAGS_reshard); shards != 0) {
    if (absl::Status done = ReshardFromFlags(shards); !done.ok()) {
      LogEvent(LogLevel::kError, "reshard_failed", done.message());
      return 1;
    }
    LogEvent(LogLevel::kInfo, "resharded",
             absl::StrCat("the cluster's gallery is split into ", shards,
                          " shard(s); start its replicas with --shard I/", shards),
             {{"shards", int64_t{shards}}});
    return 0;
  }
  absl::StatusOr<ServerOptions> options = OptionsFromFlags();
  if (!options.ok()) {
    LogEvent(LogLevel::kError, "bad_flags", options.status().message());
    return 2;
  }
  // Block the stop signals in every thread the server starts; this thread waits for them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  // Free memory malloc keeps beyond 8 MiB goes back to the system every 10 s (memory_trimmer.h).
  const hier::server::MemoryTrimmer trimmer(std::chrono::seconds(10), size_t{8} << 20);
  absl::StatusOr<std::unique_ptr<hier::server::ServingProcess>> app =
      hier::server::StartServingProcess(*options);
  if (!app.ok()) {
    LogEvent(LogLevel::kError, "start_failed", app.status().ToString());
    return 1;
  }
  for (const std::string& notice : (*app)->notices()) LogEvent(LogLevel::kInfo, "notice", notice);
  LogEvent(LogLevel::kInfo, "serving",
           absl::StrCat("serving gRPC on port ", (*app)->port(), ", metrics on port ",
                        (*app)->metrics_port(), ", HTTP on port ", (*app)->http_port()),
           {{"grpc_port", int64_t{(*app)->port()}},
            {"metrics_port", int64_t{(*app)->metrics_port()}},
            {"http_port", int64_t{(*app)->http_port()}}});
  if (const std::string port_file = absl::GetFlag(FLAGS_port_file); !port_file.empty()) {
    try {
      hier::io::WriteFileAtomically(port_file,
                                    absl::StrCat("{\"grpc\": ", (*app)->port(),
                                                 ", \"metrics\": ", (*app)->metrics_port(),
                                                 ", \"http\": ", (*app)->http_port(), "}\n"));
    } catch (const std::exception& e) {
      LogEvent(LogLevel::kError, "bad_flags", absl::StrCat("--port-file: ", e.what()));
      (void)(*app)->Shutdown();
      return 1;
    }
  }
  int signal_number = 0;
  sigwait(&stop_signals, &signal_number);
  LogEvent(LogLevel::kInfo, "stopping", absl::StrCat(strsignal(signal_number), ", draining"),
           {{"signal", std::string(sigabbrev_np(signal_number))}});
  if (absl::Status stopped = (*app)->Shutdown(); !stopped.ok()) {
    LogEvent(LogLevel::kError, "stop_failed", absl::StrCat("stopping: ", stopped.ToString()));
    return 1;
  }
  LogEvent(LogLevel::kInfo, "stopped", "stopped");
  return 0;
}
