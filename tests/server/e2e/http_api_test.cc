// The HTTP/JSON API of a running hier-server: every RPC answers through JSON as it does through
// gRPC, every bad request of the gRPC suite gets the mapped HTTP status and names the field, and
// what HTTP itself can get wrong (malformed JSON, a wrong content type, an oversize body, paths
// that climb out, slow clients) leaves the server up and the gallery unchanged.
#include <google/protobuf/util/json_util.h>
#include <google/protobuf/util/message_differencer.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <functional>
#include <future>
#include <sstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "hier/v1/hierarchy.pb.h"
#include "hier/v1/models.pb.h"
#include "hier/v1/training.pb.h"
#include "tests/server/e2e/api_caller.h"
#include "tests/server/e2e/bad_requests.h"
#include "tests/server/e2e/server_fixture.h"

namespace hier::testing {
namespace {

using google::protobuf::util::MessageDifferencer;

class HttpApiTest : public ServerE2eTest {
 protected:
  httplib::Result Post(const std::string& path, const std::string& body,
                       const std::string& content_type = "application/json",
                       const httplib::Headers& headers = {}) {
    httplib::Client client("127.0.0.1", http_port_);
    client.set_read_timeout(std::chrono::seconds(60));
    return client.Post(path, headers, body, content_type);
  }

  // A connected socket to the API whose reads give up after `timeout`.
  int Connect(std::chrono::seconds timeout = std::chrono::seconds(15)) {
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(static_cast<uint16_t>(http_port_));
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
    timeval wait{static_cast<time_t>(timeout.count()), 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &wait, sizeof(wait));
    return fd;
  }

  // Sends `request` as it is and reads the answer until the server closes (or the read times out).
  std::string Exchange(const std::string& request) {
    const int fd = Connect();
    EXPECT_EQ(send(fd, request.data(), request.size(), MSG_NOSIGNAL),
              static_cast<ssize_t>(request.size()));
    std::string answer;
    char buffer[4096];
    for (ssize_t n; (n = recv(fd, buffer, sizeof(buffer), 0)) > 0;) answer.append(buffer, n);
    close(fd);
    return answer;
  }

