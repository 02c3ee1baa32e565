// The Training service over loopback gRPC with real hier-train children (tiny Fashion-MNIST
// jobs), and with a stand-in trainer script where only the process handling is under test.
#include "server/rpc/training_service.h"

#include <gmock/gmock.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "server/metrics/server_metrics.h"
#include "server/rpc/authorizer.h"
#include "server/training/job_runner.h"
#include "server/training/sqlite_job_store.h"

namespace hier::testing {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::StartsWith;
using namespace std::chrono_literals;

constexpr char kFashionMnist[] = "/usr/share/datasets/fashion-mnist";
constexpr char kToken[] = "secret";

// A job of `steps` steps of 40 images that evaluates on 200 test images.
hier::v1::TrainingConfig TinyConfig(int64_t steps) {
  hier::v1::TrainingConfig config;
  config.set_epochs(1);
  config.set_steps_per_epoch(steps);
  config.set_test_limit(200);
  config.set_emb(8);
  config.set_num_proxies(16);
  config.set_topk(8);  // the default 20 exceeds 16 proxies
  config.set_batch_size(40);
  config.set_ipc(4);
  config.set_threads(1);
  config.set_log_every(1);  // status.json after every step
  return config;
}

std::string ReadText(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// The pid hier-train wrote into its status.json.
pid_t TrainerPid(const std::string& run_dir) {
  const nlohmann::json status = nlohmann::json::parse(ReadText(fs::path(run_dir) / "status.json"),
                                                      nullptr, /*allow_exceptions=*/false);
  return status.is_object() ? status.value("pid", 0) : 0;
}

// Whether `pid` has exited (a zombie that nobody reaps in a container counts as exited).
bool ProcessGone(pid_t pid) {
  if (::kill(pid, 0) != 0) return errno == ESRCH;
  const std::string stat = ReadText("/proc/" + std::to_string(pid) + "/stat");
  const size_t close = stat.rfind(')');
  return close != std::string::npos && close + 2 < stat.size() && stat[close + 2] == 'Z';
}

bool EventuallyGone(pid_t pid) {
  for (int i = 0; i < 100; ++i) {
    if (ProcessGone(pid)) return true;
    std::this_thread::sleep_for(50ms);
  }
  return false;
}

int Rank(hier::v1::JobState state) {
  switch (state) {
    case hier::v1::JOB_STATE_QUEUED:
      return 0;
    case hier::v1::JOB_STATE_RUNNING:
      return 1;
    default:
      return 2;
  }
}

class TrainingServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(kFashionMnist)) GTEST_SKIP() << kFashionMnist << " is not installed";
    directory_ = fs::path(::testing::TempDir()) /
                 ("training-" + std::to_string(::getpid()) + "-" +
                  ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(directory_);
    fs::create_directories(directory_);
  }

  void TearDown() override {
    StopServer();
    if (restore_mask_) pthread_sigmask(SIG_SETMASK, &*restore_mask_, nullptr);
    fs::remove_all(directory_);
  }

  // A runner over directory_ (state/, runs/) and a loopback server for it.
  void StartServer(const std::string& trainer = HIER_TRAIN_BINARY, int max_jobs = 1,
                   int max_watches = 64) {
    server::JobRunnerOptions options;
    options.trainer = trainer;
    options.state_dir = (directory_ / "state").string();
    options.runs_dir = (directory_ / "runs").string();
    options.data_roots = {"/usr/share/datasets"};
    options.max_jobs = max_jobs;
    options.grace = 20s;
    options.poll = 100ms;
    options.on_success = [this](const hier::v1::Job& job) {
      absl::MutexLock lock(&deployed_mutex_);
      deployed_.push_back(job.id());
    };
    absl::StatusOr<std::unique_ptr<server::JobRunner>> runner =
        server::JobRunner::Create(options, &metrics_);
    ASSERT_TRUE(runner.ok()) << runner.status();
    runner_ = *std::move(runner);
    service_ =
        std::make_unique<server::TrainingService>(runner_.get(), &authorizer_, 50ms, max_watches);
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    builder.RegisterService(service_.get());
    server_ = builder.BuildAndStart();
    ASSERT_GT(port, 0);
    stub_ = hier::v1::Training::NewStub(grpc::CreateChannel("127.0.0.1:" + std::to_string(port),
                                                            grpc::InsecureChannelCredentials()));
  }

