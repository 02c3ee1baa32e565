#include "server/training/job_runner.h"

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <optional>
#include <system_error>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "server/metrics/event_log.h"
#include "server/training/job_config.h"
#include "server/training/trainer_process.h"
#include "trainer/io/atomic_file.h"

namespace hier::server {
namespace {

namespace fs = std::filesystem;
using hier::v1::JobState;
using Clock = std::chrono::steady_clock;

constexpr char kConfigFile[] = "job-config.json";
constexpr char kLogFile[] = "train.log";
constexpr int kExitInterrupted = 3;  // hier-train: stopped by SIGINT/SIGTERM after a checkpoint
constexpr int kLogLinesInError = 3;

int64_t NowUnixMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

bool SameRecall(const hier::v1::Progress& a, const hier::v1::Progress& b) {
  if (a.recall_size() != b.recall_size()) return false;
  for (const auto& [k, value] : a.recall()) {
    const auto found = b.recall().find(k);
    if (found == b.recall().end() || found->second != value) return false;
  }
  return true;
}

JobProgressSample SampleOf(const hier::v1::Progress& progress) {
  JobProgressSample sample;
  sample.loss = progress.loss();
  if (const auto found = progress.recall().find("R@1"); found != progress.recall().end()) {
    sample.recall_at_1 = found->second;
  }
  if (progress.total_steps() > 0) {
    sample.progress_ratio = std::clamp(
        static_cast<double>(progress.step()) / static_cast<double>(progress.total_steps()), 0.0,
        1.0);
  }
  sample.epoch = progress.epoch();
  return sample;
}

// Writes `text` to `path` durably and atomically (io::WriteFileAtomically, as a Status).
absl::Status WriteJobFile(const fs::path& path, const std::string& text) {
  try {
    io::WriteFileAtomically(path.string(), text);
  } catch (const std::exception& e) {
    return absl::UnavailableError(e.what());
  }
  return absl::OkStatus();
}

std::string Seconds(std::chrono::milliseconds duration) {
  return absl::StrCat(static_cast<double>(duration.count()) / 1000.0, " s");
}

}  // namespace

struct JobRunner::Entry {
  explicit Entry(JobRecord job) : record(std::move(job)), reader(record.run_dir) {}

