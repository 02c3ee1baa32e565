// One server's training jobs (JobStore) in a SQLite database (<state>/jobs.db, WAL journal,
// synchronous=FULL), so a job acknowledged by StartTraining survives a restart.
//
// Opening the store ends the jobs the last server left QUEUED or RUNNING: they become INTERRUPTED
// (the server stopped while they waited or ran), resumable with ResumeJob.
//
// Thread-safety: every method may be called from any thread; one connection, serialised.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "server/training/job_store.h"

namespace hier::server {

class SqliteJobStore final : public JobStore {
 public:
  // Opens or creates the database at `path` (its folder must exist) and marks the jobs left
  // QUEUED or RUNNING as INTERRUPTED. DataLoss for a damaged file, FailedPrecondition for a file
  // that is not a job store.
  static absl::StatusOr<std::unique_ptr<SqliteJobStore>> Open(const std::string& path);
  ~SqliteJobStore() override;

  absl::Status Insert(const JobRecord& job) override;
  absl::Status Update(const JobRecord& job) override;
  absl::StatusOr<JobRecord> Get(const std::string& id) const override;
  absl::StatusOr<std::vector<JobRecord>> List() const override;
  const std::vector<JobRecord>& interrupted_on_open() const override {
    return interrupted_on_open_;
  }

 private:
  class Connection;
  explicit SqliteJobStore(std::unique_ptr<Connection> connection);

  mutable absl::Mutex mutex_;
  const std::unique_ptr<Connection> connection_ ABSL_PT_GUARDED_BY(mutex_);
  std::vector<JobRecord> interrupted_on_open_;  // set once by Open
};

}  // namespace hier::server
