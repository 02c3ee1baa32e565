// The index benchmark: for each candidate kind at its defaults, hier_index (candidates + exact
// re-rank) against FAISS called directly with the same settings and no re-rank, on the
// hierarchical benchmark data (hyperbolic_bench_data.h): build time, memory, recall@10, queries/s
// batched (1,000 queries per call) and one at a time with 1 and 2 threads, and single-query
// latency percentiles. Speeds are medians over --repeats passes; latency percentiles pool the
// passes' samples. Prints a Markdown table, and JSON lines with --json=FILE.
//
// index_bench [--items=100000] [--kinds=exact,ivf-flat,ivf-sq8,hnsw] [--repeats=3]
//             [--single-queries=1000] [--cache=DIR] [--json=FILE]
//             [--nprobe=N] [--ef-search=N]   (override the defaults for both systems)
//             [--target-recall=R]  (tune hier_index's effort for recall@10 R on a sample of the
//                                   items once built; FAISS direct gets the same nprobe/efSearch)
#include <faiss/IVFlib.h>
#include <faiss/IndexFlat.h>
#include <faiss/IndexHNSW.h>
#include <faiss/IndexIVF.h>
#include <faiss/index_factory.h>
#include <faiss/utils/utils.h>
#include <malloc.h>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "index/ball_geometry.h"
#include "index/candidate_stage.h"
#include "index/hyperbolic_index.h"
#include "tests/bench/hyperbolic_bench_data.h"

namespace hier::bench {
namespace {

constexpr int64_t kK = 10;
constexpr int64_t kOverfetch = 100;  // the index's default, and what FAISS direct fetches
constexpr int kThreadCounts[] = {1, 2};

double Seconds(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - since).count();
}

// Resident memory in bytes, after returning freed heap to the system.
int64_t ResidentBytes() {
  malloc_trim(0);
  std::ifstream statm("/proc/self/statm");
  int64_t size = 0, resident = 0;
  statm >> size >> resident;
  return resident * sysconf(_SC_PAGESIZE);
}

double Median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  return values[values.size() / 2];
}

double Percentile(std::vector<double> values, double fraction) {
  std::sort(values.begin(), values.end());
  return values[std::min(values.size() - 1, static_cast<size_t>(fraction * values.size()))];
}

// One system under test: answers the top-k ids for a batch of queries or for one.
class Searcher {
 public:
  virtual ~Searcher() = default;
  virtual std::vector<std::vector<int64_t>> Batch(const std::vector<float>& queries,
                                                  int threads) const = 0;
  virtual std::vector<int64_t> One(const float* query, int threads) const = 0;
};

class IndexSearcher final : public Searcher {
 public:
  IndexSearcher(std::unique_ptr<index::HyperbolicIndex> index, int64_t dim)
      : index_(std::move(index)), dim_(dim) {}

  std::vector<std::vector<int64_t>> Batch(const std::vector<float>& queries,
                                          int threads) const override {
    const auto found = index_->SearchBatch(queries, Options(threads));
    if (!found.ok()) Die(found.status().ToString());
    std::vector<std::vector<int64_t>> ids;
    for (const auto& neighbours : *found) ids.push_back(Ids(neighbours));
    return ids;
  }

  std::vector<int64_t> One(const float* query, int threads) const override {
    const auto found = index_->Search(absl::MakeConstSpan(query, dim_), Options(threads));
    if (!found.ok()) Die(found.status().ToString());
    return Ids(*found);
  }

 private:
  static index::SearchOptions Options(int threads) {
    index::SearchOptions options;
    options.k = kK;
    options.threads = threads;
    return options;
  }
  static std::vector<int64_t> Ids(const std::vector<index::Neighbour>& neighbours) {
    std::vector<int64_t> ids;
    for (const index::Neighbour& n : neighbours) ids.push_back(n.id);
    return ids;
  }
  [[noreturn]] static void Die(const std::string& message) {
    std::fprintf(stderr, "index_bench: %s\n", message.c_str());
    std::exit(1);
  }

  std::unique_ptr<index::HyperbolicIndex> index_;
  const int64_t dim_;
};