  // The error body of a refused request: {"code", "status", "message"}.
  static nlohmann::json ErrorOf(const httplib::Result& result) {
    return nlohmann::json::parse(result->body, nullptr, false);
  }
};

// A read sent through both faces: its request, and an empty response of its type.
struct SameCall {
  std::string method;
  std::function<std::unique_ptr<google::protobuf::Message>()> request;
  std::function<std::unique_ptr<google::protobuf::Message>()> response;
};

template <typename Request, typename Response>
SameCall Same(const std::string& method, std::function<void(Request&)> fill) {
  return SameCall{method,
                  [fill] {
                    auto request = std::make_unique<Request>();
                    fill(*request);
                    return std::unique_ptr<google::protobuf::Message>(std::move(request));
                  },
                  [] { return std::unique_ptr<google::protobuf::Message>(new Response()); }};
}

TEST_F(HttpApiTest, EveryUnaryRpcAnswersThroughJsonAsThroughGrpc) {
  const LabelledImages images = TestImages(12);
  StartServer();
  AddImages(images, 0, 8);
  const std::unique_ptr<ApiCaller> grpc_api = GrpcCaller(channel_);
  const std::unique_ptr<ApiCaller> json_api = JsonCaller(http_port_);
  hier::v1::Vector query;
  {
    hier::v1::EmbedRequest request;
    request.add_images(images.png[9]);
    hier::v1::EmbedResponse embedded;
    ASSERT_TRUE(grpc_api->Call("hier.v1.Retrieval/Embed", request, &embedded, "").ok());
    query = embedded.embeddings(0);
  }
  // A write through each face, with ids of its own: the same count, and the later one numbered
  // after the earlier one's changes.
  const std::string token = std::string("Bearer ") + kToken;
  hier::v1::AddItemsResponse json_added, grpc_added;
  for (auto [api, first, answer] : {std::tuple{json_api.get(), 100, &json_added},
                                    std::tuple{grpc_api.get(), 200, &grpc_added}}) {
    hier::v1::AddItemsRequest request;
    for (int i = 0; i < 2; ++i) {
      hier::v1::NewItem* item = request.add_items();
      item->set_id(first + i);
      item->set_image(images.png[10 + i]);
      item->set_label("added");
    }
    ASSERT_TRUE(api->Call("hier.v1.Retrieval/AddItems", request, answer, token).ok());
  }
  EXPECT_EQ(json_added.added(), 2);
  EXPECT_EQ(grpc_added.added(), 2);
  EXPECT_EQ(grpc_added.last_seq(), json_added.last_seq() + 2);

  // Reads: the same request through each face, the same answer.
  const std::vector<SameCall> reads = {
      Same<hier::v1::StatsRequest, hier::v1::StatsResponse>("hier.v1.Retrieval/Stats",
                                                            [](auto&) {}),
      Same<hier::v1::EmbedRequest, hier::v1::EmbedResponse>(
          "hier.v1.Retrieval/Embed", [&](auto& r) { r.add_images(images.png[9]); }),
      Same<hier::v1::SearchRequest, hier::v1::SearchResponse>("hier.v1.Retrieval/Search",
                                                              [&](auto& r) {
                                                                r.set_image(images.png[9]);
                                                                r.set_k(5);
                                                              }),
      Same<hier::v1::SearchRequest, hier::v1::SearchResponse>("hier.v1.Retrieval/Search",
                                                              [&](auto& r) {
                                                                *r.mutable_vector() = query;
                                                                r.set_k(3);
                                                                r.set_label("added");
                                                              }),
      Same<hier::v1::SearchBatchRequest, hier::v1::SearchBatchResponse>(
          "hier.v1.Retrieval/SearchBatch",
          [&](auto& r) {
            hier::v1::SearchRequest* by_vector = r.add_queries();
            *by_vector->mutable_vector() = query;
            by_vector->set_k(4);
            hier::v1::SearchRequest* by_item = r.add_queries();
            by_item->set_item_id(3);
            by_item->set_k(4);
          }),
      Same<hier::v1::GetItemRequest, hier::v1::Item>("hier.v1.Retrieval/GetItem",
                                                     [](auto& r) { r.set_id(101); }),
      Same<hier::v1::ListItemsRequest, hier::v1::ListItemsResponse>(
          "hier.v1.Retrieval/ListItems",
          [](auto& r) {
            r.set_page_size(3);
            r.set_page_token("2");
          }),
      Same<hier::v1::ListModelsRequest, hier::v1::ListModelsResponse>("hier.v1.Models/ListModels",
                                                                      [](auto&) {}),
      Same<hier::v1::GetModelRequest, hier::v1::Model>("hier.v1.Models/GetModel", [](auto&) {}),
      Same<hier::v1::GetSwapRequest, hier::v1::SwapProgress>("hier.v1.Models/GetSwap",
                                                             [](auto&) {}),
      Same<hier::v1::GetHierarchyRequest, hier::v1::HierarchyTree>(
          "hier.v1.Hierarchy/GetHierarchy", [](auto&) {}),
      Same<hier::v1::AncestorsRequest, hier::v1::AncestorsResponse>(
          "hier.v1.Hierarchy/Ancestors", [&](auto& r) { *r.mutable_vector() = query; }),
      Same<hier::v1::ListJobsRequest, hier::v1::ListJobsResponse>("hier.v1.Training/ListJobs",
                                                                  [](auto&) {}),
  };
  for (const SameCall& call : reads) {
    auto json_answer = call.response();
    auto grpc_answer = call.response();
    const grpc::Status json_status =
        json_api->Call(call.method, *call.request(), json_answer.get(), "");
    const grpc::Status grpc_status =
        grpc_api->Call(call.method, *call.request(), grpc_answer.get(), "");
    ASSERT_TRUE(grpc_status.ok()) << call.method << ": " << grpc_status.error_message();
    ASSERT_TRUE(json_status.ok()) << call.method << ": " << json_status.error_message();
    EXPECT_TRUE(MessageDifferencer::Equals(*json_answer, *grpc_answer))
        << call.method << ":\n" << json_answer->DebugString() << "\n"
        << grpc_answer->DebugString();
  }

  // The job calls about an unknown id answer alike; a delete through JSON is seen through gRPC.
  for (const std::string method : {"hier.v1.Training/GetJob", "hier.v1.Training/CancelJob",
                                   "hier.v1.Training/ResumeJob"}) {
    hier::v1::GetJobRequest request;
    request.set_id("no-such-job");
    hier::v1::Job json_job, grpc_job;
    const grpc::Status json_status = json_api->Call(method, request, &json_job, token);
    const grpc::Status grpc_status = grpc_api->Call(method, request, &grpc_job, token);
    EXPECT_EQ(json_status.error_code(), grpc::StatusCode::NOT_FOUND) << method;
    EXPECT_EQ(json_status.error_code(), grpc_status.error_code()) << method;
    EXPECT_EQ(json_status.error_message(), grpc_status.error_message()) << method;
  }
  hier::v1::DeleteItemsRequest deleted;
  deleted.add_ids(100);
  hier::v1::DeleteItemsResponse delete_answer;
  ASSERT_TRUE(json_api->Call("hier.v1.Retrieval/DeleteItems", deleted, &delete_answer,
                             std::string("Bearer ") + kToken).ok());
  EXPECT_EQ(ItemCount(), 8 + 4 - 1);

  // A swap through JSON: both faces then describe the new model.
  hier::v1::LoadModelRequest load;
  load.set_version("run2");
  load.set_wait(true);
  hier::v1::LoadModelResponse loaded;
  ASSERT_TRUE(json_api->Call("hier.v1.Models/LoadModel", load, &loaded, token).ok());
  hier::v1::Model json_model, grpc_model;
  ASSERT_TRUE(json_api->Call("hier.v1.Models/GetModel", hier::v1::GetModelRequest(), &json_model,
                             "").ok());
  ASSERT_TRUE(grpc_api->Call("hier.v1.Models/GetModel", hier::v1::GetModelRequest(), &grpc_model,
                             "").ok());
  EXPECT_EQ(json_model.version(), "run2/best");
  EXPECT_TRUE(MessageDifferencer::Equals(json_model, grpc_model));
}

TEST_F(HttpApiTest, TheConsoleIsServedFromTheBinaryWithoutATokenAndLoadsNothingFromElsewhere) {
  StartServer({"--protect-reads"});
  httplib::Client client("127.0.0.1", http_port_);
  const httplib::Result page = client.Get("/");
  ASSERT_TRUE(page);
  EXPECT_EQ(page->status, 200);
  EXPECT_EQ(page->get_header_value("Content-Type"), "text/html; charset=utf-8");
  EXPECT_NE(page->get_header_value("Content-Security-Policy").find("default-src 'self'"),
            std::string::npos);
  const std::string etag = page->get_header_value("ETag");
  ASSERT_FALSE(etag.empty());
  const httplib::Result again = client.Get("/", {{"If-None-Match", etag}});
  ASSERT_TRUE(again);
  EXPECT_EQ(again->status, 304);
  // Every script and style the page names is here, with its type; nothing names another host.
  EXPECT_EQ(page->body.find("http"), std::string::npos) << page->body;
  for (const auto& [file, type] :
       std::vector<std::pair<std::string, std::string>>{{"app.js", "application/javascript"},
                                                        {"api.js", "application/javascript"},
                                                        {"style.css", "text/css"}}) {
    const httplib::Result got = client.Get("/console/" + file);
    ASSERT_TRUE(got) << file;
    EXPECT_EQ(got->status, 200) << file;
    EXPECT_EQ(got->get_header_value("Content-Type").rfind(type, 0), 0u) << file;
    EXPECT_EQ(got->body.find("://"), std::string::npos) << file << " loads from another host";
  }
  for (const std::string path : {"/console/nope.js", "/console/../../etc/passwd",
                                 "/console/%2e%2e%2fapi.js"}) {
    const httplib::Result missing = client.Get(path);
    ASSERT_TRUE(missing) << path;
    EXPECT_EQ(missing->status, 404) << path;
  }
  // The form's schema: every TrainingConfig field, in order, with its type.
  const httplib::Result schema = client.Get("/v1/schema/hier.v1.TrainingConfig");
  ASSERT_TRUE(schema);
  ASSERT_EQ(schema->status, 200);
  const nlohmann::json fields = nlohmann::json::parse(schema->body).at("fields");
  const auto* descriptor = hier::v1::TrainingConfig::descriptor();
  ASSERT_EQ(static_cast<int>(fields.size()), descriptor->field_count());
  EXPECT_EQ(fields[1].at("name"), "data_dir");
  EXPECT_EQ(fields[1].at("type"), "string");
  EXPECT_EQ(fields[1].at("optional"), true);
  EXPECT_EQ(fields[10].at("name"), "mean");
  EXPECT_EQ(fields[10].at("repeated"), true);
  for (const std::string name : {"google.protobuf.Empty", "hier.v1.Nope"}) {
    const httplib::Result missing = client.Get("/v1/schema/" + name);
    ASSERT_TRUE(missing);
    EXPECT_EQ(missing->status, 404) << name;
  }
  // Compressed once, with gzip, for a client that asks; the same bytes once inflated.
  const httplib::Result plain = client.Get("/console/training.js");
  const httplib::Result gzipped = client.Get("/console/training.js", {{"Accept-Encoding", "gzip, br"}});
  ASSERT_TRUE(plain && gzipped);
  EXPECT_EQ(plain->get_header_value_count("Content-Encoding"), 0u);
  EXPECT_EQ(gzipped->get_header_value_count("Content-Encoding"), 1u);
  EXPECT_EQ(gzipped->get_header_value("Content-Encoding"), "gzip");
  EXPECT_EQ(gzipped->body, plain->body);  // httplib's client inflates it
  // The data stays behind the token.
  const httplib::Result stats = Post("/v1/hier.v1.Retrieval/Stats", "{}");
  ASSERT_TRUE(stats);
  EXPECT_EQ(stats->status, 401);
}

TEST_F(HttpApiTest, AnItemsImageIsServedAsItselfWithItsTypeAndETag) {
  const LabelledImages images = TestImages(3);
  StartServer();
  AddImages(images, 0, 2);
  httplib::Client client("127.0.0.1", http_port_);
  const httplib::Result image = client.Get("/v1/items/1/image");
  ASSERT_TRUE(image);
  ASSERT_EQ(image->status, 200) << image->body;
  EXPECT_EQ(image->get_header_value("Content-Type"), "image/png");
  EXPECT_EQ(image->body, images.png[1]);
  const std::string etag = image->get_header_value("ETag");
  EXPECT_EQ(etag.size(), 66u) << etag;  // a quoted SHA-256
  const httplib::Result again = client.Get("/v1/items/1/image", {{"If-None-Match", etag}});
  ASSERT_TRUE(again);
  EXPECT_EQ(again->status, 304);
  EXPECT_TRUE(again->body.empty());

  // Through gRPC, the same bytes.
  const std::unique_ptr<ApiCaller> grpc_api = GrpcCaller(channel_);
  hier::v1::GetItemRequest request;
  request.set_id(1);
  hier::v1::ItemImage through_grpc;
  ASSERT_TRUE(grpc_api->Call("hier.v1.Retrieval/GetItemImage", request, &through_grpc, "").ok());
  EXPECT_EQ(through_grpc.image(), images.png[1]);
  EXPECT_EQ("\"" + through_grpc.sha256() + "\"", etag);

  // An item added as a vector has no image; an unknown id is no item; neither is a path.
  hier::v1::AddItemsRequest vector_item;
  hier::v1::NewItem* item = vector_item.add_items();
  item->set_id(7);
  item->mutable_vector()->mutable_values()->Resize(32, 0.01f);
  hier::v1::AddItemsResponse added;
  ASSERT_TRUE(grpc_api->Call("hier.v1.Retrieval/AddItems", vector_item, &added,
                             std::string("Bearer ") + kToken).ok());
  for (const auto& [path, status, part] :
       std::vector<std::tuple<std::string, int, std::string>>{
           {"/v1/items/7/image", 404, "without an image"},
           {"/v1/items/99/image", 404, "99"},
           {"/v1/items/99999999999999999999/image", 404, "no such path"},
           {"/v1/items/../../etc/passwd/image", 404, "no such path"},
           {"/v1/items/%2e%2e/image", 404, "no such path"}}) {
    const httplib::Result refused = client.Get(path);
    ASSERT_TRUE(refused) << path;
    EXPECT_EQ(refused->status, status) << path << ": " << refused->body;
    EXPECT_NE(refused->body.find(part), std::string::npos) << path << ": " << refused->body;
  }
}

TEST_F(HttpApiTest, StreamsGoBothWaysAsJsonLines) {
  const LabelledImages images = TestImages(4);
  StartServer();
  // AddItemsStream: one request message per line.
  std::string lines;
  for (int i = 0; i < 3; ++i) {
    nlohmann::json item = {{"id", 50 + i}, {"vector", {{"values", std::vector<float>(32, 0.01f * (i + 1))}}}};
    lines += nlohmann::json{{"items", {item}}}.dump() + "\n";
  }
  const httplib::Headers authorized = {{"Authorization", std::string("Bearer ") + kToken}};
  httplib::Result added = Post("/v1/hier.v1.Retrieval/AddItemsStream", lines,
                               "application/x-ndjson", authorized);
  ASSERT_TRUE(added);
  ASSERT_EQ(added->status, 200) << added->body;
  EXPECT_EQ(added->get_header_value("Content-Type"), "application/x-ndjson");
  const nlohmann::json answer = nlohmann::json::parse(added->body);
  EXPECT_EQ(answer["added"], "3") << added->body;  // int64 is a string in protobuf's JSON
  EXPECT_EQ(ItemCount(), 3);

  // A bad line sends nothing and names its line.
  httplib::Result bad = Post("/v1/hier.v1.Retrieval/AddItemsStream",
                             lines + "{\"items\": [{\"id\": \"x\"}]}\n", "application/x-ndjson",
                             authorized);
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->status, 400);
  EXPECT_NE(ErrorOf(bad)["message"].get<std::string>().find("line 4"), std::string::npos)
      << bad->body;
  EXPECT_EQ(ItemCount(), 3);

