#include "trainer/analysis/hierarchy.h"

#include <c10/util/Exception.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <utility>

#include "trainer/core/fast_math.h"

namespace hier::analysis {
namespace {

// Power iteration stops when the unit vector moves less than kPowerTolerance, after
// kPowerMaxSteps, or when the matrix maps it below kNegligible * trace: the matrix then vanishes on
// the searched subspace and the image is rounding noise.
constexpr double kPowerTolerance = 1e-13;
constexpr int kPowerMaxSteps = 2000;
constexpr double kNegligible = 1e-12;
constexpr uint64_t kStartSeed = 0x5eed;

void CheckCurvature(const char* fn, double c) {
  TORCH_CHECK(std::isfinite(c) && c > 0, fn, ": c must be finite and > 0, got ", c);
}

template <typename T>
double SquaredNorm(const T* x, int64_t dim) {
  double sum = 0.0;
  for (int64_t k = 0; k < dim; ++k) sum += static_cast<double>(x[k]) * x[k];
  return sum;
}

template <typename A, typename B>
double SquaredDifference(const A* x, const B* y, int64_t dim) {
  double sum = 0.0;
  for (int64_t k = 0; k < dim; ++k) {
    const double diff = static_cast<double>(x[k]) - static_cast<double>(y[k]);
    sum += diff * diff;
  }
  return sum;
}

void CheckBallPoints(const char* fn, const char* name, const BallPoints& points, double c) {
  TORCH_CHECK(points.rows >= 0 && points.dim >= 1, fn, ": ", name,
              " must have rows >= 0 and dim >= 1, got rows ", points.rows, ", dim ", points.dim);
  TORCH_CHECK(static_cast<int64_t>(points.coords.size()) == points.rows * points.dim, fn, ": ",
              name, " has ", points.coords.size(),
              " coordinates, expected rows * dim = ", points.rows, " * ", points.dim);
  for (int64_t i = 0; i < points.rows; ++i) {
    const float* row = points.Row(i);
    TORCH_CHECK(std::all_of(row, row + points.dim, [](float v) { return std::isfinite(v); }), fn,
                ": ", name, " row ", i, " is not finite");
    const double radius2 = c * SquaredNorm(row, points.dim);
    TORCH_CHECK(radius2 < 1.0, fn, ": ", name, " row ", i,
                " is not strictly inside the ball: c|x|^2 = ", radius2);
  }
}

void CheckSameDim(const char* fn, const BallPoints& points, const BallPoints& proxies) {
  TORCH_CHECK(points.dim == proxies.dim, fn, ": points have dim ", points.dim,
              " but proxies have dim ", proxies.dim);
}

void CheckHasProxies(const char* fn, const BallPoints& proxies) {
  TORCH_CHECK(proxies.rows >= 1, fn, ": proxies is empty");
}

void CheckLabels(const char* fn, const std::vector<int64_t>& labels, const BallPoints& points) {
  TORCH_CHECK(static_cast<int64_t>(labels.size()) == points.rows, fn, ": labels has ",
              labels.size(), " entries but points has ", points.rows, " rows");
}

// arcosh(1 + t) for t >= 0, accurate for small t.
double ArcoshOnePlus(double t) { return std::log1p(t + std::sqrt(t * (t + 2.0))); }

// Distance from |x - y|^2, |x|^2 and |y|^2 (all points inside the ball).
double DistanceFromSquares(double diff2, double x2, double y2, double c) {
  const double t = 2.0 * c * diff2 / ((1.0 - c * x2) * (1.0 - c * y2));
  return ArcoshOnePlus(t) / std::sqrt(c);
}

template <typename A, typename B>
double Distance(const A* x, const B* y, int64_t dim, double c) {
  return DistanceFromSquares(SquaredDifference(x, y, dim), SquaredNorm(x, dim), SquaredNorm(y, dim),
                             c);
}

std::vector<double> SquaredNorms(const BallPoints& points) {
  std::vector<double> norms(points.rows);
  for (int64_t i = 0; i < points.rows; ++i) norms[i] = SquaredNorm(points.Row(i), points.dim);
  return norms;
}

// D[i * b.rows + j] = d(a_i, b_j).
std::vector<double> DistanceTable(const BallPoints& a, const BallPoints& b, double c) {
  const std::vector<double> a2 = SquaredNorms(a);
  const std::vector<double> b2 = SquaredNorms(b);
  std::vector<double> table(a.rows * b.rows);
  for (int64_t i = 0; i < a.rows; ++i) {
    for (int64_t j = 0; j < b.rows; ++j) {
      table[i * b.rows + j] =
          DistanceFromSquares(SquaredDifference(a.Row(i), b.Row(j), a.dim), a2[i], b2[j], c);
    }
  }
  return table;
}

std::vector<double> Depths(const BallPoints& proxies, double c) {
  std::vector<double> depths(proxies.rows);
  for (int64_t i = 0; i < proxies.rows; ++i) {
    const double x2 = SquaredNorm(proxies.Row(i), proxies.dim);
    depths[i] = DistanceFromSquares(x2, x2, 0.0, c);
  }
  return depths;
}

int64_t ArgMin(const double* values, int64_t n) {
  return std::min_element(values, values + n) - values;
}

// argmin_p max(da[p], db[p]) over n proxies.
int64_t LcaOfRows(const double* da, const double* db, int64_t n) {
  int64_t best = 0;
  double best_value = std::max(da[0], db[0]);
  for (int64_t p = 1; p < n; ++p) {
    const double value = std::max(da[p], db[p]);
    if (value < best_value) {
      best = p;
      best_value = value;
    }
  }
  return best;
}

std::vector<double> Logmap0(const float* x, int64_t dim, double c) {
  std::vector<double> v(x, x + dim);
  const double scaled_norm = std::sqrt(c * SquaredNorm(x, dim));
  if (scaled_norm > 0.0) {
    const double factor = std::atanh(scaled_norm) / scaled_norm;
    for (double& value : v) value *= factor;
  }
  return v;
}

std::vector<double> Expmap0(std::vector<double> v, double c) {
  const double scaled_norm = std::sqrt(c * SquaredNorm(v.data(), static_cast<int64_t>(v.size())));
  if (scaled_norm > 0.0) {
    const double factor = std::tanh(scaled_norm) / scaled_norm;
    for (double& value : v) value *= factor;
  }
  return v;
}

// Row indices of each label's points, in dataset order, by ascending label.
std::map<int64_t, std::vector<int64_t>> MembersByLabel(const std::vector<int64_t>& labels) {
  std::map<int64_t, std::vector<int64_t>> members;
  for (int64_t i = 0; i < static_cast<int64_t>(labels.size()); ++i) members[labels[i]].push_back(i);
  return members;
}

// expmap0 of the mean tangent vector of the given rows (non-empty).
std::vector<double> ClassCentre(const BallPoints& points, const std::vector<int64_t>& rows,
                                double c) {
  std::vector<double> sum(points.dim, 0.0);
  for (int64_t row : rows) {
    const std::vector<double> v = Logmap0(points.Row(row), points.dim, c);
    for (int64_t k = 0; k < points.dim; ++k) sum[k] += v[k];
  }
  for (double& value : sum) value /= static_cast<double>(rows.size());
  return Expmap0(std::move(sum), c);
}

// The `m` proxies nearest `centre`, nearest first.
std::vector<int64_t> NearestProxiesOf(const std::vector<double>& centre, const BallPoints& proxies,
                                      double c, int64_t m) {
  std::vector<double> dist(proxies.rows);
  for (int64_t j = 0; j < proxies.rows; ++j) {
    dist[j] = Distance(centre.data(), proxies.Row(j), proxies.dim, c);
  }
  std::vector<int64_t> order(proxies.rows);
  std::iota(order.begin(), order.end(), 0);
  std::partial_sort(order.begin(), order.begin() + m, order.end(), [&](int64_t a, int64_t b) {
    return std::make_pair(dist[a], a) < std::make_pair(dist[b], b);
  });
  order.resize(m);
  return order;
}

struct LcaMeans {
  double depth = 0.0;   // of the LCA proxy
  double height = 0.0;  // max(d(lca, x), d(lca, y)): how far the pair climbs to meet
};

// Means over `samples` drawn pairs (x in a, y in b); `table` holds each point's distances to the
// `num_proxies` proxies.
LcaMeans MeanLca(const std::vector<int64_t>& a, const std::vector<int64_t>& b,
                 const std::vector<double>& table, const std::vector<double>& depths,
                 int64_t samples, core::SplitMix64& rng) {
  const int64_t num_proxies = static_cast<int64_t>(depths.size());
  LcaMeans sum;
  for (int64_t s = 0; s < samples; ++s) {
    const double* x = &table[a[rng.Next() % a.size()] * num_proxies];
    const double* y = &table[b[rng.Next() % b.size()] * num_proxies];
    const int64_t lca = LcaOfRows(x, y, num_proxies);
    sum.depth += depths[lca];
    sum.height += std::max(x[lca], y[lca]);
  }
  return {sum.depth / static_cast<double>(samples), sum.height / static_cast<double>(samples)};
}

std::vector<double> Negated(std::vector<double> values) {
  for (double& value : values) value = -value;
  return values;
}

void Normalise(std::vector<double>& v) {
  const double norm = std::sqrt(SquaredNorm(v.data(), static_cast<int64_t>(v.size())));
  for (double& value : v) value /= norm;
}

// v -= (v . unit) unit.
void RemoveComponent(std::vector<double>& v, const std::vector<double>& unit) {
  const double dot = std::inner_product(v.begin(), v.end(), unit.begin(), 0.0);
  for (size_t k = 0; k < v.size(); ++k) v[k] -= dot * unit[k];
}

// Removes v's components along the orthonormal `exclude` twice: one pass leaves rounding noise
// along them when v is nearly parallel to one.
void Orthogonalise(std::vector<double>& v, const std::vector<std::vector<double>>& exclude) {
  for (int pass = 0; pass < 2; ++pass) {
    for (const std::vector<double>& unit : exclude) RemoveComponent(v, unit);
  }
}

std::vector<double> MatVec(const std::vector<double>& m, const std::vector<double>& v) {
  const size_t dim = v.size();
  std::vector<double> out(dim, 0.0);
  for (size_t i = 0; i < dim; ++i) {
    out[i] = std::inner_product(v.begin(), v.end(), m.begin() + i * dim, 0.0);
  }
  return out;
}

// Uncentred second moment (1/n) sum v v^T of the tangent vectors, dim x dim.
std::vector<double> SecondMoment(const BallPoints& points, double c) {
  const int64_t dim = points.dim;
  std::vector<double> m(dim * dim, 0.0);
  for (int64_t r = 0; r < points.rows; ++r) {
    const std::vector<double> v = Logmap0(points.Row(r), dim, c);
    for (int64_t i = 0; i < dim; ++i) {
      for (int64_t j = 0; j < dim; ++j) m[i * dim + j] += v[i] * v[j];
    }
  }
  if (points.rows > 0) {
    for (double& value : m) value /= static_cast<double>(points.rows);
  }
  return m;
}

// A fixed pseudo-random unit vector orthogonal to `exclude`, a different one for each number of
// excluded vectors. A basis vector would be a poor start: structured data often has eigenvectors
// orthogonal to one, which power iteration never finds.
std::vector<double> StartVector(const std::vector<std::vector<double>>& exclude, int64_t dim) {
  core::SplitMix64 rng(kStartSeed + exclude.size());
  std::vector<double> v(dim);
  for (double& value : v) value = rng.Uniform() - 0.5;
  Orthogonalise(v, exclude);
  Normalise(v);
  return v;
}

// Flips v so that its largest-magnitude component is positive.
void FixSign(std::vector<double>& v) {
  const auto largest = std::max_element(
      v.begin(), v.end(), [](double a, double b) { return std::fabs(a) < std::fabs(b); });
  if (*largest < 0) {
    for (double& value : v) value = -value;
  }
}

// Unit eigenvector of the largest eigenvalue of the symmetric PSD `m` restricted to the
// complement of `exclude`. Returns the start vector when `m` vanishes there.
std::vector<double> TopEigenvector(const std::vector<double>& m,
                                   const std::vector<std::vector<double>>& exclude, int64_t dim) {
  double trace = 0.0;
  for (int64_t k = 0; k < dim; ++k) trace += m[k * dim + k];
  std::vector<double> u = StartVector(exclude, dim);
  for (int step = 0; step < kPowerMaxSteps; ++step) {
    std::vector<double> next = MatVec(m, u);
    Orthogonalise(next, exclude);
    if (std::sqrt(SquaredNorm(next.data(), dim)) <= kNegligible * trace) break;
    Normalise(next);
    const double change = SquaredDifference(next.data(), u.data(), dim);
    u = std::move(next);
    if (change < kPowerTolerance * kPowerTolerance) break;
  }
  FixSign(u);
  return u;
}

}  // namespace

double PoincareDistance(const float* x, const float* y, int64_t dim, double c) {
  CheckCurvature("PoincareDistance", c);
  TORCH_CHECK(dim >= 1, "PoincareDistance: dim must be >= 1, got ", dim);
  const double x2 = SquaredNorm(x, dim);
  const double y2 = SquaredNorm(y, dim);
  TORCH_CHECK(c * x2 < 1.0 && c * y2 < 1.0,
              "PoincareDistance: points must lie strictly inside the ball, got c|x|^2 = ", c * x2,
              ", c|y|^2 = ", c * y2);
  return DistanceFromSquares(SquaredDifference(x, y, dim), x2, y2, c);
}

double DistanceToOrigin(const float* x, int64_t dim, double c) {
  CheckCurvature("DistanceToOrigin", c);
  TORCH_CHECK(dim >= 1, "DistanceToOrigin: dim must be >= 1, got ", dim);
  const double x2 = SquaredNorm(x, dim);
  TORCH_CHECK(c * x2 < 1.0,
              "DistanceToOrigin: x must lie strictly inside the ball, got c|x|^2 = ", c * x2);
  return DistanceFromSquares(x2, x2, 0.0, c);
}

ProxyTree BuildProxyTree(const BallPoints& proxies, double c) {
  CheckCurvature("BuildProxyTree", c);
  CheckBallPoints("BuildProxyTree", "proxies", proxies, c);
  const int64_t n = proxies.rows;
  ProxyTree tree{std::vector<int64_t>(n, -1), Depths(proxies, c), std::vector<int64_t>(n, 0)};
  std::vector<int64_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
    return std::make_pair(tree.depth[a], a) < std::make_pair(tree.depth[b], b);
  });
  // In ascending depth, every candidate parent (strictly shallower) precedes the child, so its
  // level is final when the child reads it.
  for (int64_t i : order) {
    double nearest = 0.0;
    for (int64_t j : order) {
      if (tree.depth[j] >= tree.depth[i]) break;
      const double dist = Distance(proxies.Row(i), proxies.Row(j), proxies.dim, c);
      if (tree.parent[i] == -1 ||
          std::make_pair(dist, j) < std::make_pair(nearest, tree.parent[i])) {
        tree.parent[i] = j;
        nearest = dist;
      }
    }
    if (tree.parent[i] != -1) tree.level[i] = tree.level[tree.parent[i]] + 1;
  }
  return tree;
}

