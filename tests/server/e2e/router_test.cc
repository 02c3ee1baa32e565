// A gallery split into shards behind a router (hier-server --router), as processes on loopback over
// the throwaway PostgreSQL server: the router answers exactly as one node holding every item,
// loses no search when a replica is killed, names a shard none of whose replicas answers, never
// mixes model versions during a cluster's swap, refuses bad requests as one node does, and
// answers the same after the stopped cluster is re-sharded.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <google/protobuf/util/message_differencer.h>

#include <chrono>
#include <mutex>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "index/shard.h"
#include "tests/server/e2e/bad_requests.h"
#include "tests/server/e2e/child_process.h"
#include "tests/server/e2e/cluster_fixture.h"

namespace hier::testing {
namespace {

using google::protobuf::util::MessageDifferencer;

// Replicas per shard, by shard, and the router in front of them.
struct ShardedCluster {
  std::vector<std::vector<Replica*>> shards;
  Replica* router = nullptr;
};

class RouterTest : public ClusterTest {
 protected:
  // Starts `per_shard` replicas of each of `shards` shards (vectors only, or serving `model`),
  // then a router, each with `extra` arguments, and waits until all of them serve.
  ShardedCluster StartSharded(int shards, int per_shard, const std::string& model = "",
                              const std::vector<std::string>& extra = {}) {
    ShardedCluster cluster;
    cluster.shards.resize(shards);
    std::vector<Replica*> all;
    for (int shard = 0; shard < shards; ++shard) {
      for (int n = 0; n < per_shard; ++n) {
        std::vector<std::string> args = extra;
        args.insert(args.end(), {"--shard", absl::StrCat(shard, "/", shards)});
        Replica* replica = Start(absl::StrCat("s", shard, "r", n), model, args);
        if (HasFatalFailure()) return cluster;
        cluster.shards[shard].push_back(replica);
        all.push_back(replica);
      }
    }
    cluster.router = StartRouter("router", extra);
    if (HasFatalFailure()) return cluster;
    all.push_back(cluster.router);
    for (const Replica* replica : all) {
      if (!WaitForHealth(*replica, HealthCheckResponse::SERVING)) {
        ADD_FAILURE() << replica->name << " never answered SERVING";
      }
    }
    return cluster;
  }

  Replica* StartRouter(const std::string& name, const std::vector<std::string>& extra = {}) {
    auto router = std::make_unique<Replica>();
    router->name = name;
    router->args = {"--router",          "--store", server_->Uri(database_),
                    "--state-dir",       scratch_ + "/" + name,
                    "--listen",          "127.0.0.1:0",
                    "--metrics-listen",  "127.0.0.1:0",
                    "--token",           kToken};
    router->args.insert(router->args.end(), extra.begin(), extra.end());
    return Add(std::move(router));
  }

  // A one-machine server (its own state folder) serving `model`: what the router must equal.
  Replica* StartOneNode(const std::string& model) {
    auto node = std::make_unique<Replica>();
    node->name = "one-node";
    const std::string models = ServerE2eTest::ModelsRoot();
    node->args = {"--state-dir", scratch_ + "/one-node", "--listen", "127.0.0.1:0",
                  "--metrics-listen", "127.0.0.1:0", "--token", kToken,
                  "--model", models + "/" + model, "--runs-dir", models};
    Replica* started = Add(std::move(node));
    if (!HasFatalFailure() && !WaitForHealth(*started, HealthCheckResponse::SERVING)) {
      ADD_FAILURE() << "the one-node server never answered SERVING";
    }
    return started;
  }

  // Runs hier-server with `args` to its exit: the exit status (none after 60 s) and its log.
  std::pair<std::optional<int>, std::string> RunToExit(const std::vector<std::string>& args) {
    const std::string log = absl::StrCat(scratch_, "/run-", ++runs_, ".log");
    ChildProcess server(HIER_SERVER_BINARY, args, log);
    const std::optional<int> status = server.Wait(std::chrono::seconds(60));
    return {status, ReadText(log)};
  }
  int runs_ = 0;

