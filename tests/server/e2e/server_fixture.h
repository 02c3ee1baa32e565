// The end-to-end fixture: a model trained once by hier-train, hier-server started as a child
// process on ephemeral ports over a per-test state folder, stubs to talk to it, and Fashion-MNIST
// test images encoded as PNG.
#pragma once

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "grpc/health/v1/health.grpc.pb.h"
#include "hier/v1/hierarchy.grpc.pb.h"
#include "hier/v1/models.grpc.pb.h"
#include "hier/v1/retrieval.grpc.pb.h"
#include "hier/v1/training.grpc.pb.h"
#include "tests/server/e2e/child_process.h"

namespace hier::testing {

inline constexpr char kToken[] = "e2e-secret";

// Fashion-MNIST test images as PNG files' bytes, with their class names.
struct LabelledImages {
  std::vector<std::string> png;
  std::vector<std::string> labels;
};
LabelledImages TestImages(int64_t count);

// A small training job on Fashion-MNIST (16 dimensions, one thread): `epochs` epochs of
// `steps_per_epoch` steps, evaluated on 200 test images.
hier::v1::StartTrainingRequest SmallTrainingJob(const std::string& name, int epochs,
                                                int steps_per_epoch);

// The value of the first series named `name` whose labels include every `labels` pair.
std::optional<double> SeriesValue(const std::string& metrics, const std::string& name,
                                  const std::map<std::string, std::string>& labels = {});

// A hier-server child process and the ports it reported.
struct RunningServer {
  std::unique_ptr<ChildProcess> process;
  int grpc_port = 0;
  int metrics_port = 0;
  int http_port = 0;  // 0: no HTTP API
};

// Starts hier-server with `args` (and a --port-file), its output in <prefix>.log, and waits up to
// 60 s until it listens; a fatal test failure when it exits or times out first. `launcher`, when
// not empty, is a command that runs it (e.g. ip netns exec NAME): its first word is the binary.
void StartHierServer(std::vector<std::string> args, const std::string& prefix,
                     RunningServer* started, const std::vector<std::string>& launcher = {});

class ServerE2eTest : public ::testing::Test {
 public:
  // Where the shared models "run" and "run2" live (the servers' --runs-dir); trained on first use.
  static std::string ModelsRoot();
  // Whether the images the shared models learn from are installed.
  static bool HaveFashionMnist();

 protected:
  // Skips without Fashion-MNIST; fails when the shared model could not be trained.
  void SetUp() override;
  // Stops a server still running and removes the test's folder.
  void TearDown() override;

  // Starts hier-server on the test's state folder (models "run" served, "run2" listed; token
  // kToken, at most 16 images and 100 items per call, 4 MiB messages) and waits until it serves.
  void StartServer(const std::vector<std::string>& extra = {});
  // SIGTERM, then the exit status (none if it did not exit within 60 s).
  std::optional<int> StopServer();

  static void Authorize(grpc::ClientContext* context);
  // Adds images [first, first + count) as items with ids equal to their index, in a stream.
  void AddImages(const LabelledImages& images, int64_t first, int64_t count);
  grpc::Status SearchImage(const std::string& png, int k, hier::v1::SearchResponse* response);
  int64_t ItemCount();
  std::string Metrics();

  std::string scratch_;  // the test's own folder
  std::string state_;    // the server's state folder, inside scratch_
  std::unique_ptr<ChildProcess> server_;
  int grpc_port_ = 0;
  int metrics_port_ = 0;
  int http_port_ = 0;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<hier::v1::Retrieval::Stub> retrieval_;
  std::unique_ptr<grpc::health::v1::Health::Stub> health_;
  std::unique_ptr<hier::v1::Models::Stub> models_;
  std::unique_ptr<hier::v1::Hierarchy::Stub> hierarchy_;
  std::unique_ptr<hier::v1::Training::Stub> training_;
};

}  // namespace hier::testing
