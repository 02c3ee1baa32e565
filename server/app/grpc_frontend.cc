#include "server/app/grpc_frontend.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/resource_quota.h>

#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "trainer/io/atomic_file.h"

namespace hier::server {
namespace {

absl::StatusOr<std::string> ReadPem(const std::string& path, const char* flag) {
  try {
    return io::ReadFile(path);
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(flag, ": ", e.what()));
  }
}

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> Credentials(const ServerOptions& options) {
  if (options.tls_cert.empty() != options.tls_key.empty()) {
    return absl::InvalidArgumentError("--tls-cert, --tls-key: give both or neither");
  }
  if (options.tls_cert.empty()) return grpc::InsecureServerCredentials();
  absl::StatusOr<std::string> cert = ReadPem(options.tls_cert, "--tls-cert");
  if (!cert.ok()) return cert.status();
  absl::StatusOr<std::string> key = ReadPem(options.tls_key, "--tls-key");
  if (!key.ok()) return key.status();
  grpc::SslServerCredentialsOptions ssl;
  ssl.pem_key_cert_pairs.push_back({*key, *cert});
  return grpc::SslServerCredentials(ssl);
}

}  // namespace

absl::StatusOr<std::unique_ptr<grpc::Server>> StartGrpcFrontend(
    const ServerOptions& options, const std::vector<grpc::Service*>& services,
    ServerMetrics& metrics, int* port, grpc::CallbackGenericService* unmatched) {
  absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> credentials = Credentials(options);
  if (!credentials.ok()) return credentials.status();
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  builder.AddListeningPort(options.listen, *credentials, port);
  builder.SetMaxReceiveMessageSize(static_cast<int>(options.max_message_bytes));
  builder.SetMaxSendMessageSize(static_cast<int>(options.max_message_bytes));
  if (options.grpc_threads > 0) {
    grpc::ResourceQuota quota("hier-server");
    quota.SetMaxThreads(options.grpc_threads);
    builder.SetResourceQuota(quota);
  }
  for (grpc::Service* service : services) builder.RegisterService(service);
  if (unmatched != nullptr) builder.RegisterCallbackGenericService(unmatched);
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> interceptors;
  interceptors.push_back(metrics.MakeInterceptorFactory());
  builder.experimental().SetInterceptorCreators(std::move(interceptors));
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || *port == 0) {
    return absl::UnavailableError(
        absl::StrCat("--listen: cannot listen on ", options.listen, " (in use or not an address)"));
  }
  return server;
}

}  // namespace hier::server
