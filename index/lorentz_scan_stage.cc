// The exact candidate stage: a flat maximum-inner-product scan over the items' Lorentz vectors,
// whose order is the Poincaré order (ball_geometry.h). Rows stay dense: a removed row is filled
// with the last one. A single query is split across threads by rows and scanned with a
// vectorised kernel; a batch goes to FAISS's blocked (BLAS) scan.
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

// Rows scored per block of a single-query scan (their scores stay in L1).
constexpr int64_t kScanBlock = 256;

struct ScoredRow {
  float score;
  int64_t row;
};

// Orders by score, higher first (as a heap comparator: the lowest score on top).
bool Better(const ScoredRow& a, const ScoredRow& b) {
  return a.score != b.score ? a.score > b.score : a.row < b.row;
}

// out[r] = <query, rows[r]> for `count` rows of `width` floats. Four rows at a time, so four
// independent sums hide the adds' latency. Inlined into a baseline and an AVX2 + FMA version;
// InnerProducts picks one for the CPU it runs on (Debian's FAISS kernels are the baseline's).
[[gnu::always_inline]] inline void InnerProductsKernel(const float* query, const float* rows,
                                                       int64_t count, int64_t width, float* out) {
  int64_t r = 0;
  for (; r + 4 <= count; r += 4) {
    const float* row0 = rows + r * width;
    const float* row1 = row0 + width;
    const float* row2 = row1 + width;
    const float* row3 = row2 + width;
    float sum0 = 0, sum1 = 0, sum2 = 0, sum3 = 0;
#pragma omp simd reduction(+ : sum0, sum1, sum2, sum3)
    for (int64_t j = 0; j < width; ++j) {
      sum0 += query[j] * row0[j];
      sum1 += query[j] * row1[j];
      sum2 += query[j] * row2[j];
      sum3 += query[j] * row3[j];
    }
    out[r] = sum0;
    out[r + 1] = sum1;
    out[r + 2] = sum2;
    out[r + 3] = sum3;
  }
  for (; r < count; ++r) {
    const float* row = rows + r * width;
    float sum = 0;
#pragma omp simd reduction(+ : sum)
    for (int64_t j = 0; j < width; ++j) sum += query[j] * row[j];
    out[r] = sum;
  }
}

void InnerProductsBaseline(const float* query, const float* rows, int64_t count, int64_t width,
                           float* out) {
  InnerProductsKernel(query, rows, count, width, out);
}

__attribute__((target("avx2,fma"))) void InnerProductsAvx2(const float* query, const float* rows,
                                                           int64_t count, int64_t width,
                                                           float* out) {
  InnerProductsKernel(query, rows, count, width, out);
}

void InnerProducts(const float* query, const float* rows, int64_t count, int64_t width,
                   float* out) {
  static const auto kernel = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") ? InnerProductsAvx2
                                                                           : InnerProductsBaseline;
  }();
  kernel(query, rows, count, width, out);
}

class LorentzScanStage final : public CandidateStage {
 public:
  LorentzScanStage(int64_t dim, double c) : dim_(dim), width_(LorentzWidth(dim)), c_(c) {}

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

  void Search(absl::Span<const float> queries, int64_t wanted, int threads, const SearchEffort&,
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

  SearchEffort MostEffort() const override { return {0, 0, 0}; }

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
  // The k best rows for one Lorentz query vector: each thread scans a slice of the rows in
  // blocks (InnerProducts, then a k-element heap), and the slices' winners are merged.
  void ScanOneQuery(const float* query, int64_t k, int threads, int64_t* best) const {
    const int64_t rows = static_cast<int64_t>(ids_.size());
    const int64_t slices = std::max<int64_t>(1, std::min<int64_t>(threads, rows / k));
    std::vector<std::vector<ScoredRow>> winners(slices);
#pragma omp parallel for num_threads(static_cast <int>(slices)) schedule(static, 1)
    for (int64_t s = 0; s < slices; ++s) {
      const int64_t end = rows * (s + 1) / slices;
      std::vector<ScoredRow>& heap = winners[s];  // a min-heap on score: the worst kept on top
      heap.reserve(k);
      float scores[kScanBlock];
      for (int64_t begin = rows * s / slices; begin < end; begin += kScanBlock) {
        const int64_t count = std::min(kScanBlock, end - begin);
        InnerProducts(query, &vectors_[begin * width_], count, width_, scores);
        for (int64_t i = 0; i < count; ++i) {
          if (static_cast<int64_t>(heap.size()) < k) {
            heap.push_back({scores[i], begin + i});
            std::push_heap(heap.begin(), heap.end(), Better);
          } else if (scores[i] > heap.front().score) {
            std::pop_heap(heap.begin(), heap.end(), Better);
            heap.back() = {scores[i], begin + i};
            std::push_heap(heap.begin(), heap.end(), Better);
          }
        }
      }
    }
    std::vector<ScoredRow> merged;
    for (const std::vector<ScoredRow>& heap : winners) {
      merged.insert(merged.end(), heap.begin(), heap.end());
    }
    std::partial_sort(merged.begin(), merged.begin() + k, merged.end(), Better);
    for (int64_t j = 0; j < k; ++j) best[j] = merged[j].row;
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
