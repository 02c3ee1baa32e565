#include "server/rpc/retrieval_service.h"

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "index/ball_geometry.h"
#include "server/model/image_header.h"
#include "server/rpc/ancestors_proto.h"
#include "server/rpc/call_deadline.h"
#include "server/rpc/item_pages.h"

namespace hier::server {
namespace {

// The largest sample a TuneSearch call may ask for (each item is searched for many times).
constexpr int64_t kMostSampleQueries = 10000;

void WriteSearchSettings(const index::SearchSettings& settings, hier::v1::SearchSettings* out) {
  out->set_nprobe(settings.effort.nprobe);
  out->set_ef_search(settings.effort.ef_search);
  out->set_overfetch(settings.effort.overfetch);
  if (!settings.tuning.has_value()) return;
  const index::RecallTuning& tuning = *settings.tuning;
  out->set_tuned(true);
  out->set_target_recall(tuning.target.recall);
  out->set_recall_k(static_cast<int32_t>(tuning.target.k));
  out->set_measured_recall(tuning.measured.recall);
  out->set_recall_standard_error(tuning.measured.recall_error);
  out->set_target_reached(tuning.reached);
  out->set_sample_queries(tuning.queries);
  if (tuning.measured.seconds > 0) {
    out->set_sample_queries_per_second(static_cast<double>(tuning.queries) /
                                       tuning.measured.seconds);
  }
  out->set_settings_tried(tuning.settings_tried);
  out->set_tuning_seconds(tuning.seconds);
}

std::string VersionOf(const std::shared_ptr<ServingModel>& model) {
  return model ? model->description().version : std::string();
}

absl::Status NeedModel(const std::shared_ptr<ServingModel>& model, const std::string& field) {
  if (model != nullptr) return absl::OkStatus();
  return absl::FailedPreconditionError(
      absl::StrCat(field, ": no model is loaded to embed images (LoadModel first)"));
}

// Why a shard's search that failed with `status` means only that this shard has nothing to add.
hier::v1::ShardGap ShardGapOf(const absl::Status& status, const index::HyperbolicIndex& index,
                              const std::string& label) {
  if (absl::IsFailedPrecondition(status) && index.size() == 0) return hier::v1::SHARD_GAP_EMPTY;
  if (absl::IsNotFound(status) && !label.empty() && !index.HasLabel(label)) {
    return hier::v1::SHARD_GAP_NO_LABEL;
  }
  return hier::v1::SHARD_GAP_NONE;
}

// `status` with `prefix` (e.g. "queries[3].") before its message, naming the query at fault.
absl::Status Prefixed(const absl::Status& status, const std::string& prefix) {
  return absl::Status(status.code(), absl::StrCat(prefix, status.message()));
}

}  // namespace

RetrievalService::RetrievalService(const RetrievalBackends& backends, const RetrievalLimits& limits)
    : backends_(backends), limits_(limits) {}

absl::StatusOr<std::vector<float>> RetrievalService::EmbedImages(
    const grpc::ServerContext& context, const std::vector<EncodedImage>& images,
    ServingModel& model) const {
  if (static_cast<int64_t>(images.size()) > limits_.max_images_per_call) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "images: ", images.size(), " in one call, at most ", limits_.max_images_per_call));
  }
  return model.EmbedImages(images, limits_.max_pixels, CallDeadline(context));
}

absl::StatusOr<Serving> RetrievalService::ServingFor(const std::string& version,
                                                     const std::string& field) const {
  if (version.empty()) return backends_.serving->Get();
  std::optional<Serving> pinned = backends_.serving->Get(version);
  if (pinned.has_value()) return *std::move(pinned);
  return absl::AbortedError(absl::StrCat(field, ": model ", version,
                                         " is not served here (any more); this server serves ",
                                         backends_.serving->Get().version()));
}

void RetrievalService::RecordStages(const index::SearchTimings& timings) const {
  if (backends_.metrics != nullptr) {
    backends_.metrics->ObserveSearchStage(SearchStage::kCandidate, timings.candidate_seconds);
    backends_.metrics->ObserveSearchStage(SearchStage::kRerank, timings.rerank_seconds);
  }
}