std::vector<int64_t> NearestProxy(const BallPoints& points, const BallPoints& proxies, double c) {
  CheckCurvature("NearestProxy", c);
  CheckBallPoints("NearestProxy", "points", points, c);
  CheckBallPoints("NearestProxy", "proxies", proxies, c);
  CheckSameDim("NearestProxy", points, proxies);
  CheckHasProxies("NearestProxy", proxies);
  const std::vector<double> table = DistanceTable(points, proxies, c);
  std::vector<int64_t> nearest(points.rows);
  for (int64_t i = 0; i < points.rows; ++i) {
    nearest[i] = ArgMin(&table[i * proxies.rows], proxies.rows);
  }
  return nearest;
}

std::vector<int64_t> MemberCounts(const BallPoints& points, const BallPoints& proxies, double c) {
  std::vector<int64_t> counts(proxies.rows, 0);
  for (int64_t p : NearestProxy(points, proxies, c)) ++counts[p];
  return counts;
}

int64_t LowestCommonAncestor(const float* a, const float* b, const BallPoints& proxies, double c) {
  CheckCurvature("LowestCommonAncestor", c);
  CheckBallPoints("LowestCommonAncestor", "proxies", proxies, c);
  CheckHasProxies("LowestCommonAncestor", proxies);
  std::vector<double> da(proxies.rows);
  std::vector<double> db(proxies.rows);
  for (int64_t p = 0; p < proxies.rows; ++p) {
    da[p] = PoincareDistance(a, proxies.Row(p), proxies.dim, c);
    db[p] = PoincareDistance(b, proxies.Row(p), proxies.dim, c);
  }
  return LcaOfRows(da.data(), db.data(), proxies.rows);
}

