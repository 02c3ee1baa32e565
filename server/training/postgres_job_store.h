// The training jobs of a cluster (SharedJobStore) in its PostgreSQL database: table hier_jobs of
// the store of record's versioned schema (index/postgres_item_store.h), which the server opens
// first; this store refuses a database without it.
//
// Claims are the usual PostgreSQL job-queue pattern: one UPDATE of the row a
// `SELECT ... FOR UPDATE SKIP LOCKED LIMIT 1` picked, so replicas claiming at once never take the
// same job and never wait for each other. A lease is a lease_until timestamp of the database's
// clock (the replicas' clocks do not matter); the runner extends it every few hundred
// milliseconds, and writes about a job it runs only while it still owns it (UpdateOwned), so a
// runner that lost its lease cannot overwrite what the next runner records.
//
// Errors are the pool's (index/postgres_pool.h). Thread-safety: every method may be called from
// many threads at once.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "index/postgres_pool.h"
#include "server/training/job_store.h"

namespace hier::server {

class PostgresJobStore final : public SharedJobStore {
 public:
  // FailedPrecondition when the database has no hier_jobs table (the item store was not opened
  // on it first); the pool's errors otherwise.
  static absl::StatusOr<std::unique_ptr<PostgresJobStore>> Open(
      const index::StoreLocation& location);

  absl::Status Insert(const JobRecord& job) override;
  absl::Status Update(const JobRecord& job) override;
  absl::StatusOr<JobRecord> Get(const std::string& id) const override;
  absl::StatusOr<std::vector<JobRecord>> List() const override;
  const std::vector<JobRecord>& interrupted_on_open() const override { return none_; }

  absl::StatusOr<std::optional<JobRecord>> Claim(const std::string& owner,
                                                 std::chrono::milliseconds lease) override;
  absl::StatusOr<LeaseRenewal> Renew(const std::string& owner,
                                     const std::vector<std::string>& ids,
                                     std::chrono::milliseconds lease) override;
  absl::Status UpdateOwned(const std::string& owner, const JobRecord& job) override;
  absl::StatusOr<JobRecord> RequestCancel(const std::string& id) override;

 private:
  explicit PostgresJobStore(std::unique_ptr<index::PostgresPool> pool) : pool_(std::move(pool)) {}
  // Runs the prepared UPDATE `statement` with the job's fields (and `owner` for update_owned);
  // returns whether it matched a row.
  absl::StatusOr<bool> Write(const char* statement, const JobRecord& job,
                             const std::string* owner);

  const std::unique_ptr<index::PostgresPool> pool_;
  const std::vector<JobRecord> none_;
};

}  // namespace hier::server
