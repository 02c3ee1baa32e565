// The exact candidate stage: a flat maximum-inner-product scan over the items' Lorentz vectors,
// whose order is the Poincaré order (ball_geometry.h). Rows stay dense: a removed row is filled
// with the last one. A single query is split across threads by rows; a batch goes to FAISS's
// blocked (BLAS) scan.
#include <faiss/utils/distances.h>
#include <omp.h>

#include <algorithm>
#include <limits>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "index/ball_geometry.h"
#include "index/candidate_stage.h"

namespace hier::index {
namespace {

// FAISS switches from per-query scans to its blocked BLAS scan at this many queries.
constexpr int64_t kBlockedScanQueries = 20;

class LorentzScanStage final : public CandidateStage {
 public:
  LorentzScanStage(int64_t dim, double c) : dim_(dim), width_(dim + 1), c_(c) {}

  void Add(absl::Span<const int64_t> ids, absl::Span<const float> points) override {
    vectors_.resize((ids_.size() + ids.size()) * width_);
    for (size_t i = 0; i < ids.size(); ++i) {
      const int64_t row = static_cast<int64_t>(ids_.size());
      LorentzItemVector(points.data() + i * dim_, dim_, c_, &vectors_[row * width_]);
      row_of_[ids[i]] = row;
      ids_.push_back(ids[i]);
    }
  }

  void Remove(absl::Span<const int64_t> ids) override {
    for (int64_t id : ids) {
      const auto found = row_of_.find(id);
      if (found == row_of_.end()) continue;
      const int64_t row = found->second;
      const int64_t last = static_cast<int64_t>(ids_.size()) - 1;
      if (row != last) {
        std::copy_n(&vectors_[last * width_], width_, &vectors_[row * width_]);
        ids_[row] = ids_[last];
        row_of_[ids_[row]] = row;
      }
      row_of_.erase(found);
      ids_.pop_back();
      vectors_.resize(ids_.size() * width_);
    }
  }

  void Search(absl::Span<const float> queries, int64_t wanted, int threads,
              int64_t* out) const override {
    const int64_t count = static_cast<int64_t>(queries.size()) / dim_;
    const int64_t rows = static_cast<int64_t>(ids_.size());
    const int64_t k = std::min(wanted, rows);
    std::fill(out, out + count * wanted, -1);
    if (k == 0) return;
    std::vector<float> lorentz(count * width_);
    for (int64_t q = 0; q < count; ++q) {
      LorentzQueryVector(queries.data() + q * dim_, dim_, c_, &lorentz[q * width_]);
    }
    std::vector<int64_t> best_rows(count * k);
    if (count >= kBlockedScanQueries) {
      std::vector<float> scores(count * k);
      omp_set_num_threads(threads);
      faiss::knn_inner_product(lorentz.data(), vectors_.data(), width_, count, rows, k,
                               scores.data(), best_rows.data());
    } else {
      for (int64_t q = 0; q < count; ++q) {
        ScanOneQuery(&lorentz[q * width_], k, threads, &best_rows[q * k]);
      }
    }
    for (int64_t q = 0; q < count; ++q) {
      for (int64_t j = 0; j < k; ++j) {
        const int64_t row = best_rows[q * k + j];
        out[q * wanted + j] = row < 0 ? -1 : ids_[row];
      }
    }
  }

  bool WantsRebuild() const override { return false; }

  void Rebuild(absl::Span<const int64_t> ids, absl::Span<const float> points, int) override {
    ids_.clear();
    vectors_.clear();
    row_of_.clear();
    Add(ids, points);
  }

  bool persistent() const override { return false; }
  std::vector<uint8_t> Serialize() const override { return {}; }
  absl::Status Deserialize(absl::Span<const uint8_t> bytes) override {
    if (bytes.empty()) return absl::OkStatus();
    return absl::DataLossError("candidates: the exact scan keeps no snapshot");
  }

  std::string Describe() const override {
    return absl::StrCat("exact: flat inner-product scan over ", ids_.size(), " Lorentz vectors of ",
                        width_, " floats");
  }

  int64_t memory_bytes() const override {
    return static_cast<int64_t>(vectors_.capacity() * sizeof(float) +
                                ids_.capacity() * sizeof(int64_t) +
                                row_of_.capacity() * (2 * sizeof(int64_t) + 1));
  }

 private:
  // The k best rows for one Lorentz query vector: each thread scans a slice of the rows, then
  // the slices' winners are merged.
  void ScanOneQuery(const float* query, int64_t k, int threads, int64_t* best) const {
    const int64_t rows = static_cast<int64_t>(ids_.size());
    const int64_t slices = std::max<int64_t>(1, std::min<int64_t>(threads, rows / k));
    std::vector<float> scores(slices * k, -std::numeric_limits<float>::infinity());
    std::vector<int64_t> found(slices * k, -1);
#pragma omp parallel for num_threads(static_cast <int>(slices)) schedule(static, 1)
    for (int64_t s = 0; s < slices; ++s) {
      const int64_t begin = rows * s / slices;
      const int64_t end = rows * (s + 1) / slices;
      faiss::knn_inner_product(query, &vectors_[begin * width_], width_, 1, end - begin, k,
                               &scores[s * k], &found[s * k]);
      for (int64_t j = 0; j < k; ++j) {
        if (found[s * k + j] >= 0) found[s * k + j] += begin;
      }
    }
    std::vector<int64_t> order(slices * k);
    for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int64_t>(i);
    std::partial_sort(order.begin(), order.begin() + k, order.end(),
                      [&](int64_t a, int64_t b) { return scores[a] > scores[b]; });
    for (int64_t j = 0; j < k; ++j) best[j] = found[order[j]];
  }

  const int64_t dim_;
  const int64_t width_;
  const double c_;
  std::vector<float> vectors_;  // rows x width_ Lorentz item vectors
  std::vector<int64_t> ids_;    // the item id of each row
  absl::flat_hash_map<int64_t, int64_t> row_of_;
};

}  // namespace

std::unique_ptr<CandidateStage> MakeLorentzScanStage(int64_t dim, double c) {
  return std::make_unique<LorentzScanStage>(dim, c);
}

}  // namespace hier::index
