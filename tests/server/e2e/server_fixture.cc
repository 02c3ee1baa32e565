#include "tests/server/e2e/server_fixture.h"

#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <regex>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "trainer/data/image_set.h"

namespace hier::testing {
namespace {

namespace fs = std::filesystem;
constexpr char kFashionMnist[] = "/usr/share/datasets/fashion-mnist";

// Two small models for every test: 60 and 30 steps of the default recipe on Fashion-MNIST (runs
// "run" and "run2" in HIER_E2E_MODELS_DIR), trained on first use unless a previous process (the
// CTest fixture e2e_models) left them there.
struct SharedModel {
  static const SharedModel& Get() {
    static const SharedModel model;
    return model;
  }

  SharedModel() : root(HIER_E2E_MODELS_DIR) {
    fs::create_directories(root);
    trained = Train("run", 60, 0) && Train("run2", 30, 1);
  }

  // Trains <root>/<run> for `steps` steps with `seed` unless it is there; true when it is.
  bool Train(const std::string& run, int steps, int seed) const {
    if (fs::exists(fs::path(root) / run / "best" / "manifest.json")) return true;
    fs::remove_all(fs::path(root) / run);
    ChildProcess train(HIER_TRAIN_BINARY,
                       {"--run-dir", root + "/" + run, "--epochs", "1", "--steps-per-epoch",
                        std::to_string(steps), "--seed", std::to_string(seed), "--test-limit",
                        "1000", "--emb", "32", "--num-proxies", "64", "--threads", "2"},
                       root + "/train.log");
    return train.Wait(std::chrono::minutes(10)) == 0;
  }

  std::string root;
  bool trained = false;
};

}  // namespace

TEST(SharedModels, AreTrained) { EXPECT_TRUE(SharedModel::Get().trained); }

LabelledImages TestImages(int64_t count) {
  const data::ImageSet set = data::LoadFashionMnist(kFashionMnist, data::Split::kTest, count);
  LabelledImages images;
  for (int64_t i = 0; i < set.count; ++i) {
    const cv::Mat image(28, 28, CV_8UC1, const_cast<uint8_t*>(set.pixels.data() + i * 28 * 28));
    std::vector<uint8_t> bytes;
    cv::imencode(".png", image, bytes);
    images.png.emplace_back(bytes.begin(), bytes.end());
    images.labels.push_back(set.class_names[set.labels[i]]);
  }
  return images;
}

hier::v1::StartTrainingRequest SmallTrainingJob(const std::string& name, int epochs,
                                                int steps_per_epoch) {
  hier::v1::StartTrainingRequest start;
  start.set_name(name);
  hier::v1::TrainingConfig& config = *start.mutable_config();
  config.set_epochs(epochs);
  config.set_steps_per_epoch(steps_per_epoch);
  config.set_test_limit(200);
  config.set_emb(16);
  config.set_num_proxies(16);
  config.set_topk(8);
  config.set_batch_size(40);
  config.set_ipc(4);
  config.set_threads(1);
  config.set_log_every(1);
  return start;
}

std::optional<double> SeriesValue(const std::string& metrics, const std::string& name,
                                  const std::map<std::string, std::string>& labels) {
  std::istringstream lines(metrics);
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind(name, 0) != 0 || line.size() <= name.size()) continue;
    if (line[name.size()] != ' ' && line[name.size()] != '{') continue;
    bool matches = true;
    for (const auto& [key, value] : labels) {
      matches &= line.find(key + "=\"" + value + "\"") != std::string::npos;
    }
    if (matches) return std::stod(line.substr(line.rfind(' ') + 1));
  }
  return std::nullopt;
}

bool ServerE2eTest::HaveFashionMnist() { return fs::exists(kFashionMnist); }

void ServerE2eTest::SetUp() {
  if (!HaveFashionMnist()) GTEST_SKIP() << "Fashion-MNIST is not installed";
  ASSERT_TRUE(SharedModel::Get().trained) << ReadText(SharedModel::Get().root + "/train.log");
  std::string pattern = (fs::temp_directory_path() / "hier-e2e-XXXXXX").string();
  ASSERT_NE(mkdtemp(pattern.data()), nullptr);
  scratch_ = pattern;
  state_ = scratch_ + "/state";
}

void ServerE2eTest::TearDown() {
  server_.reset();
  if (!scratch_.empty()) fs::remove_all(scratch_);
}

std::string ServerE2eTest::ModelsRoot() { return SharedModel::Get().root; }

