#include "trainer/train/model_settings.h"

namespace hier::train {

model::EmbeddingNetOptions Architecture(const TrainConfig& config,
                                        const data::Preprocessing& preprocessing) {
  return model::EmbeddingNetOptions()
      .architecture(config.model)
      .in_channels(preprocessing.channels)
      .input_size(preprocessing.crop)
      .backbone_file(config.backbone_file)
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

}  // namespace hier::train
