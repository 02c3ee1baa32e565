#include "index/hyperbolic_index.h"

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "index/ball_geometry.h"

namespace hier::index {
namespace {

// Seconds since the previous lap (or construction).
class Stopwatch {
 public:
  double Lap() {
    const auto now = std::chrono::steady_clock::now();
    const double seconds = std::chrono::duration<double>(now - last_).count();
    last_ = now;
    return seconds;
  }

 private:
  std::chrono::steady_clock::time_point last_ = std::chrono::steady_clock::now();
};

// A rebuild copies the items this many rows per hold of the shared lock.
constexpr int64_t kCopyChunkRows = 16384;
// It swaps its stage in once a catch-up round has replayed at most this many rows (the last round
// holds writes back while it runs), or after this many rounds.
constexpr size_t kFinalRoundRows = 1000;
constexpr int kMostCatchUpRounds = 50;

// The k nearest of `neighbours`, nearest first.
std::vector<Neighbour> Nearest(std::vector<Neighbour> neighbours, int64_t k) {
  const size_t keep = std::min<size_t>(k, neighbours.size());
  std::partial_sort(neighbours.begin(), neighbours.begin() + keep, neighbours.end(), Nearer);
  neighbours.resize(keep);
  return neighbours;
}

}  // namespace

absl::StatusOr<std::unique_ptr<HyperbolicIndex>> HyperbolicIndex::Create(
    const IndexOptions& options) {
  if (options.dim < 1 || options.dim > 65536) {
    return absl::InvalidArgumentError(
        absl::StrCat("dim: must be in [1, 65536], got ", options.dim));
  }
  if (!(options.c > 0) || !std::isfinite(options.c)) {
    return absl::InvalidArgumentError(absl::StrCat("c: must be > 0, got ", options.c));
  }
  if (options.max_k < 1) {
    return absl::InvalidArgumentError(absl::StrCat("max_k: must be >= 1, got ", options.max_k));
  }
  if (options.default_overfetch < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("default_overfetch: must be >= 1, got ", options.default_overfetch));
  }
  if (options.threads < 1 || options.threads > 1024) {
    return absl::InvalidArgumentError(
        absl::StrCat("threads: must be in [1, 1024], got ", options.threads));
  }
  if (options.label_scan_max < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("label_scan_max: must be >= 0, got ", options.label_scan_max));
  }
  absl::StatusOr<std::unique_ptr<CandidateStage>> candidates =
      MakeCandidateStage(options.candidates, options.dim, options.c);
  if (!candidates.ok()) return candidates.status();
  return std::unique_ptr<HyperbolicIndex>(new HyperbolicIndex(options, *std::move(candidates)));
}

HyperbolicIndex::HyperbolicIndex(const IndexOptions& options,
                                 std::unique_ptr<CandidateStage> candidates)
    : options_(options), candidates_(std::move(candidates)), points_(options.dim) {}

HyperbolicIndex::~HyperbolicIndex() {
  stopping_ = true;
  std::thread builder;
  {
    std::lock_guard<std::mutex> lock(builder_mutex_);
    builder = std::move(builder_);
  }
  if (builder.joinable()) builder.join();
}

absl::Status HyperbolicIndex::CheckRows(absl::Span<const float> points, int64_t rows,
                                        const char* field) const {
  if (static_cast<int64_t>(points.size()) != rows * options_.dim) {
    return absl::InvalidArgumentError(absl::StrCat(field, ": expected ", rows, " x ", options_.dim,
                                                   " = ", rows * options_.dim, " floats, got ",
                                                   points.size()));
  }
  for (int64_t r = 0; r < rows; ++r) {
    const absl::Status valid =
        ValidateBallPoint(points.data() + r * options_.dim, options_.dim, options_.c, field);
    if (!valid.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("row ", r, ": ", valid.message()));
    }
  }
  return absl::OkStatus();
}

int HyperbolicIndex::ThreadsFor(const SearchOptions& options) const {
  return options.threads > 0 ? options.threads : options_.threads;
}

