#include "server/retrieval_service.h"

#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "server/grpc_status.h"

namespace hier::server {
namespace {

absl::Status NoModel(const char* field) {
  return absl::FailedPreconditionError(
      absl::StrCat(field, ": no model is loaded to embed images (LoadModel first)"));
}

}  // namespace

RetrievalService::RetrievalService(index::Collection* collection, const RetrievalLimits& limits)
    : collection_(collection), limits_(limits) {}

grpc::Status RetrievalService::Embed(grpc::ServerContext*, const hier::v1::EmbedRequest*,
                                     hier::v1::EmbedResponse*) {
  return ToGrpcStatus(NoModel("images"));
}

grpc::Status RetrievalService::Search(grpc::ServerContext*, const hier::v1::SearchRequest* request,
                                      hier::v1::SearchResponse* response) {
  index::SearchOptions options;
  options.k = request->k();
  options.overfetch = request->overfetch();
  options.label = request->label();
  absl::StatusOr<std::vector<index::Neighbour>> found;
  switch (request->query_case()) {
    case hier::v1::SearchRequest::kVector: {
      const auto& values = request->vector().values();
      found =
          collection_->index().Search(absl::MakeConstSpan(values.data(), values.size()), options);
      break;
    }
    case hier::v1::SearchRequest::kItemId:
      found = collection_->index().SearchById(request->item_id(), options);
      break;
    case hier::v1::SearchRequest::kImage:
      return ToGrpcStatus(NoModel("image"));
    default:
      return ToGrpcStatus(absl::InvalidArgumentError("query: set one of image, vector or item_id"));
  }
  if (!found.ok()) return ToGrpcStatus(found.status());
  for (const index::Neighbour& neighbour : *found) {
    hier::v1::Neighbour* out = response->add_neighbours();
    out->set_id(neighbour.id);
    out->set_distance(neighbour.distance);
    // A neighbour deleted since the search returns without its fields.
    if (absl::StatusOr<index::ItemRecord> record = collection_->Get(neighbour.id); record.ok()) {
      out->set_key(record->key);
      out->set_label(record->label);
    }
  }
  return grpc::Status::OK;
}

absl::Status RetrievalService::Add(const hier::v1::AddItemsRequest& request,
                                   hier::v1::AddItemsResponse* response) {
  if (request.items_size() > limits_.max_items_per_call) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "items: ", request.items_size(), " in one call, at most ", limits_.max_items_per_call));
  }
  std::vector<index::ItemRecord> records;
  records.reserve(request.items_size());
  for (int i = 0; i < request.items_size(); ++i) {
    const hier::v1::NewItem& item = request.items(i);
    if (item.content_case() == hier::v1::NewItem::kImage) {
      return NoModel(absl::StrCat("items[", i, "].image").c_str());
    }
    if (item.content_case() != hier::v1::NewItem::kVector) {
      return absl::InvalidArgumentError(
          absl::StrCat("items[", i, "]: set its image or its vector"));
    }
    index::ItemRecord record;
    record.id = item.id();
    record.key = item.key();
    record.label = item.label();
    record.attributes = item.attributes();
    record.vector.assign(item.vector().values().begin(), item.vector().values().end());
    records.push_back(std::move(record));
  }
  absl::StatusOr<int64_t> seq = collection_->Upsert(records);
  if (!seq.ok()) return seq.status();
  response->set_added(response->added() + static_cast<int64_t>(records.size()));
  response->set_last_seq(*seq);
  return absl::OkStatus();
}

grpc::Status RetrievalService::AddItems(grpc::ServerContext*,
                                        const hier::v1::AddItemsRequest* request,
                                        hier::v1::AddItemsResponse* response) {
  return ToGrpcStatus(Add(*request, response));
}

grpc::Status RetrievalService::AddItemsStream(grpc::ServerContext*,
                                              grpc::ServerReader<hier::v1::AddItemsRequest>* reader,
                                              hier::v1::AddItemsResponse* response) {
  hier::v1::AddItemsRequest batch;
  for (int64_t message = 0; reader->Read(&batch); ++message) {
    if (absl::Status added = Add(batch, response); !added.ok()) {
      // Earlier messages are written; say which one failed.
      return ToGrpcStatus(
          absl::Status(added.code(), absl::StrCat("message ", message, ": ", added.message())));
    }
  }
  return grpc::Status::OK;
}

grpc::Status RetrievalService::DeleteItems(grpc::ServerContext*,
                                           const hier::v1::DeleteItemsRequest* request,
                                           hier::v1::DeleteItemsResponse* response) {
  const std::vector<int64_t> ids(request->ids().begin(), request->ids().end());
  absl::StatusOr<int64_t> seq = collection_->Delete(ids);
  if (!seq.ok()) return ToGrpcStatus(seq.status());
  response->set_deleted(static_cast<int64_t>(ids.size()));
  return grpc::Status::OK;
}

grpc::Status RetrievalService::GetItem(grpc::ServerContext*,
                                       const hier::v1::GetItemRequest* request,
                                       hier::v1::Item* response) {
  absl::StatusOr<index::ItemRecord> record = collection_->Get(request->id());
  if (!record.ok()) return ToGrpcStatus(record.status());
  response->set_id(record->id);
  response->set_key(record->key);
  response->set_label(record->label);
  response->set_attributes(record->attributes);
  response->set_model_version(record->model_version);
  response->mutable_vector()->mutable_values()->Add(record->vector.begin(), record->vector.end());
  return grpc::Status::OK;
}

grpc::Status RetrievalService::Stats(grpc::ServerContext*, const hier::v1::StatsRequest*,
                                     hier::v1::StatsResponse* response) {
  const index::HyperbolicIndex& index = collection_->index();
  response->set_items(index.size());
  response->set_candidates(index.Describe());
  response->set_index_memory_bytes(index.memory_bytes());
  response->set_dim(static_cast<int32_t>(index.options().dim));
  response->set_c(index.options().c);
  return grpc::Status::OK;
}

}  // namespace hier::server
