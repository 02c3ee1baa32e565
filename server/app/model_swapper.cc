#include "server/app/model_swapper.h"

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <optional>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "server/app/serving_record.h"

namespace hier::server {
namespace fs = std::filesystem;

namespace {

// A fresh gallery folder name: the time in milliseconds makes it unique and ordered.
std::string NewGalleryName() {
  const auto now = std::chrono::system_clock::now().time_since_epoch();
  return absl::StrCat("gallery-",
                      std::chrono::duration_cast<std::chrono::milliseconds>(now).count());
}

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
                           SwapOptions options)
    : serving_(serving), blobs_(blobs), metrics_(metrics), options_(std::move(options)) {}

ModelSwapper::~ModelSwapper() {
  if (worker_.joinable()) worker_.join();
}

SwapStatus ModelSwapper::status() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return status_;
}

absl::Status ModelSwapper::IdleLocked() const {
  if (stopped_) return absl::FailedPreconditionError("version: the server is stopping");
  if (!status_.running) return absl::OkStatus();
  return absl::FailedPreconditionError(
      absl::StrCat("version: a swap to ", status_.target, " is in progress"));
}

absl::StatusOr<SwapStatus> ModelSwapper::Swap(const std::string& checkpoint_dir, bool wait,
                                              std::chrono::steady_clock::time_point wait_until) {
  if (options_.cluster) {
    return absl::FailedPreconditionError(
        "this server is a replica of a cluster store, whose replicas all serve the model that "
        "embedded its items: a model swap would have to re-embed them for every replica at once, "
        "which is not available yet");
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (absl::Status idle = IdleLocked(); !idle.ok()) return idle;
  }
  ServerMetrics* metrics = metrics_;
  absl::StatusOr<std::shared_ptr<ServingModel>> model =
      ServingModel::Load(checkpoint_dir, options_.batching,
                         [metrics](int64_t images) { metrics->ObserveEmbedBatch(images); });
  if (!model.ok()) return model.status();
  {
    std::unique_lock<std::mutex> lock(mutex_);
    if (absl::Status idle = IdleLocked(); !idle.ok()) return idle;
    if (worker_.joinable()) worker_.join();  // the previous swap has finished
    status_ = SwapStatus{(*model)->description().version, 0, true, false, absl::OkStatus()};
    worker_ = std::thread([this, model = *std::move(model), checkpoint_dir] {
      const absl::Status done = Run(model, checkpoint_dir);
      if (!done.ok()) {
        std::fprintf(stderr, "hier-server: the swap to %s failed: %s\n",
                     model->description().version.c_str(), done.ToString().c_str());
      }
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
                               const std::string& checkpoint_dir) {
  const Serving old_pair = serving_->Get();
  absl::StatusOr<std::optional<ServingRecord>> old_record = ReadServingRecord(options_.state_dir);
  if (!old_record.ok()) return old_record.status();
  const std::string gallery = NewGalleryName();
  index::CollectionOptions collection_options;
  collection_options.directory = GalleryPath(options_.state_dir, gallery);
  collection_options.index = options_.index;
  collection_options.index.dim = model->description().dim;
  collection_options.index.c = model->description().c;
  collection_options.index.candidates.kind = old_pair.collection->kind();
  absl::StatusOr<std::unique_ptr<index::Collection>> collection =
      index::Collection::Open(collection_options);
  if (!collection.ok()) return collection.status();
  const Serving new_pair{model, std::shared_ptr<index::Collection>(*std::move(collection))};
  GalleryCopier copier(old_pair, new_pair, *blobs_, options_, cancelled_, [this](int64_t items) {
    std::lock_guard<std::mutex> lock(mutex_);
    status_.reembedded += items;
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
  if (outcome.ok()) {
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
  if (old_record->has_value()) {
    fs::remove_all(GalleryPath(options_.state_dir, (*old_record)->gallery), ignored);
  }
  return absl::OkStatus();
}

}  // namespace hier::server
