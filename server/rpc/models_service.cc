#include "server/rpc/models_service.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "server/rpc/call_deadline.h"

namespace hier::server {

hier::v1::Model ModelsService::ToProto(const ModelDescription& model) const {
  hier::v1::Model out;
  out.set_version(model.version);
  out.set_run_dir(model.run_dir);
  out.set_architecture(model.architecture);
  out.set_dim(static_cast<int32_t>(model.dim));
  out.set_c(model.c);
  for (size_t i = 0; i < model.best_recall.size() && i < model.recall_k.size(); ++i) {
    (*out.mutable_recall())[absl::StrCat("R@", model.recall_k[i])] = model.best_recall[i];
  }
  const std::shared_ptr<ServingModel> serving = backends_.serving->Get().model;
  out.set_serving(serving != nullptr &&
                  SameCheckpoint(serving->description().checkpoint_dir, model.checkpoint_dir));
  return out;
}

grpc::Status ModelsService::ListModels(grpc::ServerContext* context,
                                       const hier::v1::ListModelsRequest*,
                                       hier::v1::ListModelsResponse* response) {
  return backends_.authorizer->Run(*context, Access::kRead, [&]() -> absl::Status {
    for (const ModelDescription& model : backends_.catalog->List()) {
      *response->add_models() = ToProto(model);
    }
    return absl::OkStatus();
  });
}

grpc::Status ModelsService::GetModel(grpc::ServerContext* context,
                                     const hier::v1::GetModelRequest* request,
                                     hier::v1::Model* response) {
  return backends_.authorizer->Run(*context, Access::kRead, [&]() -> absl::Status {
    if (request->version().empty()) {
      const std::shared_ptr<ServingModel> serving = backends_.serving->Get().model;
      if (serving == nullptr) return absl::NotFoundError("version: no model is serving");
      *response = ToProto(serving->description());
      return absl::OkStatus();
    }
    absl::StatusOr<std::string> checkpoint = backends_.catalog->Resolve(request->version());
    if (!checkpoint.ok()) return checkpoint.status();
    absl::StatusOr<ModelDescription> model = ReadModelDescription(*checkpoint);
    if (!model.ok()) return model.status();
    *response = ToProto(*model);
    return absl::OkStatus();
  });
}

grpc::Status ModelsService::LoadModel(grpc::ServerContext* context,
                                      const hier::v1::LoadModelRequest* request,
                                      hier::v1::LoadModelResponse* response) {
  return backends_.authorizer->Run(*context, Access::kWrite, [&]() -> absl::Status {
    absl::StatusOr<std::string> checkpoint = backends_.catalog->Resolve(request->version());
    if (!checkpoint.ok()) return checkpoint.status();
    absl::StatusOr<ModelDescription> model = ReadModelDescription(*checkpoint);
    if (!model.ok()) return model.status();
    if (absl::Status settled = CheckNotTraining(*model); !settled.ok()) return settled;
    absl::StatusOr<SwapStatus> swap =
        backends_.swapper->Swap(*checkpoint, request->wait(), CallDeadline(*context));
    if (!swap.ok()) return swap.status();
    if (!swap->error.ok()) return swap->error;
    *response->mutable_model() = ToProto(*model);
    response->set_reembedded_items(swap->reembedded);
    response->set_complete(swap->complete);
    return absl::OkStatus();
  });
}

grpc::Status ModelsService::GetSwap(grpc::ServerContext* context, const hier::v1::GetSwapRequest*,
                                    hier::v1::SwapProgress* response) {
  return backends_.authorizer->Run(*context, Access::kRead, [&]() -> absl::Status {
    const SwapStatus swap = backends_.swapper->status();
    response->set_target_version(swap.target);
    response->set_reembedded_items(swap.reembedded);
    response->set_running(swap.running);
    response->set_complete(swap.complete);
    if (!swap.error.ok()) {
      response->set_error_code(absl::StatusCodeToString(swap.error.code()));
      response->set_error_message(std::string(swap.error.message()));
    }
    return absl::OkStatus();
  });
}

}  // namespace hier::server
