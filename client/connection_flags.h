// The connection flags both tools take (--server, --token, --tls-ca, --timeout).
#pragma once

#include "absl/status/statusor.h"
#include "client/connection.h"
#include "client/flag_set.h"

namespace hier::client {

// Binds the flags to `options`.
void AddConnectionFlags(FlagSet* flags, ConnectionOptions* options);

// After parsing: takes the token from $HIER_TOKEN when --token was not given, then connects.
absl::StatusOr<Connection> ConnectWithFlags(const FlagSet& flags, ConnectionOptions options);

}  // namespace hier::client
