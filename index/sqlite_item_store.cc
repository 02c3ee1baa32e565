#include "index/sqlite_item_store.h"

#include <sqlite3.h>

#include <limits>
#include <unordered_set>
#include <utility>

#include "absl/functional/function_ref.h"
#include "absl/strings/str_cat.h"
#include "index/sqlite_handles.h"

namespace hier::index {
namespace {

// Vectors are stored as the host's float bytes, which must be little-endian IEEE-754 float32 for
// a database file to mean the same on every machine.
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "item vectors are stored little-endian");
static_assert(std::numeric_limits<float>::is_iec559 && sizeof(float) == 4,
              "item vectors are stored as IEEE-754 float32");

constexpr int64_t kSchemaVersion = 2;
constexpr int kBusyTimeoutMs = 10000;
// Changes read per lock hold in ForEachChangeAfter; `visit` runs between pages without the lock.
constexpr int64_t kChangesPerPage = 256;

// meta holds schema_version, dim and last_seq (the counter every change takes its number from).
// A deleted item stays in items as a tombstone (deleted = 1, fields cleared) until purged.
// Version 2 added items.image_sha256 (the stored source image); a version 1 store is upgraded in
// place when opened.
constexpr char kSchema[] = R"sql(
CREATE TABLE meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE items (
  id INTEGER PRIMARY KEY,
  seq INTEGER NOT NULL,
  deleted INTEGER NOT NULL,
  key TEXT NOT NULL,
  label TEXT NOT NULL,
  attributes TEXT NOT NULL,
  model_version TEXT NOT NULL,
  vector BLOB NOT NULL,
  image_sha256 TEXT NOT NULL DEFAULT '');
CREATE UNIQUE INDEX items_by_seq ON items (seq);
CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
)sql";

// Resets a statement when one use of it ends, so a reused statement holds no read snapshot (which
// would keep the WAL from being checkpointed) between calls.
class ResetOnExit {
 public:
  explicit ResetOnExit(sqlite3_stmt* stmt) : stmt_(stmt) {}
  ~ResetOnExit() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }
  ResetOnExit(const ResetOnExit&) = delete;
  ResetOnExit& operator=(const ResetOnExit&) = delete;

 private:
  sqlite3_stmt* const stmt_;
};

// Parameters bind by position; the bound strings and vectors must outlive the statement's step.
int BindOne(sqlite3_stmt* stmt, int index, int64_t value) {
  return sqlite3_bind_int64(stmt, index, value);
}
int BindOne(sqlite3_stmt* stmt, int index, const std::string& value) {
  return sqlite3_bind_text64(stmt, index, value.data(), value.size(), SQLITE_STATIC, SQLITE_UTF8);
}
int BindOne(sqlite3_stmt* stmt, int index, const std::vector<float>& value) {
  return sqlite3_bind_blob64(stmt, index, value.data(), value.size() * sizeof(float),
                             SQLITE_STATIC);
}

}  // namespace

class SqliteItemStore::Connection {
 public:
  // Opens `path` with the WAL journal and synchronous=FULL; the schema is not touched yet.
  static absl::StatusOr<std::unique_ptr<Connection>> Open(const std::string& path) {
    absl::StatusOr<Database> db = OpenDurableDatabase(path, kBusyTimeoutMs);
    if (!db.ok()) return db.status();
    return std::unique_ptr<Connection>(new Connection(path, *std::move(db)));
  }

