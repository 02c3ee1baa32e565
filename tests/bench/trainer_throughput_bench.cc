// Training throughput on the CPU, in images per second, with the trainer's default settings
// (Proxy-Anchor, lambda1 1, lambda2 0.5, HIER with 512 proxies and top-k 20 -- 16 at batch 16 --,
// c 0.1, clip_r 2.3, AdamW with the trainer's parameter groups and gradient clamping):
//   BM_TrainStep/<model>/threads:N       one whole training step (forward, objective with HIER,
//                                        backward, AdamW step) on a fixed random batch;
//   BM_Embed/<model>/threads:N           inference (eval mode, no autograd);
//   BM_HierShare/<model>/threads:2       the share of a step HIER costs: the same step with and
//                                        without HIER (lambda2 0), timed alternately in one run,
//                                        and the objective alone on the step's embeddings;
//   BM_DecodeTransform/threads:N         JPEG decode + random resized crop to 224 of 64
//                                        synthetic 500x375 files (CUB/Cars-like) through the
//                                        trainer's file source: compare with
//                                        BM_TrainStep/resnet50 to see whether decoding keeps up.
// N is both LibTorch's intra-op thread count and the file source's decode threads.
//
// Run (a few minutes on 2 cores; ResNet steps at 224 take seconds each, hence fixed iteration
// counts):
//   build/tests/trainer_throughput_bench --benchmark_repetitions=3
//       --benchmark_report_aggregates_only=true
// (one command line) and read the medians; --benchmark_filter=TrainStep/small-cnn picks one group.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <benchmark/benchmark.h>
#include <stdlib.h>
#include <torch/utils.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "tests/bench/synthetic_photos.h"
#include "trainer/core/fast_math.h"
#include "trainer/core/objective.h"
#include "trainer/data/dataset_layout.h"
#include "trainer/data/image_source.h"
#include "trainer/data/preprocess.h"
#include "trainer/model/embedding_net.h"
#include "trainer/train/model_settings.h"
#include "trainer/train/optimization.h"
#include "trainer/train/train_config.h"
#include "trainer/train/training_data.h"

namespace hier::bench {
namespace {

using Clock = std::chrono::steady_clock;

// A model at the input size and batch layout it trains with. `iterations` is fixed per model so
// the slow ResNet cases stay at a few steps while the small CNN gets enough to be stable.
struct ModelCase {
  std::string architecture;
  int64_t channels;
  int64_t size;
  int64_t batch;
  int64_t images_per_class;
  int64_t iterations;
};

// Fashion-MNIST's small CNN at the trainer's default batch; the ResNets at 224 with batch 16
// (ipc 2, 8 classes), as many as a CPU step can take in seconds.
const std::vector<ModelCase>& TrainCases() {
  static const auto* cases = new std::vector<ModelCase>{
      {"small-cnn", 1, 28, 180, 18, 10},
      {"resnet18", 3, 224, 16, 2, 2},
      {"resnet50", 3, 224, 16, 2, 2},
  };
  return *cases;
}

const std::vector<ModelCase>& EmbedCases() {
  static const auto* cases = new std::vector<ModelCase>{
      {"small-cnn", 1, 28, 1000, 1, 10},
      {"resnet50", 3, 224, 16, 1, 3},
  };
  return *cases;
}

const ModelCase& TrainCase(const std::string& architecture) {
  for (const ModelCase& c : TrainCases()) {
    if (c.architecture == architecture) return c;
  }
  throw std::invalid_argument("no training case for " + architecture);
}

// The trainer's configuration (its defaults) for one case; lambda2 0 leaves HIER out.
train::TrainConfig ConfigFor(const ModelCase& c, bool with_hier) {
  train::TrainConfig config;
  config.model = c.architecture;
  config.batch_size = c.batch;
  config.ipc = c.images_per_class;
  // The trainer rejects topk above the batch size (HIER mines top-k neighbours within the batch),
  // so a batch-16 run has to lower the default 20 to 16.
  config.topk = std::min(config.topk, c.batch);
  if (!with_hier) config.lambda2 = 0;
  return config;
}

model::EmbeddingNet MakeNet(const ModelCase& c, train::TrainConfig config) {
  config.model = c.architecture;
  data::Preprocessing input;
  input.channels = c.channels;
  input.crop = c.size;
  return model::EmbeddingNet(train::Architecture(config, input));
}

// Normalised-looking random images [B, C, S, S]: the convolutions' cost does not depend on the
// pixels, and a fixed batch keeps data loading out of the model's figures.
at::Tensor RandomImages(const ModelCase& c) {
  return at::randn({c.batch, c.channels, c.size, c.size});
}

// The balanced sampler's layout: `images_per_class` consecutive images per class.
at::Tensor GroupedLabels(const ModelCase& c) {
  return at::arange(c.batch, at::kLong).div(c.images_per_class, "floor");
}

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

// A network, objective and optimiser as the trainer builds them, with one fixed batch.
class TrainingRig {
 public:
  TrainingRig(const ModelCase& c, bool with_hier)
      : config_(ConfigFor(c, with_hier)),
        images_(RandomImages(c)),
        labels_(GroupedLabels(c)),
        net_(MakeNet(c, config_)),
        objective_(train::ObjectiveSettings(config_, c.batch / c.images_per_class)) {
    net_->train();
    optimization_ = std::make_unique<train::Optimization>(config_, net_, objective_,
                                                          kStepsPerEpoch, /*world_size=*/1);
  }

