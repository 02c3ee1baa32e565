#include "index/exact_index.h"

#include <faiss/IndexFlat.h>
#include <faiss/IndexIDMap.h>
#include <faiss/impl/IDSelector.h>

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "index/ball_geometry.h"

namespace hier::index {

absl::StatusOr<std::unique_ptr<ExactIndex>> ExactIndex::Create(const ExactIndexOptions& options) {
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
  return std::unique_ptr<ExactIndex>(new ExactIndex(options));
}

ExactIndex::ExactIndex(const ExactIndexOptions& options)
    : options_(options), candidates_([&] {
        auto map = std::make_unique<faiss::IndexIDMap2>(new faiss::IndexFlatIP(options.dim + 1));
        map->own_fields = true;
        return map;
      }()) {}

ExactIndex::~ExactIndex() = default;

absl::Status ExactIndex::CheckRows(absl::Span<const float> points, int64_t rows,
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

absl::Status ExactIndex::Upsert(absl::Span<const int64_t> ids, absl::Span<const float> points) {
  if (absl::Status valid = CheckRows(points, static_cast<int64_t>(ids.size()), "vectors");
      !valid.ok()) {
    return valid;
  }
  const int64_t dim = options_.dim;
  std::vector<float> lorentz(ids.size() * (dim + 1));
  for (size_t r = 0; r < ids.size(); ++r) {
    LorentzItemVector(points.data() + r * dim, dim, options_.c, &lorentz[r * (dim + 1)]);
  }
  absl::WriterMutexLock lock(&mutex_);
  // An id given twice keeps its last row, as two upserts in a row would.
  std::unordered_map<int64_t, size_t> last_row;
  for (size_t r = 0; r < ids.size(); ++r) last_row[ids[r]] = r;
  std::vector<int64_t> replaced;
  for (const auto& [id, row] : last_row) {
    if (coordinates_.count(id) != 0) replaced.push_back(id);
  }
  if (!replaced.empty()) {
    const faiss::IDSelectorBatch selector(replaced.size(), replaced.data());
    candidates_->remove_ids(selector);
  }
  std::vector<int64_t> added_ids;
  std::vector<float> added;
  for (const auto& [id, row] : last_row) {
    added_ids.push_back(id);
    added.insert(added.end(), lorentz.begin() + row * (dim + 1),
                 lorentz.begin() + (row + 1) * (dim + 1));
    coordinates_[id].assign(points.begin() + row * dim, points.begin() + (row + 1) * dim);
  }
  candidates_->add_with_ids(static_cast<faiss::Index::idx_t>(added_ids.size()), added.data(),
                            added_ids.data());
  return absl::OkStatus();
}

absl::Status ExactIndex::Delete(absl::Span<const int64_t> ids) {
  absl::WriterMutexLock lock(&mutex_);
  for (int64_t id : ids) {
    if (coordinates_.count(id) == 0) {
      return absl::NotFoundError(absl::StrCat("ids: no item has id ", id));
    }
  }
  std::vector<int64_t> unique(ids.begin(), ids.end());
  std::sort(unique.begin(), unique.end());
  unique.erase(std::unique(unique.begin(), unique.end()), unique.end());
  const faiss::IDSelectorBatch selector(unique.size(), unique.data());
  candidates_->remove_ids(selector);
  for (int64_t id : unique) coordinates_.erase(id);
  return absl::OkStatus();
}

absl::StatusOr<std::vector<Neighbour>> ExactIndex::Search(absl::Span<const float> query, int64_t k,
                                                          int64_t overfetch) const {
  if (k < 1 || k > options_.max_k) {
    return absl::InvalidArgumentError(
        absl::StrCat("k: must be in [1, ", options_.max_k, "], got ", k));
  }
  if (overfetch < 0) {
    return absl::InvalidArgumentError(absl::StrCat("overfetch: must be >= 0, got ", overfetch));
  }
  if (absl::Status valid = CheckRows(query, 1, "query"); !valid.ok()) return valid;
  const int64_t dim = options_.dim;
  std::vector<float> lorentz(dim + 1);
  LorentzQueryVector(query.data(), dim, options_.c, lorentz.data());

  absl::StatusOr<std::vector<Neighbour>> candidates = Candidates(
      query, lorentz, std::max(k, overfetch > 0 ? overfetch : options_.default_overfetch));
  if (!candidates.ok()) return candidates.status();
  std::vector<Neighbour>& neighbours = *candidates;
  const size_t keep = std::min<size_t>(k, neighbours.size());
  std::partial_sort(neighbours.begin(), neighbours.begin() + keep, neighbours.end(),
                    [](const Neighbour& a, const Neighbour& b) {
                      return a.distance != b.distance ? a.distance < b.distance : a.id < b.id;
                    });
  neighbours.resize(keep);
  return candidates;
}

absl::StatusOr<std::vector<Neighbour>> ExactIndex::Candidates(absl::Span<const float> query,
                                                              const std::vector<float>& lorentz,
                                                              int64_t wanted) const {
  absl::ReaderMutexLock lock(&mutex_);
  const int64_t fetch = std::min(static_cast<int64_t>(coordinates_.size()), wanted);
  if (fetch == 0) return absl::FailedPreconditionError("index: it holds no items yet");
  std::vector<float> scores(fetch);
  std::vector<faiss::Index::idx_t> labels(fetch);
  candidates_->search(1, lorentz.data(), fetch, scores.data(), labels.data());
  std::vector<Neighbour> neighbours;
  neighbours.reserve(fetch);
  for (faiss::Index::idx_t id : labels) {
    if (id < 0) continue;
    neighbours.push_back(
        {id, PoincareDistance(query.data(), coordinates_.at(id).data(), options_.dim, options_.c)});
  }
  return neighbours;
}

int64_t ExactIndex::size() const {
  absl::ReaderMutexLock lock(&mutex_);
  return static_cast<int64_t>(coordinates_.size());
}

}  // namespace hier::index