  // Creates the schema in an empty database, or checks an existing store's version and dim;
  // then prepares the statements. Returns the last sequence number handed out.
  absl::StatusOr<int64_t> Initialize(int64_t dim) {
    dim_ = dim;
    int64_t last_seq = 0;
    const absl::Status done = InTransaction([&]() -> absl::Status {
      absl::StatusOr<int64_t> objects = QueryInt("SELECT count(*) FROM sqlite_master");
      if (!objects.ok()) return objects.status();
      if (*objects == 0) {
        const absl::Status created =
            Exec(absl::StrCat(kSchema, "INSERT INTO meta (name, value) VALUES ('schema_version', ",
                              kSchemaVersion, "), ('dim', ", dim, "), ('last_seq', 0);")
                     .c_str(),
                 "creating the schema");
        if (!created.ok()) return created;
      } else {
        absl::StatusOr<int64_t> ours = QueryInt(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name IN ('meta', "
            "'items', 'settings')");
        if (!ours.ok()) return ours.status();
        if (*ours != 3) {
          return absl::FailedPreconditionError(
              absl::StrCat(path_, ": a SQLite database that is not an item store"));
        }
        if (absl::Status upgraded = UpgradeFromVersion1(); !upgraded.ok()) return upgraded;
      }
      if (absl::Status prepared = PrepareStatements(); !prepared.ok()) return prepared;
      absl::StatusOr<int64_t> version = ReadMeta("schema_version");
      if (!version.ok()) return version.status();
      if (*version != kSchemaVersion) {
        return absl::FailedPreconditionError(absl::StrCat(path_, ": item store schema version ",
                                                          *version, ", this build reads ",
                                                          kSchemaVersion));
      }
      absl::StatusOr<int64_t> stored_dim = ReadMeta("dim");
      if (!stored_dim.ok()) return stored_dim.status();
      if (*stored_dim != dim) {
        return absl::FailedPreconditionError(
            absl::StrCat(path_, ": the store holds dim ", *stored_dim, ", opened with dim ", dim));
      }
      absl::StatusOr<int64_t> stored_seq = ReadMeta("last_seq");
      if (!stored_seq.ok()) return stored_seq.status();
      last_seq = *stored_seq;
      return absl::OkStatus();
    });
    if (!done.ok()) return done;
    return last_seq;
  }

  // Writes each item with the next sequence number; returns the last one.
  absl::StatusOr<int64_t> Upsert(absl::Span<const ItemRecord> items) {
    return WriteChanges([&](int64_t seq) -> absl::StatusOr<int64_t> {
      for (const ItemRecord& item : items) {
        const absl::Status written =
            Execute(upsert_.get(), "writing an item", item.id, ++seq, item.key, item.label,
                    item.attributes, item.model_version, item.vector, item.image_sha256);
        if (!written.ok()) return written;
      }
      return seq;
    });
  }

  // Turns each live item into a tombstone with the next sequence number; returns the last one.
  absl::StatusOr<int64_t> Delete(absl::Span<const int64_t> ids) {
    return WriteChanges([&](int64_t seq) -> absl::StatusOr<int64_t> {
      std::unordered_set<int64_t> seen;
      for (int64_t id : ids) {
        if (!seen.insert(id).second) continue;
        const absl::Status written = Execute(tombstone_.get(), "deleting an item", id, ++seq);
        if (!written.ok()) return written;
        if (sqlite3_changes(db_.get()) == 0) {
          return absl::NotFoundError(absl::StrCat("ids: no item has id ", id));
        }
      }
      return seq;
    });
  }

  absl::StatusOr<ItemRecord> Get(int64_t id) {
    sqlite3_stmt* stmt = get_.get();
    ResetOnExit reset(stmt);
    absl::StatusOr<bool> row = Query(stmt, "reading an item", id);
    if (!row.ok()) return row.status();
    if (!*row) return absl::NotFoundError(absl::StrCat("id: no item has id ", id));
    ItemRecord item;
    item.id = id;
    if (absl::Status read = ReadFields(stmt, 0, &item); !read.ok()) return read;
    return item;
  }

  absl::StatusOr<std::vector<ItemChange>> ChangesAfter(int64_t after_seq, int64_t limit) {
    sqlite3_stmt* stmt = changes_.get();
    ResetOnExit reset(stmt);
    std::vector<ItemChange> changes;
    for (absl::StatusOr<bool> row = Query(stmt, "reading changes", after_seq, limit);;
         row = StepRow(stmt, "reading changes")) {
      if (!row.ok()) return row.status();
      if (!*row) return changes;
      ItemChange& change = changes.emplace_back();
      change.item.id = sqlite3_column_int64(stmt, 0);
      change.seq = sqlite3_column_int64(stmt, 1);
      change.deleted = sqlite3_column_int64(stmt, 2) != 0;
      if (!change.deleted) {
        if (absl::Status read = ReadFields(stmt, 3, &change.item); !read.ok()) return read;
      }
    }
  }

  absl::Status PurgeDeletionsUpTo(int64_t seq) {
    return Execute(purge_.get(), "purging deletions", seq);
  }

  absl::Status SetSetting(const std::string& key, const std::string& value) {
    return Execute(set_setting_.get(), "writing a setting", key, value);
  }

  absl::StatusOr<std::optional<std::string>> GetSetting(const std::string& key) {
    sqlite3_stmt* stmt = get_setting_.get();
    ResetOnExit reset(stmt);
    absl::StatusOr<bool> row = Query(stmt, "reading a setting", key);
    if (!row.ok()) return row.status();
    if (!*row) return std::nullopt;
    return ColumnString(stmt, 0);
  }

  absl::StatusOr<int64_t> CountLive() {
    return QueryInt("SELECT count(*) FROM items WHERE deleted = 0");
  }

  absl::StatusOr<absl::flat_hash_set<std::string>> ImageDigests() {
    constexpr char kDoing[] = "listing image digests";
    absl::StatusOr<Statement> stmt =
        Prepare("SELECT image_sha256 FROM items WHERE deleted = 0 AND image_sha256 != ''", kDoing);
    if (!stmt.ok()) return stmt.status();
    absl::flat_hash_set<std::string> digests;
    for (;;) {
      absl::StatusOr<bool> row = StepRow(stmt->get(), kDoing);
      if (!row.ok()) return row.status();
      if (!*row) return digests;
      digests.insert(ColumnString(stmt->get(), 0));
    }
  }

 private:
  Connection(std::string path, Database db) : path_(std::move(path)), db_(std::move(db)) {}

  // A SQLite failure `rc` while `doing` something, as a status naming the path.
  absl::Status Error(int rc, const char* doing) const {
    return absl::Status(
        CodeForSqlite(rc), absl::StrCat(path_, ": ", doing, ": ",
                                  db_ != nullptr ? sqlite3_errmsg(db_.get()) : sqlite3_errstr(rc)));
  }

  // Adds items.image_sha256 to a version 1 store (inside the opening transaction).
  absl::Status UpgradeFromVersion1() {
    absl::StatusOr<int64_t> version =
        QueryInt("SELECT value FROM meta WHERE name = 'schema_version'");
    if (!version.ok() || *version != 1) return version.status();
    return Exec(
        "ALTER TABLE items ADD COLUMN image_sha256 TEXT NOT NULL DEFAULT ''; "
        "UPDATE meta SET value = 2 WHERE name = 'schema_version';",
        "upgrading the item store from schema version 1");
  }

  absl::Status Exec(const char* sql, const char* doing) {
    const int rc = sqlite3_exec(db_.get(), sql, nullptr, nullptr, nullptr);
    return rc == SQLITE_OK ? absl::OkStatus() : Error(rc, doing);
  }

  absl::StatusOr<Statement> Prepare(const char* sql, const char* doing) {
    sqlite3_stmt* stmt = nullptr;
    const int rc =
        sqlite3_prepare_v3(db_.get(), sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt, nullptr);
    Statement statement(stmt);
    if (rc != SQLITE_OK) return Error(rc, doing);
    return statement;
  }

  absl::Status PrepareStatements() {
    const std::pair<Statement*, const char*> statements[] = {
        {&upsert_,
         "INSERT OR REPLACE INTO items (id, seq, deleted, key, label, attributes, model_version, "
         "vector, image_sha256) VALUES (?1, ?2, 0, ?3, ?4, ?5, ?6, ?7, ?8)"},
        {&tombstone_,
         "UPDATE items SET seq = ?2, deleted = 1, key = '', label = '', attributes = '', "
         "model_version = '', vector = x'', image_sha256 = '' WHERE id = ?1 AND deleted = 0"},
        {&get_,
         "SELECT key, label, attributes, model_version, vector, image_sha256 FROM items "
         "WHERE id = ?1 AND deleted = 0"},
        {&changes_,
         "SELECT id, seq, deleted, key, label, attributes, model_version, vector, image_sha256 "
         "FROM items WHERE seq > ?1 ORDER BY seq LIMIT ?2"},
        {&purge_, "DELETE FROM items WHERE deleted = 1 AND seq <= ?1"},
        {&read_meta_, "SELECT value FROM meta WHERE name = ?1"},
        {&write_meta_, "INSERT OR REPLACE INTO meta (name, value) VALUES (?1, ?2)"},
        {&get_setting_, "SELECT value FROM settings WHERE key = ?1"},
        {&set_setting_, "INSERT OR REPLACE INTO settings (key, value) VALUES (?1, ?2)"},
    };
    for (const auto& [statement, sql] : statements) {
      absl::StatusOr<Statement> prepared = Prepare(sql, "preparing a statement");
      if (!prepared.ok()) return prepared.status();
      *statement = *std::move(prepared);
    }
    return absl::OkStatus();
  }

  // Binds `args` to parameters 1, 2, ... of `stmt` and steps it once; true when it gave a row.
  // The caller resets the statement.
  template <typename... Args>
  absl::StatusOr<bool> Query(sqlite3_stmt* stmt, const char* doing, const Args&... args) {
    int index = 0;
    int rc = SQLITE_OK;
    ((rc = rc == SQLITE_OK ? BindOne(stmt, ++index, args) : rc), ...);
    if (rc != SQLITE_OK) return Error(rc, doing);
    return StepRow(stmt, doing);
  }

  // Runs a statement that returns no rows.
  template <typename... Args>
  absl::Status Execute(sqlite3_stmt* stmt, const char* doing, const Args&... args) {
    ResetOnExit reset(stmt);
    absl::StatusOr<bool> row = Query(stmt, doing, args...);
    return row.ok() ? absl::OkStatus() : row.status();
  }

  absl::StatusOr<bool> StepRow(sqlite3_stmt* stmt, const char* doing) {
    const int rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    return Error(rc, doing);
  }

  // The single integer a one-off query returns.
  absl::StatusOr<int64_t> QueryInt(const char* sql) {
    absl::StatusOr<Statement> stmt = Prepare(sql, "querying");
    if (!stmt.ok()) return stmt.status();
    absl::StatusOr<bool> row = StepRow(stmt->get(), "querying");
    if (!row.ok()) return row.status();
    if (!*row) return absl::InternalError(absl::StrCat(path_, ": no row from ", sql));
    return sqlite3_column_int64(stmt->get(), 0);
  }

  absl::StatusOr<int64_t> ReadMeta(const std::string& name) {
    sqlite3_stmt* stmt = read_meta_.get();
    ResetOnExit reset(stmt);
    absl::StatusOr<bool> row = Query(stmt, "reading meta", name);
    if (!row.ok()) return row.status();
    if (!*row) return absl::DataLossError(absl::StrCat(path_, ": meta has no ", name));
    return sqlite3_column_int64(stmt, 0);
  }

  // Runs `body` inside BEGIN IMMEDIATE ... COMMIT, rolling back when anything fails.
  absl::Status InTransaction(absl::FunctionRef<absl::Status()> body) {
    if (absl::Status begun = Exec("BEGIN IMMEDIATE", "beginning a transaction"); !begun.ok()) {
      return begun;
    }
    absl::Status done = body();
    if (done.ok()) done = Exec("COMMIT", "committing");
    // A failed COMMIT can leave the transaction open; the original error is the one to report.
    if (sqlite3_get_autocommit(db_.get()) == 0) {
      sqlite3_exec(db_.get(), "ROLLBACK", nullptr, nullptr, nullptr);
    }
    return done;
  }

  // Runs `change` (given the last sequence number handed out, it writes rows numbered after it
  // and returns the last number it used) in one transaction that also advances the counter.
  absl::StatusOr<int64_t> WriteChanges(
      absl::FunctionRef<absl::StatusOr<int64_t>(int64_t last_seq)> change) {
    int64_t last_seq = 0;
    const absl::Status done = InTransaction([&]() -> absl::Status {
      absl::StatusOr<int64_t> before = ReadMeta("last_seq");
      if (!before.ok()) return before.status();
      absl::StatusOr<int64_t> after = change(*before);
      if (!after.ok()) return after.status();
      last_seq = *after;
      return Execute(write_meta_.get(), "advancing the sequence number", std::string("last_seq"),
                     last_seq);
    });
    if (!done.ok()) return done;
    return last_seq;
  }

  // Reads key, label, attributes, model_version, vector and image_sha256 from columns
  // first..first+5.
  absl::Status ReadFields(sqlite3_stmt* stmt, int first, ItemRecord* item) const {
    item->key = ColumnString(stmt, first);
    item->label = ColumnString(stmt, first + 1);
    item->attributes = ColumnString(stmt, first + 2);
    item->model_version = ColumnString(stmt, first + 3);
    item->image_sha256 = ColumnString(stmt, first + 5);
    const auto* blob = static_cast<const char*>(sqlite3_column_blob(stmt, first + 4));
    const int bytes = sqlite3_column_bytes(stmt, first + 4);
    return DecodeStoredVector(absl::string_view(blob, bytes), dim_, path_, item);
  }

  const std::string path_;
  int64_t dim_ = 0;
  // Declared before the statements so they are finalized before the database closes.
  const Database db_;
  Statement upsert_;
  Statement tombstone_;
  Statement get_;
  Statement changes_;
  Statement purge_;
  Statement read_meta_;
  Statement write_meta_;
  Statement get_setting_;
  Statement set_setting_;
};

absl::StatusOr<std::unique_ptr<SqliteItemStore>> SqliteItemStore::Open(const std::string& path,
                                                                       int64_t dim) {
  if (absl::Status valid = CheckDim(dim); !valid.ok()) return valid;
  absl::StatusOr<std::unique_ptr<Connection>> connection = Connection::Open(path);
  if (!connection.ok()) return connection.status();
  absl::StatusOr<int64_t> last_seq = (*connection)->Initialize(dim);
  if (!last_seq.ok()) return last_seq.status();
  return std::unique_ptr<SqliteItemStore>(
      new SqliteItemStore(dim, *std::move(connection), *last_seq));
}

SqliteItemStore::SqliteItemStore(int64_t dim, std::unique_ptr<Connection> connection,
                                 int64_t last_seq)
    : dim_(dim), connection_(std::move(connection)), last_seq_(last_seq) {}

SqliteItemStore::~SqliteItemStore() = default;

absl::StatusOr<int64_t> SqliteItemStore::Upsert(absl::Span<const ItemRecord> items) {
  if (absl::Status valid = CheckVectors(items, dim_); !valid.ok()) return valid;
  WriterLock lock(&mutex_);
  if (items.empty()) return last_seq_;
  absl::StatusOr<int64_t> last_seq = connection_->Upsert(items);
  if (last_seq.ok()) last_seq_ = *last_seq;
  return last_seq;
}

absl::StatusOr<int64_t> SqliteItemStore::Delete(absl::Span<const int64_t> ids) {
  WriterLock lock(&mutex_);
  if (ids.empty()) return last_seq_;
  absl::StatusOr<int64_t> last_seq = connection_->Delete(ids);
  if (last_seq.ok()) last_seq_ = *last_seq;
  return last_seq;
}

absl::StatusOr<ItemRecord> SqliteItemStore::Get(int64_t id) const {
  WriterLock lock(&mutex_);
  return connection_->Get(id);
}

absl::Status SqliteItemStore::ForEachChangeAfter(
    int64_t after_seq, const std::function<absl::Status(const ItemChange&)>& visit) const {
  return WalkChanges(
      after_seq, kChangesPerPage,
      [&](int64_t cursor, int64_t limit) {
        WriterLock lock(&mutex_);
        return connection_->ChangesAfter(cursor, limit);
      },
      visit);
}

absl::Status SqliteItemStore::PurgeDeletionsUpTo(int64_t seq) {
  WriterLock lock(&mutex_);
  return connection_->PurgeDeletionsUpTo(seq);
}

absl::Status SqliteItemStore::SetSetting(const std::string& key, const std::string& value) {
  WriterLock lock(&mutex_);
  return connection_->SetSetting(key, value);
}

absl::StatusOr<std::optional<std::string>> SqliteItemStore::GetSetting(
    const std::string& key) const {
  WriterLock lock(&mutex_);
  return connection_->GetSetting(key);
}

int64_t SqliteItemStore::last_seq() const {
  WriterLock lock(&mutex_);
  return last_seq_;
}

absl::StatusOr<int64_t> SqliteItemStore::count() const {
  WriterLock lock(&mutex_);
  return connection_->CountLive();
}

absl::StatusOr<absl::flat_hash_set<std::string>> SqliteItemStore::ImageDigests() const {
  WriterLock lock(&mutex_);
  return connection_->ImageDigests();
}

}  // namespace hier::index
