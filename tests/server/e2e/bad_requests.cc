#include "tests/server/e2e/bad_requests.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "hier/v1/hierarchy.pb.h"
#include "hier/v1/models.pb.h"
#include "tests/server/e2e/server_fixture.h"

namespace hier::testing {
namespace {

using ::testing::HasSubstr;

hier::v1::Vector VectorOf(std::vector<float> values) {
  hier::v1::Vector vector;
  vector.mutable_values()->Add(values.begin(), values.end());
  return vector;
}

}  // namespace

grpc::Status BadRequests::Embed(const std::vector<std::string>& images) {
  hier::v1::EmbedRequest request;
  for (const std::string& image : images) request.add_images(image);
  return Send<hier::v1::EmbedResponse>("hier.v1.Retrieval/Embed", request);
}

grpc::Status BadRequests::Search(const std::function<void(hier::v1::SearchRequest&)>& fill) {
  hier::v1::SearchRequest request;
  request.set_k(5);
  fill(request);
  return Send<hier::v1::SearchResponse>("hier.v1.Retrieval/Search", request);
}

grpc::Status BadRequests::Add(const std::function<void(hier::v1::AddItemsRequest&)>& fill,
                              const std::string& authorization) {
  hier::v1::AddItemsRequest request;
  fill(request);
  hier::v1::AddItemsResponse response;
  return api_->Call("hier.v1.Retrieval/AddItems", request, &response, authorization);
}

grpc::Status BadRequests::Delete(std::vector<int64_t> ids, bool authorized) {
  hier::v1::DeleteItemsRequest request;
  request.mutable_ids()->Add(ids.begin(), ids.end());
  return Send<hier::v1::DeleteItemsResponse>("hier.v1.Retrieval/DeleteItems", request, authorized);
}

grpc::Status BadRequests::Load(const std::string& version, bool authorized) {
  hier::v1::LoadModelRequest request;
  request.set_version(version);
  request.set_wait(true);
  return Send<hier::v1::LoadModelResponse>("hier.v1.Models/LoadModel", request, authorized);
}

grpc::Status BadRequests::Get(int64_t id) {
  hier::v1::GetItemRequest request;
  request.set_id(id);
  return Send<hier::v1::Item>("hier.v1.Retrieval/GetItem", request);
}

grpc::Status BadRequests::List(int32_t page_size, const std::string& page_token) {
  hier::v1::ListItemsRequest request;
  request.set_page_size(page_size);
  request.set_page_token(page_token);
  return Send<hier::v1::ListItemsResponse>("hier.v1.Retrieval/ListItems", request);
}

grpc::Status BadRequests::Tune(double target_recall, int32_t sample_queries, bool authorized) {
  hier::v1::TuneSearchRequest request;
  request.set_target_recall(target_recall);
  request.set_sample_queries(sample_queries);
  return Send<hier::v1::SearchSettings>("hier.v1.Retrieval/TuneSearch", request, authorized);
}

// Each case owns copies of what it sends: the cases outlive this call.
std::vector<BadCase> BadRequests::Cases(const std::string& png) {
  std::string huge_png = png;
  huge_png[16] = 0x01;  // the header now claims an image 16,777,244 pixels wide
  const std::string truncated = png.substr(0, png.size() / 2);
  std::string corrupt = png;
  for (size_t i = 60; i < corrupt.size() - 12; ++i) corrupt[i] = static_cast<char>(i * 7);
  const float nan = std::numeric_limits<float>::quiet_NaN();
  std::vector<float> inside(32, 0.01f), wrong_dim(31, 0.01f), outside(32, 1.0f), with_nan = inside;
  with_nan[3] = nan;
  auto vector_item = [](int64_t id, const std::vector<float>& values) {
    return [=](hier::v1::AddItemsRequest& request) {
      hier::v1::NewItem* item = request.add_items();
      item->set_id(id);
      *item->mutable_vector() = VectorOf(values);
    };
  };

  return {
      {"embed nothing", [=] { return Embed({}); }, grpc::INVALID_ARGUMENT, "images"},
      {"embed empty bytes", [=] { return Embed({""}); }, grpc::INVALID_ARGUMENT, "images[0]"},
      {"embed garbage", [=] { return Embed({"GIF? no, plain text"}); }, grpc::INVALID_ARGUMENT,
       "images[0]"},
      {"embed truncated",
       [=] {
         return Embed({png, truncated});
       },
       grpc::INVALID_ARGUMENT, "images[1]"},
      {"embed corrupt body", [=] { return Embed({corrupt}); }, grpc::INVALID_ARGUMENT, "images[0]"},
      {"embed huge dimensions", [=] { return Embed({huge_png}); }, grpc::INVALID_ARGUMENT,
       "images[0]: 16777244x28 pixels"},
      {"embed too many", [=] { return Embed(std::vector<std::string>(17, png)); },
       grpc::RESOURCE_EXHAUSTED, "images: 17 in one call, at most 16"},
      {"embed oversize message", [=] { return Embed({std::string(5 << 20, 'x')}); },
       grpc::RESOURCE_EXHAUSTED, "larger than max"},
      {"search without query", [=] { return Search([](auto&) {}); }, grpc::INVALID_ARGUMENT,
       "query"},
      {"search wrong dimension",
       [=] { return Search([&](auto& r) { *r.mutable_vector() = VectorOf(wrong_dim); }); },
       grpc::INVALID_ARGUMENT, "query"},
      {"search NaN",
       [=] { return Search([&](auto& r) { *r.mutable_vector() = VectorOf(with_nan); }); },
       grpc::INVALID_ARGUMENT, "query"},
      {"search outside the ball",
       [=] { return Search([&](auto& r) { *r.mutable_vector() = VectorOf(outside); }); },
       grpc::INVALID_ARGUMENT, "query"},
      {"search k 0",
       [=] {
         return Search([&](auto& r) {
           *r.mutable_vector() = VectorOf(inside);
           r.set_k(0);
         });
       },
       grpc::INVALID_ARGUMENT, "k"},
      {"search k huge",
       [=] {
         return Search([&](auto& r) {
           *r.mutable_vector() = VectorOf(inside);
           r.set_k(1 << 30);
         });
       },
       grpc::INVALID_ARGUMENT, "k"},
      {"search negative overfetch",
       [=] {
         return Search([&](auto& r) {
           *r.mutable_vector() = VectorOf(inside);
           r.set_overfetch(-1);
         });
       },
       grpc::INVALID_ARGUMENT, "overfetch"},
      {"search unknown item", [=] { return Search([](auto& r) { r.set_item_id(999999); }); },
       grpc::NOT_FOUND, "id"},
      {"search unknown label",
       [=] {
         return Search([&](auto& r) {
           *r.mutable_vector() = VectorOf(inside);
           r.set_label("no such class");
         });
       },
       grpc::NOT_FOUND, "label"},
      {"search garbage image", [=] { return Search([](auto& r) { r.set_image("<html>"); }); },
       grpc::INVALID_ARGUMENT, "image"},
      {"search empty image", [=] { return Search([](auto& r) { r.set_image(""); }); },
       grpc::INVALID_ARGUMENT, "image"},
      {"add without token", [=] { return Add(vector_item(900, inside), ""); },
       grpc::UNAUTHENTICATED, "authorization"},
      {"add with a wrong token", [=] { return Add(vector_item(900, inside), "Bearer nope"); },
       grpc::UNAUTHENTICATED, "authorization"},
      {"add with another scheme", [=] { return Add(vector_item(900, inside), "Basic abc"); },
       grpc::UNAUTHENTICATED, "authorization"},
      {"add item without content", [=] { return Add([](auto& r) { r.add_items()->set_id(901); }); },
       grpc::INVALID_ARGUMENT, "items[0]"},
      {"add wrong dimension", [=] { return Add(vector_item(902, wrong_dim)); },
       grpc::INVALID_ARGUMENT, "items[0].vector"},
      {"add NaN vector", [=] { return Add(vector_item(903, with_nan)); }, grpc::INVALID_ARGUMENT,
       "items[0].vector"},
      {"add vector outside the ball", [=] { return Add(vector_item(904, outside)); },
       grpc::INVALID_ARGUMENT, "items[0].vector"},
      {"add a garbage image after a good one",
       [=] {
         return Add([&](auto& r) {
           hier::v1::NewItem* good = r.add_items();
           good->set_id(905);
           good->set_image(png);
           hier::v1::NewItem* bad = r.add_items();
           bad->set_id(906);
           bad->set_image("garbage");
         });
       },
       grpc::INVALID_ARGUMENT, "items[1].image"},
      {"add too many items",
       [=] {
         return Add([&](auto& r) {
           for (int i = 0; i < 101; ++i) vector_item(1000 + i, inside)(r);
         });
       },
       grpc::RESOURCE_EXHAUSTED, "items: 101 in one call, at most 100"},
      {"delete unknown id",
       [=] {
         return Delete({3, 999999});
       },
       grpc::NOT_FOUND, "999999"},
      {"delete without token", [=] { return Delete({3}, false); }, grpc::UNAUTHENTICATED,
       "authorization"},
      {"get unknown id", [=] { return Get(999999); }, grpc::NOT_FOUND, "id"},
      {"list a page too large", [=] { return List(101, ""); }, grpc::INVALID_ARGUMENT,
       "page_size: must be in [0, 100]"},
      {"list a negative page", [=] { return List(-1, ""); }, grpc::INVALID_ARGUMENT, "page_size"},
      {"list after a made-up token", [=] { return List(10, "../../etc"); }, grpc::INVALID_ARGUMENT,
       "page_token"},
      {"tune for a recall above 1", [=] { return Tune(1.5, 0, true); }, grpc::INVALID_ARGUMENT,
       "target_recall: must be in (0, 1], got 1.5"},
      {"tune with a sample too large", [=] { return Tune(0.9, 1 << 20, true); },
       grpc::INVALID_ARGUMENT, "sample_queries: must be at most 10000"},
      {"tune without token", [=] { return Tune(0.9, 0, false); }, grpc::UNAUTHENTICATED,
       "authorization"},
      {"load an unknown model", [=] { return Load("no-such-run/best"); }, grpc::NOT_FOUND,
       "version"},
      {"load a model outside the runs", [=] { return Load("../../etc"); }, grpc::INVALID_ARGUMENT,
       "version"},
      {"load without token", [=] { return Load("run2", false); }, grpc::UNAUTHENTICATED,
       "authorization"},
      {"hierarchy of an unknown model",
       [=] {
         hier::v1::GetHierarchyRequest request;
         request.set_model_version("nope");
         return Send<hier::v1::HierarchyTree>("hier.v1.Hierarchy/GetHierarchy", request);
       },
       grpc::NOT_FOUND, "model_version"},
      {"ancestors with a negative count",
       [=] {
         hier::v1::AncestorsRequest request;
         *request.mutable_vector() = VectorOf(inside);
         request.set_nearest(-2);
         return Send<hier::v1::AncestorsResponse>("hier.v1.Hierarchy/Ancestors", request);
       },
       grpc::INVALID_ARGUMENT, "nearest"},
      {"ancestors of a point outside the ball",
       [=] {
         hier::v1::AncestorsRequest request;
         *request.mutable_vector() = VectorOf(outside);
         return Send<hier::v1::AncestorsResponse>("hier.v1.Hierarchy/Ancestors", request);
       },
       grpc::INVALID_ARGUMENT, "vector"},
  };
}

void BadRequests::ExpectEachRefused(const std::string& png) {
  const std::vector<BadCase> cases = Cases(png);
  ASSERT_GE(cases.size(), 30u);
  for (const BadCase& bad : cases) {
    const grpc::Status status = bad.call();
    EXPECT_EQ(status.error_code(), bad.code) << bad.name << ": " << status.error_message();
    EXPECT_THAT(status.error_message(), HasSubstr(bad.message)) << bad.name;
  }
}

}  // namespace hier::testing
