// Chains of proxies above a point, written into the API's messages.
#pragma once

#include <vector>

#include "hier/v1/hierarchy.pb.h"
#include "server/model/proxy_hierarchy.h"

namespace hier::server {

// Appends one Ancestor per step of `chain`, nearest proxy first.
inline void AddAncestors(const std::vector<AncestorStep>& chain,
                         google::protobuf::RepeatedPtrField<hier::v1::Ancestor>* out) {
  for (const AncestorStep& step : chain) {
    hier::v1::Ancestor* ancestor = out->Add();
    ancestor->set_proxy(static_cast<int32_t>(step.proxy));
    ancestor->set_distance(step.distance);
  }
}

}  // namespace hier::server
