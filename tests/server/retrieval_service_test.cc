#include "server/rpc/retrieval_service.h"

#include <gmock/gmock.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <functional>
#include <limits>
#include <memory>
#include <optional>
#include <random>
#include <string>

#include "server/storage/file_blob_store.h"

namespace hier::testing {
namespace {

using ::testing::HasSubstr;

constexpr int kDim = 8;

std::vector<float> PointFor(int64_t id) {
  std::mt19937 rng(static_cast<uint32_t>(id) + 17u);
  std::uniform_real_distribution<float> uniform(-0.5f, 0.5f);
  std::vector<float> point(kDim);
  for (float& value : point) value = uniform(rng);
  return point;
}

// A Retrieval server on a loopback port over a fresh collection, and a stub talking to it.
class RetrievalServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    directory_ = std::filesystem::path(::testing::TempDir()) /
                 ("retrieval-" + std::to_string(::getpid()) + "-" +
                  ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(directory_);
    index::CollectionOptions options;
    options.directory = directory_.string();
    options.index.dim = kDim;
    options.index.max_k = 50;
    collection_ = std::move(index::Collection::Open(options)).value();
    serving_.Set({nullptr, collection_});  // no model is loaded
    server::RetrievalLimits limits;
    limits.max_items_per_call = 100;
    blobs_ = std::move(server::FileBlobStore::Open((directory_ / "blobs").string())).value();
    server::RetrievalBackends backends;
    backends.serving = &serving_;
    backends.blobs = &*blobs_;
    backends.authorizer = &authorizer_;
    service_ = std::make_unique<server::RetrievalService>(backends, limits);
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    builder.RegisterService(service_.get());
    server_ = builder.BuildAndStart();
    ASSERT_GT(port, 0);
    stub_ = hier::v1::Retrieval::NewStub(grpc::CreateChannel("127.0.0.1:" + std::to_string(port),
                                                             grpc::InsecureChannelCredentials()));
  }

  void TearDown() override {
    server_->Shutdown();
    std::filesystem::remove_all(directory_);
  }

  grpc::Status Add(int64_t first, int64_t count) {
    hier::v1::AddItemsRequest request;
    for (int64_t id = first; id < first + count; ++id) {
      hier::v1::NewItem* item = request.add_items();
      item->set_id(id);
      item->set_key("img/" + std::to_string(id) + ".png");
      item->set_label(id % 2 == 0 ? "even" : "odd");
      for (float value : PointFor(id)) item->mutable_vector()->add_values(value);
    }
    hier::v1::AddItemsResponse response;
    grpc::ClientContext context;
    return stub_->AddItems(&context, request, &response);
  }

  grpc::Status Search(const hier::v1::SearchRequest& request, hier::v1::SearchResponse* response) {
    grpc::ClientContext context;
    return stub_->Search(&context, request, response);
  }

