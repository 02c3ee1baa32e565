#include "index/collection.h"

#include <algorithm>
#include <filesystem>
#include <optional>
#include <system_error>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "index/ball_geometry.h"
#include "index/snapshot_file.h"

namespace hier::index {
namespace {

constexpr char kKindSetting[] = "candidates.kind";

// OK when the snapshot was made for this index; otherwise why not.
std::string SnapshotMismatch(const Snapshot& snapshot, const std::string& kind,
                             const IndexOptions& options) {
  if (snapshot.kind != kind) {
    return absl::StrCat("made for candidates \"", snapshot.kind, "\", the index uses \"", kind,
                        "\"");
  }
  if (snapshot.dim != options.dim) {
    return absl::StrCat("made for dim ", snapshot.dim, ", the index has dim ", options.dim);
  }
  if (snapshot.c != options.c) {
    return absl::StrCat("made for c ", snapshot.c, ", the index has c ", options.c);
  }
  return "";
}

}  // namespace

absl::StatusOr<std::unique_ptr<Collection>> Collection::Open(const CollectionOptions& options) {
  const bool shared = IsPostgresUri(options.store.uri);
  if (options.directory.empty() && options.store.uri.empty()) {
    return absl::InvalidArgumentError("directory: empty (and no store given)");
  }
  if (options.follow.poll_interval.count() <= 0 || options.follow.min_backoff.count() <= 0 ||
      options.follow.max_backoff < options.follow.min_backoff) {
    return absl::InvalidArgumentError(
        "follow: poll_interval and min_backoff must be positive, max_backoff >= min_backoff");
  }
  if (!options.shard.whole() && !shared) {
    return absl::InvalidArgumentError(absl::StrCat(
        "shard: ", options.shard.ToString(), " needs a shared store (a postgresql:// URI)"));
  }
  if (!options.directory.empty()) {
    std::error_code error;
    std::filesystem::create_directories(options.directory, error);
    if (error) {
      return absl::UnavailableError(
          absl::StrCat("directory: cannot create ", options.directory, ": ", error.message()));
    }
  }
  StoreLocation location = options.store;
  if (location.uri.empty()) location.uri = options.directory + "/items.db";
  absl::StatusOr<std::unique_ptr<ItemStore>> store = ItemStore::Open(location, options.index.dim);
  if (!store.ok()) return store.status();
  absl::StatusOr<std::optional<std::string>> persisted = (*store)->GetSetting(kKindSetting);
  if (!persisted.ok()) return persisted.status();
  IndexOptions index_options = options.index;
  if (index_options.candidates.kind.empty()) {
    index_options.candidates.kind = persisted->value_or("exact");
  }
  absl::StatusOr<std::unique_ptr<HyperbolicIndex>> index = HyperbolicIndex::Create(index_options);
  if (!index.ok()) return index.status();
  if (*persisted != index_options.candidates.kind) {
    if (absl::Status saved = (*store)->SetSetting(kKindSetting, index_options.candidates.kind);
        !saved.ok()) {
      return saved;
    }
  }
  std::unique_ptr<Collection> collection(
      new Collection(options.directory, index_options.candidates.kind, shared, options.follow,
                     options.shard, *std::move(store), *std::move(index)));
  if (absl::Status loaded = collection->Load(options.on_step); !loaded.ok()) return loaded;
  if (shared) {
    // Changes committed while the store was read are applied by the follower's first pass; the
    // replica counts as caught up once it has passed the counter as it stands now.
    absl::StatusOr<int64_t> latest = collection->store_->LatestSeq();
    if (!latest.ok()) return latest.status();
    {
      std::lock_guard<std::mutex> lock(collection->apply_mutex_);
      collection->open_target_seq_ = *latest;
      collection->NoteLatest(*latest);
      collection->caught_up_ = collection->applied_seq_ >= *latest;
    }
    collection->follower_ = std::thread([raw = collection.get()] { raw->Follow(); });
  }
  return collection;
}

Collection::Collection(std::string directory, std::string kind, bool shared, FollowOptions follow,
                       ShardSpec shard, std::unique_ptr<ItemStore> store,
                       std::unique_ptr<HyperbolicIndex> index)
    : directory_(std::move(directory)),
      kind_(std::move(kind)),
      shared_(shared),
      follow_(follow),
      shard_(shard),
      store_(std::move(store)),
      index_(std::move(index)) {}

Collection::~Collection() {
  {
    std::lock_guard<std::mutex> lock(stop_mutex_);
    stopping_ = true;
  }
  stop_cv_.notify_all();
  if (follower_.joinable()) follower_.join();
}

// A shard's snapshot is named after it, so a replica restarted as another shard rebuilds.
std::string Collection::SnapshotPath() const {
  return shard_.whole() ? directory_ + "/candidates.snapshot"
                        : absl::StrCat(directory_, "/candidates-shard-", shard_.index, "-of-",
                                       shard_.count, ".snapshot");
}

absl::Status Collection::Load(const std::function<void(const OpenStep&)>& on_step) {
  using Clock = std::chrono::steady_clock;
  Clock::time_point began = Clock::now();
  // Reports the step that ran since `began` and starts timing the next.
  auto step_done = [&](const char* name, std::string detail) {
    const Clock::time_point now = Clock::now();
    if (on_step) {
      on_step({name, std::chrono::duration<double>(now - began).count(), std::move(detail)});
    }
    began = now;
  };
  const IndexOptions& options = index_->options();
  absl::StatusOr<Snapshot> snapshot =
      directory_.empty() ? absl::StatusOr<Snapshot>(absl::NotFoundError("no directory"))
                         : ReadSnapshotFile(SnapshotPath());
  if (snapshot.ok()) {
    open_report_.snapshot_problem = SnapshotMismatch(*snapshot, kind_, options);
  } else if (!absl::IsNotFound(snapshot.status())) {
    open_report_.snapshot_problem = std::string(snapshot.status().message());
  }
  const bool snapshot_fits = snapshot.ok() && open_report_.snapshot_problem.empty();
  const int64_t high_water = snapshot_fits ? snapshot->high_water_seq : 0;
  step_done("snapshot_read",
            snapshot_fits ? absl::StrCat("covers the store's changes up to ", high_water)
            : open_report_.snapshot_problem.empty()
                ? std::string("no snapshot")
                : absl::StrCat("not used: ", open_report_.snapshot_problem));

  // Read before the walk: every change numbered up to it is seen by the walk (a shared store may
  // have purged the deletions that carried the highest numbers).
  int64_t latest_before = 0;
  if (shared_) {
    absl::StatusOr<int64_t> latest = store_->LatestSeq();
    if (!latest.ok()) return latest.status();
    latest_before = *latest;
  }
  // A shared store changes during the walk, so an item may be visited twice (its state, then a
  // newer one): each id keeps one row, the last state visited.
  std::vector<int64_t> ids;
  std::vector<float> points;
  std::vector<std::string> labels;
  std::vector<std::string> keys;
  std::vector<int64_t> seqs;
  std::vector<char> live;
  absl::flat_hash_map<int64_t, size_t> row_of;
  std::vector<int64_t> changed;
  int64_t last_visited = 0;
  const size_t dim = static_cast<size_t>(options.dim);
  absl::Status read = store_->ForEachChangeAfter(0, [&](const ItemChange& change) {
    last_visited = std::max(last_visited, change.seq);
    if (!shard_.Holds(change.item.id)) return absl::OkStatus();
    if (change.seq > high_water) changed.push_back(change.item.id);
    const auto found = row_of.find(change.item.id);
    if (change.deleted) {
      if (found != row_of.end()) live[found->second] = 0;
      return absl::OkStatus();
    }
    if (change.item.vector.size() != dim) {
      return absl::DataLossError(absl::StrCat("item ", change.item.id, ": stored vector has ",
                                              change.item.vector.size(), " floats"));
    }
    if (found != row_of.end()) {
      const size_t row = found->second;
      std::copy(change.item.vector.begin(), change.item.vector.end(), points.begin() + row * dim);
      labels[row] = change.item.label;
      keys[row] = change.item.key;
      seqs[row] = change.seq;
      live[row] = 1;
      return absl::OkStatus();
    }
    row_of.emplace(change.item.id, ids.size());
    ids.push_back(change.item.id);
    points.insert(points.end(), change.item.vector.begin(), change.item.vector.end());
    labels.push_back(change.item.label);
    keys.push_back(change.item.key);
    seqs.push_back(change.seq);
    live.push_back(1);
    return absl::OkStatus();
  });
  if (!read.ok()) return read;
  if (std::find(live.begin(), live.end(), 0) != live.end()) {
    size_t kept = 0;
    for (size_t row = 0; row < ids.size(); ++row) {
      if (!live[row]) continue;
      ids[kept] = ids[row];
      std::copy(points.begin() + row * dim, points.begin() + (row + 1) * dim,
                points.begin() + kept * dim);
      labels[kept] = std::move(labels[row]);
      keys[kept] = std::move(keys[row]);
      seqs[kept] = seqs[row];
      ++kept;
    }
    ids.resize(kept);
    points.resize(kept * dim);
    labels.resize(kept);
    keys.resize(kept);
    seqs.resize(kept);
  }
  std::sort(changed.begin(), changed.end());
  changed.erase(std::unique(changed.begin(), changed.end()), changed.end());
  step_done("store_read", absl::StrCat(ids.size(), " items, ", changed.size(),
                                       " changed after the snapshot"));

  std::string problem;
  absl::StatusOr<bool> used = index_->Restore(
      ids, points, labels,
      snapshot_fits ? absl::MakeConstSpan(snapshot->candidates) : absl::Span<const uint8_t>(),
      changed, &problem);
  if (!used.ok()) {
    return absl::DataLossError(
        absl::StrCat(shared_ ? "store" : directory_ + "/items.db",
                     ": a stored item does not fit the index: ", used.status().message()));
  }
  summaries_.Clear();
  summaries_.Put(ids, keys, labels);
  if (!problem.empty()) open_report_.snapshot_problem = problem;
  open_report_.items = static_cast<int64_t>(ids.size());
  open_report_.snapshot_used = *used;
  open_report_.replayed_changes = *used ? static_cast<int64_t>(changed.size()) : 0;
  step_done(*used ? "stage_restored" : "stage_rebuilt",
            *used ? absl::StrCat("\"", kind_, "\" stage from the snapshot, ", changed.size(),
                                 " changes replayed")
            : absl::StrCat("\"", kind_, "\" stage built from ", ids.size(), " items",
                           open_report_.snapshot_problem.empty()
                               ? std::string()
                               : absl::StrCat(" (the snapshot was not used: ",
                                              open_report_.snapshot_problem, ")")));
  if (shared_) {
    std::lock_guard<std::mutex> lock(apply_mutex_);
    item_seq_.reserve(ids.size());
    for (size_t row = 0; row < ids.size(); ++row) item_seq_[ids[row]] = seqs[row];
    SetAppliedSeq(std::max(latest_before, last_visited));
  }
  // A rebuilt stage worth keeping is snapshotted now, so the next start need not rebuild it.
  if (!*used && !ids.empty() && index_->snapshots_worthwhile() && !directory_.empty()) {
    if (absl::Status written = WriteSnapshot(); !written.ok()) return written;
    step_done("snapshot_written", SnapshotPath());
  }
  return absl::OkStatus();
}

absl::StatusOr<int64_t> Collection::Upsert(absl::Span<const ItemRecord> items) {
  const IndexOptions& options = index_->options();
  std::vector<int64_t> ids;
  std::vector<float> points;
  std::vector<std::string> labels;
  std::vector<std::string> keys;
  ids.reserve(items.size());
  points.reserve(items.size() * options.dim);
  labels.reserve(items.size());
  keys.reserve(items.size());
  for (size_t i = 0; i < items.size(); ++i) {
    const std::string field = absl::StrCat("items[", i, "].vector");
    const std::vector<float>& vector = items[i].vector;
    if (static_cast<int64_t>(vector.size()) != options.dim) {
      return absl::InvalidArgumentError(
          absl::StrCat(field, ": expected ", options.dim, " floats, got ", vector.size()));
    }
    if (absl::Status valid =
            ValidateBallPoint(vector.data(), options.dim, options.c, field.c_str());
        !valid.ok()) {
      return valid;
    }
    ids.push_back(items[i].id);
    points.insert(points.end(), vector.begin(), vector.end());
    labels.push_back(items[i].label);
    keys.push_back(items[i].key);
  }
  if (shared_) return UpsertShared(items);
  std::lock_guard<std::mutex> lock(writes_);
  absl::StatusOr<int64_t> seq = store_->Upsert(items);
  if (!seq.ok()) return seq.status();
  summaries_.Put(ids, keys, labels);  // before the index: a found item has its summary
  if (absl::Status applied = index_->Upsert(ids, points, labels); !applied.ok()) {
    return absl::InternalError(
        absl::StrCat("index: a stored change did not apply: ", applied.message()));
  }
  return seq;
}

absl::StatusOr<int64_t> Collection::Delete(absl::Span<const int64_t> ids) {
  if (shared_) return DeleteShared(ids);
  std::lock_guard<std::mutex> lock(writes_);
  absl::StatusOr<int64_t> seq = store_->Delete(ids);
  if (!seq.ok()) return seq.status();
  if (absl::Status applied = index_->Delete(ids); !applied.ok()) {
    return absl::InternalError(
        absl::StrCat("index: a stored deletion did not apply: ", applied.message()));
  }
  summaries_.Remove(ids);  // after the index: a found item has its summary
  return seq;
}

absl::StatusOr<ItemRecord> Collection::Get(int64_t id) const { return store_->Get(id); }

absl::Status Collection::WriteSnapshot() {
  if (directory_.empty()) return absl::OkStatus();  // a replica without a directory
  std::lock_guard<std::mutex> snapshot_lock(snapshots_);
  Snapshot snapshot;
  snapshot.kind = kind_;
  snapshot.dim = index_->options().dim;
  snapshot.c = index_->options().c;
  {
    std::lock_guard<std::mutex> lock(writes_);
    if (shared_) {
      // The stage may hold own writes beyond the applied seq: their items' states are newer
      // than it, so the next Open replays them over the snapshot.
      std::lock_guard<std::mutex> apply_lock(apply_mutex_);
      snapshot.high_water_seq = applied_seq_;
      snapshot.candidates = index_->SerializeCandidates();
    } else {
      snapshot.high_water_seq = store_->last_seq();
      snapshot.candidates = index_->SerializeCandidates();
    }
  }
  if (absl::Status written = WriteSnapshotFile(SnapshotPath(), snapshot); !written.ok()) {
    return written;
  }
  // Never on a shared store: a replica behind this one would miss the deletions.
  if (shared_) return absl::OkStatus();
  return store_->PurgeDeletionsUpTo(snapshot.high_water_seq);
}

// ---- A replica of a shared store ----

int64_t Collection::HeldSeq(int64_t id) const {
  if (const auto live = item_seq_.find(id); live != item_seq_.end()) return live->second;
  if (const auto gone = deleted_seq_.find(id); gone != deleted_seq_.end()) return gone->second;
  return 0;
}

void Collection::NoteLatest(int64_t seq) {
  if (seq <= latest_seq_) return;
  latest_seq_ = seq;
  if (seq <= applied_seq_) return;
  // The front keeps the oldest unapplied change's time; a long outage merges the newest entries.
  constexpr size_t kMaxEntries = 1024;
  if (unapplied_.size() < kMaxEntries) {
    unapplied_.emplace_back(seq, Clock::now());
  } else {
    unapplied_.back().first = seq;
  }
}

void Collection::SetAppliedSeq(int64_t seq) {
  if (seq <= applied_seq_) return;
  applied_seq_ = seq;
  while (!unapplied_.empty() && unapplied_.front().first <= applied_seq_) unapplied_.pop_front();
  if (applied_seq_ > latest_seq_) latest_seq_ = applied_seq_;
  if (!caught_up_ && applied_seq_ >= open_target_seq_) caught_up_ = true;
  applied_cv_.notify_all();
}

void Collection::ForgetCoveredDeletions() {
  for (auto it = deleted_seq_.begin(); it != deleted_seq_.end();) {
    if (it->second <= applied_seq_) {
      deleted_seq_.erase(it++);
    } else {
      ++it;
    }
  }
}

absl::StatusOr<int64_t> Collection::UpsertShared(absl::Span<const ItemRecord> items) {
  std::lock_guard<std::mutex> write_lock(writes_);
  absl::StatusOr<int64_t> last = store_->Upsert(items);
  NoteWriteOutcome(last.status());
  {
    std::lock_guard<std::mutex> lock(apply_mutex_);
    if (!last.ok()) return last.status();
    if (items.empty()) return last;
    // The batch took the numbers last - n + 1 .. last in one transaction, so no other change to
    // these items falls between them: `last` orders the whole batch against every other change.
    const int64_t first = *last - static_cast<int64_t>(items.size()) + 1;
    absl::flat_hash_map<int64_t, size_t> last_index;
    for (size_t i = 0; i < items.size(); ++i) last_index[items[i].id] = i;
    std::vector<int64_t> ids;
    std::vector<float> points;
    std::vector<std::string> labels;
    std::vector<std::string> keys;
    for (size_t i = 0; i < items.size(); ++i) {
      if (last_index[items[i].id] != i || !shard_.Holds(items[i].id) ||
          HeldSeq(items[i].id) >= *last) {
        continue;
      }
      ids.push_back(items[i].id);
      points.insert(points.end(), items[i].vector.begin(), items[i].vector.end());
      labels.push_back(items[i].label);
      keys.push_back(items[i].key);
    }
    if (!ids.empty()) {
      summaries_.Put(ids, keys, labels);
      if (absl::Status applied = index_->Upsert(ids, points, labels); !applied.ok()) {
        return absl::InternalError(
            absl::StrCat("index: a stored change did not apply: ", applied.message()));
      }
    }
    for (const int64_t id : ids) {
      item_seq_[id] = *last;
      deleted_seq_.erase(id);
    }
    NoteLatest(*last);
    // Directly after the applied seq: nothing else lies between, so this write covers it.
    if (applied_seq_ == first - 1) SetAppliedSeq(*last);
    ForgetCoveredDeletions();
  }
  return last;
}

absl::StatusOr<int64_t> Collection::DeleteShared(absl::Span<const int64_t> ids) {
  std::lock_guard<std::mutex> write_lock(writes_);
  absl::StatusOr<int64_t> last = store_->Delete(ids);
  NoteWriteOutcome(last.status());
  std::lock_guard<std::mutex> lock(apply_mutex_);
  if (!last.ok()) return last.status();
  if (ids.empty()) return last;
  absl::flat_hash_set<int64_t> unique(ids.begin(), ids.end());
  const int64_t first = *last - static_cast<int64_t>(unique.size()) + 1;
  std::vector<int64_t> present;
  for (const int64_t id : unique) {
    if (!shard_.Holds(id)) continue;
    if (HeldSeq(id) >= *last) continue;  // re-added by a newer change already applied
    if (index_->Contains(id)) present.push_back(id);
    item_seq_.erase(id);
    deleted_seq_[id] = *last;
  }
  if (absl::Status applied = index_->Delete(present); !applied.ok()) {
    return absl::InternalError(
        absl::StrCat("index: a stored deletion did not apply: ", applied.message()));
  }
  summaries_.Remove(present);
  NoteLatest(*last);
  if (applied_seq_ == first - 1) SetAppliedSeq(*last);
  ForgetCoveredDeletions();
  return last;
}

void Collection::ApplyChanges(const std::vector<ItemChange>& changes, int64_t covered) {
  std::lock_guard<std::mutex> lock(apply_mutex_);
  // Consecutive upserts go to the index as one batch (one id once: its newest state).
  std::vector<int64_t> ids;
  std::vector<float> points;
  std::vector<std::string> labels;
  std::vector<std::string> keys;
  absl::flat_hash_map<int64_t, size_t> pending;
  auto flush = [&] {
    if (ids.empty()) return;
    summaries_.Put(ids, keys, labels);
    absl::Status applied = index_->Upsert(ids, points, labels);
    if (!applied.ok()) {
      // One stored item the index refuses (e.g. a vector outside this replica's ball) must not
      // stall the replica: apply the others one by one and report the refused one.
      const size_t dim = static_cast<size_t>(index_->options().dim);
      for (size_t row = 0; row < ids.size(); ++row) {
        absl::Status one = index_->Upsert(absl::MakeConstSpan(&ids[row], 1),
                                          absl::MakeConstSpan(&points[row * dim], dim),
                                          absl::MakeConstSpan(&labels[row], 1));
        if (!one.ok()) {
          item_seq_.erase(ids[row]);
          summaries_.Remove(absl::MakeConstSpan(&ids[row], 1));
          last_error_ = absl::StrCat("item ", ids[row], " did not apply: ", one.message());
        }
      }
    }
    ids.clear();
    points.clear();
    labels.clear();
    keys.clear();
    pending.clear();
  };
  for (const ItemChange& change : changes) {
    const int64_t id = change.item.id;
    if (!shard_.Holds(id) || change.seq <= HeldSeq(id)) {
      ++changes_skipped_;
      continue;
    }
    ++changes_applied_;
    if (change.deleted) {
      if (pending.count(id) > 0) flush();
      if (index_->Contains(id)) {
        const int64_t one[] = {id};
        (void)index_->Delete(one);  // present under the lock: cannot fail
        summaries_.Remove(one);
      }
      item_seq_.erase(id);
      deleted_seq_[id] = change.seq;
      continue;
    }
    item_seq_[id] = change.seq;
    deleted_seq_.erase(id);
    if (const auto found = pending.find(id); found != pending.end()) {
      const size_t row = found->second;
      const size_t dim = change.item.vector.size();
      std::copy(change.item.vector.begin(), change.item.vector.end(), points.begin() + row * dim);
      labels[row] = change.item.label;
      keys[row] = change.item.key;
      continue;
    }
    pending.emplace(id, ids.size());
    ids.push_back(id);
    points.insert(points.end(), change.item.vector.begin(), change.item.vector.end());
    labels.push_back(change.item.label);
    keys.push_back(change.item.key);
  }
  flush();
  SetAppliedSeq(covered);
}

absl::Status Collection::FollowOnce() {
  // Read first: the walk below sees every change numbered up to it.
  absl::StatusOr<int64_t> latest = store_->LatestSeq();
  if (!latest.ok()) return latest.status();
  int64_t from = 0;
  {
    std::lock_guard<std::mutex> lock(apply_mutex_);
    NoteLatest(*latest);
    if (applied_seq_ >= *latest) return absl::OkStatus();
    from = applied_seq_;
  }
  constexpr size_t kBatch = 256;
  std::vector<ItemChange> batch;
  int64_t visited = from;
  absl::Status walked = store_->ForEachChangeAfter(from, [&](const ItemChange& change) {
    batch.push_back(change);
    visited = change.seq;
    if (batch.size() >= kBatch) {
      ApplyChanges(batch, visited);
      batch.clear();
      bool stop = false;
      {
        std::lock_guard<std::mutex> lock(stop_mutex_);
        stop = stopping_;
      }
      if (stop) return absl::CancelledError("the collection is closing");
    }
    return absl::OkStatus();
  });
  if (absl::IsCancelled(walked)) return absl::OkStatus();
  if (!walked.ok()) return walked;
  ApplyChanges(batch, std::max(visited, *latest));
  return absl::OkStatus();
}

void Collection::NoteWriteOutcome(const absl::Status& outcome) {
  bool wake = false;
  {
    std::lock_guard<std::mutex> lock(apply_mutex_);
    if (absl::IsUnavailable(outcome)) {
      reachable_ = false;
      last_error_ = std::string(outcome.message());
    } else if (outcome.ok()) {
      wake = !reachable_;
    }
  }
  if (wake) {
    std::lock_guard<std::mutex> lock(stop_mutex_);
    wake_follower_ = true;
    stop_cv_.notify_all();
  }
}

bool Collection::SleepUnlessStopping(std::chrono::milliseconds duration) {
  std::unique_lock<std::mutex> lock(stop_mutex_);
  const bool stopping =
      stop_cv_.wait_for(lock, duration, [this] { return stopping_ || wake_follower_; }) &&
      stopping_;
  wake_follower_ = false;
  return stopping;
}

void Collection::Follow() {
  // A wait on the listener cannot be interrupted: it waits in slices, checking for the end.
  constexpr std::chrono::milliseconds kSlice{50};
  std::unique_ptr<ChangeListener> listener;
  bool listen = true;  // false once the store said it announces nothing
  std::chrono::milliseconds backoff = follow_.min_backoff;
  for (;;) {
    {
      std::lock_guard<std::mutex> lock(stop_mutex_);
      if (stopping_) return;
    }
    // Listen before reading, so a change committed after the read wakes the next wait.
    if (listen && listener == nullptr) {
      absl::StatusOr<std::unique_ptr<ChangeListener>> made = store_->Listen();
      if (made.ok()) {
        listener = *std::move(made);
      } else if (absl::IsUnimplemented(made.status())) {
        listen = false;
      }
    }
    const absl::Status pass = FollowOnce();
    {
      std::lock_guard<std::mutex> lock(apply_mutex_);
      if (pass.ok()) {
        ++passes_;
        reachable_ = true;
        last_error_.clear();
      } else {
        reachable_ = false;
        last_error_ = std::string(pass.message());
      }
    }
    if (!pass.ok()) {
      listener.reset();  // its connection most likely broke too
      if (SleepUnlessStopping(backoff)) return;
      backoff = std::min(backoff * 2, follow_.max_backoff);
      continue;
    }
    backoff = follow_.min_backoff;
    // Forget the deletions the applied seq has passed, unless an own write is between its commit
    // and its apply (it may carry an older number than a remembered deletion).
    if (writes_.try_lock()) {
      {
        std::lock_guard<std::mutex> lock(apply_mutex_);
        ForgetCoveredDeletions();
      }
      writes_.unlock();
    }
    // Wait for an announcement, at most poll_interval.
    const Clock::time_point until = Clock::now() + follow_.poll_interval;
    for (;;) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - Clock::now());
      if (left.count() <= 0) break;
      const std::chrono::milliseconds slice = std::min(left, kSlice);
      if (listener == nullptr) {
        if (SleepUnlessStopping(slice)) return;
        continue;
      }
      absl::StatusOr<bool> woken = listener->Wait(slice);
      if (!woken.ok()) {
        listener.reset();
        break;  // read the store now: it fails over to the backoff when the store is gone
      }
      if (*woken) break;
      std::lock_guard<std::mutex> lock(stop_mutex_);
      if (stopping_) return;
    }
  }
}

