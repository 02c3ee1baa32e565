#include "index/postgres_item_store.h"

#include <algorithm>
#include <condition_variable>
#include <limits>
#include <mutex>
#include <pqxx/pqxx>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"

namespace hier::index {
namespace {

// Vectors are stored as little-endian IEEE-754 float32 bytes, the host's layout.
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "item vectors are stored little-endian");
static_assert(std::numeric_limits<float>::is_iec559 && sizeof(float) == 4,
              "item vectors are stored as IEEE-754 float32");

// pg_advisory_xact_lock key held while the schema is checked or created ("hierserv" in ASCII).
constexpr int64_t kSchemaLockKey = 0x6869657273657276;
// Changes read per page in ForEachChangeAfter; `visit` runs between pages without a connection.
constexpr int64_t kChangesPerPage = 256;
// Rows per INSERT/UPDATE statement, and the most vector bytes one statement carries.
constexpr size_t kRowsPerStatement = 1000;
constexpr size_t kVectorBytesPerStatement = size_t{16} << 20;

// The schema's migrations: kMigrations[v - 1] turns version v - 1 into version v (0: an empty
// schema). A new store runs them all; an older one the ones it lacks, in the transaction that
// opens it.
constexpr const char* kMigrations[] = {
    R"sql(
CREATE TABLE hier_meta (key text PRIMARY KEY, value text NOT NULL);
CREATE TABLE hier_change_counter (
  only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
  seq bigint NOT NULL CHECK (seq >= 0));
INSERT INTO hier_change_counter (seq) VALUES (0);
CREATE TABLE hier_items (
  id bigint PRIMARY KEY,
  seq bigint NOT NULL UNIQUE,
  deleted boolean NOT NULL,
  key text NOT NULL,
  label text NOT NULL,
  attributes text NOT NULL,
  model_version text NOT NULL,
  vector bytea NOT NULL,
  image_sha256 text NOT NULL);
CREATE TABLE hier_settings (key text PRIMARY KEY, value text NOT NULL);
)sql",
    R"sql(
CREATE TABLE hier_images (
  sha256 text PRIMARY KEY,
  bytes bytea NOT NULL,
  stored_at timestamptz NOT NULL DEFAULT now());
)sql",
    R"sql(
CREATE TABLE hier_jobs (
  id text PRIMARY KEY,
  name text NOT NULL,
  state text NOT NULL,
  config text NOT NULL,
  run_dir text NOT NULL,
  error text NOT NULL,
  created_unix_ms bigint NOT NULL,
  finished_unix_ms bigint NOT NULL,
  deploy_on_success boolean NOT NULL,
  pid bigint NOT NULL,
  owner text NOT NULL,
  lease_until timestamptz,
  resume boolean NOT NULL,
  cancel_requested boolean NOT NULL);
CREATE INDEX hier_jobs_by_creation ON hier_jobs (created_unix_ms);
)sql",
    R"sql(
CREATE TABLE hier_members (
  name text PRIMARY KEY,
  address text NOT NULL,
  shard_index integer NOT NULL,
  shard_count integer NOT NULL,
  model_version text NOT NULL,
  previous_version text NOT NULL,
  serving boolean NOT NULL,
  items bigint NOT NULL,
  heartbeat_at timestamptz NOT NULL);
)sql",
};
static_assert(std::size(kMigrations) == PostgresItemStore::kSchemaVersion,
              "one migration per schema version");

constexpr const char* kOurTables[] = {"hier_meta", "hier_change_counter", "hier_items",
                                      "hier_settings", "hier_images", "hier_jobs",
                                      "hier_members"};

