// The queries hier-bench sends, built before the run so that building them is not timed, and the
// StartCall adapters that send them with the callback API.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "client/bench/load_generator.h"
#include "client/bench/write_ledger.h"
#include "client/connection.h"
#include "hier/v1/retrieval.grpc.pb.h"

namespace hier::client::bench {

// Random points well inside the ball of curvature c (radius 1/sqrt(c)): a direction uniform on
// the sphere and a radius uniform in [0, kMaxRadiusFraction / sqrt(c)].
inline constexpr double kMaxRadiusFraction = 0.6;
std::vector<std::vector<float>> RandomBallPoints(int64_t count, int64_t dim, double c,
                                                 uint64_t seed);

// The vectors of stored items 0..count-1 (missing ids skipped); NOT_FOUND when none exists.
absl::StatusOr<std::vector<std::vector<float>>> VectorsFromItems(const Connection& connection,
                                                                 int64_t count);

// The embedding dimension of the serving model, from Stats.
absl::StatusOr<int64_t> ServingDimension(const Connection& connection);

// The bytes of `image` if given, else of every image file in `images_dir`.
absl::StatusOr<std::vector<std::string>> LoadImages(const std::string& image,
                                                    const std::string& images_dir);

// Search requests sharing k, label and overfetch.
struct SearchSettings {
  int32_t k = 10;
  std::string label;
  int32_t overfetch = 0;
};
std::vector<hier::v1::SearchRequest> VectorSearches(const std::vector<std::vector<float>>& vectors,
                                                    const SearchSettings& settings);
// Requests of `batch` searches each, cycling through `searches`; at least one request.
std::vector<hier::v1::SearchBatchRequest> SearchBatches(
    const std::vector<hier::v1::SearchRequest>& searches, int64_t batch);
std::vector<hier::v1::SearchRequest> ImageSearches(const std::vector<std::string>& images,
                                                   const SearchSettings& settings);
// Requests of `batch` images each, cycling through the images; at least one request.
std::vector<hier::v1::EmbedRequest> EmbedBatches(const std::vector<std::string>& images,
                                                 int64_t batch);

// Call number i sends request i modulo the pool's size.
StartCall SearchCalls(std::shared_ptr<hier::v1::Retrieval::Stub> stub,
                      std::vector<hier::v1::SearchRequest> requests);
StartCall EmbedCalls(std::shared_ptr<hier::v1::Retrieval::Stub> stub,
                     std::vector<hier::v1::EmbedRequest> requests);
StartCall SearchBatchCalls(std::shared_ptr<hier::v1::Retrieval::Stub> stub,
                           std::vector<hier::v1::SearchBatchRequest> requests);
// Write loads (ids as in write_requests.h). Every call's outcome goes to `ledger` when it is not
// null (it must outlive the load's calls).
// Call number i adds `batch` new items, ids first_id + i * batch onwards, their vectors cycled
// from `vectors` (labels "bench"): every call grows the gallery.
StartCall AddCalls(std::shared_ptr<hier::v1::Retrieval::Stub> stub,
                   std::vector<std::vector<float>> vectors, int64_t batch, int64_t first_id,
                   std::shared_ptr<WriteLedger> ledger = nullptr);
// The same with images (embedded and kept by the server) instead of vectors.
StartCall AddImageCalls(std::shared_ptr<hier::v1::Retrieval::Stub> stub,
                        std::vector<std::string> images, int64_t batch, int64_t first_id,
                        std::shared_ptr<WriteLedger> ledger = nullptr);
// Call number i deletes the ids call number i of an add load with the same batch and first id
// added.
StartCall DeleteCalls(std::shared_ptr<hier::v1::Retrieval::Stub> stub, int64_t batch,
                      int64_t first_id, std::shared_ptr<WriteLedger> ledger = nullptr);

}  // namespace hier::client::bench
