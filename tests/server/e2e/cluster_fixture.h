// The cluster end-to-end fixture: a fresh database on the throwaway PostgreSQL server, hier-server
// processes on loopback as its replicas (or routers), their stubs, and client load that records
// what was acknowledged.
#pragma once

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <pqxx/pqxx>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "hier/v1/models.grpc.pb.h"
#include "hier/v1/retrieval.grpc.pb.h"
#include "hier/v1/training.grpc.pb.h"
#include "tests/server/e2e/server_fixture.h"
#include "tests/support/postgres_database_test.h"

namespace hier::testing {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using grpc::health::v1::HealthCheckResponse;

inline constexpr int kDim = 8;

// A point well inside the ball (c = 0.1, radius about 3.16), fixed by `id`.
inline std::vector<float> PointFor(int64_t id) {
  std::mt19937 rng(static_cast<uint32_t>(id) * 2654435761u + 1u);
  std::normal_distribution<float> normal(0.0f, 0.5f);
  std::vector<float> point(kDim);
  for (float& x : point) x = normal(rng);
  return point;
}

inline hier::v1::Vector VectorFor(int64_t id) {
  hier::v1::Vector vector;
  for (const float x : PointFor(id)) vector.add_values(x);
  return vector;
}

// A deadline and the token on a fresh context.
inline void Prepare(grpc::ClientContext* context, std::chrono::milliseconds timeout) {
  context->set_deadline(std::chrono::system_clock::now() + timeout);
  context->AddMetadata("authorization", std::string("Bearer ") + kToken);
}

// The pid of a live hier-train whose --run-dir is `run_dir`; 0 when there is none.
inline pid_t TrainerOf(const std::string& run_dir) {
  for (const auto& entry : fs::directory_iterator("/proc")) {
    const std::string name = entry.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    const std::string cmdline = ReadText(entry.path().string() + "/cmdline");
    if (cmdline.find("hier-train") != std::string::npos &&
        cmdline.find(std::string("--run-dir") + '\0' + run_dir + '\0') != std::string::npos &&
        ReadText(entry.path().string() + "/stat").find(") Z ") == std::string::npos) {
      return static_cast<pid_t>(std::stol(name));
    }
  }
  return 0;
}

// One hier-server process of a cluster (a replica, or a router) and its stubs.
struct Replica {
  std::string name;
  std::vector<std::string> args;
  std::vector<std::string> launcher;  // runs it elsewhere (a network namespace); empty: directly
  std::string host = "127.0.0.1";     // where the test reaches it
  RunningServer server;
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<hier::v1::Retrieval::Stub> retrieval;
  std::unique_ptr<grpc::health::v1::Health::Stub> health;
  std::unique_ptr<hier::v1::Models::Stub> models;
  std::unique_ptr<hier::v1::Training::Stub> training;

  grpc::Status Add(const std::vector<int64_t>& ids,
                   std::chrono::milliseconds timeout = std::chrono::seconds(10)) const {
    hier::v1::AddItemsRequest request;
    for (const int64_t id : ids) {
      hier::v1::NewItem* item = request.add_items();
      item->set_id(id);
      item->set_key(absl::StrCat("item-", id));
      item->set_label(absl::StrCat("label-", id % 5));
      *item->mutable_vector() = VectorFor(id);
    }
    grpc::ClientContext context;
    Prepare(&context, timeout);
    hier::v1::AddItemsResponse response;
    return retrieval->AddItems(&context, request, &response);
  }

  // Adds images [first, first + count) as items first + 1 ... (key image-<i>, their labels).
  grpc::Status AddImages(const LabelledImages& images, int first, int count) const {
    hier::v1::AddItemsRequest request;
    for (int i = first; i < first + count; ++i) {
      hier::v1::NewItem* item = request.add_items();
      item->set_id(i + 1);
      item->set_key(absl::StrCat("image-", i));
      item->set_label(images.labels[i]);
      item->set_image(images.png[i]);
    }
    grpc::ClientContext context;
    Prepare(&context, std::chrono::seconds(30));
    hier::v1::AddItemsResponse response;
    return retrieval->AddItems(&context, request, &response);
  }

