#include "trainer/train/trainer.h"

#include <ATen/ATen.h>
#include <c10/util/Exception.h>
#include <torch/cuda.h>
#include <torch/utils.h>

#include <chrono>
#include <ctime>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "trainer/analysis/class_tree.h"
#include "trainer/core/fast_math.h"
#include "trainer/core/objective.h"
#include "trainer/data/balanced_sampler.h"
#include "trainer/data/batch_prefetcher.h"
#include "trainer/io/atomic_file.h"
#include "trainer/model/embedding_net.h"
#include "trainer/model/pretrained.h"
#include "trainer/train/checkpoint.h"
#include "trainer/train/distributed.h"
#include "trainer/train/evaluation.h"
#include "trainer/train/model_settings.h"
#include "trainer/train/optimization.h"
#include "trainer/train/run_directory.h"
#include "trainer/train/run_report.h"
#include "trainer/train/training_data.h"

namespace hier::train {
namespace {

using Clock = std::chrono::steady_clock;
using Json = nlohmann::json;

// The rank's device: with CUDA, GPU `local_rank` (modulo the GPUs there are).
c10::Device PickDevice(const std::string& name, int64_t local_rank) {
  const bool cuda = torch::cuda::is_available();
  if (name == "cuda") {
    TORCH_CHECK(cuda, "--device: cuda was asked for, but this LibTorch build sees no CUDA device");
  }
  if (name == "cuda" || (name == "auto" && cuda)) {
    const auto gpus = static_cast<int64_t>(torch::cuda::device_count());
    return c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(local_rank % gpus));
  }
  return c10::Device(c10::kCPU);
}

// Independent streams for the batches' augmentation and HIER's draws, keyed by position.
uint64_t AugmentationKey(uint64_t seed, int64_t epoch, int64_t batch) {
  return core::Mix64(core::Mix64(seed ^ 0x5851f42d4c957f2dULL) ^ core::Mix64(epoch) ^
                     static_cast<uint64_t>(batch));
}
uint64_t StepSeed(uint64_t seed, int64_t step) {
  return core::Mix64(seed ^ core::Mix64(static_cast<uint64_t>(step) + 1));
}

// The augmentation key of each image by its position in the global batch, so a job of N
// processes augments exactly as one process with N times the batch does.
std::vector<uint64_t> ItemKeys(uint64_t batch_key, int64_t first_position, int64_t count) {
  std::vector<uint64_t> keys(count);
  for (int64_t i = 0; i < count; ++i) {
    keys[i] = core::Mix64(batch_key ^ core::Mix64(static_cast<uint64_t>(first_position + i)));
  }
  return keys;
}

// Every rank's embedded shard, in rank order. A shard holds at most `capacity` rows (fewer when
// images failed to decode), so rows travel padded, as float64 with their item and label.
EmbeddedImages GatherShards(Collectives& dist, const EmbeddedImages& local, int64_t capacity) {
  if (dist.world_size() == 1) return local;
  const int64_t rows = local.embeddings.size(0), dim = local.embeddings.size(1);
  at::Tensor packed = at::full({capacity, dim + 2}, -1.0, at::kDouble);
  if (rows > 0) {
    packed.slice(0, 0, rows).slice(1, 0, dim).copy_(local.embeddings);
    packed.slice(0, 0, rows).select(1, dim).copy_(at::tensor(local.items, at::kLong));
    packed.slice(0, 0, rows).select(1, dim + 1).copy_(at::tensor(local.labels, at::kLong));
  }
  const at::Tensor all = dist.AllGather(packed);
  const at::Tensor valid = all.select(1, dim) >= 0;
  const at::Tensor kept = all.index({valid});
  EmbeddedImages out;
  out.embeddings = kept.slice(1, 0, dim).to(at::kFloat);
  const at::Tensor items = kept.select(1, dim).to(at::kLong).contiguous();
  const at::Tensor labels = kept.select(1, dim + 1).to(at::kLong).contiguous();
  out.items.assign(items.data_ptr<int64_t>(), items.data_ptr<int64_t>() + items.numel());
  out.labels.assign(labels.data_ptr<int64_t>(), labels.data_ptr<int64_t>() + labels.numel());
  return out;
}

// This rank's share of a source's items embedded, then every rank's shares gathered.
EmbeddedImages EmbedSharded(Collectives& dist, model::EmbeddingNet& net,
                            const data::ImageSource& source, const c10::Device& device) {
  const int64_t n = source.size(), world = dist.world_size();
  const int64_t capacity = (n + world - 1) / world;
  const int64_t begin = std::min(n, dist.rank() * capacity);
  const int64_t end = std::min(n, begin + capacity);
  return GatherShards(dist, EmbedImages(net, source, begin, end, device), capacity);
}

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

// One step's loss terms (shown and logged) and HIER's diagnostics (logged only).
struct StepOutcome {
  std::map<std::string, double> losses;
  std::map<std::string, double> diagnostics;
};

// Sums of per-step values since the last metrics line.
struct Window {
  std::map<std::string, double> sums;
  int64_t steps = 0;