  JobRecord record;
  hier::v1::Progress progress;
  RunProgress reader;
  int64_t version = 1;
  bool resume = false;            // the next launch continues the run (--resume)
  bool cancel_requested = false;  // Cancel signalled the running trainer
  bool killed = false;            // SIGKILL was sent after the grace period
  bool exited = true;             // no trainer of ours to signal (none yet, or it has exited)
  bool claimed = false;           // a cluster: this replica holds the job's lease
  bool lost = false;              // a cluster: its lease expired; another replica runs it now
  pid_t orphan = 0;               // a trainer a previous server left, perhaps still running
  Clock::time_point kill_at;      // after Cancel: when SIGKILL follows
};

absl::StatusOr<std::unique_ptr<JobRunner>> JobRunner::Create(JobRunnerOptions options,
                                                             ServerMetrics* metrics) {
  if (options.max_jobs < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_jobs: must be >= 1, got ", options.max_jobs));
  }
  if (options.grace.count() < 0) {
    return absl::InvalidArgumentError("grace: must be >= 0");
  }
  if (options.poll.count() <= 0) return absl::InvalidArgumentError("poll: must be > 0");
  if (options.trainer.empty()) return absl::InvalidArgumentError("trainer: must be set");
  for (const auto& [name, dir] :
       {std::pair<const char*, std::string*>{"state_dir", &options.state_dir},
        {"runs_dir", &options.runs_dir}}) {
    if (dir->empty()) return absl::InvalidArgumentError(absl::StrCat(name, ": must be set"));
    std::error_code error;
    fs::create_directories(*dir, error);
    fs::path absolute;
    if (!error) absolute = fs::weakly_canonical(fs::absolute(*dir), error);
    if (error) {
      return absl::FailedPreconditionError(
          absl::StrCat(name, ": cannot create ", *dir, ": ", error.message()));
    }
    *dir = absolute.string();
  }
  if (options.trainer.find('/') != std::string::npos) {
    options.trainer = fs::absolute(options.trainer).lexically_normal().string();
  }
  absl::StatusOr<std::unique_ptr<JobStore>> store =
      JobStore::Open(options.store, options.state_dir);
  if (!store.ok()) return store.status();
  if (dynamic_cast<SharedJobStore*>(store->get()) != nullptr) {
    if (options.replica.empty()) return absl::InvalidArgumentError("replica: must be set");
    if (options.lease <= options.poll) {
      return absl::InvalidArgumentError("lease: must be longer than poll");
    }
  }
  absl::StatusOr<std::vector<JobRecord>> jobs = (*store)->List();
  if (!jobs.ok()) return jobs.status();

  std::unique_ptr<JobRunner> runner(new JobRunner(std::move(options), metrics, *std::move(store)));
  {
    absl::MutexLock lock(&runner->mutex_);
    for (JobRecord& job : *jobs) {
      auto entry = std::make_unique<Entry>(std::move(job));
      entry->reader.Poll(&entry->progress);
      runner->jobs_.emplace(entry->record.id, std::move(entry));
    }
    // A trainer outlives a server that crashed (its own process group); stop it so a resumed
    // job does not share the run directory with it.
    for (const JobRecord& job : runner->store_->interrupted_on_open()) {
      const auto pid = static_cast<pid_t>(job.pid);
      if (!IsTrainerOf(pid, job.run_dir)) continue;
      Entry& entry = *runner->jobs_.at(job.id);
      entry.orphan = pid;
      ::kill(-pid, SIGTERM);
      absl::StrAppend(&entry.record.error, "; its trainer (pid ", pid,
                      ") was still running and was sent SIGTERM");
      runner->Persist(entry);
    }
    runner->PublishMetrics();
  }
  runner->monitor_ = std::thread(&JobRunner::MonitorLoop, runner.get());
  return runner;
}

JobRunner::JobRunner(JobRunnerOptions options, ServerMetrics* metrics,
                     std::unique_ptr<JobStore> store)
    : options_(std::move(options)),
      metrics_(metrics),
      store_(std::move(store)),
      shared_(dynamic_cast<SharedJobStore*>(store_.get())),
      random_(std::random_device{}()) {}

JobRunner::~JobRunner() { Shutdown(); }

absl::StatusOr<hier::v1::Job> JobRunner::Start(const hier::v1::StartTrainingRequest& request) {
  if (absl::Status name = CheckJobName(request.name()); !name.ok()) return name;
  absl::StatusOr<hier::v1::TrainingConfig> config =
      CheckTrainingConfig(request.config(), options_.data_roots);
  if (!config.ok()) return config.status();
  if (::access(options_.trainer.c_str(), X_OK) != 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "trainer: this server cannot run ", options_.trainer, ": ", std::strerror(errno)));
  }
  absl::MutexLock lock(&mutex_);
  if (stopping_) return absl::UnavailableError("the server is stopping; it starts no new jobs");
  JobRecord record;
  do {
    record.id = MakeJobId(request.name(), std::chrono::system_clock::now(),
                          static_cast<uint16_t>(random_() & 0xffff));
  } while (jobs_.count(record.id) > 0);
  record.name = request.name();
  record.state = hier::v1::JOB_STATE_QUEUED;
  record.config = *std::move(config);
  record.run_dir = (fs::path(options_.runs_dir) / record.id).string();
  record.created_unix_ms = NowUnixMs();
  record.deploy_on_success = request.deploy_on_success();
  if (absl::Status inserted = store_->Insert(record); !inserted.ok()) return inserted;
  const std::string id = record.id;
  jobs_.emplace(id, std::make_unique<Entry>(std::move(record)));
  if (shared_ == nullptr) queue_.push_back(id);
  Schedule();
  PublishMetrics();
  return ToProto(*jobs_.at(id));
}

absl::StatusOr<hier::v1::Job> JobRunner::Get(const std::string& id) {
  absl::MutexLock lock(&mutex_);
  absl::StatusOr<Entry*> entry = FindOrLoad(id);
  if (!entry.ok()) return entry.status();
  if ((*entry)->record.state == hier::v1::JOB_STATE_RUNNING) Refresh(**entry);
  return ToProto(**entry);
}

std::vector<hier::v1::Job> JobRunner::List() {
  absl::MutexLock lock(&mutex_);
  std::vector<const Entry*> entries;
  for (const auto& [id, entry] : jobs_) entries.push_back(entry.get());
  std::sort(entries.begin(), entries.end(), [](const Entry* a, const Entry* b) {
    if (a->record.created_unix_ms != b->record.created_unix_ms) {
      return a->record.created_unix_ms > b->record.created_unix_ms;
    }
    return a->record.id > b->record.id;
  });
  std::vector<hier::v1::Job> jobs;
  jobs.reserve(entries.size());
  for (const Entry* entry : entries) jobs.push_back(ToProto(*entry));
  return jobs;
}

