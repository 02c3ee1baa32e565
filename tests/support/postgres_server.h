// A throwaway PostgreSQL server for tests, so the PostgreSQL store is tested against the real
// thing: a data directory in a temporary folder, pg_ctl start on a free loopback port with
// password (SCRAM) authentication and fsync on, a test role, fresh databases and schemas on demand,
// and Stop()/Start() for outage tests. The destructor stops the server and removes the folder; a
// watchdog process does the same when the test process dies without running it.
//
// The folder goes to $HIER_PG_TEST_DIR, else /dev/shm when it has room (fsync and crash recovery
// are cheap there), else the temporary folder. initdb runs once per machine and binaries: its
// data directory is kept there as a template (hier-pg-template-*) that each server copies, since a
// ctest run starts one server per test process. initdb refuses to run as root: as root the
// server's files and processes belong to the unprivileged user `nobody` (runuser -u nobody);
// otherwise to the current user. The binaries are taken from $HIER_PG_BINDIR, else the newest
// /usr/lib/postgresql/<version>/bin, else $PATH.
//
// Thread-safety: none; tests call it from their main thread. deploy/postgres-scratch.sh starts the
// same kind of server by hand.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace hier::testing {

class PostgresServer {
 public:
  // Starts a new server. NotFound when no PostgreSQL server binaries are installed (the tests
  // skip then); any other failure carries the failing command's output.
  static absl::StatusOr<std::unique_ptr<PostgresServer>> Create();

  // The one server of this process, started on first use and stopped at exit, so a test binary
  // pays for initdb once. Every call after a failed start returns the same status.
  static absl::StatusOr<PostgresServer*> Shared();

  ~PostgresServer();
  PostgresServer(const PostgresServer&) = delete;
  PostgresServer& operator=(const PostgresServer&) = delete;

  // A new, empty database owned by the test role (test_1, test_2, ...); returns its name.
  absl::StatusOr<std::string> CreateDatabase();

  // A new, empty schema in `database` owned by the test role (schema_1, ...); returns its name.
  absl::StatusOr<std::string> CreateSchema(const std::string& database);

  // postgresql://<user>:<password>@127.0.0.1:<port>/<database>
  std::string Uri(const std::string& database) const;
  // The same with search_path set to `schema` (?options=-csearch_path%3D<schema>).
  std::string Uri(const std::string& database, const std::string& schema) const;
  // The same without the password (for tests of other ways to give it).
  std::string UriWithoutPassword(const std::string& database) const;

  // Runs `sql` as the superuser in `database`.
  absl::Status Execute(const std::string& database, const std::string& sql) const;

  // Stops the server as a crash would (pg_ctl stop -m immediate); connections break.
  absl::Status Stop();
  // Starts it again on the same port (after crash recovery).
  absl::Status Start();

  int port() const { return port_; }
  const std::string& user() const { return user_; }
  const std::string& password() const { return password_; }
  const std::string& directory() const { return directory_; }

  // A loopback TCP port nothing listens on at the moment of the call.
  static int FreePort();

 private:
  PostgresServer() = default;

  // Runs a PostgreSQL binary as the server's user; the status carries its output on failure.
  absl::Status RunTool(const std::string& tool, const std::vector<std::string>& args) const;
  // The superuser's connection string for `database`.
  std::string AdminUri(const std::string& database) const;

  std::string bin_dir_;
  std::string directory_;  // removed by the destructor (or the watchdog)
  std::string data_dir_;
  bool as_nobody_ = false;  // running as root: the server runs as `nobody`
  int port_ = 0;
  std::string admin_password_;
  std::string user_ = "hier_test";
  std::string password_;
  int databases_ = 0;
  int schemas_ = 0;
  // The write end of the watchdog's stdin, and the watchdog's pid (see the header comment).
  int watchdog_pipe_ = -1;
  pid_t watchdog_pid_ = -1;
};

}  // namespace hier::testing
