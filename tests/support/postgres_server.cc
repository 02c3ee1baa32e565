#include "tests/support/postgres_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pwd.h>
#include <spawn.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <pqxx/pqxx>
#include <random>
#include <sstream>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

extern char** environ;

namespace hier::testing {
namespace {

constexpr char kAdmin[] = "hier_admin";
constexpr char kServerUser[] = "nobody";

std::string RandomHex(int chars) {
  std::random_device device;
  std::uniform_int_distribution<int> digit(0, 15);
  std::string out;
  for (int i = 0; i < chars; ++i) out += "0123456789abcdef"[digit(device)];
  return out;
}

// The last `max_bytes` of a file, for error messages.
std::string Tail(const std::string& path, size_t max_bytes = 4000) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  std::string all = text.str();
  return all.size() > max_bytes ? all.substr(all.size() - max_bytes) : all;
}

// The folder holding initdb and pg_ctl; NotFound when there is none.
absl::StatusOr<std::string> FindBinDir() {
  namespace fs = std::filesystem;
  if (const char* configured = std::getenv("HIER_PG_BINDIR"); configured && *configured) {
    if (fs::exists(fs::path(configured) / "initdb")) return std::string(configured);
    return absl::NotFoundError(absl::StrCat("HIER_PG_BINDIR=", configured, " has no initdb"));
  }
  std::error_code error;
  int best_version = -1;
  std::string best;
  for (const fs::directory_entry& entry : fs::directory_iterator("/usr/lib/postgresql", error)) {
    const fs::path bin = entry.path() / "bin";
    const int version = std::atoi(entry.path().filename().c_str());
    if (fs::exists(bin / "initdb") && fs::exists(bin / "pg_ctl") && version > best_version) {
      best_version = version;
      best = bin.string();
    }
  }
  if (!best.empty()) return best;
  if (const char* path = std::getenv("PATH")) {
    std::stringstream dirs(path);
    for (std::string dir; std::getline(dirs, dir, ':');) {
      if (!dir.empty() && fs::exists(fs::path(dir) / "initdb")) return dir;
    }
  }
  return absl::NotFoundError(
      "no PostgreSQL server binaries (initdb, pg_ctl): install postgresql (deploy/install-deps.sh) "
      "or set HIER_PG_BINDIR");
}

// Where the server's folder goes: $HIER_PG_TEST_DIR, else /dev/shm when it has room (a memory file
// system makes fsync and crash recovery's sync of the data directory cheap; fsync stays on, and a
// crashed server's writes survive in memory as they would in the page cache), else the temporary
// folder (/tmp as root: a private TMPDIR may be out of `nobody`'s reach).
std::filesystem::path ScratchParent(bool as_nobody) {
  if (const char* configured = std::getenv("HIER_PG_TEST_DIR"); configured && *configured) {
    return configured;
  }
  struct statvfs shm;
  if (statvfs("/dev/shm", &shm) == 0 && access("/dev/shm", W_OK) == 0 &&
      static_cast<uint64_t>(shm.f_bavail) * shm.f_frsize >= (uint64_t{1} << 30)) {
    return "/dev/shm";
  }
  return as_nobody ? std::filesystem::path("/tmp") : std::filesystem::temp_directory_path();
}

// Spawns `argv` in `cwd` with stdin from `stdin_fd` (or /dev/null when -1) and stdout and stderr
// into `log_path` (or /dev/null when empty).
absl::StatusOr<pid_t> Spawn(const std::vector<std::string>& argv, const std::string& cwd,
                            int stdin_fd, const std::string& log_path, bool new_session) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  if (stdin_fd >= 0) {
    posix_spawn_file_actions_adddup2(&actions, stdin_fd, 0);
  } else {
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  }
  posix_spawn_file_actions_addopen(&actions, 1, log_path.empty() ? "/dev/null" : log_path.c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  if (!cwd.empty()) posix_spawn_file_actions_addchdir_np(&actions, cwd.c_str());
  posix_spawnattr_t attributes;
  posix_spawnattr_init(&attributes);
  if (new_session) posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETSID);
  std::vector<char*> args;
  for (const std::string& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
  args.push_back(nullptr);
  pid_t pid = -1;
  const int rc = posix_spawnp(&pid, args[0], &actions, &attributes, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attributes);
  if (rc != 0) {
    return absl::InternalError(absl::StrCat("spawning ", argv[0], ": ", std::strerror(rc)));
  }
  return pid;
}

// Runs `argv` to completion; Internal with its output when it fails.
absl::Status Run(const std::vector<std::string>& argv, const std::string& cwd,
                 const std::string& log_path) {
  absl::StatusOr<pid_t> pid = Spawn(argv, cwd, -1, log_path, /*new_session=*/false);
  if (!pid.ok()) return pid.status();
  int status = 0;
  while (waitpid(*pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return absl::OkStatus();
  return absl::InternalError(absl::StrCat("`", absl::StrJoin(argv, " "), "` failed (status ",
                                          status, "):\n", Tail(log_path)));
}

// Runs as the server's user: through runuser when `user` is set (running as root).
std::vector<std::string> AsUser(const passwd* user, std::vector<std::string> argv) {
  if (user != nullptr) argv.insert(argv.begin(), {"runuser", "-u", user->pw_name, "--"});
  return argv;
}

// An initdb'd data directory to copy, and its superuser's password.
struct Template {
  std::string data_dir;
  std::string admin_password;
};

// initdb takes about a second, most of a server's start, and a ctest run starts a server per test
// process: so the first one keeps its fresh data directory as a template in `parent`
// (hier-pg-template-<key>, about 40 MB, never removed: /dev/shm empties at boot), keyed by the
// binaries and the user, and every server copies it. A lock file serialises its creation.
absl::StatusOr<Template> EnsureTemplate(const std::string& bin_dir,
                                        const std::filesystem::path& parent, const passwd* user) {
  namespace fs = std::filesystem;
  std::error_code error;
  const auto built = fs::last_write_time(fs::path(bin_dir) / "postgres", error);
  const size_t key = std::hash<std::string>()(absl::StrCat(
      "v1 ", bin_dir, " ", error ? 0 : built.time_since_epoch().count(), " ", geteuid()));
  const fs::path dir = parent / absl::StrCat("hier-pg-template-", absl::Hex(key));
  const std::string lock_path = dir.string() + ".lock";
  const int lock = open(lock_path.c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0600);
  if (lock < 0 || flock(lock, LOCK_EX) != 0) {
    if (lock >= 0) close(lock);
    return absl::InternalError(absl::StrCat("locking ", lock_path, ": ", std::strerror(errno)));
  }
  struct Unlock {
    int fd;
    ~Unlock() { close(fd); }  // closing releases the flock
  } unlock{lock};
  Template found{(dir / "data").string(), ""};
  if (fs::exists(dir / "data" / "PG_VERSION") && fs::exists(dir / "admin-password")) {
    std::ifstream(dir / "admin-password") >> found.admin_password;
    if (!found.admin_password.empty()) return found;
  }
  // Built beside the template and renamed into place, so it is whole or absent.
  const fs::path building = parent / absl::StrCat("hier-pg-template-", getpid(), ".tmp");
  fs::remove_all(building, error);
  fs::remove_all(dir, error);
  fs::create_directories(building);
  found.admin_password = RandomHex(24);
  const std::string password_file = (building / "admin-password").string();
  {
    std::ofstream out(password_file);
    out << found.admin_password << "\n";
  }
  chmod(password_file.c_str(), 0600);
  if (user != nullptr) {
    for (const fs::path& path : {building, fs::path(password_file)}) {
      if (chown(path.c_str(), user->pw_uid, user->pw_gid) != 0) {
        return absl::InternalError(
            absl::StrCat("chown ", path.string(), ": ", std::strerror(errno)));
      }
    }
  }
  // --no-sync: a throwaway server's initial files need not reach the disk (it runs with fsync on).
  if (absl::Status initialized = Run(
          AsUser(user, {bin_dir + "/initdb", "-D", (building / "data").string(), "-U", kAdmin,
                        "--pwfile=" + password_file, "--auth=scram-sha-256", "-E", "UTF8",
                        "--locale=C", "--no-sync"}),
          building.string(), (parent / absl::StrCat("hier-pg-initdb-", getpid(), ".log")).string());
      !initialized.ok()) {
    fs::remove_all(building, error);
    return initialized;
  }
  fs::remove(parent / absl::StrCat("hier-pg-initdb-", getpid(), ".log"), error);
  fs::rename(building, dir, error);
  if (error) {
    return absl::InternalError(
        absl::StrCat("renaming ", building.string(), " to ", dir.string(), ": ", error.message()));
  }
  return found;
}
}  // namespace

int PostgresServer::FreePort() {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = 0;
  socklen_t length = sizeof(address);
  int port = 0;
  if (fd >= 0 && bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0) {
    port = ntohs(address.sin_port);
  }
  if (fd >= 0) close(fd);
  return port;
}

absl::StatusOr<std::unique_ptr<PostgresServer>> PostgresServer::Create() {
  absl::StatusOr<std::string> bin_dir = FindBinDir();
  if (!bin_dir.ok()) return bin_dir.status();
  std::unique_ptr<PostgresServer> server(new PostgresServer());
  server->bin_dir_ = *bin_dir;
  server->as_nobody_ = geteuid() == 0;

  std::string pattern = (ScratchParent(server->as_nobody_) / "hier-pg-XXXXXX").string();
  if (mkdtemp(pattern.data()) == nullptr) {
    return absl::InternalError(absl::StrCat("mkdtemp ", pattern, ": ", std::strerror(errno)));
  }
  server->directory_ = pattern;
  server->data_dir_ = server->directory_ + "/data";

  // The watchdog: a shell in its own session that waits for its stdin (this process's pipe) to
  // close, then stops the server and removes the folder; it outlives a crashed test process.
  int pipe_fds[2];
  if (pipe2(pipe_fds, O_CLOEXEC) != 0) {
    std::filesystem::remove_all(server->directory_);
    return absl::InternalError(absl::StrCat("pipe2: ", std::strerror(errno)));
  }
  const std::string as_user =
      server->as_nobody_ ? absl::StrCat("runuser -u ", kServerUser, " -- ") : std::string();
  absl::StatusOr<pid_t> watchdog =
      Spawn({"/bin/sh", "-c",
             absl::StrCat("read _; ", as_user,
                          "\"$1/pg_ctl\" stop -D \"$2\" -m immediate -w; rm -rf \"$3\""),
             "hier-pg-watchdog", server->bin_dir_, server->data_dir_, server->directory_},
            "/", pipe_fds[0], "", /*new_session=*/true);
  close(pipe_fds[0]);
  if (!watchdog.ok()) {
    close(pipe_fds[1]);
    std::filesystem::remove_all(server->directory_);
    return watchdog.status();
  }
  server->watchdog_pipe_ = pipe_fds[1];
  server->watchdog_pid_ = *watchdog;

  // The server's files belong to `nobody` when running as root (initdb refuses root).
  const passwd* server_user = nullptr;
  if (server->as_nobody_) {
    server_user = getpwnam(kServerUser);
    if (server_user == nullptr) {
      return absl::FailedPreconditionError(absl::StrCat("running as root, but there is no user ",
                                                        kServerUser, " to run the server"));
    }
    if (chown(server->directory_.c_str(), server_user->pw_uid, server_user->pw_gid) != 0) {
      return absl::InternalError(
          absl::StrCat("chown ", server->directory_, ": ", std::strerror(errno)));
    }
  }
  absl::StatusOr<Template> cluster =
      EnsureTemplate(server->bin_dir_, ScratchParent(server->as_nobody_), server_user);
  if (!cluster.ok()) return cluster.status();
  server->admin_password_ = cluster->admin_password;
  server->password_ = RandomHex(24);
  if (absl::Status copied = Run({"cp", "-a", cluster->data_dir, server->data_dir_},
                                server->directory_, server->directory_ + "/cp.log");
      !copied.ok()) {
    return copied;
  }
  {
    std::ofstream conf(server->data_dir_ + "/postgresql.conf", std::ios::app);
    conf << "\n# hier-serve test server (tests/support/postgres_server.cc)\n"
         << "listen_addresses = '127.0.0.1'\n"
         << "unix_socket_directories = '" << server->directory_ << "'\n"
         << "fsync = on\n"
         // Crash recovery (Stop() then Start()) first syncs the data directory: one syncfs()
         // rather than an fsync per file (tens of seconds for a few dozen test databases).
         << "recovery_init_sync_method = syncfs\n"
         << "synchronous_commit = on\n"
         << "max_connections = 100\n"
         << "shared_buffers = 32MB\n";
  }
  // A port picked here may be taken before the server binds it: try a few.
  absl::Status started;
  for (int attempt = 0; attempt < 3; ++attempt) {
    server->port_ = FreePort();
    started = server->Start();
    if (started.ok()) break;
  }
  if (!started.ok()) return started;
  if (absl::Status role = server->Execute(
          "postgres",
          absl::StrCat("CREATE ROLE ", server->user_, " LOGIN PASSWORD '", server->password_, "'"));
      !role.ok()) {
    return role;
  }
  return server;
}

absl::StatusOr<PostgresServer*> PostgresServer::Shared() {
  static absl::StatusOr<std::unique_ptr<PostgresServer>> shared = Create();
  if (!shared.ok()) return shared.status();
  return shared->get();
}

PostgresServer::~PostgresServer() {
  // The watchdog stops the server and removes the folder once its stdin closes.
  if (watchdog_pipe_ >= 0) {
    close(watchdog_pipe_);
    int status = 0;
    while (waitpid(watchdog_pid_, &status, 0) < 0 && errno == EINTR) {
    }
  } else if (!directory_.empty()) {
    std::error_code ignored;
    std::filesystem::remove_all(directory_, ignored);
  }
}

absl::Status PostgresServer::RunTool(const std::string& tool,
                                     const std::vector<std::string>& args) const {
  std::vector<std::string> argv;
  if (as_nobody_) argv = {"runuser", "-u", kServerUser, "--"};
  argv.push_back(bin_dir_ + "/" + tool);
  argv.insert(argv.end(), args.begin(), args.end());
  return Run(argv, directory_, directory_ + "/" + tool + ".log");
}

absl::Status PostgresServer::Start() {
  absl::Status started =
      RunTool("pg_ctl", {"start", "-w", "-t", "60", "-D", data_dir_, "-l",
                         directory_ + "/server.log", "-o", absl::StrCat("-p ", port_)});
  if (!started.ok()) {
    return absl::Status(started.code(), absl::StrCat(started.message(), "\nserver.log:\n",
                                                     Tail(directory_ + "/server.log")));
  }
  return absl::OkStatus();
}

absl::Status PostgresServer::Stop() {
  return RunTool("pg_ctl", {"stop", "-w", "-D", data_dir_, "-m", "immediate"});
}

std::string PostgresServer::AdminUri(const std::string& database) const {
  return absl::StrCat("postgresql://", kAdmin, ":", admin_password_, "@127.0.0.1:", port_, "/",
                      database);
}

std::string PostgresServer::Uri(const std::string& database) const {
  return absl::StrCat("postgresql://", user_, ":", password_, "@127.0.0.1:", port_, "/", database);
}

std::string PostgresServer::Uri(const std::string& database, const std::string& schema) const {
  return absl::StrCat(Uri(database), "?options=-csearch_path%3D", schema);
}

std::string PostgresServer::UriWithoutPassword(const std::string& database) const {
  return absl::StrCat("postgresql://", user_, "@127.0.0.1:", port_, "/", database);
}

absl::Status PostgresServer::Execute(const std::string& database, const std::string& sql) const {
  try {
    pqxx::connection connection(AdminUri(database));
    pqxx::nontransaction tx(connection);
    tx.exec(sql);
    return absl::OkStatus();
  } catch (const std::exception& e) {
    return absl::InternalError(
        absl::StrCat("as ", kAdmin, " in ", database, ": ", sql, ": ", e.what()));
  }
}

absl::StatusOr<std::string> PostgresServer::CreateDatabase() {
  const std::string name = absl::StrCat("test_", ++databases_);
  if (absl::Status created =
          Execute("postgres", absl::StrCat("CREATE DATABASE ", name, " OWNER ", user_));
      !created.ok()) {
    return created;
  }
  return name;
}

absl::StatusOr<std::string> PostgresServer::CreateSchema(const std::string& database) {
  const std::string name = absl::StrCat("schema_", ++schemas_);
  if (absl::Status created =
          Execute(database, absl::StrCat("CREATE SCHEMA ", name, " AUTHORIZATION ", user_));
      !created.ok()) {
    return created;
  }
  return name;
}

}  // namespace hier::testing
