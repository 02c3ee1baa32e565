// Reads a hier-train run directory while the trainer writes it: status.json (rewritten
// atomically: state, epoch, step, total_steps, eta_seconds, losses, message) and the evaluation
// lines of metrics.jsonl (appended; rewritten shorter when a run resumes), into the Progress of
// training.proto.
//
// Thread-safety: none; the owner serialises calls.
#pragma once

#include <cstdint>
#include <string>

#include "hier/v1/training.pb.h"

namespace hier::server {

// What status.json says about the run besides its progress.
struct TrainerState {
  std::string state;    // starting, running, finished, interrupted, failed; "" when unread
  std::string message;  // why a failed run failed
};

class RunProgress {
 public:
  explicit RunProgress(std::string run_dir);

  // Reads status.json and the metrics lines appended since the last call into `progress`;
  // what cannot be read (no file yet, a torn line) leaves the fields as they were.
  TrainerState Poll(hier::v1::Progress* progress);

  // Forgets how far metrics.jsonl was read (the run starts again, e.g. resumed).
  void Restart() { metrics_offset_ = 0; }

 private:
  void ReadEvaluations(hier::v1::Progress* progress);

  const std::string run_dir_;
  int64_t metrics_offset_ = 0;  // bytes of metrics.jsonl read, up to a whole line
};

// The last `lines` non-empty lines of the file at `path` (at most `max_bytes` from its end),
// joined by "\n"; "" when it cannot be read.
std::string TailOfFile(const std::string& path, int lines, int64_t max_bytes);

}  // namespace hier::server
