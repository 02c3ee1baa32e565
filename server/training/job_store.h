// The training jobs of record: the interface both backends implement.
//   - SqliteJobStore (sqlite_job_store.h): <state>/jobs.db, one server's jobs.
//   - PostgresJobStore (postgres_job_store.h): the hier_jobs table of a cluster's database, shared
//     by its replicas, with the claims and leases that let exactly one replica run a job
//     (SharedJobStore).
// Both pass the same test suite (tests/server/training/job_store_test.cc).
//
// Thread-safety: every method may be called from any thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "hier/v1/training.pb.h"
#include "index/item_store.h"

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
  // A shared store's coordination (SharedJobStore); a store of one server keeps them empty.
  std::string owner;              // the replica that runs it, while it runs
  bool resume = false;            // its next start continues the run directory (--resume)
  bool cancel_requested = false;  // CancelJob reached another replica than its runner
};

class JobStore {
 public:
  // The store for `location` (index::StoreLocation): a PostgreSQL URI opens that database's jobs
  // (whose schema the item store opened first), anything else <state_dir>/jobs.db.
  static absl::StatusOr<std::unique_ptr<JobStore>> Open(const index::StoreLocation& location,
                                                        const std::string& state_dir);

  virtual ~JobStore() = default;

  // AlreadyExists when the id is taken.
  virtual absl::Status Insert(const JobRecord& job) = 0;
  // Rewrites every field of the job with `job.id`; NotFound when there is none.
  virtual absl::Status Update(const JobRecord& job) = 0;
  // NotFound ("id: no job ...") when there is none.
  virtual absl::StatusOr<JobRecord> Get(const std::string& id) const = 0;
  // Every job, newest first.
  virtual absl::StatusOr<std::vector<JobRecord>> List() const = 0;

  // The jobs a previous server left QUEUED or RUNNING, which opening this store marked
  // INTERRUPTED, with the pid they had (a trainer that outlived a crashed server may still run).
  // None for a shared store: its unfinished jobs belong to the replicas that run them.
  virtual const std::vector<JobRecord>& interrupted_on_open() const = 0;

 protected:
  JobStore() = default;
};

// What a runner's lease renewal found (SharedJobStore::Renew).
struct LeaseRenewal {
  std::vector<std::string> lost;              // no longer this runner's: stop their trainers
  std::vector<std::string> cancel_requested;  // CancelJob arrived elsewhere: cancel them
};

// A job store shared by the replicas of a cluster. A job is run by the replica that claimed it,
// for as long as it renews its lease; a job whose runner stopped renewing (it died, or lost the
// database) is claimed again by another replica, which resumes it from its last checkpoint.
class SharedJobStore : public JobStore {
 public:
  // Takes the oldest job that is QUEUED, or RUNNING with an expired lease, for `owner`: RUNNING,
  // owned, leased for `lease`; an expired one is marked to resume. None when there is no such
  // job. Of replicas claiming at once, each job goes to exactly one (FOR UPDATE SKIP LOCKED).
  virtual absl::StatusOr<std::optional<JobRecord>> Claim(const std::string& owner,
                                                         std::chrono::milliseconds lease) = 0;
  // Extends `owner`'s leases of `ids` by `lease` from now.
  virtual absl::StatusOr<LeaseRenewal> Renew(const std::string& owner,
                                             const std::vector<std::string>& ids,
                                             std::chrono::milliseconds lease) = 0;
  // Writes the job as Update does, only while `owner` holds it; FailedPrecondition when it does
  // not (the lease expired and another replica took the job).
  virtual absl::Status UpdateOwned(const std::string& owner, const JobRecord& job) = 0;
  // CancelJob on a replica that does not run the job: a QUEUED job (or one whose runner's lease
  // expired) is CANCELLED at once, a RUNNING one is marked for its runner. FailedPrecondition
  // for a job that ended; returns the job as it is then.
  virtual absl::StatusOr<JobRecord> RequestCancel(const std::string& id) = 0;
};

// For the backends: a configuration as stored (proto JSON with the proto's field names), and
// back (DataLoss when it does not parse).
absl::StatusOr<std::string> ConfigToJson(const hier::v1::TrainingConfig& config);
absl::Status ConfigFromJson(const std::string& json, hier::v1::TrainingConfig* config);

// "queued", "running", ...: the state's proto name without its prefix, lower case.
std::string JobStateName(hier::v1::JobState state);
// Whether the job can change no more by itself (succeeded, failed, cancelled, interrupted).
bool IsTerminal(hier::v1::JobState state);

}  // namespace hier::server
