// Benchmarks of the HIER loss (forward + backward, mining included) and of the distance matrix:
// the fused hier_core path against the whole-tensor baseline that runs the reference's tensor
// work, in the same process, at the sizes of hier-method.md section 10. Reports peak tensor memory.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <benchmark/benchmark.h>
#include <c10/core/CPUAllocator.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "tests/core/naive_hier.h"
#include "tests/core/test_data.h"
#include "trainer/core/hier_loss.h"
#include "trainer/core/poincare.h"
#include "trainer/core/triplet_mining.h"

namespace hier::bench {
namespace {

constexpr double kC = 0.1;
constexpr int64_t kProxies = 512;

// Wraps LibTorch's CPU allocator to record the bytes of live tensors and their peak.
class PeakTrackingAllocator final : public c10::Allocator {
 public:
  explicit PeakTrackingAllocator(c10::Allocator* base) : base_(base) {}

  c10::DataPtr allocate(size_t bytes) const override {
    c10::DataPtr inner = base_->allocate(bytes);
    void* data = inner.get();
    const c10::Device device = inner.device();
    auto* record = new Record{std::move(inner), bytes};
    const int64_t now = live_ += static_cast<int64_t>(bytes);
    int64_t peak = peak_.load();
    while (now > peak && !peak_.compare_exchange_weak(peak, now)) {
    }
    return {data, record, &Release, device};
  }

  // Starts a new measurement window; returns nothing, PeakSinceReset() reads it.
  void Reset() {
    peak_ = live_.load();
    base_line_ = live_.load();
  }
  double PeakSinceResetMiB() const {
    return static_cast<double>(peak_.load() - base_line_) / (1 << 20);
  }

 private:
  struct Record {
    c10::DataPtr inner;
    size_t bytes;
  };
  static void Release(void* ctx) {
    auto* record = static_cast<Record*>(ctx);
    live_ -= static_cast<int64_t>(record->bytes);
    delete record;
  }

