#include "index/hyperbolic_index.h"

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>

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
    : options_(options), candidates_(std::move(candidates)) {}

HyperbolicIndex::~HyperbolicIndex() = default;

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
  WriterLock lock(&mutex_);
  omp_set_num_threads(options_.threads);  // FAISS adds and trains on this thread's OpenMP team
  candidates_->Remove(added_ids);
  static const std::string kNoLabel;
  for (size_t i = 0; i < added_ids.size(); ++i) {
    const size_t r = last_row[added_ids[i]];
    PutRow(added_ids[i], &added[i * options_.dim], labels.empty() ? kNoLabel : labels[r]);
  }
  candidates_->Add(added_ids, added);
  RebuildCandidatesIfWanted();
  return absl::OkStatus();
}

absl::Status HyperbolicIndex::Delete(absl::Span<const int64_t> ids) {
  WriterLock lock(&mutex_);
  for (int64_t id : ids) {
    if (!row_of_.contains(id)) {
      return absl::NotFoundError(absl::StrCat("ids: no item has id ", id));
    }
  }
  omp_set_num_threads(options_.threads);
  candidates_->Remove(ids);
  for (int64_t id : ids) {
    if (row_of_.contains(id)) RemoveRow(id);
  }
  RebuildCandidatesIfWanted();
  return absl::OkStatus();
}

void HyperbolicIndex::PutRow(int64_t id, const float* point, const std::string& label) {
  if (row_of_.contains(id)) RemoveRow(id);
  row_of_[id] = static_cast<int64_t>(ids_.size());
  ids_.push_back(id);
  points_.insert(points_.end(), point, point + options_.dim);
  labels_.push_back(label);
  if (!label.empty()) ids_by_label_[label].insert(id);
}

void HyperbolicIndex::RemoveRow(int64_t id) {
  const auto found = row_of_.find(id);
  const int64_t row = found->second;
  const int64_t last = static_cast<int64_t>(ids_.size()) - 1;
  if (const std::string& label = labels_[row]; !label.empty()) {
    auto members = ids_by_label_.find(label);
    members->second.erase(id);
    if (members->second.empty()) ids_by_label_.erase(members);
  }
  if (row != last) {
    ids_[row] = ids_[last];
    std::copy_n(&points_[last * options_.dim], options_.dim, &points_[row * options_.dim]);
    labels_[row] = std::move(labels_[last]);
    row_of_[ids_[row]] = row;
  }
  row_of_.erase(id);
  ids_.pop_back();
  points_.resize(ids_.size() * options_.dim);
  labels_.pop_back();
}

void HyperbolicIndex::RebuildCandidatesIfWanted() {
  if (candidates_->WantsRebuild()) candidates_->Rebuild(ids_, points_, options_.threads);
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
  const auto found = row_of_.find(id);
  if (found == row_of_.end()) return absl::NotFoundError(absl::StrCat("id: no item has id ", id));
  if (!options.label.empty() && !ids_by_label_.contains(options.label)) {
    return NoSuchLabelError(options.label);
  }
  return SearchLocked(&points_[found->second * options_.dim], options, id);
}

std::vector<Neighbour> HyperbolicIndex::SearchLocked(const float* query,
                                                     const SearchOptions& options,
                                                     int64_t exclude) const {
  const int64_t size = static_cast<int64_t>(ids_.size());
  const int64_t k = options.k;
  int64_t wanted = std::max(k + (exclude >= 0 ? 1 : 0),
                            options.overfetch > 0 ? options.overfetch : options_.default_overfetch);
  if (!options.label.empty()) {
    const int64_t members = static_cast<int64_t>(ids_by_label_.at(options.label).size());
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
  for (int64_t i = 0; i < count; ++i) {
    const int64_t id = candidates[i];
    if (id < 0 || id == exclude) continue;
    const auto found = row_of_.find(id);
    if (found == row_of_.end()) continue;
    const int64_t row = found->second;
    if (!label.empty() && labels_[row] != label) continue;
    neighbours.push_back(
        {id, PoincareDistance(query, &points_[row * options_.dim], options_.dim, options_.c)});
  }
  return neighbours;
}

std::vector<Neighbour> HyperbolicIndex::ScanExactly(const float* query, const std::string& label,
                                                    int64_t exclude) const {
  std::vector<Neighbour> neighbours;
  const auto add = [&](int64_t id, int64_t row) {
    if (id == exclude) return;
    neighbours.push_back(
        {id, PoincareDistance(query, &points_[row * options_.dim], options_.dim, options_.c)});
  };
  if (label.empty()) {
    neighbours.reserve(ids_.size());
    for (size_t row = 0; row < ids_.size(); ++row) add(ids_[row], static_cast<int64_t>(row));
  } else {
    const absl::flat_hash_set<int64_t>& members = ids_by_label_.at(label);
    neighbours.reserve(members.size());
    for (int64_t id : members) add(id, row_of_.at(id));
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
  ids_.clear();
  points_.clear();
  labels_.clear();
  row_of_.clear();
  ids_by_label_.clear();
  for (size_t r = 0; r < ids.size(); ++r) PutRow(ids[r], &points[r * options_.dim], labels[r]);
  bool used = false;
  if (!candidates.empty()) {
    const absl::Status read = candidates_->Deserialize(candidates);
    used = read.ok();
    if (!used && problem != nullptr) *problem = std::string(read.message());
  }
  if (!used) {
    candidates_->Rebuild(ids_, points_, options_.threads);
    return false;
  }
  // Bring the stage up to date: the changed items leave it, and those still here come back.
  candidates_->Remove(changed_since);
  std::vector<int64_t> present;
  std::vector<float> present_points;
  for (int64_t id : changed_since) {
    const auto found = row_of_.find(id);
    if (found == row_of_.end()) continue;
    present.push_back(id);
    present_points.insert(present_points.end(), &points_[found->second * options_.dim],
                          &points_[(found->second + 1) * options_.dim]);
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
  return row_of_.contains(id);
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
  const auto found = row_of_.find(id);
  if (found == row_of_.end()) return std::nullopt;
  const auto row = points_.begin() + found->second * options_.dim;
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
  for (const std::string& label : labels_) label_bytes += sizeof(std::string) + label.capacity();
  return candidates_->memory_bytes() +
         static_cast<int64_t>(points_.capacity() * sizeof(float) +
                              ids_.capacity() * sizeof(int64_t) +
                              row_of_.capacity() * (2 * sizeof(int64_t) + 1)) +
         label_bytes;
}

}  // namespace hier::index