absl::Status HyperbolicIndex::CheckSearch(const SearchOptions& options) const {
  if (options.k < 1 || options.k > options_.max_k) {
    return absl::InvalidArgumentError(
        absl::StrCat("k: must be in [1, ", options_.max_k, "], got ", options.k));
  }
  if (options.overfetch < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("overfetch: must be >= 0, got ", options.overfetch));
  }
  if (options.threads < 0 || options.threads > 1024) {
    return absl::InvalidArgumentError(
        absl::StrCat("threads: must be in [0, 1024], got ", options.threads));
  }
  return absl::OkStatus();
}

absl::Status HyperbolicIndex::Upsert(absl::Span<const int64_t> ids, absl::Span<const float> points,
                                     absl::Span<const std::string> labels) {
  if (absl::Status valid = CheckRows(points, static_cast<int64_t>(ids.size()), "vectors");
      !valid.ok()) {
    return valid;
  }
  if (!labels.empty() && labels.size() != ids.size()) {
    return absl::InvalidArgumentError(absl::StrCat("labels: expected none or ", ids.size(),
                                                   " (one per id), got ", labels.size()));
  }
  // An id given twice keeps its last row, as two upserts in a row would.
  absl::flat_hash_map<int64_t, size_t> last_row;
  for (size_t r = 0; r < ids.size(); ++r) last_row[ids[r]] = r;
  std::vector<int64_t> added_ids;
  std::vector<float> added;
  added_ids.reserve(last_row.size());
  added.reserve(last_row.size() * options_.dim);
  for (size_t r = 0; r < ids.size(); ++r) {
    if (last_row[ids[r]] != r) continue;
    added_ids.push_back(ids[r]);
    added.insert(added.end(), points.begin() + r * options_.dim,
                 points.begin() + (r + 1) * options_.dim);
  }
  std::lock_guard<std::mutex> writing(writers_);
  // What the stage can work out without changing (an IVF's list for each row, and the lists that
  // need more room grown in a copy) is worked out beside searches, so the exclusive hold below
  // only appends. Declared before the lock, so what the add replaces is freed after it.
  PreparedAdd prepared;
  uint64_t prepared_by = 0;
  {
    ReaderLock lock(&mutex_);
    omp_set_num_threads(options_.threads);
    prepared = candidates_->PrepareAdd(added);
    prepared_by = stage_epoch_;
  }
  PreparedAdd stale;  // freed after the lock too
  WriterLock lock(&mutex_);
  omp_set_num_threads(options_.threads);  // FAISS adds and trains on this thread's OpenMP team
  if (stage_epoch_ != prepared_by) std::swap(stale, prepared);  // another stage since (Restore)
  candidates_->Remove(added_ids);
  static const std::string kNoLabel;
  for (size_t i = 0; i < added_ids.size(); ++i) {
    const size_t r = last_row[added_ids[i]];
    PutRow(added_ids[i], &added[i * options_.dim], labels.empty() ? kNoLabel : labels[r]);
  }
  candidates_->AddPrepared(added_ids, added, prepared);
  Journal(added_ids, added);
  RebuildCandidatesIfWanted();
  return absl::OkStatus();
}

absl::Status HyperbolicIndex::Delete(absl::Span<const int64_t> ids) {
  std::lock_guard<std::mutex> writing(writers_);
  WriterLock lock(&mutex_);
  for (int64_t id : ids) {
    if (!row_of_.Contains(id)) {
      return absl::NotFoundError(absl::StrCat("ids: no item has id ", id));
    }
  }
  omp_set_num_threads(options_.threads);
  candidates_->Remove(ids);
  for (int64_t id : ids) {
    if (row_of_.Contains(id)) RemoveRow(id);
  }
  Journal(ids, {});
  RebuildCandidatesIfWanted();
  return absl::OkStatus();
}

void HyperbolicIndex::PutRow(int64_t id, const float* point, const std::string& label) {
  if (row_of_.Contains(id)) RemoveRow(id);
  row_of_[id] = static_cast<int64_t>(ids_.size());
  ids_.push_back(id);
  points_.PushBack(point);
  int32_t code = 0;
  if (!label.empty()) {
    const auto [known, added] =
        label_codes_.try_emplace(label, static_cast<int32_t>(label_names_.size()));
    if (added) label_names_.push_back(label);
    code = known->second;
    ids_by_label_[label][id] = true;
  }
  label_of_row_.push_back(code);
}

