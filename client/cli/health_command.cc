#include "client/cli/health_command.h"

#include "absl/strings/str_cat.h"
#include "client/json_output.h"
#include "client/unary_call.h"
#include "grpc/health/v1/health.grpc.pb.h"

namespace hier::client::cli {
namespace {

using grpc::health::v1::Health;
using grpc::health::v1::HealthCheckRequest;
using grpc::health::v1::HealthCheckResponse;

class HealthCommand : public Command {
 public:
  void AddFlags(FlagSet* flags) override {
    flags->AddString("service", &service_, "NAME", "service to check; empty: the whole server");
  }

  absl::Status SetArgs(const std::vector<std::string>& args, const FlagSet& flags) override {
    if (!args.empty()) return absl::InvalidArgumentError("health takes no arguments");
    return absl::OkStatus();
  }

  absl::StatusOr<int> Run(const CommandEnv& env) override {
    auto stub = Health::NewStub(env.connection->channel());
    HealthCheckRequest request;
    request.set_service(service_);
    absl::StatusOr<HealthCheckResponse> response =
        UnaryCall(*env.connection, stub.get(), &Health::Stub::Check, request);
    if (!response.ok()) return response.status();
    const std::string status = HealthCheckResponse::ServingStatus_Name(response->status());
    if (env.json) {
      *env.out << DumpJson({{"status", status}}) << "\n";
    } else {
      *env.out << status << "\n";
    }
    return response->status() == HealthCheckResponse::SERVING ? 0 : 1;
  }

 private:
  std::string service_;
};

}  // namespace

std::unique_ptr<Command> NewHealthCommand() { return std::make_unique<HealthCommand>(); }

}  // namespace hier::client::cli
