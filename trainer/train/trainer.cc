#include "trainer/train/trainer.h"

#include <ATen/ATen.h>
#include <c10/util/Exception.h>
#include <torch/cuda.h>
#include <torch/utils.h>

#include <chrono>
#include <ctime>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "trainer/core/fast_math.h"
#include "trainer/core/objective.h"
#include "trainer/data/balanced_sampler.h"
#include "trainer/data/batch_prefetcher.h"
#include "trainer/data/image_set.h"
#include "trainer/data/preprocess.h"
#include "trainer/model/embedding_net.h"
#include "trainer/train/checkpoint.h"
#include "trainer/train/evaluation.h"
#include "trainer/train/optimization.h"
#include "trainer/train/run_directory.h"
#include "trainer/train/run_report.h"

namespace hier::train {
namespace {

using Clock = std::chrono::steady_clock;
using Json = nlohmann::json;

c10::Device PickDevice(const std::string& name) {
  const bool cuda = torch::cuda::is_available();
  if (name == "cuda") {
    TORCH_CHECK(cuda, "--device: cuda was asked for, but this LibTorch build sees no CUDA device");
  }
  return (name == "cuda" || (name == "auto" && cuda)) ? c10::Device(c10::kCUDA)
                                                      : c10::Device(c10::kCPU);
}

model::EmbeddingNetOptions Architecture(const TrainConfig& config) {
  return model::EmbeddingNetOptions()
      .architecture(config.model)
      .in_channels(1)
      .emb(config.emb)
      .c(config.c)
      .clip_r(config.clip_r);
}

core::HierLossOptions HierOptions(const TrainConfig& config) {
  return core::HierLossOptions(config.emb)
      .num_proxies(config.num_proxies)
      .c(config.c)
      .clip_r(config.clip_r)
      .margin(config.margin)
      .tau(config.tau)
      .topk(config.topk);
}

core::ObjectiveOptions ObjectiveSettings(const TrainConfig& config, int64_t num_classes) {
  return core::ObjectiveOptions(num_classes, config.emb)
      .metric(core::ParseMetricLoss(config.loss))
      .lambda_metric(config.lambda1)
      .lambda_hier(config.lambda2)
      .images_per_class(config.ipc)
      .supcon_tau(config.supcon_tau)
      .hier(HierOptions(config));
}

// Independent streams for the batches' augmentation and HIER's draws, keyed by position.
uint64_t AugmentationKey(uint64_t seed, int64_t epoch, int64_t batch) {
  return core::Mix64(core::Mix64(seed ^ 0x5851f42d4c957f2dULL) ^ core::Mix64(epoch) ^
                     static_cast<uint64_t>(batch));
}
uint64_t StepSeed(uint64_t seed, int64_t step) {
  return core::Mix64(seed ^ core::Mix64(static_cast<uint64_t>(step) + 1));
}

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

}  // namespace

std::string ResolveRunDir(const TrainConfig& config) {
  if (!config.run_dir.empty()) return config.run_dir;
  const std::time_t now = std::time(nullptr);
  char stamp[32];
  std::strftime(stamp, sizeof(stamp), "%Y%m%d-%H%M%S", std::gmtime(&now));
  return "runs/" + std::string(stamp) + "-" + config.model + "-" + config.loss;
}

struct Trainer::State {
  explicit State(const TrainConfig& c)
      : config(c), run(ResolveRunDir(c)), device(PickDevice(c.device)) {}

  TrainConfig config;
  RunDirectory run;
  c10::Device device;
  data::ImageSet train_set;
  data::ImageSet test_set;
  data::Preprocessing preprocessing;
  data::Augmentation augmentation;
  std::unique_ptr<data::BalancedSampler> sampler;
  int64_t steps_per_epoch = 0;
  model::EmbeddingNet net{nullptr};
  core::Objective objective{nullptr};
  core::HierLoss untrained_hier{nullptr};  // the chance reference of a run without HIER
  std::unique_ptr<Optimization> optimization;
  TrainingPosition position;
  RunStatus status;