void RetrievalService::CountItems(const index::Collection& collection) const {
  if (backends_.metrics != nullptr) backends_.metrics->SetIndexItems(collection.index().size());
}

grpc::Status RetrievalService::Embed(grpc::ServerContext* context,
                                     const hier::v1::EmbedRequest* request,
                                     hier::v1::EmbedResponse* response) {
  return backends_.authorizer->Run(*context, Access::kRead, [&]() -> absl::Status {
    if (request->images().empty()) return absl::InvalidArgumentError("images: no image given");
    const std::shared_ptr<ServingModel> model = backends_.serving->Get().model;
    if (absl::Status ready = NeedModel(model, "images"); !ready.ok()) return ready;
    std::vector<EncodedImage> images;
    for (int i = 0; i < request->images_size(); ++i) {
      images.push_back({&request->images(i), absl::StrCat("images[", i, "]")});
    }
    absl::StatusOr<std::vector<float>> points = EmbedImages(*context, images, *model);
    if (!points.ok()) return points.status();
    const int64_t dim = model->description().dim;
    for (size_t i = 0; i < images.size(); ++i) {
      response->add_embeddings()->mutable_values()->Add(points->begin() + i * dim,
                                                        points->begin() + (i + 1) * dim);
    }
    response->set_model_version(VersionOf(model));
    return absl::OkStatus();
  });
}

grpc::Status RetrievalService::Search(grpc::ServerContext* context,
                                      const hier::v1::SearchRequest* request,
                                      hier::v1::SearchResponse* response) {
  return backends_.authorizer->Run(*context, Access::kRead, [&]() -> absl::Status {
    index::SearchOptions options;
    options.k = request->k();
    options.overfetch = request->overfetch();
    options.label = request->label();
    index::SearchTimings timings;
    options.timings = &timings;
    absl::StatusOr<Serving> pinned = ServingFor(request->model_version(), "model_version");
    if (!pinned.ok()) return pinned.status();
    const Serving serving = *std::move(pinned);
    const std::shared_ptr<ServingModel>& model = serving.model;
    const index::HyperbolicIndex& index = serving.collection->index();
    absl::StatusOr<std::vector<index::Neighbour>> found;
    std::optional<std::vector<float>> point;  // the query's point, when as_shard
    switch (request->query_case()) {
      case hier::v1::SearchRequest::kVector: {
        const auto& values = request->vector().values();
        found = index.Search(absl::MakeConstSpan(values.data(), values.size()), options);
        if (request->as_shard()) point.emplace(values.begin(), values.end());
        break;
      }
      case hier::v1::SearchRequest::kImage: {
        if (absl::Status ready = NeedModel(model, "image"); !ready.ok()) return ready;
        absl::StatusOr<std::vector<float>> query =
            EmbedImages(*context, {{&request->image(), "image"}}, *model);
        if (!query.ok()) return query.status();
        found = index.Search(*query, options);
        point = *std::move(query);
        break;
      }
      case hier::v1::SearchRequest::kItemId:
        found = index.SearchById(request->item_id(), options);
        if (request->as_shard()) point = index.Point(request->item_id());
        break;
      default:
        return absl::InvalidArgumentError("query: set one of image, vector or item_id");
    }
    if (!found.ok()) {
      // A shard of several that holds no item (with the label) has no neighbours to add; the
      // router decides whether the whole gallery has none.
      const hier::v1::ShardGap gap =
          request->as_shard() && point.has_value()
              ? ShardGapOf(found.status(), index, request->label())
              : hier::v1::SHARD_GAP_NONE;
      if (gap == hier::v1::SHARD_GAP_NONE) return found.status();
      response->set_shard_gap(gap);
      found = std::vector<index::Neighbour>();
    }
    if (request->as_shard()) {
      response->mutable_query_point()->mutable_values()->Add(point->begin(), point->end());
    }
    RecordStages(timings);
    return Answer(*request, "", serving, *found, response);
  });
}