// The rows an approximate stage indexes (candidate_stage.h): tangent or Poincaré coordinates.
void StageCoordinates(const index::CandidateStageOptions& settings, const float* point, int64_t dim,
                      double c, float* out) {
  if (settings.coordinates == "tangent") {
    index::LogMap0(point, dim, c, out);
  } else {
    std::copy_n(point, dim, out);
  }
}

// FAISS on its own: the same index over the same vectors (Lorentz for exact, else the stage's),
// fetching the same `kOverfetch` candidates, whose first k are the answer (no re-rank).
class FaissSearcher final : public Searcher {
 public:
  FaissSearcher(std::unique_ptr<faiss::Index> index, const index::CandidateStageOptions& settings,
                int64_t dim, double c)
      : index_(std::move(index)),
        settings_(settings),
        dim_(dim),
        c_(c),
        lorentz_(settings.kind == "exact") {}

  std::vector<std::vector<int64_t>> Batch(const std::vector<float>& queries,
                                          int threads) const override {
    const int64_t count = static_cast<int64_t>(queries.size()) / dim_;
    const std::vector<float> vectors = QueryVectors(queries.data(), count);
    std::vector<float> distances(count * kOverfetch);
    std::vector<faiss::Index::idx_t> labels(count * kOverfetch);
    omp_set_num_threads(threads);
    index_->search(count, vectors.data(), kOverfetch, distances.data(), labels.data());
    std::vector<std::vector<int64_t>> ids(count);
    for (int64_t q = 0; q < count; ++q) {
      ids[q].assign(labels.begin() + q * kOverfetch, labels.begin() + q * kOverfetch + kK);
    }
    return ids;
  }

  std::vector<int64_t> One(const float* query, int threads) const override {
    const std::vector<float> vector = QueryVectors(query, 1);
    std::vector<float> distances(kOverfetch);
    std::vector<faiss::Index::idx_t> labels(kOverfetch);
    omp_set_num_threads(threads);
    index_->search(1, vector.data(), kOverfetch, distances.data(), labels.data());
    return std::vector<int64_t>(labels.begin(), labels.begin() + kK);
  }

 private:
  std::vector<float> QueryVectors(const float* points, int64_t count) const {
    const int64_t width = lorentz_ ? index::LorentzWidth(dim_) : dim_;
    std::vector<float> out(count * width);
    for (int64_t q = 0; q < count; ++q) {
      if (lorentz_) {
        index::LorentzQueryVector(points + q * dim_, dim_, c_, &out[q * width]);
      } else {
        StageCoordinates(settings_, points + q * dim_, dim_, c_, &out[q * width]);
      }
    }
    return out;
  }

  std::unique_ptr<faiss::Index> index_;
  const index::CandidateStageOptions settings_;
  const int64_t dim_;
  const double c_;
  const bool lorentz_;
};

// FAISS direct, built the way the candidate stage builds `settings`.
std::unique_ptr<faiss::Index> BuildFaissDirect(const index::CandidateStageOptions& settings,
                                               const BenchData& data) {
  const std::string& kind = settings.kind;
  const int64_t dim = data.options.dim, items = data.options.items;
  const int64_t width = kind == "exact" ? index::LorentzWidth(dim) : dim;
  std::vector<float> vectors(items * width);
  for (int64_t i = 0; i < items; ++i) {
    if (kind == "exact") {
      index::LorentzItemVector(&data.items[i * dim], dim, data.options.c, &vectors[i * width]);
    } else {
      StageCoordinates(settings, &data.items[i * dim], dim, data.options.c, &vectors[i * dim]);
    }
  }
  if (kind == "exact") {
    auto flat = std::make_unique<faiss::IndexFlatIP>(width);
    flat->add(items, vectors.data());
    return flat;
  }
  const int64_t nlist = index::AutomaticNlist(items);
  const std::string factory = kind == "ivf-flat"  ? absl::StrCat("IVF", nlist, ",Flat")
                              : kind == "ivf-sq8" ? absl::StrCat("IVF", nlist, ",SQ8")
                                                  : absl::StrCat("HNSW", settings.hnsw_m);
  std::unique_ptr<faiss::Index> index(faiss::index_factory(dim, factory.c_str()));
  if (auto* hnsw = dynamic_cast<faiss::IndexHNSW*>(index.get())) {
    hnsw->hnsw.efConstruction = static_cast<int>(settings.ef_construction);
    hnsw->hnsw.efSearch = static_cast<int>(settings.ef_search);
  }
  if (faiss::IndexIVF* ivf = faiss::ivflib::try_extract_index_ivf(index.get())) {
    // The data's rows are in random order, so the first rows are a random sample.
    ivf->train(std::min(items, index::TrainingSampleSize(nlist)), vectors.data());
    ivf->nprobe = static_cast<size_t>(std::min<int64_t>(settings.nprobe, nlist));
  }
  index->add(items, vectors.data());
  return index;
}

