// Exact hyperbolic k-nearest neighbours over a mutable set of items: a FAISS flat inner-product
// scan over the items' Lorentz vectors finds `overfetch` candidates (an exact ordering,
// architecture.md decision 1), which are re-ranked by Poincaré distance in double on the stored
// coordinates.
//
// Thread-safety: Search may run on many threads at once; Upsert and Delete take the lock
// exclusively, so they wait for running searches and new searches wait for them (absl::Mutex
// does not let a stream of searches starve a writer).
#pragma once

#include <cstdint>
#include <memory>
#include <unordered_map>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/types/span.h"

namespace faiss {
struct Index;
}  // namespace faiss

namespace hier::index {

struct ExactIndexOptions {
  int64_t dim = 128;
  double c = 0.1;
  int64_t default_overfetch = 100;  // candidates re-ranked when a search names none
  int64_t max_k = 1000;
};

struct Neighbour {
  int64_t id = 0;
  double distance = 0;  // Poincaré distance to the query
};

class ExactIndex {
 public:
  // InvalidArgument naming the option when dim, c, overfetch or max_k is out of range.
  static absl::StatusOr<std::unique_ptr<ExactIndex>> Create(const ExactIndexOptions& options);
  ~ExactIndex();

  // Adds or replaces items: `points` holds ids.size() rows of dim floats, each inside the ball.
  // Nothing changes unless every row is valid.
  absl::Status Upsert(absl::Span<const int64_t> ids, absl::Span<const float> points);

  // Removes items; NotFound naming the first unknown id (and nothing is removed).
  absl::Status Delete(absl::Span<const int64_t> ids);

  // The k nearest items to `query` (dim floats), nearest first. `overfetch` 0 uses the default;
  // it is raised to k when smaller. FailedPrecondition when the index is empty.
  absl::StatusOr<std::vector<Neighbour>> Search(absl::Span<const float> query, int64_t k,
                                                int64_t overfetch = 0) const;

  int64_t size() const;

 private:
  explicit ExactIndex(const ExactIndexOptions& options);
  absl::Status CheckRows(absl::Span<const float> points, int64_t rows, const char* field) const;
  // The `wanted` best items by the Lorentz scan (fewer when the index holds fewer), with their
  // exact distances to `query`, unsorted.
  absl::StatusOr<std::vector<Neighbour>> Candidates(absl::Span<const float> query,
                                                    const std::vector<float>& lorentz,
                                                    int64_t wanted) const;

  const ExactIndexOptions options_;
  mutable absl::Mutex mutex_;
  // An IDMap2 over a flat inner-product index of the items' Lorentz vectors.
  const std::unique_ptr<faiss::Index> candidates_ ABSL_PT_GUARDED_BY(mutex_);
  // Each item's Poincaré coordinates, for the re-rank.
  std::unordered_map<int64_t, std::vector<float>> coordinates_ ABSL_GUARDED_BY(mutex_);
};

}  // namespace hier::index