  // WatchJob of an unknown job: the status before any line is the HTTP answer.
  httplib::Result watch = Post("/v1/hier.v1.Training/WatchJob", R"({"id": "nope"})");
  ASSERT_TRUE(watch);
  EXPECT_EQ(watch->status, 404) << watch->body;
  EXPECT_EQ(ErrorOf(watch)["status"], "NOT_FOUND");
}

TEST_F(HttpApiTest, ATrainingJobIsStartedAndWatchedToItsEndThroughJson) {
  // Two HTTP threads: one stream at a time, so a stream never takes the thread calls need.
  StartServer({"--runs-dir", scratch_ + "/runs", "--http-threads", "2"});
  std::string request;
  ASSERT_TRUE(google::protobuf::util::MessageToJsonString(SmallTrainingJob("http", 1, 30),
                                                          &request)
                  .ok());
  const httplib::Headers authorized = {{"Authorization", std::string("Bearer ") + kToken}};
  httplib::Result started = Post("/v1/hier.v1.Training/StartTraining", request,
                                 "application/json", authorized);
  ASSERT_TRUE(started);
  ASSERT_EQ(started->status, 200) << started->body;
  const std::string id = nlohmann::json::parse(started->body)["id"];
  const std::string watch = nlohmann::json{{"id", id}}.dump();

  // The watch streams its events as they come; it is still open when the first line arrives.
  std::promise<void> first_line;
  std::string body;
  std::thread watcher([&] {
    httplib::Client client("127.0.0.1", http_port_);
    client.set_read_timeout(std::chrono::seconds(120));
    bool signalled = false;
    httplib::Request streamed;
    streamed.method = "POST";
    streamed.path = "/v1/hier.v1.Training/WatchJob";
    streamed.body = watch;
    streamed.set_header("Content-Type", "application/json");
    streamed.content_receiver = [&](const char* data, size_t size, uint64_t, uint64_t) {
      body.append(data, size);
      if (!signalled) {
        signalled = true;
        first_line.set_value();
      }
      return true;
    };
    client.send(streamed);
    if (!signalled) first_line.set_value();
  });
  first_line.get_future().wait();
  const httplib::Result second = Post("/v1/hier.v1.Training/WatchJob", watch);
  ASSERT_TRUE(second);
  EXPECT_EQ(second->status, 429) << second->body;
  EXPECT_NE(second->body.find("--http-threads"), std::string::npos) << second->body;
  const httplib::Result stats = Post("/v1/hier.v1.Retrieval/Stats", "{}");
  ASSERT_TRUE(stats);
  EXPECT_EQ(stats->status, 200) << "a unary call beside the stream";
  watcher.join();

  std::vector<nlohmann::json> events;
  std::istringstream lines(body);
  for (std::string line; std::getline(lines, line);) {
    if (!line.empty()) events.push_back(nlohmann::json::parse(line));
  }
  ASSERT_GE(events.size(), 2u) << body;
  EXPECT_FALSE(events.back().contains("error")) << body;
  EXPECT_EQ(events.back()["job"]["state"], "JOB_STATE_SUCCEEDED") << body;
  // The slot is free again once the stream is done.
  const httplib::Result after = Post("/v1/hier.v1.Training/WatchJob", watch);
  ASSERT_TRUE(after);
  EXPECT_EQ(after->status, 200) << after->body;
}

TEST_F(HttpApiTest, EveryBadRequestGetsItsHttpStatusAndFieldAndNothingChanges) {
  const LabelledImages images = TestImages(40);
  StartServer();
  AddImages(images, 0, 30);
  const std::unique_ptr<ApiCaller> api = JsonCaller(http_port_);
  BadRequests requests(api.get());
  requests.ExpectEachRefused(images.png[35]);

  struct HttpCase {
    const char* what;
    std::function<httplib::Result()> send;
    int status;
    std::string message;  // a part of the error body's message
  };
  const std::string token = std::string("Bearer ") + kToken;
  const std::vector<HttpCase> cases = {
      {"malformed JSON", [&] { return Post("/v1/hier.v1.Retrieval/Search", "{\"k\": 5,"); }, 400,
       "request body"},
      {"a field of the wrong type",
       [&] { return Post("/v1/hier.v1.Retrieval/Search", R"({"k": "five"})"); }, 400, "k"},
      {"an unknown field",
       [&] { return Post("/v1/hier.v1.Retrieval/Search", R"({"kk": 5})"); }, 400, "kk"},
      {"bytes that are not base64",
       [&] { return Post("/v1/hier.v1.Retrieval/Embed", R"({"images": ["%%%"]})"); }, 400,
       "images"},
      {"a wrong content type",
       [&] { return Post("/v1/hier.v1.Retrieval/Stats", "{}", "text/plain"); }, 415,
       "Content-Type"},
      {"JSON lines to a unary method",
       [&] { return Post("/v1/hier.v1.Retrieval/Stats", "{}", "application/x-ndjson"); }, 415,
       "Content-Type"},
      {"an unknown method", [&] { return Post("/v1/hier.v1.Retrieval/Nope", "{}"); }, 404,
       "hier.v1.Retrieval/Nope"},
      {"an unknown service",
       [&] { return Post("/v1/grpc.health.v1.Health/Check", "{}"); }, 404, "no method"},
      {"a path that climbs out",
       [&] { return Post("/v1/../../etc/passwd", "{}"); }, 404, "no such path"},
      {"an encoded path that climbs out",
       [&] { return Post("/v1/%2e%2e/%2e%2e/etc/passwd", "{}"); }, 404, "no such path"},
      {"a bad deadline",
       [&] {
         return Post("/v1/hier.v1.Retrieval/Stats", "{}", "application/json",
                     {{"Grpc-Timeout", "soon"}});
       },
       400, "Grpc-Timeout"},
      {"an authorization gRPC cannot carry",
       [&] {
         return Post("/v1/hier.v1.Retrieval/DeleteItems", R"({"ids": [3]})", "application/json",
                     {{"Authorization", "Bearer \x01"}});
       },
       401, "Authorization"},
      {"a deadline already spent",
       [&] {
         hier::v1::EmbedRequest request;
         request.add_images(images.png[3]);
         std::string json;
         (void)google::protobuf::util::MessageToJsonString(request, &json);
         return Post("/v1/hier.v1.Retrieval/Embed", json, "application/json",
                     {{"Grpc-Timeout", "1n"}});
       },
       504, ""},
  };
  for (const HttpCase& c : cases) {
    const httplib::Result result = c.send();
    ASSERT_TRUE(result) << c.what;
    EXPECT_EQ(result->status, c.status) << c.what << ": " << result->body;
    const nlohmann::json error = ErrorOf(result);
    ASSERT_TRUE(error.is_object() && error.contains("message")) << c.what << ": " << result->body;
    EXPECT_NE(error["message"].get<std::string>().find(c.message), std::string::npos)
        << c.what << ": " << result->body;
  }
  {
    httplib::Client client("127.0.0.1", http_port_);
    const httplib::Result get = client.Get("/v1/hier.v1.Retrieval/Stats");
    ASSERT_TRUE(get);
    EXPECT_EQ(get->status, 405);
    EXPECT_EQ(get->get_header_value("Allow"), "POST");
  }

  // A POST without a Content-Length is refused, saying what it lacks (curl -X POST without -d); an
  // empty body is the empty message whatever its label (curl -d '' says form data).
  const std::string unsized = Exchange(
      "POST /v1/hier.v1.Retrieval/Stats HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(unsized.substr(0, 12), "HTTP/1.1 400") << unsized;
  EXPECT_NE(unsized.find("Content-Length"), std::string::npos) << unsized;
  const httplib::Result empty =
      Post("/v1/hier.v1.Retrieval/Stats", "", "application/x-www-form-urlencoded");
  ASSERT_TRUE(empty);
  EXPECT_EQ(empty->status, 200) << empty->body;

  // A body over the limit (twice the 4 MiB messages) is refused from its Content-Length alone.
  const std::string oversize = Exchange(
      "POST /v1/hier.v1.Retrieval/Embed HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
      "Content-Length: 9437184\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(oversize.substr(0, 12), "HTTP/1.1 413") << oversize;
  EXPECT_NE(oversize.find("RESOURCE_EXHAUSTED"), std::string::npos) << oversize;

  // Slow clients: connections that send half a request, or nothing, are dropped after the read
  // timeout; meanwhile and afterwards the API answers.
  std::vector<int> slow;
  for (int i = 0; i < 12; ++i) {
    const int fd = Connect();
    const std::string half = "POST /v1/hier.v1.Retrieval/Stats HTTP/1.1\r\nHost: x\r\n";
    if (i % 2 == 0) {
      ASSERT_GT(send(fd, half.data(), half.size(), MSG_NOSIGNAL), 0);
    }
    slow.push_back(fd);
  }
  const httplib::Result during = Post("/v1/hier.v1.Retrieval/Stats", "{}");
  ASSERT_TRUE(during) << "the API did not answer beside 12 slow clients";
  EXPECT_EQ(during->status, 200);
  for (const int fd : slow) {
    char buffer[4096];
    ssize_t n;
    while ((n = recv(fd, buffer, sizeof(buffer), 0)) > 0) {  // an error answer may come first
    }
    EXPECT_EQ(n, 0) << "a slow client's connection was kept open";
    close(fd);
  }

  // The server is up and the gallery holds exactly what it held.
  EXPECT_EQ(ItemCount(), 30);
  for (int64_t id : {3, 905, 906}) {
    EXPECT_EQ(requests.Get(id).error_code(), id == 3 ? grpc::OK : grpc::NOT_FOUND) << id;
  }
}

}  // namespace
}  // namespace hier::testing