std::vector<ClassSummary> SummariseClasses(const BallPoints& points,
                                           const std::vector<int64_t>& labels,
                                           const BallPoints& proxies, double c, int64_t top_m) {
  CheckCurvature("SummariseClasses", c);
  CheckBallPoints("SummariseClasses", "points", points, c);
  CheckBallPoints("SummariseClasses", "proxies", proxies, c);
  CheckSameDim("SummariseClasses", points, proxies);
  CheckLabels("SummariseClasses", labels, points);
  TORCH_CHECK(top_m >= 1 && top_m <= proxies.rows, "SummariseClasses: top_m must be in [1, ",
              proxies.rows, "] (the number of proxies), got ", top_m);
  std::vector<ClassSummary> summaries;
  for (const auto& [label, rows] : MembersByLabel(labels)) {
    const std::vector<double> centre = ClassCentre(points, rows, c);
    summaries.push_back(ClassSummary{label, NearestProxiesOf(centre, proxies, c, top_m),
                                     static_cast<int64_t>(rows.size())});
  }
  return summaries;
}

double RocAuc(const std::vector<double>& positives, const std::vector<double>& negatives) {
  TORCH_CHECK(!positives.empty() && !negatives.empty(), "RocAuc: both sets must be non-empty, got ",
              positives.size(), " positives and ", negatives.size(), " negatives");
  std::vector<std::pair<double, bool>> scored;  // (score, is positive)
  for (double v : positives) scored.emplace_back(v, true);
  for (double v : negatives) scored.emplace_back(v, false);
  TORCH_CHECK(std::all_of(scored.begin(), scored.end(),
                          [](const auto& s) { return std::isfinite(s.first); }),
              "RocAuc: scores must be finite");
  std::sort(scored.begin(), scored.end());
  // Walk groups of equal scores upwards: each positive beats every negative below its group and
  // ties half of those inside it.
  double wins = 0.0;
  double negatives_below = 0.0;
  for (size_t start = 0; start < scored.size();) {
    size_t end = start;
    double group_positives = 0.0;
    double group_negatives = 0.0;
    for (; end < scored.size() && scored[end].first == scored[start].first; ++end) {
      (scored[end].second ? group_positives : group_negatives) += 1.0;
    }
    wins += group_positives * (negatives_below + 0.5 * group_negatives);
    negatives_below += group_negatives;
    start = end;
  }
  return wins / (static_cast<double>(positives.size()) * static_cast<double>(negatives.size()));
}

