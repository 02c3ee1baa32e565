// hier-server end to end: a model trained by hier-train, the server a child process on an
// ephemeral port, real Fashion-MNIST images over gRPC, metrics over HTTP, restarts and SIGTERM.
#include <gmock/gmock.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/server/e2e/server_fixture.h"

namespace hier::testing {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

TEST_F(ServerE2eTest, ImagesAreIndexedAndFindNeighboursOfTheirClass) {
  const LabelledImages images = TestImages(1100);
  StartServer();
  AddImages(images, 0, 1000);
  EXPECT_EQ(ItemCount(), 1000);

  int same_class = 0;
  for (int64_t q = 1000; q < 1100; ++q) {
    hier::v1::SearchResponse response;
    const grpc::Status status = SearchImage(images.png[q], 5, &response);
    ASSERT_TRUE(status.ok()) << status.error_message();
    ASSERT_EQ(response.neighbours_size(), 5);
    EXPECT_EQ(response.model_version(), "run/best");
    for (int i = 1; i < 5; ++i) {
      EXPECT_LE(response.neighbours(i - 1).distance(), response.neighbours(i).distance());
    }
    same_class += response.neighbours(0).label() == images.labels[q];
  }
  // Chance is 1 in 10; the small model finds the query's class for most queries.
  EXPECT_GE(same_class, 55) << "of 100";

  // An indexed image is its own nearest neighbour, at distance 0, and Embed gives its vector.
  hier::v1::SearchResponse itself;
  ASSERT_TRUE(SearchImage(images.png[7], 1, &itself).ok());
  EXPECT_EQ(itself.neighbours(0).id(), 7);
  EXPECT_NEAR(itself.neighbours(0).distance(), 0.0, 1e-4);
  grpc::ClientContext get_context;
  hier::v1::GetItemRequest get;
  get.set_id(7);
  hier::v1::Item item;
  ASSERT_TRUE(retrieval_->GetItem(&get_context, get, &item).ok());
  EXPECT_EQ(item.label(), images.labels[7]);
  EXPECT_EQ(item.model_version(), "run/best");
  EXPECT_EQ(item.image_sha256().size(), 64u);
  EXPECT_TRUE(fs::exists(state_ + "/blobs/" + item.image_sha256().substr(0, 2) + "/" +
                         item.image_sha256()));
  grpc::ClientContext embed_context;
  hier::v1::EmbedRequest embed;
  embed.add_images(images.png[7]);
  hier::v1::EmbedResponse embedded;
  ASSERT_TRUE(retrieval_->Embed(&embed_context, embed, &embedded).ok());
  ASSERT_EQ(embedded.embeddings(0).values_size(), item.vector().values_size());
  // Equal up to float rounding: the image shared a forward pass with others when it was added.
  for (int i = 0; i < item.vector().values_size(); ++i) {
    EXPECT_NEAR(embedded.embeddings(0).values(i), item.vector().values(i), 1e-5);
  }

  // `hier items list` pages through the gallery: one label's items, in id order, with the token
  // of the next page.
  const std::string label = images.labels[0];
  std::vector<int64_t> expected;
  for (int64_t id = 0; id < 1000 && expected.size() < 4; ++id) {
    if (images.labels[id] == label) expected.push_back(id);
  }
  const std::string output = scratch_ + "/list.json";
  ChildProcess cli(HIER_CLI_BINARY,
                   {"--server", "127.0.0.1:" + std::to_string(grpc_port_), "--json", "items",
                    "list", "--label", label, "--page-size", "3"},
                   output);
  ASSERT_EQ(cli.Wait(std::chrono::seconds(60)), 0) << ReadText(output);
  const nlohmann::json page = nlohmann::json::parse(ReadText(output));
  ASSERT_EQ(page["items"].size(), 3u) << page.dump();
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(page["items"][i]["id"], std::to_string(expected[i]));
    EXPECT_EQ(page["items"][i]["label"], label);
  }
  EXPECT_EQ(page["next_page_token"], std::to_string(expected[2]));
}