absl::StatusOr<hier::v1::Job> JobRunner::Cancel(const std::string& id) {
  absl::MutexLock lock(&mutex_);
  absl::StatusOr<Entry*> found = FindOrLoad(id);
  if (!found.ok()) return found.status();
  Entry& entry = **found;
  if (shared_ != nullptr && !RunsHere(entry)) {
    // Queued, or run by another replica: the store ends it or marks it for its runner.
    absl::StatusOr<JobRecord> record = shared_->RequestCancel(id);
    if (!record.ok()) return record.status();
    entry.record = *std::move(record);
    Changed(entry);
    PublishMetrics();
    return ToProto(entry);
  }
  switch (entry.record.state) {
    case hier::v1::JOB_STATE_QUEUED:
      queue_.erase(std::remove(queue_.begin(), queue_.end(), id), queue_.end());
      End(entry, hier::v1::JOB_STATE_CANCELLED, "cancelled before it started");
      PublishMetrics();
      break;
    case hier::v1::JOB_STATE_RUNNING:
      CancelRunning(entry);
      break;
    default:
      return absl::FailedPreconditionError(absl::StrCat("id: job '", id, "' has already ended (",
                                                        JobStateName(entry.record.state), ")"));
  }
  return ToProto(entry);
}

void JobRunner::CancelRunning(Entry& entry) {
  if (entry.cancel_requested) return;
  entry.cancel_requested = true;
  entry.kill_at = Clock::now() + options_.grace;
  Signal(entry, SIGTERM);
  if (options_.grace.count() == 0) {
    Signal(entry, SIGKILL);
    entry.killed = true;
  }
}

absl::StatusOr<hier::v1::Job> JobRunner::Resume(const std::string& id) {
  absl::MutexLock lock(&mutex_);
  if (stopping_) return absl::UnavailableError("the server is stopping; it starts no new jobs");
  absl::StatusOr<Entry*> found = FindOrLoad(id);
  if (!found.ok()) return found.status();
  Entry& entry = **found;
  const JobState state = entry.record.state;
  if (state != hier::v1::JOB_STATE_INTERRUPTED && state != hier::v1::JOB_STATE_FAILED) {
    return absl::FailedPreconditionError(
        absl::StrCat("id: job '", id, "' is ", JobStateName(state),
                     "; only an interrupted or failed job can be resumed"));
  }
  if (entry.orphan != 0 && IsTrainerOf(entry.orphan, entry.record.run_dir)) {
    return absl::FailedPreconditionError(
        absl::StrCat("id: the trainer a previous server started for job '", id, "' (pid ",
                     entry.orphan, ") is still stopping; try again when it has exited"));
  }
  entry.orphan = 0;
  entry.resume = true;
  entry.record.resume = true;
  entry.record.cancel_requested = false;
  entry.record.state = hier::v1::JOB_STATE_QUEUED;
  entry.record.error.clear();
  entry.record.finished_unix_ms = 0;
  Persist(entry);
  Changed(entry);
  finished_series_.erase(std::remove(finished_series_.begin(), finished_series_.end(), id),
                         finished_series_.end());
  if (shared_ == nullptr) queue_.push_back(id);
  Schedule();
  PublishMetrics();
  return ToProto(entry);
}

absl::StatusOr<JobSnapshot> JobRunner::Await(const std::string& id, int64_t after_version,
                                             std::chrono::milliseconds timeout) {
  absl::MutexLock lock(&mutex_);
  const absl::Time deadline = absl::Now() + absl::FromChrono(timeout);
  while (true) {
    absl::StatusOr<Entry*> entry = FindOrLoad(id);
    if (!entry.ok()) return entry.status();
    const bool timed_out =
        (*entry)->version <= after_version && changed_.WaitWithDeadline(&mutex_, deadline);
    if ((*entry)->version > after_version || timed_out) {
      return JobSnapshot{ToProto(**entry), (*entry)->version};
    }
  }
}

