#include "server/rpc/training_service.h"

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"

namespace hier::server {
namespace {

absl::Status NeedId(const std::string& id) {
  return id.empty() ? absl::InvalidArgumentError("id: required") : absl::OkStatus();
}

// Copies a job the runner answered with into the response.
absl::Status Answer(absl::StatusOr<hier::v1::Job> job, hier::v1::Job* response) {
  if (!job.ok()) return job.status();
  *response = *std::move(job);
  return absl::OkStatus();
}

}  // namespace

TrainingService::TrainingService(JobRunner* jobs, const Authorizer* authorizer,
                                 std::chrono::milliseconds watch_poll, int max_watches)
    : jobs_(jobs), authorizer_(authorizer), watch_poll_(watch_poll), max_watches_(max_watches) {}

grpc::Status TrainingService::StartTraining(grpc::ServerContext* context,
                                            const hier::v1::StartTrainingRequest* request,
                                            hier::v1::Job* response) {
  return authorizer_->Run(*context, Access::kWrite,
                          [&] { return Answer(jobs_->Start(*request), response); });
}

grpc::Status TrainingService::GetJob(grpc::ServerContext* context,
                                     const hier::v1::GetJobRequest* request,
                                     hier::v1::Job* response) {
  return authorizer_->Run(*context, Access::kRead, [&]() -> absl::Status {
    if (absl::Status id = NeedId(request->id()); !id.ok()) return id;
    return Answer(jobs_->Get(request->id()), response);
  });
}

grpc::Status TrainingService::ListJobs(grpc::ServerContext* context,
                                       const hier::v1::ListJobsRequest*,
                                       hier::v1::ListJobsResponse* response) {
  return authorizer_->Run(*context, Access::kRead, [&]() -> absl::Status {
    for (hier::v1::Job& job : jobs_->List()) *response->add_jobs() = std::move(job);
    return absl::OkStatus();
  });
}

grpc::Status TrainingService::WatchJob(grpc::ServerContext* context,
                                       const hier::v1::WatchJobRequest* request,
                                       grpc::ServerWriter<hier::v1::JobEvent>* writer) {
  return authorizer_->Run(*context, Access::kRead, [&]() -> absl::Status {
    if (absl::Status id = NeedId(request->id()); !id.ok()) return id;
    // Counted for as long as this call streams.
    struct Streaming {
      std::atomic<int>& count;
      ~Streaming() { --count; }
    } streaming{watches_};
    if (++watches_ > max_watches_) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "WatchJob: ", max_watches_, " streams are open already (--max-watches); close one, "
          "or follow the job with GetJob"));
    }
    int64_t seen = -1;  // versions start at 1: the first Await answers at once
    while (true) {
      if (context->IsCancelled()) return absl::CancelledError("the call was cancelled");
      absl::StatusOr<JobSnapshot> snapshot = jobs_->Await(request->id(), seen, watch_poll_);
      if (!snapshot.ok()) return snapshot.status();
      if (snapshot->version <= seen) continue;  // nothing new within watch_poll_
      seen = snapshot->version;
      const bool ended = IsTerminal(snapshot->job.state());
      hier::v1::JobEvent event;
      *event.mutable_job() = std::move(snapshot->job);
      if (!writer->Write(event)) {
        return absl::CancelledError("the client stopped reading the stream");
      }
      if (ended) return absl::OkStatus();
    }
  });
}

grpc::Status TrainingService::CancelJob(grpc::ServerContext* context,
                                        const hier::v1::CancelJobRequest* request,
                                        hier::v1::Job* response) {
  return authorizer_->Run(*context, Access::kWrite, [&]() -> absl::Status {
    if (absl::Status id = NeedId(request->id()); !id.ok()) return id;
    return Answer(jobs_->Cancel(request->id()), response);
  });
}

grpc::Status TrainingService::ResumeJob(grpc::ServerContext* context,
                                        const hier::v1::ResumeJobRequest* request,
                                        hier::v1::Job* response) {
  return authorizer_->Run(*context, Access::kWrite, [&]() -> absl::Status {
    if (absl::Status id = NeedId(request->id()); !id.ok()) return id;
    return Answer(jobs_->Resume(request->id()), response);
  });
}

}  // namespace hier::server
