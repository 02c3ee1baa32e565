#include "server/app/model_swapper.h"

#include <chrono>
#include <filesystem>
#include <functional>
#include <optional>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "server/app/serving_record.h"
#include "server/metrics/event_log.h"

namespace hier::server {
namespace fs = std::filesystem;

namespace {

int64_t NowUnixMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// A fresh gallery name: the time in milliseconds makes it unique and ordered. In a cluster it is
// a schema name of the shared database.
std::string NewGalleryName(bool cluster) {
  return absl::StrCat(cluster ? ClusterRecord::kGalleryPrefix : "gallery-", NowUnixMs());
}

// A cluster swap whose runner recorded nothing for this long gives way to a new one.
constexpr int64_t kStaleSwapMs = 60000;
// How often the runner of a cluster swap records its progress (its sign of life).
constexpr int64_t kSwapHeartbeatMs = 5000;

// Copies the old gallery's items into the new one, re-embedding their stored images, one batch
// of images per forward call.
class GalleryCopier {
 public:
  GalleryCopier(const Serving& old_pair, const Serving& new_pair, const BlobStore& blobs,
                const SwapOptions& options, const std::atomic<bool>& cancelled,
                std::function<void(int64_t)> on_reembedded)
      : old_(old_pair),
        new_(new_pair),
        blobs_(blobs),
        options_(options),
        cancelled_(cancelled),
        on_reembedded_(std::move(on_reembedded)) {}

  // Applies every change after `after_seq`, counting them in `changes`; returns the last seq
  // applied (after_seq if none). Cancelled once the swap is told to give up.
  absl::StatusOr<int64_t> CopyChangesAfter(int64_t after_seq, int64_t* changes) {
    int64_t last = after_seq;
    *changes = 0;
    absl::Status walked =
        old_.collection->ForEachChangeAfter(after_seq, [&](const index::ItemChange& change) {
          if (cancelled_) return absl::CancelledError("the server is stopping");
          last = change.seq;
          ++*changes;
          return change.deleted ? Remove(change.item.id) : Queue(change.item);
        });
    if (walked.ok()) walked = Flush();
    if (!walked.ok()) return walked;
    return last;
  }

 private:
  absl::Status Queue(const index::ItemRecord& item) {
    if (item.image_sha256.empty()) {
      return absl::FailedPreconditionError(
          absl::StrCat("items: item ", item.id,
                       " was added as a vector, which another model cannot "
                       "re-embed; delete such items first (or keep the serving model)"));
    }
    absl::StatusOr<std::string> image = blobs_.Get(item.image_sha256);
    if (!image.ok()) return image.status();
    pending_.push_back(item);
    images_.push_back(*std::move(image));
    return pending_.size() >= static_cast<size_t>(options_.images_per_batch) ? Flush()
                                                                             : absl::OkStatus();
  }

  absl::Status Remove(int64_t id) {
    if (absl::Status flushed = Flush(); !flushed.ok()) return flushed;
    if (!new_.collection->Get(id).ok()) return absl::OkStatus();  // never copied
    return new_.collection->Delete({id}).status();
  }

  absl::Status Flush() {
    if (pending_.empty()) return absl::OkStatus();
    std::vector<EncodedImage> images;
    for (size_t i = 0; i < pending_.size(); ++i) {
      images.push_back({&images_[i], absl::StrCat("item ", pending_[i].id)});
    }
    absl::StatusOr<std::vector<float>> points = new_.model->EmbedImages(
        images, options_.max_pixels, std::chrono::steady_clock::now() + std::chrono::hours(1));
    if (!points.ok()) return points.status();
    const int64_t dim = new_.model->description().dim;
    for (size_t i = 0; i < pending_.size(); ++i) {
      pending_[i].vector.assign(points->begin() + i * dim, points->begin() + (i + 1) * dim);
      pending_[i].model_version = new_.model->description().version;
    }
    absl::StatusOr<int64_t> written = new_.collection->Upsert(pending_);
    if (!written.ok()) return written.status();
    on_reembedded_(static_cast<int64_t>(pending_.size()));
    pending_.clear();
    images_.clear();
    return absl::OkStatus();
  }

