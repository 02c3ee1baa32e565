// hier-server assembled: the item collection, the serving model, the blob store, the gRPC services
// with health and reflection, metrics, and an orderly shutdown that drains calls and snapshots the
// index. On one machine it owns its state folder; as a replica of a cluster store (--store
// postgresql://...) it shares items, images and the serving model's version with the other
// replicas and answers health SERVING only while caught up with the store.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "index/item_store.h"
#include "index/shard.h"
#include "server/http/http_api.h"
#include "server/model/embedding_batcher.h"
#include "server/rpc/retrieval_service.h"

namespace hier::server {

struct ServerOptions {
  std::string listen = "0.0.0.0:50051";         // port 0: any free port
  std::string metrics_listen = "0.0.0.0:9464";  // empty: no metrics endpoint
  std::string http_listen = "127.0.0.1:8080";   // the HTTP/JSON API; empty: none
  int http_threads = 8;                         // HTTP requests answered at once
  std::string state_dir = "state";              // serving.json, galleries/, blobs/, jobs
  // Where items, source images and the serving model's version are kept: uri empty for the state
  // folder (one machine); a PostgreSQL URI makes this server a replica of that cluster store
  // (the state folder then holds only this replica's index snapshot).
  index::StoreLocation store;
  // A replica further behind the cluster store than this answers health NOT_SERVING.
  std::chrono::milliseconds max_replication_lag{10000};
  // A replica of a cluster store: the shard of the gallery its index holds (index/shard.h), and
  // the address routers reach it at (empty: this host's name and the port bound).
  index::ShardSpec shard;
  std::string advertise;
  std::string model;                            // a run directory or checkpoint; empty: none
  std::string runs_dir = "runs";                // where models are listed and jobs write runs
  int64_t dim = 0;                              // without a model: the gallery's dimension
  double c = 0.1;                               // without a model: the ball's curvature
  std::string index_kind;                       // empty: the persisted kind (exact when new)
  int index_threads = 1;                        // FAISS / OpenMP threads per search
  // Approximate stages tune their search effort for this recall@10 after each training (0: fixed).
  double target_recall = 0.99;
  int torch_threads = 0;                        // intra-op threads of the model (0: LibTorch's)
  int grpc_threads = 0;                         // gRPC handler threads (0: gRPC's default)
  int64_t max_k = 1000;
  int64_t max_message_bytes = 64 << 20;
  RetrievalLimits limits;
  BatchingOptions batching;
  std::string token;  // empty: no authorization
  // Without a token, a listener reachable from other machines is refused unless this is set.
  bool allow_unauthenticated = false;
  bool protect_reads = false;
  std::string tls_cert, tls_key;           // PEM files; both or neither
  std::chrono::milliseconds drain{30000};  // how long shutdown waits for calls in flight
  std::string trainer;                     // hier-train (empty: beside this binary)
  std::vector<std::string> data_roots = {"/usr/share/datasets"};  // where jobs may read data
  int max_jobs = 1;                                               // training jobs running at once
  // WatchJob streams at once (each holds a handler thread); with grpc_threads, at most half of
  // those, so watches never take every thread.
  int max_watches = 64;
  std::chrono::milliseconds job_grace{30000};  // a cancelled job's SIGTERM to SIGKILL
  // A cluster: how long a replica's claim on a job lasts without renewal (it renews every
  // 0.5 s); a job whose replica died is resumed elsewhere this long after.
  std::chrono::milliseconds job_lease{15000};
  // The router role (server/router/router_app.h): no gallery of its own; it routes the public API
  // to the replicas of the cluster store that announced themselves within member_timeout.
  bool router = false;
  std::chrono::milliseconds member_timeout{3000};
};

// Whether a gRPC listening address (host:port, [v6]:port or unix:path) is reachable only from this
// machine: a loopback address, localhost, or a unix socket.
bool IsLoopbackAddress(const std::string& address);

// The HTTP/JSON face of `server` on options.http_listen (which is not empty).
absl::StatusOr<std::unique_ptr<HttpApi>> StartHttpApi(const ServerOptions& options,
                                                      grpc::Server& server);

// The options back when every value is in range, else InvalidArgument naming the flag. Like
// Redis's protected mode, a listener reachable from other machines without a token is refused
// unless allow_unauthenticated says so.
absl::StatusOr<ServerOptions> ValidateServerOptions(const ServerOptions& options);

// A started hier-server, whichever its role.
class ServingProcess {
 public:
  virtual ~ServingProcess() = default;
  virtual int port() const = 0;          // the gRPC port bound
  virtual int metrics_port() const = 0;  // the metrics port bound, 0 without one
  virtual int http_port() const = 0;     // the HTTP/JSON API's port bound, 0 without one
  // What the operator should know about how the server started, e.g. that the state folder's
  // model was kept over another --model, or that unreferenced stored images were removed.
  virtual const std::vector<std::string>& notices() const = 0;
  // Stops taking calls, waits up to options.drain for those in flight, and puts its state away.
  virtual absl::Status Shutdown() = 0;
};

// Starts the role `options` name: a router, or a server with a gallery.
absl::StatusOr<std::unique_ptr<ServingProcess>> StartServingProcess(const ServerOptions& options);

// The offline re-shard: records that the cluster store's gallery is split into `shards` from now
// on, refused while any replica is running (their heartbeats younger than `alive`).
absl::Status Reshard(const index::StoreLocation& store, int shards,
                     std::chrono::milliseconds alive);

class ServerApp : public ServingProcess {
 public:
  // Opens the state, loads the model and starts serving; errors name the option at fault.
  static absl::StatusOr<std::unique_ptr<ServerApp>> Start(const ServerOptions& options);
  ~ServerApp() override;

  int port() const override;
  int metrics_port() const override;
  int http_port() const override;
  const std::vector<std::string>& notices() const override;

  // Stops the training jobs (interrupted, resumable), stops accepting calls, waits up to
  // options.drain for those in flight, then writes an index snapshot. Returns its status.
  absl::Status Shutdown() override;

 private:
  struct State;
  explicit ServerApp(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

}  // namespace hier::server
