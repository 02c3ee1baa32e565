// A record of the writes a load made and how each call ended, one line per call, so that a checker
// can later tell acknowledged writes (OK) from unknown ones (any other code: the write may or may
// not have happened) after faults such as a killed server (deploy/experiments/soak.sh).
//
// A line is "<op> <first id> <count> <CODE>": the call wrote ids first..first+count-1, e.g.
// "add 1000000 4 OK" or "delete 1000000 4 UNAVAILABLE". Lines are appended in completion order and
// flushed one by one, so what is written survives the process.
//
// Thread-safety: Record may be called from any thread (completions run on gRPC's threads).
#pragma once

#include <cstdint>
#include <fstream>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"

namespace hier::client::bench {

class WriteLedger {
 public:
  // Appends to `path` (created when missing); Unavailable naming it when it cannot be opened.
  static absl::StatusOr<std::unique_ptr<WriteLedger>> Open(const std::string& path);

  void Record(absl::string_view op, int64_t first_id, int64_t count, absl::StatusCode code);

  // Unavailable naming the file when any line could not be written.
  absl::Status status() const;

  // The line Record writes (without its newline).
  static std::string Line(absl::string_view op, int64_t first_id, int64_t count,
                          absl::StatusCode code);

 private:
  WriteLedger(std::string path, std::ofstream out) : path_(std::move(path)), out_(std::move(out)) {}

  const std::string path_;
  mutable absl::Mutex mu_;
  std::ofstream out_ ABSL_GUARDED_BY(mu_);  // good() turns false once a write fails
};

}  // namespace hier::client::bench
