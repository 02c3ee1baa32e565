// Searches of a gallery split into shards, answered as one node holding every item would answer
// them: the query's point first (a query by image is embedded, and one by item id looked up, on
// one shard, which also answers for its own items), then every other shard's nearest to that
// point, all at once, merged by distance (ties by id) into the k nearest. Label filters and
// ancestors are each shard's, as on one node; when no shard holds an item (with the label) the
// answer is the one-node error.
//
// Every part of one answer comes from the same model version, the topology's routed one (or the
// caller's SearchRequest.model_version): each shard's part is pinned to it. A shard that answers
// with another anyway makes the search start again from a fresh view, at most kMaxPlans times. A shard with no replica that answers fails the
// search UNAVAILABLE naming the shard, unless the query allows partial answers (then the shard is
// listed in missing_shards).
//
// Thread-safety: Answer may be called from any thread.
#pragma once

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "hier/v1/retrieval.pb.h"
#include "server/router/replica_calls.h"
#include "server/router/topology.h"

namespace hier::server {

class RoutedSearch {
 public:
  RoutedSearch(Topology* topology, ReplicaCalls* calls);

  // Answers `queries` into `responses` (one each). `batch`: errors name queries[i] (SearchBatch);
  // else they name the fields as Search does.
  absl::Status Answer(const CallerContext& caller,
                      const std::vector<const hier::v1::SearchRequest*>& queries, bool batch,
                      std::vector<hier::v1::SearchResponse>* responses);

 private:
  Topology* const topology_;
  ReplicaCalls* const calls_;
  std::atomic<uint64_t> turn_{0};  // rotates the anchors of queries by image
};

}  // namespace hier::server