  // Waits until every replica of `cluster` holds its shard's part of `ids`.
  static bool WaitForShards(const ShardedCluster& cluster, const std::vector<int64_t>& ids) {
    const int shards = static_cast<int>(cluster.shards.size());
    std::vector<int64_t> expected(shards, 0);
    for (const int64_t id : ids) ++expected[index::ShardOf(id, shards)];
    for (int shard = 0; shard < shards; ++shard) {
      for (const Replica* replica : cluster.shards[shard]) {
        if (!WaitForItems(*replica, expected[shard], std::chrono::seconds(30))) {
          ADD_FAILURE() << replica->name << " holds " << replica->Items() << " items, not "
                        << expected[shard];
          return false;
        }
      }
    }
    return true;
  }
};

// A point of dimension `dim` well inside the ball, fixed by `seed`.
hier::v1::Vector RandomPoint(int64_t seed, int dim) {
  std::mt19937 rng(static_cast<uint32_t>(seed) * 2246822519u + 7u);
  std::normal_distribution<float> normal(0.0f, 0.25f);
  hier::v1::Vector vector;
  for (int i = 0; i < dim; ++i) vector.add_values(normal(rng));
  return vector;
}

grpc::Status AddAll(const Replica& node, const std::vector<hier::v1::NewItem>& items) {
  for (size_t first = 0; first < items.size(); first += 1000) {
    hier::v1::AddItemsRequest request;
    for (size_t i = first; i < std::min(items.size(), first + 1000); ++i) {
      *request.add_items() = items[i];
    }
    grpc::ClientContext context;
    Prepare(&context, std::chrono::seconds(60));
    hier::v1::AddItemsResponse response;
    const grpc::Status status = node.retrieval->AddItems(&context, request, &response);
    if (!status.ok()) return status;
  }
  return grpc::Status::OK;
}

grpc::Status SearchOn(const Replica& node, const hier::v1::SearchRequest& request,
                      hier::v1::SearchResponse* response,
                      std::chrono::milliseconds timeout = std::chrono::seconds(30)) {
  grpc::ClientContext context;
  Prepare(&context, timeout);
  return node.retrieval->Search(&context, request, response);
}

TEST_F(RouterTest, AnswersExactlyAsOneNodeHoldingEveryItem) {
  if (!ServerE2eTest::HaveFashionMnist()) GTEST_SKIP() << "Fashion-MNIST is not installed";
  const ShardedCluster cluster = StartSharded(2, 2, "run");
  ASSERT_FALSE(HasFailure());
  const Replica* one = StartOneNode("run");
  ASSERT_FALSE(HasFailure());

  // 20,000 items: 150 images embedded once (by the one node), the rest points of the ball.
  constexpr int kItems = 20000;
  constexpr int kImageItems = 150;
  const LabelledImages images = TestImages(kImageItems + 100);
  grpc::ClientContext embed_context;
  Prepare(&embed_context, std::chrono::seconds(60));
  hier::v1::EmbedRequest embed;
  for (int i = 0; i < kImageItems; ++i) embed.add_images(images.png[i]);
  hier::v1::EmbedResponse embedded;
  ASSERT_TRUE(one->retrieval->Embed(&embed_context, embed, &embedded).ok());
  const int dim = embedded.embeddings(0).values_size();
  std::vector<hier::v1::NewItem> items(kItems);
  std::vector<int64_t> ids;
  for (int i = 0; i < kItems; ++i) {
    hier::v1::NewItem& item = items[i];
    item.set_id(i + 1);
    item.set_key(absl::StrCat("key-", i + 1));
    if (i < kImageItems) {
      item.set_label(images.labels[i]);
      *item.mutable_vector() = embedded.embeddings(i);
    } else {
      item.set_label(absl::StrCat("class-", i % 7));
      *item.mutable_vector() = RandomPoint(i, dim);
    }
    ids.push_back(i + 1);
  }
  ASSERT_TRUE(AddAll(*cluster.router, items).ok());
  ASSERT_TRUE(AddAll(*one, items).ok());
  ASSERT_TRUE(WaitForShards(cluster, ids));
  EXPECT_EQ(cluster.router->Items(), kItems);

  // 200 queries (by vector, image and id; a third with a label filter; some with ancestors), each
  // at k 1, 10 and 100: ids, distances, keys, labels and ancestors all equal.
  int64_t compared = 0;
  for (int q = 0; q < 200; ++q) {
    hier::v1::SearchRequest request;
    switch (q % 3) {
      case 0: *request.mutable_vector() = RandomPoint(100000 + q, dim); break;
      case 1: request.set_image(images.png[kImageItems + q % 100]); break;
      case 2: request.set_item_id(1 + (q * 7919) % kItems); break;
    }
    if (q % 3 == q % 2) request.set_label(q % 4 == 0 ? images.labels[q] : "class-3");
    request.set_with_ancestors(q % 5 == 0);
    for (const int k : {1, 10, 100}) {
      request.set_k(k);
      hier::v1::SearchResponse routed, expected;
      const grpc::Status from_router = SearchOn(*cluster.router, request, &routed);
      const grpc::Status from_one = SearchOn(*one, request, &expected);
      ASSERT_TRUE(from_one.ok()) << q << ": " << from_one.error_message();
      ASSERT_TRUE(from_router.ok()) << q << ": " << from_router.error_message();
      EXPECT_TRUE(MessageDifferencer::Equals(routed, expected))
          << "query " << q << " at k " << k << "\nrouter: " << routed.ShortDebugString()
          << "\none node: " << expected.ShortDebugString();
      ++compared;
    }
  }
  EXPECT_EQ(compared, 600);

  // The gallery's pages: the router merges its shards' pages into the one node's.
  for (const auto& [label, size, token] :
       std::vector<std::tuple<std::string, int, std::string>>{
           {"", 100, ""}, {"", 37, "9990"}, {"class-3", 60, ""}, {"", 50, "19980"}}) {
    hier::v1::ListItemsRequest request;
    request.set_label(label);
    request.set_page_size(size);
    request.set_page_token(token);
    for (int page = 0; page < 3; ++page) {
      hier::v1::ListItemsResponse routed, expected;
      grpc::ClientContext router_context, one_context;
      Prepare(&router_context, std::chrono::seconds(30));
      Prepare(&one_context, std::chrono::seconds(30));
      ASSERT_TRUE(cluster.router->retrieval->ListItems(&router_context, request, &routed).ok());
      ASSERT_TRUE(one->retrieval->ListItems(&one_context, request, &expected).ok());
      EXPECT_TRUE(MessageDifferencer::Equals(routed, expected))
          << "label '" << label << "' size " << size << " page " << page;
      request.set_page_token(expected.next_page_token());
    }
  }

  // TuneSearch through the router tunes a replica of each shard and answers the one whose
  // measured recall is lowest.
  hier::v1::TuneSearchRequest tune;
  tune.set_target_recall(0.95);
  tune.set_sample_queries(100);
  hier::v1::SearchSettings tuned;
  grpc::ClientContext tune_context;
  Prepare(&tune_context, std::chrono::seconds(60));
  const grpc::Status tuning = cluster.router->retrieval->TuneSearch(&tune_context, tune, &tuned);
  ASSERT_TRUE(tuning.ok()) << tuning.error_message();
  EXPECT_TRUE(tuned.tuned());
  EXPECT_TRUE(tuned.target_reached());
  EXPECT_EQ(tuned.target_recall(), 0.95);
  EXPECT_EQ(tuned.sample_queries(), 100);
  EXPECT_GE(tuned.measured_recall(), 0.95);
}

TEST_F(RouterTest, AReplicaKilledUnderSearchLoadFailsNoSearch) {
  const ShardedCluster cluster = StartSharded(2, 2);
  ASSERT_FALSE(HasFailure());
  std::vector<int64_t> ids;
  for (int64_t id = 0; id < 2000; ++id) ids.push_back(id);
  for (size_t first = 0; first < ids.size(); first += 500) {
    ASSERT_TRUE(cluster.router->Add({ids.begin() + first, ids.begin() + first + 500}).ok());
  }
  ASSERT_TRUE(WaitForShards(cluster, ids));

  Ledger ledger;
  Load load({}, {cluster.router, cluster.router, cluster.router}, &ledger);
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  cluster.shards[0][0]->server.process->Signal(SIGKILL);
  // Past the member timeout (3 s): the router forgets the dead replica.
  std::this_thread::sleep_for(std::chrono::seconds(4));
  load.Stop();
  std::lock_guard<std::mutex> lock(load.mutex_);
  EXPECT_EQ(load.search_failures_, 0) << load.last_search_error_;
  EXPECT_GT(load.searches_ok_, 100);

  // The kill shows on the router's own series, and every router series the Grafana dashboard
  // queries (deploy_checks lists them) is among them.
  const std::optional<HttpResponse> scraped =
      HttpGet(cluster.router->server.metrics_port, "/metrics");
  ASSERT_TRUE(scraped.has_value() && scraped->status == 200);
  EXPECT_GE(SeriesValue(scraped->body, "hier_router_retries_total", {{"shard", "0/2"}}).value_or(0),
            1);
  EXPECT_EQ(SeriesValue(scraped->body, "hier_router_shard_replicas", {{"shard", "0/2"}}), 1);
  EXPECT_EQ(SeriesValue(scraped->body, "hier_router_shard_replicas", {{"shard", "1/2"}}), 2);
  EXPECT_EQ(SeriesValue(scraped->body, "hier_router_shards_healthy"), 2);
  std::istringstream dashboard(ReadText(HIER_DASHBOARD_METRICS));
  int router_series = 0;
  for (std::string name; std::getline(dashboard, name);) {
    if (!absl::StartsWith(name, "hier_router_")) continue;
    ++router_series;
    EXPECT_TRUE(SeriesValue(scraped->body, name).has_value() ||
                SeriesValue(scraped->body, name + "_count").has_value())
        << name << " is on the dashboard but not on the router's /metrics";
  }
  EXPECT_GT(router_series, 0) << "run deploy/check-deploy.sh " HIER_DASHBOARD_METRICS;
}

TEST_F(RouterTest, AShardWithoutReplicasIsUnavailableByNameUnlessPartialIsAllowed) {
  const ShardedCluster cluster = StartSharded(2, 2);
  ASSERT_FALSE(HasFailure());
  std::vector<int64_t> ids;
  for (int64_t id = 0; id < 400; ++id) ids.push_back(id);
  ASSERT_TRUE(cluster.router->Add(ids).ok());
  ASSERT_TRUE(WaitForShards(cluster, ids));
  for (Replica* replica : cluster.shards[1]) replica->server.process->Signal(SIGKILL);

  hier::v1::SearchRequest request;
  *request.mutable_vector() = VectorFor(7);
  request.set_k(10);
  auto expect_unavailable = [&](const char* when) {
    hier::v1::SearchResponse response;
    const Clock::time_point start = Clock::now();
    const grpc::Status status =
        SearchOn(*cluster.router, request, &response, std::chrono::seconds(3));
    EXPECT_LT(Clock::now() - start, std::chrono::seconds(3)) << when;
    EXPECT_EQ(status.error_code(), grpc::UNAVAILABLE) << when << ": " << status.error_message();
    EXPECT_NE(status.error_message().find("shard 1/2"), std::string::npos)
        << when << ": " << status.error_message();
  };
  auto expect_partial = [&](const char* when) {
    hier::v1::SearchRequest partial = request;
    partial.set_allow_partial(true);
    hier::v1::SearchResponse response;
    const grpc::Status status = SearchOn(*cluster.router, partial, &response);
    ASSERT_TRUE(status.ok()) << when << ": " << status.error_message();
    EXPECT_EQ(response.missing_shards_size(), 1) << when;
    if (response.missing_shards_size() == 1) {
      EXPECT_EQ(response.missing_shards(0), "1/2");
    }
    EXPECT_EQ(response.neighbours_size(), 10) << when;
    for (const hier::v1::Neighbour& neighbour : response.neighbours()) {
      EXPECT_EQ(index::ShardOf(neighbour.id(), 2), 0) << when << ": " << neighbour.id();
    }
  };
  // While their heartbeats are fresh (the calls fail), then once they have gone stale.
  expect_unavailable("replicas just killed");
  expect_partial("replicas just killed");
  std::this_thread::sleep_for(std::chrono::seconds(4));
  expect_unavailable("replicas forgotten");
  expect_partial("replicas forgotten");
  EXPECT_TRUE(WaitForHealth(*cluster.router, HealthCheckResponse::NOT_SERVING,
                            std::chrono::seconds(5)));

  // One replica of the shard back: the router serves whole answers again.
  Launch(cluster.shards[1][0]);
  ASSERT_FALSE(HasFatalFailure());
  ASSERT_TRUE(WaitForHealth(*cluster.router, HealthCheckResponse::SERVING));
  hier::v1::SearchResponse whole;
  ASSERT_TRUE(SearchOn(*cluster.router, request, &whole).ok());
  EXPECT_EQ(whole.missing_shards_size(), 0);
}

TEST_F(RouterTest, AModelSwapThroughTheRouterNeverMixesVersions) {
  if (!ServerE2eTest::HaveFashionMnist()) GTEST_SKIP() << "Fashion-MNIST is not installed";
  const ShardedCluster cluster = StartSharded(2, 1, "run");
  ASSERT_FALSE(HasFailure());
  const LabelledImages images = TestImages(30);
  ASSERT_TRUE(cluster.router->AddImages(images, 0, 30).ok());
  std::vector<int64_t> ids;
  for (int64_t id = 1; id <= 30; ++id) ids.push_back(id);
  ASSERT_TRUE(WaitForShards(cluster, ids));

  // Searches through the router while the cluster swaps models.
  ImageSearchWatch watch(images, 30, {cluster.router});
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  hier::v1::LoadModelRequest load;
  load.set_version("run2");
  load.set_wait(true);
  grpc::ClientContext load_context;
  Prepare(&load_context, std::chrono::seconds(120));
  hier::v1::LoadModelResponse loaded;
  const grpc::Status swapped = cluster.router->models->LoadModel(&load_context, load, &loaded);
  EXPECT_TRUE(swapped.ok()) << swapped.error_message();
  const Clock::time_point until = Clock::now() + std::chrono::seconds(60);
  while (cluster.router->ModelVersion() != "run2/best" && Clock::now() < until) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(cluster.router->ModelVersion(), "run2/best");
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  watch.ExpectCleanAcross({"run/best", "run2/best"});
}

TEST_F(RouterTest, BadRequestsGetTheOneNodeCodesAndNothingChanges) {
  if (!ServerE2eTest::HaveFashionMnist()) GTEST_SKIP() << "Fashion-MNIST is not installed";
  // ServerE2eTest::StartServer's limits, on every process.
  const ShardedCluster cluster =
      StartSharded(2, 1, "run",
                   {"--max-images-per-call", "16", "--max-items-per-call", "100",
                    "--max-message-bytes", "4194304"});
  ASSERT_FALSE(HasFailure());
  const LabelledImages images = TestImages(40);
  ASSERT_TRUE(cluster.router->AddImages(images, 0, 16).ok());
  ASSERT_TRUE(cluster.router->AddImages(images, 16, 14).ok());
  std::vector<int64_t> ids;
  for (int64_t id = 1; id <= 30; ++id) ids.push_back(id);
  ASSERT_TRUE(WaitForShards(cluster, ids));
  const std::unique_ptr<ApiCaller> api = GrpcCaller(cluster.router->channel);
  BadRequests requests(api.get());
  requests.ExpectEachRefused(images.png[35]);

  EXPECT_EQ(cluster.router->Health(), HealthCheckResponse::SERVING);
  EXPECT_EQ(cluster.router->Items(), 30);
  EXPECT_EQ(LiveItemsInStore(), 30);
}

TEST_F(RouterTest, AnOfflineReshardSplitsTheGalleryAnotherWay) {
  const ShardedCluster two = StartSharded(2, 1);
  ASSERT_FALSE(HasFailure());
  std::vector<int64_t> ids;
  for (int64_t id = 0; id < 3000; ++id) ids.push_back(id);
  for (size_t first = 0; first < ids.size(); first += 1000) {
    ASSERT_TRUE(two.router->Add({ids.begin() + first, ids.begin() + first + 1000}).ok());
  }
  ASSERT_TRUE(WaitForShards(two, ids));
  std::vector<hier::v1::SearchResponse> before(20);
  hier::v1::SearchRequest request;
  request.set_k(25);
  for (int q = 0; q < 20; ++q) {
    *request.mutable_vector() = RandomPoint(q, kDim);
    ASSERT_TRUE(SearchOn(*two.router, request, &before[q]).ok());
  }

  // Refused while a replica runs, naming it; done once every replica has stopped.
  const std::vector<std::string> reshard = {"--store", server_->Uri(database_), "--reshard", "3"};
  const auto [refused, refused_log] = RunToExit(reshard);
  EXPECT_EQ(refused, 1) << refused_log;
  EXPECT_NE(refused_log.find("still running"), std::string::npos) << refused_log;
  for (const std::vector<Replica*>& shard : two.shards) {
    shard[0]->server.process->Signal(SIGTERM);
    ASSERT_EQ(shard[0]->server.process->Wait(std::chrono::seconds(60)), 0);
  }
  const auto [done, done_log] = RunToExit(reshard);
  ASSERT_EQ(done, 0) << done_log;

  // A replica of the old split is refused, naming the recorded count.
  std::vector<std::string> stale = ReplicaArgs("stale");
  stale.insert(stale.end(), {"--shard", "0/2"});
  const auto [stale_status, stale_log] = RunToExit(stale);
  EXPECT_EQ(stale_status, 1) << stale_log;
  EXPECT_NE(stale_log.find("split into 3 shard(s)"), std::string::npos) << stale_log;

  // Three shards over the same items: the router, still up, answers as before.
  ShardedCluster three;
  three.router = two.router;
  three.shards.resize(3);
  for (int shard = 0; shard < 3; ++shard) {
    three.shards[shard].push_back(
        Start(absl::StrCat("three-", shard), "", {"--shard", absl::StrCat(shard, "/3")}));
    ASSERT_FALSE(HasFatalFailure());
  }
  ASSERT_TRUE(WaitForShards(three, ids));
  ASSERT_TRUE(WaitForHealth(*three.router, HealthCheckResponse::SERVING));
  EXPECT_EQ(three.router->Items(), 3000);
  for (int q = 0; q < 20; ++q) {
    *request.mutable_vector() = RandomPoint(q, kDim);
    hier::v1::SearchResponse after;
    ASSERT_TRUE(SearchOn(*three.router, request, &after).ok());
    EXPECT_TRUE(MessageDifferencer::Equals(after, before[q])) << "query " << q;
  }
}

}  // namespace
}  // namespace hier::testing