// Prepared on every connection (libpqxx prepares each on its first use there).
constexpr PreparedStatement kStatements[] = {
    {"take_seqs",
     "UPDATE hier_change_counter SET seq = seq + $1::bigint RETURNING seq - $1::bigint"},
    {"upsert",
     "INSERT INTO hier_items (id, seq, deleted, key, label, attributes, model_version, vector, "
     "image_sha256) "
     "SELECT u.id, u.seq, false, u.key, u.label, u.attributes, u.model_version, "
     "substring($7::bytea FROM (u.n::int - 1) * $8::int + 1 FOR $8::int), u.image_sha256 "
     "FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[], "
     "$9::text[]) WITH ORDINALITY AS u(id, seq, key, label, attributes, model_version, "
     "image_sha256, n) "
     "ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, deleted = false, key = excluded.key, "
     "label = excluded.label, attributes = excluded.attributes, "
     "model_version = excluded.model_version, vector = excluded.vector, "
     "image_sha256 = excluded.image_sha256"},
    {"tombstone",
     "UPDATE hier_items AS i SET seq = u.seq, deleted = true, key = '', label = '', "
     "attributes = '', model_version = '', vector = ''::bytea, image_sha256 = '' "
     "FROM unnest($1::bigint[], $2::bigint[]) AS u(id, seq) "
     "WHERE i.id = u.id AND NOT i.deleted RETURNING i.id"},
    {"get",
     "SELECT key, label, attributes, model_version, vector, image_sha256 FROM hier_items "
     "WHERE id = $1::bigint AND NOT deleted"},
    {"changes",
     "SELECT id, seq, deleted, key, label, attributes, model_version, vector, image_sha256 "
     "FROM hier_items WHERE seq > $1::bigint ORDER BY seq LIMIT $2::bigint"},
    {"purge", "DELETE FROM hier_items WHERE deleted AND seq <= $1::bigint"},
    {"get_setting", "SELECT value FROM hier_settings WHERE key = $1::text"},
    {"set_setting",
     "INSERT INTO hier_settings (key, value) VALUES ($1::text, $2::text) "
     "ON CONFLICT (key) DO UPDATE SET value = excluded.value"},
    {"count", "SELECT count(*) FROM hier_items WHERE NOT deleted"},
    {"latest_seq", "SELECT seq FROM hier_change_counter"},
    {"notify", "SELECT pg_notify('hier_changes', $1::text)"},
    {"is_sealed", "SELECT 1 FROM hier_settings WHERE key = 'sealed'"},
    {"seal",
     "INSERT INTO hier_settings (key, value) VALUES ('sealed', 'true') ON CONFLICT DO NOTHING"},
    {"unseal", "DELETE FROM hier_settings WHERE key = 'sealed'"},
    {"hold_counter", "UPDATE hier_change_counter SET seq = seq RETURNING seq"},
    {"digests",
     "SELECT DISTINCT image_sha256 FROM hier_items WHERE NOT deleted AND image_sha256 <> ''"},
};

std::string IntArray(const std::vector<int64_t>& values) {
  return absl::StrCat("{", absl::StrJoin(values, ","), "}");
}

// InvalidArgument when a setting's key or value holds a NUL byte (PostgreSQL text cannot).
absl::Status CheckSettingText(const std::string& key, const std::string& value) {
  if (key.find('\0') == std::string::npos && value.find('\0') == std::string::npos) {
    return absl::OkStatus();
  }
  return absl::InvalidArgumentError("setting: holds a NUL byte, which the store cannot keep");
}

// InvalidArgument naming the first text field that holds a NUL byte (PostgreSQL text cannot).
absl::Status CheckText(absl::Span<const ItemRecord> items) {
  for (size_t i = 0; i < items.size(); ++i) {
    const std::pair<const char*, const std::string*> fields[] = {
        {"key", &items[i].key},
        {"label", &items[i].label},
        {"attributes", &items[i].attributes},
        {"model_version", &items[i].model_version},
        {"image_sha256", &items[i].image_sha256},
    };
    for (const auto& [name, value] : fields) {
      if (value->find('\0') != std::string::npos) {
        return absl::InvalidArgumentError(absl::StrCat(
            "items[", i, "].", name, ": holds a NUL byte, which the store cannot keep"));
      }
    }
  }
  return absl::OkStatus();
}

// Reads key, label, attributes, model_version, vector and image_sha256 from columns
// first..first+5 of `row`.
absl::Status ReadFields(const pqxx::row& row, int first, int64_t dim, const std::string& where,
                        ItemRecord* item) {
  item->key = row[first].as<std::string>();
  item->label = row[first + 1].as<std::string>();
  item->attributes = row[first + 2].as<std::string>();
  item->model_version = row[first + 3].as<std::string>();
  item->image_sha256 = row[first + 5].as<std::string>();
  const pqxx::binarystring vector(row[first + 4]);
  return DecodeStoredVector(absl::string_view(vector.get(), vector.size()), dim, where, item);
}