  // Stops the runner first, so watches end with their jobs' final events, then the server.
  void StopServer() {
    if (runner_) runner_->Shutdown();
    if (server_) server_->Shutdown(std::chrono::system_clock::now() + 5s);
    server_.reset();
    service_.reset();
    runner_.reset();
    stub_.reset();
  }

  static void Authorize(grpc::ClientContext& context, const char* token) {
    if (token != nullptr) context.AddMetadata("authorization", std::string("Bearer ") + token);
  }

  grpc::Status Start(const hier::v1::StartTrainingRequest& request, hier::v1::Job* job,
                     const char* token = kToken) {
    grpc::ClientContext context;
    Authorize(context, token);
    return stub_->StartTraining(&context, request, job);
  }

  hier::v1::Job StartOk(const std::string& name, const hier::v1::TrainingConfig& config,
                        bool deploy = false) {
    hier::v1::StartTrainingRequest request;
    request.set_name(name);
    *request.mutable_config() = config;
    request.set_deploy_on_success(deploy);
    hier::v1::Job job;
    const grpc::Status status = Start(request, &job);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return job;
  }

  grpc::Status Get(const std::string& id, hier::v1::Job* job) {
    grpc::ClientContext context;
    hier::v1::GetJobRequest request;
    request.set_id(id);
    return stub_->GetJob(&context, request, job);
  }

  grpc::Status Cancel(const std::string& id, hier::v1::Job* job, const char* token = kToken) {
    grpc::ClientContext context;
    Authorize(context, token);
    hier::v1::CancelJobRequest request;
    request.set_id(id);
    return stub_->CancelJob(&context, request, job);
  }

  grpc::Status Resume(const std::string& id, hier::v1::Job* job) {
    grpc::ClientContext context;
    Authorize(context, kToken);
    hier::v1::ResumeJobRequest request;
    request.set_id(id);
    return stub_->ResumeJob(&context, request, job);
  }

  // The events of WatchJob until the stream ends, or until `until` holds for one (the call is
  // then cancelled). `status` gets the stream's status.
  std::vector<hier::v1::Job> Watch(const std::string& id, grpc::Status* status,
                                   const std::function<bool(const hier::v1::Job&)>& until = {}) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + 120s);
    hier::v1::WatchJobRequest request;
    request.set_id(id);
    std::unique_ptr<grpc::ClientReader<hier::v1::JobEvent>> reader =
        stub_->WatchJob(&context, request);
    std::vector<hier::v1::Job> events;
    hier::v1::JobEvent event;
    while (reader->Read(&event)) {
      events.push_back(event.job());
      if (until && until(event.job())) {
        context.TryCancel();
        break;
      }
    }
    *status = reader->Finish();
    return events;
  }

  // Watches until the job ends; its final event.
  hier::v1::Job WatchToEnd(const std::string& id, std::vector<hier::v1::Job>* all = nullptr) {
    grpc::Status status;
    std::vector<hier::v1::Job> events = Watch(id, &status);
    EXPECT_TRUE(status.ok()) << status.error_message();
    if (events.empty()) return {};
    if (all != nullptr) *all = events;
    return events.back();
  }

  hier::v1::Job WatchUntilStep(const std::string& id, int64_t step) {
    grpc::Status status;
    std::vector<hier::v1::Job> events = Watch(id, &status, [&](const hier::v1::Job& job) {
      return job.progress().step() >= step || server::IsTerminal(job.state());
    });
    EXPECT_EQ(status.error_code(), grpc::StatusCode::CANCELLED) << status.error_message();
    return events.empty() ? hier::v1::Job() : events.back();
  }

  std::vector<std::string> Deployed() {
    absl::MutexLock lock(&deployed_mutex_);
    return deployed_;
  }

  fs::path directory_;
  server::ServerMetrics metrics_;
  server::Authorizer authorizer_{kToken, /*protect_reads=*/false};
  std::unique_ptr<server::JobRunner> runner_;
  std::unique_ptr<server::TrainingService> service_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<hier::v1::Training::Stub> stub_;
  absl::Mutex deployed_mutex_;
  std::vector<std::string> deployed_;     // guarded by deployed_mutex_
  std::optional<sigset_t> restore_mask_;  // the test thread's signal mask before a test blocked
};

