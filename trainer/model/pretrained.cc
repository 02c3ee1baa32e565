#include "trainer/model/pretrained.h"

#include <ATen/ATen.h>
#include <c10/util/Exception.h>
#include <torch/script.h>

#include <unordered_map>

namespace hier::model {

int64_t LoadPretrainedWeights(torch::nn::Module& into, const std::string& torchscript_path) {
  torch::jit::Module source;
  try {
    source = torch::jit::load(torchscript_path, torch::kCPU);
  } catch (const c10::Error& e) {
    TORCH_CHECK(false, "model: cannot load pretrained weights from '", torchscript_path,
                "': ", e.what_without_backtrace());
  }
  std::unordered_map<std::string, at::Tensor> by_name;
  for (const auto& item : source.named_parameters(/*recurse=*/true))
    by_name[item.name] = item.value;
  for (const auto& item : source.named_buffers(/*recurse=*/true)) by_name[item.name] = item.value;

  torch::NoGradGuard no_grad;
  int64_t copied = 0;
  auto copy_all = [&](const torch::OrderedDict<std::string, at::Tensor>& targets) {
    for (const auto& target : targets) {
      const auto found = by_name.find(target.key());
      TORCH_CHECK(found != by_name.end(), "model: pretrained weights '", torchscript_path,
                  "' have no tensor '", target.key(), "'");
      TORCH_CHECK(found->second.sizes() == target.value().sizes(), "model: pretrained tensor '",
                  target.key(), "' in '", torchscript_path, "' has shape ", found->second.sizes(),
                  ", expected ", target.value().sizes());
      target.value().copy_(found->second);
      ++copied;
    }
  };
  copy_all(into.named_parameters(/*recurse=*/true));
  copy_all(into.named_buffers(/*recurse=*/true));
  return copied;
}

}  // namespace hier::model
