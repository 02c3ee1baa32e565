// What serves at any moment — the model and the gallery its vectors came from — held so that a
// hot swap replaces both at once while calls in flight keep the pair they started with. In a
// cluster the replaced pair can stay a while (the previous pair), answering searches pinned to
// its model version, so a router finds every shard still answering for the version it routes
// while the replicas switch one by one.
#pragma once

#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>

#include "absl/synchronization/mutex.h"
#include "index/collection.h"
#include "server/model/serving_model.h"

namespace hier::server {

struct Serving {
  std::shared_ptr<ServingModel> model;  // null until a model is loaded
  std::shared_ptr<index::Collection> collection;

  // The model's version; "" for vectors only.
  std::string version() const { return model ? model->description().version : std::string(); }
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
  // Replaces the pair, keeping the replaced one as the previous pair (until DropPrevious).
  void SetKeepingPrevious(Serving serving) {
    std::lock_guard<std::mutex> lock(mutex_);
    previous_ = std::exchange(serving_, std::move(serving));
  }
  void DropPrevious() {
    std::lock_guard<std::mutex> lock(mutex_);
    previous_.reset();
  }
  // The pair serving model `version`: the current one, else the previous one; none if neither.
  std::optional<Serving> Get(const std::string& version) const {
    std::lock_guard<std::mutex> lock(mutex_);
    if (serving_.version() == version) return serving_;
    if (previous_.has_value() && previous_->version() == version) return previous_;
    return std::nullopt;
  }
  // The previous pair's model version, while one is kept.
  std::optional<std::string> previous_version() const {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!previous_.has_value()) return std::nullopt;
    return previous_->version();
  }

  // Writes to the serving gallery hold it as readers (taken before Get); a swap holds it as the
  // writer for its last catch-up, so no write lands in a gallery that is being replaced. Writer
  // priority: a stream of writes cannot hold a swap off.
  absl::Mutex& write_gate() { return write_gate_; }

 private:
  mutable std::mutex mutex_;
  Serving serving_;                  // guarded by mutex_
  std::optional<Serving> previous_;  // guarded by mutex_
  absl::Mutex write_gate_;
};

}  // namespace hier::server