// Takes `n` sequence numbers from the counter row (see the header comment); returns the last
// number handed out before them. Aborted when the store is sealed: checked after the counter's
// row lock is held, so no write commits after Seal() returned.
absl::StatusOr<int64_t> TakeSeqs(pqxx::work& tx, int64_t n, const std::string& where) {
  const pqxx::result taken = tx.exec_prepared("take_seqs", n);
  if (taken.size() != 1) {
    return absl::DataLossError(
        absl::StrCat(where, ": hier_change_counter has ", taken.size(), " rows, expected 1"));
  }
  if (!tx.exec_prepared("is_sealed").empty()) {
    return absl::AbortedError(
        "store: the serving model changed and these items' gallery was replaced; send the write "
        "again (once this server serves the new model)");
  }
  return taken[0][0].as<int64_t>();
}

// The tables, views and sequences of the connection's current schema.
std::unordered_set<std::string> TablesOf(pqxx::work& tx) {
  std::unordered_set<std::string> tables;
  for (const pqxx::row& row : tx.exec(
           "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
           "WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')")) {
    tables.insert(row[0].as<std::string>());
  }
  return tables;
}

// Creates the schema in an empty database, or checks an existing store and migrates an older
// schema; returns the counter.
absl::StatusOr<int64_t> Initialize(pqxx::connection& connection, int64_t dim,
                                   const std::string& create_schema, const std::string& where) {
  pqxx::work tx(connection);
  tx.exec_params("SELECT pg_advisory_xact_lock($1::bigint)", kSchemaLockKey);
  if (!create_schema.empty()) {
    tx.exec(absl::StrCat("CREATE SCHEMA IF NOT EXISTS ", tx.quote_name(create_schema)));
  }
  const pqxx::row schema = tx.exec1("SELECT current_schema()");
  if (schema[0].is_null()) {
    return absl::FailedPreconditionError(absl::StrCat(
        where, ": no schema to create the item store in (the search_path names none that exists)"));
  }
  const std::string schema_name = schema[0].as<std::string>();
  std::unordered_set<std::string> tables = TablesOf(tx);
  if (tables.count("hier_meta") == 0) {
    if (!tables.empty()) {
      std::vector<std::string> names(tables.begin(), tables.end());
      std::sort(names.begin(), names.end());
      if (names.size() > 5) names.resize(5);
      return absl::FailedPreconditionError(absl::StrCat(
          where, ": schema \"", schema_name, "\" holds tables of another application (",
          absl::StrJoin(names, ", "), tables.size() > 5 ? ", ..." : "",
          ") and no hier_meta table; refusing to create the item store beside them (use an "
          "empty database or schema)"));
    }
    for (const char* migration : kMigrations) tx.exec(migration);
    tx.exec_params(
        "INSERT INTO hier_meta (key, value) VALUES ('application', $1::text), "
        "('schema_version', $2::text), ('dim', $3::text)",
        std::string(kPostgresApplication), absl::StrCat(PostgresItemStore::kSchemaVersion),
        absl::StrCat(dim));
    tx.commit();
    return 0;
  }

  std::unordered_map<std::string, std::string> meta;
  for (const pqxx::row& row : tx.exec("SELECT key, value FROM hier_meta")) {
    meta[row[0].as<std::string>()] = row[1].as<std::string>();
  }
  if (meta["application"] != kPostgresApplication) {
    return absl::FailedPreconditionError(
        absl::StrCat(where, ": hier_meta says the database belongs to application \"",
                     meta["application"], "\", not ", kPostgresApplication));
  }
  int64_t version = 0;
  if (!absl::SimpleAtoi(meta["schema_version"], &version) || version < 1) {
    return absl::DataLossError(
        absl::StrCat(where, ": hier_meta has schema_version \"", meta["schema_version"], "\""));
  }
  if (version > PostgresItemStore::kSchemaVersion) {
    return absl::FailedPreconditionError(
        absl::StrCat(where, ": schema version ", version, " is newer than this binary's ",
                     PostgresItemStore::kSchemaVersion, " (upgrade the binary)"));
  }
  if (version < PostgresItemStore::kSchemaVersion) {
    for (int64_t next = version + 1; next <= PostgresItemStore::kSchemaVersion; ++next) {
      tx.exec(kMigrations[next - 1]);
    }
    tx.exec_params("UPDATE hier_meta SET value = $1::text WHERE key = 'schema_version'",
                   absl::StrCat(PostgresItemStore::kSchemaVersion));
    tables = TablesOf(tx);
  }
  for (const char* table : kOurTables) {
    if (tables.count(table) == 0) {
      return absl::DataLossError(
          absl::StrCat(where, ": hier_meta is present but table ", table, " is missing"));
    }
  }
  int64_t stored_dim = 0;
  if (!absl::SimpleAtoi(meta["dim"], &stored_dim)) {
    return absl::DataLossError(absl::StrCat(where, ": hier_meta has dim \"", meta["dim"], "\""));
  }
  if (stored_dim != dim) {
    return absl::FailedPreconditionError(
        absl::StrCat(where, ": the store holds dim ", stored_dim, ", opened with dim ", dim));
  }
  const pqxx::result counter = tx.exec("SELECT seq FROM hier_change_counter");
  if (counter.size() != 1) {
    return absl::DataLossError(
        absl::StrCat(where, ": hier_change_counter has ", counter.size(), " rows, expected 1"));
  }
  const int64_t last_seq = counter[0][0].as<int64_t>();
  tx.commit();
  return last_seq;
}

}  // namespace