TEST_F(ServerE2eTest, SearchBatchAndTheCliFolderSearchAnswerAsSearchDoes) {
  const LabelledImages images = TestImages(210);
  StartServer();
  AddImages(images, 0, 200);
  const std::string folder = scratch_ + "/queries";
  fs::create_directories(folder);
  hier::v1::SearchBatchRequest batch;
  std::vector<hier::v1::SearchResponse> one_by_one;
  for (int q = 200; q < 210; ++q) {
    std::ofstream(folder + "/q" + std::to_string(q) + ".png", std::ios::binary) << images.png[q];
    hier::v1::SearchRequest* query = batch.add_queries();
    query->set_image(images.png[q]);
    query->set_k(5);
    ASSERT_TRUE(SearchImage(images.png[q], 5, &one_by_one.emplace_back()).ok());
  }
  hier::v1::SearchRequest* by_id = batch.add_queries();
  by_id->set_item_id(5);
  by_id->set_k(5);
  grpc::ClientContext context;
  hier::v1::SearchBatchResponse answers;
  const grpc::Status status = retrieval_->SearchBatch(&context, batch, &answers);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(answers.results_size(), 11);
  // Images embedded together differ from one-by-one embeddings by float rounding only.
  for (int q = 0; q < 10; ++q) {
    const hier::v1::SearchResponse& got = answers.results(q);
    ASSERT_EQ(got.neighbours_size(), 5);
    EXPECT_EQ(got.model_version(), "run/best");
    EXPECT_EQ(got.neighbours(0).id(), one_by_one[q].neighbours(0).id());
    for (int i = 0; i < 5; ++i) {
      EXPECT_NEAR(got.neighbours(i).distance(), one_by_one[q].neighbours(i).distance(), 1e-4);
    }
  }
  for (const hier::v1::Neighbour& neighbour : answers.results(10).neighbours()) {
    EXPECT_NE(neighbour.id(), 5);  // an item-id query leaves the item out
  }

  // The CLI's --folder sends SearchBatch calls (--batch 4: three of them).
  const std::string output = scratch_ + "/cli.json";
  ChildProcess cli(HIER_CLI_BINARY,
                   {"--server", "127.0.0.1:" + std::to_string(grpc_port_), "search", "--folder",
                    folder, "--batch", "4", "--k", "5", "--json"},
                   output);
  ASSERT_EQ(cli.Wait(std::chrono::seconds(60)), 0) << ReadText(output);
  const nlohmann::json results = nlohmann::json::parse(ReadText(output));
  ASSERT_EQ(results.size(), 10u);
  for (int q = 0; q < 10; ++q) {
    EXPECT_EQ(results[q]["query"], folder + "/q" + std::to_string(200 + q) + ".png");
    EXPECT_EQ(results[q]["neighbours"][0]["id"], one_by_one[q].neighbours(0).id());
  }
}

