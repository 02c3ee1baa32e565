#include "server/router/replica_calls.h"

#include <algorithm>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "server/rpc/call_deadline.h"

namespace hier::server {
namespace {

using Clock = std::chrono::steady_clock;

// Time kept back from the caller's deadline to send the answer.
Clock::duration ReplyMargin(Clock::duration budget) {
  return std::min<Clock::duration>(budget / 10, std::chrono::milliseconds(50));
}

const char* CodeName(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::CANCELLED: return "CANCELLED";
    case grpc::StatusCode::UNKNOWN: return "UNKNOWN";
    case grpc::StatusCode::DEADLINE_EXCEEDED: return "DEADLINE_EXCEEDED";
    case grpc::StatusCode::ABORTED: return "ABORTED";
    case grpc::StatusCode::INTERNAL: return "INTERNAL";
    case grpc::StatusCode::UNAVAILABLE: return "UNAVAILABLE";
    default: return "OTHER";
  }
}

absl::Status FromGrpc(const grpc::Status& status) {
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()), status.error_message());
}

// This try's deadline: half the time left while another replica remains, else all of it.
Clock::time_point TryDeadline(Clock::time_point deadline, bool another_remains) {
  const Clock::time_point now = Clock::now();
  if (!another_remains || deadline <= now) return deadline;
  return now + (deadline - now) / 2;
}

// Counts down the calls of one round.
class Latch {
 public:
  explicit Latch(size_t count) : count_(count) {}
  void CountDown() {
    std::lock_guard<std::mutex> lock(mutex_);
    if (--count_ == 0) done_.notify_all();
  }
  void Wait() {
    std::unique_lock<std::mutex> lock(mutex_);
    done_.wait(lock, [this] { return count_ == 0; });
  }

 private:
  std::mutex mutex_;
  std::condition_variable done_;
  size_t count_;
};

}  // namespace

CallerContext CallerContext::From(const grpc::ServerContext& context) {
  CallerContext caller;
  const auto& metadata = context.client_metadata();
  if (const auto found = metadata.find("authorization"); found != metadata.end()) {
    caller.authorization.assign(found->second.data(), found->second.size());
  }
  const Clock::time_point deadline = CallDeadline(context);
  caller.deadline = deadline - ReplyMargin(deadline - Clock::now());
  return caller;
}

void CallerContext::Prepare(grpc::ClientContext* context, Clock::time_point try_deadline) const {
  if (!authorization.empty()) context->AddMetadata("authorization", authorization);
  context->set_deadline(std::chrono::system_clock::now() + (try_deadline - Clock::now()));
}

bool IsRetryable(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::UNAVAILABLE:
    case grpc::StatusCode::DEADLINE_EXCEEDED:
    case grpc::StatusCode::ABORTED:
    case grpc::StatusCode::INTERNAL:
    case grpc::StatusCode::UNKNOWN:
    case grpc::StatusCode::CANCELLED:
      return true;
    default:
      return false;
  }
}

ReplicaCalls::ReplicaCalls(Topology* topology, RouterMetrics* metrics)
    : topology_(topology), metrics_(metrics) {}