absl::Status RetrievalService::Answer(const hier::v1::SearchRequest& query,
                                      const std::string& field, const Serving& serving,
                                      const std::vector<index::Neighbour>& found,
                                      hier::v1::SearchResponse* response) const {
  const ProxyHierarchy* hierarchy = nullptr;
  if (query.with_ancestors()) {
    const std::string name = absl::StrCat(field, "with_ancestors");
    if (serving.model == nullptr) return NeedModel(serving.model, name);
    if (!serving.model->hierarchy().ok()) return serving.model->hierarchy().status();
    hierarchy = serving.model->hierarchy()->get();
  }
  // What the results show comes from memory: a search never reads the store.
  std::vector<int64_t> ids;
  ids.reserve(found.size());
  for (const index::Neighbour& neighbour : found) ids.push_back(neighbour.id);
  const std::vector<std::optional<index::ItemSummary>> summaries =
      serving.collection->Summaries(ids);
  for (size_t i = 0; i < found.size(); ++i) {
    hier::v1::Neighbour* out = response->add_neighbours();
    out->set_id(ids[i]);
    out->set_distance(found[i].distance);
    // A neighbour deleted since the search returns without its fields.
    if (!summaries[i].has_value()) continue;
    out->set_key(summaries[i]->key);
    out->set_label(summaries[i]->label);
    if (hierarchy != nullptr) {
      const std::optional<std::vector<float>> point = serving.collection->index().Point(ids[i]);
      if (!point.has_value()) continue;
      absl::StatusOr<std::vector<std::vector<AncestorStep>>> chains =
          hierarchy->ChainsAbove(*point, 1, "neighbours");
      if (!chains.ok()) return chains.status();
      AddAncestors(chains->front(), out->mutable_ancestors());
    }
  }
  response->set_model_version(VersionOf(serving.model));
  return absl::OkStatus();
}