void JobRunner::Shutdown() {
  absl::MutexLock shutdown(&shutdown_mutex_);
  std::vector<std::thread> threads;
  {
    absl::MutexLock lock(&mutex_);
    if (!stopping_) {
      stopping_ = true;
      for (const std::string& id : queue_) {
        End(*jobs_.at(id), hier::v1::JOB_STATE_INTERRUPTED,
            "interrupted: the server stopped before the job started; ResumeJob starts it");
      }
      queue_.clear();
      for (auto& [id, entry] : jobs_) {
        if (entry->record.state == hier::v1::JOB_STATE_RUNNING) Signal(*entry, SIGTERM);
      }
      changed_.SignalAll();
    }
    const absl::Time deadline = absl::Now() + absl::FromChrono(options_.grace);
    while (running_ > 0 && !changed_.WaitWithDeadline(&mutex_, deadline)) {
    }
    if (running_ > 0) {
      for (auto& [id, entry] : jobs_) {
        if (entry->record.state != hier::v1::JOB_STATE_RUNNING || entry->exited) continue;
        Signal(*entry, SIGKILL);
        entry->killed = true;
      }
    }
    while (running_ > 0) changed_.Wait(&mutex_);
    PublishMetrics();
    monitor_stop_ = true;
    monitor_wake_.SignalAll();
    for (auto& [serial, thread] : waiters_) threads.push_back(std::move(thread));
    waiters_.clear();
    for (std::thread& thread : finished_waiters_) threads.push_back(std::move(thread));
    finished_waiters_.clear();
  }
  if (monitor_.joinable()) monitor_.join();
  for (std::thread& thread : threads) thread.join();
}

void JobRunner::Schedule() {
  // A cluster's jobs are claimed on the monitor thread, the one that starts their trainers.
  if (shared_ != nullptr) {
    monitor_wake_.SignalAll();
    return;
  }
  while (!stopping_ && running_ < options_.max_jobs && !queue_.empty()) {
    const std::string id = queue_.front();
    queue_.pop_front();
    Launch(*jobs_.at(id));
  }
}

void JobRunner::Launch(Entry& entry) {
  const fs::path run_dir(entry.record.run_dir);
  std::error_code error;
  fs::create_directories(run_dir, error);
  if (error) {
    End(entry, hier::v1::JOB_STATE_FAILED,
        absl::StrCat("run_dir: cannot create ", run_dir.string(), ": ", error.message()));
    return;
  }
  // Written again at every start from the record of the job, so a resumed run reads what was
  // accepted even if the trainer never got as far as its own config.json.
  const fs::path config = run_dir / kConfigFile;
  if (absl::Status written = WriteJobFile(config, ToTrainerJson(entry.record.config));
      !written.ok()) {
    End(entry, hier::v1::JOB_STATE_FAILED, std::string(written.message()));
    return;
  }
  std::vector<std::string> args = {"--config", config.string(), "--run-dir", run_dir.string()};
  if (entry.resume) args.push_back("--resume");
  // A cluster's trainer must not outlive its replica: another replica takes the job over.
  absl::StatusOr<pid_t> pid = SpawnInNewProcessGroup(
      options_.trainer, args, (run_dir / kLogFile).string(), /*exit_with_parent=*/shared_ != nullptr);
  if (!pid.ok()) {
    End(entry, hier::v1::JOB_STATE_FAILED, std::string(pid.status().message()));
    return;
  }
  entry.record.state = hier::v1::JOB_STATE_RUNNING;
  entry.record.pid = *pid;
  entry.record.error.clear();
  entry.record.finished_unix_ms = 0;
  entry.exited = false;
  entry.cancel_requested = false;
  entry.killed = false;
  entry.lost = false;
  entry.resume = false;
  entry.record.resume = false;
  entry.reader.Restart();
  ++running_;
  Persist(entry);
  Changed(entry);
  const uint64_t serial = next_waiter_++;
  try {
    waiters_.emplace(serial,
                     std::thread(&JobRunner::AwaitExit, this, entry.record.id, *pid, serial));
  } catch (const std::system_error& e) {
    // Without a waiter nobody would reap it: stop the trainer now rather than leave it unwatched.
    ::kill(-*pid, SIGKILL);
    int status = 0;
    while (::waitpid(*pid, &status, 0) < 0 && errno == EINTR) {
    }
    entry.exited = true;
    --running_;
    End(entry, hier::v1::JOB_STATE_FAILED,
        absl::StrCat("cannot start a thread to wait for hier-train: ", e.what()));
  }
}