DiscoveryScore HierarchyDiscovery(const BallPoints& points, const std::vector<int64_t>& labels,
                                  const BallPoints& proxies,
                                  const std::map<int64_t, int64_t>& super_of_label, double c,
                                  int64_t pairs_per_class_pair, uint64_t seed) {
  CheckCurvature("HierarchyDiscovery", c);
  CheckBallPoints("HierarchyDiscovery", "points", points, c);
  CheckBallPoints("HierarchyDiscovery", "proxies", proxies, c);
  CheckSameDim("HierarchyDiscovery", points, proxies);
  CheckHasProxies("HierarchyDiscovery", proxies);
  CheckLabels("HierarchyDiscovery", labels, points);
  TORCH_CHECK(pairs_per_class_pair >= 1,
              "HierarchyDiscovery: pairs_per_class_pair must be >= 1, got ", pairs_per_class_pair);
  std::vector<int64_t> classes;
  std::vector<std::vector<int64_t>> members;
  std::vector<std::vector<double>> centres;
  for (auto& [label, rows] : MembersByLabel(labels)) {
    if (super_of_label.count(label) == 0) continue;
    classes.push_back(label);
    centres.push_back(ClassCentre(points, rows, c));
    members.push_back(std::move(rows));
  }
  const std::vector<double> table = DistanceTable(points, proxies, c);
  const std::vector<double> depths = Depths(proxies, c);
  core::SplitMix64 rng(seed);
  std::vector<double> same_depth, cross_depth, same_height, cross_height, same_distance,
      cross_distance;
  for (size_t a = 0; a < classes.size(); ++a) {
    for (size_t b = a + 1; b < classes.size(); ++b) {
      const bool same = super_of_label.at(classes[a]) == super_of_label.at(classes[b]);
      const LcaMeans lca =
          MeanLca(members[a], members[b], table, depths, pairs_per_class_pair, rng);
      (same ? same_depth : cross_depth).push_back(lca.depth);
      (same ? same_height : cross_height).push_back(lca.height);
      (same ? same_distance : cross_distance)
          .push_back(Distance(centres[a].data(), centres[b].data(), points.dim, c));
    }
  }
  TORCH_CHECK(!same_depth.empty() && !cross_depth.empty(),
              "HierarchyDiscovery: needs both same- and cross-category class pairs, got ",
              same_depth.size(), " same and ", cross_depth.size(), " cross (", classes.size(),
              " grouped classes with points)");
  DiscoveryScore score;
  score.lca_depth_auc = RocAuc(same_depth, cross_depth);
  score.lca_height_auc = RocAuc(Negated(same_height), Negated(cross_height));
  score.centre_distance_auc = RocAuc(Negated(same_distance), Negated(cross_distance));
  score.same_pairs = static_cast<int64_t>(same_depth.size());
  score.cross_pairs = static_cast<int64_t>(cross_depth.size());
  return score;
}