TEST_F(ServerE2eTest, MetricsCountCallsAndDescribeTheIndexAndModel) {
  const LabelledImages images = TestImages(120);
  StartServer();
  AddImages(images, 0, 100);
  for (int64_t q = 100; q < 120; ++q) {
    hier::v1::SearchResponse response;
    ASSERT_TRUE(SearchImage(images.png[q], 3, &response).ok());
  }
  hier::v1::SearchResponse unused;
  EXPECT_EQ(SearchImage("not an image", 3, &unused).error_code(), grpc::INVALID_ARGUMENT);

  const std::string metrics = Metrics();
  const std::map<std::string, std::string> search = {{"grpc_service", "hier.v1.Retrieval"},
                                                     {"grpc_method", "Search"}};
  auto with = [](std::map<std::string, std::string> labels, const char* key, const char* value) {
    labels[key] = value;
    return labels;
  };
  EXPECT_EQ(SeriesValue(metrics, "grpc_server_started_total", search), 21);
  EXPECT_EQ(SeriesValue(metrics, "grpc_server_handled_total", with(search, "grpc_code", "OK")), 20);
  EXPECT_EQ(SeriesValue(metrics, "grpc_server_handled_total",
                        with(search, "grpc_code", "InvalidArgument")),
            1);
  EXPECT_EQ(SeriesValue(metrics, "grpc_server_handling_seconds_count", search), 21);
  EXPECT_EQ(SeriesValue(metrics, "grpc_server_handled_total",
                        {{"grpc_method", "AddItemsStream"}, {"grpc_type", "client_stream"}}),
            1);
  EXPECT_EQ(SeriesValue(metrics, "hier_index_items"), 100);
  EXPECT_EQ(SeriesValue(metrics, "hier_model_info", {{"version", "run/best"}}), 1);
  // 100 gallery images and 20 good queries were embedded, in batches of at most 32.
  EXPECT_EQ(SeriesValue(metrics, "hier_embed_batch_size_sum"), 120);
  EXPECT_GE(SeriesValue(metrics, "hier_embed_batch_size_count").value_or(0), 120.0 / 32);
  EXPECT_EQ(SeriesValue(metrics, "hier_search_stage_seconds_count", {{"stage", "rerank"}}), 20);
  EXPECT_GT(
      SeriesValue(metrics, "hier_search_stage_seconds_sum", {{"stage", "candidate"}}).value_or(0),
      0);
  EXPECT_GT(SeriesValue(metrics, "process_resident_memory_bytes").value_or(0), 1e7);
  EXPECT_GT(SeriesValue(metrics, "process_cpu_seconds_total").value_or(0), 0);
}

int64_t FilesUnder(const std::string& dir) {
  int64_t files = 0;
  for (const auto& entry : fs::recursive_directory_iterator(dir)) files += entry.is_regular_file();
  return files;
}

