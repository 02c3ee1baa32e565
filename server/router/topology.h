// What a router knows of its cluster: the replicas that announced themselves in the store's
// membership table (server/storage/cluster_record.h), one gRPC channel per replica, the shard
// count and the serving model's version. A thread re-reads it every `refresh`; calls take a
// consistent snapshot (TopologyView) and report replicas that failed them, which are then tried
// after their twins for a while.
//
// A member counts while its heartbeat is younger than `member_timeout` and it answers SERVING
// (caught up with the store, within its lag bound). The routed model version is the serving
// record's once every shard has such a member answering for it; during a model swap, until then,
// another version every shard still answers for (the old one: a replica that switched keeps the
// old gallery for pinned searches until every replica switched), so no answer mixes versions.
//
// Thread-safety: every method may be called from any thread.
#pragma once

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "hier/v1/hierarchy.grpc.pb.h"
#include "hier/v1/models.grpc.pb.h"
#include "hier/v1/retrieval.grpc.pb.h"
#include "hier/v1/training.grpc.pb.h"
#include "server/storage/cluster_record.h"

namespace hier::server {

// One replica as the router reaches it: kept while its address stays in the membership.
struct ReplicaLink {
  std::string address;
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<hier::v1::Retrieval::Stub> retrieval;
  std::unique_ptr<hier::v1::Models::Stub> models;
  std::unique_ptr<hier::v1::Training::Stub> training;
  std::unique_ptr<hier::v1::Hierarchy::Stub> hierarchy;
  // Steady-clock nanoseconds until which it is tried after the others: a call to it failed.
  std::atomic<int64_t> suspect_until_ns{0};

  void MarkFailed(std::chrono::milliseconds for_how_long);
  bool Suspected() const;
};

struct RouteMember {
  ClusterMember record;
  std::shared_ptr<ReplicaLink> link;
};

struct TopologyView {
  int shard_count = 0;               // 0 until a replica recorded one
  std::vector<RouteMember> members;  // live and SERVING
  // The routed model version (see the header comment); none without members. When not every
  // shard answers for it, some shards have no replica for this view.
  std::optional<std::string> version;
  std::string problem;  // why the membership could not be read, while it could not

  // The members of `shard` serving `version`: the unsuspected ones first, each group rotated by
  // `turn` (spreading calls over twins).
  std::vector<const RouteMember*> Replicas(int shard, const std::string& version,
                                           uint64_t turn) const;
  // "I/N" for shard I of this view.
  std::string ShardName(int shard) const;
  // Shards with a member answering for the routed version.
  int HealthyShards() const;
  // Why no version can be routed (no member): the problem reading the store, or the shards.
  std::string WhyUnavailable() const;
};

struct TopologyOptions {
  std::chrono::milliseconds refresh{500};
  std::chrono::milliseconds member_timeout{3000};
  int64_t max_message_bytes = 64 << 20;
};

class Topology {
 public:
  // Reads the membership once before returning (a store it cannot reach leaves the view empty,
  // with the problem, and the thread keeps trying). `on_refresh` runs after every read.
  Topology(std::unique_ptr<ClusterRecord> record, TopologyOptions options,
           std::function<void(const TopologyView&)> on_refresh);
  ~Topology();
  Topology(const Topology&) = delete;
  Topology& operator=(const Topology&) = delete;

  std::shared_ptr<const TopologyView> View() const;
  // Reads the membership now (a call that found the view stale), then returns the new view.
  std::shared_ptr<const TopologyView> Refresh();

 private:
  void Run();
  std::shared_ptr<ReplicaLink> LinkFor(const std::string& address);

  const std::unique_ptr<ClusterRecord> record_;
  const TopologyOptions options_;
  const std::function<void(const TopologyView&)> on_refresh_;
  std::mutex refresh_mutex_;  // one refresh at a time; guards links_
  std::map<std::string, std::shared_ptr<ReplicaLink>> links_;  // by address
  mutable std::mutex view_mutex_;
  std::shared_ptr<const TopologyView> view_;  // guarded by view_mutex_
  std::mutex stop_mutex_;
  std::condition_variable stop_cv_;
  bool stopping_ = false;  // guarded by stop_mutex_
  std::thread thread_;
};

}  // namespace hier::server
