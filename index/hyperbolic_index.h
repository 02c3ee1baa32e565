// Hyperbolic k-nearest neighbours over a mutable set of items: a candidate stage
// (candidate_stage.h: the exact Lorentz scan or an approximate FAISS index) proposes `overfetch`
// items, which are re-ranked by Poincaré distance in double on the stored coordinates, so the
// top of the list is exact whenever the true neighbours are among the candidates.
//
// Items carry an optional label; a search may keep to one label. A label with few items is
// scanned exactly; otherwise the candidates are filtered with an overfetch scaled by the label's
// share of the items and doubled until k remain. A search that would need every item as a
// candidate scans the items exactly instead.
//
// Thread-safety: every method may be called from any thread. Searches run concurrently; Upsert,
// Delete and Restore take the lock exclusively, so they wait for running searches and new
// searches wait for them (rw_mutex.h: a stream of searches cannot starve a writer). An Upsert
// first works out under the shared lock what needs no change (an IVF's list for each row, and
// copies with more room of the lists it would overflow: CandidateStage::PrepareAdd), so its
// exclusive hold only appends.
//
// Rebuilding the candidate stage (training an IVF once there are enough items, retraining it when
// the items have grown 4x, rebuilding HNSW or a scan crowded by deleted entries) happens beside
// the live stage, which goes on serving and taking writes: a thread copies the items in chunks
// under the shared lock, builds the new stage without any lock, replays the writes made meanwhile
// (kept in a journal) in rounds, and once a round is short replays the last one with writers held
// off (searches go on), so the exclusive lock is held for the exchange of the stages alone.
// Meanwhile the index holds two stages and a copy of the coordinates.
//
// How hard a search looks (SearchEffort: IVF lists visited, HNSW's candidate list, candidates
// re-ranked) starts from the options and may be tuned for a recall target (TuneForRecall, also
// done by the index itself with IndexOptions::target_recall): settings are measured on a sample of
// the items against their exact neighbours, beside searches and writes, and the fastest that
// reaches the target is used from then on.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "index/background_worker.h"
#include "index/candidate_stage.h"
#include "index/recall_tuning.h"
#include "index/row_blocks.h"
#include "index/sharded_id_map.h"
#include "index/rw_mutex.h"

namespace hier::index {

struct IndexOptions {
  int64_t dim = 128;
  double c = 0.1;
  CandidateStageOptions candidates;
  int64_t default_overfetch = 100;  // candidates re-ranked when a search names none
  // Above 0, for approximate kinds: after each build of the stage (training, retraining, a
  // rebuild, a restore) and each doubling of the items from 1,000 on, the effort is tuned in the
  // background for this recall@10 (TuneForRecall); until then, and at 0, searches use
  // candidates.nprobe, candidates.ef_search and default_overfetch.
  double target_recall = 0;
  int64_t max_k = 1000;
  int threads = 1;                 // FAISS and OpenMP threads per call
  int64_t label_scan_max = 20000;  // a label with at most this many items is scanned exactly
};

// Where a single search spent its time (seconds, summed over the rounds of a filtered search).
struct SearchTimings {
  double candidate_seconds = 0;  // the candidate stage (or the exact scan that replaces it)
  double rerank_seconds = 0;     // exact distances of the candidates
};

// How searches look now, and the tuning that chose it (none: the options' settings).
struct SearchSettings {
  SearchEffort effort;
  std::optional<RecallTuning> tuning;
};

struct SearchOptions {
  int64_t k = 10;
  int64_t overfetch = 0;             // 0: the index's (search_settings()); raised to k if smaller
  std::string label;                 // non-empty: only items with this label
  int threads = 0;                   // FAISS and OpenMP threads; 0: the index's
  SearchTimings* timings = nullptr;  // Search and SearchById fill it in when set
};

struct Neighbour {
  int64_t id = 0;
  double distance = 0;  // Poincaré distance to the query
};

// The order results come in: nearer first, equal distances by id (a router merging shards' results
// keeps it).
bool Nearer(const Neighbour& a, const Neighbour& b);

// What a search answers when the index holds no item, or no item with the label; a router that
// merges shards answers the same when every shard did.
absl::Status EmptyIndexError();
absl::Status NoSuchLabelError(const std::string& label);

class HyperbolicIndex {
 public:
  // InvalidArgument naming the option when one is out of range.
  static absl::StatusOr<std::unique_ptr<HyperbolicIndex>> Create(const IndexOptions& options);
  ~HyperbolicIndex();