ReplicationStatus Collection::replication() const {
  ReplicationStatus status;
  status.shared = shared_;
  if (!shared_) {
    status.applied_seq = status.latest_seq = store_->last_seq();
    return status;
  }
  std::lock_guard<std::mutex> lock(apply_mutex_);
  status.applied_seq = applied_seq_;
  status.latest_seq = std::max(latest_seq_, applied_seq_);
  status.changes_behind = status.latest_seq - status.applied_seq;
  if (!unapplied_.empty()) {
    status.lag_seconds =
        std::chrono::duration<double>(Clock::now() - unapplied_.front().second).count();
  }
  status.caught_up = caught_up_;
  status.store_reachable = reachable_;
  status.last_error = last_error_;
  status.follower_passes = passes_;
  status.changes_applied = changes_applied_;
  status.changes_skipped = changes_skipped_;
  return status;
}

int64_t Collection::applied_seq() const {
  if (!shared_) return store_->last_seq();
  std::lock_guard<std::mutex> lock(apply_mutex_);
  return applied_seq_;
}

bool Collection::caught_up() const {
  if (!shared_) return true;
  std::lock_guard<std::mutex> lock(apply_mutex_);
  return caught_up_;
}

bool Collection::WaitUntilApplied(int64_t seq, std::chrono::milliseconds timeout) const {
  if (!shared_) return store_->last_seq() >= seq;
  std::unique_lock<std::mutex> lock(apply_mutex_);
  return applied_cv_.wait_for(lock, timeout, [&] { return applied_seq_ >= seq; });
}

}  // namespace hier::index
