#include "client/cli/train_commands.h"

#include <google/protobuf/util/json_util.h>

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"
#include "client/cli/output.h"
#include "client/image_files.h"
#include "client/status_macros.h"
#include "client/status_text.h"
#include "client/table.h"
#include "client/unary_call.h"
#include "hier/v1/training.grpc.pb.h"

namespace hier::client::cli {
namespace {

using hier::v1::Job;
using hier::v1::JobState;
using hier::v1::Training;

// "RUNNING" for JOB_STATE_RUNNING.
std::string StateName(JobState state) {
  return std::string(absl::StripPrefix(hier::v1::JobState_Name(state), "JOB_STATE_"));
}

bool IsFinal(JobState state) {
  return state == hier::v1::JOB_STATE_SUCCEEDED || state == hier::v1::JOB_STATE_FAILED ||
         state == hier::v1::JOB_STATE_CANCELLED || state == hier::v1::JOB_STATE_INTERRUPTED;
}

// "RUNNING  epoch 3  step 1200/5000  loss 0.4321  R@1 0.6200  ETA 12m30s".
std::string ProgressLine(const Job& job) {
  const hier::v1::Progress& progress = job.progress();
  std::string line = absl::StrCat(StateName(job.state()), "  epoch ", progress.epoch(), "  step ",
                                  progress.step());
  if (progress.total_steps() > 0) absl::StrAppend(&line, "/", progress.total_steps());
  absl::StrAppend(&line, "  loss ", FormatFixed(progress.loss(), 4));
  if (!progress.recall().empty()) absl::StrAppend(&line, "  ", RecallText(progress.recall()));
  if (job.state() == hier::v1::JOB_STATE_RUNNING && progress.eta_seconds() > 0) {
    absl::StrAppend(&line, "  ETA ", FormatSeconds(progress.eta_seconds()));
  }
  if (!job.error().empty()) absl::StrAppend(&line, "  error: ", job.error());
  return line;
}

std::string FormatUnixMillis(int64_t millis) {
  if (millis <= 0) return "";
  return absl::FormatTime("%Y-%m-%d %H:%M:%S", absl::FromUnixMillis(millis), absl::LocalTimeZone());
}

absl::Status TakeJobId(const std::string& command, const std::vector<std::string>& args,
                       std::string* id) {
  if (args.size() != 1) return absl::InvalidArgumentError(absl::StrCat(command, ": give one JOB"));
  *id = args[0];
  return absl::OkStatus();
}

void PrintJob(const Job& job, const CommandEnv& env) {
  if (env.json) {
    *env.out << ProtoJson(job) << "\n";
  } else {
    *env.out << "job " << job.id() << "  " << StateName(job.state()) << "  run dir "
             << job.run_dir() << "\n";
  }
}

class TrainStartCommand : public Command {
 public:
  void AddFlags(FlagSet* flags) override {
    flags->AddString("config", &config_file_, "FILE.json", "TrainingConfig as proto JSON");
    flags->AddString("name", &name_, "NAME", "the job id is made from it and the time");
    flags->AddBool("deploy", &deploy_, "load the run's best checkpoint when the job succeeds");
  }

  absl::Status SetArgs(const std::vector<std::string>& args, const FlagSet& flags) override {
    if (!args.empty()) return absl::InvalidArgumentError("train start: unexpected argument");
    if (config_file_.empty()) return absl::InvalidArgumentError("--config: required");
    return absl::OkStatus();
  }

  absl::StatusOr<int> Run(const CommandEnv& env) override {
    HIER_ASSIGN_OR_RETURN(const std::string text, ReadFileBytes(config_file_));
    hier::v1::StartTrainingRequest request;
    const auto parsed = google::protobuf::util::JsonStringToMessage(text, request.mutable_config());
    if (!parsed.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat(config_file_, ": not a TrainingConfig: ", parsed.message().as_string()));
    }
    request.set_name(name_);
    request.set_deploy_on_success(deploy_);
    auto stub = Training::NewStub(env.connection->channel());
    HIER_ASSIGN_OR_RETURN(
        Job job, UnaryCall(*env.connection, stub.get(), &Training::Stub::StartTraining, request));
    PrintJob(job, env);
    return 0;
  }

 private:
  std::string config_file_;
  std::string name_;
  bool deploy_ = false;
};

class TrainWatchCommand : public Command {
 public:
  absl::Status SetArgs(const std::vector<std::string>& args, const FlagSet& flags) override {
    return TakeJobId("train watch", args, &id_);
  }

