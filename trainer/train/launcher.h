// `hier-train --nproc N`: runs N copies of this program as the ranks of one data-parallel job on
// this machine and supervises them, so that one failed rank ends the whole job with a message
// naming it instead of leaving the others waiting.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace hier::train {

struct LaunchOptions {
  int64_t nproc = 2;
  std::string program = "/proc/self/exe";
  std::vector<std::string> args;  // argv[1...] of every rank
  // After one rank fails, the others get SIGTERM, then SIGKILL once this has passed.
  std::chrono::milliseconds grace{10000};
};

struct LaunchResult {
  int exit_code = 0;    // 0: all ranks finished; 3: stopped on request; else the failure's code
  std::string message;  // what went wrong, naming the rank; empty on success
};

// A TCP port on 127.0.0.1 that nothing listens on right now (the kernel's pick for port 0).
int FreeLoopbackPort();

// Starts the ranks with RANK, LOCAL_RANK, WORLD_SIZE, MASTER_ADDR=127.0.0.1 and a free
// MASTER_PORT set, and waits for them. When `*stop` becomes true, every rank gets SIGTERM (they
// checkpoint and exit 3). Ranks die with the launcher (PR_SET_PDEATHSIG).
LaunchResult LaunchLocalRanks(const LaunchOptions& options, const std::atomic<bool>* stop);

}  // namespace hier::train
