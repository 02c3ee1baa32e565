#include "trainer/model/scripted_backbone.h"

#include <ATen/ATen.h>
#include <c10/util/Exception.h>
#include <torch/script.h>
#include <torch/utils.h>

namespace hier::model {
namespace {

// Registers the parameters, buffers and submodules of `script` on `mirror`, recursively, under
// the same names; the tensors are shared, not copied.
void Mirror(const torch::jit::Module& script, torch::nn::Module& mirror) {
  for (const auto& p : script.named_parameters(/*recurse=*/false)) {
    mirror.register_parameter(p.name, p.value, p.value.requires_grad());
  }
  for (const auto& b : script.named_buffers(/*recurse=*/false)) {
    mirror.register_buffer(b.name, b.value);
  }
  for (const auto& child : script.named_children()) {
    auto module = std::make_shared<torch::nn::Module>(child.name);
    Mirror(child.value, *module);
    mirror.register_module(child.name, module);
  }
}

at::Tensor Features(const at::Tensor& output, const std::string& path) {
  if (output.dim() == 4) return GlobalAvgPlusMaxPool(output);
  TORCH_CHECK(output.dim() == 2, "--backbone-file: ", path,
              " must return features [B, F] or maps [B, F, h, w], got ", output.sizes());
  return output;
}

}  // namespace

ScriptedBackboneImpl::ScriptedBackboneImpl(const std::string& path, int64_t in_channels,
                                           int64_t input_size) {
  try {
    script_ = std::make_unique<torch::jit::Module>(torch::jit::load(path, c10::Device(c10::kCPU)));
  } catch (const std::exception& e) {
    TORCH_CHECK(false, "--backbone-file: cannot load TorchScript from ", path, ": ", e.what());
  }
  Mirror(*script_, *this);
  torch::NoGradGuard no_grad;
  script_->eval();
  at::Tensor probe;
  try {
    probe = script_->forward({at::zeros({2, in_channels, input_size, input_size})}).toTensor();
  } catch (const std::exception& e) {
    TORCH_CHECK(false, "--backbone-file: ", path, " fails on a [2, ", in_channels, ", ",
                input_size, ", ", input_size, "] batch: ", e.what());
  }
  features_ = Features(probe, path).size(1);
  train(true);
}

ScriptedBackboneImpl::~ScriptedBackboneImpl() = default;

at::Tensor ScriptedBackboneImpl::forward(const at::Tensor& images) {
  return Features(script_->forward({images}).toTensor(), "the scripted backbone");
}

void ScriptedBackboneImpl::train(bool on) {
  script_->train(on);
  BackboneImpl::train(on);
}

void ScriptedBackboneImpl::FreezeBatchNorm() {
  for (torch::jit::Module module : script_->modules()) {
    const auto type = module.type()->name();
    if (type && type->name().find("BatchNorm") != std::string::npos) module.eval();
  }
}

}  // namespace hier::model