  // The trainer's TrainStep on one process: forward, objective, backward, clamped AdamW step.
  void Step() {
    optimization_->SetLearningRates(step_);
    const at::Tensor z = net_->forward(images_);
    const core::ObjectiveTerms terms = objective_->forward(z, labels_, core::Mix64(step_ + 1));
    terms.total.backward();
    optimization_->Step();
    benchmark::DoNotOptimize(terms.total.item<double>());  // the trainer logs the losses too
    last_z_ = z.detach();
    ++step_;
  }

  // Forward + backward of the objective alone on the last step's embeddings: HIER's own cost,
  // free of the network's run-to-run noise. The gradients it leaves are cleared.
  double ObjectiveSeconds() {
    const auto start = Clock::now();
    const at::Tensor z = last_z_.clone().requires_grad_(true);
    objective_->forward(z, labels_, core::Mix64(step_)).total.backward();
    benchmark::DoNotOptimize(z.grad().data_ptr());
    const double seconds = Seconds(Clock::now() - start);
    objective_->zero_grad();
    return seconds;
  }

  double TimedStep() {
    const auto start = Clock::now();
    Step();
    return Seconds(Clock::now() - start);
  }

 private:
  static constexpr int64_t kStepsPerEpoch = 1000;  // only shapes the lr schedule