grpc::Status RetrievalService::SearchBatch(grpc::ServerContext* context,
                                           const hier::v1::SearchBatchRequest* request,
                                           hier::v1::SearchBatchResponse* response) {
  return backends_.authorizer->Run(*context, Access::kRead, [&]() -> absl::Status {
    const int count = request->queries_size();
    if (count == 0) return absl::InvalidArgumentError("queries: no query given");
    if (count > limits_.max_items_per_call) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "queries: ", count, " in one call, at most ", limits_.max_items_per_call));
    }
    auto field = [](int i) { return absl::StrCat("queries[", i, "]."); };
    for (int i = 1; i < count; ++i) {
      if (request->queries(i).model_version() != request->queries(0).model_version()) {
        return absl::InvalidArgumentError(absl::StrCat(
            field(i), "model_version: every query of a call must name the same version"));
      }
    }
    absl::StatusOr<Serving> pinned =
        ServingFor(request->queries(0).model_version(), "queries[0].model_version");
    if (!pinned.ok()) return pinned.status();
    const Serving serving = *std::move(pinned);
    const index::HyperbolicIndex& index = serving.collection->index();
    const int64_t dim = index.options().dim;
    // Images first, embedded together; then each query's point: its vector or its image's.
    std::vector<EncodedImage> images;
    std::vector<int> image_rows(count, -1);
    for (int i = 0; i < count; ++i) {
      if (request->queries(i).query_case() != hier::v1::SearchRequest::kImage) continue;
      image_rows[i] = static_cast<int>(images.size());
      images.push_back({&request->queries(i).image(), absl::StrCat(field(i), "image")});
    }
    std::vector<float> embedded;
    if (!images.empty()) {
      if (absl::Status ready = NeedModel(serving.model, images.front().field); !ready.ok()) {
        return ready;
      }
      absl::StatusOr<std::vector<float>> points = EmbedImages(*context, images, *serving.model);
      if (!points.ok()) return points.status();
      embedded = *std::move(points);
    }
    // Queries by point that share k, label and overfetch form one batch through the index;
    // queries by item id leave the item itself out, so they go one by one.
    std::vector<std::vector<index::Neighbour>> found(count);
    std::map<std::tuple<int32_t, std::string, int32_t>, std::vector<int>> batches;
    for (int i = 0; i < count; ++i) {
      const hier::v1::SearchRequest& query = request->queries(i);
      if (query.as_shard()) {
        return absl::InvalidArgumentError(
            absl::StrCat(field(i), "as_shard: only Search takes it (a router's call)"));
      }
      index::SearchOptions options;
      options.k = query.k();
      options.overfetch = query.overfetch();
      options.label = query.label();
      switch (query.query_case()) {
        case hier::v1::SearchRequest::kItemId: {
          absl::StatusOr<std::vector<index::Neighbour>> one =
              index.SearchById(query.item_id(), options);
          if (!one.ok()) return Prefixed(one.status(), field(i));
          found[i] = *std::move(one);
          break;
        }
        case hier::v1::SearchRequest::kVector: {
          const std::string name = absl::StrCat(field(i), "vector");
          if (query.vector().values_size() != dim) {
            return absl::InvalidArgumentError(absl::StrCat(
                name, ": expected ", dim, " floats, got ", query.vector().values_size()));
          }
          if (absl::Status valid = index::ValidateBallPoint(query.vector().values().data(), dim,
                                                            index.options().c, name.c_str());
              !valid.ok()) {
            return valid;
          }
          batches[{query.k(), query.label(), query.overfetch()}].push_back(i);
          break;
        }
        case hier::v1::SearchRequest::kImage:
          batches[{query.k(), query.label(), query.overfetch()}].push_back(i);
          break;
        default:
          return absl::InvalidArgumentError(
              absl::StrCat(field(i), "query: set one of image, vector or item_id"));
      }
    }
    for (const auto& [key, members] : batches) {
      std::vector<float> points;
      points.reserve(members.size() * dim);
      for (const int i : members) {
        const hier::v1::SearchRequest& query = request->queries(i);
        if (image_rows[i] >= 0) {
          const auto row = embedded.begin() + image_rows[i] * dim;
          points.insert(points.end(), row, row + dim);
        } else {
          points.insert(points.end(), query.vector().values().begin(),
                        query.vector().values().end());
        }
      }
      index::SearchOptions options;
      std::tie(options.k, options.label, options.overfetch) = key;
      index::SearchTimings timings;
      options.timings = &timings;
      absl::StatusOr<std::vector<std::vector<index::Neighbour>>> results =
          index.SearchBatch(points, options);
      if (!results.ok()) return Prefixed(results.status(), field(members.front()));
      RecordStages(timings);
      for (size_t m = 0; m < members.size(); ++m) found[members[m]] = std::move((*results)[m]);
    }
    for (int i = 0; i < count; ++i) {
      if (absl::Status answered =
              Answer(request->queries(i), field(i), serving, found[i], response->add_results());
          !answered.ok()) {
        return answered;
      }
    }
    return absl::OkStatus();
  });
}