  void Add(const std::map<std::string, double>& values) {
    for (const auto& [name, value] : values) sums[name] += value;
  }
  std::map<std::string, double> Means() const {
    std::map<std::string, double> means;
    for (const auto& [name, sum] : sums) means[name] = sum / static_cast<double>(steps);
    return means;
  }
  void Clear() {
    sums.clear();
    steps = 0;
  }
};

// The proxies' radii as an evaluation records them (hier-method.md section 3.1: beyond the clip
// radius a proxy's radial gradient is zero).
Json RadiiJson(const core::ProxyRadii& radii) {
  Json depth = Json::object();
  const char* names[] = {"min", "p10", "median", "p90", "max"};
  for (size_t i = 0; i < radii.depth_quantiles.size(); ++i)
    depth[names[i]] = radii.depth_quantiles[i];
  return {{"proxies", radii.count}, {"on_clip_sphere", radii.on_clip_sphere}, {"depth", depth}};
}

}  // namespace

std::string ResolveRunDir(const TrainConfig& config) {
  if (!config.run_dir.empty()) return config.run_dir;
  const std::time_t now = std::time(nullptr);
  char stamp[32];
  std::strftime(stamp, sizeof(stamp), "%Y%m%d-%H%M%S", std::gmtime(&now));
  return "runs/" + std::string(stamp) + "-" + config.model + "-" + config.loss;
}

std::unique_ptr<Collectives> JoinJob(const TrainConfig& config) {
  const DistributedEnv env = ReadDistributedEnv();
  const bool cuda = PickDevice(config.device, env.local_rank).is_cuda();
  return Collectives::Connect(env, config.dist_backend, cuda,
                              std::chrono::seconds(config.dist_timeout));
}

struct Trainer::State {
  explicit State(const TrainConfig& c)
      : config(c),
        dist(JoinJob(c)),
        run(ResolveRunDir(c)),
        device(PickDevice(c.device, ReadDistributedEnv().local_rank)) {}

  TrainConfig config;
  std::unique_ptr<Collectives> dist;
  RunDirectory run;
  c10::Device device;
  TrainingData data;
  std::unique_ptr<data::BalancedSampler> sampler;
  int64_t steps_per_epoch = 0;
  model::EmbeddingNet net{nullptr};
  core::Objective objective{nullptr};
  core::HierLoss untrained_hier{nullptr};  // the chance reference of a run without HIER
  std::optional<analysis::LabelHierarchy> label_hierarchy;  // from --groups
  std::unique_ptr<Optimization> optimization;
  TrainingPosition position;
  RunStatus status;
  int64_t reported_skips = 0;

  bool is_root() const { return dist->is_root(); }
  int64_t total_steps() const { return config.epochs * steps_per_epoch; }
  int64_t global_batch() const { return config.batch_size * dist->world_size(); }
  void BuildModel();
  void Synchronise();
  data::TrainBatch MakeBatch(int64_t epoch, int64_t batch) const;
  StepOutcome TrainStep(const data::TrainBatch& batch);
  void ReduceGradients();
  CheckpointInfo Info() const;
  std::string Checkpoint();
  bool Evaluate(ProgressReporter& progress);  // true when this evaluation is the best so far
  void ReportSkippedFiles(ProgressReporter& progress);
  void WriteStatus() const;
  bool StopRequested(const std::atomic<bool>* stop) const;
};

void Trainer::State::BuildModel() {
  torch::manual_seed(config.seed);
  net = model::EmbeddingNet(Architecture(config, data.preprocessing));
  if (!config.pretrained.empty()) model::LoadPretrainedWeights(*net->body, config.pretrained);
  net->body->set_bn_freeze(config.bn_freeze);
  objective = core::Objective(
      ObjectiveSettings(config, static_cast<int64_t>(data.train->class_names().size())));
  if (!objective->hier) untrained_hier = core::HierLoss(HierOptions(config));
  net->to(device);
  objective->to(device);
  if (untrained_hier) untrained_hier->to(device);
}