  int64_t total_steps() const { return config.epochs * steps_per_epoch; }
  data::TrainBatch MakeBatch(int64_t epoch, int64_t batch) const;
  std::map<std::string, double> TrainStep(const data::TrainBatch& batch);
  CheckpointInfo Info() const;
  std::string Checkpoint();
  bool Evaluate(ProgressReporter& progress);  // true when this evaluation is the best so far
};

data::TrainBatch Trainer::State::MakeBatch(int64_t epoch, int64_t batch) const {
  const std::vector<int64_t> indices = sampler->Batch(epoch, batch);
  data::TrainBatch made;
  made.images = data::ToInputTensor(train_set, indices, preprocessing,
                                    config.augment ? &augmentation : nullptr,
                                    AugmentationKey(config.seed, epoch, batch));
  made.labels = data::LabelsTensor(train_set, indices);
  return made;
}

std::map<std::string, double> Trainer::State::TrainStep(const data::TrainBatch& batch) {
  optimization->SetLearningRates(position.step);
  const at::Tensor z = net->forward(batch.images.to(device));
  const core::ObjectiveTerms terms =
      objective->forward(z, batch.labels.to(device), StepSeed(config.seed, position.step));
  terms.total.backward();
  optimization->Step();
  std::map<std::string, double> losses = {{"loss", terms.total.item<double>()},
                                          {"metric", terms.metric.item<double>()}};
  if (terms.hier.defined()) losses["hier"] = terms.hier.item<double>();
  ++position.step;
  if (++position.batch == steps_per_epoch) {
    position.batch = 0;
    ++position.epoch;
  }
  return losses;
}

CheckpointInfo Trainer::State::Info() const {
  CheckpointInfo info;
  info.architecture = net->options;
  info.preprocessing = preprocessing;
  info.class_names = train_set.class_names;
  info.config_json = ToJson(config);
  info.position = position;
  return info;
}

std::string Trainer::State::Checkpoint() {
  const std::string dir =
      SaveCheckpoint(run.checkpoints(), {net, objective, &optimization->optimizer()}, Info());
  PruneCheckpoints(run.checkpoints(), config.keep_checkpoints);
  return dir;
}

bool Trainer::State::Evaluate(ProgressReporter& progress) {
  const auto start = Clock::now();
  const at::Tensor embeddings = EmbedImageSet(net, test_set, preprocessing, device);
  const std::vector<double> recall =
      SelfRecall(embeddings, test_set.labels, config.recall_k, config.c);
  const bool best = position.best_recall.empty() || recall[0] > position.best_recall[0];
  Json line = {{"kind", "eval"}, {"epoch", position.epoch}, {"step", position.step}};
  std::string text = "eval epoch " + std::to_string(position.epoch) + ":";
  for (size_t i = 0; i < recall.size(); ++i) {
    line["recall"][std::to_string(config.recall_k[i])] = recall[i];
    char value[48];
    std::snprintf(value, sizeof(value), " R@%lld %.4f", static_cast<long long>(config.recall_k[i]),
                  recall[i]);
    text += value;
  }
  line["seconds"] = Seconds(Clock::now() - start);
  run.AppendMetrics(line.dump(), /*sync=*/true);
  progress.Message(text + (best ? " (best)" : ""));
  if (best) {
    position.best_recall = recall;
    position.best_step = position.step;
    torch::NoGradGuard no_grad;
    const bool trained = static_cast<bool>(objective->hier);
    const at::Tensor proxies =
        (trained ? objective->hier->MappedProxies() : untrained_hier->MappedProxies())
            .to(at::kCPU, at::kFloat);
    WriteHierarchyReport(run, proxies, trained, embeddings, test_set.labels, test_set.class_names,
                         config.c);
  }
  return best;
}

Trainer::Trainer(const TrainConfig& config) : state_(std::make_unique<State>(config)) {
  State& s = *state_;
  if (config.threads > 0) at::set_num_threads(static_cast<int>(config.threads));
  const std::optional<std::string> latest = LatestCheckpoint(s.run.checkpoints());
  TORCH_CHECK(config.resume || !latest, "--run-dir: ", s.run.path(),
              " already holds a run; pass --resume to continue it or choose another directory");
  s.train_set = data::LoadFashionMnist(config.data_dir, data::Split::kTrain, config.train_limit);
  s.test_set = data::LoadFashionMnist(config.data_dir, data::Split::kTest, config.test_limit);
  data::BalancedSamplerOptions sampling;
  sampling.batch_size = config.batch_size;
  sampling.images_per_class = config.ipc;
  sampling.seed = config.seed;
  s.sampler = std::make_unique<data::BalancedSampler>(s.train_set.labels, sampling);
  s.steps_per_epoch =
      config.steps_per_epoch > 0 ? config.steps_per_epoch : s.sampler->BatchesPerEpoch();

  torch::manual_seed(config.seed);
  s.net = model::EmbeddingNet(Architecture(config));
  s.objective = core::Objective(
      ObjectiveSettings(config, static_cast<int64_t>(s.train_set.class_names.size())));
  if (!s.objective->hier) s.untrained_hier = core::HierLoss(HierOptions(config));
  s.net->to(s.device);
  s.objective->to(s.device);
  if (s.untrained_hier) s.untrained_hier->to(s.device);
  s.optimization = std::make_unique<Optimization>(config, s.net, s.objective, s.steps_per_epoch, 1);

  if (config.resume) {
    if (latest) {
      s.position =
          RestoreCheckpoint(*latest, {s.net, s.objective, &s.optimization->optimizer()}).position;
    }
    s.run.TruncateMetricsAfter(s.position.step);
  }
  s.run.WriteConfig(ToJson(config));
  s.status.epochs = config.epochs;
  s.status.total_steps = s.total_steps();
}

Trainer::~Trainer() = default;

const std::string& Trainer::run_dir() const { return state_->run.path(); }

void Trainer::MarkFailed(const std::string& message) {
  state_->status.state = "failed";
  state_->status.message = message;
  state_->run.WriteStatus(state_->status);
}

TrainSummary Trainer::Run(ProgressReporter& progress, const std::atomic<bool>* stop) {
  State& s = *state_;
  const TrainConfig& config = s.config;
  const auto run_start = Clock::now();
  Clock::duration training_time{};
  int64_t trained_steps = 0;
  TrainSummary summary;
  summary.run_dir = s.run.path();
  summary.recall_k = config.recall_k;

  s.status.state = "running";
  s.status.step = s.position.step;
  s.status.epoch = s.position.epoch;
  s.run.WriteStatus(s.status);
  if (s.position.step > 0) {
    progress.Message("resuming " + s.run.path() + " at epoch " + std::to_string(s.position.epoch) +
                     ", step " + std::to_string(s.position.step));
  }

  data::BatchPrefetcher batches(
      [&s](int64_t epoch, int64_t batch) { return s.MakeBatch(epoch, batch); },
      {s.steps_per_epoch, s.position.epoch, s.position.batch, config.epochs}, config.prefetch);
  s.net->train();
  std::map<std::string, double> window;  // loss sums since the last metrics line
  int64_t window_steps = 0;
  while (true) {
    const auto step_start = Clock::now();
    std::optional<data::TrainBatch> batch = batches.Next();
    if (!batch) break;
    for (const auto& [name, value] : s.TrainStep(*batch)) window[name] += value;
    ++window_steps;
    ++trained_steps;
    training_time += Clock::now() - step_start;

    const double steps_per_second = trained_steps / Seconds(training_time);
    ProgressSnapshot snapshot;
    snapshot.epoch = batch->epoch;
    snapshot.epochs = config.epochs;
    snapshot.step = s.position.step;
    snapshot.total_steps = s.total_steps();
    snapshot.images_per_second = steps_per_second * config.batch_size;
    snapshot.eta_seconds = (s.total_steps() - s.position.step) / steps_per_second;
    for (const auto& [name, sum] : window) snapshot.losses[name] = sum / window_steps;
    progress.Update(snapshot);

    const bool epoch_done = s.position.batch == 0;
    if (s.position.step % config.log_every == 0 || epoch_done) {
      Json line = {{"kind", "train"},
                   {"epoch", batch->epoch},
                   {"step", s.position.step},
                   {"images_per_second", snapshot.images_per_second},
                   {"lr", s.optimization->LearningRates()}};
      for (const auto& [name, value] : snapshot.losses) line[name] = value;
      s.run.AppendMetrics(line.dump(), /*sync=*/false);
      s.status.losses = snapshot.losses;
      window.clear();
      window_steps = 0;
    }
    s.status.step = s.position.step;
    s.status.epoch = s.position.epoch;
    s.status.images_per_second = snapshot.images_per_second;
    s.status.eta_seconds = snapshot.eta_seconds;

    if (epoch_done) {
      const bool last = s.position.epoch == config.epochs;
      const bool best = (s.position.epoch % config.eval_every == 0 || last) && s.Evaluate(progress);
      const std::string checkpoint = s.Checkpoint();
      if (best) PublishCopy(checkpoint, s.run.best());
      WriteTrainingCurves(s.run);
      if (!s.position.best_recall.empty()) s.status.best_recall = s.position.best_recall[0];
      s.run.WriteStatus(s.status);
    } else if (s.position.step % config.log_every == 0) {
      s.run.WriteStatus(s.status);
    }
    if (stop != nullptr && stop->load() && s.position.step < s.total_steps()) {
      if (!epoch_done) s.Checkpoint();
      s.status.state = "interrupted";
      s.run.WriteStatus(s.status);
      progress.Message("interrupted at step " + std::to_string(s.position.step) +
                       "; continue with --resume --run-dir " + s.run.path());
      summary.interrupted = true;
      break;
    }
  }
  if (!summary.interrupted) {
    s.status.state = "finished";
    s.status.eta_seconds = 0;
    s.run.WriteStatus(s.status);
  }
  summary.best_recall = s.position.best_recall;
  summary.steps = s.position.step;
  summary.steps_trained_here = trained_steps;
  summary.total_steps = s.total_steps();
  summary.images_per_second =
      trained_steps > 0 ? trained_steps * config.batch_size / Seconds(training_time) : 0;
  summary.wall_seconds = Seconds(Clock::now() - run_start);
  return summary;
}

}  // namespace hier::train