absl::Status RetrievalService::Add(const grpc::ServerContext& context,
                                   const hier::v1::AddItemsRequest& request,
                                   hier::v1::AddItemsResponse* response) {
  if (request.items_size() > limits_.max_items_per_call) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "items: ", request.items_size(), " in one call, at most ", limits_.max_items_per_call));
  }
  // Embedding and storing images happen before the write gate, so a swap waits only for writes.
  const std::shared_ptr<ServingModel> model = backends_.serving->Get().model;
  std::vector<index::ItemRecord> records(request.items_size());
  std::vector<EncodedImage> images;
  std::vector<index::ItemRecord*> image_records;
  for (int i = 0; i < request.items_size(); ++i) {
    const hier::v1::NewItem& item = request.items(i);
    index::ItemRecord& record = records[i];
    record.id = item.id();
    record.key = item.key();
    record.label = item.label();
    record.attributes = item.attributes();
    record.model_version = VersionOf(model);
    switch (item.content_case()) {
      case hier::v1::NewItem::kVector:
        record.vector.assign(item.vector().values().begin(), item.vector().values().end());
        break;
      case hier::v1::NewItem::kImage:
        images.push_back({&item.image(), absl::StrCat("items[", i, "].image")});
        image_records.push_back(&record);
        break;
      default:
        return absl::InvalidArgumentError(
            absl::StrCat("items[", i, "]: set its image or its vector"));
    }
  }
  if (!images.empty()) {
    if (absl::Status ready = NeedModel(model, images.front().field); !ready.ok()) return ready;
    absl::StatusOr<std::vector<float>> points = EmbedImages(context, images, *model);
    if (!points.ok()) return points.status();
    const int64_t dim = model->description().dim;
    for (size_t i = 0; i < images.size(); ++i) {
      absl::StatusOr<std::string> sha256 = backends_.blobs->Put(*images[i].bytes);
      if (!sha256.ok()) return sha256.status();
      image_records[i]->image_sha256 = *std::move(sha256);
      image_records[i]->vector.assign(points->begin() + i * dim, points->begin() + (i + 1) * dim);
    }
  }
  absl::ReaderMutexLock gate(&backends_.serving->write_gate());
  const Serving serving = backends_.serving->Get();
  if (serving.model != model) {
    return absl::AbortedError(
        "items: the serving model changed during the call (a hot swap); send them again");
  }
  absl::StatusOr<int64_t> seq = serving.collection->Upsert(records);
  if (!seq.ok()) return seq.status();
  CountItems(*serving.collection);
  response->set_added(response->added() + static_cast<int64_t>(records.size()));
  response->set_last_seq(*seq);
  return absl::OkStatus();
}

grpc::Status RetrievalService::AddItems(grpc::ServerContext* context,
                                        const hier::v1::AddItemsRequest* request,
                                        hier::v1::AddItemsResponse* response) {
  return backends_.authorizer->Run(*context, Access::kWrite,
                                   [&] { return Add(*context, *request, response); });
}

grpc::Status RetrievalService::AddItemsStream(grpc::ServerContext* context,
                                              grpc::ServerReader<hier::v1::AddItemsRequest>* reader,
                                              hier::v1::AddItemsResponse* response) {
  return backends_.authorizer->Run(*context, Access::kWrite, [&]() -> absl::Status {
    hier::v1::AddItemsRequest batch;
    for (int64_t message = 0; reader->Read(&batch); ++message) {
      if (absl::Status added = Add(*context, batch, response); !added.ok()) {
        // Earlier messages are written; say which one failed.
        return absl::Status(added.code(), absl::StrCat("message ", message, ": ", added.message()));
      }
    }
    return absl::OkStatus();
  });
}

grpc::Status RetrievalService::DeleteItems(grpc::ServerContext* context,
                                           const hier::v1::DeleteItemsRequest* request,
                                           hier::v1::DeleteItemsResponse* response) {
  return backends_.authorizer->Run(*context, Access::kWrite, [&]() -> absl::Status {
    const std::vector<int64_t> ids(request->ids().begin(), request->ids().end());
    absl::ReaderMutexLock gate(&backends_.serving->write_gate());
    const Serving serving = backends_.serving->Get();
    absl::StatusOr<int64_t> seq = serving.collection->Delete(ids);
    if (!seq.ok()) return seq.status();
    CountItems(*serving.collection);
    response->set_deleted(static_cast<int64_t>(ids.size()));
    return absl::OkStatus();
  });
}

grpc::Status RetrievalService::GetItem(grpc::ServerContext* context,
                                       const hier::v1::GetItemRequest* request,
                                       hier::v1::Item* response) {
  return backends_.authorizer->Run(*context, Access::kRead, [&]() -> absl::Status {
    absl::StatusOr<index::ItemRecord> record =
        backends_.serving->Get().collection->Get(request->id());
    if (!record.ok()) return record.status();
    response->set_id(record->id);
    response->set_key(record->key);
    response->set_label(record->label);
    response->set_attributes(record->attributes);
    response->set_model_version(record->model_version);
    response->set_image_sha256(record->image_sha256);
    response->mutable_vector()->mutable_values()->Add(record->vector.begin(), record->vector.end());
    return absl::OkStatus();
  });
}

