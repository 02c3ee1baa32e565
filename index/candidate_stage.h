// The candidate stage of a search: a FAISS index over the items that proposes, for each query,
// a few items likely to be among its nearest, for the caller to re-rank by exact distance
// (architecture.md decision 1).
//
// Kinds, chosen by name or by a FAISS factory string:
//   exact     a flat inner-product scan over the items' Lorentz vectors: exact ordering;
//   ivf-flat  IVF lists with full vectors;
//   ivf-sq8   the same with 8-bit scalar-quantised vectors (a quarter of the memory);
//   hnsw      an HNSW graph;
//   any other string is a FAISS index_factory string.
// Approximate kinds use L2 on the Poincaré coordinates (or, by option, on logmap0 tangent
// coordinates: measured worse, README "Index"). A kind that needs training scans all items
// exactly until it holds `min_train_items`, then trains on a sample of them.
//
// Thread-safety: Search and PrepareAdd are const and may run concurrently; Add, Remove and Rebuild
// may not run alongside anything else (HyperbolicIndex holds the lock).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace hier::index {

// How hard a search looks: IVF lists visited, HNSW's candidate list, and how many candidates the
// index re-ranks exactly (each stage reads its own knob; the exact scan none). More of each finds
// more of the true neighbours, slower. HyperbolicIndex starts from the options' values and may
// tune them for a recall target (recall_tuning.h).
struct SearchEffort {
  int64_t nprobe = 64;
  int64_t ef_search = 256;
  int64_t overfetch = 100;
};

struct CandidateStageOptions {
  std::string kind = "exact";
  // What approximate kinds index with L2: "poincare" (the points) or "tangent" (logmap0).
  std::string coordinates = "poincare";
  int64_t nlist = 0;    // IVF lists; 0: 4 sqrt(n) at training, retrained as n grows 4x
  int64_t nprobe = 64;  // IVF lists visited per query
  int64_t hnsw_m = 32;  // HNSW links per node
  int64_t ef_construction = 80;
  int64_t ef_search = 256;  // HNSW candidate list length per query
  int64_t min_train_items = 10000;
  uint64_t train_seed = 1234;  // which items form the training sample
};

// What an add works out beside searches (CandidateStage::PrepareAdd): an IVF's list for each row,
// and, for the lists those rows would overflow, copies with room to spare (all lists fill at the
// same pace, so they run out of room together: growing them in the add would move most of the
// codes under the index's exclusive lock).
struct PreparedAdd {
  struct GrownList {
    int64_t list = 0;
    std::vector<int64_t> ids;
    std::vector<uint8_t> codes;
  };
  std::vector<int64_t> lists;
  std::vector<GrownList> grown;
};

class CandidateStage {
 public:
  virtual ~CandidateStage() = default;

  // Adds items the stage does not hold yet; `points` holds ids.size() Poincaré rows.
  virtual void Add(absl::Span<const int64_t> ids, absl::Span<const float> points) = 0;

  // The part of adding these rows that only reads the stage, so that it can run under a shared
  // lock beside searches (PreparedAdd); empty when there is none. Safe to call alongside Search.
  virtual PreparedAdd PrepareAdd(absl::Span<const float> points) const { return {}; }
  // Add, with `prepared` from this stage's PrepareAdd of the same rows, the stage unchanged since
  // but for Remove (empty: as Add). What it replaces is left in `prepared`, to be freed after the
  // caller's lock.
  virtual void AddPrepared(absl::Span<const int64_t> ids, absl::Span<const float> points,
                           PreparedAdd& prepared) {
    Add(ids, points);
  }

  // Forgets items; ids the stage does not hold are ignored.
  virtual void Remove(absl::Span<const int64_t> ids) = 0;

  // For each query row (Poincaré coordinates) up to `wanted` candidate ids, most promising
  // first, written to out[q * wanted...]; -1 fills what is left. FAISS and OpenMP use `threads`;
  // an IVF visits effort.nprobe lists, HNSW keeps effort.ef_search candidates.
  virtual void Search(absl::Span<const float> queries, int64_t wanted, int threads,
                      const SearchEffort& effort, int64_t* out) const = 0;

  // The most effort worth trying on this stage: nprobe is the IVF's list count (0: the stage
  // has no lists), ef_search a ceiling for HNSW (at most its entries; 0: no graph); overfetch is
  // left 0.
  virtual SearchEffort MostEffort() const = 0;

  // True when the stage would serve better rebuilt from all items now: it has enough items to
  // train, it has outgrown its training, or deleted entries crowd it.
  virtual bool WantsRebuild() const = 0;

  // Replaces the contents with exactly these items, training first where the kind needs it.
  virtual void Rebuild(absl::Span<const int64_t> ids, absl::Span<const float> points,
                       int threads) = 0;

  // Whether a snapshot is worth keeping: false when rebuilding from the items is as cheap as
  // reading one (the exact scan).
  virtual bool persistent() const = 0;

  // The stage's state for a snapshot, and reading it back (DataLoss when it does not parse or
  // does not match the stage's kind and dimension).
  virtual std::vector<uint8_t> Serialize() const = 0;
  virtual absl::Status Deserialize(absl::Span<const uint8_t> bytes) = 0;

  // What the stage is now, e.g. "IVF4000,Flat, trained on 160000 of 1000000 items".
  virtual std::string Describe() const = 0;

  // Bytes the stage holds, roughly (vectors, lists, graph).
  virtual int64_t memory_bytes() const = 0;
};

// InvalidArgument naming the option when it is out of range or the kind is neither a known name
// nor a factory string FAISS accepts.
absl::StatusOr<std::unique_ptr<CandidateStage>> MakeCandidateStage(
    const CandidateStageOptions& options, int64_t dim, double c);

// IVF lists for `items` items when the options leave nlist at 0: 4 sqrt(items), at most one
// list per TrainingSampleSize(1) items.
int64_t AutomaticNlist(int64_t items);

// Items an IVF of `nlist` lists is trained on (a sample; FAISS asks for at least 39 per list).
int64_t TrainingSampleSize(int64_t nlist);

// The two implementations MakeCandidateStage chooses between.
std::unique_ptr<CandidateStage> MakeLorentzScanStage(int64_t dim, double c);
std::unique_ptr<CandidateStage> MakeApproximateStage(const CandidateStageOptions& options,
                                                     int64_t dim, double c);

}  // namespace hier::index
