// hier-server replicas on one PostgreSQL store, as processes on loopback: they serve one gallery,
// lose no acknowledged write when a replica is killed or the database goes away, and refuse to
// start on a store they must not touch. PostgreSQL is the real server (tests/support).
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
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
#include "tests/server/e2e/cluster_fixture.h"
#include "tests/server/e2e/server_fixture.h"
#include "tests/support/network_namespace.h"
#include "tests/support/postgres_database_test.h"
#include "tests/support/tcp_forwarder.h"

namespace hier::testing {
namespace {

// The lag bound the tests hold replicas to (the follower polls every 0.5 s besides LISTEN).
constexpr std::chrono::seconds kLagBound(5);

TEST_F(ClusterTest, ThreeReplicasServeOneGalleryWithReadYourWrites) {
  const std::vector<Replica*> replicas = StartServing({"a", "b", "c"});
  ASSERT_FALSE(HasFailure());
  Replica *a = replicas[0], *b = replicas[1], *c = replicas[2];

  std::vector<int64_t> ids;
  for (int64_t id = 1; id <= 300; ++id) ids.push_back(id);
  for (size_t begin = 0; begin < ids.size(); begin += 100) {
    const std::vector<int64_t> batch(ids.begin() + begin, ids.begin() + begin + 100);
    const grpc::Status added = a->Add(batch);
    ASSERT_TRUE(added.ok()) << added.error_message();
    // Read-your-writes: the replica that acknowledged the write finds it at once.
    EXPECT_TRUE(a->Holds(batch.back()));
  }
  std::vector<int64_t> deleted;
  for (int64_t id = 1; id <= 300; id += 15) deleted.push_back(id);
  const grpc::Status removed = b->Delete(deleted);
  ASSERT_TRUE(removed.ok()) << removed.error_message();
  EXPECT_FALSE(b->Holds(deleted.front()));

  const int64_t live = 300 - static_cast<int64_t>(deleted.size());
  for (const Replica* replica : {a, b, c}) {
    const std::optional<std::chrono::milliseconds> took = WaitForItems(*replica, live, kLagBound);
    ASSERT_TRUE(took.has_value()) << replica->name << " holds " << replica->Items();
  }
  // Identical answers (ids and distances) from every replica, with and without a label filter.
  for (int64_t q = 0; q < 40; ++q) {
    const hier::v1::Vector query = VectorFor(10'000 + q);
    const std::string label = q % 2 == 0 ? "" : absl::StrCat("label-", q % 5);
    hier::v1::SearchResponse expected;
    ASSERT_TRUE(a->Search(query, 10, &expected, label).ok());
    ASSERT_EQ(expected.neighbours_size(), 10);
    for (const Replica* replica : {b, c}) {
      hier::v1::SearchResponse got;
      ASSERT_TRUE(replica->Search(query, 10, &got, label).ok());
      ASSERT_EQ(got.neighbours_size(), expected.neighbours_size());
      for (int i = 0; i < got.neighbours_size(); ++i) {
        EXPECT_EQ(got.neighbours(i).id(), expected.neighbours(i).id()) << replica->name;
        EXPECT_EQ(got.neighbours(i).distance(), expected.neighbours(i).distance());
      }
    }
  }
  for (const int64_t id : deleted) EXPECT_FALSE(c->Holds(id)) << id;
  // The metrics say the replicas caught up.
  const std::optional<HttpResponse> metrics = HttpGet(c->server.metrics_port, "/metrics");
  ASSERT_TRUE(metrics.has_value());
  EXPECT_EQ(SeriesValue(metrics->body, "hier_replication_caught_up"), 1.0);
  EXPECT_EQ(SeriesValue(metrics->body, "hier_replication_changes_behind"), 0.0);
  EXPECT_EQ(SeriesValue(metrics->body, "hier_store_reachable"), 1.0);
}

TEST_F(ClusterTest, AReplicaKilledUnderLoadLosesNoAcknowledgedWrite) {
  const std::vector<Replica*> replicas = StartServing({"a", "b", "c"});
  ASSERT_FALSE(HasFailure());
  Replica *a = replicas[0], *b = replicas[1], *c = replicas[2];
  ASSERT_TRUE(a->Add({1, 2, 3}).ok());
  // Searching an empty index fails: the load starts once every replica holds the first items.
  for (const Replica* replica : {a, b, c}) {
    ASSERT_TRUE(WaitForItems(*replica, 3, kLagBound).has_value()) << replica->name;
  }
  Ledger ledger;
  {
    // Writes through all three, searches through the two that stay.
    Load load({a, b, c}, {a, b}, &ledger);
    std::this_thread::sleep_for(std::chrono::seconds(2));
    c->server.process->Signal(SIGKILL);
    ASSERT_TRUE(c->server.process->Wait(std::chrono::seconds(10)).has_value());
    std::this_thread::sleep_for(std::chrono::seconds(2));
    Launch(c);
    ASSERT_FALSE(HasFatalFailure());
    EXPECT_TRUE(WaitForHealth(*c, HealthCheckResponse::SERVING));
    std::this_thread::sleep_for(std::chrono::seconds(1));
    load.Stop();
    EXPECT_EQ(load.search_failures_, 0) << load.last_search_error_;
    EXPECT_GT(load.searches_ok_, 0);
    EXPECT_GT(load.writes_ok_, 0);
    EXPECT_TRUE(load.write_failures_["a"].empty()) << load.last_write_error_;
    EXPECT_TRUE(load.write_failures_["b"].empty()) << load.last_write_error_;
  }
  std::set<int64_t> acknowledged = ledger.ids();
  acknowledged.insert({1, 2, 3});
  // Every replica converges on what the database holds, which includes every acknowledged write.
  const int64_t stored = LiveItemsInStore();
  for (const Replica* replica : {a, b, c}) {
    ASSERT_TRUE(WaitForHealth(*replica, HealthCheckResponse::SERVING)) << replica->name;
    EXPECT_TRUE(WaitForItems(*replica, stored, kLagBound)) << replica->name;
    ExpectHoldsAll(*replica, acknowledged);
  }
}

TEST_F(ClusterTest, ADatabaseOutageFailsWritesServesSearchesAndLosesNothing) {
  const std::vector<Replica*> replicas = StartServing({"a", "b"});
  ASSERT_FALSE(HasFailure());
  Replica *a = replicas[0], *b = replicas[1];
  ASSERT_TRUE(a->Add({1, 2, 3}).ok());
  for (const Replica* replica : {a, b}) {
    ASSERT_TRUE(WaitForItems(*replica, 3, kLagBound).has_value()) << replica->name;
  }
  Ledger ledger;
  {
    Load load({a, b}, {a, b}, &ledger);
    std::this_thread::sleep_for(std::chrono::seconds(1));
    ASSERT_TRUE(server_->Stop().ok());
    // Replicas that lost the store say so, and keep answering searches from memory.
    EXPECT_TRUE(WaitForHealth(*a, HealthCheckResponse::NOT_SERVING, std::chrono::seconds(10)));
    std::this_thread::sleep_for(std::chrono::seconds(2));
    // What a result shows comes from the replica's memory, not from the missing store.
    hier::v1::SearchResponse found;
    ASSERT_TRUE(b->Search(VectorFor(2), 1, &found).ok());
    ASSERT_EQ(found.neighbours_size(), 1);
    EXPECT_EQ(found.neighbours(0).key(), "item-2");
    EXPECT_EQ(found.neighbours(0).label(), "label-2");
    const grpc::Status refused = a->Add({42});
    EXPECT_EQ(refused.error_code(), grpc::StatusCode::UNAVAILABLE) << refused.error_message();
    EXPECT_NE(refused.error_message().find("writing items"), std::string::npos)
        << refused.error_message();
    EXPECT_EQ(refused.error_message().find(server_->password()), std::string::npos);
    ASSERT_TRUE(server_->Start().ok());
    for (const Replica* replica : {a, b}) {
      EXPECT_TRUE(WaitForHealth(*replica, HealthCheckResponse::SERVING)) << replica->name;
    }
    std::this_thread::sleep_for(std::chrono::seconds(1));
    load.Stop();
    EXPECT_EQ(load.search_failures_, 0) << load.last_search_error_;
    // Writes failed only as UNAVAILABLE, and only while the store was away.
    for (const auto& [replica, failures] : load.write_failures_) {
      for (const auto& [code, count] : failures) {
        EXPECT_EQ(code, grpc::StatusCode::UNAVAILABLE) << replica << ": " << load.last_write_error_;
      }
    }
    EXPECT_FALSE(load.write_failures_.empty()) << "no write met the outage";
  }
  std::set<int64_t> acknowledged = ledger.ids();
  acknowledged.insert({1, 2, 3});
  // Both converge on what the database holds, which includes every acknowledged write.
  const int64_t stored = LiveItemsInStore();
  for (const Replica* replica : {a, b}) {
    EXPECT_TRUE(WaitForItems(*replica, stored, kLagBound)) << replica->name << " holds "
                                                           << replica->Items() << " of " << stored;
  }
  ExpectHoldsAll(*a, acknowledged);
  ExpectHoldsAll(*b, acknowledged);
  // A write after the outage reaches both.
  ASSERT_TRUE(b->Add({7}).ok());
  EXPECT_TRUE(a->Holds(7) || WaitForItems(*a, b->Items(), kLagBound).has_value());
}

TEST_F(ClusterTest, ReplicasShareImagesAndTheirModel) {
  if (!ServerE2eTest::HaveFashionMnist()) GTEST_SKIP() << "Fashion-MNIST is not installed";
  const std::vector<Replica*> replicas = StartServing({"a", "b"}, "run");
  ASSERT_FALSE(HasFailure());
  Replica *a = replicas[0], *b = replicas[1];
  // Images added through A are stored in the database: B can read them back and finds them.
  const LabelledImages images = TestImages(12);
  const grpc::Status added = a->AddImages(images, 0, 12);
  ASSERT_TRUE(added.ok()) << added.error_message();
  ASSERT_TRUE(WaitForItems(*b, 12, kLagBound).has_value());
  hier::v1::SearchRequest search;
  search.set_image(images.png[3]);
  search.set_k(1);
  grpc::ClientContext context;
  Prepare(&context, std::chrono::seconds(30));
  hier::v1::SearchResponse found;
  const grpc::Status searched = b->retrieval->Search(&context, search, &found);
  ASSERT_TRUE(searched.ok()) << searched.error_message();
  ASSERT_EQ(found.neighbours_size(), 1);
  EXPECT_EQ(found.neighbours(0).id(), 4);
  EXPECT_EQ(found.model_version(), "run/best");

  // A replica started with another --model serves the cluster's model: no two models mix.
  Replica* c = Start("c", "run2");
  ASSERT_FALSE(HasFatalFailure());
  ASSERT_TRUE(WaitForHealth(*c, HealthCheckResponse::SERVING));
  EXPECT_EQ(c->ModelVersion(), "run/best");
  EXPECT_NE(ReadText(scratch_ + "/c.log").find("the cluster serves"), std::string::npos)
      << ReadText(scratch_ + "/c.log");
}

TEST_F(ClusterTest, AModelSwapThroughOneReplicaSwitchesEveryReplicaWithoutMixingModels) {
  if (!ServerE2eTest::HaveFashionMnist()) GTEST_SKIP() << "Fashion-MNIST is not installed";
  const std::vector<Replica*> replicas = StartServing({"a", "b"}, "run");
  ASSERT_FALSE(HasFailure());
  Replica *a = replicas[0], *b = replicas[1];
  const LabelledImages images = TestImages(40);
  const grpc::Status added = a->AddImages(images, 0, 30);
  ASSERT_TRUE(added.ok()) << added.error_message();
  ASSERT_TRUE(WaitForItems(*b, 30, kLagBound).has_value());

  // Searches through both replicas while A swaps models for the cluster.
  ImageSearchWatch watch(images, 30, {a, b});
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  ASSERT_TRUE(fs::exists(scratch_ + "/b/galleries/replica"));
  hier::v1::LoadModelRequest load;
  load.set_version("run2");
  load.set_wait(true);
  grpc::ClientContext load_context;
  Prepare(&load_context, std::chrono::seconds(120));
  hier::v1::LoadModelResponse loaded;
  const grpc::Status swapped = a->models->LoadModel(&load_context, load, &loaded);
  EXPECT_TRUE(swapped.ok()) << swapped.error_message();
  EXPECT_TRUE(loaded.complete());
  // B follows within seconds, building the new gallery beside the old one first.
  const Clock::time_point until = Clock::now() + std::chrono::seconds(60);
  while (b->ModelVersion() != "run2/best" && Clock::now() < until) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(b->ModelVersion(), "run2/best");
  // B keeps the new gallery's snapshot folder, not the old one's.
  EXPECT_FALSE(fs::exists(scratch_ + "/b/galleries/replica"));
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  watch.ExpectCleanAcross({"run/best", "run2/best"});

  // Any replica reports the cluster's swap.
  grpc::ClientContext swap_context;
  Prepare(&swap_context, std::chrono::seconds(10));
  hier::v1::SwapProgress progress;
  ASSERT_TRUE(b->models->GetSwap(&swap_context, hier::v1::GetSwapRequest(), &progress).ok());
  EXPECT_EQ(progress.target_version(), "run2/best");
  EXPECT_TRUE(progress.complete()) << progress.error_message();
  EXPECT_EQ(progress.reembedded_items(), 30);
  // Writes go on through either replica, into the new gallery.
  const grpc::Status more = b->AddImages(images, 35, 1);
  ASSERT_TRUE(more.ok()) << more.error_message();
  EXPECT_TRUE(WaitForItems(*a, 31, kLagBound).has_value());
  // A replica that restarts serves the cluster's model, whatever its --model says.
  b->server.process->Signal(SIGTERM);
  ASSERT_TRUE(b->server.process->Wait(std::chrono::seconds(60)).has_value());
  Launch(b);
  ASSERT_FALSE(HasFatalFailure());
  ASSERT_TRUE(WaitForHealth(*b, HealthCheckResponse::SERVING));
  EXPECT_EQ(b->ModelVersion(), "run2/best");
  EXPECT_EQ(b->Items(), 31);
}

TEST_F(ClusterTest, HierBenchWritesThroughOneReplicaForAll) {
  const std::vector<Replica*> replicas = StartServing({"a", "b"});
  ASSERT_FALSE(HasFailure());
  Replica *a = replicas[0], *b = replicas[1];
  const std::string json = scratch_ + "/bench.json";
  ChildProcess bench(HIER_BENCH_BINARY,
                     {"--server", absl::StrCat("127.0.0.1:", a->server.grpc_port), "--token",
                      kToken, "--method", "add-vectors", "--dim", absl::StrCat(kDim), "--batch",
                      "25", "--requests", "20", "--warmup", "0", "--in-flight", "2", "--first-id",
                      "5000", "--json", json},
                     scratch_ + "/bench.log");
  ASSERT_EQ(bench.Wait(std::chrono::seconds(60)), 0) << ReadText(scratch_ + "/bench.log");
  const nlohmann::json report = nlohmann::json::parse(ReadText(json));
  EXPECT_EQ(report["ok"], 20);
  EXPECT_EQ(report["items_per_call"], 25);
  EXPECT_GT(report["items_per_second"].get<double>(), 0);
  // Ids 5000..5499, each found by id on the other replica.
  ASSERT_TRUE(WaitForItems(*b, 500, kLagBound).has_value()) << b->Items();
  for (const int64_t id : {5000, 5249, 5499}) {
    hier::v1::SearchRequest request;
    request.set_item_id(id);
    request.set_k(1);
    grpc::ClientContext context;
    Prepare(&context, std::chrono::seconds(5));
    hier::v1::SearchResponse response;
    EXPECT_TRUE(b->retrieval->Search(&context, request, &response).ok()) << id;
  }
}

TEST_F(ClusterTest, AReplicaCutOffByTheNetworkServesSearchesRefusesWritesAndConverges) {
  // The replica runs in a network namespace of the test's: link 0 carries the test's calls, link 1
  // its PostgreSQL connections (through a forwarder to the loopback server); link 1 goes down.
  absl::StatusOr<std::unique_ptr<NetworkNamespace>> made = NetworkNamespace::Create(2);
  if (absl::IsFailedPrecondition(made.status())) GTEST_SKIP() << made.status();
  ASSERT_TRUE(made.ok()) << made.status();
  const NetworkNamespace& ns = **made;
  absl::StatusOr<std::unique_ptr<TcpForwarder>> forwarder =
      TcpForwarder::Start(ns.HostAddress(1), "127.0.0.1", server_->port());
  ASSERT_TRUE(forwarder.ok()) << forwarder.status();
  Replica* a = Start("a");
  auto cut = std::make_unique<Replica>();
  cut->name = "cut";
  cut->args = ReplicaArgs("cut");
  cut->args[1] = absl::StrCat("postgresql://", server_->user(), ":", server_->password(), "@",
                              ns.HostAddress(1), ":", (*forwarder)->port(), "/", database_);
  cut->args.insert(cut->args.end(), {"--listen", "0.0.0.0:0", "--metrics-listen", "0.0.0.0:0"});
  cut->launcher = ns.Inside({});
  cut->launcher.insert(cut->launcher.begin(), ns.ip_binary());
  cut->host = ns.InsideAddress(0);
  Replica* p = Add(std::move(cut));
  ASSERT_FALSE(HasFatalFailure());
  for (const Replica* replica : {a, p}) {
    ASSERT_TRUE(WaitForHealth(*replica, HealthCheckResponse::SERVING)) << replica->name;
  }
  std::vector<int64_t> before;
  for (int64_t id = 1; id <= 100; ++id) before.push_back(id);
  ASSERT_TRUE(a->Add(before).ok());
  ASSERT_TRUE(WaitForItems(*p, 100, kLagBound).has_value());

  ASSERT_TRUE(ns.SetLinkUp(1, false).ok());
  Ledger ledger;
  {
    Load load({a}, {p}, &ledger);
    // Writes through the cut-off replica fail UNAVAILABLE once its connection times out (libpq's
    // tcp_user_timeout, 10 s).
    const grpc::Status refused = p->Add({424242}, std::chrono::seconds(40));
    EXPECT_EQ(refused.error_code(), grpc::StatusCode::UNAVAILABLE) << refused.error_message();
    // It says so: health and metrics.
    EXPECT_TRUE(WaitForHealth(*p, HealthCheckResponse::NOT_SERVING, std::chrono::seconds(30)));
    const std::optional<HttpResponse> metrics =
        HttpGet(p->server.metrics_port, "/metrics", p->host);
    ASSERT_TRUE(metrics.has_value());
    EXPECT_EQ(SeriesValue(metrics->body, "hier_store_reachable"), 0.0);
    ASSERT_TRUE(ns.SetLinkUp(1, true).ok());
    EXPECT_TRUE(WaitForHealth(*p, HealthCheckResponse::SERVING, std::chrono::seconds(60)));
    load.Stop();
    EXPECT_EQ(load.search_failures_, 0) << load.last_search_error_;
    EXPECT_GT(load.searches_ok_, 0);
    EXPECT_TRUE(load.write_failures_.empty()) << load.last_write_error_;
  }
  // It converges on what was written meanwhile.
  const int64_t stored = LiveItemsInStore();
  EXPECT_TRUE(WaitForItems(*p, stored, kLagBound)) << p->Items() << " of " << stored;
  ExpectHoldsAll(*p, ledger.ids());
}

TEST_F(ClusterTest, AJobWhoseReplicaIsKilledIsResumedByAnotherAndSucceeds) {
  if (!ServerE2eTest::HaveFashionMnist()) GTEST_SKIP() << "Fashion-MNIST is not installed";
  // A alone, so it claims the job; B joins while it runs.
  Replica* a = Start("a", "", {"--job-lease-seconds", "3"});
  ASSERT_FALSE(HasFatalFailure());
  hier::v1::Job job;
  const grpc::Status started = a->StartJob(SmallTrainingJob("cluster", 3, 30), &job);
  ASSERT_TRUE(started.ok()) << started.error_message();
  ASSERT_TRUE(a->WaitForJob(job.id(), hier::v1::JOB_STATE_RUNNING, std::chrono::seconds(30)));
  Replica* b = Start("b", "", {"--job-lease-seconds", "3"});
  ASSERT_FALSE(HasFatalFailure());
  // Any replica answers for any job.
  absl::StatusOr<hier::v1::Job> seen = b->Job(job.id());
  ASSERT_TRUE(seen.ok()) << seen.status();
  EXPECT_EQ(seen->run_dir(), job.run_dir());
  // Once the first epoch's checkpoint is there, A dies; its trainer stops with it.
  const Clock::time_point until = Clock::now() + std::chrono::seconds(120);
  while (!fs::exists(fs::path(job.run_dir()) / "checkpoints") ||
         fs::is_empty(fs::path(job.run_dir()) / "checkpoints")) {
    ASSERT_LT(Clock::now(), until) << ReadText(job.run_dir() + "/train.log");
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  const pid_t first_trainer = TrainerOf(job.run_dir());
  a->server.process->Signal(SIGKILL);
  ASSERT_TRUE(a->server.process->Wait(std::chrono::seconds(10)).has_value());
  // B takes the job over after the lease and continues the run to the end.
  EXPECT_TRUE(b->WaitForJob(job.id(), hier::v1::JOB_STATE_SUCCEEDED, std::chrono::seconds(180)))
      << b->Job(job.id())->error() << "\n" << ReadText(job.run_dir() + "/train.log");
  if (first_trainer > 0) {
    EXPECT_NE(TrainerOf(job.run_dir()), first_trainer);
  }
  absl::StatusOr<hier::v1::Job> done = b->Job(job.id());
  ASSERT_TRUE(done.ok());
  EXPECT_EQ(done->progress().step(), 90);
  EXPECT_EQ(done->progress().total_steps(), 90);
  // The run was continued, not restarted: the trainer was started twice, the second resuming.
  const std::string log = ReadText(job.run_dir() + "/train.log");
  EXPECT_NE(log.find("resum"), std::string::npos) << log;
}

TEST_F(ClusterTest, AJobIsCancelledThroughAReplicaThatDoesNotRunIt) {
  if (!ServerE2eTest::HaveFashionMnist()) GTEST_SKIP() << "Fashion-MNIST is not installed";
  Replica* a = Start("a");
  ASSERT_FALSE(HasFatalFailure());
  hier::v1::Job job;
  ASSERT_TRUE(a->StartJob(SmallTrainingJob("cluster", 50, 100), &job).ok());
  ASSERT_TRUE(a->WaitForJob(job.id(), hier::v1::JOB_STATE_RUNNING, std::chrono::seconds(30)));
  Replica* b = Start("b");
  ASSERT_FALSE(HasFatalFailure());
  grpc::ClientContext context;
  Prepare(&context, std::chrono::seconds(10));
  hier::v1::CancelJobRequest cancel;
  cancel.set_id(job.id());
  hier::v1::Job cancelled;
  const grpc::Status status = b->training->CancelJob(&context, cancel, &cancelled);
  ASSERT_TRUE(status.ok()) << status.error_message();
  for (const Replica* replica : {a, b}) {
    EXPECT_TRUE(
        replica->WaitForJob(job.id(), hier::v1::JOB_STATE_CANCELLED, std::chrono::seconds(60)))
        << replica->name << ": " << replica->Job(job.id())->error();
  }
  EXPECT_EQ(TrainerOf(job.run_dir()), 0);
}

// hier-server's exit status and log for a start that must fail.
struct FailedStart {
  std::optional<int> exit_status;
  std::string log;
};

class ClusterStartTest : public ClusterTest {
 protected:
  FailedStart StartExpectingFailure(std::vector<std::string> args) {
    const std::string prefix = absl::StrCat(scratch_, "/failed-", ++starts_);
    ChildProcess server(HIER_SERVER_BINARY, args, prefix + ".log");
    FailedStart failed;
    failed.exit_status = server.Wait(std::chrono::seconds(60));
    failed.log = ReadText(prefix + ".log");
    return failed;
  }
  // ReplicaArgs with --store replaced.
  std::vector<std::string> WithStore(const std::string& uri) const {
    std::vector<std::string> args = ReplicaArgs("bad");
    args[1] = uri;
    return args;
  }
  int starts_ = 0;
};

TEST_F(ClusterStartTest, AnUnreachableStoreIsOneClearError) {
  const FailedStart failed = StartExpectingFailure(
      WithStore(absl::StrCat("postgresql://hier@127.0.0.1:", PostgresServer::FreePort(), "/x")));
  EXPECT_EQ(failed.exit_status, 1) << failed.log;
  EXPECT_NE(failed.log.find("connecting"), std::string::npos) << failed.log;
}

TEST_F(ClusterStartTest, AWrongPasswordIsOneClearErrorThatDoesNotShowIt) {
  std::vector<std::string> args = WithStore(server_->UriWithoutPassword(database_));
  const std::string password_file = scratch_ + "/password";
  std::ofstream(password_file) << "not-the-password\n";
  args.insert(args.end(), {"--store-password-file", password_file});
  const FailedStart failed = StartExpectingFailure(args);
  EXPECT_EQ(failed.exit_status, 1) << failed.log;
  EXPECT_NE(failed.log.find("check the user, password and database"), std::string::npos)
      << failed.log;
  EXPECT_EQ(failed.log.find("not-the-password"), std::string::npos) << failed.log;
}

TEST_F(ClusterStartTest, TheRightPasswordFileIsUsed) {
  std::vector<std::string> args = ReplicaArgs("a");
  args[1] = server_->UriWithoutPassword(database_);
  const std::string password_file = scratch_ + "/password";
  std::ofstream(password_file) << server_->password() << "\n";
  args.insert(args.end(), {"--store-password-file", password_file});
  RunningServer server;
  StartHierServer(args, scratch_ + "/a", &server);
}

TEST_F(ClusterStartTest, AnotherApplicationsDatabaseIsRefusedAndLeftAlone) {
  ASSERT_TRUE(server_
                  ->Execute(database_, absl::StrCat("CREATE TABLE orders (id int); ALTER TABLE "
                                                    "orders OWNER TO ",
                                                    server_->user()))
                  .ok());
  const FailedStart failed = StartExpectingFailure(ReplicaArgs("bad"));
  EXPECT_EQ(failed.exit_status, 1) << failed.log;
  EXPECT_NE(failed.log.find("another application"), std::string::npos) << failed.log;
  // Nothing of ours was created beside their table.
  pqxx::connection connection(server_->Uri(database_));
  pqxx::nontransaction tx(connection);
  EXPECT_EQ(tx.exec1("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")[0].as<int>(), 1);
}

TEST_F(ClusterStartTest, ANewerSchemaAndAnotherModelOrDimAreRefused) {
  {
    Replica* a = Start("a");
    ASSERT_FALSE(HasFatalFailure());
    ASSERT_TRUE(WaitForHealth(*a, HealthCheckResponse::SERVING));
    replicas_.clear();
  }
  std::vector<std::string> other_dim = ReplicaArgs("bad");
  other_dim.insert(other_dim.end(), {"--dim", absl::StrCat(kDim * 2)});  // the last one counts
  FailedStart failed = StartExpectingFailure(other_dim);
  EXPECT_EQ(failed.exit_status, 1) << failed.log;
  EXPECT_NE(failed.log.find("dim"), std::string::npos) << failed.log;

  ASSERT_TRUE(
      server_->Execute(database_, "UPDATE hier_meta SET value = '99' WHERE key = 'schema_version'")
          .ok());
  failed = StartExpectingFailure(ReplicaArgs("bad"));
  EXPECT_EQ(failed.exit_status, 1) << failed.log;
  EXPECT_NE(failed.log.find("schema version 99 is newer"), std::string::npos) << failed.log;
}

}  // namespace
}  // namespace hier::testing
