#include "server/training/run_progress.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <sstream>
#include <system_error>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "trainer/io/json_integer.h"

namespace hier::server {
namespace {

using Json = nlohmann::json;

// Reads [offset, end of file); "" when the file cannot be opened.
std::string ReadFrom(const std::string& path, int64_t offset) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return "";
  in.seekg(offset);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

int64_t Integer(const Json& json, const char* key, int64_t fallback) {
  const auto found = json.find(key);
  return found != json.end() ? io::JsonInteger(*found).value_or(fallback) : fallback;
}

double Number(const Json& json, const char* key, double fallback) {
  const auto found = json.find(key);
  return found != json.end() && found->is_number() ? found->get<double>() : fallback;
}

std::string Text(const Json& json, const char* key) {
  const auto found = json.find(key);
  return found != json.end() && found->is_string() ? found->get<std::string>() : "";
}

}  // namespace

RunProgress::RunProgress(std::string run_dir) : run_dir_(std::move(run_dir)) {}

TrainerState RunProgress::Poll(hier::v1::Progress* progress) {
  TrainerState state;
  const std::string text = ReadFrom((std::filesystem::path(run_dir_) / "status.json").string(), 0);
  const Json status = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (status.is_object()) {
    progress->set_epoch(Integer(status, "epoch", progress->epoch()));
    progress->set_step(Integer(status, "step", progress->step()));
    progress->set_total_steps(Integer(status, "total_steps", progress->total_steps()));
    progress->set_eta_seconds(Number(status, "eta_seconds", progress->eta_seconds()));
    if (const auto losses = status.find("losses"); losses != status.end() && losses->is_object()) {
      progress->set_loss(Number(*losses, "loss", progress->loss()));
      progress->set_metric_loss(Number(*losses, "metric", progress->metric_loss()));
      progress->set_hier_loss(Number(*losses, "hier", progress->hier_loss()));
    }
    state.state = Text(status, "state");
    state.message = Text(status, "message");
  }
  ReadEvaluations(progress);
  return state;
}

void RunProgress::ReadEvaluations(hier::v1::Progress* progress) {
  const std::string path = (std::filesystem::path(run_dir_) / "metrics.jsonl").string();
  std::error_code error;
  const auto size = std::filesystem::file_size(path, error);
  if (error) return;
  // A resumed run rewrites the file without the lines after its checkpoint.
  if (static_cast<int64_t>(size) < metrics_offset_) metrics_offset_ = 0;
  const std::string text = ReadFrom(path, metrics_offset_);
  const size_t complete = text.rfind('\n');
  if (complete == std::string::npos) return;
  metrics_offset_ += static_cast<int64_t>(complete + 1);
  std::istringstream lines(text.substr(0, complete + 1));
  for (std::string line; std::getline(lines, line);) {
    if (line.find("\"eval\"") == std::string::npos) continue;
    const Json record = Json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (!record.is_object() || Text(record, "kind") != "eval") continue;
    const auto recall = record.find("recall");
    if (recall == record.end() || !recall->is_object()) continue;
    progress->clear_recall();
    for (const auto& [k, value] : recall->items()) {
      if (value.is_number()) (*progress->mutable_recall())["R@" + k] = value.get<double>();
    }
  }
}

std::string TailOfFile(const std::string& path, int lines, int64_t max_bytes) {
  std::error_code error;
  const auto size = static_cast<int64_t>(std::filesystem::file_size(path, error));
  if (error) return "";
  const std::string text = ReadFrom(path, std::max<int64_t>(0, size - max_bytes));
  std::vector<std::string> kept;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
    // A live progress bar redraws its line after '\r': keep what was drawn last.
    if (const size_t cr = line.rfind('\r'); cr != std::string::npos) line.erase(0, cr + 1);
    if (line.empty()) continue;
    kept.push_back(std::move(line));
  }
  const size_t first = kept.size() > static_cast<size_t>(lines) ? kept.size() - lines : 0;
  std::string tail;
  for (size_t i = first; i < kept.size(); ++i)
    absl::StrAppend(&tail, i == first ? "" : "\n", kept[i]);
  return tail;
}

}  // namespace hier::server
