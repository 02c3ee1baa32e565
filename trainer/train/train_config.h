// The training configuration: one schema read from flags and from a JSON file, validated as a
// whole before any work starts, and written back to the run directory as JSON.
#pragma once

#include <cstdint>
#include <exception>
#include <string>
#include <utility>
#include <vector>

namespace hier::train {

struct TrainConfig {
  // Data and run directory.
  std::string dataset = "fashion-mnist";  // or a file layout: folder, list, cub, cars, sop, inshop
  // fashion-mnist: "closed" trains and evaluates on all 10 classes; "disjoint" trains on 5 classes
  // and retrieves among the other 5 (FashionMnistDisjointSplit in trainer/data/image_set.h).
  std::string protocol = "closed";
  std::string data_dir = "/usr/share/datasets/fashion-mnist";  // the list file, for "list"
  std::string run_dir;      // empty: runs/<UTC time>-<model>-<loss>
  bool resume = false;      // continue from the run directory's latest checkpoint
  int64_t train_limit = 0;  // use only the first N training images (0: all)
  int64_t test_limit = 0;   // evaluate on the first N test images (0: all)
  bool augment = true;
  int64_t prefetch = 4;          // batches prepared ahead by the loader thread
  int64_t decode_threads = 2;    // image files decoded in parallel per batch
  bool strict = false;           // a missing or corrupt image file fails the run instead of skipped
  int64_t image_size = 224;      // file layouts: the model's input (training crop, evaluation crop)
  int64_t resize = 256;          // file layouts: evaluation resizes the shorter side to this first
  double crop_scale_min = 0.08;  // random resized crop's smallest area share (0.2 for ViTs)
  std::vector<double> mean;      // per channel; empty: the data set's (28x28) or ImageNet's
  std::vector<double> std;

  // Model.
  std::string model = "small-cnn";  // small-cnn, resnet18, resnet50 or torchscript
  std::string pretrained;           // resnet18/50: TorchScript file to copy weights from by name
  std::string backbone_file;        // torchscript: the scripted backbone
  bool bn_freeze = false;           // keep the backbone's BatchNorm layers in eval mode
  int64_t emb = 128;
  double c = 0.1;
  double clip_r = 2.3;

  // Objective: lambda1 * metric loss + lambda2 * HIER.
  std::string loss = "PA";  // PA, MS or SupCon
  double lambda1 = 1.0;
  double lambda2 = 0.5;
  int64_t num_proxies = 512;
  int64_t topk = 20;
  double margin = 0.1;
  double tau = 0.1;
  double supcon_tau = 0.2;

  // Batches and optimisation.
  int64_t batch_size = 180;  // per process
  int64_t ipc = 18;          // images per class in a batch
  int64_t epochs = 10;
  int64_t steps_per_epoch = 0;      // 0: len(train) / batch_size, as the reference
  std::string optimizer = "adamw";  // adamw or sgd
  double lr = 1e-3;                 // at batch 180; scaled by batch_size * world / 180
  double momentum = 0.9;            // sgd only
  // AdamW's epsilon: 1e-4 as the reference's fp16 runs; with 1e-8 the HIER proxies' tiny gradients
  // get full-size steps and every proxy ends on the clip sphere (README "What HIER buys").
  double adam_eps = 1e-4;
  double weight_decay = 1e-4;       // decoupled (AdamW) or L2 (SGD), on every group
  double backbone_lr_scale = 1.0;   // backbone
  double fc_lr_scale = 1.0;         // head (LayerNorm + Linear)
  double hier_proxy_lr_scale = 1.0;  // lr 1e-3 for the proxies, in the reference's 2.5e-4 .. 3e-2
  double pa_proxy_lr_scale = 100.0;
  int64_t warmup_epochs = 0;        // the backbone's lr is 0 for these epochs (the reference's)
  std::string lr_decay = "cosine";  // none, step or cosine
  int64_t lr_decay_epochs = 5;      // step decay: every N epochs ...
  double lr_decay_gamma = 0.5;      // ... multiply by gamma
  double min_lr_scale = 0.1;        // cosine: from 1 down to this
  double clip_grad = 10.0;          // clamp every gradient element to [-v, v]; 0: off
  uint64_t seed = 0;

  // Evaluation, checkpoints, logging, execution.
  int64_t eval_every = 1;  // epochs
  std::vector<int64_t>
      recall_k;  // empty: the data set's protocol (1,2,4,8; SOP 1,10,100,1000; ...)
  int64_t keep_checkpoints = 3;
  int64_t log_every = 50;             // steps between metrics lines (and plain progress lines)
  int64_t threads = 0;                // intra-op threads (0: LibTorch's default)
  std::string device = "auto";        // auto, cpu or cuda
  int64_t nproc = 1;                  // processes on this machine (data-parallel)
  std::string dist_backend = "auto";  // auto, gloo or nccl
  int64_t dist_timeout = 1800;        // seconds a collective may wait for the other ranks
  // Class hierarchy (a JSON tree of groups, trainer/analysis/class_tree.h): hierarchy-aware
  // metrics at every evaluation, and the discovery score at the end.
  std::string groups;
};

// Thrown for a bad value or an unknown key; `what()` is one line naming the flag.
class ConfigError : public std::exception {
 public:
  explicit ConfigError(std::string message) : message_(std::move(message)) {}
  const char* what() const noexcept override { return message_.c_str(); }

 private:
  std::string message_;
};

// Applies `--name value`, `--name=value` and `--config file.json` (applied in order, so later
// flags override the file); names accept '-' or '_'. Throws ConfigError.
void ApplyFlags(const std::vector<std::string>& args, TrainConfig& config);

// Applies the keys of a JSON object (snake_case names); throws ConfigError on unknown keys and
// mistyped values.
void ApplyJson(const std::string& json_text, TrainConfig& config, const std::string& origin);

// Checks every value and the data set's presence; throws ConfigError for the first problem.
void Validate(const TrainConfig& config);

// Image channels the model sees: 1 for the small CNN on Fashion-MNIST, else 3 (gray replicated).
int64_t InputChannels(const TrainConfig& config);

// The Recall@K list: --recall-k, or the data set's protocol.
std::vector<int64_t> RecallKs(const TrainConfig& config);

// The whole configuration as a JSON object (every key, so a run is rebuilt from it alone).
std::string ToJson(const TrainConfig& config);

// One line per setting: flag, default and meaning (for --help).
std::string ConfigHelp();

}  // namespace hier::train
