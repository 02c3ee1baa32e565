#include "client/connection_flags.h"

#include <cstdlib>
#include <utility>

namespace hier::client {

void AddConnectionFlags(FlagSet* flags, ConnectionOptions* options) {
  flags->AddString("server", &options->server, "HOST:PORT", "the hier server");
  flags->AddString("token", &options->token, "TOKEN",
                   "bearer token sent as 'authorization: Bearer TOKEN' (default $HIER_TOKEN)");
  flags->AddString("tls-ca", &options->tls_ca_file, "PEM",
                   "root certificates; when given, connect with TLS");
  flags->AddDouble("timeout", &options->timeout_seconds, "SECONDS", "deadline of each call");
}

absl::StatusOr<Connection> ConnectWithFlags(const FlagSet& flags, ConnectionOptions options) {
  if (!flags.IsSet("token")) {
    if (const char* token = std::getenv("HIER_TOKEN")) options.token = token;
  }
  return Connection::Create(options);
}

}  // namespace hier::client