  grpc::Status Delete(const std::vector<int64_t>& ids) const {
    hier::v1::DeleteItemsRequest request;
    for (const int64_t id : ids) request.add_ids(id);
    grpc::ClientContext context;
    Prepare(&context, std::chrono::seconds(10));
    hier::v1::DeleteItemsResponse response;
    return retrieval->DeleteItems(&context, request, &response);
  }

  grpc::Status Search(const hier::v1::Vector& query, int k, hier::v1::SearchResponse* response,
                      const std::string& label = "") const {
    hier::v1::SearchRequest request;
    *request.mutable_vector() = query;
    request.set_k(k);
    request.set_label(label);
    grpc::ClientContext context;
    Prepare(&context, std::chrono::seconds(5));
    return retrieval->Search(&context, request, response);
  }

  // Whether item `id` is in this replica's index: its own vector finds it first.
  bool Holds(int64_t id) const {
    hier::v1::SearchResponse response;
    return Search(VectorFor(id), 1, &response).ok() && response.neighbours_size() == 1 &&
           response.neighbours(0).id() == id;
  }

  std::string ModelVersion() const {
    grpc::ClientContext context;
    Prepare(&context, std::chrono::seconds(5));
    hier::v1::StatsResponse response;
    return retrieval->Stats(&context, hier::v1::StatsRequest(), &response).ok()
               ? response.model_version()
               : "";
  }

  int64_t Items() const {
    grpc::ClientContext context;
    Prepare(&context, std::chrono::seconds(5));
    hier::v1::StatsResponse response;
    return retrieval->Stats(&context, hier::v1::StatsRequest(), &response).ok() ? response.items()
                                                                                : -1;
  }

  grpc::Status StartJob(const hier::v1::StartTrainingRequest& request, hier::v1::Job* job) const {
    grpc::ClientContext context;
    Prepare(&context, std::chrono::seconds(30));
    return training->StartTraining(&context, request, job);
  }

  absl::StatusOr<hier::v1::Job> Job(const std::string& id) const {
    grpc::ClientContext context;
    Prepare(&context, std::chrono::seconds(10));
    hier::v1::GetJobRequest request;
    request.set_id(id);
    hier::v1::Job job;
    const grpc::Status status = training->GetJob(&context, request, &job);
    if (!status.ok()) {
      return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                          status.error_message());
    }
    return job;
  }

  // Polls GetJob until the job is in `state` (true) or `timeout` passed (false).
  bool WaitForJob(const std::string& id, hier::v1::JobState state,
                  std::chrono::seconds timeout) const {
    const Clock::time_point until = Clock::now() + timeout;
    while (Clock::now() < until) {
      const absl::StatusOr<hier::v1::Job> job = Job(id);
      if (job.ok() && job->state() == state) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return false;
  }

  std::optional<HealthCheckResponse::ServingStatus> Health() const {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
    HealthCheckResponse response;
    if (!health->Check(&context, grpc::health::v1::HealthCheckRequest(), &response).ok()) {
      return std::nullopt;
    }
    return response.status();
  }
};

// Acknowledged writes, as the clients saw them.
class Ledger {
 public:
  void Added(int64_t id) {
    std::lock_guard<std::mutex> lock(mutex_);
    ids_.insert(id);
  }
  std::set<int64_t> ids() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return ids_;
  }

 private:
  mutable std::mutex mutex_;
  std::set<int64_t> ids_;
};

// Searches by image through some nodes until stopped, one thread per node, each for gallery
// images: item i + 1 holds images.png[i] for i < `items`. Such an image finds itself at distance
// ~0 only when the query's embedding and the gallery come from one model, so an answer that mixes
// models (during a swap) counts as mixed.
class ImageSearchWatch {
 public:
  ImageSearchWatch(const LabelledImages& images, int items, const std::vector<const Replica*>& nodes)
      : images_(images) {
    for (const Replica* node : nodes) {
      threads_.emplace_back([this, node, items] {
        for (int n = 0; !stop_; ++n) {
          const int i = n % items;
          hier::v1::SearchRequest search;
          search.set_image(images_.png[i]);
          search.set_k(1);
          grpc::ClientContext context;
          Prepare(&context, std::chrono::seconds(10));
          hier::v1::SearchResponse found;
          const grpc::Status status = node->retrieval->Search(&context, search, &found);
          std::lock_guard<std::mutex> lock(mutex_);
          if (!status.ok() || found.neighbours_size() != 1) {
            ++failed_;
            last_error_ = absl::StrCat(node->name, ": ", status.error_message());
            continue;
          }
          ++served_;
          versions_.insert(found.model_version());
          mixed_ += found.neighbours(0).id() != i + 1 || found.neighbours(0).distance() > 1e-3;
        }
      });
    }
  }
  ~ImageSearchWatch() { Stop(); }

