#include "server/training/postgres_job_store.h"

#include <chrono>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"

namespace hier::server {
namespace {

constexpr char kColumns[] =
    "id, name, state, config, run_dir, error, created_unix_ms, finished_unix_ms, "
    "deploy_on_success, pid, owner, resume, cancel_requested";
// The columns' values as $1..$13, in kColumns' order.
constexpr char kValues[] =
    "$1::text, $2::text, $3::text, $4::text, $5::text, $6::text, $7::bigint, $8::bigint, "
    "$9::boolean, $10::bigint, $11::text, $12::boolean, $13::boolean";
constexpr char kSet[] =
    "name = $2::text, state = $3::text, config = $4::text, run_dir = $5::text, error = $6::text, "
    "created_unix_ms = $7::bigint, finished_unix_ms = $8::bigint, deploy_on_success = "
    "$9::boolean, pid = $10::bigint, owner = $11::text, resume = $12::boolean, "
    "cancel_requested = $13::boolean";

std::string Sql(std::initializer_list<absl::string_view> parts) {
  std::string sql;
  for (const absl::string_view part : parts) absl::StrAppend(&sql, part);
  return sql;
}

const std::string& StateName(hier::v1::JobState state) { return hier::v1::JobState_Name(state); }

// The prepared statements, built once from the column lists above.
const std::vector<index::PreparedStatement>& Statements() {
  static const auto* const sql = new std::vector<std::pair<std::string, std::string>>{
      {"insert_job", Sql({"INSERT INTO hier_jobs (", kColumns, ") VALUES (", kValues,
                          ") ON CONFLICT (id) DO NOTHING RETURNING id"})},
      {"update_job", Sql({"UPDATE hier_jobs SET ", kSet, " WHERE id = $1::text RETURNING id"})},
      {"update_owned_job", Sql({"UPDATE hier_jobs SET ", kSet,
                                " WHERE id = $1::text AND owner = $14::text RETURNING id"})},
      {"get_job", Sql({"SELECT ", kColumns, " FROM hier_jobs WHERE id = $1::text"})},
      {"list_jobs",
       Sql({"SELECT ", kColumns, " FROM hier_jobs ORDER BY created_unix_ms DESC, id DESC"})},
      // In SET, `state` and `resume` are the row's values before the update.
      {"claim_job",
       Sql({"UPDATE hier_jobs SET state = '", StateName(hier::v1::JOB_STATE_RUNNING),
            "', owner = $1::text, lease_until = now() + make_interval(secs => $2::double "
            "precision), resume = resume OR state = '",
            StateName(hier::v1::JOB_STATE_RUNNING),
            "' WHERE id = (SELECT id FROM hier_jobs WHERE state = '",
            StateName(hier::v1::JOB_STATE_QUEUED), "' OR (state = '",
            StateName(hier::v1::JOB_STATE_RUNNING),
            "' AND lease_until < now()) ORDER BY created_unix_ms, id "
            "FOR UPDATE SKIP LOCKED LIMIT 1) RETURNING ",
            kColumns})},
      {"renew_jobs",
       Sql({"UPDATE hier_jobs SET lease_until = now() + make_interval(secs => $3::double "
            "precision) WHERE owner = $1::text AND id = ANY($2::text[]) AND state = '",
            StateName(hier::v1::JOB_STATE_RUNNING), "' RETURNING id, cancel_requested"})},
      // A queued job, or a running one whose runner stopped renewing, ends here; a running one
      // is marked for its runner.
      {"cancel_job",
       Sql({"UPDATE hier_jobs SET cancel_requested = true, "
            "state = CASE WHEN state = '", StateName(hier::v1::JOB_STATE_QUEUED),
            "' OR lease_until < now() THEN '", StateName(hier::v1::JOB_STATE_CANCELLED),
            "' ELSE state END, "
            "error = CASE WHEN state = '", StateName(hier::v1::JOB_STATE_QUEUED),
            "' THEN 'cancelled before it started' WHEN lease_until < now() THEN "
            "'cancelled; its runner had stopped' ELSE error END, "
            "finished_unix_ms = CASE WHEN state = '", StateName(hier::v1::JOB_STATE_QUEUED),
            "' OR lease_until < now() THEN $2::bigint ELSE finished_unix_ms END, "
            "owner = CASE WHEN state = '", StateName(hier::v1::JOB_STATE_QUEUED),
            "' OR lease_until < now() THEN '' ELSE owner END "
            "WHERE id = $1::text AND state IN ('", StateName(hier::v1::JOB_STATE_QUEUED), "', '",
            StateName(hier::v1::JOB_STATE_RUNNING), "') RETURNING ", kColumns})},
  };
  static const auto* const statements = [] {
    auto* list = new std::vector<index::PreparedStatement>;
    for (const auto& [name, text] : *sql) list->push_back({name.c_str(), text.c_str()});
    return list;
  }();
  return *statements;
}

int64_t NowUnixMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

double Seconds(std::chrono::milliseconds duration) {
  return static_cast<double>(duration.count()) / 1000.0;
}

absl::Status NoSuchJob(const std::string& id) {
  return absl::NotFoundError(absl::StrCat("id: no job '", id, "'"));
}

// A row of kColumns.
absl::StatusOr<JobRecord> ReadJob(const pqxx::row& row, const std::string& where) {
  JobRecord job;
  job.id = row[0].as<std::string>();
  job.name = row[1].as<std::string>();
  hier::v1::JobState state;
  if (!hier::v1::JobState_Parse(row[2].as<std::string>(), &state)) {
    return absl::DataLossError(absl::StrCat(where, ": job ", job.id, " has an unknown state '",
                                            row[2].as<std::string>(), "'"));
  }
  job.state = state;
  if (absl::Status parsed = ConfigFromJson(row[3].as<std::string>(), &job.config); !parsed.ok()) {
    return absl::DataLossError(absl::StrCat(where, ": job ", job.id, ": ", parsed.message()));
  }
  job.run_dir = row[4].as<std::string>();
  job.error = row[5].as<std::string>();
  job.created_unix_ms = row[6].as<int64_t>();
  job.finished_unix_ms = row[7].as<int64_t>();
  job.deploy_on_success = row[8].as<bool>();
  job.pid = row[9].as<int64_t>();
  job.owner = row[10].as<std::string>();
  job.resume = row[11].as<bool>();
  job.cancel_requested = row[12].as<bool>();
  return job;
}

// Text fields cannot hold NUL bytes in PostgreSQL.
absl::Status CheckText(const JobRecord& job) {
  for (const auto& [name, value] : {std::pair<const char*, const std::string*>{"id", &job.id},
                                    {"name", &job.name},
                                    {"run_dir", &job.run_dir},
                                    {"error", &job.error},
                                    {"owner", &job.owner}}) {
    if (value->find('\0') != std::string::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat(name, ": holds a NUL byte, which the store cannot keep"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<PostgresJobStore>> PostgresJobStore::Open(
    const index::StoreLocation& location) {
  index::PostgresStoreOptions options = index::PostgresOptionsFor(location);
  options.max_connections = 2;  // jobs are few and slow: keep connections for the items
  absl::StatusOr<std::unique_ptr<index::PostgresPool>> pool =
      index::PostgresPool::Create(options, Statements());
  if (!pool.ok()) return pool.status();
  if (absl::Status table = (*pool)->RequireTable("hier_jobs"); !table.ok()) return table;
  return std::unique_ptr<PostgresJobStore>(new PostgresJobStore(*std::move(pool)));
}

absl::StatusOr<bool> PostgresJobStore::Write(const char* statement, const JobRecord& job,
                                             const std::string* owner) {
  if (absl::Status text = CheckText(job); !text.ok()) return text;
  absl::StatusOr<std::string> config = ConfigToJson(job.config);
  if (!config.ok()) return config.status();
  return pool_->Run<bool>("writing a job", [&](pqxx::connection& connection) {
    pqxx::nontransaction tx(connection);
    const std::string& state = StateName(job.state);
    const pqxx::result written =
        owner == nullptr
            ? tx.exec_prepared(statement, job.id, job.name, state, *config, job.run_dir,
                               job.error, job.created_unix_ms, job.finished_unix_ms,
                               job.deploy_on_success, job.pid, job.owner, job.resume,
                               job.cancel_requested)
            : tx.exec_prepared(statement, job.id, job.name, state, *config, job.run_dir,
                               job.error, job.created_unix_ms, job.finished_unix_ms,
                               job.deploy_on_success, job.pid, job.owner, job.resume,
                               job.cancel_requested, *owner);
    return absl::StatusOr<bool>(!written.empty());
  });
}

absl::Status PostgresJobStore::Insert(const JobRecord& job) {
  absl::StatusOr<bool> inserted = Write("insert_job", job, nullptr);
  if (!inserted.ok()) return inserted.status();
  if (!*inserted) return absl::AlreadyExistsError(absl::StrCat("id: a job ", job.id, " exists already"));
  return absl::OkStatus();
}

absl::Status PostgresJobStore::Update(const JobRecord& job) {
  absl::StatusOr<bool> updated = Write("update_job", job, nullptr);
  if (!updated.ok()) return updated.status();
  return *updated ? absl::OkStatus() : NoSuchJob(job.id);
}

absl::Status PostgresJobStore::UpdateOwned(const std::string& owner, const JobRecord& job) {
  absl::StatusOr<bool> updated = Write("update_owned_job", job, &owner);
  if (!updated.ok()) return updated.status();
  if (*updated) return absl::OkStatus();
  return absl::FailedPreconditionError(absl::StrCat(
      "id: job '", job.id, "' is no longer run by this replica (its lease expired)"));
}

absl::StatusOr<JobRecord> PostgresJobStore::Get(const std::string& id) const {
  const std::string& where = pool_->display_uri();
  return pool_->Run<JobRecord>("reading a job",
                               [&](pqxx::connection& connection) -> absl::StatusOr<JobRecord> {
                                 pqxx::nontransaction tx(connection);
                                 const pqxx::result found = tx.exec_prepared("get_job", id);
                                 if (found.empty()) return NoSuchJob(id);
                                 return ReadJob(found[0], where);
                               });
}

absl::StatusOr<std::vector<JobRecord>> PostgresJobStore::List() const {
  using Jobs = std::vector<JobRecord>;
  const std::string& where = pool_->display_uri();
  return pool_->Run<Jobs>("listing jobs", [&](pqxx::connection& connection) -> absl::StatusOr<Jobs> {
    pqxx::nontransaction tx(connection);
    Jobs jobs;
    for (const pqxx::row& row : tx.exec_prepared("list_jobs")) {
      absl::StatusOr<JobRecord> job = ReadJob(row, where);
      if (!job.ok()) return job.status();
      jobs.push_back(*std::move(job));
    }
    return jobs;
  });
}

absl::StatusOr<std::optional<JobRecord>> PostgresJobStore::Claim(const std::string& owner,
                                                                 std::chrono::milliseconds lease) {
  using Claimed = std::optional<JobRecord>;
  const std::string& where = pool_->display_uri();
  return pool_->Run<Claimed>(
      "claiming a job", [&](pqxx::connection& connection) -> absl::StatusOr<Claimed> {
        pqxx::work tx(connection);
        const pqxx::result claimed = tx.exec_prepared("claim_job", owner, Seconds(lease));
        if (claimed.empty()) return Claimed();
        absl::StatusOr<JobRecord> job = ReadJob(claimed[0], where);
        if (!job.ok()) return job.status();  // rolled back: the job stays where it was
        tx.commit();
        return Claimed(*std::move(job));
      });
}

absl::StatusOr<LeaseRenewal> PostgresJobStore::Renew(const std::string& owner,
                                                     const std::vector<std::string>& ids,
                                                     std::chrono::milliseconds lease) {
  if (ids.empty()) return LeaseRenewal();
  std::vector<const std::string*> pointers;
  for (const std::string& id : ids) pointers.push_back(&id);
  const std::string array = index::TextArrayLiteral(pointers);
  return pool_->Run<LeaseRenewal>(
      "renewing job leases", [&](pqxx::connection& connection) -> absl::StatusOr<LeaseRenewal> {
        pqxx::nontransaction tx(connection);
        std::set<std::string> held;
        LeaseRenewal renewal;
        for (const pqxx::row& row : tx.exec_prepared("renew_jobs", owner, array, Seconds(lease))) {
          held.insert(row[0].as<std::string>());
          if (row[1].as<bool>()) renewal.cancel_requested.push_back(row[0].as<std::string>());
        }
        for (const std::string& id : ids) {
          if (held.count(id) == 0) renewal.lost.push_back(id);
        }
        return renewal;
      });
}

absl::StatusOr<JobRecord> PostgresJobStore::RequestCancel(const std::string& id) {
  const std::string& where = pool_->display_uri();
  absl::StatusOr<std::optional<JobRecord>> cancelled = pool_->Run<std::optional<JobRecord>>(
      "cancelling a job",
      [&](pqxx::connection& connection) -> absl::StatusOr<std::optional<JobRecord>> {
        pqxx::nontransaction tx(connection);
        const pqxx::result row = tx.exec_prepared("cancel_job", id, NowUnixMs());
        if (row.empty()) return std::optional<JobRecord>();
        absl::StatusOr<JobRecord> job = ReadJob(row[0], where);
        if (!job.ok()) return job.status();
        return std::optional<JobRecord>(*std::move(job));
      });
  if (!cancelled.ok()) return cancelled.status();
  if (cancelled->has_value()) return **cancelled;
  absl::StatusOr<JobRecord> job = Get(id);
  if (!job.ok()) return job.status();
  return absl::FailedPreconditionError(
      absl::StrCat("id: job '", id, "' has already ended (", JobStateName(job->state), ")"));
}

}  // namespace hier::server