absl::StatusOr<std::unique_ptr<PostgresItemStore>> PostgresItemStore::Open(
    const PostgresStoreOptions& options, int64_t dim) {
  if (absl::Status valid = CheckDim(dim); !valid.ok()) return valid;
  absl::StatusOr<std::unique_ptr<PostgresPool>> pool = PostgresPool::Create(options, kStatements);
  if (!pool.ok()) return pool.status();
  const std::string where = (*pool)->display_uri();
  absl::StatusOr<int64_t> last_seq = (*pool)->Run<int64_t>(
      "opening the item store",
      [&](pqxx::connection& connection) {
        return Initialize(connection, dim, options.schema, where);
      });
  if (!last_seq.ok()) return last_seq.status();
  return std::unique_ptr<PostgresItemStore>(
      new PostgresItemStore(dim, *std::move(pool), *last_seq));
}

PostgresItemStore::PostgresItemStore(int64_t dim, std::unique_ptr<PostgresPool> pool, int64_t last_seq)
    : dim_(dim), pool_(std::move(pool)), last_seq_(last_seq) {}

PostgresItemStore::~PostgresItemStore() = default;

const std::string& PostgresItemStore::display_uri() const { return pool_->display_uri(); }

void PostgresItemStore::NoteSeq(int64_t seq) const {
  WriterLock lock(&seq_mutex_);
  last_seq_ = std::max(last_seq_, seq);
}

int64_t PostgresItemStore::last_seq() const {
  ReaderLock lock(&seq_mutex_);
  return last_seq_;
}

