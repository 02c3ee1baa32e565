#include "index/sqlite_handles.h"

#include "absl/strings/str_cat.h"

namespace hier::index {

absl::StatusOr<Database> OpenDurableDatabase(const std::string& path, int busy_timeout_ms) {
  sqlite3* raw = nullptr;
  const int opened = sqlite3_open_v2(
      path.c_str(), &raw, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  Database db(raw);
  auto error = [&](int rc, const char* doing) {
    return absl::Status(CodeForSqlite(rc),
                        absl::StrCat(path, ": ", doing, ": ",
                                     db != nullptr ? sqlite3_errmsg(db.get()) : sqlite3_errstr(rc)));
  };
  if (opened != SQLITE_OK) return error(opened, "opening");
  if (const int rc = sqlite3_busy_timeout(db.get(), busy_timeout_ms); rc != SQLITE_OK) {
    return error(rc, "setting the busy timeout");
  }
  sqlite3_stmt* raw_stmt = nullptr;
  if (const int rc = sqlite3_prepare_v2(db.get(), "PRAGMA journal_mode = WAL", -1, &raw_stmt,
                                        nullptr);
      rc != SQLITE_OK) {
    return error(rc, "enabling the WAL journal");
  }
  const Statement wal(raw_stmt);
  const int stepped = sqlite3_step(wal.get());
  if (stepped != SQLITE_ROW && stepped != SQLITE_DONE) {
    return error(stepped, "enabling the WAL journal");
  }
  if (stepped != SQLITE_ROW || ColumnString(wal.get(), 0) != "wal") {
    return absl::FailedPreconditionError(
        absl::StrCat(path, ": the WAL journal could not be enabled"));
  }
  if (const int rc = sqlite3_exec(db.get(), "PRAGMA synchronous = FULL", nullptr, nullptr, nullptr);
      rc != SQLITE_OK) {
    return error(rc, "setting synchronous");
  }
  return db;
}

}  // namespace hier::index
