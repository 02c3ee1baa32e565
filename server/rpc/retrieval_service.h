// The Retrieval service (proto/hier/v1/retrieval.proto): embed images with the serving model,
// search by image, vector or item id, add items by image (kept in the blob store for re-embedding)
// or vector, delete, read and count them. Image calls answer FAILED_PRECONDITION until a model is
// loaded.
//
// Thread-safety: gRPC calls the handlers from many threads; the Collection serialises writes and
// lets searches run in parallel, the serving slot hands each call the model and gallery it
// started with.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "hier/v1/retrieval.grpc.pb.h"
#include "server/metrics/server_metrics.h"
#include "server/model/serving_slot.h"
#include "server/rpc/authorizer.h"
#include "server/storage/blob_store.h"

namespace hier::server {

struct RetrievalLimits {
  int64_t max_items_per_call = 10000;
  int64_t max_images_per_call = 256;
  int64_t max_pixels = 40'000'000;  // per decoded image
};

// What the Retrieval service works on (not owned; outlive the service).
struct RetrievalBackends {
  ServingSlot* serving = nullptr;
  const BlobStore* blobs = nullptr;
  const Authorizer* authorizer = nullptr;
  ServerMetrics* metrics = nullptr;  // may be null
};

class RetrievalService final : public hier::v1::Retrieval::Service {
 public:
  RetrievalService(const RetrievalBackends& backends, const RetrievalLimits& limits);

  grpc::Status Embed(grpc::ServerContext* context, const hier::v1::EmbedRequest* request,
                     hier::v1::EmbedResponse* response) override;
  grpc::Status Search(grpc::ServerContext* context, const hier::v1::SearchRequest* request,
                      hier::v1::SearchResponse* response) override;
  grpc::Status SearchBatch(grpc::ServerContext* context,
                           const hier::v1::SearchBatchRequest* request,
                           hier::v1::SearchBatchResponse* response) override;
  grpc::Status AddItems(grpc::ServerContext* context, const hier::v1::AddItemsRequest* request,
                        hier::v1::AddItemsResponse* response) override;
  grpc::Status AddItemsStream(grpc::ServerContext* context,
                              grpc::ServerReader<hier::v1::AddItemsRequest>* reader,
                              hier::v1::AddItemsResponse* response) override;
  grpc::Status DeleteItems(grpc::ServerContext* context,
                           const hier::v1::DeleteItemsRequest* request,
                           hier::v1::DeleteItemsResponse* response) override;
  grpc::Status GetItemImage(grpc::ServerContext* context, const hier::v1::GetItemRequest* request,
                            hier::v1::ItemImage* response) override;
  grpc::Status GetItem(grpc::ServerContext* context, const hier::v1::GetItemRequest* request,
                       hier::v1::Item* response) override;
  grpc::Status ListItems(grpc::ServerContext* context, const hier::v1::ListItemsRequest* request,
                         hier::v1::ListItemsResponse* response) override;
  grpc::Status Stats(grpc::ServerContext* context, const hier::v1::StatsRequest* request,
                     hier::v1::StatsResponse* response) override;
  grpc::Status TuneSearch(grpc::ServerContext* context,
                          const hier::v1::TuneSearchRequest* request,
                          hier::v1::SearchSettings* response) override;

 private:
  // Embeds `images` with the serving model within the call's deadline.
  absl::StatusOr<std::vector<float>> EmbedImages(const grpc::ServerContext& context,
                                                 const std::vector<EncodedImage>& images,
                                                 ServingModel& model) const;
  // Writes the neighbours `found` for `query` into `response`: their keys and labels from memory,
  // their ancestors when the query asks for them, the model version. `field` names the query in
  // errors.
  absl::Status Answer(const hier::v1::SearchRequest& query, const std::string& field,
                      const Serving& serving, const std::vector<index::Neighbour>& found,
                      hier::v1::SearchResponse* response) const;
  // Tells the metrics where a search spent its time.
  // The serving pair of model `version`, or the current one when it is empty; Aborted naming
  // `field` when this server does not serve that version (server/model/serving_slot.h).
  absl::StatusOr<Serving> ServingFor(const std::string& version, const std::string& field) const;
  void RecordStages(const index::SearchTimings& timings) const;
  // Tells the metrics how many items the index holds.
  void CountItems(const index::Collection& collection) const;
  // Writes one batch of new items and adds to the response's counts.
  absl::Status Add(const grpc::ServerContext& context, const hier::v1::AddItemsRequest& request,
                   hier::v1::AddItemsResponse* response);

  const RetrievalBackends backends_;
  const RetrievalLimits limits_;
};

}  // namespace hier::server