TEST_F(ServerE2eTest, SigtermDrainsAndARestartKeepsEveryItem) {
  const LabelledImages images = TestImages(310);
  StartServer();
  AddImages(images, 0, 310);
  grpc::ClientContext delete_context;
  Authorize(&delete_context);
  hier::v1::DeleteItemsRequest deletion;
  for (int64_t id = 300; id < 310; ++id) deletion.add_ids(id);
  hier::v1::DeleteItemsResponse deleted;
  ASSERT_TRUE(retrieval_->DeleteItems(&delete_context, deletion, &deleted).ok());
  hier::v1::SearchResponse before;
  ASSERT_TRUE(SearchImage(images.png[5], 10, &before).ok());

  // Searches in flight when SIGTERM arrives finish; the server then exits 0.
  std::atomic<int> done{0};
  std::mutex failures_mutex;
  std::vector<std::string> failures;
  std::vector<std::thread> clients;
  for (int c = 0; c < 4; ++c) {
    clients.emplace_back([&, c] {
      for (int i = 0; i < 5; ++i) {
        hier::v1::SearchResponse response;
        const grpc::Status status = SearchImage(images.png[c * 10 + i], 5, &response);
        // After the drain starts new calls are refused: UNAVAILABLE, or CANCELLED (gRPC's own,
        // without a message) for one that reached the server just as it began to stop. None
        // fails otherwise.
        const bool refused =
            status.error_code() == grpc::UNAVAILABLE ||
            (status.error_code() == grpc::CANCELLED && status.error_message() == "CANCELLED");
        if (status.ok()) {
          ++done;
        } else if (!refused) {
          std::lock_guard<std::mutex> lock(failures_mutex);
          failures.push_back(std::to_string(status.error_code()) + ": " + status.error_message());
        }
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_EQ(StopServer(), 0) << ReadText(server_->log_path());
  for (auto& client : clients) client.join();
  EXPECT_THAT(failures, ::testing::IsEmpty());
  EXPECT_THAT(ReadText(server_->log_path()), HasSubstr("hier-server: stopped"));

  StartServer();
  EXPECT_EQ(ItemCount(), 300);
  // The restart removed the stored images of the deleted items (those no item shares).
  const std::set<std::string> live_images(images.png.begin(), images.png.begin() + 300);
  EXPECT_EQ(FilesUnder(state_ + "/blobs"), static_cast<int64_t>(live_images.size()));
  EXPECT_THAT(ReadText(server_->log_path()), HasSubstr("stored images no item refers to"));
  hier::v1::SearchResponse after;
  ASSERT_TRUE(SearchImage(images.png[5], 10, &after).ok());
  ASSERT_EQ(after.neighbours_size(), before.neighbours_size());
  for (int i = 0; i < after.neighbours_size(); ++i) {
    EXPECT_EQ(after.neighbours(i).id(), before.neighbours(i).id());
    EXPECT_DOUBLE_EQ(after.neighbours(i).distance(), before.neighbours(i).distance());
  }
  EXPECT_EQ(StopServer(), 0);
}

// The JSON lines (--log-format json) of the last start in a server's log, which every start
// appends to: from its "listening" event on. Other lines (gRPC's own) are left out.
std::vector<nlohmann::json> LastStartLog(const std::string& log) {
  std::vector<nlohmann::json> lines;
  std::istringstream in(log);
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || line.front() != '{') continue;
    nlohmann::json parsed = nlohmann::json::parse(line);
    if (parsed["event"] == "listening") lines.clear();
    lines.push_back(std::move(parsed));
  }
  return lines;
}

TEST_F(ServerE2eTest, AStartOverADamagedSnapshotListensFirstNamesTheDamageAndTimesEachPhase) {
  StartServer({"--index-kind", "ivf-flat"});
  const LabelledImages images = TestImages(600);
  AddImages(images, 0, 600);
  ASSERT_EQ(StopServer(), 0) << ReadText(server_->log_path());
  std::vector<fs::path> snapshots;
  for (const auto& entry : fs::recursive_directory_iterator(state_)) {
    if (entry.path().extension() == ".snapshot") snapshots.push_back(entry.path());
  }
  ASSERT_EQ(snapshots.size(), 1u);
  {
    std::fstream damaged(snapshots[0], std::ios::in | std::ios::out | std::ios::binary);
    damaged.seekp(static_cast<std::streamoff>(fs::file_size(snapshots[0]) / 2));
    damaged.write("damage", 6);
  }

  StartServer({"--log-format", "json"});
  EXPECT_EQ(ItemCount(), 600);
  const std::vector<nlohmann::json> log = LastStartLog(ReadText(server_->log_path()));
  ASSERT_FALSE(log.empty());
  // It listened (NOT_SERVING) before it read anything (every phase below is logged after the
  // "listening" line), on the port it then served on.
  EXPECT_EQ(log.front()["grpc_port"], grpc_port_);
  std::map<std::string, nlohmann::json> phases;
  for (const nlohmann::json& line : log) {
    if (line["event"] == "startup_phase") phases[line["phase"].get<std::string>()] = line;
  }
  for (const char* phase : {"state", "model", "index_snapshot_read", "index_store_read",
                            "index_stage_rebuilt", "index_snapshot_written", "index", "images",
                            "jobs"}) {
    ASSERT_EQ(phases.count(phase), 1u) << phase << "\n" << ReadText(server_->log_path());
    EXPECT_GE(phases[phase]["seconds"].get<double>(), 0) << phase;
    const std::optional<double> exported =
        SeriesValue(Metrics(), "hier_startup_phase_seconds", {{"phase", phase}});
    ASSERT_TRUE(exported.has_value()) << phase;
    EXPECT_DOUBLE_EQ(*exported, phases[phase]["seconds"].get<double>()) << phase;
  }
  EXPECT_THAT(phases["index_snapshot_read"]["detail"].get<std::string>(), HasSubstr("not used"));
  EXPECT_THAT(phases["index_stage_rebuilt"]["detail"].get<std::string>(),
              HasSubstr("built from 600 items"));
  EXPECT_EQ(phases.count("index_stage_restored"), 0u);
  EXPECT_EQ(log.back()["event"], "serving");

  // The rebuilt stage was snapshotted: the next start uses it.
  ASSERT_EQ(StopServer(), 0);
  StartServer({"--log-format", "json"});
  bool restored = false;
  for (const nlohmann::json& line : LastStartLog(ReadText(server_->log_path()))) {
    restored = restored || line.value("phase", "") == "index_stage_restored";
  }
  EXPECT_TRUE(restored) << ReadText(server_->log_path());
}

// An HNSW gallery that reaches 1,000 items tunes its search settings for --target-recall by
// itself; Stats and /metrics report them, and `hier index tune` tunes for another target.
TEST_F(ServerE2eTest, TheIndexTunesItselfForItsTargetAndTheCliRetunesIt) {
  StartServer({"--index-kind", "hnsw", "--target-recall", "0.98"});
  const LabelledImages images = TestImages(1100);
  AddImages(images, 0, 1100);
  hier::v1::SearchSettings settings;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (!settings.tuned() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    grpc::ClientContext context;
    Authorize(&context);
    hier::v1::StatsResponse stats;
    ASSERT_TRUE(retrieval_->Stats(&context, hier::v1::StatsRequest(), &stats).ok());
    settings = stats.search_settings();
  }
  ASSERT_TRUE(settings.tuned()) << settings.DebugString();
  EXPECT_EQ(settings.target_recall(), 0.98);
  EXPECT_TRUE(settings.target_reached());
  EXPECT_GE(settings.measured_recall(), 0.98);
  EXPECT_EQ(settings.sample_queries(), 200);
  const std::string metrics = Metrics();
  EXPECT_EQ(SeriesValue(metrics, "hier_search_recall", {{"of", "measured"}}),
            settings.measured_recall());
  EXPECT_EQ(SeriesValue(metrics, "hier_search_effort", {{"knob", "ef_search"}}),
            static_cast<double>(settings.ef_search()));
  EXPECT_EQ(SeriesValue(metrics, "hier_search_effort", {{"knob", "overfetch"}}),
            static_cast<double>(settings.overfetch()));

  const auto cli = [&](std::vector<std::string> args, const std::string& output) {
    args.insert(args.begin(), {"--server", "127.0.0.1:" + std::to_string(grpc_port_), "--token",
                               kToken, "--timeout", "120"});
    ChildProcess process(HIER_CLI_BINARY, args, output);
    return process.Wait(std::chrono::seconds(180));
  };
  const std::string tuned = scratch_ + "/tune.json";
  ASSERT_EQ(cli({"--json", "index", "tune", "--target-recall", "0.9", "--sample-queries", "300"},
                tuned),
            0)
      << ReadText(tuned);
  const nlohmann::json answer = nlohmann::json::parse(ReadText(tuned));
  EXPECT_EQ(answer["target_recall"], 0.9);
  EXPECT_EQ(answer["sample_queries"], "300");
  EXPECT_GE(answer["measured_recall"].get<double>(), 0.9);
  const std::string stats = scratch_ + "/stats.txt";
  ASSERT_EQ(cli({"stats"}, stats), 0);
  EXPECT_THAT(ReadText(stats), HasSubstr("tuned for recall@10 0.9: measured"));
  const std::string refused = scratch_ + "/refused.txt";
  EXPECT_NE(cli({"index", "tune", "--target-recall", "2"}, refused), 0);
  EXPECT_THAT(ReadText(refused), HasSubstr("--target-recall: must be in (0, 1], got 2"));
}

TEST_F(ServerE2eTest, AHotSwapUnderSearchLoadFailsNoSearch) {
  const LabelledImages images = TestImages(200);
  StartServer();
  AddImages(images, 0, 200);

  std::atomic<bool> stop{false};
  std::atomic<int> served{0}, failed{0}, by_new_model{0};
  std::vector<std::thread> searchers;
  for (int t = 0; t < 3; ++t) {
    searchers.emplace_back([&, t] {
      for (int i = 0; !stop; ++i) {
        hier::v1::SearchResponse response;
        const grpc::Status status = SearchImage(images.png[(t * 50 + i) % 200], 5, &response);
        if (!status.ok() || response.neighbours_size() != 5) {
          ++failed;
        } else {
          ++served;
          by_new_model += response.model_version() == "run2/best";
        }
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  grpc::ClientContext context;
  Authorize(&context);
  hier::v1::LoadModelRequest load;
  load.set_version("run2");
  load.set_wait(true);
  hier::v1::LoadModelResponse loaded;
  const grpc::Status swapped = models_->LoadModel(&context, load, &loaded);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  stop = true;
  for (auto& searcher : searchers) searcher.join();
  ASSERT_TRUE(swapped.ok()) << swapped.error_message();
  EXPECT_TRUE(loaded.complete());
  EXPECT_EQ(loaded.reembedded_items(), 200);
  EXPECT_EQ(loaded.model().version(), "run2/best");
  EXPECT_EQ(failed.load(), 0);
  EXPECT_GT(served.load(), 0);
  EXPECT_GT(by_new_model.load(), 0);
  grpc::ClientContext swap_context;
  hier::v1::SwapProgress swap;
  ASSERT_TRUE(models_->GetSwap(&swap_context, {}, &swap).ok());
  EXPECT_TRUE(swap.complete());
  EXPECT_EQ(swap.reembedded_items(), 200);
  EXPECT_EQ(swap.error_code(), "");

  // The new model serves every item, re-embedded from its stored image.
  EXPECT_EQ(ItemCount(), 200);
  grpc::ClientContext get_context;
  hier::v1::GetItemRequest get;
  get.set_id(7);
  hier::v1::Item item;
  ASSERT_TRUE(retrieval_->GetItem(&get_context, get, &item).ok());
  EXPECT_EQ(item.model_version(), "run2/best");
  hier::v1::SearchResponse itself;
  ASSERT_TRUE(SearchImage(images.png[7], 1, &itself).ok());
  EXPECT_EQ(itself.neighbours(0).id(), 7);
  EXPECT_NEAR(itself.neighbours(0).distance(), 0.0, 1e-4);
  grpc::ClientContext list_context;
  hier::v1::ListModelsResponse models;
  ASSERT_TRUE(models_->ListModels(&list_context, {}, &models).ok());
  std::map<std::string, bool> serving;
  for (const hier::v1::Model& model : models.models()) serving[model.version()] = model.serving();
  EXPECT_EQ(serving.count("run/best"), 1u);
  EXPECT_FALSE(serving["run/best"]);
  EXPECT_TRUE(serving["run2/best"]);

  // A restart serves the swapped-in model: the state folder remembers it, over --model "run".
  ASSERT_EQ(StopServer(), 0);
  StartServer();
  EXPECT_THAT(ReadText(server_->log_path()), HasSubstr("is not loaded (hier model load swaps"));
  hier::v1::SearchResponse after_restart;
  ASSERT_TRUE(SearchImage(images.png[7], 1, &after_restart).ok());
  EXPECT_EQ(after_restart.model_version(), "run2/best");
  EXPECT_EQ(after_restart.neighbours(0).id(), 7);
}

TEST_F(ServerE2eTest, ASwapThatFailsInTheBackgroundIsReportedAndChangesNothing) {
  const LabelledImages images = TestImages(20);
  StartServer();
  AddImages(images, 0, 20);
  auto get_swap = [this] {
    grpc::ClientContext context;
    hier::v1::SwapProgress swap;
    const grpc::Status status = models_->GetSwap(&context, {}, &swap);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return swap;
  };
  EXPECT_EQ(get_swap().target_version(), "");

  // An item added as a vector: another model cannot re-embed it, which the swap finds out later.
  grpc::ClientContext get_context;
  hier::v1::GetItemRequest get;
  get.set_id(3);
  hier::v1::Item item;
  ASSERT_TRUE(retrieval_->GetItem(&get_context, get, &item).ok());
  grpc::ClientContext add_context;
  Authorize(&add_context);
  hier::v1::AddItemsRequest add;
  hier::v1::NewItem* vector_item = add.add_items();
  vector_item->set_id(99);
  *vector_item->mutable_vector() = item.vector();
  hier::v1::AddItemsResponse added;
  ASSERT_TRUE(retrieval_->AddItems(&add_context, add, &added).ok());

  grpc::ClientContext load_context;
  Authorize(&load_context);
  hier::v1::LoadModelRequest load;
  load.set_version("run2");
  hier::v1::LoadModelResponse loading;
  ASSERT_TRUE(models_->LoadModel(&load_context, load, &loading).ok());
  EXPECT_FALSE(loading.complete());
  hier::v1::SwapProgress swap = get_swap();
  for (int polls = 0; swap.running() && polls < 600; ++polls) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    swap = get_swap();
  }
  EXPECT_FALSE(swap.running());
  EXPECT_FALSE(swap.complete());
  EXPECT_EQ(swap.target_version(), "run2/best");
  EXPECT_EQ(swap.error_code(), "FAILED_PRECONDITION");
  EXPECT_THAT(swap.error_message(), HasSubstr("item 99"));

  hier::v1::SearchResponse found;
  ASSERT_TRUE(SearchImage(images.png[3], 2, &found).ok());
  EXPECT_EQ(found.model_version(), "run/best");
  EXPECT_EQ(ItemCount(), 21);
}

TEST_F(ServerE2eTest, TheProxyTreeAndTheAncestorsOfImagesAndResults) {
  const LabelledImages images = TestImages(60);
  StartServer();
  AddImages(images, 0, 50);

  grpc::ClientContext tree_context;
  hier::v1::HierarchyTree tree;
  ASSERT_TRUE(hierarchy_->GetHierarchy(&tree_context, {}, &tree).ok());
  EXPECT_EQ(tree.model_version(), "run/best");
  ASSERT_EQ(tree.proxies_size(), 64);
  int64_t members = 0;
  for (const hier::v1::Proxy& proxy : tree.proxies()) {
    EXPECT_EQ(proxy.point_size(), 32);
    if (proxy.parent() >= 0) {
      EXPECT_LT(tree.proxies(proxy.parent()).distance_to_origin(), proxy.distance_to_origin());
      EXPECT_EQ(tree.proxies(proxy.parent()).depth() + 1, proxy.depth());
    }
    members += proxy.members();
  }
  EXPECT_EQ(members, 1000);  // the run's evaluation images, each nearest to one proxy

  grpc::ClientContext context;
  hier::v1::AncestorsRequest request;
  request.set_image(images.png[55]);
  request.set_nearest(2);
  hier::v1::AncestorsResponse ancestors;
  ASSERT_TRUE(hierarchy_->Ancestors(&context, request, &ancestors).ok());
  ASSERT_EQ(ancestors.chains_size(), 2);
  for (const hier::v1::Chain& chain : ancestors.chains()) {
    ASSERT_GT(chain.ancestors_size(), 0);
    // Each step is the previous proxy's parent, up to a child of the root.
    for (int i = 1; i < chain.ancestors_size(); ++i) {
      EXPECT_EQ(tree.proxies(chain.ancestors(i - 1).proxy()).parent(), chain.ancestors(i).proxy());
    }
    EXPECT_EQ(tree.proxies(chain.ancestors(chain.ancestors_size() - 1).proxy()).parent(), -1);
  }
  EXPECT_LE(ancestors.chains(0).ancestors(0).distance(),
            ancestors.chains(1).ancestors(0).distance());

  grpc::ClientContext search_context;
  hier::v1::SearchRequest search;
  search.set_image(images.png[55]);
  search.set_k(3);
  search.set_with_ancestors(true);
  hier::v1::SearchResponse found;
  ASSERT_TRUE(retrieval_->Search(&search_context, search, &found).ok());
  ASSERT_EQ(found.neighbours_size(), 3);
  for (const hier::v1::Neighbour& neighbour : found.neighbours()) {
    ASSERT_GT(neighbour.ancestors_size(), 0);
    EXPECT_EQ(tree.proxies(neighbour.ancestors(neighbour.ancestors_size() - 1).proxy()).parent(),
              -1);
  }
}

}  // namespace
}  // namespace hier::testing
