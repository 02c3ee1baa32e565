// The server benchmark's gallery (deploy/experiments/server-bench.sh): builds a hier-server state
// folder holding the index benchmark's items (hyperbolic_bench_data.h), and measures single
// searches of that same gallery in-process, the baseline of `hier-bench --method search-vector
// --vectors-from-items N` (the same queries: the vectors of items 0..N-1, one search at a time).
//
// server_bench_gallery --state DIR [--items 100000] [--kind exact] [--cache bench-cache]
//     Makes DIR a state folder: galleries/initial holds the data's items (id = row, no label, d
//     128, c 0.1) with the candidate stage `kind`, snapshotted, and serving.json names it with no
//     model (serve it with --dim 128 --c 0.1). Does nothing when DIR already holds that many items
//     of that kind; fails when it holds something else (remove DIR first).
// server_bench_gallery --measure --state DIR [--queries 1000] [--k 10] [--repeats 3]
//                      [--batch 1] [--threads 1] [--warmup-seconds 2] [--json FILE]
//     Opens the gallery the way hier-server does (Collection::Open, 1 FAISS thread per search) and
//     times `repeats` passes of searches of items 0..queries-1's vectors after a warm-up: one at a
//     time, or `batch` at a time through the index's batch path (what SearchBatch does), from
//     `threads` threads at once (the calls in flight of `hier-bench --in-flight`). Prints
//     queries/s (median of the passes) and p50/p99 per call in ms (nearest rank over every sample
//     of every pass), and writes them as one JSON object to FILE (with FAISS's compile options).
//     Each search also looks up its neighbours' keys and labels, as the server's handlers do.
// Flags take their value as the next argument or after '='.
#include <faiss/utils/utils.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/types/span.h"
#include "index/collection.h"
#include "server/app/serving_record.h"
#include "tests/bench/hyperbolic_bench_data.h"

namespace hier::bench {
namespace {

constexpr char kGallery[] = "initial";
constexpr int64_t kUpsertBatch = 10000;

double Seconds(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - since).count();
}

double Median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  return values[values.size() / 2];
}

// The smallest sample with at least `percent` % of the samples at or below it (as hier-bench's
// latency_stats.h computes it).
double NearestRank(const std::vector<double>& sorted, double percent) {
  const double n = static_cast<double>(sorted.size());
  const double rank = std::ceil(percent / 100.0 * n - 1e-9);
  return sorted[static_cast<size_t>(std::clamp(rank, 1.0, n)) - 1];
}

int Fail(const std::string& message) {
  std::fprintf(stderr, "server_bench_gallery: %s\n", message.c_str());
  return 1;
}

int UsageError(const std::string& message) {
  Fail(message);
  return 2;
}

index::CollectionOptions GalleryOptions(const std::string& state_dir, const std::string& kind,
                                        int threads) {
  BenchDataOptions data;  // d 128, c 0.1: the bench data's geometry
  index::CollectionOptions options;
  options.directory = server::GalleryPath(state_dir, kGallery);
  options.index.dim = data.dim;
  options.index.c = data.c;
  options.index.threads = threads;
  options.index.candidates.kind = kind;  // empty: the persisted one
  return options;
}