// The memory-bandwidth floor of an exact single-query scan: milliseconds to read `floats`
// floats once on `threads` threads (sums into 16 independent lanes, so the adds keep up with
// memory), median of 5.
double StreamFloorMs(int64_t floats, int threads) {
  constexpr int64_t kLanes = 16;
  std::vector<float> data((floats + kLanes - 1) / kLanes * kLanes, 1.0f);
  const int64_t blocks = static_cast<int64_t>(data.size()) / kLanes;
  std::vector<double> times;
  for (int pass = 0; pass < 5; ++pass) {
    const auto start = std::chrono::steady_clock::now();
    double total = 0;
#pragma omp parallel num_threads(threads) reduction(+ : total)
    {
      float lanes[kLanes] = {};
#pragma omp for schedule(static)
      for (int64_t b = 0; b < blocks; ++b) {
        for (int64_t j = 0; j < kLanes; ++j) lanes[j] += data[b * kLanes + j];
      }
      for (float lane : lanes) total += lane;
    }
    times.push_back(1000 * Seconds(start));
    if (total < 0) std::abort();  // keeps the sum alive
  }
  return Median(times);
}

struct Row {
  std::string kind, system;
  double build_seconds = 0;
  int64_t memory_bytes = 0;
  double recall = 0;
  std::map<int, double> batch_qps, single_qps, p50_ms, p99_ms;
};

// Recall and speed of both systems. Their passes alternate (ours, then FAISS direct, in every
// pass), so drifts in the machine's load hit both alike and the ratios stay meaningful.
std::pair<Row, Row> MeasurePair(const std::string& kind, const Searcher& ours,
                                const Searcher& direct, const BenchData& data, int repeats,
                                int64_t single_queries) {
  Row rows[2];
  const Searcher* searchers[2] = {&ours, &direct};
  const int64_t dim = data.options.dim;
  for (int s = 0; s < 2; ++s) {
    rows[s].kind = kind;
    rows[s].system = s == 0 ? "hier_index" : "FAISS direct";
    const auto recall = RecallAtK(searchers[s]->Batch(data.queries, 2), data, kK);
    rows[s].recall = recall.ok() ? *recall : -1;
  }
  for (int threads : kThreadCounts) {
    std::vector<double> batch[2], single[2], latencies[2];
    for (int pass = 0; pass < repeats; ++pass) {
      for (int s = 0; s < 2; ++s) {
        const auto start = std::chrono::steady_clock::now();
        searchers[s]->Batch(data.queries, threads);
        batch[s].push_back(static_cast<double>(data.options.queries) / Seconds(start));
      }
      for (int s = 0; s < 2; ++s) {
        const auto all_start = std::chrono::steady_clock::now();
        for (int64_t q = 0; q < single_queries; ++q) {
          const auto start = std::chrono::steady_clock::now();
          searchers[s]->One(&data.queries[(q % data.options.queries) * dim], threads);
          latencies[s].push_back(1000 * Seconds(start));
        }
        single[s].push_back(static_cast<double>(single_queries) / Seconds(all_start));
      }
    }
    for (int s = 0; s < 2; ++s) {
      rows[s].batch_qps[threads] = Median(batch[s]);
      rows[s].single_qps[threads] = Median(single[s]);
      rows[s].p50_ms[threads] = Percentile(latencies[s], 0.5);
      rows[s].p99_ms[threads] = Percentile(latencies[s], 0.99);
    }
  }
  return {rows[0], rows[1]};
}

