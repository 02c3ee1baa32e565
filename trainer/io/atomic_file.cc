#include "trainer/io/atomic_file.h"

#include <c10/util/Exception.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <system_error>

namespace hier::io {
namespace {

// The directory holding `path`, whose entry a rename or creation changes.
std::string ParentDirectory(const std::string& path) {
  const size_t end = path.find_last_not_of('/');
  if (end == std::string::npos) return "/";
  const size_t slash = path.rfind('/', end);
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

// Closes the descriptor on every exit path, so error paths cannot leak it.
class FileDescriptor {
 public:
  explicit FileDescriptor(int fd) : fd_(fd) {}
  FileDescriptor(const FileDescriptor&) = delete;
  FileDescriptor& operator=(const FileDescriptor&) = delete;
  ~FileDescriptor() {
    if (fd_ >= 0) ::close(fd_);
  }

  int get() const { return fd_; }

  // Closes now: close can report a deferred write error, which must not pass unnoticed.
  int Close() {
    const int result = ::close(fd_);
    fd_ = -1;
    return result;
  }

 private:
  int fd_;
};

// Throws naming the failed `operation`, `path` and errno. Takes no arguments that allocate, so
// errno still holds the failed call's error when it is read.
void CheckSyscall(bool ok, const char* operation, const std::string& path) {
  if (ok) return;
  const int error = errno;
  TORCH_CHECK(false, "atomic_file: cannot ", operation, " ", path, ": ", std::strerror(error));
}

void WriteAll(int fd, std::string_view bytes, const std::string& path) {
  while (!bytes.empty()) {
    const ssize_t n = ::write(fd, bytes.data(), bytes.size());
    if (n < 0 && errno == EINTR) continue;
    CheckSyscall(n >= 0, "write", path);
    bytes.remove_prefix(static_cast<size_t>(n));
  }
}

void Fsync(int fd, const std::string& path) {
  int result;
  do {
    result = ::fsync(fd);
  } while (result != 0 && errno == EINTR);
  CheckSyscall(result == 0, "fsync", path);
}

void SyncOpened(const std::string& path, int flags) {
  FileDescriptor fd(::open(path.c_str(), flags | O_CLOEXEC));
  CheckSyscall(fd.get() >= 0, "open", path);
  Fsync(fd.get(), path);
}

// Unique among the threads and processes writing the same directory.
std::string TempName(const std::string& dir) {
  static std::atomic<uint64_t> counter{0};
  return dir + "/" + kTempFilePrefix + std::to_string(::getpid()) + "-" + std::to_string(counter++);
}

// rename(2) would silently replace an empty `to` directory, so refuse any existing target
// atomically where the kernel and filesystem support it.
int RenameNoReplace(const std::string& from, const std::string& to) {
#ifdef RENAME_NOREPLACE
  const int result = ::renameat2(AT_FDCWD, from.c_str(), AT_FDCWD, to.c_str(), RENAME_NOREPLACE);
  if (result == 0 || (errno != EINVAL && errno != ENOSYS)) return result;
#endif
  struct stat info;
  if (::lstat(to.c_str(), &info) == 0) {
    errno = EEXIST;
    return -1;
  }
  return std::rename(from.c_str(), to.c_str());
}

// Sets `created` when this call created the file, whose directory entry then needs a sync too.
int OpenForAppend(const std::string& path, bool* created) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  *created = fd >= 0;
  if (fd >= 0 || errno != EEXIST) return fd;
  return ::open(path.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
}

}  // namespace

void WriteFileAtomically(const std::string& path, std::string_view bytes) {
  const std::string temp = TempName(ParentDirectory(path));
  FileDescriptor fd(::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
  CheckSyscall(fd.get() >= 0, "create a temp file for", path);
  try {
    WriteAll(fd.get(), bytes, path);
    Fsync(fd.get(), path);
    CheckSyscall(fd.Close() == 0, "close", path);
    CheckSyscall(std::rename(temp.c_str(), path.c_str()) == 0, "rename over", path);
  } catch (...) {
    ::unlink(temp.c_str());
    throw;
  }
  SyncDirectory(ParentDirectory(path));
}

void SyncDirectory(const std::string& dir) { SyncOpened(dir, O_RDONLY | O_DIRECTORY); }

void SyncFile(const std::string& path) { SyncOpened(path, O_RDONLY); }

void PublishDirectory(const std::string& staging_dir, const std::string& final_dir) {
  namespace fs = std::filesystem;
  std::error_code error;
  TORCH_CHECK(fs::is_directory(staging_dir, error), "atomic_file: staging directory ", staging_dir,
              " does not exist or is not a directory");
  struct stat info;
  TORCH_CHECK(::lstat(final_dir.c_str(), &info) != 0, "atomic_file: cannot publish ", staging_dir,
              " as ", final_dir, ": the target already exists");
  for (fs::recursive_directory_iterator it(staging_dir, error), end; !error && it != end;
       it.increment(error)) {
    const fs::file_type type = it->symlink_status(error).type();
    if (type == fs::file_type::regular) SyncFile(it->path().string());
    if (type == fs::file_type::directory) SyncDirectory(it->path().string());
  }
  TORCH_CHECK(!error, "atomic_file: cannot list ", staging_dir, ": ", error.message());
  SyncDirectory(staging_dir);
  if (RenameNoReplace(staging_dir, final_dir) != 0) {
    const int rename_errno = errno;
    TORCH_CHECK(false, "atomic_file: cannot rename ", staging_dir, " to ", final_dir, ": ",
                std::strerror(rename_errno));
  }
  const std::string old_parent = ParentDirectory(staging_dir);
  const std::string new_parent = ParentDirectory(final_dir);
  SyncDirectory(new_parent);
  if (old_parent != new_parent) SyncDirectory(old_parent);
}

void AppendLine(const std::string& path, std::string_view line, bool sync) {
  TORCH_CHECK(line.find('\n') == std::string_view::npos, "atomic_file: the line appended to ", path,
              " contains a newline");
  bool created = false;
  FileDescriptor fd(OpenForAppend(path, &created));
  CheckSyscall(fd.get() >= 0, "open for append", path);
  std::string record(line);
  record.push_back('\n');
  ssize_t n;
  do {
    n = ::write(fd.get(), record.data(), record.size());
  } while (n < 0 && errno == EINTR);
  CheckSyscall(n >= 0, "append to", path);
  TORCH_CHECK(static_cast<size_t>(n) == record.size(), "atomic_file: short append to ", path,
              ": wrote ", n, " of ", record.size(), " bytes");
  if (sync) Fsync(fd.get(), path);
  CheckSyscall(fd.Close() == 0, "close", path);
  if (sync && created) SyncDirectory(ParentDirectory(path));
}

std::string ReadFile(const std::string& path) {
  FileDescriptor fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  CheckSyscall(fd.get() >= 0, "open", path);
  struct stat info;
  CheckSyscall(::fstat(fd.get(), &info) == 0, "stat", path);
  std::string content;
  // The size is a hint only: the file may grow or shrink while it is read.
  content.reserve(static_cast<size_t>(info.st_size));
  char chunk[1 << 16];
  while (true) {
    const ssize_t n = ::read(fd.get(), chunk, sizeof(chunk));
    if (n < 0 && errno == EINTR) continue;
    CheckSyscall(n >= 0, "read", path);
    if (n == 0) break;
    content.append(chunk, static_cast<size_t>(n));
  }
  return content;
}

}  // namespace hier::io