  // Stops the searches, then: no failure, none mixed, and answers from exactly `versions`.
  void ExpectCleanAcross(const std::set<std::string>& versions) {
    Stop();
    std::lock_guard<std::mutex> lock(mutex_);
    EXPECT_EQ(failed_, 0) << last_error_;
    EXPECT_EQ(mixed_, 0) << "of " << served_;
    EXPECT_EQ(versions_, versions);
  }

 private:
  void Stop() {
    stop_ = true;
    for (std::thread& thread : threads_) {
      if (thread.joinable()) thread.join();
    }
  }

  const LabelledImages& images_;
  std::atomic<bool> stop_{false};
  std::vector<std::thread> threads_;
  std::mutex mutex_;
  int64_t failed_ = 0, mixed_ = 0, served_ = 0;  // guarded by mutex_
  std::set<std::string> versions_;               // guarded by mutex_
  std::string last_error_;                       // guarded by mutex_
};

// Clients that write through some replicas and search through others until stopped; every call
// is bounded by a deadline and the load by Stop().
class Load {
 public:
  // Writers add fresh ids (first_id + n * stride) through `writers`; searchers query `searchers`.
  Load(std::vector<const Replica*> writers, std::vector<const Replica*> searchers, Ledger* ledger)
      : ledger_(ledger) {
    for (size_t w = 0; w < writers.size(); ++w) {
      threads_.emplace_back([this, replica = writers[w], w, stride = writers.size()] {
        for (int64_t n = 0; !stop_; ++n) {
          const int64_t first = 1'000'000 + (n * static_cast<int64_t>(stride) + w) * 2;
          const std::vector<int64_t> ids = {first, first + 1};
          const grpc::Status status = replica->Add(ids);
          {
            std::lock_guard<std::mutex> lock(mutex_);
            if (status.ok()) {
              for (const int64_t id : ids) ledger_->Added(id);
              ++writes_ok_;
            } else {
              ++write_failures_[replica->name][status.error_code()];
              last_write_error_ = status.error_message();
            }
          }
          // A steady write rate, so checking every acknowledged item afterwards stays quick.
          std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
      });
    }
    for (const Replica* replica : searchers) {
      threads_.emplace_back([this, replica] {
        for (int64_t n = 0; !stop_; ++n) {
          hier::v1::SearchResponse response;
          const grpc::Status status = replica->Search(VectorFor(n % 500), 10, &response);
          std::lock_guard<std::mutex> lock(mutex_);
          if (status.ok()) {
            ++searches_ok_;
          } else {
            ++search_failures_;
            last_search_error_ = absl::StrCat(replica->name, ": ", status.error_message());
          }
        }
      });
    }
  }
  ~Load() { Stop(); }

  void Stop() {
    stop_ = true;
    for (std::thread& thread : threads_) {
      if (thread.joinable()) thread.join();
    }
  }

  std::mutex mutex_;
  int64_t writes_ok_ = 0;
  int64_t searches_ok_ = 0;
  int64_t search_failures_ = 0;
  std::string last_search_error_;
  std::map<std::string, std::map<grpc::StatusCode, int64_t>> write_failures_;
  std::string last_write_error_;

 private:
  Ledger* const ledger_;
  std::atomic<bool> stop_{false};
  std::vector<std::thread> threads_;
};

class ClusterTest : public PostgresDatabaseTest {
 protected:
  void SetUp() override {
    PostgresDatabaseTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    std::string pattern = (fs::temp_directory_path() / "hier-cluster-XXXXXX").string();
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    scratch_ = pattern;
  }

  void TearDown() override {
    replicas_.clear();
    if (!scratch_.empty()) fs::remove_all(scratch_);
  }