TEST_F(TrainingServiceTest, TinyJobSucceedsAndIsWatchedInOrder) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  const hier::v1::Job started = StartOk("tiny", TinyConfig(5), /*deploy=*/true);
  EXPECT_THAT(started.id(), StartsWith("tiny-"));
  EXPECT_EQ(fs::path(started.run_dir()), directory_ / "runs" / started.id());
  EXPECT_LE(Rank(started.state()), 1);
  EXPECT_EQ(started.config().emb(), 8);

  std::vector<hier::v1::Job> events;
  const hier::v1::Job last = WatchToEnd(started.id(), &events);
  ASSERT_GE(events.size(), 2u);  // at once, and at the end at least
  std::string seen;
  for (const hier::v1::Job& event : events) {
    seen +=
        server::JobStateName(event.state()) + "@" + std::to_string(event.progress().step()) + " ";
  }
  ::testing::Test::RecordProperty("events", seen);
  for (size_t i = 1; i < events.size(); ++i) {
    EXPECT_LE(Rank(events[i - 1].state()), Rank(events[i].state())) << i;
    EXPECT_LE(events[i - 1].progress().step(), events[i].progress().step()) << i;
    EXPECT_FALSE(server::IsTerminal(events[i - 1].state())) << "an event after the end";
  }
  ASSERT_EQ(last.state(), hier::v1::JOB_STATE_SUCCEEDED) << last.error();
  EXPECT_EQ(last.error(), "");
  EXPECT_EQ(last.progress().step(), 5);
  EXPECT_EQ(last.progress().total_steps(), 5);
  EXPECT_EQ(last.progress().epoch(), 1);
  EXPECT_GT(last.progress().loss(), 0);
  ASSERT_EQ(last.progress().recall().count("R@1"), 1u);
  EXPECT_GT(last.progress().recall().at("R@1"), 0);
  EXPECT_LE(last.progress().recall().at("R@1"), 1);
  EXPECT_EQ(last.progress().recall().count("R@8"), 1u);
  EXPECT_GE(last.finished_unix_ms(), last.created_unix_ms());

  hier::v1::Job got;
  ASSERT_TRUE(Get(started.id(), &got).ok());
  EXPECT_EQ(got.state(), hier::v1::JOB_STATE_SUCCEEDED);
  EXPECT_EQ(got.progress().step(), 5);
  grpc::ClientContext list_context;
  hier::v1::ListJobsResponse listed;
  ASSERT_TRUE(stub_->ListJobs(&list_context, {}, &listed).ok());
  ASSERT_EQ(listed.jobs_size(), 1);
  EXPECT_EQ(listed.jobs(0).id(), started.id());

  // The trainer read the set fields only; the rest kept its defaults.
  const nlohmann::json config =
      nlohmann::json::parse(ReadText(fs::path(started.run_dir()) / "job-config.json"));
  EXPECT_EQ(config["emb"], 8);
  EXPECT_FALSE(config.contains("data_dir"));
  EXPECT_TRUE(fs::exists(fs::path(started.run_dir()) / "best"));
  EXPECT_TRUE(fs::exists(fs::path(started.run_dir()) / "train.log"));

  const std::string text = metrics_.Serialize();
  EXPECT_THAT(text, HasSubstr("hier_training_jobs{state=\"succeeded\"} 1"));
  EXPECT_THAT(text, HasSubstr("hier_job_progress_ratio{job_id=\"" + started.id() + "\"} 1"));
  for (int i = 0; i < 100 && Deployed().empty(); ++i) std::this_thread::sleep_for(50ms);
  EXPECT_THAT(Deployed(), ::testing::ElementsAre(started.id()));

  hier::v1::Job unchanged;
  grpc::Status cancel = Cancel(started.id(), &unchanged);
  EXPECT_EQ(cancel.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(cancel.error_message(), HasSubstr("id: job '" + started.id() + "'"));
  EXPECT_THAT(cancel.error_message(), HasSubstr("succeeded"));
  grpc::Status resume = Resume(started.id(), &unchanged);
  EXPECT_EQ(resume.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(resume.error_message(), HasSubstr("succeeded"));
}

TEST_F(TrainingServiceTest, WatchesBeyondTheLimitAreRefusedUntilOneCloses) {
  ASSERT_NO_FATAL_FAILURE(StartServer(HIER_TRAIN_BINARY, 1, /*max_watches=*/1));
  const hier::v1::Job started = StartOk("long", TinyConfig(100000));
  // A client that opens a stream and stops reading after the first event keeps it open.
  grpc::ClientContext stalled;
  hier::v1::WatchJobRequest request;
  request.set_id(started.id());
  std::unique_ptr<grpc::ClientReader<hier::v1::JobEvent>> reader =
      stub_->WatchJob(&stalled, request);
  hier::v1::JobEvent first;
  ASSERT_TRUE(reader->Read(&first));

  grpc::Status refused;
  EXPECT_THAT(Watch(started.id(), &refused), ::testing::IsEmpty());
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(refused.error_message(), HasSubstr("--max-watches"));
  hier::v1::Job job;
  EXPECT_TRUE(Get(started.id(), &job).ok());  // other calls go on

  stalled.TryCancel();
  (void)reader->Finish();
  // The stream's place is free once the server has seen it end (within the watch poll).
  grpc::Status admitted;
  for (int attempt = 0; attempt < 100; ++attempt) {
    if (!Watch(started.id(), &admitted, [](const hier::v1::Job&) { return true; }).empty()) break;
    std::this_thread::sleep_for(50ms);
  }
  EXPECT_EQ(admitted.error_code(), grpc::StatusCode::CANCELLED) << admitted.error_message();
  hier::v1::Job answer;
  EXPECT_TRUE(Cancel(started.id(), &answer).ok());
}

TEST_F(TrainingServiceTest, CancelStopsTheTrainer) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  const hier::v1::Job started = StartOk("long", TinyConfig(100000));
  const hier::v1::Job running = WatchUntilStep(started.id(), 1);
  ASSERT_EQ(running.state(), hier::v1::JOB_STATE_RUNNING) << running.error();
  const pid_t pid = TrainerPid(started.run_dir());
  ASSERT_GT(pid, 0);

  const auto cancelled_at = std::chrono::steady_clock::now();
  hier::v1::Job answer;
  ASSERT_TRUE(Cancel(started.id(), &answer).ok());
  const hier::v1::Job last = WatchToEnd(started.id());
  EXPECT_EQ(last.state(), hier::v1::JOB_STATE_CANCELLED) << last.error();
  EXPECT_EQ(last.error(), "cancelled");  // exit status 3: it checkpointed and stopped in time
  EXPECT_LT(std::chrono::steady_clock::now() - cancelled_at, 20s);
  EXPECT_TRUE(EventuallyGone(pid));

  grpc::Status again = Cancel(started.id(), &answer);
  EXPECT_EQ(again.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(again.error_message(), HasSubstr("cancelled"));
  EXPECT_EQ(Resume(started.id(), &answer).error_code(), grpc::StatusCode::FAILED_PRECONDITION);
}

TEST_F(TrainingServiceTest, ShutdownInterruptsAndAJobLeftRunningByACrashResumes) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  const hier::v1::Job started = StartOk("resumable", TinyConfig(60));
  const hier::v1::Job running = WatchUntilStep(started.id(), 2);
  ASSERT_EQ(running.state(), hier::v1::JOB_STATE_RUNNING) << running.error();
  const pid_t pid = TrainerPid(started.run_dir());
  ASSERT_GT(pid, 0);
  StopServer();  // SIGTERM: the trainer checkpoints and exits 3
  EXPECT_TRUE(EventuallyGone(pid));

  const std::string db = (directory_ / "state" / "jobs.db").string();
  {
    std::unique_ptr<server::SqliteJobStore> store =
        std::move(server::SqliteJobStore::Open(db)).value();
    server::JobRecord record = store->Get(started.id()).value();
    EXPECT_EQ(record.state, hier::v1::JOB_STATE_INTERRUPTED);
    EXPECT_THAT(record.error, HasSubstr("the server stopped while the job ran"));
    // What a server killed mid-run leaves behind.
    record.state = hier::v1::JOB_STATE_RUNNING;
    record.pid = pid;
    ASSERT_TRUE(store->Update(record).ok());
  }
  ASSERT_FALSE(fs::is_empty(fs::path(started.run_dir()) / "checkpoints"));

  ASSERT_NO_FATAL_FAILURE(StartServer());
  hier::v1::Job interrupted;
  ASSERT_TRUE(Get(started.id(), &interrupted).ok());
  EXPECT_EQ(interrupted.state(), hier::v1::JOB_STATE_INTERRUPTED);
  EXPECT_THAT(interrupted.error(), HasSubstr("the server stopped while the job ran (trainer pid"));
  EXPECT_GE(interrupted.progress().step(), 2);  // read back from the run directory

  hier::v1::Job resumed;
  const grpc::Status resume = Resume(started.id(), &resumed);
  ASSERT_TRUE(resume.ok()) << resume.error_message();
  EXPECT_LE(Rank(resumed.state()), 1);
  const hier::v1::Job last = WatchToEnd(started.id());
  EXPECT_EQ(last.state(), hier::v1::JOB_STATE_SUCCEEDED) << last.error();
  EXPECT_EQ(last.progress().step(), 60);
  EXPECT_EQ(last.progress().total_steps(), 60);
  EXPECT_THAT(ReadText(fs::path(started.run_dir()) / "train.log"), HasSubstr("resuming"));
}