void HyperbolicIndex::RemoveRow(int64_t id) {
  const int64_t row = *row_of_.Find(id);
  const int64_t last = static_cast<int64_t>(ids_.size()) - 1;
  if (const std::string& label = label_names_[label_of_row_[row]]; !label.empty()) {
    auto members = ids_by_label_.find(label);
    members->second.Erase(id);
    if (members->second.empty()) ids_by_label_.erase(members);
  }
  if (row != last) {
    ids_[row] = ids_[last];
    std::copy_n(points_.row(last), options_.dim, points_.row(row));
    label_of_row_[row] = label_of_row_[last];
    row_of_[ids_[row]] = row;
  }
  row_of_.Erase(id);
  ids_.pop_back();
  points_.PopBack();
  label_of_row_.pop_back();
}

void HyperbolicIndex::RebuildCandidatesIfWanted() {
  if (journaling_ || !candidates_->WantsRebuild()) return;
  std::lock_guard<std::mutex> lock(builder_mutex_);
  // A rebuild Restore made stale may still be finishing: a later write starts the next one.
  if (building_ || stopping_) return;
  if (builder_.joinable()) builder_.join();  // a finished one
  building_ = true;
  journaling_ = true;
  builder_ = std::thread([this, generation = generation_] {
    RunRebuild(generation);
    std::lock_guard<std::mutex> done(builder_mutex_);
    building_ = false;
    builder_idle_.notify_all();
  });
}

void HyperbolicIndex::Journal(absl::Span<const int64_t> ids, absl::Span<const float> points) {
  if (!journaling_) return;
  std::lock_guard<std::mutex> lock(journal_mutex_);
  journal_.push_back({{ids.begin(), ids.end()}, {points.begin(), points.end()}});
}

void HyperbolicIndex::RunRebuild(uint64_t generation) {
  // The items, copied a chunk of rows at a time under the shared lock so that writers (and the
  // searches queued behind a waiting writer) never wait for the whole copy. From the last row
  // down: a delete moves the last row into the hole, so a row not copied yet can only move to
  // another row not copied yet, and an item seen twice is skipped. Whatever changes meanwhile is
  // in the journal, replayed below.
  std::vector<int64_t> ids;
  std::vector<float> points;
  {
    // Room for every row first: growing these while holding the lock would hold it that long.
    const int64_t expected = size() + kCopyChunkRows;
    ids.reserve(expected);
    points.reserve(expected * options_.dim);
    absl::flat_hash_set<int64_t> copied;
    copied.reserve(expected);
    int64_t below = -1;  // rows [below, end) are copied; -1 before the first chunk
    while (below != 0) {
      if (stopping_) return;
      ReaderLock lock(&mutex_);
      if (generation != generation_) return;
      const int64_t rows = static_cast<int64_t>(ids_.size());
      const int64_t end = below < 0 ? rows : std::min(below, rows);
      const int64_t begin = std::max<int64_t>(0, end - kCopyChunkRows);
      for (int64_t row = end - 1; row >= begin; --row) {
        if (!copied.insert(ids_[row]).second) continue;
        ids.push_back(ids_[row]);
        points.insert(points.end(), points_.row(row), points_.row(row) + options_.dim);
      }
      below = begin;
    }
  }
  omp_set_num_threads(options_.threads);
  absl::StatusOr<std::unique_ptr<CandidateStage>> made =
      MakeCandidateStage(options_.candidates, options_.dim, options_.c);
  if (!made.ok()) {  // cannot happen: the same options made the live stage
    WriterLock lock(&mutex_);
    if (generation == generation_) journaling_ = false;
    return;
  }
  std::unique_ptr<CandidateStage> stage = *std::move(made);
  stage->Rebuild(ids, points, options_.threads);
  std::vector<int64_t>().swap(ids);
  std::vector<float>().swap(points);

  // Replays the journal into the new stage; returns the rows replayed.
  const auto catch_up = [this, &stage] {
    std::vector<JournalEntry> entries;
    {
      std::lock_guard<std::mutex> lock(journal_mutex_);
      entries.swap(journal_);
    }
    size_t rows = 0;
    for (const JournalEntry& entry : entries) {
      stage->Remove(entry.ids);
      if (!entry.points.empty()) stage->Add(entry.ids, entry.points);
      rows += entry.ids.size();
    }
    return rows;
  };
  for (int round = 0; round < kMostCatchUpRounds && !stopping_; ++round) {
    if (catch_up() <= kFinalRoundRows) break;
  }
  if (stopping_) return;
  std::unique_ptr<CandidateStage> replaced;
  {
    // The last round with writes held back, beside searches; then the exchange alone under the
    // exclusive lock.
    std::lock_guard<std::mutex> writing(writers_);
    catch_up();
    WriterLock lock(&mutex_);
    if (generation != generation_) return;
    replaced = std::exchange(candidates_, std::move(stage));
    ++stage_epoch_;
    journaling_ = false;
  }
  // The old stage is freed here, outside the lock.
}

