// What serves at any moment — the model and the gallery its vectors came from — held so that a
// hot swap replaces both at once while calls in flight keep the pair they started with.
#pragma once

#include <memory>
#include <mutex>

#include "absl/synchronization/mutex.h"
#include "index/collection.h"
#include "server/model/serving_model.h"

namespace hier::server {

struct Serving {
  std::shared_ptr<ServingModel> model;  // null until a model is loaded
  std::shared_ptr<index::Collection> collection;
};

class ServingSlot {
 public:
  Serving Get() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return serving_;
  }
  void Set(Serving serving) {
    std::lock_guard<std::mutex> lock(mutex_);
    serving_ = std::move(serving);
  }

  // Writes to the serving gallery hold it as readers (taken before Get); a swap holds it as the
  // writer for its last catch-up, so no write lands in a gallery that is being replaced. Writer
  // priority: a stream of writes cannot hold a swap off.
  absl::Mutex& write_gate() { return write_gate_; }

 private:
  mutable std::mutex mutex_;
  Serving serving_;  // guarded by mutex_
  absl::Mutex write_gate_;
};

}  // namespace hier::server