grpc::Status RetrievalService::GetItemImage(grpc::ServerContext* context,
                                            const hier::v1::GetItemRequest* request,
                                            hier::v1::ItemImage* response) {
  return backends_.authorizer->Run(*context, Access::kRead, [&]() -> absl::Status {
    absl::StatusOr<index::ItemRecord> record =
        backends_.serving->Get().collection->Get(request->id());
    if (!record.ok()) return record.status();
    if (record->image_sha256.empty() || backends_.blobs == nullptr) {
      return absl::NotFoundError(
          absl::StrCat("id: item ", request->id(), " was added as a vector, without an image"));
    }
    absl::StatusOr<std::string> image = backends_.blobs->Get(record->image_sha256);
    if (!image.ok()) return image.status();
    response->set_content_type(EncodedImageMediaType(*image));
    response->set_sha256(record->image_sha256);
    response->set_image(*std::move(image));
    return absl::OkStatus();
  });
}

grpc::Status RetrievalService::ListItems(grpc::ServerContext* context,
                                         const hier::v1::ListItemsRequest* request,
                                         hier::v1::ListItemsResponse* response) {
  return backends_.authorizer->Run(*context, Access::kRead, [&]() -> absl::Status {
    absl::StatusOr<PageRequest> page = ReadPageRequest(
        request->page_size(), request->page_token(), limits_.max_items_per_call);
    if (!page.ok()) return page.status();
    // One more than the page: whether it exists says whether a next page does.
    std::vector<index::ListedItem> items = backends_.serving->Get().collection->ListItems(
        page->after_id, page->size + 1, request->label());
    const bool more = static_cast<int64_t>(items.size()) > page->size;
    if (more) items.pop_back();
    for (index::ListedItem& item : items) {
      hier::v1::ItemSummary* summary = response->add_items();
      summary->set_id(item.id);
      summary->set_key(std::move(item.summary.key));
      summary->set_label(std::move(item.summary.label));
    }
    if (more) response->set_next_page_token(PageTokenAfter(items.back().id));
    return absl::OkStatus();
  });
}

grpc::Status RetrievalService::Stats(grpc::ServerContext* context, const hier::v1::StatsRequest*,
                                     hier::v1::StatsResponse* response) {
  return backends_.authorizer->Run(*context, Access::kRead, [&]() -> absl::Status {
    const Serving serving = backends_.serving->Get();
    const index::HyperbolicIndex& index = serving.collection->index();
    response->set_items(index.size());
    response->set_candidates(index.Describe());
    response->set_index_memory_bytes(index.memory_bytes());
    response->set_dim(static_cast<int32_t>(index.options().dim));
    response->set_c(index.options().c);
    response->set_model_version(VersionOf(serving.model));
    WriteSearchSettings(index.search_settings(), response->mutable_search_settings());
    return absl::OkStatus();
  });
}

grpc::Status RetrievalService::TuneSearch(grpc::ServerContext* context,
                                          const hier::v1::TuneSearchRequest* request,
                                          hier::v1::SearchSettings* response) {
  return backends_.authorizer->Run(*context, Access::kWrite, [&]() -> absl::Status {
    const Serving serving = backends_.serving->Get();
    index::RecallTarget target;
    if (request->target_recall() != 0) {
      target.recall = request->target_recall();
    } else if (serving.collection->index().options().target_recall > 0) {
      target.recall = serving.collection->index().options().target_recall;
    }
    if (request->k() != 0) target.k = request->k();
    if (request->sample_queries() != 0) target.queries = request->sample_queries();
    if (target.k > serving.collection->index().options().max_k) {
      return absl::InvalidArgumentError(absl::StrCat(
          "k: must be at most ", serving.collection->index().options().max_k, ", got ", target.k));
    }
    if (target.queries > kMostSampleQueries) {
      return absl::InvalidArgumentError(absl::StrCat(
          "sample_queries: must be at most ", kMostSampleQueries, ", got ", target.queries));
    }
    absl::StatusOr<index::RecallTuning> tuned = serving.collection->TuneSearch(target);
    if (!tuned.ok()) return tuned.status();
    WriteSearchSettings(serving.collection->index().search_settings(), response);
    return absl::OkStatus();
  });
}

}  // namespace hier::server