void PrintTable(const std::vector<Row>& rows, int64_t items) {
  std::printf(
      "\n%lld items, recall@10 and speed (medians); ratio = hier_index / FAISS direct; FAISS "
      "compiled with: %s\n\n"
      "| kind | system | build s | memory MiB | recall@10 | batch q/s 1t | batch q/s 2t | "
      "single q/s 1t | single q/s 2t | p50 ms 1t | p99 ms 1t | p50 ms 2t | p99 ms 2t |\n"
      "|---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
      static_cast<long long>(items), faiss::get_compile_options().c_str());
  for (const Row& r : rows) {
    std::printf(
        "| %s | %s | %.1f | %.0f | %.4f | %.0f | %.0f | %.0f | %.0f | %.2f | %.2f | %.2f | "
        "%.2f |\n",
        r.kind.c_str(), r.system.c_str(), r.build_seconds, r.memory_bytes / 1048576.0, r.recall,
        r.batch_qps.at(1), r.batch_qps.at(2), r.single_qps.at(1), r.single_qps.at(2),
        r.p50_ms.at(1), r.p99_ms.at(1), r.p50_ms.at(2), r.p99_ms.at(2));
  }
  std::printf("\n| kind | batch 1t | batch 2t | single 1t | single 2t |\n|---|---|---|---|---|\n");
  for (size_t i = 0; i + 1 < rows.size(); i += 2) {
    const Row& ours = rows[i];
    const Row& direct = rows[i + 1];
    std::printf("| %s | %.2f | %.2f | %.2f | %.2f |\n", ours.kind.c_str(),
                ours.batch_qps.at(1) / direct.batch_qps.at(1),
                ours.batch_qps.at(2) / direct.batch_qps.at(2),
                ours.single_qps.at(1) / direct.single_qps.at(1),
                ours.single_qps.at(2) / direct.single_qps.at(2));
  }
}

std::string Json(const Row& r, int64_t items) {
  std::string json =
      absl::StrCat("{\"items\":", items, ",\"kind\":\"", r.kind, "\",\"system\":\"", r.system,
                   "\",\"build_seconds\":", r.build_seconds, ",\"memory_bytes\":", r.memory_bytes,
                   ",\"recall_at_10\":", r.recall);
  for (int t : kThreadCounts) {
    absl::StrAppend(&json, ",\"batch_qps_", t, "t\":", r.batch_qps.at(t), ",\"single_qps_", t,
                    "t\":", r.single_qps.at(t), ",\"p50_ms_", t, "t\":", r.p50_ms.at(t),
                    ",\"p99_ms_", t, "t\":", r.p99_ms.at(t));
  }
  return json + "}";
}