void JobRunner::AwaitExit(std::string id, pid_t pid, uint64_t waiter) {
  // Wait without reaping first: while the trainer is a zombie its pid (and process group id)
  // cannot be reused, so the signals sent until `exited` is set reach the right processes.
  siginfo_t info{};
  int rc = 0;
  do {
    rc = ::waitid(P_PID, pid, &info, WEXITED | WNOWAIT);
  } while (rc != 0 && errno == EINTR);
  bool known = rc == 0;
  {
    absl::MutexLock lock(&mutex_);
    jobs_.at(id)->exited = true;
  }
  int status = 0;
  if (known) {
    ::kill(-pid, SIGKILL);  // what is left of its group (ranks of --nproc), never the zombie
    do {
      rc = ::waitpid(pid, &status, 0);
    } while (rc < 0 && errno == EINTR);
    known = rc == pid;
  }
  std::optional<hier::v1::Job> deploy;
  {
    absl::MutexLock lock(&mutex_);
    Entry& entry = *jobs_.at(id);
    Finish(entry, status, known);
    if (entry.record.state == hier::v1::JOB_STATE_SUCCEEDED && entry.record.deploy_on_success) {
      deploy = ToProto(entry);
    }
    if (auto self = waiters_.find(waiter); self != waiters_.end()) {
      finished_waiters_.push_back(std::move(self->second));
      waiters_.erase(self);
    }
  }
  if (deploy && options_.on_success) options_.on_success(*deploy);
}

void JobRunner::Finish(Entry& entry, int wait_status, bool status_known) {
  --running_;
  if (entry.lost) {
    // Another replica runs the job now: what it records is the job's state.
    entry.record.pid = 0;
    Changed(entry);
    Schedule();
    PublishMetrics();
    return;
  }
  const TrainerState trainer = Refresh(entry);
  const bool succeeded = status_known && WIFEXITED(wait_status) && WEXITSTATUS(wait_status) == 0;
  const bool stopped =
      status_known && WIFEXITED(wait_status) && WEXITSTATUS(wait_status) == kExitInterrupted;
  const std::string how = status_known ? DescribeWaitStatus(wait_status)
                                       : std::string("an exit status that could not be read");
  const std::string killed =
      entry.killed ? absl::StrCat("; hier-train did not stop within the grace period of ",
                                  Seconds(options_.grace), " and was killed")
                   : "";
  if (succeeded) {
    End(entry, hier::v1::JOB_STATE_SUCCEEDED, "");
  } else if (entry.cancel_requested) {
    End(entry, hier::v1::JOB_STATE_CANCELLED,
        entry.killed
            ? absl::StrCat("cancelled", killed)
            : absl::StrCat("cancelled", stopped ? "" : absl::StrCat(" (hier-train ", how, ")")));
  } else if (stopping_ && shared_ != nullptr) {
    // Handed back: another replica claims it and continues from its last checkpoint.
    entry.record.state = hier::v1::JOB_STATE_QUEUED;
    entry.record.resume = true;
    entry.record.pid = 0;
    entry.record.owner.clear();
    entry.record.error = absl::StrCat("the replica that ran it stopped", killed,
                                      "; another replica continues it from its last checkpoint");
    Persist(entry);
    entry.claimed = false;
    Changed(entry);
  } else if (stopping_) {
    End(entry, hier::v1::JOB_STATE_INTERRUPTED,
        absl::StrCat("interrupted: the server stopped while the job ran", killed,
                     "; ResumeJob continues it from its last checkpoint"));
  } else if (stopped) {
    End(entry, hier::v1::JOB_STATE_INTERRUPTED,
        "interrupted: hier-train was stopped from outside the server (exit status 3); ResumeJob "
        "continues it from its last checkpoint");
  } else {
    std::string why = trainer.state == "failed" ? trainer.message : "";
    if (why.empty()) {
      why =
          TailOfFile((fs::path(entry.record.run_dir) / kLogFile).string(), kLogLinesInError, 16384);
    }
    End(entry, hier::v1::JOB_STATE_FAILED,
        absl::StrCat("hier-train ", how, why.empty() ? "" : ": ", why));
  }
  Schedule();
  PublishMetrics();
}

