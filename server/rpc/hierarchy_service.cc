#include "server/rpc/hierarchy_service.h"

#include "absl/strings/str_cat.h"
#include "server/rpc/ancestors_proto.h"
#include "server/rpc/call_deadline.h"

namespace hier::server {

grpc::Status HierarchyService::GetHierarchy(grpc::ServerContext* context,
                                            const hier::v1::GetHierarchyRequest* request,
                                            hier::v1::HierarchyTree* response) {
  return backends_.authorizer->Run(*context, Access::kRead, [&]() -> absl::Status {
    absl::StatusOr<std::shared_ptr<const ProxyHierarchy>> hierarchy;
    std::string version = request->model_version();
    if (version.empty()) {
      const std::shared_ptr<ServingModel> model = backends_.serving->Get().model;
      if (model == nullptr) return absl::NotFoundError("model_version: no model is serving");
      hierarchy = model->hierarchy();
      version = model->description().version;
    } else {
      absl::StatusOr<std::string> checkpoint = backends_.catalog->Resolve(version, "model_version");
      if (!checkpoint.ok()) return checkpoint.status();
      absl::StatusOr<ModelDescription> model = ReadModelDescription(*checkpoint);
      if (!model.ok()) return model.status();
      hierarchy = ProxyHierarchy::Load(model->run_dir);
      version = model->version;
    }
    if (!hierarchy.ok()) return hierarchy.status();
    response->set_model_version(version);
    const std::vector<HierarchyProxy>& proxies = (*hierarchy)->proxies();
    for (size_t p = 0; p < proxies.size(); ++p) {
      hier::v1::Proxy* proxy = response->add_proxies();
      proxy->set_index(static_cast<int32_t>(p));
      proxy->mutable_point()->Add(proxies[p].point.begin(), proxies[p].point.end());
      proxy->set_parent(static_cast<int32_t>(proxies[p].parent));
      proxy->set_depth(static_cast<int32_t>(proxies[p].level));
      proxy->set_distance_to_origin(proxies[p].depth);
      proxy->set_members(proxies[p].members);
      proxy->mutable_disk()->Add(proxies[p].disk.begin(), proxies[p].disk.end());
    }
    return absl::OkStatus();
  });
}

grpc::Status HierarchyService::Ancestors(grpc::ServerContext* context,
                                         const hier::v1::AncestorsRequest* request,
                                         hier::v1::AncestorsResponse* response) {
  return backends_.authorizer->Run(*context, Access::kRead, [&]() -> absl::Status {
    const std::shared_ptr<ServingModel> model = backends_.serving->Get().model;
    if (model == nullptr) {
      return absl::FailedPreconditionError("query: no model is loaded (LoadModel first)");
    }
    if (!model->hierarchy().ok()) return model->hierarchy().status();
    std::vector<float> point;
    const char* field = "vector";
    switch (request->query_case()) {
      case hier::v1::AncestorsRequest::kVector:
        point.assign(request->vector().values().begin(), request->vector().values().end());
        break;
      case hier::v1::AncestorsRequest::kImage: {
        field = "image";
        absl::StatusOr<std::vector<float>> embedded = model->EmbedImages(
            {{&request->image(), field}}, limits_.max_pixels, CallDeadline(*context));
        if (!embedded.ok()) return embedded.status();
        point = *std::move(embedded);
        break;
      }
      default:
        return absl::InvalidArgumentError("query: set its image or its vector");
    }
    if (request->nearest() < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("nearest: must be >= 0 (0: 1), got ", request->nearest()));
    }
    absl::StatusOr<std::vector<std::vector<AncestorStep>>> chains =
        (*model->hierarchy())->ChainsAbove(point, std::max(1, request->nearest()), field);
    if (!chains.ok()) return chains.status();
    for (const std::vector<AncestorStep>& chain : *chains) {
      AddAncestors(chain, response->add_chains()->mutable_ancestors());
    }
    const std::array<double, 2> disk = (*model->hierarchy())->DiskPosition(point);
    response->mutable_disk()->Add(disk.begin(), disk.end());
    response->set_model_version(model->description().version);
    return absl::OkStatus();
  });
}

}  // namespace hier::server
