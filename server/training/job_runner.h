// Training jobs run as hier-train child processes (architecture.md, decision 2): a job is checked,
// recorded in the JobStore, queued behind at most max_jobs running ones, started in its own run
// directory (<runs_dir>/<job id>: job-config.json, train.log and what the trainer writes), followed
// through status.json and metrics.jsonl, and ended by its exit status: 0 SUCCEEDED, 3 after
// Cancel CANCELLED, 3 otherwise INTERRUPTED, anything else FAILED with the trainer's message.
//
// Cancel and Shutdown send SIGTERM to the trainer's process group (it checkpoints and exits 3) and
// SIGKILL after the grace period. Shutdown leaves the running jobs INTERRUPTED and the queued ones
// too, resumable by the next server with Resume (`hier-train --resume`). A crashing trainer only
// fails its job.
//
// A cluster (the store a SharedJobStore, JobRunnerOptions::store a PostgreSQL URI): every
// replica's runner records jobs in the shared store and answers for all of them (GetJob, ListJobs,
// WatchJob, CancelJob, ResumeJob on any replica). A queued job is claimed by exactly one replica,
// whose monitor thread starts its trainer and renews its lease every poll; a CancelJob that
// reaches another replica marks the job, and its runner cancels it at its next renewal. When a
// runner stops renewing (it died, or lost the database for longer than the lease), another
// replica claims the job and resumes it from its last checkpoint (the runs directory must be on
// storage every replica mounts); a runner that finds its lease gone stops its trainer. Trainers
// stop when their replica dies, and a replica that shuts down hands its running jobs back to the
// queue to be resumed elsewhere.
//
// Thread-safety: every method may be called from any thread. One waiter thread per trainer reaps
// it; one monitor thread polls the running jobs' run directories and enforces kill deadlines (and,
// in a cluster, claims jobs, renews leases and refreshes the other replicas' jobs).
// Ownership: the runner owns its store and threads; `metrics` (may be null) must outlive it.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "hier/v1/training.pb.h"
#include "server/metrics/server_metrics.h"
#include "server/training/job_store.h"
#include "server/training/run_progress.h"

namespace hier::server {

struct JobRunnerOptions {
  std::string trainer = "hier-train";  // the hier-train binary
  std::string state_dir = "state";     // holds jobs.db
  // Where the jobs are recorded: uri empty for <state_dir>/jobs.db; a PostgreSQL URI for the
  // store a cluster's replicas share (see the header comment).
  index::StoreLocation store;
  // A cluster: this replica's name in the job leases (unique among the replicas), and how long a
  // lease lasts without renewal.
  std::string replica;
  std::chrono::milliseconds lease{15000};
  std::string runs_dir = "runs";       // one run directory per job
  // Dataset, weight and group files must lie under one of these (after resolving symlinks).
  std::vector<std::string> data_roots = {"/usr/share/datasets"};
  int max_jobs = 1;                        // trainers running at once; the rest wait
  std::chrono::milliseconds grace{30000};  // SIGTERM to SIGKILL, on Cancel and Shutdown
  std::chrono::milliseconds poll{500};     // how often running jobs' progress is read
  int finished_job_series = 16;            // finished jobs whose hier_job_* series stay on /metrics
  // Called once for each job that succeeds and was started with deploy_on_success (the app
  // loads its run's best/ checkpoint). Runs on a waiter thread without the runner's lock; keep
  // it short or hand the work off.
  std::function<void(const hier::v1::Job&)> on_success;
};

// A job and how many changes it had; a watcher waits for the count to pass the one it saw.
struct JobSnapshot {
  hier::v1::Job job;
  int64_t version = 0;
};

class JobRunner {
 public:
  // Opens <state_dir>/jobs.db (creating the folders), notes the trainers a crashed server may have
  // left running (they are sent SIGTERM) and starts the monitor. InvalidArgument naming the
  // option for a bad value.
  static absl::StatusOr<std::unique_ptr<JobRunner>> Create(JobRunnerOptions options,
                                                           ServerMetrics* metrics);
  ~JobRunner();  // Shutdown()
  JobRunner(const JobRunner&) = delete;
  JobRunner& operator=(const JobRunner&) = delete;