// Every rank starts from rank 0's weights and proxies, whatever it initialised or restored.
void Trainer::State::Synchronise() {
  std::vector<at::Tensor> tensors;
  for (const torch::nn::Module* module : {static_cast<torch::nn::Module*>(net.get()),
                                          static_cast<torch::nn::Module*>(objective.get())}) {
    for (const at::Tensor& p : module->parameters()) tensors.push_back(p.detach());
    for (const at::Tensor& b : module->buffers()) tensors.push_back(b);
  }
  torch::NoGradGuard no_grad;
  dist->Broadcast(tensors);
}

data::TrainBatch Trainer::State::MakeBatch(int64_t epoch, int64_t batch) const {
  const std::vector<int64_t> indices = sampler->Batch(epoch, batch);
  const int64_t count = static_cast<int64_t>(indices.size());
  data::TrainBatch made;
  made.images = data.train->TrainInputs(
      indices, ItemKeys(AugmentationKey(config.seed, epoch, batch), dist->rank() * count, count));
  made.labels = data::LabelsTensor(data.train->labels(), indices);
  return made;
}

// The loss is the global batch's on every rank, but each rank back-propagates only into its own
// images: summing the model's gradients gives the single-process gradient. The proxies' gradients
// are already equal on every rank; averaging them keeps the copies bit-identical.
void Trainer::State::ReduceGradients() {
  if (dist->world_size() == 1) return;
  auto defined_grads = [](const std::vector<at::Tensor>& parameters) {
    std::vector<at::Tensor> grads;
    for (const at::Tensor& p : parameters) {
      if (p.grad().defined()) grads.push_back(p.mutable_grad());
    }
    return grads;
  };
  dist->AllReduceSum(defined_grads(net->parameters()));
  const std::vector<at::Tensor> proxy_grads = defined_grads(objective->parameters());
  dist->AllReduceSum(proxy_grads);
  for (const at::Tensor& g : proxy_grads) g.div_(static_cast<double>(dist->world_size()));
}

StepOutcome Trainer::State::TrainStep(const data::TrainBatch& batch) {
  optimization->SetLearningRates(position.step);
  const at::Tensor z = dist->AllGather(net->forward(batch.images.to(device)));
  const at::Tensor labels = dist->AllGather(batch.labels.to(device));
  const core::ObjectiveTerms terms =
      objective->forward(z, labels, StepSeed(config.seed, position.step));
  terms.total.backward();
  ReduceGradients();
  optimization->Step();
  StepOutcome outcome;
  outcome.losses = {{"loss", terms.total.item<double>()}, {"metric", terms.metric.item<double>()}};
  if (terms.hier.defined()) outcome.losses["hier"] = terms.hier.item<double>();
  if (terms.hier_stats) {
    outcome.diagnostics = {{"active_sample_proxy", terms.hier_stats->active_sample_proxy},
                           {"active_proxy_proxy", terms.hier_stats->active_proxy_proxy},
                           {"lca_proxies", static_cast<double>(terms.hier_stats->lca_proxies)}};
  }
  ++position.step;
  if (++position.batch == steps_per_epoch) {
    position.batch = 0;
    ++position.epoch;
  }
  return outcome;
}

CheckpointInfo Trainer::State::Info() const {
  CheckpointInfo info;
  info.architecture = net->options;
  if (!config.backbone_file.empty()) info.architecture.backbone_file(run.File("backbone.ts"));
  info.preprocessing = data.preprocessing;
  info.class_names = data.train->class_names();
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
  const EmbeddedImages queries = EmbedSharded(*dist, net, *data.query, device);
  std::optional<EmbeddedImages> gallery;
  if (data.gallery) gallery = EmbedSharded(*dist, net, *data.gallery, device);
  if (!is_root()) return false;
  const std::vector<int64_t>& ks = data.recall_k;
  const core::RetrievalMetrics metrics =
      EvaluateRetrieval(queries, gallery ? &*gallery : nullptr, ks, config.c,
                        label_hierarchy ? &*label_hierarchy : nullptr);
  const std::vector<double>& recall = metrics.recall;
  const bool best = position.best_recall.empty() || recall[0] > position.best_recall[0];
  Json line = {{"kind", "eval"}, {"epoch", position.epoch}, {"step", position.step}};
  for (size_t i = 0; i < recall.size(); ++i) line["recall"][std::to_string(ks[i])] = recall[i];
  status.evaluation = NamedMetrics(metrics, ks);
  line["metrics"] = status.evaluation;
  if (objective->hier) line["proxies"] = RadiiJson(objective->hier->Radii());
  line["seconds"] = Seconds(Clock::now() - start);
  run.AppendMetrics(line.dump(), /*sync=*/true);
  progress.Message("eval epoch " + std::to_string(position.epoch) + ": " +
                   FormatMetrics(status.evaluation) + (best ? " (best)" : ""));
  if (best) {
    position.best_recall = recall;
    position.best_step = position.step;
    torch::NoGradGuard no_grad;
    const bool trained = static_cast<bool>(objective->hier);
    const at::Tensor proxies =
        (trained ? objective->hier->MappedProxies() : untrained_hier->MappedProxies())
            .to(at::kCPU, at::kFloat);
    WriteHierarchyReport(run, proxies, trained, queries.embeddings, queries.labels,
                         data.query->class_names(), config.c);
  }
  return best;
}

