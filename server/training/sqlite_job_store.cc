#include "server/training/sqlite_job_store.h"

#include <sqlite3.h>

#include <chrono>
#include <utility>

#include "absl/strings/str_cat.h"
#include "index/sqlite_handles.h"

namespace hier::server {
namespace {

using index::CodeForSqlite;
using index::ColumnString;
using index::Database;
using index::Statement;

constexpr int kSchemaVersion = 1;  // PRAGMA user_version
constexpr int kBusyTimeoutMs = 10000;

constexpr char kSchema[] = R"sql(
CREATE TABLE jobs (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  state TEXT NOT NULL,
  config TEXT NOT NULL,
  run_dir TEXT NOT NULL,
  error TEXT NOT NULL,
  created_unix_ms INTEGER NOT NULL,
  finished_unix_ms INTEGER NOT NULL,
  deploy_on_success INTEGER NOT NULL,
  pid INTEGER NOT NULL) WITHOUT ROWID;
CREATE INDEX jobs_by_creation ON jobs (created_unix_ms);
)sql";

constexpr char kColumns[] =
    "id, name, state, config, run_dir, error, created_unix_ms, finished_unix_ms, "
    "deploy_on_success, pid";

int64_t NowUnixMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

class SqliteJobStore::Connection {
 public:
  static absl::StatusOr<std::unique_ptr<Connection>> Open(const std::string& path) {
    absl::StatusOr<Database> db = index::OpenDurableDatabase(path, kBusyTimeoutMs);
    if (!db.ok()) return db.status();
    std::unique_ptr<Connection> connection(new Connection(path, *std::move(db)));
    if (absl::Status schema = connection->InitializeSchema(); !schema.ok()) return schema;
    return connection;
  }

  absl::Status Error(int rc, const char* doing) const {
    return absl::Status(CodeForSqlite(rc), absl::StrCat(path_, ": ", doing, ": ", sqlite3_errstr(rc),
                                                  " (", sqlite3_errmsg(db_.get()), ")"));
  }

  absl::Status Exec(const char* sql, const char* doing) {
    const int rc = sqlite3_exec(db_.get(), sql, nullptr, nullptr, nullptr);
    return rc == SQLITE_OK ? absl::OkStatus() : Error(rc, doing);
  }

  absl::StatusOr<Statement> Prepare(const std::string& sql, const char* doing) {
    sqlite3_stmt* stmt = nullptr;
    const int rc = sqlite3_prepare_v2(db_.get(), sql.c_str(), -1, &stmt, nullptr);
    Statement statement(stmt);
    if (rc != SQLITE_OK) return Error(rc, doing);
    return statement;
  }

  // The first column of the first row of a one-off query, as text; the statement is finished
  // before returning, so no read stays open.
  absl::StatusOr<std::string> QueryText(const char* sql) {
    absl::StatusOr<Statement> stmt = Prepare(sql, sql);
    if (!stmt.ok()) return stmt.status();
    const int rc = sqlite3_step(stmt->get());
    if (rc != SQLITE_ROW) return Error(rc, sql);
    return ColumnString(stmt->get(), 0);
  }

  // Runs `body` in one write transaction; rolled back when it fails.
  template <typename Body>
  absl::Status InTransaction(Body body) {
    if (absl::Status begun = Exec("BEGIN IMMEDIATE", "beginning a transaction"); !begun.ok()) {
      return begun;
    }
    absl::Status done = body();
    if (done.ok()) done = Exec("COMMIT", "committing");
    if (sqlite3_get_autocommit(db_.get()) == 0) {
      sqlite3_exec(db_.get(), "ROLLBACK", nullptr, nullptr, nullptr);
    }
    return done;
  }

