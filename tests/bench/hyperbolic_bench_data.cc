#include "tests/bench/hyperbolic_bench_data.h"

#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <optional>
#include <random>
#include <string_view>
#include <system_error>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "index/ball_geometry.h"
#include "index/durable_file.h"

namespace hier::bench {
namespace {

// The cluster tree, level by level from the origin: how many children each centre has and how far
// (in units of clip_r) each child lies from its parent.
struct TreeLevel {
  int children;
  double offset;
};
constexpr TreeLevel kTreeLevels[] = {{32, 0.4}, {8, 0.32}, {8, 0.25}};
constexpr double kNoiseNorm = 0.3;       // expected norm of a point's noise, in units of clip_r
constexpr double kNoiseFactorMin = 0.7;  // per-leaf noise factor, uniform in [min, max]
constexpr double kNoiseFactorMax = 1.4;
constexpr double kLeafWeightSigma = 0.8;    // leaf sizes are log-normal with this sigma
constexpr double kMaxRadiusFactor = 2.0;    // a point's radius factor is uniform in [0, max]
constexpr double kMaxSqrtCTimesClip = 5.0;  // see MakeBenchData in the header

// Random streams of one seed.
enum Stream : uint64_t { kTreeStream = 1, kItemStream = 2, kQueryStream = 3 };

std::mt19937_64 Engine(uint64_t seed, Stream stream) {
  std::seed_seq sequence{static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32),
                         static_cast<uint32_t>(stream)};
  return std::mt19937_64(sequence);
}

// The leaves of the cluster tree: their centres (tangent vectors), noise factors and weights.
struct ClusterTree {
  std::vector<double> centres;  // leaves x dim
  std::vector<double> noise_factors;
  std::vector<double> weights;
};

ClusterTree MakeClusterTree(const BenchDataOptions& options) {
  const int64_t dim = options.dim;
  std::mt19937_64 rng = Engine(options.seed, kTreeStream);
  std::normal_distribution<double> normal;
  std::vector<double> centres(dim, 0.0);  // the root: the origin
  std::vector<double> direction(dim);
  for (const TreeLevel& level : kTreeLevels) {
    std::vector<double> children;
    for (size_t parent = 0; parent < centres.size(); parent += dim) {
      for (int child = 0; child < level.children; ++child) {
        double squared = 0;
        for (double& x : direction) {
          x = normal(rng);
          squared += x * x;
        }
        const double scale = level.offset * options.clip_r / std::sqrt(squared);
        for (int64_t i = 0; i < dim; ++i) {
          children.push_back(centres[parent + i] + scale * direction[i]);
        }
      }
    }
    centres = std::move(children);
  }
  ClusterTree tree;
  tree.centres = std::move(centres);
  const int64_t leaves = static_cast<int64_t>(tree.centres.size()) / dim;
  std::uniform_real_distribution<double> noise_factor(kNoiseFactorMin, kNoiseFactorMax);
  std::lognormal_distribution<double> weight(0.0, kLeafWeightSigma);
  for (int64_t leaf = 0; leaf < leaves; ++leaf) {
    tree.noise_factors.push_back(noise_factor(rng));
    tree.weights.push_back(weight(rng));
  }
  return tree;
}

// `count` points of the distribution the header describes, as Poincaré coordinates.
std::vector<float> SamplePoints(const ClusterTree& tree, const BenchDataOptions& options,
                                int64_t count, std::mt19937_64& rng) {
  const int64_t dim = options.dim;
  const double sqrt_c = std::sqrt(options.c);
  const double noise_scale = kNoiseNorm * options.clip_r / std::sqrt(static_cast<double>(dim));
  std::discrete_distribution<int64_t> leaf_of(tree.weights.begin(), tree.weights.end());
  std::uniform_real_distribution<double> radius_factor(0.0, kMaxRadiusFactor);
  std::normal_distribution<double> normal;
  std::vector<float> points(count * dim);
  std::vector<double> v(dim);
  for (int64_t row = 0; row < count; ++row) {
    const int64_t leaf = leaf_of(rng);
    const double* centre = &tree.centres[leaf * dim];
    const double sigma = noise_scale * tree.noise_factors[leaf];
    const double t = radius_factor(rng);
    double squared = 0;
    for (int64_t i = 0; i < dim; ++i) {
      v[i] = t * (centre[i] + sigma * normal(rng));
      squared += v[i] * v[i];
    }
    const double norm = std::min(std::sqrt(squared), options.clip_r);
    // expmap0 of v clipped to norm clip_r; tanh(x)/x -> 1 as x -> 0.
    const double scale = norm > 0 ? std::tanh(sqrt_c * norm) / (sqrt_c * std::sqrt(squared)) : 1.0;
    for (int64_t i = 0; i < dim; ++i) points[row * dim + i] = static_cast<float>(scale * v[i]);
  }
  return points;
}

double SquaredDistance(const float* a, const float* b, int64_t dim) {
  // Independent sums, so the additions do not wait on one another.
  double sums[4] = {0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 4 <= dim; i += 4) {
    for (int j = 0; j < 4; ++j) {
      const double d = static_cast<double>(a[i + j]) - b[i + j];
      sums[j] += d * d;
    }
  }
  for (; i < dim; ++i) {
    const double d = static_cast<double>(a[i]) - b[i];
    sums[0] += d * d;
  }
  return (sums[0] + sums[1]) + (sums[2] + sums[3]);
}

struct Candidate {
  double key;  // a monotone function of the distance
  int64_t id;
  bool operator<(const Candidate& other) const {
    return key < other.key || (key == other.key && id < other.id);
  }
};

// The truth_k nearest items of every query. For a fixed query the Poincaré distance grows with
// |p - q|^2 / (1 - c|p|^2), so the scan ranks by that and keeps a bounded max-heap per query; the
// kept items are then sorted by PoincareDistance itself. Queries go in tiles over blocks of items
// small enough to stay in cache, so the items stream from memory once per tile, not per query.
std::vector<int64_t> ExactNeighbours(const std::vector<float>& items,
                                     const std::vector<float>& queries,
                                     const BenchDataOptions& options) {
  constexpr int64_t kQueryTile = 16, kItemBlock = 256;
  const int64_t dim = options.dim, n = options.items, k = options.truth_k;
  std::vector<double> inverse_factor(n);
  for (int64_t i = 0; i < n; ++i) {
    const float* p = &items[i * dim];
    double squared = 0;
    for (int64_t j = 0; j < dim; ++j) squared += static_cast<double>(p[j]) * p[j];
    inverse_factor[i] = 1.0 / (1.0 - options.c * squared);
  }
  std::vector<int64_t> truth(options.queries * k);
  const int64_t tiles = (options.queries + kQueryTile - 1) / kQueryTile;
#pragma omp parallel for schedule(dynamic)
  for (int64_t tile = 0; tile < tiles; ++tile) {
    const int64_t first = tile * kQueryTile;
    const int64_t last = std::min(first + kQueryTile, options.queries);
    std::vector<std::vector<Candidate>> heaps(last - first);
    for (auto& heap : heaps) heap.reserve(k);
    for (int64_t block = 0; block < n; block += kItemBlock) {
      const int64_t block_end = std::min(block + kItemBlock, n);
      for (int64_t q = first; q < last; ++q) {
        std::vector<Candidate>& heap = heaps[q - first];
        const float* query = &queries[q * dim];
        for (int64_t i = block; i < block_end; ++i) {
          const Candidate candidate{
              SquaredDistance(query, &items[i * dim], dim) * inverse_factor[i], i};
          // Items come in increasing id, so an equal key never displaces a smaller id.
          if (static_cast<int64_t>(heap.size()) < k) {
            heap.push_back(candidate);
            std::push_heap(heap.begin(), heap.end());
          } else if (candidate.key < heap.front().key) {
            std::pop_heap(heap.begin(), heap.end());
            heap.back() = candidate;
            std::push_heap(heap.begin(), heap.end());
          }
        }
      }
    }
    for (int64_t q = first; q < last; ++q) {
      std::vector<Candidate>& kept = heaps[q - first];
      for (Candidate& candidate : kept) {
        candidate.key =
            index::PoincareDistance(&queries[q * dim], &items[candidate.id * dim], dim, options.c);
      }
      std::sort(kept.begin(), kept.end());
      for (int64_t r = 0; r < k; ++r) truth[q * k + r] = kept[r].id;
    }
  }
  return truth;
}

absl::Status ValidateOptions(const BenchDataOptions& options) {
  if (options.items < 1) return absl::InvalidArgumentError("items must be at least 1");
  if (options.queries < 1) return absl::InvalidArgumentError("queries must be at least 1");
  if (options.dim < 1) return absl::InvalidArgumentError("dim must be at least 1");
  if (!(options.c > 0) || !std::isfinite(options.c)) {
    return absl::InvalidArgumentError(
        absl::StrCat("c must be positive and finite, not ", options.c));
  }
  if (!(options.clip_r > 0) || std::sqrt(options.c) * options.clip_r > kMaxSqrtCTimesClip) {
    return absl::InvalidArgumentError(
        absl::StrCat("clip_r must be positive with sqrt(c) clip_r <= ", kMaxSqrtCTimesClip,
                     ", not ", options.clip_r));
  }
  if (options.truth_k < 1 || options.truth_k > options.items) {
    return absl::InvalidArgumentError(
        absl::StrCat("truth_k must be in [1, items = ", options.items, "], not ", options.truth_k));
  }
  return absl::OkStatus();
}

// The shortest text that reads back as `value`.
std::string ShortestText(double value) {
  char buffer[32];
  const auto result = std::to_chars(buffer, buffer + sizeof(buffer), value);
  return std::string(buffer, result.ptr);
}

// ---- The cache file: header, then items, queries and truth as stored in memory. ----

constexpr char kMagic[8] = {'H', 'I', 'E', 'R', 'B', 'E', 'N', 'C'};
// Raise whenever the layout or the generated numbers change, so old caches are replaced.
constexpr uint32_t kFormatVersion = 1;

template <typename T>
void Append(std::string& out, T value) {
  out.append(reinterpret_cast<const char*>(&value), sizeof(value));
}

size_t PayloadBytes(const BenchDataOptions& options) {
  return (options.items + options.queries) * options.dim * sizeof(float) +
         options.queries * options.truth_k * sizeof(int64_t);
}

// The header with a zero checksum. Everything before the checksum (its last 4 bytes) identifies
// the file; the checksum covers the payload.
std::string EncodeHeader(const BenchDataOptions& options) {
  std::string header(kMagic, sizeof(kMagic));
  Append(header, kFormatVersion);
  Append(header, options.items);
  Append(header, options.queries);
  Append(header, options.dim);
  Append(header, options.truth_k);
  Append(header, options.c);
  Append(header, options.clip_r);
  Append(header, options.seed);
  Append(header, static_cast<uint64_t>(PayloadBytes(options)));
  Append(header, uint32_t{0});
  return header;
}

uint32_t Crc32(std::string_view bytes) {
  return static_cast<uint32_t>(
      crc32_z(crc32_z(0, nullptr, 0), reinterpret_cast<const Bytef*>(bytes.data()), bytes.size()));
}

template <typename T>
void AppendValues(std::string& out, const std::vector<T>& values) {
  out.append(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(T));
}

// The first `count` values in `bytes`, which then start after them.
template <typename T>
std::vector<T> TakeValues(std::string_view& bytes, int64_t count) {
  std::vector<T> values(count);
  std::memcpy(values.data(), bytes.data(), values.size() * sizeof(T));
  bytes.remove_prefix(values.size() * sizeof(T));
  return values;
}

// The cache file of `data`.
std::string EncodeCache(const BenchData& data) {
  std::string file = EncodeHeader(data.options);
  const size_t header_size = file.size();
  file.reserve(header_size + PayloadBytes(data.options));
  AppendValues(file, data.items);
  AppendValues(file, data.queries);
  AppendValues(file, data.truth);
  const uint32_t checksum = Crc32(std::string_view(file).substr(header_size));
  std::memcpy(file.data() + header_size - sizeof(checksum), &checksum, sizeof(checksum));
  return file;
}

// The data in the cache file `file` when it is complete, intact and made with `options`.
std::optional<BenchData> DecodeCache(std::string_view file, const BenchDataOptions& options) {
  const std::string expected = EncodeHeader(options);
  const size_t identity = expected.size() - sizeof(uint32_t);
  if (file.size() != expected.size() + PayloadBytes(options) ||
      file.substr(0, identity) != std::string_view(expected).substr(0, identity)) {
    return std::nullopt;
  }
  uint32_t checksum;
  std::memcpy(&checksum, file.data() + identity, sizeof(checksum));
  file.remove_prefix(expected.size());
  if (Crc32(file) != checksum) return std::nullopt;
  BenchData data;
  data.options = options;
  data.items = TakeValues<float>(file, options.items * options.dim);
  data.queries = TakeValues<float>(file, options.queries * options.dim);
  data.truth = TakeValues<int64_t>(file, options.queries * options.truth_k);
  return data;
}

absl::Status CacheError(const absl::Status& status) {
  return absl::Status(status.code(), absl::StrCat("bench data cache: ", status.message()));
}

// Creates `cache_dir` when missing and checks that a file can be published beside `path`, by
// publishing and removing a tiny probe file.
absl::Status PrepareCacheDir(const std::string& cache_dir, const std::string& path) {
  std::error_code error;
  std::filesystem::create_directories(cache_dir, error);
  if (error) {
    return absl::ErrnoToStatus(error.value(),
                               absl::StrCat("bench data cache: cannot create ", cache_dir));
  }
  static std::atomic<uint64_t> counter{0};
  const std::string probe = absl::StrCat(path, ".probe-", ::getpid(), "-", counter++);
  if (absl::Status status = index::WriteFileDurably(probe, ""); !status.ok()) {
    return CacheError(status);
  }
  std::filesystem::remove(probe, error);
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<BenchData> MakeBenchData(const BenchDataOptions& options) {
  if (absl::Status status = ValidateOptions(options); !status.ok()) return status;
  const ClusterTree tree = MakeClusterTree(options);
  BenchData data;
  data.options = options;
  std::mt19937_64 item_rng = Engine(options.seed, kItemStream);
  data.items = SamplePoints(tree, options, options.items, item_rng);
  std::mt19937_64 query_rng = Engine(options.seed, kQueryStream);
  data.queries = SamplePoints(tree, options, options.queries, query_rng);
  data.truth = ExactNeighbours(data.items, data.queries, options);
  return data;
}

std::string BenchDataCachePath(const BenchDataOptions& options, const std::string& cache_dir) {
  return absl::StrCat(cache_dir, "/hyperbolic_bench_items", options.items, "_queries",
                      options.queries, "_dim", options.dim, "_c", ShortestText(options.c), "_clip",
                      ShortestText(options.clip_r), "_k", options.truth_k, "_seed", options.seed,
                      ".bin");
}

absl::StatusOr<BenchData> LoadOrMakeBenchData(const BenchDataOptions& options,
                                              const std::string& cache_dir) {
  if (absl::Status status = ValidateOptions(options); !status.ok()) return status;
  const std::string path = BenchDataCachePath(options, cache_dir);
  // A file that cannot be read (missing, or a directory) is made anew.
  if (absl::StatusOr<std::string> file = index::ReadWholeFile(path); file.ok()) {
    if (std::optional<BenchData> cached = DecodeCache(*file, options)) return std::move(*cached);
  }
  // Before the data, which takes minutes at a million items, so a directory that cannot be written
  // fails at once.
  if (absl::Status status = PrepareCacheDir(cache_dir, path); !status.ok()) return status;
  absl::StatusOr<BenchData> data = MakeBenchData(options);
  if (!data.ok()) return data.status();
  if (absl::Status status = index::WriteFileDurably(path, EncodeCache(*data)); !status.ok()) {
    return CacheError(status);
  }
  return data;
}

absl::StatusOr<double> RecallAtK(const std::vector<std::vector<int64_t>>& found,
                                 const BenchData& data, int64_t k) {
  const BenchDataOptions& options = data.options;
  if (static_cast<int64_t>(found.size()) != options.queries) {
    return absl::InvalidArgumentError(absl::StrCat(
        "RecallAtK: ", found.size(), " result lists for ", options.queries, " queries"));
  }
  if (k < 1 || k > options.truth_k) {
    return absl::InvalidArgumentError(
        absl::StrCat("RecallAtK: k must be in [1, truth_k = ", options.truth_k, "], not ", k));
  }
  double sum = 0;
  for (int64_t q = 0; q < options.queries; ++q) {
    const auto truth_begin = data.truth.begin() + q * options.truth_k;
    std::vector<int64_t> truth(truth_begin, truth_begin + k);
    std::sort(truth.begin(), truth.end());
    std::vector<int64_t> answer(found[q].begin(),
                                found[q].begin() + std::min<int64_t>(k, found[q].size()));
    std::sort(answer.begin(), answer.end());
    answer.erase(std::unique(answer.begin(), answer.end()), answer.end());
    int64_t hits = 0;
    for (int64_t id : answer) hits += std::binary_search(truth.begin(), truth.end(), id);
    sum += static_cast<double>(hits) / k;
  }
  return sum / options.queries;
}

}  // namespace hier::bench
