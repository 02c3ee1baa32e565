#include "index/postgres_pool.h"

#include <libpq-fe.h>

#include <algorithm>
#include <initializer_list>

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

// Percent-encodes everything but RFC 3986's unreserved characters.
std::string PercentEncode(absl::string_view text) {
  std::string out;
  for (const char c : text) {
    if (absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '_' ||
        c == '~') {
      out += c;
    } else {
      absl::StrAppend(&out, "%", absl::Hex(static_cast<unsigned char>(c), absl::kZeroPad2));
    }
  }
  return out;
}

std::string PercentDecode(absl::string_view text) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    int value = 0;
    if (text[i] == '%' && i + 2 < text.size() &&
        absl::SimpleHexAtoi(text.substr(i + 1, 2), &value)) {
      out += static_cast<char>(value);
      i += 2;
    } else {
      out += text[i];
    }
  }
  return out;
}

// The parts of a postgresql:// URI that hold a password: the userinfo's and a password= parameter.
struct UriPasswords {
  std::string display;                 // the URI with each replaced by "***"
  std::vector<std::string> passwords;  // as written and percent-decoded
};

UriPasswords FindPasswords(const std::string& uri) {
  UriPasswords found;
  found.display = uri;
  const size_t scheme_end = uri.find("://");
  if (scheme_end == std::string::npos) return found;
  const size_t authority = scheme_end + 3;
  const size_t authority_end = std::min(uri.find('/', authority), uri.find('?', authority));
  const size_t at = uri.rfind('@', authority_end == std::string::npos ? uri.size() : authority_end);
  std::string display = uri;
  if (at != std::string::npos && at >= authority) {
    const size_t colon = uri.find(':', authority);
    if (colon != std::string::npos && colon < at) {
      const std::string password = uri.substr(colon + 1, at - colon - 1);
      found.passwords.push_back(password);
      found.passwords.push_back(PercentDecode(password));
      display = absl::StrCat(uri.substr(0, colon + 1), "***", uri.substr(at));
    }
  }
  // password=... among the parameters.
  const size_t query = display.find('?');
  if (query != std::string::npos) {
    std::vector<std::string> params;
    for (absl::string_view param : absl::StrSplit(display.substr(query + 1), '&')) {
      if (absl::StartsWith(param, "password=")) {
        const std::string password(param.substr(9));
        found.passwords.push_back(password);
        found.passwords.push_back(PercentDecode(password));
        params.push_back("password=***");
      } else {
        params.emplace_back(param);
      }
    }
    display = absl::StrCat(display.substr(0, query + 1), absl::StrJoin(params, "&"));
  }
  found.display = display;
  return found;
}

bool HasParameter(const std::string& uri, absl::string_view name) {
  const size_t query = uri.find('?');
  if (query == std::string::npos) return false;
  for (absl::string_view param : absl::StrSplit(absl::string_view(uri).substr(query + 1), '&')) {
    if (absl::StartsWith(param, absl::StrCat(name, "="))) return true;
  }
  return false;
}

// The status code for a PostgreSQL SQLSTATE (see the header comment).
absl::StatusCode CodeForSqlState(const std::string& state) {
  const absl::string_view kind = absl::string_view(state).substr(0, 2);
  if (kind == "08" || kind == "53" || kind == "57" || kind == "58" || kind == "40" ||
      state == "55P03" || state == "55006" || state == "25006") {
    return absl::StatusCode::kUnavailable;
  }
  if (kind == "28" || kind == "3D" || state == "42501" || state == "42P01" || state == "42703") {
    return absl::StatusCode::kFailedPrecondition;
  }
  if (state == "XX001" || state == "XX002") return absl::StatusCode::kDataLoss;
  return absl::StatusCode::kInternal;
}

// The status code for a failure to connect, from libpq's message (it gives no SQLSTATE then).
absl::StatusCode CodeForConnectFailure(absl::string_view message) {
  for (const char* needle :
       {"password authentication failed", "no password supplied", "authentication failed",
        "does not exist", "pg_hba.conf", "permission denied", "SCRAM"}) {
    if (absl::StrContains(message, needle)) return absl::StatusCode::kFailedPrecondition;
  }
  return absl::StatusCode::kUnavailable;
}

}  // namespace