int Build(std::map<std::string, std::string>& flags) {
  const std::string state_dir = flags["state"];
  const std::string kind = flags["kind"];
  BenchDataOptions data_options;
  data_options.items = std::stoll(flags["items"]);
  std::error_code error;
  if (std::filesystem::exists(server::GalleryPath(state_dir, kGallery), error)) {
    auto existing = index::Collection::Open(GalleryOptions(state_dir, "", 2));
    if (!existing.ok()) return Fail(existing.status().ToString());
    const int64_t size = (*existing)->index().size();
    if ((*existing)->kind() == kind && size == data_options.items) {
      std::fprintf(stderr, "server_bench_gallery: %s already holds %lld %s items\n",
                   state_dir.c_str(), static_cast<long long>(size), kind.c_str());
      return 0;
    }
    return Fail(absl::StrCat(state_dir, " holds ", size, " ", (*existing)->kind(), " items, not ",
                             data_options.items, " ", kind, ": remove it first"));
  }
  const auto data = LoadOrMakeBenchData(data_options, flags["cache"]);
  if (!data.ok()) return Fail(data.status().ToString());
  const auto start = std::chrono::steady_clock::now();
  auto collection = index::Collection::Open(GalleryOptions(state_dir, kind, 2));
  if (!collection.ok()) return Fail(collection.status().ToString());
  const int64_t dim = data_options.dim;
  for (int64_t first = 0; first < data_options.items; first += kUpsertBatch) {
    const int64_t end = std::min(data_options.items, first + kUpsertBatch);
    std::vector<index::ItemRecord> records(end - first);
    for (int64_t row = first; row < end; ++row) {
      index::ItemRecord& record = records[row - first];
      record.id = row;
      record.key = absl::StrCat("bench-", row);
      record.vector.assign(&data->items[row * dim], &data->items[(row + 1) * dim]);
    }
    if (auto written = (*collection)->Upsert(records); !written.ok()) {
      return Fail(written.status().ToString());
    }
  }
  // Training and retraining run beside the live stage: the snapshot is of the finished one.
  (*collection)->index().WaitForRebuild();
  if (absl::Status snapshot = (*collection)->WriteSnapshot(); !snapshot.ok()) {
    return Fail(snapshot.ToString());
  }
  if (absl::Status record = server::WriteServingRecord(state_dir, {"", kGallery}); !record.ok()) {
    return Fail(record.ToString());
  }
  std::fprintf(stderr, "server_bench_gallery: %s: %lld items, %s, built in %.1f s\n",
               state_dir.c_str(), static_cast<long long>(data_options.items),
               (*collection)->index().Describe().c_str(), Seconds(start));
  return 0;
}

