// The Retrieval service (proto/hier/v1/retrieval.proto) over a Collection: search by vector or by
// item id, items added by vector, deletes, reads and statistics. Calls that need a model (Embed,
// search or add by image) answer FAILED_PRECONDITION until one is loaded.
//
// Thread-safety: gRPC calls the handlers from many threads; the Collection serialises writes and
// lets searches run in parallel.
#pragma once

#include <cstdint>

#include "hier/v1/retrieval.grpc.pb.h"
#include "index/collection.h"

namespace hier::server {

struct RetrievalLimits {
  int64_t max_items_per_call = 10000;
};

class RetrievalService final : public hier::v1::Retrieval::Service {
 public:
  RetrievalService(index::Collection* collection, const RetrievalLimits& limits);

  grpc::Status Embed(grpc::ServerContext* context, const hier::v1::EmbedRequest* request,
                     hier::v1::EmbedResponse* response) override;
  grpc::Status Search(grpc::ServerContext* context, const hier::v1::SearchRequest* request,
                      hier::v1::SearchResponse* response) override;
  grpc::Status AddItems(grpc::ServerContext* context, const hier::v1::AddItemsRequest* request,
                        hier::v1::AddItemsResponse* response) override;
  grpc::Status AddItemsStream(grpc::ServerContext* context,
                              grpc::ServerReader<hier::v1::AddItemsRequest>* reader,
                              hier::v1::AddItemsResponse* response) override;
  grpc::Status DeleteItems(grpc::ServerContext* context,
                           const hier::v1::DeleteItemsRequest* request,
                           hier::v1::DeleteItemsResponse* response) override;
  grpc::Status GetItem(grpc::ServerContext* context, const hier::v1::GetItemRequest* request,
                       hier::v1::Item* response) override;
  grpc::Status Stats(grpc::ServerContext* context, const hier::v1::StatsRequest* request,
                     hier::v1::StatsResponse* response) override;

 private:
  // Writes one batch of new items and adds to the response's counts.
  absl::Status Add(const hier::v1::AddItemsRequest& request, hier::v1::AddItemsResponse* response);

  index::Collection* const collection_;
  const RetrievalLimits limits_;
};

}  // namespace hier::server