  const Serving& old_;
  const Serving& new_;
  const BlobStore& blobs_;
  const SwapOptions& options_;
  const std::atomic<bool>& cancelled_;
  const std::function<void(int64_t)> on_reembedded_;
  std::vector<index::ItemRecord> pending_;
  std::vector<std::string> images_;
};

}  // namespace

absl::Status ModelSwapper::PublishRecord(const ServingRecord& record) const {
  const absl::Status written = WriteServingRecord(options_.state_dir, record);
  if (written.ok()) return written;
  // The rename may have landed before a later step (the directory's fsync) failed: then the new
  // gallery is what the next start serves, and it must stay.
  absl::StatusOr<std::optional<ServingRecord>> now = ReadServingRecord(options_.state_dir);
  const bool landed = now.ok() && now->has_value() && (*now)->gallery == record.gallery;
  return landed ? absl::OkStatus() : written;
}

void ModelSwapper::RemoveStrayGalleries(const std::string& state_dir, const std::string& serving) {
  std::error_code error;
  const fs::path galleries = fs::path(GalleryPath(state_dir, serving)).parent_path();
  for (const auto& entry : fs::directory_iterator(galleries, error)) {
    if (entry.path().filename() != serving) fs::remove_all(entry.path(), error);
  }
}

void ModelSwapper::Stop() {
  std::unique_lock<std::mutex> lock(mutex_);
  stopped_ = true;
  cancelled_ = true;
  finished_.wait(lock, [this] { return !status_.running; });
}

ModelSwapper::ModelSwapper(ServingSlot* serving, const BlobStore* blobs, ServerMetrics* metrics,
                           SwapOptions options, ClusterRecord* cluster)
    : serving_(serving),
      blobs_(blobs),
      metrics_(metrics),
      options_(std::move(options)),
      cluster_(cluster),
      gallery_(options_.gallery) {}

ModelSwapper::~ModelSwapper() {
  if (worker_.joinable()) worker_.join();
}

SwapStatus ModelSwapper::status() const {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (cluster_ == nullptr || status_.running) return status_;
  }
  absl::StatusOr<std::optional<ClusterSwap>> swap = cluster_->ReadSwap();
  if (!swap.ok() || !swap->has_value()) {
    std::lock_guard<std::mutex> lock(mutex_);
    return status_;
  }
  SwapStatus status;
  status.target = (*swap)->target;
  status.reembedded = (*swap)->reembedded;
  status.running = (*swap)->state == "running";
  status.complete = (*swap)->state == "complete";
  if ((*swap)->state == "failed") status.error = absl::AbortedError((*swap)->error);
  return status;
}

void ModelSwapper::RecordSwap(const std::string& state, const std::string& error) {
  ClusterSwap swap;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    swap = {options_.replica, status_.target, swap_gallery_, state, status_.reembedded, error,
            NowUnixMs()};
    recorded_at_ms_ = swap.heartbeat_unix_ms;
  }
  if (absl::Status recorded = cluster_->UpdateSwap(swap); !recorded.ok()) {
    LogEvent(LogLevel::kWarning, "swap",
             absl::StrCat("the swap's progress was not recorded: ", recorded.ToString()));
  }
}

index::CollectionOptions ModelSwapper::GalleryOptions(const ServingModel& model,
                                                      const std::string& gallery,
                                                      const std::string& kind) const {
  index::CollectionOptions collection_options;
  collection_options.directory = GalleryPath(options_.state_dir, gallery);
  if (cluster_ != nullptr) {
    collection_options.store = options_.store;
    collection_options.store.schema = gallery;
    collection_options.shard = options_.shard;
  }
  collection_options.index = options_.index;
  collection_options.index.dim = model.description().dim;
  collection_options.index.c = model.description().c;
  collection_options.index.candidates.kind = kind;
  return collection_options;
}

void ModelSwapper::ServeClusterGallery(const Serving& pair, const std::string& gallery) {
  // Other replicas switch one by one: the old pair answers searches pinned to its version until
  // every replica serves the new one (ReleasePreviousWhenCaughtUp).
  serving_->SetKeepingPrevious(pair);
  std::string previous;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    previous = std::exchange(gallery_, gallery);
  }
  // The previous gallery's local snapshot; calls still using it keep their open handles.
  std::error_code ignored;
  fs::remove_all(GalleryPath(options_.state_dir, previous), ignored);
}

