// What every SQLite-backed store (items here, training jobs in server/training) needs around the
// C API: opening a database durably, owning handles for connections and statements, text columns
// as strings, and the status code for a result code.
#pragma once

#include <sqlite3.h>

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace hier::index {

struct CloseDatabase {
  void operator()(sqlite3* db) const { sqlite3_close_v2(db); }
};
using Database = std::unique_ptr<sqlite3, CloseDatabase>;

struct FinalizeStatement {
  void operator()(sqlite3_stmt* stmt) const { sqlite3_finalize(stmt); }
};
using Statement = std::unique_ptr<sqlite3_stmt, FinalizeStatement>;

// A text column's value ("" for NULL), embedded NUL bytes included.
inline std::string ColumnString(sqlite3_stmt* stmt, int column) {
  const unsigned char* text = sqlite3_column_text(stmt, column);
  if (text == nullptr) return "";
  return std::string(reinterpret_cast<const char*>(text), sqlite3_column_bytes(stmt, column));
}

// A damaged file is DataLoss; a busy, locked, unopenable, full, read-only or failing file is
// Unavailable (a retry or an operator may fix it); anything else Internal.
inline absl::StatusCode CodeForSqlite(int rc) {
  switch (rc & 0xff) {
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return absl::StatusCode::kDataLoss;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
    case SQLITE_CANTOPEN:
    case SQLITE_IOERR:
    case SQLITE_FULL:
    case SQLITE_READONLY:
    case SQLITE_PERM:
      return absl::StatusCode::kUnavailable;
    default:
      return absl::StatusCode::kInternal;
  }
}

// Opens (creating when missing) the database at `path` for a store of record: a busy timeout of
// `busy_timeout_ms`, the WAL journal and synchronous=FULL, so a committed transaction is durable.
// Errors name the path and the step (FailedPrecondition when the WAL journal is refused).
absl::StatusOr<Database> OpenDurableDatabase(const std::string& path, int busy_timeout_ms);

}  // namespace hier::index
