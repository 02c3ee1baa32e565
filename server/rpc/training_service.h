// The Training service (proto/hier/v1/training.proto) over a JobRunner: start, get, list, watch,
// cancel and resume hier-train jobs. Starting, cancelling and resuming need write access; the
// others read access.
//
// Thread-safety: gRPC calls the handlers from many threads; the JobRunner serialises its state. A
// WatchJob call holds one handler thread for as long as it streams (and as long as a client that
// stopped reading keeps it open), so at most `max_watches` stream at once: the rest get
// RESOURCE_EXHAUSTED, and the other calls keep their threads.
#pragma once

#include <atomic>
#include <chrono>

#include "hier/v1/training.grpc.pb.h"
#include "server/rpc/authorizer.h"
#include "server/training/job_runner.h"

namespace hier::server {

class TrainingService final : public hier::v1::Training::Service {
 public:
  // `jobs` and `authorizer` are not owned and must outlive the service. `watch_poll` bounds how
  // long a WatchJob call takes to notice that its client went away.
  TrainingService(JobRunner* jobs, const Authorizer* authorizer,
                  std::chrono::milliseconds watch_poll = std::chrono::milliseconds(250),
                  int max_watches = 64);

  grpc::Status StartTraining(grpc::ServerContext* context,
                             const hier::v1::StartTrainingRequest* request,
                             hier::v1::Job* response) override;
  grpc::Status GetJob(grpc::ServerContext* context, const hier::v1::GetJobRequest* request,
                      hier::v1::Job* response) override;
  grpc::Status ListJobs(grpc::ServerContext* context, const hier::v1::ListJobsRequest* request,
                        hier::v1::ListJobsResponse* response) override;
  // One event at once, then one per change (state, step, epoch, recall) until the job ends; OK
  // after the event of its final state, CANCELLED when the call is cancelled first.
  grpc::Status WatchJob(grpc::ServerContext* context, const hier::v1::WatchJobRequest* request,
                        grpc::ServerWriter<hier::v1::JobEvent>* writer) override;
  grpc::Status CancelJob(grpc::ServerContext* context, const hier::v1::CancelJobRequest* request,
                         hier::v1::Job* response) override;
  grpc::Status ResumeJob(grpc::ServerContext* context, const hier::v1::ResumeJobRequest* request,
                         hier::v1::Job* response) override;

 private:
  JobRunner* const jobs_;
  const Authorizer* const authorizer_;
  const std::chrono::milliseconds watch_poll_;
  const int max_watches_;
  std::atomic<int> watches_{0};  // WatchJob calls streaming now
};

}  // namespace hier::server
