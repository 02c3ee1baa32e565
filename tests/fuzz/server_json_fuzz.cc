// Fuzz target: the JSON files the server reads. The first byte picks the file ('0' to '4', counted
// from '0' modulo 5), the rest is its content: the state folder's serving.json, a run's
// hierarchy.json (then the chains above the origin), a run's status.json and metrics.jsonl as
// training progress, and a checkpoint's manifest.json as the model catalog describes it. Each must
// answer a status (or leave progress as it was); an exception escaping is a finding.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <vector>

#include "hier/v1/training.pb.h"
#include "server/app/serving_record.h"
#include "server/model/image_embedder.h"
#include "server/model/model_catalog.h"
#include "server/model/proxy_hierarchy.h"
#include "server/training/run_progress.h"
#include "tests/fuzz/fuzz_scratch.h"

namespace {

namespace fs = std::filesystem;

// A folder of the scratch folder holding only `file`, written with the input.
fs::path FolderWith(const char* folder, const char* file, const uint8_t* data, size_t size) {
  const fs::path dir = hier::fuzz::ScratchDir("server_json_fuzz") / folder;
  fs::create_directories(dir);
  hier::fuzz::WriteScratchFile(dir / file, data, size);
  return dir;
}

void ReadHierarchy(const fs::path& run) {
  absl::StatusOr<std::shared_ptr<const hier::server::ProxyHierarchy>> hierarchy =
      hier::server::ProxyHierarchy::Load(run.string());
  if (!hierarchy.ok()) return;
  const hier::server::ProxyHierarchy& tree = **hierarchy;
  const std::vector<float> origin(tree.dim(), 0.0f);
  const auto nearest = std::min<int64_t>(3, static_cast<int64_t>(tree.proxies().size()));
  if (!tree.ChainsAbove(origin, nearest, "point").ok()) __builtin_trap();
}

void ReadProgress(const fs::path& run) {
  hier::v1::Progress progress;
  hier::server::RunProgress(run.string()).Poll(&progress);
  // A run's best/ is refused while status.json says it is running.
  hier::server::ModelDescription model;
  model.checkpoint_dir = (run / "best").string();
  model.run_dir = run.string();
  (void)hier::server::CheckNotTraining(model);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const uint8_t* content = data + 1;
  const size_t bytes = size - 1;
  switch (static_cast<uint8_t>(data[0] - '0') % 5) {
    case 0:
      (void)hier::server::ReadServingRecord(FolderWith("state", "serving.json", content, bytes));
      break;
    case 1:
      ReadHierarchy(FolderWith("hierarchy", "hierarchy.json", content, bytes));
      break;
    case 2:
      ReadProgress(FolderWith("status", "status.json", content, bytes));
      break;
    case 3:
      ReadProgress(FolderWith("metrics", "metrics.jsonl", content, bytes));
      break;
    default: {
      const fs::path checkpoint = FolderWith("checkpoint", "manifest.json", content, bytes);
      hier::fuzz::WriteScratchFile(checkpoint / "model.pt", nullptr, 0);
      (void)hier::server::ReadModelDescription(checkpoint.string());
    }
  }
  return 0;
}