  // INSERT (`insert`) or UPDATE by id; NotFound when an update matched nothing.
  absl::Status Write(const JobRecord& job, bool insert) {
    absl::StatusOr<std::string> config = ConfigToJson(job.config);
    if (!config.ok()) return config.status();
    const std::string sql =
        insert ? absl::StrCat("INSERT INTO jobs (", kColumns,
                              ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)")
               : "UPDATE jobs SET name = ?2, state = ?3, config = ?4, run_dir = ?5, error = ?6, "
                 "created_unix_ms = ?7, finished_unix_ms = ?8, deploy_on_success = ?9, pid = ?10 "
                 "WHERE id = ?1";
    const char* doing = insert ? "adding a job" : "updating a job";
    absl::StatusOr<Statement> stmt = Prepare(sql, doing);
    if (!stmt.ok()) return stmt.status();
    sqlite3_stmt* s = stmt->get();
    const std::string state = hier::v1::JobState_Name(job.state);
    const auto text = [s](int index, const std::string& value) {
      return sqlite3_bind_text64(s, index, value.data(), value.size(), SQLITE_STATIC, SQLITE_UTF8);
    };
    int rc = text(1, job.id);
    if (rc == SQLITE_OK) rc = text(2, job.name);
    if (rc == SQLITE_OK) rc = text(3, state);
    if (rc == SQLITE_OK) rc = text(4, *config);
    if (rc == SQLITE_OK) rc = text(5, job.run_dir);
    if (rc == SQLITE_OK) rc = text(6, job.error);
    if (rc == SQLITE_OK) rc = sqlite3_bind_int64(s, 7, job.created_unix_ms);
    if (rc == SQLITE_OK) rc = sqlite3_bind_int64(s, 8, job.finished_unix_ms);
    if (rc == SQLITE_OK) rc = sqlite3_bind_int64(s, 9, job.deploy_on_success ? 1 : 0);
    if (rc == SQLITE_OK) rc = sqlite3_bind_int64(s, 10, job.pid);
    if (rc != SQLITE_OK) return Error(rc, doing);
    rc = sqlite3_step(s);
    if (rc != SQLITE_DONE) {
      if (insert && (rc & 0xff) == SQLITE_CONSTRAINT) {
        return absl::AlreadyExistsError(absl::StrCat("id: a job ", job.id, " exists already"));
      }
      return Error(rc, doing);
    }
    if (!insert && sqlite3_changes(db_.get()) == 0) return NoSuchJob(job.id);
    return absl::OkStatus();
  }

  // The rows `sql` (selecting kColumns, with `id` bound to ?1 when given) yields.
  absl::StatusOr<std::vector<JobRecord>> Select(const std::string& sql, const std::string* id) {
    absl::StatusOr<Statement> stmt = Prepare(sql, "reading jobs");
    if (!stmt.ok()) return stmt.status();
    sqlite3_stmt* s = stmt->get();
    if (id != nullptr) {
      if (const int rc =
              sqlite3_bind_text64(s, 1, id->data(), id->size(), SQLITE_STATIC, SQLITE_UTF8);
          rc != SQLITE_OK) {
        return Error(rc, "reading jobs");
      }
    }
    std::vector<JobRecord> jobs;
    while (true) {
      const int rc = sqlite3_step(s);
      if (rc == SQLITE_DONE) break;
      if (rc != SQLITE_ROW) return Error(rc, "reading jobs");
      JobRecord job;
      job.id = ColumnString(s, 0);
      job.name = ColumnString(s, 1);
      hier::v1::JobState state;
      if (!hier::v1::JobState_Parse(ColumnString(s, 2), &state)) {
        return absl::DataLossError(absl::StrCat(path_, ": job ", job.id, " has an unknown state '",
                                                ColumnString(s, 2), "'"));
      }
      job.state = state;
      if (absl::Status parsed = ConfigFromJson(ColumnString(s, 3), &job.config); !parsed.ok()) {
        return absl::DataLossError(absl::StrCat(path_, ": job ", job.id, ": ", parsed.message()));
      }
      job.run_dir = ColumnString(s, 4);
      job.error = ColumnString(s, 5);
      job.created_unix_ms = sqlite3_column_int64(s, 6);
      job.finished_unix_ms = sqlite3_column_int64(s, 7);
      job.deploy_on_success = sqlite3_column_int64(s, 8) != 0;
      job.pid = sqlite3_column_int64(s, 9);
      jobs.push_back(std::move(job));
    }
    return jobs;
  }

  static absl::Status NoSuchJob(const std::string& id) {
    return absl::NotFoundError(absl::StrCat("id: no job '", id, "'"));
  }

