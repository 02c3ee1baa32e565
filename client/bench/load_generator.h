// Keeps a fixed number of calls in flight with gRPC's callback API and times every call, as fast
// as they complete or paced to a rate.
//
// Thread-safety: RunLoad blocks its caller while completions run on gRPC's threads. Each in-flight
// slot has at most one call outstanding (or one pacing alarm pending), so its state is touched by
// one callback at a time.
#pragma once

#include <grpcpp/client_context.h>
#include <grpcpp/support/status.h>

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace hier::client::bench {

// Starts call number `sequence` on `context` (prepared, fresh) and arranges for `done` to run once
// with its status. Must not block.
using StartCall = std::function<void(grpc::ClientContext* context, int64_t sequence,
                                     std::function<void(const grpc::Status&)> done)>;

struct LoadOptions {
  int in_flight = 8;
  int64_t requests = 0;                         // measured calls; 0: run for `duration`
  absl::Duration duration = absl::Seconds(10);  // measured time when requests is 0
  absl::Duration warmup = absl::Seconds(1);     // calls started before its end are not counted
  // When not empty, the run also ends once this file exists (e.g. another load has finished).
  std::string stop_file;
  // When positive, calls start at most this many per second over all slots, evenly spaced (a slot
  // whose turn has not come waits on a timer, never on a gRPC thread); a server slower than that
  // gets fewer, and the missed starts are not made up later.
  double rate = 0;
  std::function<void(grpc::ClientContext*)> prepare;  // deadline, token
};

struct LoadResult {
  int64_t requests = 0;  // measured calls, OK or not
  double seconds = 0;    // from the end of the warm-up to the last measured completion
  std::vector<double> ok_latencies_ms;         // one per measured OK call
  std::map<absl::StatusCode, int64_t> errors;  // measured failed calls by code
};

LoadResult RunLoad(const LoadOptions& options, const StartCall& start_call);

}  // namespace hier::client::bench