absl::StatusOr<std::unique_ptr<PostgresPool>> PostgresPool::Create(
    const PostgresStoreOptions& options, absl::Span<const PreparedStatement> statements) {
  if (options.max_connections < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_connections: must be at least 1, got ", options.max_connections));
  }
  UriPasswords found = FindPasswords(options.uri);
  std::vector<std::string> secrets = std::move(found.passwords);
  std::string conninfo = options.uri;
  auto add = [&](absl::string_view name, const std::string& value) {
    absl::StrAppend(&conninfo, conninfo.find('?') == std::string::npos ? "?" : "&", name, "=",
                    PercentEncode(value));
  };
  if (!options.password.empty()) {
    add("password", options.password);  // a later parameter overrides the userinfo's
    secrets.push_back(options.password);
    secrets.push_back(PercentEncode(options.password));
  }
  if (!HasParameter(options.uri, "connect_timeout")) {
    add("connect_timeout", absl::StrCat(options.connect_timeout_s));
  }
  // A server cut off by the network sends no reset: without these a call on an open connection
  // would wait for the kernel's retransmission timeout (about 15 minutes). Unacknowledged data
  // fails the connection after tcp_user_timeout, an idle one after the keepalive probes.
  const int timeout_ms = options.network_timeout_s * 1000;
  for (const auto& [name, value] :
       std::initializer_list<std::pair<const char*, std::string>>{
           {"keepalives", "1"},
           {"keepalives_idle", absl::StrCat(std::max(1, options.network_timeout_s / 2))},
           {"keepalives_interval", absl::StrCat(std::max(1, options.network_timeout_s / 6))},
           {"keepalives_count", "3"},
           {"tcp_user_timeout", absl::StrCat(timeout_ms)}}) {
    if (!HasParameter(options.uri, name)) add(name, value);
  }
  if (!HasParameter(options.uri, "application_name")) add("application_name", kPostgresApplication);
  if (!HasParameter(options.uri, "client_encoding")) add("client_encoding", "UTF8");
  std::vector<std::pair<std::string, std::string>> redactions = {{options.uri, found.display},
                                                                 {conninfo, found.display}};
  for (std::string& secret : secrets) redactions.emplace_back(std::move(secret), "***");
  std::unique_ptr<PostgresPool> pool(new PostgresPool(std::move(conninfo), found.display,
                                                      std::move(redactions),
                                                      options.max_connections,
                                                      std::vector<PreparedStatement>(statements.begin(), statements.end()),
                                                      options.schema));
  // Parse without connecting, so a malformed URI is InvalidArgument rather than Unavailable.
  char* error = nullptr;
  PQconninfoOption* parsed = PQconninfoParse(pool->conninfo_.c_str(), &error);
  if (parsed == nullptr) {
    std::string message = error != nullptr ? error : "out of memory";
    PQfreemem(error);
    return absl::InvalidArgumentError(
        absl::StrCat(pool->display_uri_, ": not a valid PostgreSQL URI: ",
                     pool->Redact(std::string(absl::StripAsciiWhitespace(message)))));
  }
  PQconninfoFree(parsed);
  return pool;
}


PostgresStoreOptions PostgresOptionsFor(const StoreLocation& location) {
  PostgresStoreOptions options;
  options.uri = location.uri;
  options.password = location.password;
  options.max_connections = location.max_connections;
  options.schema = location.schema;
  return options;
}

std::string TextArrayLiteral(const std::vector<const std::string*>& values) {
  std::string out = "{";
  for (size_t i = 0; i < values.size(); ++i) {
    if (i > 0) out += ',';
    out += '"';
    for (const char c : *values[i]) {
      if (c == '"' || c == '\\') out += '\\';
      out += c;
    }
    out += '"';
  }
  out += '}';
  return out;
}

PostgresPool::PostgresPool(std::string conninfo, std::string display_uri,
                           std::vector<std::pair<std::string, std::string>> redactions,
                           int max_connections, std::vector<PreparedStatement> statements,
                           std::string schema)
    : conninfo_(std::move(conninfo)),
      display_uri_(schema.empty() ? display_uri
                                  : absl::StrCat(display_uri, " (schema ", schema, ")")),
      redactions_(std::move(redactions)),
      max_connections_(max_connections),
      statements_(std::move(statements)),
      schema_(std::move(schema)) {
  // Longest first, so a password inside a URI goes with the URI.
  redactions_.erase(std::remove_if(redactions_.begin(), redactions_.end(),
                                   [](const auto& redaction) { return redaction.first.empty(); }),
                    redactions_.end());
  std::stable_sort(redactions_.begin(), redactions_.end(),
                   [](const auto& a, const auto& b) { return a.first.size() > b.first.size(); });
}

PostgresPool::~PostgresPool() = default;

std::string PostgresPool::Redact(std::string message) const {
  for (const auto& [secret, replacement] : redactions_) {
    message = absl::StrReplaceAll(message, {{secret, replacement}});
  }
  return message;
}

