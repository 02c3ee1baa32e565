#include "server/model/proxy_hierarchy.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <numeric>

#include "absl/strings/str_cat.h"
#include "index/ball_geometry.h"
#include "trainer/io/atomic_file.h"
#include "trainer/io/json_integer.h"

namespace hier::server {
namespace fs = std::filesystem;

absl::StatusOr<std::shared_ptr<const ProxyHierarchy>> ProxyHierarchy::Load(
    const std::string& run_dir) {
  const std::string path = (fs::path(run_dir) / "hierarchy.json").string();
  std::error_code error;
  if (!fs::exists(path, error)) {
    return absl::NotFoundError(absl::StrCat("model_version: the run ", run_dir,
                                            " has no hierarchy.json (no evaluation yet)"));
  }
  std::vector<HierarchyProxy> proxies;
  double c = 0;
  try {
    const nlohmann::json json = nlohmann::json::parse(io::ReadFile(path));
    c = json.at("c").get<double>();
    for (const nlohmann::json& entry : json.at("proxies")) {
      HierarchyProxy proxy;
      proxy.point = entry.at("coords").get<std::vector<float>>();
      proxy.parent = io::JsonIntegerAt(entry, "parent");
      proxy.level = io::JsonIntegerAt(entry, "level");
      proxy.depth = entry.at("depth").get<double>();
      proxy.members = io::JsonIntegerAt(entry, "members");
      proxies.push_back(std::move(proxy));
    }
  } catch (const std::exception& e) {
    return absl::DataLossError(absl::StrCat(path, ": ", e.what()));
  }
  if (proxies.empty()) return absl::DataLossError(absl::StrCat(path, ": no proxies"));
  const int64_t dim = static_cast<int64_t>(proxies.front().point.size());
  const int64_t count = static_cast<int64_t>(proxies.size());
  for (int64_t p = 0; p < count; ++p) {
    const HierarchyProxy& proxy = proxies[p];
    // Parents strictly closer to the origin: every chain ends at the root.
    const bool well_formed = static_cast<int64_t>(proxy.point.size()) == dim &&
                             proxy.parent >= -1 && proxy.parent < count &&
                             (proxy.parent == -1 || proxies[proxy.parent].depth < proxy.depth) &&
                             index::ValidateBallPoint(proxy.point.data(), dim, c, "proxy").ok();
    if (!well_formed) {
      return absl::DataLossError(absl::StrCat(path, ": proxy ", p, " is malformed"));
    }
  }
  return std::shared_ptr<const ProxyHierarchy>(new ProxyHierarchy(std::move(proxies), dim, c));
}

ProxyHierarchy::ProxyHierarchy(std::vector<HierarchyProxy> proxies, int64_t dim, double c)
    : proxies_(std::move(proxies)), dim_(dim), c_(c) {
  analysis::BallPoints points;
  points.rows = static_cast<int64_t>(proxies_.size());
  points.dim = dim_;
  for (const HierarchyProxy& proxy : proxies_) {
    points.coords.insert(points.coords.end(), proxy.point.begin(), proxy.point.end());
  }
  // A 1-D ball is its own picture: the fit needs two dimensions.
  if (dim_ >= 2) projection_ = analysis::FitDiskProjection(points, c_);
  for (HierarchyProxy& proxy : proxies_) proxy.disk = DiskPosition(proxy.point);
}

std::array<double, 2> ProxyHierarchy::DiskPosition(absl::Span<const float> point) const {
  if (dim_ < 2) {
    // tanh(sqrt(c) |t|) t / |t| with t = logmap0(x): on a line, sqrt(c) x itself.
    return {point.empty() ? 0.0 : std::sqrt(c_) * point[0], 0.0};
  }
  analysis::BallPoints one;
  one.rows = 1;
  one.dim = dim_;
  one.coords.assign(point.begin(), point.end());
  return analysis::ProjectToDisk(projection_, one, c_).front();
}

absl::StatusOr<std::vector<std::vector<AncestorStep>>> ProxyHierarchy::ChainsAbove(
    absl::Span<const float> point, int64_t nearest, const char* field) const {
  const int64_t count = static_cast<int64_t>(proxies_.size());
  if (nearest < 1 || nearest > count) {
    return absl::InvalidArgumentError(
        absl::StrCat("nearest: must be in [1, ", count, "], got ", nearest));
  }
  if (static_cast<int64_t>(point.size()) != dim_) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": ", point.size(), " values, the proxies have ", dim_));
  }
  if (absl::Status inside = index::ValidateBallPoint(point.data(), dim_, c_, field); !inside.ok()) {
    return inside;
  }
  std::vector<double> distance(count);
  for (int64_t p = 0; p < count; ++p) {
    distance[p] = index::PoincareDistance(point.data(), proxies_[p].point.data(), dim_, c_);
  }
  std::vector<int64_t> order(count);
  std::iota(order.begin(), order.end(), 0);
  std::partial_sort(order.begin(), order.begin() + nearest, order.end(), [&](int64_t a, int64_t b) {
    return distance[a] != distance[b] ? distance[a] < distance[b] : a < b;
  });
  std::vector<std::vector<AncestorStep>> chains;
  for (int64_t n = 0; n < nearest; ++n) {
    std::vector<AncestorStep> chain;
    // Depth strictly decreases along parents, so the walk ends at the root.
    for (int64_t p = order[n]; p >= 0; p = proxies_[p].parent) chain.push_back({p, distance[p]});
    chains.push_back(std::move(chain));
  }
  return chains;
}

}  // namespace hier::server