  c10::Allocator* base_;
  int64_t base_line_ = 0;
  static inline std::atomic<int64_t> live_{0};
  static inline std::atomic<int64_t> peak_{0};
};

PeakTrackingAllocator& Tracker() {
  static auto* tracker = [] {
    auto* t = new PeakTrackingAllocator(c10::GetCPUAllocator());
    c10::SetCPUAllocator(t, /*priority=*/1);
    return t;
  }();
  return *tracker;
}

struct Batch {
  at::Tensor z, labels;
};

// A batch of 2 images per class on the ball, float32, as training sees it.
Batch MakeBatch(int64_t batch, int64_t dim) {
  return {testing::BallPoints(batch, dim, kC, 7, at::kFloat), testing::GroupedLabels(batch, 2)};
}

core::HierLossOptions Options(int64_t dim, int64_t topk) {
  core::HierLossOptions options(dim);
  options.num_proxies(kProxies).c(kC).topk(topk);
  return options;
}

// Arguments: batch, dim, topk, threads.
void Configure(benchmark::State& state) {
  at::set_num_threads(static_cast<int>(state.range(3)));
  at::manual_seed(0);
  Tracker();
}

void ReportMemory(benchmark::State& state, double peak_mib) {
  state.counters["peak_MiB"] = peak_mib;
  state.counters["threads"] = static_cast<double>(state.range(3));
}

void BM_HierFused(benchmark::State& state) {
  Configure(state);
  const Batch b = MakeBatch(state.range(0), state.range(1));
  core::HierLoss loss(Options(state.range(1), state.range(2)));
  double peak = 0;
  uint64_t step = 0;
  for (auto _ : state) {
    Tracker().Reset();
    const at::Tensor z = b.z.clone().requires_grad_(true);
    loss->forward(z, b.labels, step++).loss.backward();
    benchmark::DoNotOptimize(z.grad().data_ptr());
    peak = std::max(peak, Tracker().PeakSinceResetMiB());
  }
  ReportMemory(state, peak);
}

// The reference's tensor work: the [N, N, D] broadcast distance matrix, the same miner, and the
// per-triplet [T, P] rows with torch-drawn Gumbel noise, through autograd.
void BM_HierWholeTensor(benchmark::State& state) {
  Configure(state);
  const Batch b = MakeBatch(state.range(0), state.range(1));
  const core::HierLossOptions options = Options(state.range(1), state.range(2));
  core::HierLoss loss(options);
  const int64_t batch = state.range(0);
  uint64_t step = 0;
  auto run_step = [&] {
    const at::Tensor z = b.z.clone().requires_grad_(true);
    const at::Tensor all = at::cat({z, loss->MappedProxies()}, 0);
    const at::Tensor dist = core::DistMatrixBroadcast(all, all, kC);
    const at::Tensor d_sp = dist.slice(0, 0, batch).slice(1, batch);
    const at::Tensor d_pp = dist.slice(0, batch).slice(1, batch);
    at::Tensor t_sp, t_pp;
    {
      at::NoGradGuard no_grad;
      t_sp = core::SampleTriplets(
          core::FindReciprocalNeighbours(
              core::SampleSimilarity(dist.slice(0, 0, batch).slice(1, 0, batch), b.labels),
              options.topk()),
          50, step);
      t_pp = core::SampleTriplets(
          core::FindReciprocalNeighbours(core::ProxySimilarity(d_pp), options.topk()), 50,
          step + 1);
      ++step;
    }
    auto part = [&](const at::Tensor& d, const at::Tensor& t) {
      const int64_t count = t.size(1);
      return testing::NaiveHierTripletLoss(d, t, options.tau(), options.margin(),
                                           testing::TorchGumbel(count, kProxies, at::kFloat),
                                           testing::TorchGumbel(count, kProxies, at::kFloat))
          .loss;
    };
    (part(d_sp, t_sp) + part(d_pp, t_pp)).backward();
    benchmark::DoNotOptimize(z.grad().data_ptr());
  };
  run_step();  // warm-up: one step (seconds) before the timed ones
  double peak = 0;
  for (auto _ : state) {
    Tracker().Reset();
    run_step();
    peak = std::max(peak, Tracker().PeakSinceResetMiB());
  }
  ReportMemory(state, peak);
}

// Arguments: nodes, dim, (unused), threads; forward + backward of the distance matrix.
template <at::Tensor (*Dist)(const at::Tensor&, const at::Tensor&, double)>
void BM_DistMatrix(benchmark::State& state) {
  Configure(state);
  const at::Tensor x = testing::BallPoints(state.range(0), state.range(1), kC, 3, at::kFloat);
  double peak = 0;
  for (auto _ : state) {
    Tracker().Reset();
    const at::Tensor leaf = x.clone().requires_grad_(true);
    Dist(leaf, leaf, kC).sum().backward();
    benchmark::DoNotOptimize(leaf.grad().data_ptr());
    peak = std::max(peak, Tracker().PeakSinceResetMiB());
  }
  ReportMemory(state, peak);
}

void HierSizes(benchmark::internal::Benchmark* b) {
  b->ArgNames({"batch", "dim", "topk", "threads"});
  for (int64_t threads : {1, 2}) {
    for (int64_t batch : {90, 180}) {
      for (int64_t dim : {128, 384}) {
        for (int64_t topk : {20, 30}) b->Args({batch, dim, topk, threads});
      }
    }
  }
  b->Unit(benchmark::kMillisecond)->UseRealTime();
}

void DistSizes(benchmark::internal::Benchmark* b) {
  b->ArgNames({"nodes", "dim", "unused", "threads"});
  for (int64_t threads : {1, 2}) {
    for (int64_t dim : {128, 384}) b->Args({90 + kProxies, dim, 0, threads});
  }
  b->Unit(benchmark::kMillisecond)->UseRealTime();
}

BENCHMARK(BM_HierFused)->Apply(HierSizes)->MinWarmUpTime(0.5);
BENCHMARK(BM_HierWholeTensor)->Apply(HierSizes)->Iterations(1);
BENCHMARK_TEMPLATE(BM_DistMatrix, core::DistMatrix)->Apply(DistSizes);
BENCHMARK_TEMPLATE(BM_DistMatrix, core::DistMatrixBroadcast)->Apply(DistSizes);

// The reference implementation's own forward + backward wall times (ms) on the project's 2-core
// machine class, from hier-method.md section 10, keyed by "batch/dim/topk/threads".
const std::map<std::string, double>& ReferenceMilliseconds() {
  static const auto* table = new std::map<std::string, double>{
      {"90/128/20/1", 2908},  {"90/128/30/1", 2712},   {"90/384/20/1", 5689},
      {"90/384/30/1", 8648},  {"180/128/20/1", 4362},  {"180/128/30/1", 4522},
      {"180/384/20/1", 9174}, {"180/384/30/1", 10549}, {"90/128/20/2", 2631},
      {"90/128/30/2", 3439},  {"90/384/20/2", 5538},   {"90/384/30/2", 5818},
      {"180/128/20/2", 3561}, {"180/128/30/2", 4922},  {"180/384/20/2", 7855},
      {"180/384/30/2", 8216}};
  return *table;
}

// Prints the usual console output, then one line per HIER size: the medians of the fused path
// and of the whole-tensor baseline measured in this run, their ratio, and the ratio to the
// reference's published time.
class SpeedupReporter : public benchmark::ConsoleReporter {
 public:
  // Colours only on a terminal, so logs and pipes stay plain text.
  SpeedupReporter() : ConsoleReporter(isatty(STDOUT_FILENO) ? OO_Defaults : OO_Tabular) {}

