#include "client/bench/bench_queries.h"

#include <cmath>
#include <random>

#include "absl/strings/str_cat.h"
#include "client/bench/write_requests.h"
#include "client/image_files.h"
#include "client/status_macros.h"
#include "client/unary_call.h"

namespace hier::client::bench {
namespace {

using hier::v1::Retrieval;

// Request i of a shared, immutable pool; `invoke` starts the callback-API call.
template <typename Request, typename Response, typename Invoke>
StartCall PooledCalls(std::vector<Request> requests, Invoke invoke) {
  auto pool = std::make_shared<const std::vector<Request>>(std::move(requests));
  return [pool, invoke](grpc::ClientContext* context, int64_t sequence,
                        std::function<void(const grpc::Status&)> done) {
    const Request& request = (*pool)[static_cast<size_t>(sequence) % pool->size()];
    auto response = std::make_shared<Response>();
    invoke(context, &request, response.get(),
           [response, done = std::move(done)](grpc::Status status) { done(status); });
  };
}

// Call i sends make_request(i) with `invoke`; its outcome goes to the ledger (when not null) as
// `op` over the ids of call i.
template <typename Request, typename Response, typename MakeRequest, typename Invoke>
StartCall WriteCalls(std::string op, int64_t batch, int64_t first_id,
                     std::shared_ptr<WriteLedger> ledger, MakeRequest make_request, Invoke invoke) {
  return [op = std::move(op), batch, first_id, ledger = std::move(ledger), make_request, invoke](
             grpc::ClientContext* context, int64_t sequence,
             std::function<void(const grpc::Status&)> done) {
    auto request = std::make_shared<Request>(make_request(sequence));
    auto response = std::make_shared<Response>();
    invoke(context, request.get(), response.get(),
           [request, response, op, batch, ledger, first = FirstIdOfCall(first_id, batch, sequence),
            done = std::move(done)](grpc::Status status) {
             if (ledger != nullptr) {
               ledger->Record(op, first, batch, static_cast<absl::StatusCode>(status.error_code()));
             }
             done(status);
           });
  };
}

hier::v1::SearchRequest NewSearch(const SearchSettings& settings) {
  hier::v1::SearchRequest request;
  request.set_k(settings.k);
  request.set_label(settings.label);
  request.set_overfetch(settings.overfetch);
  return request;
}

}  // namespace

std::vector<std::vector<float>> RandomBallPoints(int64_t count, int64_t dim, double c,
                                                 uint64_t seed) {
  std::mt19937_64 random(seed);
  std::normal_distribution<double> normal;
  std::uniform_real_distribution<double> radius(0.0, kMaxRadiusFraction / std::sqrt(c));
  std::vector<std::vector<float>> points;
  points.reserve(static_cast<size_t>(count));
  for (int64_t i = 0; i < count; ++i) {
    std::vector<double> direction(static_cast<size_t>(dim));
    double norm = 0;
    while (norm == 0) {
      norm = 0;
      for (double& x : direction) {
        x = normal(random);
        norm += x * x;
      }
      norm = std::sqrt(norm);
    }
    const double r = radius(random);
    std::vector<float>& point = points.emplace_back();
    for (double x : direction) point.push_back(static_cast<float>(x / norm * r));
  }
  return points;
}

absl::StatusOr<std::vector<std::vector<float>>> VectorsFromItems(const Connection& connection,
                                                                 int64_t count) {
  auto stub = Retrieval::NewStub(connection.channel());
  std::vector<std::vector<float>> vectors;
  for (int64_t id = 0; id < count; ++id) {
    hier::v1::GetItemRequest request;
    request.set_id(id);
    absl::StatusOr<hier::v1::Item> item =
        UnaryCall(connection, stub.get(), &Retrieval::Stub::GetItem, request);
    if (absl::IsNotFound(item.status())) continue;
    HIER_RETURN_IF_ERROR(item.status());
    vectors.emplace_back(item->vector().values().begin(), item->vector().values().end());
  }
  if (vectors.empty()) {
    return absl::NotFoundError(
        absl::StrCat("--vectors-from-items: none of the items 0..", count - 1, " exists"));
  }
  return vectors;
}

absl::StatusOr<int64_t> ServingDimension(const Connection& connection) {
  auto stub = Retrieval::NewStub(connection.channel());
  HIER_ASSIGN_OR_RETURN(
      hier::v1::StatsResponse stats,
      UnaryCall(connection, stub.get(), &Retrieval::Stub::Stats, hier::v1::StatsRequest()));
  if (stats.dim() <= 0) {
    return absl::FailedPreconditionError("the server reports no dimension yet; give --dim");
  }
  return stats.dim();
}

absl::StatusOr<std::vector<std::string>> LoadImages(const std::string& image,
                                                    const std::string& images_dir) {
  std::vector<std::string> paths = {image};
  if (image.empty()) {
    HIER_ASSIGN_OR_RETURN(paths, ListImageFiles(images_dir));
    if (paths.empty()) {
      return absl::NotFoundError(absl::StrCat("--images: no image files in '", images_dir, "'"));
    }
  }
  std::vector<std::string> images;
  for (const std::string& path : paths) {
    HIER_ASSIGN_OR_RETURN(images.emplace_back(), ReadFileBytes(path));
  }
  return images;
}

std::vector<hier::v1::SearchRequest> VectorSearches(const std::vector<std::vector<float>>& vectors,
                                                    const SearchSettings& settings) {
  std::vector<hier::v1::SearchRequest> requests;
  for (const std::vector<float>& vector : vectors) {
    hier::v1::SearchRequest& request = requests.emplace_back(NewSearch(settings));
    request.mutable_vector()->mutable_values()->Add(vector.begin(), vector.end());
  }
  return requests;
}

std::vector<hier::v1::SearchRequest> ImageSearches(const std::vector<std::string>& images,
                                                   const SearchSettings& settings) {
  std::vector<hier::v1::SearchRequest> requests;
  for (const std::string& image : images)
    requests.emplace_back(NewSearch(settings)).set_image(image);
  return requests;
}

std::vector<hier::v1::SearchBatchRequest> SearchBatches(
    const std::vector<hier::v1::SearchRequest>& searches, int64_t batch) {
  const size_t per_call = static_cast<size_t>(std::max<int64_t>(1, batch));
  const size_t calls = std::max<size_t>(1, searches.size() / per_call);
  std::vector<hier::v1::SearchBatchRequest> requests(calls);
  for (size_t i = 0; i < calls * per_call; ++i) {
    *requests[i / per_call].add_queries() = searches[i % searches.size()];
  }
  return requests;
}

std::vector<hier::v1::EmbedRequest> EmbedBatches(const std::vector<std::string>& images,
                                                 int64_t batch) {
  const size_t per_call = static_cast<size_t>(std::max<int64_t>(1, batch));
  const size_t calls = std::max<size_t>(1, images.size() / per_call);
  std::vector<hier::v1::EmbedRequest> requests(calls);
  for (size_t i = 0; i < calls * per_call; ++i) {
    requests[i / per_call].add_images(images[i % images.size()]);
  }
  return requests;
}

StartCall SearchCalls(std::shared_ptr<Retrieval::Stub> stub,
                      std::vector<hier::v1::SearchRequest> requests) {
  return PooledCalls<hier::v1::SearchRequest, hier::v1::SearchResponse>(
      std::move(requests), [stub](auto* context, auto* request, auto* response, auto done) {
        stub->async()->Search(context, request, response, std::move(done));
      });
}

StartCall AddCalls(std::shared_ptr<Retrieval::Stub> stub, std::vector<std::vector<float>> vectors,
                   int64_t batch, int64_t first_id, std::shared_ptr<WriteLedger> ledger) {
  auto pool = std::make_shared<const std::vector<std::vector<float>>>(std::move(vectors));
  return WriteCalls<hier::v1::AddItemsRequest, hier::v1::AddItemsResponse>(
      "add", batch, first_id, std::move(ledger),
      [pool, batch, first_id](int64_t sequence) {
        return AddVectorsRequest(*pool, batch, first_id, sequence);
      },
      [stub](auto* context, auto* request, auto* response, auto done) {
        stub->async()->AddItems(context, request, response, std::move(done));
      });
}

StartCall AddImageCalls(std::shared_ptr<Retrieval::Stub> stub, std::vector<std::string> images,
                        int64_t batch, int64_t first_id, std::shared_ptr<WriteLedger> ledger) {
  auto pool = std::make_shared<const std::vector<std::string>>(std::move(images));
  return WriteCalls<hier::v1::AddItemsRequest, hier::v1::AddItemsResponse>(
      "add", batch, first_id, std::move(ledger),
      [pool, batch, first_id](int64_t sequence) {
        return AddImagesRequest(*pool, batch, first_id, sequence);
      },
      [stub](auto* context, auto* request, auto* response, auto done) {
        stub->async()->AddItems(context, request, response, std::move(done));
      });
}

StartCall DeleteCalls(std::shared_ptr<Retrieval::Stub> stub, int64_t batch, int64_t first_id,
                      std::shared_ptr<WriteLedger> ledger) {
  return WriteCalls<hier::v1::DeleteItemsRequest, hier::v1::DeleteItemsResponse>(
      "delete", batch, first_id, std::move(ledger),
      [batch, first_id](int64_t sequence) { return DeleteRequest(batch, first_id, sequence); },
      [stub](auto* context, auto* request, auto* response, auto done) {
        stub->async()->DeleteItems(context, request, response, std::move(done));
      });
}

StartCall SearchBatchCalls(std::shared_ptr<Retrieval::Stub> stub,
                           std::vector<hier::v1::SearchBatchRequest> requests) {
  return PooledCalls<hier::v1::SearchBatchRequest, hier::v1::SearchBatchResponse>(
      std::move(requests), [stub](auto* context, auto* request, auto* response, auto done) {
        stub->async()->SearchBatch(context, request, response, std::move(done));
      });
}

StartCall EmbedCalls(std::shared_ptr<Retrieval::Stub> stub,
                     std::vector<hier::v1::EmbedRequest> requests) {
  return PooledCalls<hier::v1::EmbedRequest, hier::v1::EmbedResponse>(
      std::move(requests), [stub](auto* context, auto* request, auto* response, auto done) {
        stub->async()->Embed(context, request, response, std::move(done));
      });
}

}  // namespace hier::client::bench
