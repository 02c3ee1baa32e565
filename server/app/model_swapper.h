// Hot swap of the serving model: the new model re-embeds every stored source image into a new
// gallery in the background, catches up with the writes made meanwhile, and then model and gallery
// go live together; searches are served by the old pair until that moment.
//
// A cluster (a ClusterRecord given): one swap runs at a time for the whole cluster, on the replica
// that claimed it in the cluster record. It fills a new gallery schema of the shared database,
// seals the old gallery (writes to it fail ABORTED, to be sent again), takes the last changes,
// and flips the cluster's serving record. Every other replica follows (FollowCluster): it loads
// the new model and gallery beside the old pair, which serves until the new one is ready, and
// switches both at once, so no response mixes two models.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "index/hyperbolic_index.h"
#include "server/app/serving_record.h"
#include "server/metrics/server_metrics.h"
#include "server/model/serving_slot.h"
#include "server/storage/blob_store.h"
#include "server/storage/cluster_record.h"

namespace hier::server {

struct SwapOptions {
  std::string state_dir;
  index::IndexOptions index;  // threads, max_k, ...; dim and c come from the model, the kind from
                              // the serving gallery
  BatchingOptions batching;
  int64_t images_per_batch = 64;  // images re-embedded per forward call
  int64_t max_pixels = 40'000'000;
  // A cluster: the store of record's base location (galleries are schemas of its database), the
  // shard this replica's index holds, this replica's name in the swap record, and the gallery it
  // serves at start. A swap re-embeds every shard's items; each replica then loads its own.
  index::StoreLocation store;
  index::ShardSpec shard;
  std::string replica;
  std::string gallery;
};

// Where the latest swap stands.
struct SwapStatus {
  std::string target;      // the version being (or last) swapped to
  int64_t reembedded = 0;  // items re-embedded so far
  bool running = false;
  bool complete = false;  // it went live
  absl::Status error;     // why it failed
};

class ModelSwapper {
 public:
  // `serving`, `blobs`, `metrics` and `cluster` must outlive the swapper; `cluster` is null on
  // one machine.
  ModelSwapper(ServingSlot* serving, const BlobStore* blobs, ServerMetrics* metrics,
               SwapOptions options, ClusterRecord* cluster = nullptr);
  ~ModelSwapper();  // waits for a swap in progress

  // Loads the checkpoint (errors come back at once) and swaps to it in the background; with
  // `wait`, returns when the swap is complete or has failed, or at `wait_until` (still running).
  // FailedPrecondition while another swap runs or after Stop. A background swap that fails is
  // reported by status() and on stderr (the server's log).
  absl::StatusOr<SwapStatus> Swap(const std::string& checkpoint_dir, bool wait,
                                  std::chrono::steady_clock::time_point wait_until =
                                      std::chrono::steady_clock::time_point::max());

  // Where the latest swap stands (an empty target: none since the server started); in a cluster,
  // the cluster's latest swap, wherever it runs.
  SwapStatus status() const;

  // A cluster: when the serving record names another gallery than this replica serves, loads its
  // model and gallery (the old pair serving meanwhile) and switches to them. Called periodically.
  absl::Status FollowCluster();

  // Refuses new swaps, makes one in progress give up (its new gallery is removed; the old pair
  // keeps serving) and waits for it. Called when the server stops.
  void Stop();

  // Removes gallery folders no serving record names (left by a swap a crash cut short).
  static void RemoveStrayGalleries(const std::string& state_dir, const std::string& serving);

 private:
  // FailedPrecondition while a swap runs or after Stop (mutex_ held).
  absl::Status IdleLocked() const;
  // Writes serving.json; OK also when only a step after its rename failed.
  absl::Status PublishRecord(const ServingRecord& record) const;
  // Builds the new gallery and makes it serve; the old pair keeps serving on failure.
  absl::Status Run(std::shared_ptr<ServingModel> model, const std::string& checkpoint_dir,
                   const std::string& gallery);
  // The options of the Collection of `gallery` for `model` (a folder of the state folder, or in a
  // cluster a schema of the shared database with a local snapshot folder).
  index::CollectionOptions GalleryOptions(const ServingModel& model, const std::string& gallery,
                                          const std::string& kind) const;
  // A cluster: makes `pair` serve as gallery `gallery` and removes the previous gallery's local
  // snapshot folder.
  void ServeClusterGallery(const Serving& pair, const std::string& gallery);
  // A cluster: records the swap's progress or end (a failure to record is logged).
  void RecordSwap(const std::string& state, const std::string& error = "");

  ServingSlot* const serving_;
  const BlobStore* const blobs_;
  ServerMetrics* const metrics_;
  const SwapOptions options_;
  ClusterRecord* const cluster_;

  mutable std::mutex mutex_;
  std::condition_variable finished_;    // a swap ended (status_.running turned false)
  SwapStatus status_;                   // guarded by mutex_
  std::string gallery_;                 // a cluster: the gallery served; guarded by mutex_
  std::string swap_gallery_;            // a cluster: the one the running swap fills; mutex_
  int64_t recorded_at_ms_ = 0;          // a cluster: the swap record's last heartbeat; mutex_
  bool stopped_ = false;                // guarded by mutex_
  std::atomic<bool> cancelled_{false};  // the swap in progress should give up
  std::thread worker_;
};

}  // namespace hier::server
