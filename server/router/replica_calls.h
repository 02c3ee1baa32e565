// How a router talks to replicas: a caller's authorization and deadline carried over to each call,
// one call sent to some serving replica (another one tried when it fails without having taken
// the call), and many searches sent to many shards at once, each retried on its shard's twins.
//
// Retries: a call that failed with UNAVAILABLE, DEADLINE_EXCEEDED, ABORTED, INTERNAL, UNKNOWN or
// CANCELLED goes to the shard's next replica within the deadline; the failed replica is tried
// after its twins for kSuspectFor. Each try may take half of the time left while another replica
// remains, all of it otherwise. Other codes (bad input, NOT_FOUND, ...) are the answer. A shard's
// search answered ABORTED (the pinned model version is no longer served there) is not retried
// but marked moved, like an answer from another version.
//
// Thread-safety: every method may be called from any thread.
#pragma once

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "hier/v1/retrieval.grpc.pb.h"
#include "server/metrics/router_metrics.h"
#include "server/router/topology.h"

namespace hier::server {

// A replica that failed a call is tried after its twins this long.
inline constexpr std::chrono::milliseconds kSuspectFor{2000};

// What a router's call to a replica carries over from the caller's call.
struct CallerContext {
  std::string authorization;  // the caller's "authorization" metadata, if any
  // When the router must have answered: the caller's deadline less a margin to reply in.
  std::chrono::steady_clock::time_point deadline;

  static CallerContext From(const grpc::ServerContext& context);
  // A client context for one try ending at `try_deadline`.
  void Prepare(grpc::ClientContext* context,
               std::chrono::steady_clock::time_point try_deadline) const;
};

// Whether a replica's failure with `code` lets another replica take the call.
bool IsRetryable(grpc::StatusCode code);

// One search sent to one shard, and its outcome.
struct ShardCall {
  int shard = 0;
  hier::v1::SearchRequest request;
  hier::v1::SearchResponse response;
  absl::Status status;     // OK with `response`, else the answer or why no replica answered
  bool unanswered = false;  // no replica of the shard answered (status is UNAVAILABLE)
  // Answered with another model version than the routed one, or ABORTED: not serving it any more.
  bool moved = false;
};

class ReplicaCalls {
 public:
  ReplicaCalls(Topology* topology, RouterMetrics* metrics);

  // Runs `calls` at once on replicas of their shards serving `version`, retrying as the header
  // says, until each is answered or the caller's deadline.
  void Search(const TopologyView& view, const std::string& version, const CallerContext& caller,
              std::vector<ShardCall>* calls);

  // Sends one call (`send`, e.g. a stub method on the given link) to a serving replica of
  // `shard` (-1: any shard) at the routed version (any version when none can be routed). With
  // `retry`, a retryable failure moves on to the next replica; without, the first answer is final
  // (calls that must not run twice). UNAVAILABLE naming the cluster's state when no replica fits.
  absl::Status OnReplica(const CallerContext& caller, int shard, bool retry,
                         const std::function<grpc::Status(ReplicaLink& link,
                                                          grpc::ClientContext* context)>& send);

 private:
  Topology* const topology_;
  RouterMetrics* const metrics_;
  std::atomic<uint64_t> turn_{0};  // rotates calls over twins
};

}  // namespace hier::server