absl::Status ModelSwapper::FollowCluster() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (cluster_ == nullptr || status_.running || stopped_) return absl::OkStatus();
  }
  absl::StatusOr<std::optional<ClusterServing>> record = cluster_->ReadServing();
  if (!record.ok()) return record.status();
  if (!record->has_value()) return absl::OkStatus();
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if ((*record)->gallery == gallery_) return absl::OkStatus();
  }
  ServerMetrics* metrics = metrics_;
  absl::StatusOr<std::shared_ptr<ServingModel>> model =
      ServingModel::Load((*record)->checkpoint, options_.batching,
                         [metrics](int64_t images) { metrics->ObserveEmbedBatch(images); });
  if (!model.ok()) return model.status();
  const Serving old_pair = serving_->Get();
  absl::StatusOr<std::unique_ptr<index::Collection>> collection = index::Collection::Open(
      GalleryOptions(**model, (*record)->gallery, old_pair.collection->kind()));
  if (!collection.ok()) return collection.status();
  ServeClusterGallery({*model, std::shared_ptr<index::Collection>(*std::move(collection))},
                      (*record)->gallery);
  metrics_->SetServingModel((*model)->description().version);
  LogEvent(LogLevel::kInfo, "swap",
           absl::StrCat("serving ", (*model)->description().version, " (the cluster's model swap)"),
           {{"state", "complete"}, {"version", (*model)->description().version}});
  return absl::OkStatus();
}

absl::Status ModelSwapper::IdleLocked() const {
  if (stopped_) return absl::FailedPreconditionError("version: the server is stopping");
  if (!status_.running) return absl::OkStatus();
  return absl::FailedPreconditionError(
      absl::StrCat("version: a swap to ", status_.target, " is in progress"));
}

absl::StatusOr<SwapStatus> ModelSwapper::Swap(const std::string& checkpoint_dir, bool wait,
                                              std::chrono::steady_clock::time_point wait_until) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (absl::Status idle = IdleLocked(); !idle.ok()) return idle;
  }
  ServerMetrics* metrics = metrics_;
  absl::StatusOr<std::shared_ptr<ServingModel>> model =
      ServingModel::Load(checkpoint_dir, options_.batching,
                         [metrics](int64_t images) { metrics->ObserveEmbedBatch(images); });
  if (!model.ok()) return model.status();
  const std::string gallery = NewGalleryName(cluster_ != nullptr);
  ClusterSwap claim{options_.replica, (*model)->description().version, gallery, "running", 0, "",
                    NowUnixMs()};
  if (cluster_ != nullptr) {
    // One swap at a time in the whole cluster.
    absl::StatusOr<bool> claimed = cluster_->ClaimSwap(claim, kStaleSwapMs);
    if (!claimed.ok()) return claimed.status();
    if (!*claimed) {
      absl::StatusOr<std::optional<ClusterSwap>> running = cluster_->ReadSwap();
      return absl::FailedPreconditionError(absl::StrCat(
          "version: a swap to ", running.ok() && running->has_value() ? (*running)->target : "?",
          " is in progress on replica ",
          running.ok() && running->has_value() ? (*running)->owner : "?"));
    }
  }
  {
    std::unique_lock<std::mutex> lock(mutex_);
    if (absl::Status idle = IdleLocked(); !idle.ok()) {
      if (cluster_ != nullptr) {  // give the cluster's claim back at once
        claim.state = "failed";
        claim.error = std::string(idle.message());
        (void)cluster_->UpdateSwap(claim);
      }
      return idle;
    }
    if (worker_.joinable()) worker_.join();  // the previous swap has finished
    status_ = SwapStatus{(*model)->description().version, 0, true, false, absl::OkStatus()};
    swap_gallery_ = gallery;
    LogEvent(LogLevel::kInfo, "swap",
             absl::StrCat("swapping in ", (*model)->description().version, " from ",
                          checkpoint_dir),
             {{"state", "running"}, {"version", (*model)->description().version}});
    worker_ = std::thread([this, model = *std::move(model), checkpoint_dir, gallery] {
      const absl::Status done = Run(model, checkpoint_dir, gallery);
      if (cluster_ != nullptr) {
        RecordSwap(done.ok() ? "complete" : "failed", std::string(done.message()));
      }
      const std::string& version = model->description().version;
      LogEvent(done.ok() ? LogLevel::kInfo : LogLevel::kError, "swap",
               done.ok() ? absl::StrCat("serving ", version, " (swap complete)")
                         : absl::StrCat("the swap to ", version, " failed: ", done.ToString()),
               {{"state", done.ok() ? "complete" : "failed"}, {"version", version}});
      std::lock_guard<std::mutex> lock(mutex_);
      status_.running = false;
      status_.complete = done.ok();
      status_.error = done;
      finished_.notify_all();
    });
    if (wait) finished_.wait_until(lock, wait_until, [this] { return !status_.running; });
    return status_;
  }
}