absl::StatusOr<int64_t> PostgresItemStore::Upsert(absl::Span<const ItemRecord> items) {
  if (absl::Status valid = CheckVectors(items, dim_); !valid.ok()) return valid;
  if (absl::Status valid = CheckText(items); !valid.ok()) return valid;
  if (items.empty()) return last_seq();
  // Each item takes the next number, as in SqliteItemStore; an id given twice keeps its last
  // record (and number), since one statement cannot update a row twice.
  std::unordered_map<int64_t, size_t> last_index;
  for (size_t i = 0; i < items.size(); ++i) last_index[items[i].id] = i;
  std::vector<size_t> kept;
  kept.reserve(last_index.size());
  for (size_t i = 0; i < items.size(); ++i) {
    if (last_index[items[i].id] == i) kept.push_back(i);
  }
  const size_t vector_bytes = static_cast<size_t>(dim_) * sizeof(float);
  const size_t rows_per_statement =
      std::max<size_t>(1, std::min(kRowsPerStatement, kVectorBytesPerStatement / vector_bytes));
  const std::string& where = pool_->display_uri();
  absl::StatusOr<int64_t> last = pool_->Run<int64_t>(
      "writing items", [&](pqxx::connection& connection) -> absl::StatusOr<int64_t> {
        pqxx::work tx(connection);
        absl::StatusOr<int64_t> base = TakeSeqs(tx, static_cast<int64_t>(items.size()), where);
        if (!base.ok()) return base.status();
        for (size_t begin = 0; begin < kept.size(); begin += rows_per_statement) {
          const size_t end = std::min(kept.size(), begin + rows_per_statement);
          std::vector<int64_t> ids, seqs;
          std::vector<const std::string*> keys, labels, attributes, model_versions, digests;
          std::string vectors;
          vectors.reserve((end - begin) * vector_bytes);
          for (size_t k = begin; k < end; ++k) {
            const ItemRecord& item = items[kept[k]];
            ids.push_back(item.id);
            seqs.push_back(*base + static_cast<int64_t>(kept[k]) + 1);
            keys.push_back(&item.key);
            labels.push_back(&item.label);
            attributes.push_back(&item.attributes);
            model_versions.push_back(&item.model_version);
            digests.push_back(&item.image_sha256);
            vectors.append(reinterpret_cast<const char*>(item.vector.data()), vector_bytes);
          }
          tx.exec_prepared("upsert", IntArray(ids), IntArray(seqs), TextArrayLiteral(keys),
                           TextArrayLiteral(labels), TextArrayLiteral(attributes), TextArrayLiteral(model_versions),
                           pqxx::binarystring(vectors.data(), vectors.size()),
                           static_cast<int64_t>(vector_bytes), TextArrayLiteral(digests));
        }
        // Delivered to the followers at COMMIT, never for a rolled-back transaction.
        tx.exec_prepared("notify", absl::StrCat(*base + static_cast<int64_t>(items.size())));
        tx.commit();
        return *base + static_cast<int64_t>(items.size());
      });
  if (last.ok()) NoteSeq(*last);
  return last;
}

absl::StatusOr<int64_t> PostgresItemStore::Delete(absl::Span<const int64_t> ids) {
  if (ids.empty()) return last_seq();
  std::vector<int64_t> unique;
  {
    std::unordered_set<int64_t> seen;
    for (const int64_t id : ids) {
      if (seen.insert(id).second) unique.push_back(id);
    }
  }
  const std::string& where = pool_->display_uri();
  absl::StatusOr<int64_t> last = pool_->Run<int64_t>(
      "deleting items", [&](pqxx::connection& connection) -> absl::StatusOr<int64_t> {
        pqxx::work tx(connection);
        absl::StatusOr<int64_t> base = TakeSeqs(tx, static_cast<int64_t>(unique.size()), where);
        if (!base.ok()) return base.status();
        std::unordered_set<int64_t> deleted;
        for (size_t begin = 0; begin < unique.size(); begin += kRowsPerStatement) {
          const size_t end = std::min(unique.size(), begin + kRowsPerStatement);
          std::vector<int64_t> chunk(unique.begin() + begin, unique.begin() + end);
          std::vector<int64_t> seqs;
          for (size_t k = begin; k < end; ++k) seqs.push_back(*base + static_cast<int64_t>(k) + 1);
          for (const pqxx::row& row :
               tx.exec_prepared("tombstone", IntArray(chunk), IntArray(seqs))) {
            deleted.insert(row[0].as<int64_t>());
          }
        }
        for (const int64_t id : unique) {
          // Returning without commit rolls back: nothing deleted, no number used.
          if (deleted.count(id) == 0) {
            return absl::NotFoundError(absl::StrCat("ids: no item has id ", id));
          }
        }
        tx.exec_prepared("notify", absl::StrCat(*base + static_cast<int64_t>(unique.size())));
        tx.commit();
        return *base + static_cast<int64_t>(unique.size());
      });
  if (last.ok()) NoteSeq(*last);
  return last;
}