// A stand-in trainer: "fail-*" jobs fail at once; the others start a grandchild and wait.
constexpr char kFakeTrainer[] = R"sh(#!/bin/sh
run_dir="$4"
case "$(basename "$run_dir")" in
  fail-*) echo "hier-train: --emb: boom" >&2; exit 2 ;;
esac
sleep 60 &
echo $! > "$run_dir/child.pid"
wait
)sh";

TEST_F(TrainingServiceTest, QueuesSignalsProcessGroupsAndReportsFailures) {
  const fs::path trainer = directory_ / "fake-trainer";
  std::ofstream(trainer) << kFakeTrainer;
  fs::permissions(trainer, fs::perms::owner_all);
  // The server blocks the stop signals in all its threads; the trainer must not inherit that.
  sigset_t stop, previous;
  sigemptyset(&stop);
  sigaddset(&stop, SIGTERM);
  ASSERT_EQ(pthread_sigmask(SIG_BLOCK, &stop, &previous), 0);
  restore_mask_ = previous;  // threads started from here on inherit the blocked mask
  ASSERT_NO_FATAL_FAILURE(StartServer(trainer.string(), /*max_jobs=*/1));

  const hier::v1::Job first = StartOk("sleepy", TinyConfig(5));
  const hier::v1::Job second = StartOk("waiting", TinyConfig(5));
  EXPECT_EQ(second.state(), hier::v1::JOB_STATE_QUEUED);
  const fs::path child_pid_file = fs::path(first.run_dir()) / "child.pid";
  for (int i = 0; i < 200 && ReadText(child_pid_file).empty(); ++i) {
    std::this_thread::sleep_for(25ms);
  }
  const pid_t grandchild = std::atoi(ReadText(child_pid_file).c_str());
  ASSERT_GT(grandchild, 0);
  // Only stdin, stdout and stderr reach the trainer (and so its children, once they exec).
  const std::string cmdline = "/proc/" + std::to_string(grandchild) + "/cmdline";
  for (int i = 0; i < 200 && ReadText(cmdline).rfind("sleep", 0) != 0; ++i) {
    std::this_thread::sleep_for(10ms);
  }
  std::vector<std::string> descriptors;
  for (const auto& fd : fs::directory_iterator("/proc/" + std::to_string(grandchild) + "/fd")) {
    descriptors.push_back(fd.path().filename().string());
  }
  EXPECT_THAT(descriptors, ::testing::UnorderedElementsAre("0", "1", "2"));

  hier::v1::Job answer;
  ASSERT_TRUE(Cancel(second.id(), &answer).ok());
  EXPECT_EQ(answer.state(), hier::v1::JOB_STATE_CANCELLED);
  EXPECT_EQ(answer.error(), "cancelled before it started");
  ASSERT_TRUE(Cancel(first.id(), &answer).ok());
  const hier::v1::Job cancelled = WatchToEnd(first.id());
  EXPECT_EQ(cancelled.state(), hier::v1::JOB_STATE_CANCELLED);
  // Ended by SIGTERM itself, not by SIGKILL after the grace period.
  EXPECT_THAT(cancelled.error(), HasSubstr("killed by signal 15"));
  EXPECT_THAT(cancelled.error(), ::testing::Not(HasSubstr("grace period")));
  EXPECT_TRUE(EventuallyGone(grandchild));

  const hier::v1::Job failing = StartOk("fail", TinyConfig(5));
  const hier::v1::Job failed = WatchToEnd(failing.id());
  EXPECT_EQ(failed.state(), hier::v1::JOB_STATE_FAILED);
  EXPECT_THAT(failed.error(), HasSubstr("hier-train exit status 2: hier-train: --emb: boom"));
  EXPECT_EQ(Cancel(failed.id(), &answer).error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  ASSERT_TRUE(Resume(failed.id(), &answer).ok());  // a failed job may be tried again
  EXPECT_EQ(WatchToEnd(failed.id()).state(), hier::v1::JOB_STATE_FAILED);
  EXPECT_THAT(ReadText(fs::path(failed.run_dir()) / "train.log"), HasSubstr("boom"));
}

TEST_F(TrainingServiceTest, RejectsBadRequestsNamingTheField) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  const auto start = [this](std::function<void(hier::v1::StartTrainingRequest&)> change,
                            const char* token = kToken) {
    return [this, change, token] {
      hier::v1::StartTrainingRequest request;
      *request.mutable_config() = TinyConfig(5);
      change(request);
      hier::v1::Job job;
      return Start(request, &job, token);
    };
  };
  struct Case {
    const char* what;
    std::function<grpc::Status()> call;
    grpc::StatusCode code;
    std::vector<std::string> message_parts;
  };
  const std::vector<Case> cases = {
      {"get an unknown id",
       [this] {
         hier::v1::Job job;
         return Get("nope", &job);
       },
       grpc::StatusCode::NOT_FOUND,
       {"id: no job 'nope'"}},
      {"get without an id",
       [this] {
         hier::v1::Job job;
         return Get("", &job);
       },
       grpc::StatusCode::INVALID_ARGUMENT,
       {"id: "}},
      {"cancel an unknown id",
       [this] {
         hier::v1::Job job;
         return Cancel("nope", &job);
       },
       grpc::StatusCode::NOT_FOUND,
       {"id: no job"}},
      {"resume an unknown id",
       [this] {
         hier::v1::Job job;
         return Resume("nope", &job);
       },
       grpc::StatusCode::NOT_FOUND,
       {"id: no job"}},
      {"watch an unknown id",
       [this] {
         grpc::Status status;
         Watch("nope", &status);
         return status;
       },
       grpc::StatusCode::NOT_FOUND,
       {"id: no job"}},
      {"bad lr",
       start([](auto& r) { r.mutable_config()->set_lr(-0.5); }),
       grpc::StatusCode::INVALID_ARGUMENT,
       {"config.lr: ", "-0.5"}},
      {"data_dir outside the roots",
       start([](auto& r) { r.mutable_config()->set_data_dir("/etc"); }),
       grpc::StatusCode::PERMISSION_DENIED,
       {"config.data_dir: ", "/usr/share/datasets"}},
      {"data_dir with ..",
       start([](auto& r) {
         r.mutable_config()->set_data_dir("/usr/share/datasets/fashion-mnist/../../../etc");
       }),
       grpc::StatusCode::INVALID_ARGUMENT,
       {"config.data_dir: ", ".."}},
      {"bad name",
       start([](auto& r) { r.set_name("my job!"); }),
       grpc::StatusCode::INVALID_ARGUMENT,
       {"name: "}},
      {"start without a token",
       start([](auto&) {}, nullptr),
       grpc::StatusCode::UNAUTHENTICATED,
       {"authorization"}},
      {"start with a wrong token",
       start([](auto&) {}, "guess"),
       grpc::StatusCode::UNAUTHENTICATED,
       {"authorization"}},
      {"cancel without a token",
       [this] {
         hier::v1::Job job;
         return Cancel("nope", &job, nullptr);
       },
       grpc::StatusCode::UNAUTHENTICATED,
       {"authorization"}},
  };
  for (const Case& c : cases) {
    const grpc::Status status = c.call();
    EXPECT_EQ(status.error_code(), c.code) << c.what << ": " << status.error_message();
    for (const std::string& part : c.message_parts) {
      EXPECT_THAT(status.error_message(), HasSubstr(part)) << c.what;
    }
  }
  grpc::ClientContext context;
  hier::v1::ListJobsResponse listed;
  ASSERT_TRUE(stub_->ListJobs(&context, {}, &listed).ok());
  EXPECT_EQ(listed.jobs_size(), 0);  // no rejected request left a job behind
  EXPECT_TRUE(fs::is_empty(directory_ / "runs"));
}

}  // namespace
}  // namespace hier::testing