  void ReportRuns(const std::vector<Run>& runs) override {
    ConsoleReporter::ReportRuns(runs);
    for (const Run& run : runs) {
      const bool median = run.aggregate_name == "median";
      if (run.run_type == Run::RT_Aggregate && !median) continue;
      const std::string name = run.run_name.str();
      const auto slash = name.find('/');
      const std::string key = SizeKey(name.substr(slash + 1));
      Entry& e = entries_[key];
      const double ms = run.GetAdjustedRealTime();
      const double peak = run.counters.count("peak_MiB") ? run.counters.at("peak_MiB").value : 0;
      if (name.rfind("BM_HierFused", 0) == 0 && (median || e.fused_ms == 0)) {
        e.fused_ms = ms;
        e.fused_mib = peak;
      } else if (name.rfind("BM_HierWholeTensor", 0) == 0 && (median || e.baseline_ms == 0)) {
        e.baseline_ms = ms;
        e.baseline_mib = peak;
      }
    }
  }

  void Finalize() override {
    ConsoleReporter::Finalize();
    std::printf("\nHIER forward+backward with mining, 512 proxies, float32 (medians, ms)\n");
    std::printf("%-18s %10s %10s %9s %10s %9s %10s %10s\n", "batch/dim/topk/thr", "fused",
                "baseline", "speedup", "reference", "vs ref", "fused MiB", "base MiB");
    for (const auto& [key, e] : entries_) {
      if (e.fused_ms == 0) continue;
      const auto ref = ReferenceMilliseconds().find(key);
      const double ref_ms = ref == ReferenceMilliseconds().end() ? 0 : ref->second;
      std::printf("%-18s %10.1f %10.1f %8.1fx %10.0f %8.1fx %10.1f %10.1f\n", key.c_str(),
                  e.fused_ms, e.baseline_ms, e.baseline_ms > 0 ? e.baseline_ms / e.fused_ms : 0,
                  ref_ms, ref_ms > 0 ? ref_ms / e.fused_ms : 0, e.fused_mib, e.baseline_mib);
    }
  }

 private:
  struct Entry {
    double fused_ms = 0, baseline_ms = 0, fused_mib = 0, baseline_mib = 0;
  };
  // "batch:90/dim:128/topk:20/threads:1/..." -> "90/128/20/1".
  static std::string SizeKey(const std::string& args) {
    std::string key;
    size_t pos = 0;
    for (int field = 0; field < 4 && pos != std::string::npos; ++field) {
      const size_t colon = args.find(':', pos);
      if (colon == std::string::npos) break;
      const size_t end = args.find('/', colon);
      key += (field ? "/" : "") + args.substr(colon + 1, end - colon - 1);
      pos = end;
    }
    return key;
  }
  std::map<std::string, Entry> entries_;
};

}  // namespace
}  // namespace hier::bench

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  hier::bench::SpeedupReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  benchmark::Shutdown();
  return 0;
}
