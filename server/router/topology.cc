#include "server/router/topology.h"

#include <algorithm>
#include <cstdio>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace hier::server {
namespace {

int64_t SteadyNowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// The shard count most live members report (they agree unless a re-shard is half done).
int CommonShardCount(const std::vector<ClusterMember>& members) {
  std::map<int, int> votes;
  for (const ClusterMember& member : members) ++votes[member.shard.count];
  int best = 0;
  int best_votes = 0;
  for (const auto& [count, n] : votes) {
    if (n > best_votes) {
      best = count;
      best_votes = n;
    }
  }
  return best;
}

// Whether `member` answers searches pinned to `version`: its model's, or the previous one it
// keeps during a model swap.
bool Answers(const ClusterMember& member, const std::string& version) {
  return member.model_version == version ||
         (!member.previous_version.empty() && member.previous_version == version);
}

// The shards with a member answering for each version.
std::map<std::string, std::set<int>> ShardsByVersion(const std::vector<RouteMember>& members) {
  std::map<std::string, std::set<int>> shards_of;
  for (const RouteMember& member : members) {
    shards_of[member.record.model_version].insert(member.record.shard.index);
    if (!member.record.previous_version.empty()) {
      shards_of[member.record.previous_version].insert(member.record.shard.index);
    }
  }
  return shards_of;
}

// The version to route: the serving record's when every shard answers for it; else one every
// shard answers for (the old one, during a swap); else the record's or the most widely held, so
// that searches allowed to be partial still have one.
std::optional<std::string> RoutedVersion(const std::vector<RouteMember>& members, int shards,
                                         const std::string& recorded) {
  const std::map<std::string, std::set<int>> shards_of = ShardsByVersion(members);
  auto covers = [&](const std::string& version) {
    const auto found = shards_of.find(version);
    return found != shards_of.end() && static_cast<int>(found->second.size()) == shards;
  };
  if (covers(recorded)) return recorded;
  for (const auto& [version, held] : shards_of) {
    if (covers(version)) return version;
  }
  if (shards_of.count(recorded) > 0) return recorded;
  std::optional<std::string> widest;
  size_t widest_shards = 0;
  for (const auto& [version, held] : shards_of) {
    if (held.size() > widest_shards) {
      widest = version;
      widest_shards = held.size();
    }
  }
  return widest;
}

}  // namespace

void ReplicaLink::MarkFailed(std::chrono::milliseconds for_how_long) {
  suspect_until_ns.store(
      SteadyNowNs() + std::chrono::duration_cast<std::chrono::nanoseconds>(for_how_long).count());
}

bool ReplicaLink::Suspected() const { return suspect_until_ns.load() > SteadyNowNs(); }

std::vector<const RouteMember*> TopologyView::Replicas(int shard, const std::string& version,
                                                       uint64_t turn) const {
  std::vector<const RouteMember*> healthy;
  std::vector<const RouteMember*> suspected;
  for (const RouteMember& member : members) {
    if (member.record.shard.index != shard || !Answers(member.record, version)) continue;
    (member.link->Suspected() ? suspected : healthy).push_back(&member);
  }
  for (std::vector<const RouteMember*>* group : {&healthy, &suspected}) {
    if (!group->empty()) {
      std::rotate(group->begin(), group->begin() + turn % group->size(), group->end());
    }
  }
  healthy.insert(healthy.end(), suspected.begin(), suspected.end());
  return healthy;
}

std::string TopologyView::ShardName(int shard) const {
  return absl::StrCat(shard, "/", shard_count);
}

int TopologyView::HealthyShards() const {
  if (!version.has_value()) return 0;
  std::set<int> healthy;
  for (const RouteMember& member : members) {
    if (Answers(member.record, *version)) healthy.insert(member.record.shard.index);
  }
  return static_cast<int>(healthy.size());
}

