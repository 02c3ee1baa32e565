// The run directory of architecture.md: config.json, status.json (rewritten atomically),
// metrics.jsonl (one JSON object per line), checkpoints/, best/, hierarchy.json and plots/.
#pragma once

#include <cstdint>
#include <map>
#include <string>

namespace hier::train {

// What status.json says about a run; readers (the server, a person) poll it.
struct RunStatus {
  std::string state = "starting";  // starting, running, finished, failed, interrupted
  int64_t epoch = 0;               // epochs completed
  int64_t epochs = 0;
  int64_t step = 0;
  int64_t total_steps = 0;
  double images_per_second = 0;
  double eta_seconds = 0;
  std::map<std::string, double> losses;      // last logged loss terms
  double best_recall = -1;                   // best Recall@(first K), -1 before any evaluation
  std::map<std::string, double> evaluation;  // the latest evaluation's metrics (NamedMetrics)
  int64_t world_size = 1;                    // data-parallel processes
  int64_t skipped_files = 0;                 // image files missing or undecodable, skipped
  std::string message;                       // the error of a failed run
};

class RunDirectory {
 public:
  // Creates `path` and its checkpoints/ and plots/ folders when absent.
  explicit RunDirectory(std::string path);

  const std::string& path() const { return path_; }
  std::string File(const std::string& name) const;  // path/name
  std::string checkpoints() const { return File("checkpoints"); }
  std::string best() const { return File("best"); }
  std::string plots() const { return File("plots"); }

  void WriteConfig(const std::string& config_json) const;
  void WriteStatus(const RunStatus& status) const;

  // Appends one line to metrics.jsonl; `sync` makes it durable before returning.
  void AppendMetrics(const std::string& json_line, bool sync) const;

  // Drops metrics lines logged after `step` (a resumed run logs those steps again).
  void TruncateMetricsAfter(int64_t step) const;

 private:
  std::string path_;
};

}  // namespace hier::train