  // Marks queued and running jobs INTERRUPTED; returns them with their former pid.
  absl::StatusOr<std::vector<JobRecord>> InterruptUnfinished() {
    std::vector<JobRecord> interrupted;
    const absl::Status done = InTransaction([&]() -> absl::Status {
      absl::StatusOr<std::vector<JobRecord>> unfinished =
          Select(absl::StrCat("SELECT ", kColumns, " FROM jobs WHERE state IN ('",
                              hier::v1::JobState_Name(hier::v1::JOB_STATE_QUEUED), "', '",
                              hier::v1::JobState_Name(hier::v1::JOB_STATE_RUNNING),
                              "') ORDER BY created_unix_ms"),
                 nullptr);
      if (!unfinished.ok()) return unfinished.status();
      const int64_t now = NowUnixMs();
      for (JobRecord& job : *unfinished) {
        job.error =
            job.state == hier::v1::JOB_STATE_QUEUED
                ? "interrupted: the server stopped before the job started; ResumeJob starts it"
                : absl::StrCat("interrupted: the server stopped while the job ran (trainer pid ",
                               job.pid, "); ResumeJob continues it from its last checkpoint");
        job.state = hier::v1::JOB_STATE_INTERRUPTED;
        job.finished_unix_ms = now;
        JobRecord stored = job;
        stored.pid = 0;
        if (absl::Status written = Write(stored, /*insert=*/false); !written.ok()) return written;
        interrupted.push_back(std::move(job));
      }
      return absl::OkStatus();
    });
    if (!done.ok()) return done;
    return interrupted;
  }

 private:
  Connection(std::string path, Database db) : path_(std::move(path)), db_(std::move(db)) {}

  absl::Status InitializeSchema() {
    return InTransaction([&]() -> absl::Status {
      absl::StatusOr<std::string> version = QueryText("PRAGMA user_version");
      if (!version.ok()) return version.status();
      absl::StatusOr<std::string> objects = QueryText("SELECT count(*) FROM sqlite_master");
      if (!objects.ok()) return objects.status();
      if (*objects == "0") {
        if (absl::Status created = Exec(kSchema, "creating the schema"); !created.ok()) {
          return created;
        }
        return Exec(absl::StrCat("PRAGMA user_version = ", kSchemaVersion).c_str(),
                    "setting the schema version");
      }
      if (*version != std::to_string(kSchemaVersion)) {
        return absl::FailedPreconditionError(
            absl::StrCat(path_, ": not a job store of schema version ", kSchemaVersion, " (found ",
                         *version, ")"));
      }
      return absl::OkStatus();
    });
  }

  const std::string path_;
  const Database db_;
};

absl::StatusOr<std::unique_ptr<SqliteJobStore>> SqliteJobStore::Open(const std::string& path) {
  absl::StatusOr<std::unique_ptr<Connection>> connection = Connection::Open(path);
  if (!connection.ok()) return connection.status();
  absl::StatusOr<std::vector<JobRecord>> interrupted = (*connection)->InterruptUnfinished();
  if (!interrupted.ok()) return interrupted.status();
  std::unique_ptr<SqliteJobStore> store(new SqliteJobStore(*std::move(connection)));
  store->interrupted_on_open_ = *std::move(interrupted);
  return store;
}

SqliteJobStore::SqliteJobStore(std::unique_ptr<Connection> connection) : connection_(std::move(connection)) {}

SqliteJobStore::~SqliteJobStore() = default;

absl::Status SqliteJobStore::Insert(const JobRecord& job) {
  absl::MutexLock lock(&mutex_);
  return connection_->Write(job, /*insert=*/true);
}

absl::Status SqliteJobStore::Update(const JobRecord& job) {
  absl::MutexLock lock(&mutex_);
  return connection_->Write(job, /*insert=*/false);
}

absl::StatusOr<JobRecord> SqliteJobStore::Get(const std::string& id) const {
  absl::MutexLock lock(&mutex_);
  absl::StatusOr<std::vector<JobRecord>> found =
      connection_->Select(absl::StrCat("SELECT ", kColumns, " FROM jobs WHERE id = ?1"), &id);
  if (!found.ok()) return found.status();
  if (found->empty()) return Connection::NoSuchJob(id);
  return std::move(found->front());
}

absl::StatusOr<std::vector<JobRecord>> SqliteJobStore::List() const {
  absl::MutexLock lock(&mutex_);
  return connection_->Select(
      absl::StrCat("SELECT ", kColumns, " FROM jobs ORDER BY created_unix_ms DESC, id DESC"),
      nullptr);
}

}  // namespace hier::server
