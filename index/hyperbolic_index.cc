#include "index/hyperbolic_index.h"

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <numeric>
#include <random>
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
  // Seconds since the previous lap (or construction), without starting a new one.
  double Elapsed() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - last_).count();
  }

 private:
  std::chrono::steady_clock::time_point last_ = std::chrono::steady_clock::now();
};

// The index tunes itself (IndexOptions::target_recall) once it holds this many items.
constexpr int64_t kLeastItemsToTune = 1000;
// Ground truth for tuning computes about this many query-item distances per hold of the shared
// lock (a few milliseconds).
constexpr int64_t kExactPairsPerHold = 200000;
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
  if (!(options.target_recall >= 0 && options.target_recall <= 1)) {
    return absl::InvalidArgumentError(
        absl::StrCat("target_recall: must be in [0, 1], got ", options.target_recall));
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
    : options_(options),
      tunes_itself_(options.target_recall > 0 && options.candidates.kind != "exact"),
      candidates_(std::move(candidates)),
      points_(options.dim) {
  settings_.effort = {options.candidates.nprobe, options.candidates.ef_search,
                      options.default_overfetch};
}

HyperbolicIndex::~HyperbolicIndex() {
  stopping_ = true;
  builder_.Stop();
  tuner_.Stop();
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
  TuneIfGrown();
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
  // A rebuild Restore made stale may still be finishing: a later write starts the next one.
  journaling_ = builder_.Start([this, generation = generation_] { RunRebuild(generation); });
}

void HyperbolicIndex::TuneIfGrown() {
  const int64_t items = static_cast<int64_t>(ids_.size());
  if (!tunes_itself_ || items < std::max(kLeastItemsToTune, 2 * tuned_at_items_)) return;
  if (tuner_.Start([this] { TuneForOptionsTarget(); })) tuned_at_items_ = items;
}

void HyperbolicIndex::TuneForOptionsTarget() {
  if (!tunes_itself_) return;
  RecallTarget target;
  target.recall = options_.target_recall;
  TuneForRecall(target).IgnoreError();  // too few items yet, or the index is going away
}

void HyperbolicIndex::Journal(absl::Span<const int64_t> ids, absl::Span<const float> points) {
  if (!journaling_) return;
  std::lock_guard<std::mutex> lock(journal_mutex_);
  journal_.push_back({{ids.begin(), ids.end()}, {points.begin(), points.end()}});
}

void HyperbolicIndex::RunRebuild(uint64_t generation) {
  // The items, copied a chunk of rows at a time so that writers (and the searches queued behind a
  // waiting writer) never wait for the whole copy. Whatever changes meanwhile is in the journal,
  // replayed below.
  std::vector<int64_t> ids;
  std::vector<float> points;
  // Room for every row first: growing these while holding the lock would hold it that long.
  const int64_t expected = size() + kCopyChunkRows;
  ids.reserve(expected);
  points.reserve(expected * options_.dim);
  const bool copied = VisitRowsInChunks(
      kCopyChunkRows, [&] { return !stopping_ && generation == generation_; },
      [&](absl::Span<const int64_t> rows) {
        for (const int64_t row : rows) {
          ids.push_back(ids_[row]);
          points.insert(points.end(), points_.row(row), points_.row(row) + options_.dim);
        }
      });
  if (!copied) return;
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
  replaced.reset();  // outside the lock
  TuneForOptionsTarget();
}

absl::StatusOr<RecallTuning> HyperbolicIndex::TuneForRecall(const RecallTarget& target) {
  if (const std::string problem = RecallTargetProblem(target); !problem.empty()) {
    return absl::InvalidArgumentError(problem);
  }
  std::lock_guard<std::mutex> one_at_a_time(tuning_);
  const Stopwatch clock;
  std::vector<int64_t> sample_ids;
  std::vector<float> sample_points;
  if (SampleItems(target, &sample_ids, &sample_points) <= target.k) {
    return absl::FailedPreconditionError(absl::StrCat(
        "index: tuning for recall@", target.k, " needs more than ", target.k, " items"));
  }
  const std::vector<std::vector<int64_t>> exact =
      ExactNeighbours(sample_ids, sample_points, target.k);
  SearchEffort start, most;
  {
    ReaderLock lock(&mutex_);
    start = settings_.effort;
    most = candidates_->MostEffort();
  }
  // Each sample item searched for as a search by id would (itself left out), one at a time.
  const auto measure = [&](const SearchEffort& effort) {
    SearchOptions options;
    options.k = target.k;
    options.overfetch = effort.overfetch;
    std::vector<double> recalls;
    recalls.reserve(sample_ids.size());
    const Stopwatch timer;
    for (size_t q = 0; q < sample_ids.size(); ++q) {
      std::vector<Neighbour> neighbours;
      {
        ReaderLock lock(&mutex_);
        neighbours =
            SearchLocked(&sample_points[q * options_.dim], options, effort, sample_ids[q]);
      }
      const std::vector<int64_t>& truth = exact[q];
      int64_t hits = 0;
      for (const Neighbour& neighbour : neighbours) {
        hits += std::count(truth.begin(), truth.end(), neighbour.id);
      }
      recalls.push_back(truth.empty() ? 1.0 : static_cast<double>(hits) / truth.size());
    }
    return MeasurementOf(recalls, timer.Elapsed());
  };
  RecallTuning tuning =
      ChooseEffort(target, most, start, measure, [this] { return stopping_.load(); });
  if (stopping_) return absl::CancelledError("index: shutting down");
  tuning.queries = static_cast<int64_t>(sample_ids.size());
  tuning.seconds = clock.Elapsed();
  WriterLock lock(&mutex_);
  settings_.effort = tuning.effort;
  settings_.tuning = tuning;
  tuned_at_items_ = std::max(tuned_at_items_, static_cast<int64_t>(ids_.size()));
  return tuning;
}

int64_t HyperbolicIndex::SampleItems(const RecallTarget& target, std::vector<int64_t>* ids,
                                     std::vector<float>* points) const {
  ReaderLock lock(&mutex_);
  const int64_t rows = static_cast<int64_t>(ids_.size());
  const int64_t count = std::min(rows, target.queries);
  std::vector<int64_t> order(rows);
  std::iota(order.begin(), order.end(), 0);
  std::mt19937_64 random(target.seed);
  for (int64_t i = 0; i < count; ++i) {
    std::swap(order[i], order[std::uniform_int_distribution<int64_t>(i, rows - 1)(random)]);
  }
  ids->resize(count);
  points->resize(count * options_.dim);
  for (int64_t i = 0; i < count; ++i) {
    (*ids)[i] = ids_[order[i]];
    std::copy_n(points_.row(order[i]), options_.dim, points->data() + i * options_.dim);
  }
  return rows;
}

std::vector<std::vector<int64_t>> HyperbolicIndex::ExactNeighbours(
    absl::Span<const int64_t> ids, absl::Span<const float> points, int64_t k) const {
  const int64_t queries = static_cast<int64_t>(ids.size());
  // Each query's k nearest so far, as a max-heap by Nearer.
  std::vector<std::vector<Neighbour>> nearest(queries);
  // Under the shared lock (VisitRowsInChunks).
  const auto scan = [&](absl::Span<const int64_t> rows) {
#pragma omp parallel for num_threads(options_.threads) schedule(static)
    for (int64_t q = 0; q < queries; ++q) {
      std::vector<Neighbour>& heap = nearest[q];
      for (const int64_t row : rows) {
        if (ids_[row] == ids[q]) continue;
        const Neighbour candidate{
            ids_[row], PoincareDistance(&points[q * options_.dim], points_.row(row), options_.dim,
                                        options_.c)};
        if (static_cast<int64_t>(heap.size()) < k) {
          heap.push_back(candidate);
          std::push_heap(heap.begin(), heap.end(), Nearer);
        } else if (Nearer(candidate, heap.front())) {
          std::pop_heap(heap.begin(), heap.end(), Nearer);
          heap.back() = candidate;
          std::push_heap(heap.begin(), heap.end(), Nearer);
        }
      }
    }
  };
  VisitRowsInChunks(std::max<int64_t>(1, kExactPairsPerHold / queries),
                    [this] { return !stopping_; }, scan);
  std::vector<std::vector<int64_t>> exact(queries);
  for (int64_t q = 0; q < queries; ++q) {
    for (const Neighbour& neighbour : nearest[q]) exact[q].push_back(neighbour.id);
  }
  return exact;
}

bool HyperbolicIndex::VisitRowsInChunks(
    int64_t rows_per_hold, const std::function<bool()>& keep_going,
    const std::function<void(absl::Span<const int64_t> rows)>& visit) const {
  absl::flat_hash_set<int64_t> seen;
  seen.reserve(size() + rows_per_hold);  // before the lock, as the caller's own room
  std::vector<int64_t> fresh;
  int64_t below = -1;  // rows [below, end) are visited; -1 before the first chunk
  while (below != 0) {
    ReaderLock lock(&mutex_);
    if (!keep_going()) return false;
    const int64_t rows = static_cast<int64_t>(ids_.size());
    const int64_t end = below < 0 ? rows : std::min(below, rows);
    const int64_t begin = std::max<int64_t>(0, end - rows_per_hold);
    fresh.clear();
    for (int64_t row = end - 1; row >= begin; --row) {
      if (seen.insert(ids_[row]).second) fresh.push_back(row);
    }
    visit(fresh);
    below = begin;
  }
  return true;
}

void HyperbolicIndex::WaitForRebuild() const {
  builder_.WaitIdle();
  tuner_.WaitIdle();
  builder_.WaitIdle();  // (a tuning starts no rebuild, but a write meanwhile may have)
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
  return SearchLocked(query.data(), options, settings_.effort, /*exclude=*/-1);
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
  return SearchLocked(points_.row(*found), options, settings_.effort, id);
}

std::vector<Neighbour> HyperbolicIndex::SearchLocked(const float* query,
                                                     const SearchOptions& options,
                                                     const SearchEffort& effort,
                                                     int64_t exclude) const {
  const int64_t size = static_cast<int64_t>(ids_.size());
  const int64_t k = options.k;
  int64_t wanted = std::max(k + (exclude >= 0 ? 1 : 0),
                            options.overfetch > 0 ? options.overfetch : effort.overfetch);
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
                        effort, candidates.data());
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
      results[q] = SearchLocked(&queries[q * options_.dim], options, settings_.effort,
                                /*exclude=*/-1);
    }
    return results;
  }
  const int64_t wanted = std::min<int64_t>(
      static_cast<int64_t>(ids_.size()),
      std::max(options.k, options.overfetch > 0 ? options.overfetch : settings_.effort.overfetch));
  std::vector<int64_t> candidates(count * wanted);
  const int threads = ThreadsFor(options);
  candidates_->Search(queries, wanted, threads, settings_.effort, candidates.data());
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
    tuned_at_items_ = 0;
    TuneIfGrown();
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
  tuned_at_items_ = 0;
  if (!journaling_) TuneIfGrown();  // else after the rebuild
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
  const SearchEffort most = candidates_->MostEffort();
  std::string text = candidates_->Describe();
  if (most.nprobe > 0) absl::StrAppend(&text, ", nprobe ", settings_.effort.nprobe);
  if (most.ef_search > 0) absl::StrAppend(&text, ", efSearch ", settings_.effort.ef_search);
  absl::StrAppend(&text, ", overfetch ", settings_.effort.overfetch);
  if (settings_.tuning.has_value()) {
    const RecallTuning& tuning = *settings_.tuning;
    absl::StrAppend(&text, ", tuned for recall@", tuning.target.k, " ", tuning.target.recall,
                    tuning.reached ? "" : " (not reached)", ": measured ",
                    absl::SixDigits(tuning.measured.recall), " +- ",
                    absl::SixDigits(tuning.measured.recall_error));
  }
  return text;
}

SearchSettings HyperbolicIndex::search_settings() const {
  ReaderLock lock(&mutex_);
  return settings_;
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