  // Checks and records a job, then starts or queues it. InvalidArgument ("name", "config.<field>"),
  // PermissionDenied (a path outside the data roots), FailedPrecondition (no trainer binary),
  // Unavailable while shutting down.
  absl::StatusOr<hier::v1::Job> Start(const hier::v1::StartTrainingRequest& request);
  // NotFound ("id: no job ...").
  absl::StatusOr<hier::v1::Job> Get(const std::string& id);
  // Every job, newest first.
  std::vector<hier::v1::Job> List();
  // A queued job is cancelled at once; a running one is signalled and ends CANCELLED when its
  // trainer exits (the job returned is still RUNNING). FailedPrecondition for a job that ended.
  absl::StatusOr<hier::v1::Job> Cancel(const std::string& id);
  // Queues an INTERRUPTED or FAILED job again; its trainer continues from the run directory's
  // latest checkpoint. FailedPrecondition for any other state, or while a trainer a previous
  // server started for it still runs.
  absl::StatusOr<hier::v1::Job> Resume(const std::string& id);
  // The job as soon as its version exceeds `after_version`, or as it is once `timeout` passed.
  // NotFound for an unknown id.
  absl::StatusOr<JobSnapshot> Await(const std::string& id, int64_t after_version,
                                    std::chrono::milliseconds timeout);

  // Refuses new jobs, interrupts the running ones (SIGTERM, SIGKILL after the grace period) and
  // the queued ones, and waits for every trainer to be reaped. Idempotent.
  void Shutdown();

 private:
  struct Entry;

  JobRunner(JobRunnerOptions options, ServerMetrics* metrics, std::unique_ptr<JobStore> store);

  // Starts queued jobs while fewer than max_jobs run.
  void Schedule() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  // The job, loaded from a cluster's store when this replica has not seen it yet.
  absl::StatusOr<Entry*> FindOrLoad(const std::string& id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  // SIGTERM to a running job's trainer, SIGKILL after the grace period; it ends CANCELLED.
  void CancelRunning(Entry& entry) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  // Writes the job's config file and spawns its trainer; on failure the job FAILED.
  void Launch(Entry& entry) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  // The waiter of one trainer: reaps it and ends its job.
  void AwaitExit(std::string id, pid_t pid, uint64_t waiter);
  // Ends a running job by its trainer's wait status.
  void Finish(Entry& entry, int wait_status, bool status_known)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  // Marks a job ended in `state`, persists it and wakes watchers.
  void End(Entry& entry, hier::v1::JobState state, std::string error)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  // A cluster: renews this replica's leases (stopping trainers whose lease is gone, cancelling
  // jobs cancelled elsewhere), claims queued jobs while fewer than max_jobs run here, and
  // refreshes every other job from the store. Runs on the monitor thread, without the lock held
  // while it waits for the store.
  void SyncWithCluster() ABSL_LOCKS_EXCLUDED(mutex_);
  // A cluster: whether this replica runs the job now.
  bool RunsHere(const Entry& entry) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  // Re-reads a job's run directory; a new step, epoch or recall makes a new version.
  TrainerState Refresh(Entry& entry) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  // Writes the record to the store; a failure is printed to stderr (the job carries on in memory).
  void Persist(Entry& entry) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  // A new version of the job: wakes its watchers.
  void Changed(Entry& entry) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  // hier_training_jobs{state} and the running jobs' hier_job_* series.
  void PublishMetrics() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  // Signals the trainer's process group unless it has exited (its pid may then be reused).
  void Signal(Entry& entry, int signal_number) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  absl::StatusOr<Entry*> Find(const std::string& id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  hier::v1::Job ToProto(const Entry& entry) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  // Every `poll`: refreshes running jobs, sends due SIGKILLs, joins finished waiters.
  void MonitorLoop();

  const JobRunnerOptions options_;
  ServerMetrics* const metrics_;
  const std::unique_ptr<JobStore> store_;
  SharedJobStore* const shared_;  // store_ when it is a cluster's, else null

  absl::Mutex shutdown_mutex_;  // makes concurrent Shutdown calls wait for the first

  absl::Mutex mutex_;
  absl::CondVar changed_;       // signalled on every new version, a reaped trainer and stopping
  absl::CondVar monitor_wake_;  // signalled when the monitor is to stop
  std::map<std::string, std::unique_ptr<Entry>> jobs_ ABSL_GUARDED_BY(mutex_);
  std::deque<std::string> queue_ ABSL_GUARDED_BY(mutex_);  // ids of QUEUED jobs, oldest first
  int running_ ABSL_GUARDED_BY(mutex_) = 0;
  bool stopping_ ABSL_GUARDED_BY(mutex_) = false;
  bool monitor_stop_ ABSL_GUARDED_BY(mutex_) = false;
  std::deque<std::string> finished_series_ ABSL_GUARDED_BY(mutex_);  // ids with hier_job_* series
  std::mt19937 random_ ABSL_GUARDED_BY(mutex_);
  uint64_t next_waiter_ ABSL_GUARDED_BY(mutex_) = 0;
  std::map<uint64_t, std::thread> waiters_ ABSL_GUARDED_BY(mutex_);  // by serial, not pid
  std::vector<std::thread> finished_waiters_ ABSL_GUARDED_BY(mutex_);
  std::thread monitor_;
};

}  // namespace hier::server