void JobRunner::End(Entry& entry, JobState state, std::string error) {
  entry.record.state = state;
  entry.record.error = std::move(error);
  entry.record.finished_unix_ms = NowUnixMs();
  entry.record.pid = 0;
  entry.record.owner.clear();
  Persist(entry);
  entry.claimed = false;
  Changed(entry);
  if (metrics_ != nullptr) {
    metrics_->SetJobProgress(entry.record.id, SampleOf(entry.progress));
    finished_series_.push_back(entry.record.id);
    while (finished_series_.size() >
           static_cast<size_t>(std::max(0, options_.finished_job_series))) {
      metrics_->RemoveJob(finished_series_.front());
      finished_series_.pop_front();
    }
  }
}

TrainerState JobRunner::Refresh(Entry& entry) {
  hier::v1::Progress next = entry.progress;
  TrainerState state = entry.reader.Poll(&next);
  const bool changed =
      next.step() != entry.progress.step() || next.epoch() != entry.progress.epoch() ||
      next.total_steps() != entry.progress.total_steps() || !SameRecall(next, entry.progress);
  entry.progress = std::move(next);
  if (changed) Changed(entry);
  return state;
}

void JobRunner::Persist(Entry& entry) {
  if (entry.lost) return;  // another replica runs it now
  // A job this replica runs is written only while it holds the lease.
  const absl::Status written = shared_ != nullptr && entry.claimed
                                   ? shared_->UpdateOwned(options_.replica, entry.record)
                                   : store_->Update(entry.record);
  if (absl::IsFailedPrecondition(written) && shared_ != nullptr) entry.lost = true;
  const std::string state = JobStateName(entry.record.state);
  if (!written.ok()) {
    LogEvent(LogLevel::kWarning, "job_state",
             absl::StrCat("job ", entry.record.id, ": its ", state,
                          " state was not recorded: ", written.ToString()),
             {{"job_id", entry.record.id}, {"state", state}});
    return;
  }
  LogEvent(LogLevel::kInfo, "job_state",
           absl::StrCat("job ", entry.record.id, ": ", state,
                        entry.record.error.empty() ? "" : absl::StrCat(" (", entry.record.error, ")")),
           {{"job_id", entry.record.id}, {"state", state}, {"error", entry.record.error}});
}

void JobRunner::Changed(Entry& entry) {
  ++entry.version;
  changed_.SignalAll();
}

void JobRunner::PublishMetrics() {
  if (metrics_ == nullptr) return;
  std::map<std::string, int64_t> count_by_state;
  for (const JobState state : {hier::v1::JOB_STATE_QUEUED, hier::v1::JOB_STATE_RUNNING,
                               hier::v1::JOB_STATE_SUCCEEDED, hier::v1::JOB_STATE_FAILED,
                               hier::v1::JOB_STATE_CANCELLED, hier::v1::JOB_STATE_INTERRUPTED}) {
    count_by_state[JobStateName(state)] = 0;
  }
  for (const auto& [id, entry] : jobs_) {
    ++count_by_state[JobStateName(entry->record.state)];
    if (entry->record.state == hier::v1::JOB_STATE_RUNNING) {
      metrics_->SetJobProgress(id, SampleOf(entry->progress));
    }
  }
  metrics_->SetTrainingJobs(count_by_state);
}

void JobRunner::Signal(Entry& entry, int signal_number) {
  if (entry.exited || entry.record.pid <= 0) return;
  ::kill(-static_cast<pid_t>(entry.record.pid), signal_number);
}

bool JobRunner::RunsHere(const Entry& entry) const { return entry.claimed && !entry.lost; }

absl::StatusOr<JobRunner::Entry*> JobRunner::FindOrLoad(const std::string& id) {
  absl::StatusOr<Entry*> found = Find(id);
  if (found.ok() || shared_ == nullptr || !absl::IsNotFound(found.status())) return found;
  absl::StatusOr<JobRecord> record = store_->Get(id);  // started on another replica
  if (!record.ok()) return record.status();
  auto entry = std::make_unique<Entry>(*std::move(record));
  entry->reader.Poll(&entry->progress);
  Entry* added = entry.get();
  jobs_.emplace(id, std::move(entry));
  return added;
}

