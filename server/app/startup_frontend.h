// What answers on hier-server's port while it starts (which can take minutes when the index's
// candidate stage must be rebuilt): health NOT_SERVING, and UNAVAILABLE naming the start-up
// phase for every other call, so an orchestrator or a person can tell recovery from a hang.
//
// Once the server proper listens on the same port (gRPC binds with SO_REUSEPORT), Stop closes
// this one; clients connected to it reconnect to the server proper.
#pragma once

#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/grpcpp.h>

#include <memory>
#include <mutex>
#include <string>

#include "absl/status/statusor.h"
#include "server/app/server_app.h"
#include "server/metrics/server_metrics.h"

namespace hier::server {

class StartupFrontend {
 public:
  // Listens on options.listen; port() is the port bound (the server proper binds it too).
  static absl::StatusOr<std::unique_ptr<StartupFrontend>> Start(const ServerOptions& options,
                                                                ServerMetrics& metrics);
  ~StartupFrontend();

  int port() const { return port_; }
  // The phase calls are told about, e.g. "loading the index".
  void SetPhase(std::string phase);
  // Stops listening and closes the connections it has.
  void Stop();

 private:
  class Refuser : public grpc::CallbackGenericService {
   public:
    explicit Refuser(StartupFrontend* frontend) : frontend_(frontend) {}
    grpc::ServerGenericBidiReactor* CreateReactor(grpc::GenericCallbackServerContext*) override;

   private:
    StartupFrontend* frontend_;
  };

  StartupFrontend() : refuser_(this) {}
  std::string Phase();

  Refuser refuser_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  std::mutex mutex_;
  std::string phase_ = "starting";  // guarded by mutex_
};

}  // namespace hier::server