absl::StatusOr<ItemRecord> PostgresItemStore::Get(int64_t id) const {
  const std::string& where = pool_->display_uri();
  return pool_->Run<ItemRecord>(
      "reading an item", [&](pqxx::connection& connection) -> absl::StatusOr<ItemRecord> {
        pqxx::nontransaction tx(connection);
        const pqxx::result found = tx.exec_prepared("get", id);
        if (found.empty()) return absl::NotFoundError(absl::StrCat("id: no item has id ", id));
        ItemRecord item;
        item.id = id;
        if (absl::Status read = ReadFields(found[0], 0, dim_, where, &item); !read.ok()) {
          return read;
        }
        return item;
      });
}

absl::Status PostgresItemStore::ForEachChangeAfter(
    int64_t after_seq, const std::function<absl::Status(const ItemChange&)>& visit) const {
  const std::string& where = pool_->display_uri();
  return WalkChanges(
      after_seq, kChangesPerPage,
      [&](int64_t cursor, int64_t limit) {
        return pool_->Run<std::vector<ItemChange>>(
            "reading changes",
            [&](pqxx::connection& connection) -> absl::StatusOr<std::vector<ItemChange>> {
              pqxx::nontransaction tx(connection);
              std::vector<ItemChange> changes;
              for (const pqxx::row& row : tx.exec_prepared("changes", cursor, limit)) {
                ItemChange& change = changes.emplace_back();
                change.item.id = row[0].as<int64_t>();
                change.seq = row[1].as<int64_t>();
                change.deleted = row[2].as<bool>();
                if (change.deleted) continue;
                if (absl::Status read = ReadFields(row, 3, dim_, where, &change.item); !read.ok()) {
                  return read;
                }
              }
              return changes;
            });
      },
      visit);
}

absl::Status PostgresItemStore::PurgeDeletionsUpTo(int64_t seq) {
  return pool_
      ->Run<bool>("purging deletions",
                  [&](pqxx::connection& connection) -> absl::StatusOr<bool> {
                    pqxx::nontransaction tx(connection);
                    tx.exec_prepared("purge", seq);
                    return true;
                  })
      .status();
}

absl::Status PostgresItemStore::SetSetting(const std::string& key, const std::string& value) {
  if (absl::Status valid = CheckSettingText(key, value); !valid.ok()) return valid;
  return pool_
      ->Run<bool>("writing a setting",
                  [&](pqxx::connection& connection) -> absl::StatusOr<bool> {
                    pqxx::nontransaction tx(connection);
                    tx.exec_prepared("set_setting", key, value);
                    return true;
                  })
      .status();
}

absl::StatusOr<std::optional<std::string>> PostgresItemStore::GetSetting(
    const std::string& key) const {
  return pool_->Run<std::optional<std::string>>(
      "reading a setting",
      [&](pqxx::connection& connection) -> absl::StatusOr<std::optional<std::string>> {
        pqxx::nontransaction tx(connection);
        const pqxx::result found = tx.exec_prepared("get_setting", key);
        if (found.empty()) return std::nullopt;
        return found[0][0].as<std::string>();
      });
}

absl::StatusOr<int64_t> PostgresItemStore::Seal(bool sealed) {
  const std::string& where = pool_->display_uri();
  absl::StatusOr<int64_t> last = pool_->Run<int64_t>(
      sealed ? "sealing the store" : "unsealing the store",
      [&](pqxx::connection& connection) -> absl::StatusOr<int64_t> {
        pqxx::work tx(connection);
        // The counter's row lock waits for the writes in progress and holds back new ones
        // until the seal is committed; they then find it (TakeSeqs).
        const pqxx::result counter = tx.exec_prepared("hold_counter");
        if (counter.size() != 1) {
          return absl::DataLossError(absl::StrCat(where, ": hier_change_counter has ",
                                                  counter.size(), " rows, expected 1"));
        }
        tx.exec_prepared(sealed ? "seal" : "unseal");
        tx.commit();
        return counter[0][0].as<int64_t>();
      });
  if (last.ok()) NoteSeq(*last);
  return last;
}

