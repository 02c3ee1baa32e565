// The public gRPC services, answered by a router in front of a sharded cluster: searches go to
// every shard and are merged (routed_search.h); everything else goes to one serving replica, since
// every replica writes to and reads from the same store (items, models, jobs). Statistics add up
// the shards'. Each call is authorized here with the same token the replicas hold, and the
// caller's authorization and deadline travel on to the replica.
//
// Thread-safety: gRPC calls every method from many threads at once.
#pragma once

#include <grpcpp/grpcpp.h>

#include "hier/v1/hierarchy.grpc.pb.h"
#include "hier/v1/models.grpc.pb.h"
#include "hier/v1/retrieval.grpc.pb.h"
#include "hier/v1/training.grpc.pb.h"
#include "server/router/replica_calls.h"
#include "server/router/routed_search.h"
#include "server/rpc/authorizer.h"

namespace hier::server {

// What the router's services share; every pointer outlives them.
struct RouterBackends {
  Topology* topology = nullptr;
  ReplicaCalls* calls = nullptr;
  RoutedSearch* search = nullptr;
  const Authorizer* authorizer = nullptr;
  int64_t max_queries_per_call = 10000;  // SearchBatch's limit, as the replicas'
};

class RouterRetrieval final : public hier::v1::Retrieval::Service {
 public:
  explicit RouterRetrieval(const RouterBackends& backends) : backends_(backends) {}

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
  grpc::Status TuneSearch(grpc::ServerContext* context,
                          const hier::v1::TuneSearchRequest* request,
                          hier::v1::SearchSettings* response) override;
  grpc::Status GetItemImage(grpc::ServerContext* context, const hier::v1::GetItemRequest* request,
                            hier::v1::ItemImage* response) override;
  grpc::Status GetItem(grpc::ServerContext* context, const hier::v1::GetItemRequest* request,
                       hier::v1::Item* response) override;
  // One replica of each shard lists a page; the router keeps the smallest ids of their union.
  grpc::Status ListItems(grpc::ServerContext* context, const hier::v1::ListItemsRequest* request,
                         hier::v1::ListItemsResponse* response) override;
  grpc::Status Stats(grpc::ServerContext* context, const hier::v1::StatsRequest* request,
                     hier::v1::StatsResponse* response) override;

 private:
  const RouterBackends backends_;
};

class RouterModels final : public hier::v1::Models::Service {
 public:
  explicit RouterModels(const RouterBackends& backends) : backends_(backends) {}

  grpc::Status ListModels(grpc::ServerContext* context, const hier::v1::ListModelsRequest* request,
                          hier::v1::ListModelsResponse* response) override;
  grpc::Status GetModel(grpc::ServerContext* context, const hier::v1::GetModelRequest* request,
                        hier::v1::Model* response) override;
  grpc::Status LoadModel(grpc::ServerContext* context, const hier::v1::LoadModelRequest* request,
                         hier::v1::LoadModelResponse* response) override;
  grpc::Status GetSwap(grpc::ServerContext* context, const hier::v1::GetSwapRequest* request,
                       hier::v1::SwapProgress* response) override;

 private:
  const RouterBackends backends_;
};

class RouterTraining final : public hier::v1::Training::Service {
 public:
  explicit RouterTraining(const RouterBackends& backends) : backends_(backends) {}

  grpc::Status StartTraining(grpc::ServerContext* context,
                             const hier::v1::StartTrainingRequest* request,
                             hier::v1::Job* response) override;
  grpc::Status GetJob(grpc::ServerContext* context, const hier::v1::GetJobRequest* request,
                      hier::v1::Job* response) override;
  grpc::Status ListJobs(grpc::ServerContext* context, const hier::v1::ListJobsRequest* request,
                        hier::v1::ListJobsResponse* response) override;
  grpc::Status WatchJob(grpc::ServerContext* context, const hier::v1::WatchJobRequest* request,
                        grpc::ServerWriter<hier::v1::JobEvent>* writer) override;
  grpc::Status CancelJob(grpc::ServerContext* context, const hier::v1::CancelJobRequest* request,
                         hier::v1::Job* response) override;
  grpc::Status ResumeJob(grpc::ServerContext* context, const hier::v1::ResumeJobRequest* request,
                         hier::v1::Job* response) override;

 private:
  const RouterBackends backends_;
};

class RouterHierarchy final : public hier::v1::Hierarchy::Service {
 public:
  explicit RouterHierarchy(const RouterBackends& backends) : backends_(backends) {}

  grpc::Status GetHierarchy(grpc::ServerContext* context,
                            const hier::v1::GetHierarchyRequest* request,
                            hier::v1::HierarchyTree* response) override;
  grpc::Status Ancestors(grpc::ServerContext* context, const hier::v1::AncestorsRequest* request,
                         hier::v1::AncestorsResponse* response) override;

 private:
  const RouterBackends backends_;
};

}  // namespace hier::server
