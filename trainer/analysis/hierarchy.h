// Reads a hierarchy out of learned Poincaré-ball proxies, scores how well embeddings recover a
// known grouping of classes into super-categories, and flattens the ball onto a disk for plots.
//
// Std-only (no LibTorch), so reports and tools can use it without tensors. Matrices are row-major
// std::vector<float>: row i of a `rows x dim` matrix is coords[i * dim, (i + 1) * dim). All
// computation is in double, with the curvature `c` exactly as given (no float rounding). Every
// function validates its arguments and throws c10::Error naming the function, argument and value.
// Ties in any nearest / argmin choice go to the lowest index.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <vector>

namespace hier::analysis {

// `rows` points of the Poincaré ball {x : c|x|^2 < 1} of dimension `dim`, row-major. Functions
// taking BallPoints require coords.size() == rows * dim, dim >= 1, finite coordinates and every
// point strictly inside the ball.
struct BallPoints {
  std::vector<float> coords;
  int64_t rows = 0;
  int64_t dim = 0;

  const float* Row(int64_t i) const { return coords.data() + i * dim; }
};

// d(x, y) = (1/sqrt(c)) arcosh(1 + 2c|x - y|^2 / ((1 - c|x|^2)(1 - c|y|^2))), evaluated as
// log1p(t + sqrt(t (t + 2))) so that it stays accurate for nearby points and near the boundary.
// Equals (2/sqrt(c)) artanh(sqrt(c) |(-x) ⊕_c y|). Both points must lie strictly inside the ball.
double PoincareDistance(const float* x, const float* y, int64_t dim, double c);
// d(0, x) = (2/sqrt(c)) artanh(sqrt(c) |x|), by the same stable formula.
double DistanceToOrigin(const float* x, int64_t dim, double c);

// The tree read from the proxies (one entry per proxy):
// * depth[i] is proxy i's distance from the origin;
// * parent[i] is the nearest proxy (Poincaré distance) among the proxies strictly closer to the
//   origin (depth[j] < depth[i]); -1 (the origin, the root) when no proxy is strictly closer;
// * level[i] is 0 when parent[i] == -1, else level[parent[i]] + 1.
// Depth strictly decreases along parents, so there are no cycles, even between proxies of equal
// depth (neither can be the other's parent).
struct ProxyTree {
  std::vector<int64_t> parent;
  std::vector<double> depth;
  std::vector<int64_t> level;
};
ProxyTree BuildProxyTree(const BallPoints& proxies, double c);

// Index of the nearest proxy of every point (points.rows entries).
std::vector<int64_t> NearestProxy(const BallPoints& points, const BallPoints& proxies, double c);
// For every proxy, the number of points whose nearest proxy it is (proxies.rows entries).
std::vector<int64_t> MemberCounts(const BallPoints& points, const BallPoints& proxies, double c);

// The lowest common ancestor of points a and b (dim = proxies.dim): the proxy p minimising
// max(d(p, a), d(p, b)), the reading HIER's loss uses.
int64_t LowestCommonAncestor(const float* a, const float* b, const BallPoints& proxies, double c);

// A class's place among the proxies. Its centre is expmap0(mean of logmap0 of its points).
struct ClassSummary {
  int64_t label = 0;
  std::vector<int64_t> nearest_proxies;  // the top_m proxies nearest the centre, nearest first
  int64_t members = 0;                   // points with this label
};
// One summary per distinct label, in ascending label order. labels.size() == points.rows;
// 1 <= top_m <= proxies.rows.
std::vector<ClassSummary> SummariseClasses(const BallPoints& points,
                                           const std::vector<int64_t>& labels,
                                           const BallPoints& proxies, double c, int64_t top_m);

// Probability that a positive scores higher than a negative, ties counting 1/2 (ROC-AUC, the
// Mann-Whitney statistic). Both sets non-empty and finite.
double RocAuc(const std::vector<double>& positives, const std::vector<double>& negatives);

// Hierarchy discovery: do the embeddings (and the proxies) put classes of one super-category
// closer together than classes of different super-categories?
//
// Only classes with at least one point and an entry in `super_of_label` take part. For every
// unordered pair of distinct such classes (a, b):
// * mean LCA depth: the mean, over `pairs_per_class_pair` sampled point pairs (x of class a, y of
//   class b), of the depth (distance from the origin) of LowestCommonAncestor(x, y). Draws come
//   from one SplitMix64 stream seeded with `seed`: pairs visited in ascending (a, b) order
//   (a < b), each sample drawing x's then y's position among its class's points (dataset order)
//   as next() % class size;
// * mean LCA height: over the same sampled pairs, the mean of max(d(lca, x), d(lca, y)), how far
//   the pair climbs to meet (unlike depth, it still separates pairs when the proxies all sit at
//   one radius, as clipped proxies do);
// * centre distance: d(centre_a, centre_b), centres as in ClassSummary.
// A pair is "same" when super_of_label[a] == super_of_label[b], else "cross".
// lca_depth_auc = RocAuc(mean LCA depths of same pairs, those of cross pairs): same-category pairs
// should meet deeper. lca_height_auc = RocAuc(-heights of same pairs, -those of cross pairs): they
// should climb less to meet. centre_distance_auc = RocAuc(-centre distances of same pairs, -those
// of cross pairs): same-category centres should be closer. 0.5 is chance, 1.0 perfect. Throws when
// either kind of pair is missing. Cost: O(points.rows * proxies.rows * dim) time and points.rows *
// proxies.rows doubles of memory, plus O(pairs * pairs_per_class_pair * proxies.rows).
struct DiscoveryScore {
  double lca_depth_auc = 0.0;
  double lca_height_auc = 0.0;
  double centre_distance_auc = 0.0;
  int64_t same_pairs = 0;
  int64_t cross_pairs = 0;
};
DiscoveryScore HierarchyDiscovery(const BallPoints& points, const std::vector<int64_t>& labels,
                                  const BallPoints& proxies,
                                  const std::map<int64_t, int64_t>& super_of_label, double c,
                                  int64_t pairs_per_class_pair, uint64_t seed);

// A 2-D view of the ball that keeps the origin (the root) at the centre: the top two principal
// directions of the tangent vectors logmap0(x), from the uncentred second-moment matrix.
struct DiskProjection {
  std::vector<double> axes;  // 2 x dim, row-major, orthonormal rows
  int64_t dim = 0;
};
// Power iteration with deflation from a fixed pseudo-random start, so the result is deterministic;
// each axis's sign makes its largest component positive. dim >= 2; points may be empty or all at
// the origin (the axes are then an arbitrary orthonormal pair).
DiskProjection FitDiskProjection(const BallPoints& points, double c);
// For each point: v = logmap0(x), t = (axes[0] . v, axes[1] . v), then the 2-D expmap0 with the
// same c rescaled by sqrt(c): tanh(sqrt(c)|t|) t / |t|, a point of the unit disk (the origin maps
// to (0, 0)). points.dim == projection.dim.
std::vector<std::array<double, 2>> ProjectToDisk(const DiskProjection& projection,
                                                 const BallPoints& points, double c);

}  // namespace hier::analysis