absl::StatusOr<int64_t> PostgresItemStore::LatestSeq() const {
  const std::string& where = pool_->display_uri();
  absl::StatusOr<int64_t> latest = pool_->Run<int64_t>(
      "reading the change counter", [&](pqxx::connection& connection) -> absl::StatusOr<int64_t> {
        pqxx::nontransaction tx(connection);
        const pqxx::result counter = tx.exec_prepared("latest_seq");
        if (counter.size() != 1) {
          return absl::DataLossError(absl::StrCat(where, ": hier_change_counter has ",
                                                  counter.size(), " rows, expected 1"));
        }
        return counter[0][0].as<int64_t>();
      });
  if (latest.ok()) NoteSeq(*latest);
  return latest;
}

// Owns a connection of its own that LISTENs on kChangeChannel; the receiver only raises a flag
// that Wait reads (both run on the caller's thread, inside await_notification).
class PostgresItemStore::Listener final : public ChangeListener {
 public:
  static absl::StatusOr<std::unique_ptr<ChangeListener>> Create(const PostgresPool& pool) {
    absl::StatusOr<std::unique_ptr<pqxx::connection>> connection = pool.Connect();
    if (!connection.ok()) return connection.status();
    std::unique_ptr<Listener> listener(new Listener(pool, *std::move(connection)));
    try {
      // Registering the first receiver of a channel runs LISTEN on the connection.
      listener->receiver_ =
          std::make_unique<Receiver>(*listener->connection_, &listener->notified_);
    } catch (const std::exception& e) {
      return pool.Error(absl::StatusCode::kUnavailable, "listening for changes", e.what());
    }
    return std::unique_ptr<ChangeListener>(std::move(listener));
  }

  absl::StatusOr<bool> Wait(std::chrono::milliseconds timeout) override {
    if (broken_) {
      return pool_.Error(absl::StatusCode::kUnavailable, "listening for changes",
                         "the connection broke");
    }
    try {
      const int64_t micros = std::max<int64_t>(0, timeout.count()) * 1000;
      connection_->await_notification(static_cast<long>(micros / 1000000),
                                      static_cast<long>(micros % 1000000));
      if (!connection_->is_open()) throw pqxx::broken_connection("connection closed");
    } catch (const std::exception& e) {
      broken_ = true;
      return pool_.Error(absl::StatusCode::kUnavailable, "listening for changes", e.what());
    }
    const bool notified = notified_;
    notified_ = false;
    return notified;
  }

 private:
  class Receiver final : public pqxx::notification_receiver {
   public:
    Receiver(pqxx::connection_base& connection, bool* notified)
        : pqxx::notification_receiver(connection, kChangeChannel), notified_(notified) {}
    void operator()(const std::string&, int) override { *notified_ = true; }

   private:
    bool* const notified_;
  };

  Listener(const PostgresPool& pool, std::unique_ptr<pqxx::connection> connection)
      : pool_(pool), connection_(std::move(connection)) {}

  const PostgresPool& pool_;
  const std::unique_ptr<pqxx::connection> connection_;
  // Declared after the connection: unregistered before it closes.
  std::unique_ptr<Receiver> receiver_;
  bool notified_ = false;
  bool broken_ = false;
};

absl::StatusOr<std::unique_ptr<ChangeListener>> PostgresItemStore::Listen() const {
  return Listener::Create(*pool_);
}

absl::StatusOr<int64_t> PostgresItemStore::count() const {
  return pool_->Run<int64_t>("counting items",
                             [&](pqxx::connection& connection) -> absl::StatusOr<int64_t> {
                               pqxx::nontransaction tx(connection);
                               return tx.exec_prepared1("count")[0].as<int64_t>();
                             });
}

absl::StatusOr<absl::flat_hash_set<std::string>> PostgresItemStore::ImageDigests() const {
  using Digests = absl::flat_hash_set<std::string>;
  return pool_->Run<Digests>("listing image digests",
                             [&](pqxx::connection& connection) -> absl::StatusOr<Digests> {
                               pqxx::nontransaction tx(connection);
                               Digests digests;
                               for (const pqxx::row& row : tx.exec_prepared("digests")) {
                                 digests.insert(row[0].as<std::string>());
                               }
                               return digests;
                             });
}

}  // namespace hier::index
