// A model's proxy tree, read from its run's hierarchy.json (the tree of the run's best
// evaluation: a proxy's parent is the nearest proxy closer to the origin, the root is the origin),
// and the chains of proxies above a point of the ball.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "trainer/analysis/hierarchy.h"

namespace hier::server {

struct HierarchyProxy {
  std::vector<float> point;      // Poincaré coordinates
  int64_t parent = -1;           // -1: the root (the origin)
  int64_t level = 0;             // edges to the root
  double depth = 0;              // distance from the origin
  int64_t members = 0;           // evaluation images nearest to it
  std::array<double, 2> disk{};  // its place in the 2-D picture (DiskPosition)
};

// A proxy above a point and the point's distance to it.
struct AncestorStep {
  int64_t proxy = 0;
  double distance = 0;
};

class ProxyHierarchy {
 public:
  // Reads <run_dir>/hierarchy.json: NotFound when the run has none, DataLoss when it does not
  // parse or its proxies are not points of one dimension inside the ball.
  static absl::StatusOr<std::shared_ptr<const ProxyHierarchy>> Load(const std::string& run_dir);

  const std::vector<HierarchyProxy>& proxies() const { return proxies_; }
  int64_t dim() const { return dim_; }
  double c() const { return c_; }

  // For each of the `nearest` proxies nearest to `point` (nearest first), the chain from it up
  // to the root's child. InvalidArgument naming `field` for a point of another dimension or
  // outside the ball, or `nearest` out of [1, proxies].
  absl::StatusOr<std::vector<std::vector<AncestorStep>>> ChainsAbove(absl::Span<const float> point,
                                                                     int64_t nearest,
                                                                     const char* field) const;
  // A point's place in the unit disk of the proxies' 2-D picture: the projection of the trainer's
  // plots (analysis::FitDiskProjection) fitted on the proxies. `point` has dim() values.
  std::array<double, 2> DiskPosition(absl::Span<const float> point) const;

 private:
  ProxyHierarchy(std::vector<HierarchyProxy> proxies, int64_t dim, double c);

  std::vector<HierarchyProxy> proxies_;
  analysis::DiskProjection projection_;
  int64_t dim_ = 0;
  double c_ = 0;
};

}  // namespace hier::server