  // Adds or replaces items: `points` holds ids.size() rows of dim floats, each inside the ball;
  // `labels` is empty or holds one label per id. Nothing changes unless every row is valid.
  absl::Status Upsert(absl::Span<const int64_t> ids, absl::Span<const float> points,
                      absl::Span<const std::string> labels = {});

  // Removes items; NotFound naming the first unknown id (and nothing is removed).
  absl::Status Delete(absl::Span<const int64_t> ids);

  // The k nearest items to `query` (dim floats), nearest first. FailedPrecondition when the
  // index is empty, NotFound when no item has the requested label.
  absl::StatusOr<std::vector<Neighbour>> Search(absl::Span<const float> query,
                                                const SearchOptions& options) const;

  // Search for each row of `queries`, as one batch through the candidate stage.
  absl::StatusOr<std::vector<std::vector<Neighbour>>> SearchBatch(
      absl::Span<const float> queries, const SearchOptions& options) const;

  // The k nearest other items to item `id`; NotFound when there is no such item.
  absl::StatusOr<std::vector<Neighbour>> SearchById(int64_t id, const SearchOptions& options) const;

  // Replaces every item with these and the candidate stage with the one `candidates` holds (a
  // serialized stage taken when the items differed from these only in `changed_since`), or,
  // when `candidates` is empty or does not read, with one rebuilt from the items. Returns whether
  // the serialized stage was used; `*problem` says why not when it was given but unusable.
  absl::StatusOr<bool> Restore(absl::Span<const int64_t> ids, absl::Span<const float> points,
                               absl::Span<const std::string> labels,
                               absl::Span<const uint8_t> candidates,
                               absl::Span<const int64_t> changed_since, std::string* problem);

  // The candidate stage's state for a snapshot; empty when the stage is cheaper to rebuild.
  std::vector<uint8_t> SerializeCandidates() const;
  // False when the candidate stage is rebuilt from the items as fast as it is read back.
  bool snapshots_worthwhile() const;

  // Measures settings of the search effort on a sample of the items against their exact
  // neighbours (recall_tuning.h), and has searches use the fastest that reaches the target (or,
  // when none does, the one with the most recall). Searches and writes go on meanwhile; one
  // tuning runs at a time. InvalidArgument naming a bad field of `target`, FailedPrecondition
  // when the index holds k items or fewer, Cancelled when the index is being destroyed.
  absl::StatusOr<RecallTuning> TuneForRecall(const RecallTarget& target);
  SearchSettings search_settings() const;

  // Blocks until no rebuild of the candidate stage (its result swapped in or given up) and no
  // background tuning is running; for tests and benchmarks that look at the stage.
  void WaitForRebuild() const;

  bool Contains(int64_t id) const;
  bool HasLabel(const std::string& label) const;
  // Item `id`'s Poincaré coordinates; none when the index does not hold it.
  std::optional<std::vector<float>> Point(int64_t id) const;
  int64_t size() const;
  // The candidate stage in words (candidate_stage.h).
  std::string Describe() const;
  // Bytes held: coordinates, labels and the candidate stage, roughly.
  int64_t memory_bytes() const;
  const IndexOptions& options() const { return options_; }

 private:
  HyperbolicIndex(const IndexOptions& options, std::unique_ptr<CandidateStage> candidates);