  // The arguments of a replica of the test's database: vectors only (--dim), or `model` served
  // from the shared models.
  std::vector<std::string> ReplicaArgs(const std::string& name,
                                       const std::string& model = "") const {
    std::vector<std::string> args = {"--store", server_->Uri(database_), "--state-dir",
                                     scratch_ + "/" + name, "--listen", "127.0.0.1:0",
                                     "--metrics-listen", "127.0.0.1:0", "--token", kToken};
    if (model.empty()) {
      args.insert(args.end(), {"--dim", absl::StrCat(kDim), "--runs-dir", scratch_ + "/runs"});
    } else {
      const std::string models = ServerE2eTest::ModelsRoot();
      args.insert(args.end(), {"--model", models + "/" + model, "--runs-dir", models});
    }
    return args;
  }

  // Starts a replica and waits until it listens (not until it serves: WaitForHealth).
  Replica* Start(const std::string& name, const std::string& model = "",
                 const std::vector<std::string>& extra = {}) {
    auto replica = std::make_unique<Replica>();
    replica->name = name;
    replica->args = ReplicaArgs(name, model);
    replica->args.insert(replica->args.end(), extra.begin(), extra.end());
    return Add(std::move(replica));
  }

  // Starts `replica` (its arguments set) and keeps it.
  Replica* Add(std::unique_ptr<Replica> replica) {
    Launch(replica.get());
    replicas_.push_back(std::move(replica));
    return replicas_.back().get();
  }

  // Starts replicas by these names (vectors only, or serving `model`) and waits until each
  // serves; a test failure otherwise (check HasFailure()).
  std::vector<Replica*> StartServing(const std::vector<std::string>& names,
                                     const std::string& model = "") {
    std::vector<Replica*> started;
    for (const std::string& name : names) {
      started.push_back(Start(name, model));
      if (HasFatalFailure()) return started;
    }
    for (const Replica* replica : started) {
      if (!WaitForHealth(*replica, HealthCheckResponse::SERVING)) {
        ADD_FAILURE() << replica->name << " never answered SERVING";
      }
    }
    return started;
  }

  // Starts `replica` again with its arguments (after it was killed).
  void Launch(Replica* replica) {
    StartHierServer(replica->args, scratch_ + "/" + replica->name, &replica->server,
                    replica->launcher);
    if (HasFatalFailure()) return;
    replica->channel =
        grpc::CreateChannel(absl::StrCat(replica->host, ":", replica->server.grpc_port),
                            grpc::InsecureChannelCredentials());
    replica->retrieval = hier::v1::Retrieval::NewStub(replica->channel);
    replica->health = grpc::health::v1::Health::NewStub(replica->channel);
    replica->models = hier::v1::Models::NewStub(replica->channel);
    replica->training = hier::v1::Training::NewStub(replica->channel);
  }

  // Waits up to `timeout` for `replica`'s health to be `wanted`.
  static bool WaitForHealth(const Replica& replica, HealthCheckResponse::ServingStatus wanted,
                            std::chrono::milliseconds timeout = std::chrono::seconds(30)) {
    const Clock::time_point until = Clock::now() + timeout;
    while (Clock::now() < until) {
      if (replica.Health() == wanted) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
  }

  // Waits up to `timeout` until `replica` holds `items` items; returns how long it took.
  static std::optional<std::chrono::milliseconds> WaitForItems(
      const Replica& replica, int64_t items,
      std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    const Clock::time_point start = Clock::now();
    while (Clock::now() - start < timeout) {
      if (replica.Items() == items) {
        return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return std::nullopt;
  }

  // Live items in the database, read directly.
  int64_t LiveItemsInStore() const {
    pqxx::connection connection(server_->Uri(database_));
    pqxx::nontransaction tx(connection);
    return tx.exec1("SELECT count(*) FROM hier_items WHERE NOT deleted")[0].as<int64_t>();
  }

  // Fails the test for every acknowledged id `replica` does not hold.
  static void ExpectHoldsAll(const Replica& replica, const std::set<int64_t>& ids) {
    int64_t missing = 0;
    for (const int64_t id : ids) missing += !replica.Holds(id);
    EXPECT_EQ(missing, 0) << replica.name << " misses " << missing << " of " << ids.size()
                          << " acknowledged items";
  }

  std::string scratch_;
  std::vector<std::unique_ptr<Replica>> replicas_;
};

}  // namespace hier::testing