void HyperbolicIndex::WaitForRebuild() const {
  std::unique_lock<std::mutex> lock(builder_mutex_);
  builder_idle_.wait(lock, [this] { return !building_; });
}

absl::StatusOr<std::vector<Neighbour>> HyperbolicIndex::Search(absl::Span<const float> query,
                                                               const SearchOptions& options) const {
  if (absl::Status valid = CheckSearch(options); !valid.ok()) return valid;
  if (absl::Status valid = CheckRows(query, 1, "query"); !valid.ok()) return valid;
  ReaderLock lock(&mutex_);
  if (ids_.empty()) return EmptyIndexError();
  if (!options.label.empty() && !ids_by_label_.contains(options.label)) {
    return NoSuchLabelError(options.label);
  }
  return SearchLocked(query.data(), options, /*exclude=*/-1);
}

absl::StatusOr<std::vector<Neighbour>> HyperbolicIndex::SearchById(
    int64_t id, const SearchOptions& options) const {
  if (absl::Status valid = CheckSearch(options); !valid.ok()) return valid;
  ReaderLock lock(&mutex_);
  const int64_t* found = row_of_.Find(id);
  if (found == nullptr) return absl::NotFoundError(absl::StrCat("id: no item has id ", id));
  if (!options.label.empty() && !ids_by_label_.contains(options.label)) {
    return NoSuchLabelError(options.label);
  }
  return SearchLocked(points_.row(*found), options, id);
}

std::vector<Neighbour> HyperbolicIndex::SearchLocked(const float* query,
                                                     const SearchOptions& options,
                                                     int64_t exclude) const {
  const int64_t size = static_cast<int64_t>(ids_.size());
  const int64_t k = options.k;
  int64_t wanted = std::max(k + (exclude >= 0 ? 1 : 0),
                            options.overfetch > 0 ? options.overfetch : options_.default_overfetch);
  if (!options.label.empty()) {
    const int64_t members = ids_by_label_.at(options.label).size();
    if (members <= options_.label_scan_max) wanted = size;
    // Scale the overfetch by the label's share, so about `wanted` candidates carry it.
    wanted = static_cast<int64_t>(std::ceil(static_cast<double>(wanted) * size / members));
  }
  SearchTimings unused;
  SearchTimings& timings = options.timings != nullptr ? *options.timings : unused;
  Stopwatch stopwatch;
  std::vector<int64_t> candidates;
  // Doubles the candidates until k of them pass the filter; a search that would take every
  // item scans them exactly instead (an approximate stage cannot list them all).
  for (; wanted < size; wanted *= 2) {
    candidates.resize(wanted);
    candidates_->Search(absl::MakeConstSpan(query, options_.dim), wanted, ThreadsFor(options),
                        candidates.data());
    timings.candidate_seconds += stopwatch.Lap();
    std::vector<Neighbour> neighbours =
        Rerank(query, candidates.data(), wanted, options.label, exclude);
    timings.rerank_seconds += stopwatch.Lap();
    if (static_cast<int64_t>(neighbours.size()) >= k) return Nearest(std::move(neighbours), k);
  }
  std::vector<Neighbour> scanned = ScanExactly(query, options.label, exclude);
  timings.candidate_seconds += stopwatch.Lap();
  return Nearest(std::move(scanned), k);
}