void Trainer::State::ReportSkippedFiles(ProgressReporter& progress) {
  const data::SkippedFiles skipped = data.skipped->Snapshot();
  status.skipped_files = skipped.count;
  if (skipped.count == reported_skips) return;
  reported_skips = skipped.count;
  std::string text = "skipped " + std::to_string(skipped.count) +
                     " missing or undecodable image file(s) (--strict fails instead):";
  for (const std::string& example : skipped.examples) text += "\n  " + example;
  progress.Message(text);
}

void Trainer::State::WriteStatus() const {
  if (is_root()) run.WriteStatus(status);
}

// Whether any rank was asked to stop: all of them then stop after the same step.
bool Trainer::State::StopRequested(const std::atomic<bool>* stop) const {
  const bool here = stop != nullptr && stop->load();
  if (dist->world_size() == 1) return here;
  const at::Tensor votes = at::full({1}, here ? 1.0f : 0.0f);
  dist->AllReduceSum({votes});
  return votes.item<float>() > 0;
}

Trainer::Trainer(const TrainConfig& config) : state_(std::make_unique<State>(config)) {
  State& s = *state_;
  if (config.threads > 0) at::set_num_threads(static_cast<int>(config.threads));
  const std::optional<std::string> latest = LatestCheckpoint(s.run.checkpoints());
  TORCH_CHECK(config.resume || !latest, "--run-dir: ", s.run.path(),
              " already holds a run; pass --resume to continue it or choose another directory");
  s.data = OpenTrainingData(config);
  if (!config.groups.empty()) {
    s.label_hierarchy =
        analysis::ClassTree::Load(config.groups).ForLabels(s.data.query->class_names());
  }
  data::BalancedSamplerOptions sampling;
  sampling.batch_size = config.batch_size;
  sampling.images_per_class = config.ipc;
  sampling.world_size = s.dist->world_size();
  sampling.rank = s.dist->rank();
  sampling.seed = config.seed;
  s.sampler = std::make_unique<data::BalancedSampler>(s.data.train->labels(), sampling);
  s.steps_per_epoch =
      config.steps_per_epoch > 0 ? config.steps_per_epoch : s.sampler->BatchesPerEpoch();

  s.BuildModel();
  s.optimization = std::make_unique<Optimization>(config, s.net, s.objective, s.steps_per_epoch,
                                                  s.dist->world_size());
  if (config.resume) {
    if (latest) {
      s.position =
          RestoreCheckpoint(*latest, {s.net, s.objective, &s.optimization->optimizer()}).position;
    }
    if (s.is_root()) s.run.TruncateMetricsAfter(s.position.step);
  }
  s.Synchronise();
  if (s.is_root()) {
    s.run.WriteConfig(ToJson(config));
    if (!config.backbone_file.empty()) {
      io::WriteFileAtomically(s.run.File("backbone.ts"), io::ReadFile(config.backbone_file));
    }
  }
  s.status.epochs = config.epochs;
  s.status.total_steps = s.total_steps();
  s.status.world_size = s.dist->world_size();
}

Trainer::~Trainer() = default;

const std::string& Trainer::run_dir() const { return state_->run.path(); }

void Trainer::MarkFailed(const std::string& message) {
  state_->status.state = "failed";
  state_->status.message = message;
  state_->WriteStatus();
}

bool Trainer::is_root() const { return state_->is_root(); }

