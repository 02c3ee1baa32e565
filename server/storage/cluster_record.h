// What a cluster's replicas agree on besides the items, kept in the store of record's base schema:
// which gallery serves and with which model (the serving record), the model swap in progress (one
// at a time, run by the replica that claimed it), how many shards split the gallery, and who is
// serving (the membership: one row per replica, kept fresh by its heartbeat; a router reads it).
// The cluster's counterpart of a state folder's serving.json (server/app/serving_record.h).
//
// Galleries: the first one is the base schema itself (gallery ""); a model swap writes the items'
// new vectors into a new schema (hier_gallery_<n>), then flips the serving record to it.
//
// Errors are the pool's (index/postgres_pool.h); a build without PostgreSQL answers Unimplemented.
// Thread-safety: every method may be called from many threads at once.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "index/item_store.h"
#include "index/shard.h"

namespace hier::server {

// The cluster's serving record.
struct ClusterServing {
  std::string gallery;        // the schema of the serving items; "" for the base schema
  std::string checkpoint;     // the model's checkpoint folder; "" for vectors only
  std::string model_version;  // its version ("" for vectors only)
};

// The cluster's model swap, as its runner last recorded it.
struct ClusterSwap {
  std::string owner;    // the replica that runs it
  std::string target;   // the model version it swaps to
  std::string gallery;  // the schema it fills
  std::string state;    // "running", "complete" or "failed"
  int64_t reembedded = 0;
  std::string error;               // why it failed
  int64_t heartbeat_unix_ms = 0;   // the runner's last sign of life
};

// A replica as it announces itself to routers (hier_members).
struct ClusterMember {
  std::string name;           // unique per process (host, pid, random part)
  std::string address;        // where a router reaches its gRPC port (host:port)
  index::ShardSpec shard;     // the items its index holds
  std::string model_version;  // the model it serves ("" for vectors only)
  // After a model swap, the model it still answers pinned searches with while other replicas
  // switch; "" when none.
  std::string previous_version;
  bool serving = false;       // its health answer: caught up with the store, within the lag bound
  int64_t items = 0;          // items in its index
  double heartbeat_age_seconds = 0;  // on reading: since its last heartbeat, by the store's clock
};

class ClusterRecord {
 public:
  // The prefix of the schemas model swaps create.
  static constexpr char kGalleryPrefix[] = "hier_gallery_";

  // Connects to the base schema of `location` (its schema field is ignored).
  static absl::StatusOr<std::unique_ptr<ClusterRecord>> Open(const index::StoreLocation& location);
  ~ClusterRecord();

  // None before the first replica recorded one (a new database).
  absl::StatusOr<std::optional<ClusterServing>> ReadServing() const;
  // Records `serving` unless a record exists; returns the record that holds.
  absl::StatusOr<ClusterServing> InitServing(const ClusterServing& serving);
  // Replaces the record (the flip that ends a model swap), in one transaction.
  absl::Status WriteServing(const ClusterServing& serving);

  // Records `swap` as the cluster's swap, unless another one is running and its runner gave a sign
  // of life within `stale_ms`; returns whether it did.
  absl::StatusOr<bool> ClaimSwap(const ClusterSwap& swap, int64_t stale_ms);
  // Rewrites the swap while `swap.owner` holds it (progress, heartbeat, end).
  absl::Status UpdateSwap(const ClusterSwap& swap);
  absl::StatusOr<std::optional<ClusterSwap>> ReadSwap() const;

  // Drops the galleries (schemas with kGalleryPrefix) other than `keep`: those of swaps that
  // failed or were replaced since. Returns how many went.
  absl::StatusOr<int64_t> DropGalleriesOtherThan(const std::string& keep);

  // The number of shards the gallery is split into: records `count` unless a number is recorded
  // (a new cluster) and returns the one that holds.
  absl::StatusOr<int> InitShardCount(int count);
  // The offline re-shard: records `count` whatever was recorded, but only while no replica has
  // given a heartbeat within `alive` (FailedPrecondition naming the live ones otherwise). Items
  // stay where they are: the store holds them all, each replica picks its shard's at start.
  absl::Status SetShardCount(int count, std::chrono::milliseconds alive);

  // Announces `member` (insert or refresh, heartbeat now) and forgets members silent for an hour.
  absl::Status Heartbeat(const ClusterMember& member);
  // Removes a member (a replica shutting down: routers stop sending it calls at once).
  absl::Status Leave(const std::string& name);
  // Every member with its heartbeat's age, by name; empty before any replica started.
  absl::StatusOr<std::vector<ClusterMember>> Members() const;

 private:
  struct Impl;  // the connection pool (PostgreSQL builds only)
  explicit ClusterRecord(std::unique_ptr<Impl> impl);

  const std::unique_ptr<Impl> impl_;
};

}  // namespace hier::server
