#include "trainer/train/optimization.h"

#include <ATen/ATen.h>
#include <torch/optim/adamw.h>
#include <torch/optim/sgd.h>

#include <cmath>

namespace hier::train {
namespace {

// The reference scales every lr by the global batch over this size.
constexpr double kReferenceBatch = 180.0;

std::vector<at::Tensor> Trainable(const std::vector<at::Tensor>& parameters) {
  std::vector<at::Tensor> out;
  for (const at::Tensor& p : parameters) {
    if (p.requires_grad()) out.push_back(p);
  }
  return out;
}

}  // namespace

double ScheduleFactor(const TrainConfig& config, int64_t step, int64_t steps_per_epoch) {
  if (config.lr_decay == "step") {
    const int64_t epoch = step / steps_per_epoch;
    return std::pow(config.lr_decay_gamma, static_cast<double>(epoch / config.lr_decay_epochs));
  }
  if (config.lr_decay == "cosine") {
    const double total = static_cast<double>(config.epochs * steps_per_epoch);
    const double progress = std::min(1.0, static_cast<double>(step) / total);
    return config.min_lr_scale +
           (1.0 - config.min_lr_scale) * 0.5 * (1.0 + std::cos(M_PI * progress));
  }
  return 1.0;
}

Optimization::Optimization(const TrainConfig& config, model::EmbeddingNet& net,
                           core::Objective& objective, int64_t steps_per_epoch, int64_t world_size)
    : config_(config),
      steps_per_epoch_(steps_per_epoch),
      batch_scale_(static_cast<double>(config.batch_size * world_size) / kReferenceBatch) {
  std::vector<torch::optim::OptimizerParamGroup> groups;
  auto add = [&](const std::string& name, std::vector<at::Tensor> params, double scale,
                 bool frozen_in_warmup) {
    params = Trainable(params);
    if (params.empty()) return;
    names_.push_back(name);
    scales_.push_back(scale);
    frozen_in_warmup_.push_back(frozen_in_warmup);
    parameters_.insert(parameters_.end(), params.begin(), params.end());
    groups.emplace_back(std::move(params));
  };
  add("backbone", net->body->parameters(), config.backbone_lr_scale, true);
  std::vector<at::Tensor> head = net->last_norm->parameters();
  for (const at::Tensor& p : net->last_linear->parameters()) head.push_back(p);
  add("head", head, config.fc_lr_scale, false);
  if (objective->hier)
    add("hier_proxies", {objective->hier->proxies}, config.hier_proxy_lr_scale, false);
  if (objective->proxy_anchor) {
    add("class_proxies", objective->proxy_anchor->parameters(), config.pa_proxy_lr_scale, false);
  }
  if (config.optimizer == "sgd") {
    optimizer_ =
        std::make_unique<torch::optim::SGD>(groups, torch::optim::SGDOptions(config.lr)
                                                        .momentum(config.momentum)
                                                        .weight_decay(config.weight_decay));
  } else {
    optimizer_ =
        std::make_unique<torch::optim::AdamW>(groups, torch::optim::AdamWOptions(config.lr)
                                                          .eps(config.adam_eps)
                                                          .weight_decay(config.weight_decay));
  }
  SetLearningRates(0);
}

void Optimization::SetLearningRates(int64_t step) {
  const bool warming_up = step / steps_per_epoch_ < config_.warmup_epochs;
  const double factor = ScheduleFactor(config_, step, steps_per_epoch_);
  auto& groups = optimizer_->param_groups();
  for (size_t g = 0; g < groups.size(); ++g) {
    const bool frozen = warming_up && frozen_in_warmup_[g];
    groups[g].options().set_lr(frozen ? 0.0 : config_.lr * batch_scale_ * scales_[g] * factor);
  }
}

void Optimization::Step() {
  if (config_.clip_grad > 0) {
    for (at::Tensor& p : parameters_) {
      if (p.grad().defined()) p.mutable_grad().clamp_(-config_.clip_grad, config_.clip_grad);
    }
  }
  optimizer_->step();
  optimizer_->zero_grad();
}

std::vector<double> Optimization::LearningRates() const {
  std::vector<double> lrs;
  for (const auto& group : optimizer_->param_groups()) lrs.push_back(group.options().get_lr());
  return lrs;
}

}  // namespace hier::train
