#include "server/router/routed_search.h"

#include <algorithm>
#include <optional>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "index/hyperbolic_index.h"
#include "index/shard.h"

namespace hier::server {
namespace {

// How many times a search starts again because a shard switched model versions under it.
constexpr int kMaxPlans = 3;

// The shard whose replica finds the query's point: an item's own shard, else any (rotating).
int AnchorShard(const hier::v1::SearchRequest& query, int shards, uint64_t turn) {
  if (query.query_case() == hier::v1::SearchRequest::kItemId) {
    return index::ShardOf(query.item_id(), shards);
  }
  return static_cast<int>(turn % static_cast<uint64_t>(shards));
}

bool NeedsPoint(const hier::v1::SearchRequest& query) {
  return query.query_case() == hier::v1::SearchRequest::kImage ||
         query.query_case() == hier::v1::SearchRequest::kItemId;
}

absl::Status Prefixed(const absl::Status& status, bool batch, size_t query) {
  if (!batch) return status;
  return absl::Status(status.code(), absl::StrCat("queries[", query, "].", status.message()));
}

// The k nearest of every shard's answer (`parts`), as one node would answer; `missing` lists the
// shards that did not answer (allowed partial).
absl::Status Merge(const hier::v1::SearchRequest& query, std::vector<hier::v1::SearchResponse*> parts,
                   const std::vector<std::string>& missing, const std::string& version,
                   hier::v1::SearchResponse* response) {
  bool every_part_empty_gallery = true;
  bool some_part_answered = false;
  std::vector<hier::v1::Neighbour*> all;
  for (hier::v1::SearchResponse* part : parts) {
    if (part->shard_gap() == hier::v1::SHARD_GAP_NONE) some_part_answered = true;
    if (part->shard_gap() != hier::v1::SHARD_GAP_EMPTY) every_part_empty_gallery = false;
    for (hier::v1::Neighbour& neighbour : *part->mutable_neighbours()) all.push_back(&neighbour);
  }
  if (!parts.empty() && !some_part_answered) {
    return every_part_empty_gallery ? index::EmptyIndexError()
                                    : index::NoSuchLabelError(query.label());
  }
  const size_t keep = std::min<size_t>(all.size(), static_cast<size_t>(std::max(query.k(), 0)));
  std::partial_sort(all.begin(), all.begin() + keep, all.end(),
                    [](const hier::v1::Neighbour* a, const hier::v1::Neighbour* b) {
                      return index::Nearer({a->id(), a->distance()}, {b->id(), b->distance()});
                    });
  for (size_t i = 0; i < keep; ++i) response->add_neighbours()->Swap(all[i]);
  response->set_model_version(version);
  for (const std::string& shard : missing) response->add_missing_shards(shard);
  return absl::OkStatus();
}

}  // namespace

RoutedSearch::RoutedSearch(Topology* topology, ReplicaCalls* calls)
    : topology_(topology), calls_(calls) {}

absl::Status RoutedSearch::Answer(const CallerContext& caller,
                                  const std::vector<const hier::v1::SearchRequest*>& queries,
                                  bool batch, std::vector<hier::v1::SearchResponse>* responses) {
  for (int plan = 0; plan < kMaxPlans; ++plan) {
    const std::shared_ptr<const TopologyView> view =
        plan == 0 ? topology_->View() : topology_->Refresh();
    if (!view->version.has_value()) return absl::UnavailableError(view->WhyUnavailable());
    // A caller's pin wins (SearchBatch: one version for every query, as on one node).
    const bool pinned = !queries.front()->model_version().empty();
    const std::string version = pinned ? queries.front()->model_version() : *view->version;
    // A shard that moved to another version: the caller's pin is answered as one node would
    // (ABORTED), the router's own choice is made again on a fresh view.
    const auto replan = [pinned](const ShardCall& call) {
      return call.moved && !(pinned && !call.status.ok());
    };
    const int shards = view->shard_count;

    // First the points of queries by image or item id, each from its anchor shard.
    std::vector<int> anchor(queries.size(), -1);
    std::vector<ShardCall> first;
    for (size_t q = 0; q < queries.size(); ++q) {
      if (!NeedsPoint(*queries[q])) continue;
      anchor[q] = AnchorShard(*queries[q], shards, turn_++);
      ShardCall call;
      call.shard = anchor[q];
      call.request = *queries[q];
      call.request.set_as_shard(true);
      call.request.set_allow_partial(false);
      call.request.set_model_version(version);
      first.push_back(std::move(call));
    }
    calls_->Search(*view, version, caller, &first);
    bool moved = false;
    std::vector<std::optional<hier::v1::Vector>> points(queries.size());
    std::vector<std::vector<hier::v1::SearchResponse*>> parts(queries.size());
    for (size_t q = 0, c = 0; q < queries.size(); ++q) {
      if (anchor[q] < 0) continue;
      ShardCall& call = first[c++];
      moved = moved || replan(call);
      if (moved) continue;
      if (!call.status.ok()) return Prefixed(call.status, batch, q);
      points[q] = call.response.query_point();
      parts[q].push_back(&call.response);
    }
    if (moved) continue;

    // Then every other shard, by point.
    std::vector<ShardCall> rest;
    std::vector<size_t> query_of;
    for (size_t q = 0; q < queries.size(); ++q) {
      for (int shard = 0; shard < shards; ++shard) {
        if (shard == anchor[q]) continue;
        ShardCall call;
        call.shard = shard;
        call.request = *queries[q];
        if (points[q].has_value()) *call.request.mutable_vector() = *points[q];
        call.request.set_as_shard(true);
        call.request.set_allow_partial(false);
        call.request.set_model_version(version);
        rest.push_back(std::move(call));
        query_of.push_back(q);
      }
    }
    calls_->Search(*view, version, caller, &rest);
    std::vector<std::vector<std::string>> missing(queries.size());
    for (size_t c = 0; c < rest.size(); ++c) {
      ShardCall& call = rest[c];
      const size_t q = query_of[c];
      if (replan(call)) {
        moved = true;
      } else if (call.status.ok()) {
        parts[q].push_back(&call.response);
      } else if (call.unanswered && queries[q]->allow_partial()) {
        missing[q].push_back(view->ShardName(call.shard));
      } else {
        return Prefixed(call.status, batch, q);
      }
    }
    if (moved) continue;
    responses->assign(queries.size(), hier::v1::SearchResponse());
    for (size_t q = 0; q < queries.size(); ++q) {
      if (absl::Status merged =
              Merge(*queries[q], parts[q], missing[q], version, &(*responses)[q]);
          !merged.ok()) {
        return Prefixed(merged, batch, q);
      }
    }
    return absl::OkStatus();
  }
  return absl::UnavailableError(
      "the cluster's model version changed during the search, again and again; retry");
}

}  // namespace hier::server