absl::StatusOr<std::vector<std::vector<Neighbour>>> HyperbolicIndex::SearchBatch(
    absl::Span<const float> queries, const SearchOptions& options) const {
  if (absl::Status valid = CheckSearch(options); !valid.ok()) return valid;
  const int64_t count = static_cast<int64_t>(queries.size()) / options_.dim;
  if (absl::Status valid = CheckRows(queries, count, "queries"); !valid.ok()) return valid;
  ReaderLock lock(&mutex_);
  if (ids_.empty()) return EmptyIndexError();
  std::vector<std::vector<Neighbour>> results(count);
  if (!options.label.empty()) {
    if (!ids_by_label_.contains(options.label)) {
      return NoSuchLabelError(options.label);
    }
    for (int64_t q = 0; q < count; ++q) {
      results[q] = SearchLocked(&queries[q * options_.dim], options, /*exclude=*/-1);
    }
    return results;
  }
  const int64_t wanted = std::min<int64_t>(
      static_cast<int64_t>(ids_.size()),
      std::max(options.k, options.overfetch > 0 ? options.overfetch : options_.default_overfetch));
  std::vector<int64_t> candidates(count * wanted);
  const int threads = ThreadsFor(options);
  candidates_->Search(queries, wanted, threads, candidates.data());
#pragma omp parallel for num_threads(threads) schedule(dynamic, 16)
  for (int64_t q = 0; q < count; ++q) {
    results[q] = Nearest(Rerank(&queries[q * options_.dim], &candidates[q * wanted], wanted,
                                options.label, /*exclude=*/-1),
                         options.k);
  }
  return results;
}

std::vector<Neighbour> HyperbolicIndex::Rerank(const float* query, const int64_t* candidates,
                                               int64_t count, const std::string& label,
                                               int64_t exclude) const {
  std::vector<Neighbour> neighbours;
  neighbours.reserve(count);
  int32_t wanted = 0;  // the label's code (0: any)
  if (!label.empty()) {
    const auto known = label_codes_.find(label);
    if (known == label_codes_.end()) return neighbours;
    wanted = known->second;
  }
  for (int64_t i = 0; i < count; ++i) {
    const int64_t id = candidates[i];
    if (id < 0 || id == exclude) continue;
    const int64_t* found = row_of_.Find(id);
    if (found == nullptr) continue;
    const int64_t row = *found;
    if (wanted != 0 && label_of_row_[row] != wanted) continue;
    neighbours.push_back(
        {id, PoincareDistance(query, points_.row(row), options_.dim, options_.c)});
  }
  return neighbours;
}

std::vector<Neighbour> HyperbolicIndex::ScanExactly(const float* query, const std::string& label,
                                                    int64_t exclude) const {
  std::vector<Neighbour> neighbours;
  const auto add = [&](int64_t id, int64_t row) {
    if (id == exclude) return;
    neighbours.push_back(
        {id, PoincareDistance(query, points_.row(row), options_.dim, options_.c)});
  };
  if (label.empty()) {
    neighbours.reserve(ids_.size());
    for (size_t row = 0; row < ids_.size(); ++row) add(ids_[row], static_cast<int64_t>(row));
  } else {
    const ShardedIdMap<bool>& members = ids_by_label_.at(label);
    neighbours.reserve(members.size());
    members.ForEach([&](int64_t id, bool) { add(id, *row_of_.Find(id)); });
  }
  return neighbours;
}