void ReplicaCalls::Search(const TopologyView& view, const std::string& version,
                          const CallerContext& caller, std::vector<ShardCall>* calls) {
  struct Progress {
    std::vector<const RouteMember*> replicas;
    size_t next = 0;
    std::vector<std::string> failures;
    bool done = false;
  };
  const Clock::time_point started = Clock::now();
  std::vector<Progress> progress(calls->size());
  for (size_t i = 0; i < calls->size(); ++i) {
    progress[i].replicas = view.Replicas((*calls)[i].shard, version, turn_++);
  }
  // One try per call still open, all at once; then the next round for those that failed.
  struct Try {
    size_t call = 0;
    const RouteMember* member = nullptr;
    grpc::ClientContext context;
    hier::v1::SearchResponse response;
    grpc::Status status;
  };
  for (;;) {
    std::vector<std::unique_ptr<Try>> round;
    for (size_t i = 0; i < calls->size(); ++i) {
      Progress& p = progress[i];
      if (p.done) continue;
      ShardCall& call = (*calls)[i];
      const std::string shard = view.ShardName(call.shard);
      if (p.next == p.replicas.size() || Clock::now() >= caller.deadline) {
        p.done = true;
        call.unanswered = true;
        call.status = absl::UnavailableError(
            p.replicas.empty()
                ? absl::StrCat("shard ", shard, ": no live replica serves model version \"",
                               version, "\"")
                : absl::StrCat("shard ", shard, ": no replica answered within the deadline (",
                               absl::StrJoin(p.failures, "; "), ")"));
        metrics_->ObserveShard(shard, std::chrono::duration<double>(Clock::now() - started).count());
        continue;
      }
      if (p.next > 0) metrics_->CountRetry(shard);
      auto attempt = std::make_unique<Try>();
      attempt->call = i;
      attempt->member = p.replicas[p.next++];
      caller.Prepare(&attempt->context,
                     TryDeadline(caller.deadline, p.next < p.replicas.size()));
      round.push_back(std::move(attempt));
    }
    if (round.empty()) return;
    Latch latch(round.size());
    for (std::unique_ptr<Try>& attempt : round) {
      Try* raw = attempt.get();
      raw->member->link->retrieval->async()->Search(
          &raw->context, &(*calls)[raw->call].request, &raw->response,
          [raw, &latch](grpc::Status status) {
            raw->status = std::move(status);
            latch.CountDown();
          });
    }
    latch.Wait();
    for (std::unique_ptr<Try>& attempt : round) {
      ShardCall& call = (*calls)[attempt->call];
      Progress& p = progress[attempt->call];
      const std::string shard = view.ShardName(call.shard);
      const grpc::StatusCode code = attempt->status.error_code();
      // ABORTED from a search pinned to `version`: the replica no longer serves it (a model
      // swap went on); not a failure of the replica, the search is planned again.
      if (code != grpc::StatusCode::ABORTED && !attempt->status.ok() && IsRetryable(code)) {
        p.failures.push_back(absl::StrCat(attempt->member->record.address, ": ", CodeName(code),
                                          ": ", attempt->status.error_message()));
        attempt->member->link->MarkFailed(kSuspectFor);
        metrics_->CountFailure(shard, CodeName(code));
        continue;
      }
      p.done = true;
      call.status = FromGrpc(attempt->status);
      if (attempt->status.ok()) {
        call.response = std::move(attempt->response);
        call.moved = call.response.model_version() != version;
      } else {
        call.moved = code == grpc::StatusCode::ABORTED;
      }
      metrics_->ObserveShard(shard, std::chrono::duration<double>(Clock::now() - started).count());
    }
  }
}

absl::Status ReplicaCalls::OnReplica(
    const CallerContext& caller, int shard, bool retry,
    const std::function<grpc::Status(ReplicaLink&, grpc::ClientContext*)>& send) {
  const std::shared_ptr<const TopologyView> view = topology_->View();
  std::vector<const RouteMember*> replicas;
  const uint64_t turn = turn_++;
  if (view->version.has_value()) {
    for (int s = 0; s < view->shard_count; ++s) {
      if (shard >= 0 && s != shard) continue;
      for (const RouteMember* member : view->Replicas(s, *view->version, turn)) {
        replicas.push_back(member);
      }
    }
    if (shard < 0 && !replicas.empty()) {
      std::rotate(replicas.begin(), replicas.begin() + turn % replicas.size(), replicas.end());
    }
  } else if (shard < 0) {
    // No version every shard serves (e.g. a swap under way): any member can take model and job
    // calls, which do not depend on the gallery.
    for (const RouteMember& member : view->members) replicas.push_back(&member);
  }
  if (replicas.empty()) {
    return absl::UnavailableError(
        shard >= 0 && view->version.has_value()
            ? absl::StrCat("shard ", view->ShardName(shard), ": no live replica is serving")
            : view->WhyUnavailable());
  }
  std::vector<std::string> failures;
  for (size_t i = 0; i < replicas.size(); ++i) {
    const bool another = retry && i + 1 < replicas.size();
    grpc::ClientContext context;
    caller.Prepare(&context, TryDeadline(caller.deadline, another));
    const grpc::Status status = send(*replicas[i]->link, &context);
    if (status.ok() || !retry || !IsRetryable(status.error_code())) return FromGrpc(status);
    failures.push_back(absl::StrCat(replicas[i]->record.address, ": ",
                                    CodeName(status.error_code()), ": ", status.error_message()));
    replicas[i]->link->MarkFailed(kSuspectFor);
    if (Clock::now() >= caller.deadline) break;
  }
  return absl::UnavailableError(
      absl::StrCat("no replica answered (", absl::StrJoin(failures, "; "), ")"));
}

}  // namespace hier::server