  std::filesystem::path directory_;
  server::ServingSlot serving_;
  std::unique_ptr<server::FileBlobStore> blobs_;
  server::Authorizer authorizer_{"", false};
  std::shared_ptr<index::Collection> collection_;
  std::unique_ptr<server::RetrievalService> service_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<hier::v1::Retrieval::Stub> stub_;
};

TEST_F(RetrievalServiceTest, ItemsAddedByVectorAreFoundByVectorAndById) {
  ASSERT_TRUE(Add(0, 60).ok());
  hier::v1::SearchRequest by_vector;
  by_vector.set_k(3);
  for (float value : PointFor(41)) by_vector.mutable_vector()->add_values(value);
  hier::v1::SearchResponse found;
  ASSERT_TRUE(Search(by_vector, &found).ok());
  ASSERT_EQ(found.neighbours_size(), 3);
  EXPECT_EQ(found.neighbours(0).id(), 41);
  EXPECT_EQ(found.neighbours(0).distance(), 0.0);
  EXPECT_EQ(found.neighbours(0).key(), "img/41.png");
  EXPECT_EQ(found.neighbours(0).label(), "odd");
  EXPECT_LE(found.neighbours(1).distance(), found.neighbours(2).distance());

  hier::v1::SearchRequest by_id;
  by_id.set_k(2);
  by_id.set_item_id(41);
  by_id.set_label("even");
  hier::v1::SearchResponse neighbours;
  ASSERT_TRUE(Search(by_id, &neighbours).ok());
  ASSERT_EQ(neighbours.neighbours_size(), 2);
  for (const auto& n : neighbours.neighbours()) {
    EXPECT_NE(n.id(), 41);
    EXPECT_EQ(n.label(), "even");
  }

  hier::v1::DeleteItemsRequest doomed;
  doomed.add_ids(41);
  hier::v1::DeleteItemsResponse deleted;
  grpc::ClientContext delete_context;
  ASSERT_TRUE(stub_->DeleteItems(&delete_context, doomed, &deleted).ok());
  hier::v1::SearchResponse after;
  ASSERT_TRUE(Search(by_vector, &after).ok());
  EXPECT_NE(after.neighbours(0).id(), 41);

  hier::v1::Item item;
  grpc::ClientContext get_context;
  hier::v1::GetItemRequest get;
  get.set_id(7);
  ASSERT_TRUE(stub_->GetItem(&get_context, get, &item).ok());
  EXPECT_EQ(item.key(), "img/7.png");
  EXPECT_EQ(item.vector().values_size(), kDim);

  hier::v1::StatsResponse stats;
  grpc::ClientContext stats_context;
  ASSERT_TRUE(stub_->Stats(&stats_context, hier::v1::StatsRequest(), &stats).ok());
  EXPECT_EQ(stats.items(), 59);
  EXPECT_EQ(stats.dim(), kDim);
}

TEST_F(RetrievalServiceTest, ListItemsPagesThroughEveryItemInIdOrderOnce) {
  ASSERT_TRUE(Add(0, 25).ok());
  ASSERT_TRUE(Add(-3, 1).ok());  // ids may be negative: the first page starts below them
  for (const std::string label : {"", "odd"}) {
    std::vector<int64_t> listed;
    hier::v1::ListItemsRequest request;
    request.set_page_size(7);
    request.set_label(label);
    int pages = 0;
    do {
      hier::v1::ListItemsResponse page;
      grpc::ClientContext context;
      ASSERT_TRUE(stub_->ListItems(&context, request, &page).ok());
      ASSERT_LE(page.items_size(), 7);
      for (const hier::v1::ItemSummary& item : page.items()) {
        listed.push_back(item.id());
        EXPECT_EQ(item.key(), "img/" + std::to_string(item.id()) + ".png");
        if (!label.empty()) {
          EXPECT_EQ(item.label(), label);
        }
      }
      request.set_page_token(page.next_page_token());
      ++pages;
    } while (!request.page_token().empty() && pages < 10);
    std::vector<int64_t> expected;
    for (int64_t id = -3; id < 25; ++id) {
      if ((id >= 0 || id == -3) && (label.empty() || (id % 2 != 0))) expected.push_back(id);
    }
    EXPECT_EQ(listed, expected) << "label '" << label << "'";
    EXPECT_EQ(pages, static_cast<int>((expected.size() + 6) / 7)) << "label '" << label << "'";
  }
}

TEST_F(RetrievalServiceTest, ABatchAnswersEachQueryAsSearchDoes) {
  ASSERT_TRUE(Add(0, 60).ok());
  // Vectors with two settings (two batches through the index), and ids, interleaved.
  hier::v1::SearchBatchRequest batch;
  for (int64_t q = 0; q < 12; ++q) {
    hier::v1::SearchRequest& query = *batch.add_queries();
    query.set_k(q % 3 == 0 ? 3 : 7);
    if (q % 4 == 1) {
      query.set_item_id(q);
    } else {
      for (float value : PointFor(1000 + q)) query.mutable_vector()->add_values(value);
      if (q % 3 == 0) query.set_label("odd");
    }
  }
  hier::v1::SearchBatchResponse answers;
  grpc::ClientContext context;
  const grpc::Status status = stub_->SearchBatch(&context, batch, &answers);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(answers.results_size(), batch.queries_size());
  for (int q = 0; q < batch.queries_size(); ++q) {
    hier::v1::SearchResponse one;
    ASSERT_TRUE(Search(batch.queries(q), &one).ok());
    const hier::v1::SearchResponse& got = answers.results(q);
    ASSERT_EQ(got.neighbours_size(), one.neighbours_size()) << q;
    for (int i = 0; i < one.neighbours_size(); ++i) {
      EXPECT_EQ(got.neighbours(i).id(), one.neighbours(i).id()) << q;
      EXPECT_EQ(got.neighbours(i).distance(), one.neighbours(i).distance()) << q;
      EXPECT_EQ(got.neighbours(i).key(), one.neighbours(i).key()) << q;
      EXPECT_EQ(got.neighbours(i).label(), one.neighbours(i).label()) << q;
    }
  }
}

TEST_F(RetrievalServiceTest, ABadQueryInABatchFailsItNamingTheQuery) {
  ASSERT_TRUE(Add(0, 10).ok());
  struct Case {
    std::function<void(hier::v1::SearchRequest*)> second;  // the first query is good
    grpc::StatusCode code;
    std::string message;
  };
  const std::vector<Case> cases = {
      {[](hier::v1::SearchRequest* q) { q->mutable_vector()->add_values(0.1f); },
       grpc::StatusCode::INVALID_ARGUMENT, "queries[1].vector: expected 8 floats, got 1"},
      {[](hier::v1::SearchRequest* q) { q->set_item_id(999); }, grpc::StatusCode::NOT_FOUND,
       "queries[1]."},
      {[](hier::v1::SearchRequest*) {}, grpc::StatusCode::INVALID_ARGUMENT,
       "queries[1].query: set one of image, vector or item_id"},
      {[](hier::v1::SearchRequest* q) { q->set_image("not an image"); },
       grpc::StatusCode::FAILED_PRECONDITION, "queries[1].image: no model is loaded"},
  };
  for (const Case& c : cases) {
    hier::v1::SearchBatchRequest batch;
    hier::v1::SearchRequest* first = batch.add_queries();
    first->set_k(2);
    for (float value : PointFor(5)) first->mutable_vector()->add_values(value);
    hier::v1::SearchRequest* second = batch.add_queries();
    second->set_k(2);
    c.second(second);
    hier::v1::SearchBatchResponse answers;
    grpc::ClientContext context;
    const grpc::Status status = stub_->SearchBatch(&context, batch, &answers);
    EXPECT_EQ(status.error_code(), c.code) << c.message << ": " << status.error_message();
    EXPECT_THAT(status.error_message(), HasSubstr(c.message));
  }
  hier::v1::SearchBatchRequest empty;
  hier::v1::SearchBatchResponse answers;
  grpc::ClientContext context;
  EXPECT_EQ(stub_->SearchBatch(&context, empty, &answers).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  hier::v1::SearchBatchRequest many;
  for (int i = 0; i < 101; ++i) many.add_queries()->set_item_id(1);
  grpc::ClientContext too_many;
  const grpc::Status refused = stub_->SearchBatch(&too_many, many, &answers);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(refused.error_message(), HasSubstr("queries: 101 in one call, at most 100"));
}

// An HNSW gallery searched with too short a candidate list: TuneSearch finds settings that reach
// the target, Stats reports them, and bad targets are refused naming the field.
TEST_F(RetrievalServiceTest, TuneSearchReachesTheTargetAndStatsReportsTheSettings) {
  index::CollectionOptions options;
  options.directory = (directory_ / "hnsw").string();
  options.index.dim = kDim;
  options.index.max_k = 50;
  options.index.candidates.kind = "hnsw";
  options.index.candidates.hnsw_m = 4;
  options.index.candidates.ef_search = 1;
  options.index.default_overfetch = 10;
  serving_.Set({nullptr, std::move(index::Collection::Open(options)).value()});
  for (int64_t first = 0; first < 1000; first += 100) ASSERT_TRUE(Add(first, 100).ok());
  const auto stats = [&] {
    hier::v1::StatsResponse response;
    grpc::ClientContext context;
    EXPECT_TRUE(stub_->Stats(&context, hier::v1::StatsRequest(), &response).ok());
    return response.search_settings();
  };
  EXPECT_FALSE(stats().tuned());
  EXPECT_EQ(stats().ef_search(), 1);
  EXPECT_EQ(stats().overfetch(), 10);

  const auto tune = [&](std::function<void(hier::v1::TuneSearchRequest&)> fill,
                        hier::v1::SearchSettings* settings) {
    hier::v1::TuneSearchRequest request;
    fill(request);
    grpc::ClientContext context;
    return stub_->TuneSearch(&context, request, settings);
  };
  hier::v1::SearchSettings tuned;
  const grpc::Status status = tune(
      [](auto& r) {
        r.set_target_recall(0.99);
        r.set_sample_queries(1000);
      },
      &tuned);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_TRUE(tuned.tuned());
  EXPECT_TRUE(tuned.target_reached());
  EXPECT_EQ(tuned.recall_k(), 10);
  EXPECT_EQ(tuned.sample_queries(), 1000);
  EXPECT_GE(tuned.measured_recall(), 0.99);
  EXPECT_GT(tuned.sample_queries_per_second(), 0);
  EXPECT_GT(tuned.ef_search() + tuned.overfetch(), 11);
  const hier::v1::SearchSettings reported = stats();
  EXPECT_EQ(reported.ef_search(), tuned.ef_search());
  EXPECT_EQ(reported.overfetch(), tuned.overfetch());
  EXPECT_EQ(reported.measured_recall(), tuned.measured_recall());

  struct Case {
    std::function<void(hier::v1::TuneSearchRequest&)> fill;
    std::string message;
  };
  for (const Case& c : std::vector<Case>{
           {[](auto& r) { r.set_target_recall(1.5); }, "target_recall: must be in (0, 1], got 1.5"},
           {[](auto& r) { r.set_target_recall(-0.5); }, "target_recall: must be in (0, 1], got -0.5"},
           {[](auto& r) { r.set_k(51); }, "k: must be at most 50, got 51"},
           {[](auto& r) { r.set_k(-1); }, "k: must be >= 1, got -1"},
           {[](auto& r) { r.set_sample_queries(10001); },
            "sample_queries: must be at most 10000, got 10001"},
           {[](auto& r) { r.set_sample_queries(-3); }, "sample_queries: must be >= 1, got -3"}}) {
    hier::v1::SearchSettings ignored;
    const grpc::Status refused = tune(c.fill, &ignored);
    EXPECT_EQ(refused.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << c.message;
    EXPECT_THAT(refused.error_message(), HasSubstr(c.message));
  }
  EXPECT_EQ(stats().measured_recall(), tuned.measured_recall());  // unchanged by the refusals
}

TEST_F(RetrievalServiceTest, BadRequestsGetTheRightCodeAndNameTheField) {
  ASSERT_TRUE(Add(0, 10).ok());
  const auto search_status = [&](auto fill) {
    hier::v1::SearchRequest request;
    request.set_k(3);
    fill(request);
    hier::v1::SearchResponse response;
    return Search(request, &response);
  };
  const auto vector_of = [](std::vector<float> values) {
    hier::v1::Vector vector;
    for (float value : values) vector.add_values(value);
    return vector;
  };
  std::vector<float> nan_point = PointFor(1);
  nan_point[2] = std::numeric_limits<float>::quiet_NaN();
  std::vector<float> outside = PointFor(1);
  outside[0] = 10.0f;
  struct Case {
    grpc::StatusCode code;
    std::string message;
    grpc::Status status;
  };
  const std::vector<Case> cases = {
      {grpc::StatusCode::INVALID_ARGUMENT, "query: set one of",
       search_status([](hier::v1::SearchRequest&) {})},
      {grpc::StatusCode::INVALID_ARGUMENT, "expected 1 x 8 = 8 floats, got 3",
       search_status([&](hier::v1::SearchRequest& r) {
         *r.mutable_vector() = vector_of({0.1f, 0.2f, 0.3f});
       })},
      {grpc::StatusCode::INVALID_ARGUMENT, "coordinate 2 is nan",
       search_status(
           [&](hier::v1::SearchRequest& r) { *r.mutable_vector() = vector_of(nan_point); })},
      {grpc::StatusCode::INVALID_ARGUMENT, "outside the Poincare ball",
       search_status(
           [&](hier::v1::SearchRequest& r) { *r.mutable_vector() = vector_of(outside); })},
      {grpc::StatusCode::INVALID_ARGUMENT, "k: must be in [1, 50], got 0",
       search_status([&](hier::v1::SearchRequest& r) {
         r.set_k(0);
         r.set_item_id(1);
       })},
      {grpc::StatusCode::INVALID_ARGUMENT, "k: must be in [1, 50], got 1000000",
       search_status([&](hier::v1::SearchRequest& r) {
         r.set_k(1000000);
         r.set_item_id(1);
       })},
      {grpc::StatusCode::NOT_FOUND, "id: no item has id 999",
       search_status([](hier::v1::SearchRequest& r) { r.set_item_id(999); })},
      {grpc::StatusCode::NOT_FOUND, "label: no item has label \"cat\"",
       search_status([](hier::v1::SearchRequest& r) {
         r.set_item_id(1);
         r.set_label("cat");
       })},
      {grpc::StatusCode::FAILED_PRECONDITION, "image: no model is loaded",
       search_status([](hier::v1::SearchRequest& r) { r.set_image("\x89PNG"); })},
      {grpc::StatusCode::RESOURCE_EXHAUSTED, "items: 101 in one call, at most 100", Add(1000, 101)},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(c.status.error_code(), c.code) << c.message << ": " << c.status.error_message();
    EXPECT_THAT(c.status.error_message(), HasSubstr(c.message));
  }
  hier::v1::AddItemsRequest bad_item;
  hier::v1::NewItem* item = bad_item.add_items();
  item->set_id(50);
  item->mutable_vector()->add_values(0.1f);
  hier::v1::AddItemsResponse added;
  grpc::ClientContext add_context;
  const grpc::Status rejected = stub_->AddItems(&add_context, bad_item, &added);
  EXPECT_EQ(rejected.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(rejected.error_message(), HasSubstr("items[0].vector: expected 8 floats, got 1"));
  hier::v1::DeleteItemsRequest unknown;
  unknown.add_ids(3);
  unknown.add_ids(4242);
  hier::v1::DeleteItemsResponse deleted;
  grpc::ClientContext delete_context;
  const grpc::Status not_found = stub_->DeleteItems(&delete_context, unknown, &deleted);
  EXPECT_EQ(not_found.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_THAT(not_found.error_message(), HasSubstr("no item has id 4242"));
  // Nothing was written or removed by the failed calls.
  EXPECT_EQ(collection_->index().size(), 10);
}

}  // namespace
}  // namespace hier::testing
