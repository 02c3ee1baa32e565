#include "server/app/startup_frontend.h"

#include <grpcpp/health_check_service_interface.h>

#include <chrono>
#include <utility>

#include "absl/strings/str_cat.h"
#include "server/app/grpc_frontend.h"

namespace hier::server {
namespace {

// Ends a call at once with UNAVAILABLE, which clients retry.
class RefusedCall : public grpc::ServerGenericBidiReactor {
 public:
  explicit RefusedCall(const std::string& phase) {
    Finish(grpc::Status(grpc::StatusCode::UNAVAILABLE,
                        absl::StrCat("hier-server is starting (", phase,
                                     "); health answers SERVING when it is ready")));
  }
  void OnDone() override { delete this; }
};

}  // namespace

absl::StatusOr<std::unique_ptr<StartupFrontend>> StartupFrontend::Start(
    const ServerOptions& options, ServerMetrics& metrics) {
  std::unique_ptr<StartupFrontend> frontend(new StartupFrontend());
  absl::StatusOr<std::unique_ptr<grpc::Server>> server =
      StartGrpcFrontend(options, {}, metrics, &frontend->port_, &frontend->refuser_);
  if (!server.ok()) return server.status();
  frontend->server_ = *std::move(server);
  frontend->server_->GetHealthCheckService()->SetServingStatus(false);
  return frontend;
}

StartupFrontend::~StartupFrontend() { Stop(); }

void StartupFrontend::SetPhase(std::string phase) {
  std::lock_guard<std::mutex> lock(mutex_);
  phase_ = std::move(phase);
}

std::string StartupFrontend::Phase() {
  std::lock_guard<std::mutex> lock(mutex_);
  return phase_;
}

void StartupFrontend::Stop() {
  if (server_ == nullptr) return;
  server_->Shutdown(std::chrono::system_clock::now());
  server_->Wait();
  server_.reset();
}

grpc::ServerGenericBidiReactor* StartupFrontend::Refuser::CreateReactor(
    grpc::GenericCallbackServerContext*) {
  return new RefusedCall(frontend_->Phase());
}

}  // namespace hier::server