absl::Status PostgresPool::Failure(const char* doing, std::exception_ptr failure, bool* broken,
                                   bool* in_doubt) const {
  try {
    std::rethrow_exception(failure);
  } catch (const pqxx::in_doubt_error& e) {
    *broken = true;
    *in_doubt = true;
    return Error(absl::StatusCode::kUnavailable, doing,
                 absl::StrCat("the connection broke during COMMIT, so whether the change was "
                              "stored is unknown: ",
                              e.what()));
  } catch (const pqxx::statement_completion_unknown& e) {
    *broken = true;
    *in_doubt = true;
    return Error(absl::StatusCode::kUnavailable, doing, e.what());
  } catch (const pqxx::transaction_rollback& e) {
    // A serialization failure or deadlock: the transaction was rolled back; a retry may pass.
    return Error(absl::StatusCode::kUnavailable, doing, e.what());
  } catch (const pqxx::broken_connection& e) {
    *broken = true;
    return Error(absl::StatusCode::kUnavailable, doing, e.what());
  } catch (const pqxx::sql_error& e) {
    const absl::StatusCode code = CodeForSqlState(e.sqlstate());
    // The server ends the session on these; the connection is not reused.
    if (absl::StartsWith(e.sqlstate(), "57P") || absl::StartsWith(e.sqlstate(), "08")) {
      *broken = true;
    }
    return Error(code, doing, absl::StrCat(e.what(), " (SQLSTATE ", e.sqlstate(), ")"));
  } catch (const std::exception& e) {
    *broken = true;
    return Error(absl::StatusCode::kInternal, doing, e.what());
  } catch (...) {
    *broken = true;
    return Error(absl::StatusCode::kInternal, doing, "an unknown exception");
  }
}

absl::StatusOr<std::unique_ptr<pqxx::connection>> PostgresPool::Acquire(bool* reused) {
  {
    std::unique_lock<std::mutex> lock(mutex_);
    can_lend_.wait(lock, [this] { return !idle_.empty() || open_ < max_connections_; });
    if (!idle_.empty()) {
      std::unique_ptr<pqxx::connection> connection = std::move(idle_.back());
      idle_.pop_back();
      *reused = true;
      return connection;
    }
    ++open_;  // reserved while connecting without the lock
  }
  *reused = false;
  absl::StatusOr<std::unique_ptr<pqxx::connection>> connection = Connect();
  if (!connection.ok()) {
    Release(nullptr);
    return connection.status();
  }
  try {
    for (const PreparedStatement& statement : statements_) {
      (*connection)->prepare(statement.name, statement.sql);
    }
  } catch (const std::exception& e) {
    Release(nullptr);
    return Error(absl::StatusCode::kInternal, "preparing statements", e.what());
  }
  return connection;
}

absl::Status PostgresPool::RequireTable(const std::string& table) {
  absl::StatusOr<bool> found =
      Run<bool>("looking for a table", [&](pqxx::connection& connection) -> absl::StatusOr<bool> {
        pqxx::nontransaction tx(connection);
        return !tx.exec_params1("SELECT to_regclass($1::text)", table)[0].is_null();
      });
  if (!found.ok()) return found.status();
  if (*found) return absl::OkStatus();
  return absl::FailedPreconditionError(
      absl::StrCat(display_uri_, ": no ", table, " table (open the item store on it first)"));
}

absl::StatusOr<std::unique_ptr<pqxx::connection>> PostgresPool::Connect() const {
  try {
    auto connection = std::make_unique<pqxx::connection>(conninfo_);
    if (!schema_.empty()) {
      pqxx::nontransaction tx(*connection);
      tx.exec(absl::StrCat("SET search_path TO ", tx.quote_name(schema_)));
    }
    return connection;
  } catch (const std::exception& e) {
    const std::string message = Redact(std::string(absl::StripAsciiWhitespace(e.what())));
    const absl::StatusCode code = CodeForConnectFailure(message);
    return absl::Status(code, absl::StrCat(display_uri_, ": connecting: ", message,
                                           code == absl::StatusCode::kFailedPrecondition
                                               ? " (check the user, password and database)"
                                               : ""));
  }
}

absl::Status PostgresPool::Error(absl::StatusCode code, const char* doing,
                                 const std::string& what) const {
  return absl::Status(code, absl::StrCat(display_uri_, ": ", doing, ": ",
                                         Redact(std::string(absl::StripAsciiWhitespace(what)))));
}

void PostgresPool::Release(std::unique_ptr<pqxx::connection> connection) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (connection != nullptr) {
      idle_.push_back(std::move(connection));
    } else {
      --open_;
    }
  }
  can_lend_.notify_one();
}

void PostgresPool::DropIdle() {
  std::vector<std::unique_ptr<pqxx::connection>> dropped;  // closed after the lock is released
  {
    std::lock_guard<std::mutex> lock(mutex_);
    open_ -= static_cast<int>(idle_.size());
    dropped.swap(idle_);
  }
  can_lend_.notify_all();
}

}  // namespace hier::index
