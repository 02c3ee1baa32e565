// A channel to the hier server and the per-call settings every call shares: deadline and bearer
// token.
//
// Thread-safety: a Connection is immutable after Create; Prepare may be called from any thread.
#pragma once

#include <grpcpp/channel.h>
#include <grpcpp/client_context.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace hier::client {

struct ConnectionOptions {
  std::string server = "localhost:50051";
  std::string token;        // empty: no authorization metadata
  std::string tls_ca_file;  // PEM root certificates; empty: plaintext
  double timeout_seconds = 30;
};

class Connection {
 public:
  // Fails when the CA file cannot be read or the token or timeout is unusable. The channel
  // connects lazily, on the first call.
  static absl::StatusOr<Connection> Create(const ConnectionOptions& options);

  const std::shared_ptr<grpc::Channel>& channel() const { return channel_; }
  absl::Duration timeout() const { return timeout_; }

  // Sets the token and a deadline of now + timeout() on a fresh context.
  void Prepare(grpc::ClientContext* context) const { Prepare(context, timeout_); }
  // The same with another budget; absl::InfiniteDuration() sets no deadline (watch streams).
  void Prepare(grpc::ClientContext* context, absl::Duration budget) const;

 private:
  Connection(std::shared_ptr<grpc::Channel> channel, std::string authorization,
             absl::Duration timeout)
      : channel_(std::move(channel)), authorization_(std::move(authorization)), timeout_(timeout) {}

  std::shared_ptr<grpc::Channel> channel_;
  std::string authorization_;  // "Bearer <token>", or empty
  absl::Duration timeout_;
};

}  // namespace hier::client