int Measure(std::map<std::string, std::string>& flags) {
  const int64_t queries = std::stoll(flags["queries"]);
  const int repeats = std::stoi(flags["repeats"]);
  const double warmup_seconds = std::stod(flags["warmup-seconds"]);
  if (queries < 1 || repeats < 1) return Fail("--queries and --repeats: at least 1");
  auto collection = index::Collection::Open(GalleryOptions(flags["state"], "", 1));
  if (!collection.ok()) return Fail(collection.status().ToString());
  const index::HyperbolicIndex& index = (*collection)->index();
  // Items 0..queries-1 that exist, as hier-bench --vectors-from-items reads them.
  std::vector<std::vector<float>> vectors;
  for (int64_t id = 0; id < queries; ++id) {
    auto item = (*collection)->Get(id);
    if (item.ok()) vectors.push_back(item->vector);
  }
  if (vectors.empty()) return Fail(absl::StrCat("none of the items 0..", queries - 1, " exists"));
  const size_t batch = static_cast<size_t>(std::max<int64_t>(1, std::stoll(flags["batch"])));
  const int64_t threads = std::max<int64_t>(1, std::stoll(flags["threads"]));
  index::SearchOptions options;
  options.k = std::stoll(flags["k"]);
  options.threads = 1;
  // Searches vectors[first, first + batch) (one call) and looks up the neighbours' summaries.
  auto search = [&](size_t first) {
    absl::StatusOr<std::vector<std::vector<index::Neighbour>>> found;
    if (batch == 1) {
      auto one = index.Search(absl::MakeConstSpan(vectors[first % vectors.size()]), options);
      if (one.ok()) found = std::vector<std::vector<index::Neighbour>>{*std::move(one)};
      else found = one.status();
    } else {
      std::vector<float> rows;
      for (size_t q = first; q < first + batch; ++q) {
        const std::vector<float>& vector = vectors[q % vectors.size()];
        rows.insert(rows.end(), vector.begin(), vector.end());
      }
      found = index.SearchBatch(rows, options);
    }
    if (!found.ok()) {
      Fail(found.status().ToString());
      std::exit(1);
    }
    for (const std::vector<index::Neighbour>& neighbours : *found) {
      std::vector<int64_t> ids;
      for (const index::Neighbour& neighbour : neighbours) ids.push_back(neighbour.id);
      if ((*collection)->Summaries(ids).size() != ids.size()) std::exit(Fail("no summaries"));
    }
  };
  const auto warmup_start = std::chrono::steady_clock::now();
  for (size_t q = 0; Seconds(warmup_start) < warmup_seconds; q += batch) search(q);
  std::vector<double> qps, latencies_ms;
  for (int pass = 0; pass < repeats; ++pass) {
    const auto pass_start = std::chrono::steady_clock::now();
    // Each thread takes every `threads`-th call of the pass.
    std::vector<std::vector<double>> thread_latencies(threads);
    std::vector<std::thread> searchers;
    for (int64_t t = 0; t < threads; ++t) {
      searchers.emplace_back([&, t] {
        for (size_t q = static_cast<size_t>(t) * batch; q < vectors.size();
             q += static_cast<size_t>(threads) * batch) {
          const auto start = std::chrono::steady_clock::now();
          search(q);
          thread_latencies[t].push_back(1000 * Seconds(start));
        }
      });
    }
    for (std::thread& searcher : searchers) searcher.join();
    for (const std::vector<double>& samples : thread_latencies) {
      latencies_ms.insert(latencies_ms.end(), samples.begin(), samples.end());
    }
    const size_t searched = (vectors.size() + batch - 1) / batch * batch;
    qps.push_back(static_cast<double>(searched) / Seconds(pass_start));
  }
  std::sort(latencies_ms.begin(), latencies_ms.end());
  const double p50 = NearestRank(latencies_ms, 50), p99 = NearestRank(latencies_ms, 99);
  std::printf(
      "in-process %s, %lld items, %zu queries x %d passes, %zu per call: %.1f q/s, p50 %.3f ms, "
      "p99 %.3f ms per call\n",
      (*collection)->kind().c_str(), static_cast<long long>(index.size()), vectors.size(), repeats,
      batch, Median(qps), p50, p99);
  if (!flags["json"].empty()) {
    std::ofstream json(flags["json"], std::ios::trunc);
    json << "{\"method\":\"in-process\",\"kind\":\"" << (*collection)->kind()
         << "\",\"items\":" << index.size() << ",\"queries\":" << vectors.size()
         << ",\"batch\":" << batch << ",\"threads\":" << threads << ",\"repeats\":" << repeats << ",\"qps\":" << Median(qps)
         << ",\"latency_ms\":{\"p50\":" << p50 << ",\"p99\":" << p99
         << "},\"faiss_compile_options\":\"" << faiss::get_compile_options() << "\"}\n";
    if (!json) return Fail(absl::StrCat("--json: cannot write '", flags["json"], "'"));
  }
  return 0;
}

int Main(int argc, char** argv) {
  std::map<std::string, std::string> flags = {
      {"state", ""},   {"items", "100000"},    {"kind", "exact"}, {"cache", "bench-cache"},
      {"measure", ""}, {"queries", "1000"},    {"k", "10"},       {"repeats", "3"},
      {"json", ""},    {"warmup-seconds", "2"}, {"batch", "1"},   {"threads", "1"}};
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg.rfind("--", 0) != 0) return UsageError(absl::StrCat("unexpected argument ", arg));
    arg = arg.substr(2);
    std::string value;
    const size_t equals = arg.find('=');
    if (equals != std::string::npos) {
      value = arg.substr(equals + 1);
      arg = arg.substr(0, equals);
    }
    if (flags.count(arg) == 0) return UsageError(absl::StrCat("unknown flag --", arg));
    if (equals == std::string::npos) {
      if (arg == "measure") {
        value = "1";
      } else if (i + 1 < argc) {
        value = argv[++i];
      } else {
        return UsageError(absl::StrCat("--", arg, ": missing value"));
      }
    }
    flags[arg] = value;
  }
  if (flags["state"].empty()) return UsageError("--state: required");
  try {
    return flags["measure"].empty() || flags["measure"] == "0" ? Build(flags) : Measure(flags);
  } catch (const std::exception& e) {  // std::stoll on a bad number
    return UsageError(absl::StrCat("a flag's value is not a number (", e.what(), ")"));
  }
}

}  // namespace
}  // namespace hier::bench

int main(int argc, char** argv) { return hier::bench::Main(argc, argv); }
