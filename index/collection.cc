#include "index/collection.h"

#include <filesystem>
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
  if (options.directory.empty()) return absl::InvalidArgumentError("directory: empty");
  std::error_code error;
  std::filesystem::create_directories(options.directory, error);
  if (error) {
    return absl::UnavailableError(
        absl::StrCat("directory: cannot create ", options.directory, ": ", error.message()));
  }
  absl::StatusOr<std::unique_ptr<ItemStore>> store =
      ItemStore::Open(options.directory + "/items.db", options.index.dim);
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
  std::unique_ptr<Collection> collection(new Collection(
      options.directory, index_options.candidates.kind, *std::move(store), *std::move(index)));
  if (absl::Status loaded = collection->Load(); !loaded.ok()) return loaded;
  return collection;
}

Collection::Collection(std::string directory, std::string kind, std::unique_ptr<ItemStore> store,
                       std::unique_ptr<HyperbolicIndex> index)
    : directory_(std::move(directory)),
      kind_(std::move(kind)),
      store_(std::move(store)),
      index_(std::move(index)) {}

std::string Collection::SnapshotPath() const { return directory_ + "/candidates.snapshot"; }

absl::Status Collection::Load() {
  const IndexOptions& options = index_->options();
  absl::StatusOr<Snapshot> snapshot = ReadSnapshotFile(SnapshotPath());
  if (snapshot.ok()) {
    open_report_.snapshot_problem = SnapshotMismatch(*snapshot, kind_, options);
  } else if (!absl::IsNotFound(snapshot.status())) {
    open_report_.snapshot_problem = std::string(snapshot.status().message());
  }
  const bool snapshot_fits = snapshot.ok() && open_report_.snapshot_problem.empty();
  const int64_t high_water = snapshot_fits ? snapshot->high_water_seq : 0;

  std::vector<int64_t> ids;
  std::vector<float> points;
  std::vector<std::string> labels;
  std::vector<int64_t> changed;
  absl::Status read = store_->ForEachChangeAfter(0, [&](const ItemChange& change) {
    if (change.seq > high_water) changed.push_back(change.item.id);
    if (change.deleted) return absl::OkStatus();
    ids.push_back(change.item.id);
    points.insert(points.end(), change.item.vector.begin(), change.item.vector.end());
    labels.push_back(change.item.label);
    return absl::OkStatus();
  });
  if (!read.ok()) return read;

  std::string problem;
  absl::StatusOr<bool> used = index_->Restore(
      ids, points, labels,
      snapshot_fits ? absl::MakeConstSpan(snapshot->candidates) : absl::Span<const uint8_t>(),
      changed, &problem);
  if (!used.ok()) {
    return absl::DataLossError(absl::StrCat(
        directory_, "/items.db: a stored item does not fit the index: ", used.status().message()));
  }
  if (!problem.empty()) open_report_.snapshot_problem = problem;
  open_report_.items = static_cast<int64_t>(ids.size());
  open_report_.snapshot_used = *used;
  open_report_.replayed_changes = *used ? static_cast<int64_t>(changed.size()) : 0;
  // A rebuilt stage worth keeping is snapshotted now, so the next start need not rebuild it.
  if (!*used && !ids.empty() && index_->snapshots_worthwhile()) return WriteSnapshot();
  return absl::OkStatus();
}

absl::StatusOr<int64_t> Collection::Upsert(absl::Span<const ItemRecord> items) {
  const IndexOptions& options = index_->options();
  std::vector<int64_t> ids;
  std::vector<float> points;
  std::vector<std::string> labels;
  ids.reserve(items.size());
  points.reserve(items.size() * options.dim);
  labels.reserve(items.size());
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
  }
  std::lock_guard<std::mutex> lock(writes_);
  absl::StatusOr<int64_t> seq = store_->Upsert(items);
  if (!seq.ok()) return seq.status();
  if (absl::Status applied = index_->Upsert(ids, points, labels); !applied.ok()) {
    return absl::InternalError(
        absl::StrCat("index: a stored change did not apply: ", applied.message()));
  }
  return seq;
}

absl::StatusOr<int64_t> Collection::Delete(absl::Span<const int64_t> ids) {
  std::lock_guard<std::mutex> lock(writes_);
  absl::StatusOr<int64_t> seq = store_->Delete(ids);
  if (!seq.ok()) return seq.status();
  if (absl::Status applied = index_->Delete(ids); !applied.ok()) {
    return absl::InternalError(
        absl::StrCat("index: a stored deletion did not apply: ", applied.message()));
  }
  return seq;
}

absl::StatusOr<ItemRecord> Collection::Get(int64_t id) const { return store_->Get(id); }

absl::Status Collection::WriteSnapshot() {
  std::lock_guard<std::mutex> snapshot_lock(snapshots_);
  Snapshot snapshot;
  snapshot.kind = kind_;
  snapshot.dim = index_->options().dim;
  snapshot.c = index_->options().c;
  {
    std::lock_guard<std::mutex> lock(writes_);
    snapshot.high_water_seq = store_->last_seq();
    snapshot.candidates = index_->SerializeCandidates();
  }
  if (absl::Status written = WriteSnapshotFile(SnapshotPath(), snapshot); !written.ok()) {
    return written;
  }
  return store_->PurgeDeletionsUpTo(snapshot.high_water_seq);
}

}  // namespace hier::index
