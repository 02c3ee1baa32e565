// `hier health`: grpc.health.v1.Health/Check; exit 0 only when the server is SERVING.
#pragma once

#include <memory>

#include "client/cli/command.h"

namespace hier::client::cli {

std::unique_ptr<Command> NewHealthCommand();

}  // namespace hier::client::cli