void JobRunner::SyncWithCluster() {
  std::vector<std::string> held;
  {
    absl::MutexLock lock(&mutex_);
    for (const auto& [id, entry] : jobs_) {
      if (RunsHere(*entry)) held.push_back(id);
    }
  }
  absl::StatusOr<LeaseRenewal> renewal = shared_->Renew(options_.replica, held, options_.lease);
  if (renewal.ok()) {
    absl::MutexLock lock(&mutex_);
    for (const std::string& id : renewal->lost) {
      Entry& entry = *jobs_.at(id);
      if (!RunsHere(entry)) continue;  // it ended here meanwhile
      LogEvent(LogLevel::kWarning, "job_lease_lost",
               absl::StrCat("job ", id, ": its lease expired and another replica runs it; "
                            "stopping its trainer here"),
               {{"job_id", id}});
      entry.lost = true;
      entry.claimed = false;
      Signal(entry, SIGKILL);
      entry.killed = true;
    }
    for (const std::string& id : renewal->cancel_requested) {
      Entry& entry = *jobs_.at(id);
      if (RunsHere(entry)) CancelRunning(entry);
    }
  }
  // Claims, while there is room here.
  while (true) {
    {
      absl::MutexLock lock(&mutex_);
      if (stopping_ || running_ >= options_.max_jobs) break;
    }
    absl::StatusOr<std::optional<JobRecord>> claimed =
        shared_->Claim(options_.replica, options_.lease);
    if (!claimed.ok() || !claimed->has_value()) break;
    absl::MutexLock lock(&mutex_);
    const std::string id = (*claimed)->id;
    auto [it, added] = jobs_.try_emplace(id, nullptr);
    if (added) it->second = std::make_unique<Entry>(**claimed);
    Entry& entry = *it->second;
    entry.record = **std::move(claimed);
    entry.claimed = true;
    entry.lost = false;
    if (entry.record.cancel_requested) {
      End(entry, hier::v1::JOB_STATE_CANCELLED, "cancelled; its runner had stopped");
      continue;
    }
    entry.resume = entry.record.resume;
    Launch(entry);
  }
  // Every other job as the store has it.
  absl::StatusOr<std::vector<JobRecord>> jobs = store_->List();
  if (!jobs.ok()) return;
  absl::MutexLock lock(&mutex_);
  for (JobRecord& record : *jobs) {
    auto [it, added] = jobs_.try_emplace(record.id, nullptr);
    if (added) {
      it->second = std::make_unique<Entry>(std::move(record));
      it->second->reader.Poll(&it->second->progress);
      Changed(*it->second);
      continue;
    }
    Entry& entry = *it->second;
    // What this replica runs, or just ended (a list read before its end was recorded), is
    // known here better than in that list.
    if (RunsHere(entry) || record.owner == options_.replica) continue;
    const JobRecord& known = entry.record;
    if (known.state != record.state || known.error != record.error ||
        known.owner != record.owner || known.finished_unix_ms != record.finished_unix_ms ||
        known.cancel_requested != record.cancel_requested) {
      entry.record = std::move(record);
      Changed(entry);
    }
  }
  PublishMetrics();
}

absl::StatusOr<JobRunner::Entry*> JobRunner::Find(const std::string& id) {
  const auto found = jobs_.find(id);
  if (found == jobs_.end()) return absl::NotFoundError(absl::StrCat("id: no job '", id, "'"));
  return found->second.get();
}

hier::v1::Job JobRunner::ToProto(const Entry& entry) const {
  hier::v1::Job job;
  job.set_id(entry.record.id);
  job.set_state(entry.record.state);
  *job.mutable_config() = entry.record.config;
  job.set_run_dir(entry.record.run_dir);
  *job.mutable_progress() = entry.progress;
  job.set_error(entry.record.error);
  job.set_created_unix_ms(entry.record.created_unix_ms);
  job.set_finished_unix_ms(entry.record.finished_unix_ms);
  return job;
}

void JobRunner::MonitorLoop() {
  while (true) {
    if (shared_ != nullptr) SyncWithCluster();
    std::vector<std::thread> finished;
    {
      absl::MutexLock lock(&mutex_);
      if (!monitor_stop_) monitor_wake_.WaitWithTimeout(&mutex_, absl::FromChrono(options_.poll));
      if (monitor_stop_) break;
      const Clock::time_point now = Clock::now();
      for (auto& [id, entry] : jobs_) {
        if (entry->record.state != hier::v1::JOB_STATE_RUNNING) continue;
        Refresh(*entry);
        if (entry->cancel_requested && !entry->killed && now >= entry->kill_at) {
          Signal(*entry, SIGKILL);
          entry->killed = true;
        }
      }
      PublishMetrics();
      finished.swap(finished_waiters_);
    }
    for (std::thread& thread : finished) thread.join();
  }
}

}  // namespace hier::server