TrainSummary Trainer::Run(ProgressReporter& progress, const std::atomic<bool>* stop) {
  State& s = *state_;
  const TrainConfig& config = s.config;
  const auto run_start = Clock::now();
  Clock::duration training_time{};
  int64_t trained_steps = 0;
  TrainSummary summary;
  summary.run_dir = s.run.path();
  summary.recall_k = s.data.recall_k;

  s.status.state = "running";
  s.status.step = s.position.step;
  s.status.epoch = s.position.epoch;
  s.WriteStatus();
  if (s.position.step > 0) {
    progress.Message("resuming " + s.run.path() + " at epoch " + std::to_string(s.position.epoch) +
                     ", step " + std::to_string(s.position.step));
  }
  s.ReportSkippedFiles(progress);

  data::BatchPrefetcher batches(
      [&s](int64_t epoch, int64_t batch) { return s.MakeBatch(epoch, batch); },
      {s.steps_per_epoch, s.position.epoch, s.position.batch, config.epochs}, config.prefetch);
  s.net->train();
  Window losses, diagnostics;
  while (true) {
    const auto step_start = Clock::now();
    std::optional<data::TrainBatch> batch = batches.Next();
    if (!batch) break;
    const StepOutcome outcome = s.TrainStep(*batch);
    losses.Add(outcome.losses);
    diagnostics.Add(outcome.diagnostics);
    ++losses.steps;
    ++diagnostics.steps;
    ++trained_steps;
    training_time += Clock::now() - step_start;

    const double steps_per_second = trained_steps / Seconds(training_time);
    ProgressSnapshot snapshot;
    snapshot.epoch = batch->epoch;
    snapshot.epochs = config.epochs;
    snapshot.step = s.position.step;
    snapshot.total_steps = s.total_steps();
    snapshot.images_per_second = steps_per_second * s.global_batch();
    snapshot.eta_seconds = (s.total_steps() - s.position.step) / steps_per_second;
    snapshot.losses = losses.Means();
    progress.Update(snapshot);

    const bool epoch_done = s.position.batch == 0;
    if (s.position.step % config.log_every == 0 || epoch_done) {
      Json line = {{"kind", "train"},
                   {"epoch", batch->epoch},
                   {"step", s.position.step},
                   {"images_per_second", snapshot.images_per_second},
                   {"lr", s.optimization->LearningRates()}};
      for (const auto& [name, value] : snapshot.losses) line[name] = value;
      for (const auto& [name, value] : diagnostics.Means()) line[name] = value;
      if (s.is_root()) s.run.AppendMetrics(line.dump(), /*sync=*/false);
      s.status.losses = snapshot.losses;
      losses.Clear();
      diagnostics.Clear();
    }
    s.status.step = s.position.step;
    s.status.epoch = s.position.epoch;
    s.status.images_per_second = snapshot.images_per_second;
    s.status.eta_seconds = snapshot.eta_seconds;

    if (epoch_done) {
      const bool last = s.position.epoch == config.epochs;
      const bool best = (s.position.epoch % config.eval_every == 0 || last) && s.Evaluate(progress);
      if (s.is_root()) {
        const std::string checkpoint = s.Checkpoint();
        if (best) PublishCopy(checkpoint, s.run.best());
        WriteTrainingCurves(s.run);
      }
      if (!s.position.best_recall.empty()) s.status.best_recall = s.position.best_recall[0];
      s.ReportSkippedFiles(progress);
      s.WriteStatus();
    } else if (s.position.step % config.log_every == 0) {
      s.WriteStatus();
    }
    if (s.StopRequested(stop) && s.position.step < s.total_steps()) {
      if (!epoch_done && s.is_root()) s.Checkpoint();
      s.status.state = "interrupted";
      s.WriteStatus();
      progress.Message("interrupted at step " + std::to_string(s.position.step) +
                       "; continue with --resume --run-dir " + s.run.path());
      summary.interrupted = true;
      break;
    }
  }
  if (!summary.interrupted) {
    s.status.state = "finished";
    s.status.eta_seconds = 0;
    s.WriteStatus();
  }
  summary.best_recall = s.position.best_recall;
  summary.steps = s.position.step;
  summary.steps_trained_here = trained_steps;
  summary.total_steps = s.total_steps();
  summary.images_per_second =
      trained_steps > 0 ? trained_steps * s.global_batch() / Seconds(training_time) : 0;
  summary.wall_seconds = Seconds(Clock::now() - run_start);
  return summary;
}

}  // namespace hier::train