int Main(int argc, char** argv) {
  std::map<std::string, std::string> flags = {
      {"items", "100000"},      {"kinds", "exact,ivf-flat,ivf-sq8,hnsw"},
      {"repeats", "3"},         {"single-queries", "1000"},
      {"cache", "bench-cache"}, {"json", ""},
      {"nprobe", ""},           {"ef-search", ""},
      {"coordinates", ""},      {"overfetch", ""},
      {"target-recall", ""}};
  for (int i = 1; i < argc; ++i) {
    const std::vector<std::string> parts = absl::StrSplit(argv[i], absl::MaxSplits('=', 1));
    const std::string name = parts[0].substr(parts[0].find_first_not_of('-'));
    if (parts.size() != 2 || flags.count(name) == 0) {
      std::fprintf(stderr, "index_bench: unknown flag %s\n", argv[i]);
      return 2;
    }
    flags[name] = parts[1];
  }
  BenchDataOptions data_options;
  data_options.items = std::stoll(flags["items"]);
  const auto data = LoadOrMakeBenchData(data_options, flags["cache"]);
  if (!data.ok()) {
    std::fprintf(stderr, "index_bench: %s\n", data.status().ToString().c_str());
    return 1;
  }
  const int repeats = std::stoi(flags["repeats"]);
  const int64_t single_queries = std::stoll(flags["single-queries"]);
  std::vector<Row> rows;
  for (const std::string& kind : std::vector<std::string>(absl::StrSplit(flags["kinds"], ','))) {
    std::fprintf(stderr, "index_bench: %s, %lld items\n", kind.c_str(),
                 static_cast<long long>(data_options.items));
    index::CandidateStageOptions settings;
    settings.kind = kind;
    if (!flags["nprobe"].empty()) settings.nprobe = std::stoll(flags["nprobe"]);
    if (!flags["ef-search"].empty()) settings.ef_search = std::stoll(flags["ef-search"]);
    if (!flags["coordinates"].empty()) settings.coordinates = flags["coordinates"];
    index::IndexOptions options;
    options.dim = data_options.dim;
    options.c = data_options.c;
    options.threads = 2;
    options.candidates = settings;
    if (!flags["overfetch"].empty()) options.default_overfetch = std::stoll(flags["overfetch"]);
    int64_t before = ResidentBytes();
    auto start = std::chrono::steady_clock::now();
    auto index = index::HyperbolicIndex::Create(options);
    std::vector<int64_t> ids(data_options.items);
    for (int64_t i = 0; i < data_options.items; ++i) ids[i] = i;
    if (!index.ok() || !(*index)->Upsert(ids, data->items).ok()) return 1;
    (*index)->WaitForRebuild();  // the stage trains beside the live one
    const double ours_build = Seconds(start);
    if (!flags["target-recall"].empty()) {
      index::RecallTarget target;
      target.recall = std::stod(flags["target-recall"]);
      target.k = kK;
      const absl::StatusOr<index::RecallTuning> tuned = (*index)->TuneForRecall(target);
      if (!tuned.ok()) {
        std::fprintf(stderr, "index_bench: %s\n", tuned.status().ToString().c_str());
        return 1;
      }
      std::fprintf(stderr,
                   "index_bench: tuned in %.1f s (%lld settings tried on %lld items): recall %.4f "
                   "on the sample\n",
                   tuned->seconds, static_cast<long long>(tuned->settings_tried),
                   static_cast<long long>(tuned->queries), tuned->measured.recall);
      settings.nprobe = tuned->effort.nprobe;
      settings.ef_search = tuned->effort.ef_search;
    }
    ids = {};
    const int64_t ours_memory = ResidentBytes() - before;
    std::fprintf(stderr, "index_bench: %s\n", (*index)->Describe().c_str());
    const IndexSearcher ours(*std::move(index), data_options.dim);

    before = ResidentBytes();
    omp_set_num_threads(2);
    start = std::chrono::steady_clock::now();
    std::unique_ptr<faiss::Index> faiss_index = BuildFaissDirect(settings, *data);
    const double direct_build = Seconds(start);
    const int64_t direct_memory = ResidentBytes() - before;
    const FaissSearcher direct(std::move(faiss_index), settings, data_options.dim, data_options.c);

    auto [ours_row, direct_row] = MeasurePair(kind, ours, direct, *data, repeats, single_queries);
    ours_row.build_seconds = ours_build;
    ours_row.memory_bytes = ours_memory;
    direct_row.build_seconds = direct_build;
    direct_row.memory_bytes = direct_memory;
    rows.push_back(ours_row);
    rows.push_back(direct_row);
  }
  PrintTable(rows, data_options.items);
  if (!rows.empty() && rows[0].kind == "exact") {
    const int64_t floats = data_options.items * index::LorentzWidth(data_options.dim);
    std::printf(
        "\nexact single query against the memory-bandwidth floor (reading the %lld "
        "Lorentz floats once)\n\n| threads | floor ms | p50 ms | p50 / floor |\n"
        "|---|---|---|---|\n",
        static_cast<long long>(floats));
    for (int threads : kThreadCounts) {
      const double floor = StreamFloorMs(floats, threads);
      std::printf("| %d | %.2f | %.2f | %.2f |\n", threads, floor, rows[0].p50_ms.at(threads),
                  rows[0].p50_ms.at(threads) / floor);
    }
  }
  if (!flags["json"].empty()) {
    std::ofstream json(flags["json"], std::ios::app);
    for (const Row& row : rows) json << Json(row, data_options.items) << "\n";
  }
  return 0;
}

}  // namespace
}  // namespace hier::bench

int main(int argc, char** argv) { return hier::bench::Main(argc, argv); }
