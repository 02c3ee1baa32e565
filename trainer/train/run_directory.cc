#include "trainer/train/run_directory.h"

#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>

#include "trainer/io/atomic_file.h"

namespace hier::train {

RunDirectory::RunDirectory(std::string path) : path_(std::move(path)) {
  std::filesystem::create_directories(checkpoints());
  std::filesystem::create_directories(plots());
}

std::string RunDirectory::File(const std::string& name) const {
  return (std::filesystem::path(path_) / name).string();
}

void RunDirectory::WriteConfig(const std::string& config_json) const {
  io::WriteFileAtomically(File("config.json"), config_json + "\n");
}

void RunDirectory::WriteStatus(const RunStatus& status) const {
  const double now =
      std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  const nlohmann::json json = {{"state", status.state},
                               {"epoch", status.epoch},
                               {"epochs", status.epochs},
                               {"step", status.step},
                               {"total_steps", status.total_steps},
                               {"images_per_second", status.images_per_second},
                               {"eta_seconds", status.eta_seconds},
                               {"losses", status.losses},
                               {"best_recall", status.best_recall},
                               {"evaluation", status.evaluation},
                               {"world_size", status.world_size},
                               {"skipped_files", status.skipped_files},
                               {"message", status.message},
                               {"pid", ::getpid()},
                               {"updated_unix", now}};
  io::WriteFileAtomically(File("status.json"), json.dump(2) + "\n");
}

void RunDirectory::AppendMetrics(const std::string& json_line, bool sync) const {
  io::AppendLine(File("metrics.jsonl"), json_line, sync);
}

void RunDirectory::TruncateMetricsAfter(int64_t step) const {
  const std::string path = File("metrics.jsonl");
  if (!std::filesystem::exists(path)) return;
  std::istringstream lines(io::ReadFile(path));
  std::string kept;
  for (std::string line; std::getline(lines, line);) {
    // A torn last line (a crash mid-append) is dropped with the lines after the checkpoint.
    const nlohmann::json record = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (record.is_discarded() || record.value("step", int64_t{0}) > step) continue;
    kept += line + "\n";
  }
  io::WriteFileAtomically(path, kept);
}

}  // namespace hier::train