  // Prints a line per event until the stream ends; the exit code is 0 only for SUCCEEDED.
  absl::StatusOr<int> Run(const CommandEnv& env) override {
    auto stub = Training::NewStub(env.connection->channel());
    grpc::ClientContext context;
    env.connection->Prepare(&context, absl::InfiniteDuration());  // a job may run for hours
    hier::v1::WatchJobRequest request;
    request.set_id(id_);
    auto reader = stub->WatchJob(&context, request);
    hier::v1::JobEvent event;
    JobState last_state = hier::v1::JOB_STATE_UNSPECIFIED;
    while (reader->Read(&event)) {
      last_state = event.job().state();
      *env.out << (env.json ? ProtoJson(event.job()) : ProgressLine(event.job())) << std::endl;
    }
    HIER_RETURN_IF_ERROR(FromGrpcStatus(reader->Finish()));
    if (!IsFinal(last_state)) {
      return absl::UnavailableError(
          absl::StrCat("the watch on job ", id_, " ended while it was ", StateName(last_state)));
    }
    return last_state == hier::v1::JOB_STATE_SUCCEEDED ? 0 : 1;
  }

 private:
  std::string id_;
};

class TrainListCommand : public Command {
 public:
  absl::Status SetArgs(const std::vector<std::string>& args, const FlagSet& flags) override {
    if (!args.empty()) return absl::InvalidArgumentError("train list takes no arguments");
    return absl::OkStatus();
  }

  absl::StatusOr<int> Run(const CommandEnv& env) override {
    auto stub = Training::NewStub(env.connection->channel());
    HIER_ASSIGN_OR_RETURN(hier::v1::ListJobsResponse response,
                          UnaryCall(*env.connection, stub.get(), &Training::Stub::ListJobs,
                                    hier::v1::ListJobsRequest()));
    if (env.json) {
      *env.out << ProtoJson(response) << "\n";
      return 0;
    }
    using Align = TextTable::Align;
    TextTable table({{"id"},
                     {"state"},
                     {"epoch", Align::kRight},
                     {"step", Align::kRight},
                     {"loss", Align::kRight},
                     {"recall"},
                     {"created"}});
    for (const Job& job : response.jobs()) {
      table.AddRow({job.id(), StateName(job.state()), absl::StrCat(job.progress().epoch()),
                    absl::StrCat(job.progress().step()), FormatFixed(job.progress().loss(), 4),
                    RecallText(job.progress().recall()), FormatUnixMillis(job.created_unix_ms())});
    }
    *env.out << table.Render();
    return 0;
  }
};

// `train cancel JOB` and `train resume JOB`: one call naming a job, then the job as it is after it.
template <typename Request>
class JobCallCommand : public Command {
 public:
  using Method = grpc::Status (Training::Stub::*)(grpc::ClientContext*, const Request&, Job*);

  JobCallCommand(std::string name, Method method) : name_(std::move(name)), method_(method) {}

  absl::Status SetArgs(const std::vector<std::string>& args, const FlagSet& flags) override {
    return TakeJobId(name_, args, &id_);
  }

  absl::StatusOr<int> Run(const CommandEnv& env) override {
    auto stub = Training::NewStub(env.connection->channel());
    Request request;
    request.set_id(id_);
    HIER_ASSIGN_OR_RETURN(Job job, UnaryCall(*env.connection, stub.get(), method_, request));
    PrintJob(job, env);
    return 0;
  }

 private:
  const std::string name_;
  const Method method_;
  std::string id_;
};

}  // namespace

std::unique_ptr<Command> NewTrainStartCommand() { return std::make_unique<TrainStartCommand>(); }
std::unique_ptr<Command> NewTrainWatchCommand() { return std::make_unique<TrainWatchCommand>(); }
std::unique_ptr<Command> NewTrainListCommand() { return std::make_unique<TrainListCommand>(); }
std::unique_ptr<Command> NewTrainCancelCommand() {
  return std::make_unique<JobCallCommand<hier::v1::CancelJobRequest>>("train cancel",
                                                                      &Training::Stub::CancelJob);
}
std::unique_ptr<Command> NewTrainResumeCommand() {
  return std::make_unique<JobCallCommand<hier::v1::ResumeJobRequest>>("train resume",
                                                                      &Training::Stub::ResumeJob);
}

}  // namespace hier::client::cli
