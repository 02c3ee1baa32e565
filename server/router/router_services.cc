#include "server/router/router_services.h"

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "server/rpc/item_pages.h"

namespace hier::server {
namespace {

// Whether a call may go to a second replica after a retryable failure: reads, and writes that
// leave the same state however often they run (AddItems replaces items by id).
enum class Retry { kSafe, kNever };

template <typename Stub, typename Request, typename Response>
using UnaryMethod = grpc::Status (Stub::*)(grpc::ClientContext*, const Request&, Response*);

// Authorizes the call, then sends it to one serving replica.
template <typename Stub, typename Request, typename Response>
grpc::Status Relay(const RouterBackends& backends, grpc::ServerContext* context, Access access,
                   Retry retry, std::unique_ptr<Stub> ReplicaLink::*stub,
                   UnaryMethod<Stub, Request, Response> method, const Request& request,
                   Response* response) {
  return backends.authorizer->Run(*context, access, [&] {
    return backends.calls->OnReplica(CallerContext::From(*context), /*shard=*/-1,
                                     retry == Retry::kSafe,
                                     [&](ReplicaLink& link, grpc::ClientContext* client) {
                                       response->Clear();
                                       return ((*(link.*stub)).*method)(client, request, response);
                                     });
  });
}

// Asks one replica of each shard (retrying on its twins) of the topology now serving, their
// answers in shard order in `parts`; returns that topology. Unavailable when no version is served
// or the first shard that cannot answer fails the call.
template <typename Response, typename Ask>
absl::StatusOr<std::shared_ptr<const TopologyView>> AskEveryShard(
    const RouterBackends& backends, const grpc::ServerContext& context,
    std::vector<Response>* parts, const Ask& ask) {
  std::shared_ptr<const TopologyView> view = backends.topology->View();
  if (!view->version.has_value()) return absl::UnavailableError(view->WhyUnavailable());
  if (view->shard_count <= 0) return absl::UnavailableError("no replica has recorded its shards");
  const CallerContext caller = CallerContext::From(context);
  parts->assign(view->shard_count, Response());
  for (int shard = 0; shard < view->shard_count; ++shard) {
    Response* part = &(*parts)[shard];
    absl::Status answered = backends.calls->OnReplica(
        caller, shard, /*retry=*/true, [&](ReplicaLink& link, grpc::ClientContext* client) {
          part->Clear();
          return ask(link, client, part);
        });
    if (!answered.ok()) return answered;
  }
  return view;
}

// Orders shards' search settings by what they measured: untuned ones (nothing measured) first.
bool LowerRecall(const hier::v1::SearchSettings& a, const hier::v1::SearchSettings& b) {
  if (a.tuned() != b.tuned()) return !a.tuned();
  return a.measured_recall() < b.measured_recall();
}

}  // namespace

grpc::Status RouterRetrieval::Embed(grpc::ServerContext* context,
                                    const hier::v1::EmbedRequest* request,
                                    hier::v1::EmbedResponse* response) {
  return Relay(backends_, context, Access::kRead, Retry::kSafe, &ReplicaLink::retrieval,
               &hier::v1::Retrieval::Stub::Embed, *request, response);
}

grpc::Status RouterRetrieval::Search(grpc::ServerContext* context,
                                     const hier::v1::SearchRequest* request,
                                     hier::v1::SearchResponse* response) {
  return backends_.authorizer->Run(*context, Access::kRead, [&]() -> absl::Status {
    if (request->as_shard()) {
      return absl::InvalidArgumentError("as_shard: a router's own field; leave it unset");
    }
    std::vector<hier::v1::SearchResponse> answers;
    absl::Status answered =
        backends_.search->Answer(CallerContext::From(*context), {request}, false, &answers);
    if (answered.ok()) response->Swap(&answers.front());
    return answered;
  });
}

grpc::Status RouterRetrieval::SearchBatch(grpc::ServerContext* context,
                                          const hier::v1::SearchBatchRequest* request,
                                          hier::v1::SearchBatchResponse* response) {
  return backends_.authorizer->Run(*context, Access::kRead, [&]() -> absl::Status {
    const int count = request->queries_size();
    if (count == 0) return absl::InvalidArgumentError("queries: no query given");
    if (count > backends_.max_queries_per_call) {
      return absl::ResourceExhaustedError(absl::StrCat("queries: ", count, " in one call, at most ",
                                                       backends_.max_queries_per_call));
    }
    std::vector<const hier::v1::SearchRequest*> queries;
    for (int i = 0; i < count; ++i) {
      if (request->queries(i).as_shard()) {
        return absl::InvalidArgumentError(
            absl::StrCat("queries[", i, "].as_shard: only Search takes it (a router's call)"));
      }
      queries.push_back(&request->queries(i));
    }
    std::vector<hier::v1::SearchResponse> answers;
    absl::Status answered =
        backends_.search->Answer(CallerContext::From(*context), queries, true, &answers);
    if (!answered.ok()) return answered;
    for (hier::v1::SearchResponse& answer : answers) response->add_results()->Swap(&answer);
    return absl::OkStatus();
  });
}

grpc::Status RouterRetrieval::AddItems(grpc::ServerContext* context,
                                       const hier::v1::AddItemsRequest* request,
                                       hier::v1::AddItemsResponse* response) {
  return Relay(backends_, context, Access::kWrite, Retry::kSafe, &ReplicaLink::retrieval,
               &hier::v1::Retrieval::Stub::AddItems, *request, response);
}

grpc::Status RouterRetrieval::AddItemsStream(grpc::ServerContext* context,
                                             grpc::ServerReader<hier::v1::AddItemsRequest>* reader,
                                             hier::v1::AddItemsResponse* response) {
  return backends_.authorizer->Run(*context, Access::kWrite, [&] {
    // Passed on message by message: the replica commits each as it arrives, as it would alone.
    return backends_.calls->OnReplica(
        CallerContext::From(*context), /*shard=*/-1, /*retry=*/false,
        [&](ReplicaLink& link, grpc::ClientContext* client) {
          std::unique_ptr<grpc::ClientWriter<hier::v1::AddItemsRequest>> writer =
              link.retrieval->AddItemsStream(client, response);
          hier::v1::AddItemsRequest batch;
          while (reader->Read(&batch)) {
            if (!writer->Write(batch)) break;  // the replica ended the call: Finish says why
          }
          writer->WritesDone();
          return writer->Finish();
        });
  });
}

grpc::Status RouterRetrieval::DeleteItems(grpc::ServerContext* context,
                                          const hier::v1::DeleteItemsRequest* request,
                                          hier::v1::DeleteItemsResponse* response) {
  return Relay(backends_, context, Access::kWrite, Retry::kNever, &ReplicaLink::retrieval,
               &hier::v1::Retrieval::Stub::DeleteItems, *request, response);
}

grpc::Status RouterRetrieval::GetItem(grpc::ServerContext* context,
                                      const hier::v1::GetItemRequest* request,
                                      hier::v1::Item* response) {
  return Relay(backends_, context, Access::kRead, Retry::kSafe, &ReplicaLink::retrieval,
               &hier::v1::Retrieval::Stub::GetItem, *request, response);
}

grpc::Status RouterRetrieval::GetItemImage(grpc::ServerContext* context,
                                           const hier::v1::GetItemRequest* request,
                                           hier::v1::ItemImage* response) {
  return Relay(backends_, context, Access::kRead, Retry::kSafe, &ReplicaLink::retrieval,
               &hier::v1::Retrieval::Stub::GetItemImage, *request, response);
}

grpc::Status RouterRetrieval::Stats(grpc::ServerContext* context,
                                    const hier::v1::StatsRequest* request,
                                    hier::v1::StatsResponse* response) {
  return backends_.authorizer->Run(*context, Access::kRead, [&]() -> absl::Status {
    // The gallery's items and memory are the shards' sums.
    std::vector<hier::v1::StatsResponse> parts;
    absl::StatusOr<std::shared_ptr<const TopologyView>> view =
        AskEveryShard(backends_, *context, &parts,
                      [&](ReplicaLink& link, grpc::ClientContext* client, auto* part) {
                        return link.retrieval->Stats(client, *request, part);
                      });
    if (!view.ok()) return view.status();
    *response = parts.front();
    for (size_t shard = 1; shard < parts.size(); ++shard) {
      response->set_items(response->items() + parts[shard].items());
      response->set_index_memory_bytes(response->index_memory_bytes() +
                                       parts[shard].index_memory_bytes());
      if (LowerRecall(parts[shard].search_settings(), response->search_settings())) {
        *response->mutable_search_settings() = parts[shard].search_settings();
      }
    }
    response->set_model_version(*(*view)->version);
    return absl::OkStatus();
  });
}

grpc::Status RouterRetrieval::TuneSearch(grpc::ServerContext* context,
                                         const hier::v1::TuneSearchRequest* request,
                                         hier::v1::SearchSettings* response) {
  return backends_.authorizer->Run(*context, Access::kWrite, [&]() -> absl::Status {
    // Every shard tunes its own index (on one of its replicas).
    std::vector<hier::v1::SearchSettings> parts;
    absl::StatusOr<std::shared_ptr<const TopologyView>> view =
        AskEveryShard(backends_, *context, &parts,
                      [&](ReplicaLink& link, grpc::ClientContext* client, auto* part) {
                        return link.retrieval->TuneSearch(client, *request, part);
                      });
    if (!view.ok()) return view.status();
    *response = *std::min_element(parts.begin(), parts.end(), LowerRecall);
    return absl::OkStatus();
  });
}

grpc::Status RouterRetrieval::ListItems(grpc::ServerContext* context,
                                        const hier::v1::ListItemsRequest* request,
                                        hier::v1::ListItemsResponse* response) {
  return backends_.authorizer->Run(*context, Access::kRead, [&]() -> absl::Status {
    absl::StatusOr<PageRequest> page = ReadPageRequest(request->page_size(), request->page_token(),
                                                       backends_.max_queries_per_call);
    if (!page.ok()) return page.status();
    std::vector<hier::v1::ListItemsResponse> parts;
    absl::StatusOr<std::shared_ptr<const TopologyView>> view =
        AskEveryShard(backends_, *context, &parts,
                      [&](ReplicaLink& link, grpc::ClientContext* client, auto* part) {
                        return link.retrieval->ListItems(client, *request, part);
                      });
    if (!view.ok()) return view.status();
    // Each shard's page holds its `size` smallest ids after the token, so the union's `size`
    // smallest are the gallery's; more remain when the union is longer or a shard has more.
    bool more = false;
    for (hier::v1::ListItemsResponse& part : parts) {
      more = more || !part.next_page_token().empty();
      for (hier::v1::ItemSummary& item : *part.mutable_items()) response->add_items()->Swap(&item);
    }
    auto* items = response->mutable_items();
    std::sort(items->begin(), items->end(),
              [](const auto& a, const auto& b) { return a.id() < b.id(); });
    if (items->size() > page->size) {
      more = true;
      items->DeleteSubrange(static_cast<int>(page->size),
                            items->size() - static_cast<int>(page->size));
    }
    if (more && !items->empty())
      response->set_next_page_token(PageTokenAfter(items->rbegin()->id()));
    return absl::OkStatus();
  });
}

grpc::Status RouterModels::ListModels(grpc::ServerContext* context,
                                      const hier::v1::ListModelsRequest* request,
                                      hier::v1::ListModelsResponse* response) {
  return Relay(backends_, context, Access::kRead, Retry::kSafe, &ReplicaLink::models,
               &hier::v1::Models::Stub::ListModels, *request, response);
}

grpc::Status RouterModels::GetModel(grpc::ServerContext* context,
                                    const hier::v1::GetModelRequest* request,
                                    hier::v1::Model* response) {
  return Relay(backends_, context, Access::kRead, Retry::kSafe, &ReplicaLink::models,
               &hier::v1::Models::Stub::GetModel, *request, response);
}

grpc::Status RouterModels::LoadModel(grpc::ServerContext* context,
                                     const hier::v1::LoadModelRequest* request,
                                     hier::v1::LoadModelResponse* response) {
  return Relay(backends_, context, Access::kWrite, Retry::kNever, &ReplicaLink::models,
               &hier::v1::Models::Stub::LoadModel, *request, response);
}

grpc::Status RouterModels::GetSwap(grpc::ServerContext* context,
                                   const hier::v1::GetSwapRequest* request,
                                   hier::v1::SwapProgress* response) {
  return Relay(backends_, context, Access::kRead, Retry::kSafe, &ReplicaLink::models,
               &hier::v1::Models::Stub::GetSwap, *request, response);
}

grpc::Status RouterTraining::StartTraining(grpc::ServerContext* context,
                                           const hier::v1::StartTrainingRequest* request,
                                           hier::v1::Job* response) {
  return Relay(backends_, context, Access::kWrite, Retry::kNever, &ReplicaLink::training,
               &hier::v1::Training::Stub::StartTraining, *request, response);
}

grpc::Status RouterTraining::GetJob(grpc::ServerContext* context,
                                    const hier::v1::GetJobRequest* request,
                                    hier::v1::Job* response) {
  return Relay(backends_, context, Access::kRead, Retry::kSafe, &ReplicaLink::training,
               &hier::v1::Training::Stub::GetJob, *request, response);
}

grpc::Status RouterTraining::ListJobs(grpc::ServerContext* context,
                                      const hier::v1::ListJobsRequest* request,
                                      hier::v1::ListJobsResponse* response) {
  return Relay(backends_, context, Access::kRead, Retry::kSafe, &ReplicaLink::training,
               &hier::v1::Training::Stub::ListJobs, *request, response);
}

grpc::Status RouterTraining::WatchJob(grpc::ServerContext* context,
                                      const hier::v1::WatchJobRequest* request,
                                      grpc::ServerWriter<hier::v1::JobEvent>* writer) {
  return backends_.authorizer->Run(*context, Access::kRead, [&] {
    // Events are whole snapshots of the job, so a watch that moves to another replica after a
    // failure at worst repeats one.
    return backends_.calls->OnReplica(
        CallerContext::From(*context), /*shard=*/-1, /*retry=*/true,
        [&](ReplicaLink& link, grpc::ClientContext* client) {
          std::unique_ptr<grpc::ClientReader<hier::v1::JobEvent>> events =
              link.training->WatchJob(client, *request);
          hier::v1::JobEvent event;
          while (events->Read(&event)) {
            if (!writer->Write(event)) {
              client->TryCancel();
              break;
            }
          }
          return events->Finish();
        });
  });
}

grpc::Status RouterTraining::CancelJob(grpc::ServerContext* context,
                                       const hier::v1::CancelJobRequest* request,
                                       hier::v1::Job* response) {
  return Relay(backends_, context, Access::kWrite, Retry::kNever, &ReplicaLink::training,
               &hier::v1::Training::Stub::CancelJob, *request, response);
}

grpc::Status RouterTraining::ResumeJob(grpc::ServerContext* context,
                                       const hier::v1::ResumeJobRequest* request,
                                       hier::v1::Job* response) {
  return Relay(backends_, context, Access::kWrite, Retry::kNever, &ReplicaLink::training,
               &hier::v1::Training::Stub::ResumeJob, *request, response);
}

grpc::Status RouterHierarchy::GetHierarchy(grpc::ServerContext* context,
                                           const hier::v1::GetHierarchyRequest* request,
                                           hier::v1::HierarchyTree* response) {
  return Relay(backends_, context, Access::kRead, Retry::kSafe, &ReplicaLink::hierarchy,
               &hier::v1::Hierarchy::Stub::GetHierarchy, *request, response);
}

grpc::Status RouterHierarchy::Ancestors(grpc::ServerContext* context,
                                        const hier::v1::AncestorsRequest* request,
                                        hier::v1::AncestorsResponse* response) {
  return Relay(backends_, context, Access::kRead, Retry::kSafe, &ReplicaLink::hierarchy,
               &hier::v1::Hierarchy::Stub::Ancestors, *request, response);
}

}  // namespace hier::server
