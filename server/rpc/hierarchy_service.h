// The Hierarchy service (proto/hier/v1/hierarchy.proto): a model's proxy tree, and the chains of
// proxies above an image or a point.
#pragma once

#include "hier/v1/hierarchy.grpc.pb.h"
#include "server/model/model_catalog.h"
#include "server/model/serving_slot.h"
#include "server/rpc/authorizer.h"
#include "server/rpc/retrieval_service.h"

namespace hier::server {

// What the Hierarchy service works on (not owned; outlive the service).
struct HierarchyBackends {
  const ModelCatalog* catalog = nullptr;
  ServingSlot* serving = nullptr;
  const Authorizer* authorizer = nullptr;
};

class HierarchyService final : public hier::v1::Hierarchy::Service {
 public:
  HierarchyService(const HierarchyBackends& backends, const RetrievalLimits& limits)
      : backends_(backends), limits_(limits) {}

  grpc::Status GetHierarchy(grpc::ServerContext* context,
                            const hier::v1::GetHierarchyRequest* request,
                            hier::v1::HierarchyTree* response) override;
  grpc::Status Ancestors(grpc::ServerContext* context, const hier::v1::AncestorsRequest* request,
                         hier::v1::AncestorsResponse* response) override;

 private:
  const HierarchyBackends backends_;
  const RetrievalLimits limits_;
};

}  // namespace hier::server
