// Loads pretrained weights (e.g. a scripted torchvision ResNet) into a C++ module by tensor name.
#pragma once

#include <torch/nn/module.h>

#include <cstdint>
#include <string>

namespace hier::model {

// Copies every parameter and buffer of `into` from the same-named tensor of the TorchScript module
// saved at `torchscript_path` (torch::jit::load, on CPU) under NoGradGuard. Names in the file that
// `into` lacks (e.g. fc.weight) are ignored. Throws c10::Error (TORCH_CHECK) naming the file and
// the tensor when the file cannot be loaded, a name of `into` is missing from the file, or shapes
// differ. Returns how many tensors were copied.
int64_t LoadPretrainedWeights(torch::nn::Module& into, const std::string& torchscript_path);

}  // namespace hier::model
