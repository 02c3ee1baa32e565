// Training through hier-server: a job started over RPC, watched to the end, its model loaded in
// a hot swap, its history kept across a restart.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "tests/server/e2e/server_fixture.h"

namespace hier::testing {
namespace {

using TrainingE2eTest = ServerE2eTest;

TEST_F(TrainingE2eTest, AJobStartedOverRpcIsWatchedLoadedAndRemembered) {
  const LabelledImages images = TestImages(60);
  const std::string runs = scratch_ + "/runs";
  StartServer({"--runs-dir", runs});
  AddImages(images, 0, 50);

  const hier::v1::StartTrainingRequest start = SmallTrainingJob("e2e", 1, 6);
  grpc::ClientContext start_context;
  Authorize(&start_context);
  hier::v1::Job job;
  const grpc::Status started = training_->StartTraining(&start_context, start, &job);
  ASSERT_TRUE(started.ok()) << started.error_message();
  EXPECT_EQ(job.id().rfind("e2e-", 0), 0u) << job.id();

  // Watch it to the end: the events arrive in order and the last one is SUCCEEDED.
  grpc::ClientContext watch_context;
  hier::v1::WatchJobRequest watch;
  watch.set_id(job.id());
  auto events = training_->WatchJob(&watch_context, watch);
  hier::v1::JobEvent event;
  std::vector<hier::v1::JobState> states;
  int64_t last_step = -1;
  while (events->Read(&event)) {
    states.push_back(event.job().state());
    EXPECT_GE(event.job().progress().step(), last_step);
    last_step = event.job().progress().step();
  }
  ASSERT_TRUE(events->Finish().ok());
  ASSERT_FALSE(states.empty());
  EXPECT_EQ(states.back(), hier::v1::JOB_STATE_SUCCEEDED) << event.job().error();
  EXPECT_EQ(event.job().progress().step(), 6);
  EXPECT_EQ(event.job().progress().total_steps(), 6);
  EXPECT_GT(event.job().progress().recall().at("R@1"), 0.1);

  // Its model goes live in a hot swap: the gallery is re-embedded in its 16 dimensions.
  grpc::ClientContext load_context;
  Authorize(&load_context);
  hier::v1::LoadModelRequest load;
  load.set_version(job.id());
  load.set_wait(true);
  hier::v1::LoadModelResponse loaded;
  const grpc::Status swapped = models_->LoadModel(&load_context, load, &loaded);
  ASSERT_TRUE(swapped.ok()) << swapped.error_message();
  EXPECT_EQ(loaded.reembedded_items(), 50);
  EXPECT_EQ(loaded.model().dim(), 16);
  hier::v1::SearchResponse found;
  ASSERT_TRUE(SearchImage(images.png[55], 3, &found).ok());
  EXPECT_EQ(found.model_version(), job.id() + "/best");
  const std::string metrics = Metrics();
  EXPECT_EQ(SeriesValue(metrics, "hier_training_jobs", {{"state", "succeeded"}}), 1);
  // Every series the Grafana dashboard queries is on the server (deploy_checks lists them),
  // except the router's own (RouterTest finds those on a router) and the tuned recall, which an
  // exact index never has (TheIndexTunesItselfForItsTargetAndTheCliRetunesIt finds it).
  const std::string dashboard = ReadText(HIER_DASHBOARD_METRICS);
  ASSERT_FALSE(dashboard.empty()) << "run deploy/check-deploy.sh " HIER_DASHBOARD_METRICS;
  std::istringstream names(dashboard);
  for (std::string name; std::getline(names, name);) {
    if (absl::StartsWith(name, "hier_router_") || name == "hier_search_recall") continue;
    const bool exported =
        SeriesValue(metrics, name).has_value() || SeriesValue(metrics, name + "_count").has_value();
    EXPECT_TRUE(exported) << name << " is on the dashboard but not on /metrics";
  }

  // A restart still lists the job, finished, and serves its model.
  ASSERT_EQ(StopServer(), 0);
  StartServer({"--runs-dir", runs});
  grpc::ClientContext list_context;
  hier::v1::ListJobsResponse jobs;
  ASSERT_TRUE(training_->ListJobs(&list_context, {}, &jobs).ok());
  ASSERT_EQ(jobs.jobs_size(), 1);
  EXPECT_EQ(jobs.jobs(0).id(), job.id());
  EXPECT_EQ(jobs.jobs(0).state(), hier::v1::JOB_STATE_SUCCEEDED);
  hier::v1::SearchResponse after;
  ASSERT_TRUE(SearchImage(images.png[55], 3, &after).ok());
  EXPECT_EQ(after.model_version(), job.id() + "/best");
}

}  // namespace
}  // namespace hier::testing
