// The Models service (proto/hier/v1/models.proto): the checkpoints under the runs folder, the one
// serving, and hot swaps to another (LoadModel, through the ModelSwapper).
#pragma once

#include "hier/v1/models.grpc.pb.h"
#include "server/app/model_swapper.h"
#include "server/model/model_catalog.h"
#include "server/model/serving_slot.h"
#include "server/rpc/authorizer.h"

namespace hier::server {

// What the Models service works on (not owned; outlive the service).
struct ModelsBackends {
  const ModelCatalog* catalog = nullptr;
  ServingSlot* serving = nullptr;
  ModelSwapper* swapper = nullptr;
  const Authorizer* authorizer = nullptr;
};

class ModelsService final : public hier::v1::Models::Service {
 public:
  explicit ModelsService(const ModelsBackends& backends) : backends_(backends) {}

  grpc::Status ListModels(grpc::ServerContext* context, const hier::v1::ListModelsRequest* request,
                          hier::v1::ListModelsResponse* response) override;
  grpc::Status GetModel(grpc::ServerContext* context, const hier::v1::GetModelRequest* request,
                        hier::v1::Model* response) override;
  grpc::Status LoadModel(grpc::ServerContext* context, const hier::v1::LoadModelRequest* request,
                         hier::v1::LoadModelResponse* response) override;
  grpc::Status GetSwap(grpc::ServerContext* context, const hier::v1::GetSwapRequest* request,
                       hier::v1::SwapProgress* response) override;

 private:
  // The proto of `model`, marked serving when it is the serving model's checkpoint.
  hier::v1::Model ToProto(const ModelDescription& model) const;

  const ModelsBackends backends_;
};

}  // namespace hier::server