  const train::TrainConfig config_;
  const at::Tensor images_;
  const at::Tensor labels_;
  model::EmbeddingNet net_;
  core::Objective objective_;
  std::unique_ptr<train::Optimization> optimization_;
  at::Tensor last_z_;
  int64_t step_ = 0;
};

int64_t Threads(const benchmark::State& state) { return state.range(0); }

// Every benchmark's argument is its thread count; set it before building anything, since the
// warm-up step sizes LibTorch's thread pool and caches.
void ConfigureThreads(benchmark::State& state) {
  at::set_num_threads(static_cast<int>(Threads(state)));
  at::manual_seed(0);
}

void ReportImages(benchmark::State& state, int64_t images_per_iteration) {
  state.counters["images_per_s"] = benchmark::Counter(
      static_cast<double>(state.iterations() * images_per_iteration), benchmark::Counter::kIsRate);
}

void BM_TrainStep(benchmark::State& state, const ModelCase& c) {
  ConfigureThreads(state);
  TrainingRig rig(c, /*with_hier=*/true);
  rig.Step();  // untimed: the first step allocates AdamW's moments and LibTorch's buffers
  for (auto _ : state) rig.Step();
  ReportImages(state, c.batch);
}

void BM_Embed(benchmark::State& state, const ModelCase& c) {
  ConfigureThreads(state);
  const train::TrainConfig config = ConfigFor(c, /*with_hier=*/true);
  model::EmbeddingNet net = MakeNet(c, config);
  net->eval();
  const at::Tensor images = RandomImages(c);
  torch::NoGradGuard no_grad;
  net->forward(images);  // untimed warm-up
  for (auto _ : state) benchmark::DoNotOptimize(net->forward(images).data_ptr());
  ReportImages(state, c.batch);
}

// Each iteration runs one step with HIER and one without, back to back, so machine noise hits
// both alike; an iteration's time is their sum. hier_share = (with - without) / with. The
// difference of two multi-second ResNet steps is within noise, so the objective's forward +
// backward is also timed alone (hier_share_direct): the network's backward is the same either way,
// and HIER's extra cost lies entirely in the objective.
void BM_HierShare(benchmark::State& state, const ModelCase& c) {
  ConfigureThreads(state);
  TrainingRig with_hier(c, /*with_hier=*/true);
  TrainingRig without_hier(c, /*with_hier=*/false);
  with_hier.Step();
  without_hier.Step();
  double with_s = 0, without_s = 0, objective_with_s = 0, objective_without_s = 0;
  for (auto _ : state) {
    with_s += with_hier.TimedStep();
    without_s += without_hier.TimedStep();
    objective_with_s += with_hier.ObjectiveSeconds();
    objective_without_s += without_hier.ObjectiveSeconds();
  }
  const double n = static_cast<double>(state.iterations());
  state.counters["step_ms"] = 1e3 * with_s / n;
  state.counters["step_no_hier_ms"] = 1e3 * without_s / n;
  state.counters["hier_share"] = (with_s - without_s) / with_s;
  state.counters["objective_ms"] = 1e3 * objective_with_s / n;
  state.counters["objective_no_hier_ms"] = 1e3 * objective_without_s / n;
  state.counters["hier_share_direct"] = (objective_with_s - objective_without_s) / with_s;
}

constexpr int kClasses = 8;
constexpr int kJpegsPerClass = 8;
constexpr int64_t kDecodeIterations = 5;

// The synthetic JPEGs' folder: empty until the decode benchmark first runs; main() removes it.
std::string& JpegDir() {
  static auto* dir = new std::string();
  return *dir;
}

const data::ImageList& Jpegs() {
  static const auto* list = [] {
    char dir_template[] = "/tmp/trainer_bench_XXXXXX";
    if (mkdtemp(dir_template) == nullptr) throw std::runtime_error("mkdtemp failed");
    JpegDir() = dir_template;
    return new data::ImageList(WriteSyntheticPhotoFolder(JpegDir(), kClasses, kJpegsPerClass, 7));
  }();
  return *list;
}

double MeanFileKiB(const data::ImageList& list) {
  double bytes = 0;
  for (const std::string& path : list.paths) bytes += std::filesystem::file_size(path);
  return bytes / list.size() / 1024;
}

// The trainer's file source with its defaults for an image folder (3-channel 224 crops after
// resizing to 256, ImageNet's normalisation); `strict` so a decode failure stops the benchmark
// instead of silently timing a substitute.
void BM_DecodeTransform(benchmark::State& state) {
  ConfigureThreads(state);
  const data::ImageList& jpegs = Jpegs();
  train::TrainConfig folder;
  folder.dataset = "folder";
  const data::Preprocessing preprocessing = train::PreprocessingFor(folder);
  data::FileSourceOptions options;
  options.train.size = static_cast<int>(preprocessing.crop);
  options.decode_threads = Threads(state);
  options.strict = true;
  options.skipped = std::make_shared<data::SkipLog>();
  const std::unique_ptr<data::ImageSource> source =
      data::MakeFileSource(jpegs, preprocessing, options);
  std::vector<int64_t> indices(jpegs.size());
  for (int64_t i = 0; i < jpegs.size(); ++i) indices[i] = i;
  // New augmentation keys every batch: the crop's size, and so the resize's cost, varies.
  uint64_t batch = 0;
  auto keys = [&] {
    std::vector<uint64_t> out(indices.size());
    for (size_t i = 0; i < out.size(); ++i) out[i] = core::Mix64(batch * out.size() + i);
    ++batch;
    return out;
  };
  source->TrainInputs(indices, keys());  // untimed: warms the page cache and OpenCV
  for (auto _ : state) {
    benchmark::DoNotOptimize(source->TrainInputs(indices, keys()).data_ptr());
  }
  ReportImages(state, jpegs.size());
  state.counters["jpeg_KiB"] = MeanFileKiB(jpegs);
}

// Thread counts as the argument, a fixed iteration count, wall-clock milliseconds: CPU time would
// miss the work of LibTorch's and the decoder's other threads.
void Setup(benchmark::internal::Benchmark* b, const std::vector<int64_t>& threads,
           int64_t iterations) {
  b->ArgName("threads");
  for (int64_t t : threads) b->Arg(t);
  b->Iterations(iterations)->UseRealTime()->Unit(benchmark::kMillisecond);
}

void RegisterBenchmarks() {
  for (const ModelCase& c : TrainCases()) {
    Setup(benchmark::RegisterBenchmark(("BM_TrainStep/" + c.architecture).c_str(), BM_TrainStep,
                                       c),
          {1, 2}, c.iterations);
  }
  for (const ModelCase& c : EmbedCases()) {
    Setup(benchmark::RegisterBenchmark(("BM_Embed/" + c.architecture).c_str(), BM_Embed, c),
          {1, 2}, c.iterations);
  }
  for (const char* architecture : {"small-cnn", "resnet50"}) {
    const ModelCase& c = TrainCase(architecture);
    Setup(benchmark::RegisterBenchmark(("BM_HierShare/" + c.architecture).c_str(), BM_HierShare,
                                       c),
          {2}, c.iterations);
  }
  Setup(benchmark::RegisterBenchmark("BM_DecodeTransform", BM_DecodeTransform), {1, 2},
        kDecodeIterations);
}

}  // namespace
}  // namespace hier::bench

int main(int argc, char** argv) {
  hier::bench::RegisterBenchmarks();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  if (!hier::bench::JpegDir().empty()) std::filesystem::remove_all(hier::bench::JpegDir());
  return 0;
}