DiskProjection FitDiskProjection(const BallPoints& points, double c) {
  CheckCurvature("FitDiskProjection", c);
  CheckBallPoints("FitDiskProjection", "points", points, c);
  TORCH_CHECK(points.dim >= 2, "FitDiskProjection: points need dim >= 2, got ", points.dim);
  const std::vector<double> moment = SecondMoment(points, c);
  const std::vector<double> first = TopEigenvector(moment, {}, points.dim);
  const std::vector<double> second = TopEigenvector(moment, {first}, points.dim);
  DiskProjection projection{first, points.dim};
  projection.axes.insert(projection.axes.end(), second.begin(), second.end());
  return projection;
}

std::vector<std::array<double, 2>> ProjectToDisk(const DiskProjection& projection,
                                                 const BallPoints& points, double c) {
  CheckCurvature("ProjectToDisk", c);
  CheckBallPoints("ProjectToDisk", "points", points, c);
  TORCH_CHECK(projection.dim == points.dim &&
                  static_cast<int64_t>(projection.axes.size()) == 2 * projection.dim,
              "ProjectToDisk: projection has dim ", projection.dim, " and ", projection.axes.size(),
              " axis entries, points have dim ", points.dim);
  std::vector<std::array<double, 2>> disk(points.rows);
  const auto second_axis = projection.axes.begin() + points.dim;
  for (int64_t i = 0; i < points.rows; ++i) {
    const std::vector<double> v = Logmap0(points.Row(i), points.dim, c);
    const std::array<double, 2> t = {
        std::inner_product(v.begin(), v.end(), projection.axes.begin(), 0.0),
        std::inner_product(v.begin(), v.end(), second_axis, 0.0)};
    const double norm = std::hypot(t[0], t[1]);
    const double scale = norm > 0.0 ? std::tanh(std::sqrt(c) * norm) / norm : 0.0;
    disk[i] = {scale * t[0], scale * t[1]};
  }
  return disk;
}

}  // namespace hier::analysis