void StartHierServer(std::vector<std::string> args, const std::string& prefix,
                     RunningServer* started, const std::vector<std::string>& launcher) {
  const std::string port_file = prefix + ".ports";
  fs::remove(port_file);
  args.insert(args.end(), {"--port-file", port_file});
  // Servers run side by side: the HTTP API on a port of its own unless the test chose one.
  if (std::find(args.begin(), args.end(), "--http-listen") == args.end()) {
    args.insert(args.end(), {"--http-listen", "127.0.0.1:0"});
  }
  std::string binary = HIER_SERVER_BINARY;
  if (!launcher.empty()) {
    args.insert(args.begin(), binary);
    args.insert(args.begin(), launcher.begin() + 1, launcher.end());
    binary = launcher.front();
  }
  started->process = std::make_unique<ChildProcess>(binary, args, prefix + ".log");
  const ChildProcess& server = *started->process;
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  const std::regex pattern(R"re(\{"grpc": (\d+), "metrics": (\d+), "http": (\d+)\})re");
  std::smatch ports;
  std::string text;
  while (!std::regex_search(text = ReadText(port_file), ports, pattern)) {
    ASSERT_TRUE(server.running()) << ReadText(server.log_path());
    ASSERT_LT(std::chrono::steady_clock::now(), until) << ReadText(server.log_path());
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  started->grpc_port = std::stoi(ports[1]);
  started->metrics_port = std::stoi(ports[2]);
  started->http_port = std::stoi(ports[3]);
}

void ServerE2eTest::StartServer(const std::vector<std::string>& extra) {
  std::vector<std::string> args = {"--model",
                                   SharedModel::Get().root + "/run",
                                   "--runs-dir",
                                   SharedModel::Get().root,
                                   "--state-dir",
                                   state_,
                                   "--listen",
                                   "127.0.0.1:0",
                                   "--metrics-listen",
                                   "127.0.0.1:0",
                                   "--token",
                                   kToken,
                                   "--max-images-per-call",
                                   "16",
                                   "--max-items-per-call",
                                   "100",
                                   "--max-message-bytes",
                                   "4194304"};
  args.insert(args.end(), extra.begin(), extra.end());
  RunningServer started;
  StartHierServer(args, state_, &started);
  if (::testing::Test::HasFatalFailure()) return;
  server_ = std::move(started.process);
  grpc_port_ = started.grpc_port;
  metrics_port_ = started.metrics_port;
  http_port_ = started.http_port;
  channel_ = grpc::CreateChannel(absl::StrCat("127.0.0.1:", grpc_port_),
                                 grpc::InsecureChannelCredentials());
  retrieval_ = hier::v1::Retrieval::NewStub(channel_);
  health_ = grpc::health::v1::Health::NewStub(channel_);
  models_ = hier::v1::Models::NewStub(channel_);
  hierarchy_ = hier::v1::Hierarchy::NewStub(channel_);
  training_ = hier::v1::Training::NewStub(channel_);
}

std::optional<int> ServerE2eTest::StopServer() {
  server_->Signal(SIGTERM);
  return server_->Wait(std::chrono::seconds(60));
}

void ServerE2eTest::Authorize(grpc::ClientContext* context) {
  context->AddMetadata("authorization", std::string("Bearer ") + kToken);
}

void ServerE2eTest::AddImages(const LabelledImages& images, int64_t first, int64_t count) {
  grpc::ClientContext context;
  Authorize(&context);
  hier::v1::AddItemsResponse response;
  auto stream = retrieval_->AddItemsStream(&context, &response);
  for (int64_t begin = first; begin < first + count; begin += 16) {
    hier::v1::AddItemsRequest batch;
    for (int64_t i = begin; i < std::min(first + count, begin + 16); ++i) {
      hier::v1::NewItem* item = batch.add_items();
      item->set_id(i);
      item->set_key("fashion-mnist/test/" + std::to_string(i) + ".png");
      item->set_label(images.labels[i]);
      item->set_image(images.png[i]);
    }
    ASSERT_TRUE(stream->Write(batch));
  }
  stream->WritesDone();
  const grpc::Status status = stream->Finish();
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.added(), count);
}

grpc::Status ServerE2eTest::SearchImage(const std::string& png, int k,
                                        hier::v1::SearchResponse* response) {
  grpc::ClientContext context;
  Authorize(&context);  // read calls carry the token too, for servers that --protect-reads
  hier::v1::SearchRequest request;
  request.set_image(png);
  request.set_k(k);
  return retrieval_->Search(&context, request, response);
}

int64_t ServerE2eTest::ItemCount() {
  grpc::ClientContext context;
  hier::v1::StatsResponse stats;
  EXPECT_TRUE(retrieval_->Stats(&context, {}, &stats).ok());
  return stats.items();
}

std::string ServerE2eTest::Metrics() {
  const std::optional<HttpResponse> response = HttpGet(metrics_port_, "/metrics");
  EXPECT_TRUE(response.has_value());
  EXPECT_EQ(response ? response->status : 0, 200);
  return response ? response->body : "";
}

}  // namespace hier::testing
