// Reaching a PostgreSQL server: a pool of libpq connections (libpqxx), the connection string built
// from a postgresql:// URI and an optional password, and one place that turns libpqxx's exceptions
// into statuses whose messages name the URI with its password replaced by "***". Every
// PostgreSQL-backed store (items, images, ...) talks to the database through one of these.
//
// Status codes: connection failures and a server that is shutting down, in recovery, read-only or
// out of resources are Unavailable; rejected credentials, a missing database or role and missing
// privileges are FailedPrecondition (they need an operator, not a retry); a malformed URI is
// InvalidArgument; a commit whose outcome is unknown (the connection broke during COMMIT) is
// Unavailable saying so; data PostgreSQL reports corrupt is DataLoss; other SQL errors Internal.
//
// Thread-safety: every method may be called from many threads at once; at most max_connections
// connections are open, one call per connection at a time (a call waits while all are lent). A
// connection that breaks is dropped; the next call opens a new one, so a call during an outage
// fails Unavailable and a call after the server is back succeeds.
#pragma once

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <pqxx/pqxx>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/types/span.h"
#include "index/item_store.h"

namespace hier::index {

// The application name PostgreSQL sessions report and the store's schema records.
inline constexpr char kPostgresApplication[] = "hier-serve";

struct PostgresStoreOptions {
  // postgresql://[user[:password]@]host[:port]/database[?param=value&...] or postgres://...
  std::string uri;
  // When not empty, used instead of the URI's password; with neither, libpq's password file.
  std::string password;
  // The most connections the pool opens (>= 1).
  int max_connections = 4;
  // When not empty, every connection's search_path: the schema the store lives in.
  std::string schema;
  // libpq's connect_timeout when the URI sets none: a call waits this long for an unreachable
  // server before failing Unavailable.
  int connect_timeout_s = 10;
  // When the URI sets none of libpq's keepalive and tcp_user_timeout parameters: about how long
  // a connection whose server stopped answering (a network partition) takes to fail Unavailable.
  int network_timeout_s = 10;
};

// The options for a store location (item_store.h): its URI, password and connection count.
PostgresStoreOptions PostgresOptionsFor(const StoreLocation& location);

// A statement every connection of a pool prepares (used by name with exec_prepared).
struct PreparedStatement {
  const char* name;
  const char* sql;
};

// A PostgreSQL array literal ({"a","b"}) of text values, for a text[] parameter; the values
// cannot hold NUL bytes (PostgreSQL text cannot).
std::string TextArrayLiteral(const std::vector<const std::string*>& values);

class PostgresPool {
 public:
  // InvalidArgument for a malformed URI or max_connections < 1; connects nothing yet.
  static absl::StatusOr<std::unique_ptr<PostgresPool>> Create(
      const PostgresStoreOptions& options, absl::Span<const PreparedStatement> statements);
  ~PostgresPool();
  PostgresPool(const PostgresPool&) = delete;
  PostgresPool& operator=(const PostgresPool&) = delete;

  // The URI as messages name it: any password replaced by "***".
  const std::string& display_uri() const { return display_uri_; }

  // Runs `body(pqxx::connection&)`, which returns absl::StatusOr<T>, on a pooled connection and
  // turns what it throws into a status (`doing` says what was being done, for the message). A
  // transaction `body` leaves uncommitted is rolled back. A pooled connection found broken at once
  // (the server restarted since it was last used) is replaced and `body` runs once more: a
  // transaction whose connection broke before COMMIT did not commit, and writes made outside a
  // transaction must be idempotent. Never after a COMMIT in doubt, nor after a connection that
  // broke by timing out (the server is unreachable: a second try would only double the wait).
  template <typename T, typename Body>
  absl::StatusOr<T> Run(const char* doing, Body body) {
    for (int attempt = 0;; ++attempt) {
      const auto started = std::chrono::steady_clock::now();
      bool reused = false;
      absl::StatusOr<std::unique_ptr<pqxx::connection>> connection = Acquire(&reused);
      if (!connection.ok()) {
        return absl::Status(connection.status().code(),
                            absl::StrCat(doing, ": ", connection.status().message()));
      }
      bool broken = false;
      bool in_doubt = false;
      absl::StatusOr<T> result;
      try {
        result = body(**connection);
      } catch (...) {
        result = Failure(doing, std::current_exception(), &broken, &in_doubt);
      }
      if (broken || !(*connection)->is_open()) {
        connection->reset();
        DropIdle();
        Release(nullptr);
        const bool at_once = std::chrono::steady_clock::now() - started < kBrokenAtOnce;
        if (reused && attempt == 0 && !in_doubt && at_once) continue;
        return result;
      }
      Release(*std::move(connection));
      return result;
    }
  }

  // A failure within this of a call's start found the connection already broken.
  static constexpr std::chrono::milliseconds kBrokenAtOnce{1000};

  // FailedPrecondition naming `table` when the connection's schema has no such table (the item
  // store, whose schema holds every table of the store of record, was not opened there first).
  absl::Status RequireTable(const std::string& table);

  // A new connection outside the pool (e.g. one that LISTENs), with no statements prepared, its
  // search_path set to the schema when there is one.
  absl::StatusOr<std::unique_ptr<pqxx::connection>> Connect() const;

  // A status of `code` naming the URI and what was being done, with `what` redacted.
  absl::Status Error(absl::StatusCode code, const char* doing, const std::string& what) const;

 private:
  PostgresPool(std::string conninfo, std::string display_uri,
               std::vector<std::pair<std::string, std::string>> redactions, int max_connections,
               std::vector<PreparedStatement> statements, std::string schema);

  // `message` with the URI and every form of the password replaced.
  std::string Redact(std::string message) const;
  // The status for an exception `body` threw; sets `broken` when the connection must not be
  // reused and `in_doubt` when the server may have done what was asked although the call failed.
  absl::Status Failure(const char* doing, std::exception_ptr failure, bool* broken,
                       bool* in_doubt) const;
  // An idle connection (`reused` set) or a new one; waits while max_connections are lent.
  absl::StatusOr<std::unique_ptr<pqxx::connection>> Acquire(bool* reused);
  // Returns a lent connection to the pool; nullptr when it was dropped.
  void Release(std::unique_ptr<pqxx::connection> connection);
  // Drops every idle connection: when one broke, the others most likely broke with it.
  void DropIdle();

  const std::string conninfo_;  // holds the password: never in a message
  const std::string display_uri_;
  // What Redact replaces (the URIs, every form of the password) and with what, longest first.
  std::vector<std::pair<std::string, std::string>> redactions_;
  const int max_connections_;
  const std::vector<PreparedStatement> statements_;
  const std::string schema_;  // the connections' search_path, when not empty
  // A std::mutex rather than absl::Mutex: ThreadSanitizer sees pthread locks but not the
  // uninstrumented libabsl's (rw_mutex.h says the same).
  std::mutex mutex_;
  // Signalled when a connection is returned or dropped.
  std::condition_variable can_lend_;
  // Connections not lent out. Guarded by mutex_.
  std::vector<std::unique_ptr<pqxx::connection>> idle_;
  // Connections that exist or are being opened: idle ones and lent ones. Guarded by mutex_.
  int open_ = 0;
};

}  // namespace hier::index
