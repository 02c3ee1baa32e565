// The training jobs of record: one SQLite database (<state>/jobs.db, WAL journal,
// synchronous=FULL) holding each job's id, name, state, configuration, run directory, error,
// times, deploy flag and trainer pid, so a job acknowledged by StartTraining survives a restart.
//
// Opening the store ends the jobs the last server left QUEUED or RUNNING: they become INTERRUPTED
// (the server stopped while they waited or ran), resumable with ResumeJob.
//
// Thread-safety: every method may be called from any thread; one connection, serialised.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "hier/v1/training.pb.h"

namespace hier::server {

// One job as stored.
struct JobRecord {
  std::string id;
  std::string name;  // as given to StartTraining ("" when none was)
  hier::v1::JobState state = hier::v1::JOB_STATE_QUEUED;
  hier::v1::TrainingConfig config;
  std::string run_dir;
  std::string error;
  int64_t created_unix_ms = 0;
  int64_t finished_unix_ms = 0;  // 0 until the job ends
  bool deploy_on_success = false;
  int64_t pid = 0;  // the trainer's process (and process group) while it runs, else 0
};

class JobStore {
 public:
  // Opens or creates the database at `path` (its folder must exist) and marks the jobs left
  // QUEUED or RUNNING as INTERRUPTED. DataLoss for a damaged file, FailedPrecondition for a file
  // that is not a job store.
  static absl::StatusOr<std::unique_ptr<JobStore>> Open(const std::string& path);
  ~JobStore();
  JobStore(const JobStore&) = delete;
  JobStore& operator=(const JobStore&) = delete;

  // AlreadyExists when the id is taken.
  absl::Status Insert(const JobRecord& job);
  // Rewrites every field of the job with `job.id`; NotFound when there is none.
  absl::Status Update(const JobRecord& job);
  // NotFound ("id: no job ...") when there is none.
  absl::StatusOr<JobRecord> Get(const std::string& id) const;
  // Every job, newest first.
  absl::StatusOr<std::vector<JobRecord>> List() const;

  // The jobs Open turned into INTERRUPTED, as they are now but with the pid they had (a trainer
  // that outlived a crashed server may still run under it).
  const std::vector<JobRecord>& interrupted_on_open() const { return interrupted_on_open_; }

 private:
  class Connection;
  explicit JobStore(std::unique_ptr<Connection> connection);

  mutable absl::Mutex mutex_;
  const std::unique_ptr<Connection> connection_ ABSL_PT_GUARDED_BY(mutex_);
  std::vector<JobRecord> interrupted_on_open_;  // set once by Open
};

// "queued", "running", ...: the state's proto name without its prefix, lower case.
std::string JobStateName(hier::v1::JobState state);
// Whether the job can change no more by itself (succeeded, failed, cancelled, interrupted).
bool IsTerminal(hier::v1::JobState state);

}  // namespace hier::server