absl::Status ModelSwapper::Run(std::shared_ptr<ServingModel> model,
                               const std::string& checkpoint_dir, const std::string& gallery) {
  const Serving old_pair = serving_->Get();
  std::optional<ServingRecord> old_record;  // one machine: the gallery folder to remove after
  if (cluster_ == nullptr) {
    absl::StatusOr<std::optional<ServingRecord>> read = ReadServingRecord(options_.state_dir);
    if (!read.ok()) return read.status();
    old_record = *std::move(read);
  } else {
    // Galleries of earlier swaps that failed or were replaced since.
    std::string serving_gallery;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      serving_gallery = gallery_;
    }
    if (absl::StatusOr<int64_t> dropped = cluster_->DropGalleriesOtherThan(serving_gallery);
        !dropped.ok()) {
      return dropped.status();
    }
  }
  const index::CollectionOptions collection_options =
      GalleryOptions(*model, gallery, old_pair.collection->kind());
  absl::StatusOr<std::unique_ptr<index::Collection>> collection =
      index::Collection::Open(collection_options);
  if (!collection.ok()) return collection.status();
  const Serving new_pair{model, std::shared_ptr<index::Collection>(*std::move(collection))};
  GalleryCopier copier(old_pair, new_pair, *blobs_, options_, cancelled_, [this](int64_t items) {
    bool heartbeat = false;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      status_.reembedded += items;
      heartbeat = cluster_ != nullptr && NowUnixMs() - recorded_at_ms_ >= kSwapHeartbeatMs;
    }
    if (heartbeat) RecordSwap("running");
  });

  // Copy while writes go on; catch up until a round finds little new, and take the last changes
  // with writes held back, so the new gallery misses nothing and writes wait only briefly.
  constexpr int kMostRounds = 20;
  int64_t changes = 0;
  absl::StatusOr<int64_t> seq = copier.CopyChangesAfter(0, &changes);
  for (int round = 0; seq.ok() && changes > options_.images_per_batch && round < kMostRounds;
       ++round) {
    seq = copier.CopyChangesAfter(*seq, &changes);
  }
  absl::Status outcome = seq.status();
  if (outcome.ok() && cluster_ != nullptr) {
    // The old gallery takes no write from any replica any more; the last changes, then the flip.
    absl::StatusOr<int64_t> sealed = old_pair.collection->Seal(true);
    outcome = sealed.status();
    if (outcome.ok()) {
      seq = copier.CopyChangesAfter(*seq, &changes);
      outcome = seq.status();
      if (outcome.ok()) outcome = new_pair.collection->WriteSnapshot();
      if (outcome.ok()) {
        outcome = cluster_->WriteServing(
            {gallery, checkpoint_dir, model->description().version});
      }
      if (outcome.ok()) {
        ServeClusterGallery(new_pair, gallery);
      } else {
        (void)old_pair.collection->Seal(false);  // the old gallery serves on, writable again
      }
    }
  } else if (outcome.ok()) {
    absl::WriterMutexLock gate(&serving_->write_gate());
    seq = copier.CopyChangesAfter(*seq, &changes);
    outcome = seq.status();
    if (outcome.ok()) outcome = new_pair.collection->WriteSnapshot();
    if (outcome.ok()) outcome = PublishRecord({checkpoint_dir, gallery});
    if (outcome.ok()) serving_->Set(new_pair);
  }
  std::error_code ignored;
  if (!outcome.ok()) {
    fs::remove_all(collection_options.directory, ignored);
    return outcome;
  }
  metrics_->SetServingModel(model->description().version);
  metrics_->SetIndexItems(new_pair.collection->index().size());
  // The old gallery's files go; calls still using it keep their open handles until they finish.
  // (A cluster's old gallery stays until the next swap: other replicas may still serve it.)
  if (old_record.has_value()) {
    fs::remove_all(GalleryPath(options_.state_dir, old_record->gallery), ignored);
  }
  return absl::OkStatus();
}

}  // namespace hier::server