  absl::Status CheckRows(absl::Span<const float> points, int64_t rows, const char* field) const;
  absl::Status CheckSearch(const SearchOptions& options) const;
  int ThreadsFor(const SearchOptions& options) const;
  std::vector<Neighbour> SearchLocked(const float* query, const SearchOptions& options,
                                      const SearchEffort& effort, int64_t exclude) const
      ABSL_SHARED_LOCKS_REQUIRED(mutex_);
  // Exact distances from `query` to the candidates that are live, carry `label` (when
  // non-empty) and are not `exclude`.
  std::vector<Neighbour> Rerank(const float* query, const int64_t* candidates, int64_t count,
                                const std::string& label, int64_t exclude) const
      ABSL_SHARED_LOCKS_REQUIRED(mutex_);
  // Exact distances from `query` to every item (with `label` when non-empty) but `exclude`.
  std::vector<Neighbour> ScanExactly(const float* query, const std::string& label,
                                     int64_t exclude) const ABSL_SHARED_LOCKS_REQUIRED(mutex_);
  void PutRow(int64_t id, const float* point, const std::string& label)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  void RemoveRow(int64_t id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  // Starts a rebuild beside the live stage when the stage wants one and none runs.
  void RebuildCandidatesIfWanted() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  // Notes a write for the rebuild in progress, if any (`points` empty: a delete).
  void Journal(absl::Span<const int64_t> ids, absl::Span<const float> points)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  // Tunes for options_.target_recall, when set and the stage approximate (tunes_itself_).
  void TuneForOptionsTarget() ABSL_LOCKS_EXCLUDED(mutex_);
  // Starts TuneForOptionsTarget on the tuner when the items have doubled since the last start
  // (and number kLeastItemsToTune): an HNSW graph is never retrained, and IVF lists fill up.
  void TuneIfGrown() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  // The rebuild thread's work: copy, build, catch up, swap (unless `generation` is stale), then
  // tune when a target is set.
  void RunRebuild(uint64_t generation) ABSL_LOCKS_EXCLUDED(mutex_);
  // Visits every item once, a chunk of `rows_per_hold` rows per hold of the shared lock, so that
  // writers never wait for the whole walk: `visit` gets, under the lock, the chunk's rows whose
  // items were not met before. From the last row down: a delete moves the last row into the hole,
  // so a row not visited yet can only move to another row not visited yet. Returns false, having
  // stopped, when `keep_going` (asked under the lock before each chunk) says no.
  bool VisitRowsInChunks(int64_t rows_per_hold, const std::function<bool()>& keep_going,
                         const std::function<void(absl::Span<const int64_t> rows)>& visit) const
      ABSL_LOCKS_EXCLUDED(mutex_);
  // TuneForRecall's parts: a sample of items (ids and their rows; returns the items held), and
  // each one's exact k nearest other items, found a few rows at a time under the shared lock.
  int64_t SampleItems(const RecallTarget& target, std::vector<int64_t>* ids,
                      std::vector<float>* points) const ABSL_LOCKS_EXCLUDED(mutex_);
  std::vector<std::vector<int64_t>> ExactNeighbours(absl::Span<const int64_t> ids,
                                                    absl::Span<const float> points,
                                                    int64_t k) const ABSL_LOCKS_EXCLUDED(mutex_);

  const IndexOptions options_;
  const bool tunes_itself_;  // options_.target_recall is set and the kind approximate
  mutable RwMutex mutex_;
  std::unique_ptr<CandidateStage> candidates_ ABSL_PT_GUARDED_BY(mutex_);
  SearchSettings settings_ ABSL_GUARDED_BY(mutex_);
  std::mutex tuning_;  // held by a tuning throughout
  // Writes since a rebuild copied the items, while one runs; each entry is ids and their rows
  // (an upsert) or ids alone (a delete).
  struct JournalEntry {
    std::vector<int64_t> ids;
    std::vector<float> points;
  };
  bool journaling_ ABSL_GUARDED_BY(mutex_) = false;
  uint64_t generation_ ABSL_GUARDED_BY(mutex_) = 0;  // Restore makes running rebuilds stale
  // Counts the stage's replacements (a rebuild swapped in, Restore), so that an Upsert's
  // assignment worked out on one stage is not given to another.
  uint64_t stage_epoch_ ABSL_GUARDED_BY(mutex_) = 0;
  std::mutex journal_mutex_;
  std::vector<JournalEntry> journal_ ABSL_GUARDED_BY(journal_mutex_);
  // Held by Upsert and Delete throughout, and by a rebuild's last catch-up round, which then
  // needs no index lock (Restore does not take it: a rebuild it makes stale gives up at the swap).
  std::mutex writers_;
  std::atomic<bool> stopping_{false};
  BackgroundWorker builder_;  // rebuilds of the candidate stage (then a tuning, when wanted)
  BackgroundWorker tuner_;    // tunings started by growth or a restore
  // Items when a tuning last started from growth or ended (TuneIfGrown tunes again at twice this).
  int64_t tuned_at_items_ ABSL_GUARDED_BY(mutex_) = 0;
  // Dense rows (a removed row is filled with the last one): id, Poincaré coordinates, label.
  std::vector<int64_t> ids_ ABSL_GUARDED_BY(mutex_);
  RowBlocks points_ ABSL_GUARDED_BY(mutex_);
  // Each row's label as a code into label_names_ (0: none): four bytes a row, however long the
  // label; codes are never reused while the index lives (labels are few).
  std::vector<int32_t> label_of_row_ ABSL_GUARDED_BY(mutex_);
  std::vector<std::string> label_names_ ABSL_GUARDED_BY(mutex_) = {std::string()};
  absl::flat_hash_map<std::string, int32_t> label_codes_ ABSL_GUARDED_BY(mutex_);
  ShardedIdMap<int64_t> row_of_ ABSL_GUARDED_BY(mutex_);  // id -> row
  absl::flat_hash_map<std::string, ShardedIdMap<bool>> ids_by_label_
      ABSL_GUARDED_BY(mutex_);
};

}  // namespace hier::index