absl::StatusOr<bool> HyperbolicIndex::Restore(absl::Span<const int64_t> ids,
                                              absl::Span<const float> points,
                                              absl::Span<const std::string> labels,
                                              absl::Span<const uint8_t> candidates,
                                              absl::Span<const int64_t> changed_since,
                                              std::string* problem) {
  if (absl::Status valid = CheckRows(points, static_cast<int64_t>(ids.size()), "vectors");
      !valid.ok()) {
    return valid;
  }
  if (labels.size() != ids.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("labels: expected ", ids.size(), " (one per id), got ", labels.size()));
  }
  WriterLock lock(&mutex_);
  omp_set_num_threads(options_.threads);
  // A rebuild in progress built from the items this replaces: it gives up.
  ++generation_;
  ++stage_epoch_;
  journaling_ = false;
  {
    std::lock_guard<std::mutex> journal_lock(journal_mutex_);
    journal_.clear();
  }
  ids_.clear();
  points_.Clear();
  label_of_row_.clear();
  label_names_.assign(1, std::string());
  label_codes_.clear();
  row_of_.Clear();
  ids_by_label_.clear();
  for (size_t r = 0; r < ids.size(); ++r) PutRow(ids[r], &points[r * options_.dim], labels[r]);
  bool used = false;
  if (!candidates.empty()) {
    const absl::Status read = candidates_->Deserialize(candidates);
    used = read.ok();
    if (!used && problem != nullptr) *problem = std::string(read.message());
  }
  if (!used) {
    candidates_->Rebuild(ids, points, options_.threads);  // the store's ids: no duplicates
    return false;
  }
  // Bring the stage up to date: the changed items leave it, and those still here come back.
  candidates_->Remove(changed_since);
  std::vector<int64_t> present;
  std::vector<float> present_points;
  for (int64_t id : changed_since) {
    const int64_t* found = row_of_.Find(id);
    if (found == nullptr) continue;
    present.push_back(id);
    present_points.insert(present_points.end(), points_.row(*found),
                          points_.row(*found) + options_.dim);
  }
  candidates_->Add(present, present_points);
  RebuildCandidatesIfWanted();
  return true;
}

std::vector<uint8_t> HyperbolicIndex::SerializeCandidates() const {
  ReaderLock lock(&mutex_);
  return candidates_->persistent() ? candidates_->Serialize() : std::vector<uint8_t>();
}

bool HyperbolicIndex::snapshots_worthwhile() const {
  ReaderLock lock(&mutex_);
  return candidates_->persistent();
}

bool HyperbolicIndex::Contains(int64_t id) const {
  ReaderLock lock(&mutex_);
  return row_of_.Contains(id);
}

bool Nearer(const Neighbour& a, const Neighbour& b) {
  return a.distance != b.distance ? a.distance < b.distance : a.id < b.id;
}

absl::Status EmptyIndexError() {
  return absl::FailedPreconditionError("index: it holds no items yet");
}

absl::Status NoSuchLabelError(const std::string& label) {
  return absl::NotFoundError(absl::StrCat("label: no item has label \"", label, "\""));
}

bool HyperbolicIndex::HasLabel(const std::string& label) const {
  ReaderLock lock(&mutex_);
  return ids_by_label_.contains(label);
}

std::optional<std::vector<float>> HyperbolicIndex::Point(int64_t id) const {
  ReaderLock lock(&mutex_);
  const int64_t* found = row_of_.Find(id);
  if (found == nullptr) return std::nullopt;
  const float* row = points_.row(*found);
  return std::vector<float>(row, row + options_.dim);
}

int64_t HyperbolicIndex::size() const {
  ReaderLock lock(&mutex_);
  return static_cast<int64_t>(ids_.size());
}

std::string HyperbolicIndex::Describe() const {
  ReaderLock lock(&mutex_);
  return candidates_->Describe();
}

int64_t HyperbolicIndex::memory_bytes() const {
  ReaderLock lock(&mutex_);
  int64_t label_bytes = 0;
  for (const std::string& label : label_names_) {
    label_bytes += static_cast<int64_t>(sizeof(std::string) + label.capacity());
  }
  label_bytes += static_cast<int64_t>(label_of_row_.capacity() * sizeof(int32_t));
  return candidates_->memory_bytes() + points_.memory_bytes() + row_of_.memory_bytes() +
         static_cast<int64_t>(ids_.capacity() * sizeof(int64_t)) + label_bytes;
}

}  // namespace hier::index
