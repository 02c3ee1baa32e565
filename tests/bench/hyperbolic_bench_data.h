// Hard synthetic data for the index benchmark (architecture.md decision 1): hierarchical clusters
// in the Poincaré ball, queries from the same distribution and their exact hyperbolic nearest
// neighbours by brute force, cached on disk because the ground truth for a million items takes
// minutes.
//
// The data. A tree of cluster centres in the tangent space at the origin, in units of clip_r:
// 32 top clusters at norm 0.4 in random directions; each has 8 children offset by 0.32 and each
// child 8 leaves offset by 0.25 (2048 leaves), every offset in a fresh random direction, so in
// high dimension deeper centres lie further out (norms about 0.4, 0.51, 0.57), as hyperbolic
// embeddings of hierarchies do. A point picks a leaf with a log-normal weight (sizes differ
// several-fold), adds Gaussian noise of expected norm 0.3 times a per-leaf factor in [0.7, 1.4]
// (sibling leaves overlap: their centres are 0.35 apart, two points of one leaf about 0.42), and
// scales the sum by a radius factor uniform in [0, 2], so distances from the origin vary widely.
// Tangent vectors longer than clip_r are clipped to norm clip_r (HIER's feature clipping), then
// mapped by expmap0(v) = tanh(sqrt(c)|v|) v / (sqrt(c)|v|), computed in double and stored as float.
// At the defaults the tangent norms spread evenly over [0, clip_r) (about 8% of the points within
// 0.1 clip_r of the origin) and 23% of the points lie on the clip sphere.
// Queries are fresh draws. The tree, the items and the queries use separate random streams of
// `seed`, so the queries of a seed are the same for every item count. Standard library
// distributions make the numbers depend on the standard library (libstdc++ here).
//
// Threads: MakeBenchData computes the ground truth on OpenMP's threads (as many as OpenMP has).
// The functions share no state; concurrent LoadOrMakeBenchData calls for one file each publish a
// complete file. The library prints nothing.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace hier::bench {

struct BenchDataOptions {
  int64_t items = 100000;
  int64_t queries = 1000;
  int64_t dim = 128;
  double c = 0.1;
  double clip_r = 2.3;
  int64_t truth_k = 100;  // neighbours kept per query, at most `items`
  uint64_t seed = 1;
};

// Matrices are row-major; an item's id is its row.
struct BenchData {
  BenchDataOptions options;
  std::vector<float> items;    // items x dim, Poincaré coordinates
  std::vector<float> queries;  // queries x dim
  std::vector<int64_t> truth;  // queries x truth_k item rows, nearest first, ties by smaller row
};

// Generates the data; InvalidArgument naming the option when one is out of range (sqrt(c) clip_r
// is limited to 5 so that float coordinates stay strictly inside the ball).
absl::StatusOr<BenchData> MakeBenchData(const BenchDataOptions& options);

// The cache file of `options` in `cache_dir`; its name spells out every option.
std::string BenchDataCachePath(const BenchDataOptions& options, const std::string& cache_dir);

// Reads the cached data for `options` from `cache_dir`, or makes it and writes it there
// atomically (temp file, fsync, rename), creating the directory when missing. The file holds a
// header (magic, format version, the options, payload size, zlib crc32 of the payload) and then
// items, queries and truth in native byte order; a file that is truncated, has a bad checksum,
// another format version or other options is replaced, never trusted. An error (a directory that
// cannot be created or written, ...) names the path. Reading or writing holds the whole file in
// memory besides the data (about 1 GB in all at a million items).
absl::StatusOr<BenchData> LoadOrMakeBenchData(const BenchDataOptions& options,
                                              const std::string& cache_dir);

// Mean over queries of |found[q][:k] ∩ truth[q][:k]| / k, where found[q] holds the ids returned
// for query q (repeated ids count once; fewer than k count as misses). InvalidArgument unless
// found has one list per query and 1 <= k <= truth_k.
absl::StatusOr<double> RecallAtK(const std::vector<std::vector<int64_t>>& found,
                                 const BenchData& data, int64_t k);

}  // namespace hier::bench