std::string TopologyView::WhyUnavailable() const {
  if (!problem.empty()) return absl::StrCat("the cluster's membership is unreadable: ", problem);
  if (shard_count == 0) return "no replica is serving (none announced itself in the store)";
  std::set<int> held;
  for (const RouteMember& member : members) held.insert(member.record.shard.index);
  std::vector<std::string> missing;
  for (int shard = 0; shard < shard_count; ++shard) {
    if (held.count(shard) == 0) missing.push_back(absl::StrCat("shard ", ShardName(shard)));
  }
  return absl::StrCat(absl::StrJoin(missing, ", "), ": no live replica is serving");
}

Topology::Topology(std::unique_ptr<ClusterRecord> record, TopologyOptions options,
                   std::function<void(const TopologyView&)> on_refresh)
    : record_(std::move(record)),
      options_(options),
      on_refresh_(std::move(on_refresh)),
      view_(std::make_shared<TopologyView>()) {
  Refresh();
  thread_ = std::thread([this] { Run(); });
}

Topology::~Topology() {
  {
    std::lock_guard<std::mutex> lock(stop_mutex_);
    stopping_ = true;
  }
  stop_cv_.notify_all();
  thread_.join();
}

std::shared_ptr<const TopologyView> Topology::View() const {
  std::lock_guard<std::mutex> lock(view_mutex_);
  return view_;
}

void Topology::Run() {
  std::unique_lock<std::mutex> lock(stop_mutex_);
  while (!stop_cv_.wait_for(lock, options_.refresh, [this] { return stopping_; })) {
    lock.unlock();
    Refresh();
    lock.lock();
  }
}

std::shared_ptr<ReplicaLink> Topology::LinkFor(const std::string& address) {
  std::shared_ptr<ReplicaLink>& link = links_[address];
  if (link != nullptr) return link;
  link = std::make_shared<ReplicaLink>();
  link->address = address;
  grpc::ChannelArguments arguments;
  arguments.SetMaxReceiveMessageSize(static_cast<int>(options_.max_message_bytes));
  arguments.SetMaxSendMessageSize(static_cast<int>(options_.max_message_bytes));
  link->channel =
      grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), arguments);
  link->retrieval = hier::v1::Retrieval::NewStub(link->channel);
  link->models = hier::v1::Models::NewStub(link->channel);
  link->training = hier::v1::Training::NewStub(link->channel);
  link->hierarchy = hier::v1::Hierarchy::NewStub(link->channel);
  return link;
}

std::shared_ptr<const TopologyView> Topology::Refresh() {
  std::lock_guard<std::mutex> refresh_lock(refresh_mutex_);
  auto view = std::make_shared<TopologyView>();
  absl::StatusOr<std::vector<ClusterMember>> members = record_->Members();
  absl::StatusOr<std::optional<ClusterServing>> serving = record_->ReadServing();
  if (!members.ok() || !serving.ok()) {
    // Keep routing to the members known last: replicas answer from memory through an outage.
    const std::shared_ptr<const TopologyView> last = View();
    *view = *last;
    view->problem = std::string((members.ok() ? serving.status() : members.status()).message());
  } else {
    std::vector<ClusterMember> live;
    for (ClusterMember& member : *members) {
      if (member.heartbeat_age_seconds * 1000 < options_.member_timeout.count()) {
        live.push_back(std::move(member));
      }
    }
    view->shard_count = CommonShardCount(live);
    std::map<std::string, std::shared_ptr<ReplicaLink>> kept;
    for (ClusterMember& member : live) {
      if (member.shard.count != view->shard_count || !member.serving) continue;
      std::shared_ptr<ReplicaLink> link = LinkFor(member.address);
      kept[member.address] = link;
      view->members.push_back({std::move(member), std::move(link)});
    }
    links_ = std::move(kept);
    view->version = RoutedVersion(view->members, view->shard_count,
                                  serving->has_value() ? (*serving)->model_version : "");
  }
  {
    std::lock_guard<std::mutex> lock(view_mutex_);
    view_ = view;
  }
  if (on_refresh_) on_refresh_(*view);
  return view;
}

}  // namespace hier::server
