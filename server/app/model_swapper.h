// Hot swap of the serving model: the new model re-embeds every stored source image into a new
// gallery in the background, catches up with the writes made meanwhile, and then model and gallery
// go live together; searches are served by the old pair until that moment.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "index/hyperbolic_index.h"
#include "server/metrics/server_metrics.h"
#include "server/model/serving_slot.h"
#include "server/storage/blob_store.h"

namespace hier::server {

struct SwapOptions {
  std::string state_dir;
  index::IndexOptions index;  // threads, max_k, ...; dim and c come from the model, the kind from
                              // the serving gallery
  BatchingOptions batching;
  int64_t images_per_batch = 64;  // images re-embedded per forward call
  int64_t max_pixels = 40'000'000;
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
  // `serving`, `blobs` and `metrics` must outlive the swapper.
  ModelSwapper(ServingSlot* serving, const BlobStore* blobs, ServerMetrics* metrics,
               SwapOptions options);
  ~ModelSwapper();  // waits for a swap in progress

  // Loads the checkpoint (errors come back at once) and swaps to it in the background; with
  // `wait`, returns when the swap is complete or has failed. FailedPrecondition while another
  // swap runs.
  absl::StatusOr<SwapStatus> Swap(const std::string& checkpoint_dir, bool wait);
  SwapStatus status() const;

 private:
  // FailedPrecondition while a swap runs (mutex_ held).
  absl::Status IdleLocked() const;
  // Builds the new gallery and makes it serve; the old pair keeps serving on failure.
  absl::Status Run(std::shared_ptr<ServingModel> model, const std::string& checkpoint_dir);

  ServingSlot* const serving_;
  const BlobStore* const blobs_;
  ServerMetrics* const metrics_;
  const SwapOptions options_;

  mutable std::mutex mutex_;
  std::condition_variable finished_;  // a swap ended (status_.running turned false)
  SwapStatus status_;                 // guarded by mutex_
  std::thread worker_;
};

}  // namespace hier::server
