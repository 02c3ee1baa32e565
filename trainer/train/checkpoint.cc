#include "trainer/train/checkpoint.h"

#include <c10/util/Exception.h>
#include <fcntl.h>
#include <stdio.h>
#include <torch/serialize.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "trainer/io/atomic_file.h"
#include "trainer/io/json_integer.h"
#include "trainer/io/sha256.h"

namespace hier::train {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;

constexpr const char* kManifest = "manifest.json";
constexpr const char* kFormat = "hier-serve checkpoint";
constexpr int kFormatVersion = 2;
constexpr const char* kModelFile = "model.pt";
constexpr const char* kObjectiveFile = "objective.pt";
constexpr const char* kOptimizerFile = "optimizer.pt";
constexpr const char* kBackboneFile = "backbone.ts";

Json PositionJson(const TrainingPosition& p) {
  return {{"epoch", p.epoch},
          {"batch", p.batch},
          {"step", p.step},
          {"best_recall", p.best_recall},
          {"best_step", p.best_step}};
}

Json InfoJson(const CheckpointInfo& info) {
  const model::EmbeddingNetOptions& a = info.architecture;
  const data::Preprocessing& p = info.preprocessing;
  return {{"format", kFormat},
          {"version", kFormatVersion},
          {"architecture",
           {{"name", a.architecture()},
            {"in_channels", a.in_channels()},
            {"input_size", a.input_size()},
            {"backbone_file", a.backbone_file().empty() ? "" : kBackboneFile},
            {"emb", a.emb()},
            {"c", a.c()},
            {"clip_r", a.clip_r()}}},
          {"preprocessing",
           {{"channels", p.channels},
            {"resize", p.resize},
            {"crop", p.crop},
            {"mean", p.mean},
            {"std", p.std}}},
          {"classes", info.class_names},
          {"position", PositionJson(info.position)},
          {"config", Json::parse(info.config_json)}};
}

CheckpointInfo InfoFromJson(const Json& json) {
  TORCH_CHECK(
      json.value("format", "") == kFormat && json.value("version", Json()) == kFormatVersion,
      "not a version ", kFormatVersion, " checkpoint manifest");
  CheckpointInfo info;
  const Json& a = json.at("architecture");
  info.architecture.architecture(a.at("name").get<std::string>())
      .in_channels(io::JsonIntegerAt(a, "in_channels"))
      .input_size(io::JsonIntegerAt(a, "input_size"))
      .backbone_file(a.at("backbone_file").get<std::string>())
      .emb(io::JsonIntegerAt(a, "emb"))
      .c(a.at("c").get<double>())
      .clip_r(a.at("clip_r").get<double>());
  const Json& p = json.at("preprocessing");
  info.preprocessing.channels = io::JsonIntegerAt(p, "channels");
  info.preprocessing.resize = io::JsonIntegerAt(p, "resize");
  info.preprocessing.crop = io::JsonIntegerAt(p, "crop");
  info.preprocessing.mean = p.at("mean").get<std::vector<double>>();
  info.preprocessing.std = p.at("std").get<std::vector<double>>();
  info.class_names = json.at("classes").get<std::vector<std::string>>();
  const Json& pos = json.at("position");
  info.position.epoch = io::JsonIntegerAt(pos, "epoch");
  info.position.batch = io::JsonIntegerAt(pos, "batch");
  info.position.step = io::JsonIntegerAt(pos, "step");
  info.position.best_recall = pos.at("best_recall").get<std::vector<double>>();
  info.position.best_step = io::JsonIntegerAt(pos, "best_step");
  info.config_json = json.at("config").dump(2);
  return info;
}

// The checkpoint folder name of a step: zero-padded so names sort like steps.
std::string StepName(int64_t step) {
  std::string digits = std::to_string(step);
  return std::string(digits.size() < 10 ? 10 - digits.size() : 0, '0') + digits;
}

bool IsStepName(const std::string& name) {
  return !name.empty() && std::all_of(name.begin(), name.end(), ::isdigit);
}

bool IsStaging(const std::string& name) { return name.rfind(io::kTempFilePrefix, 0) == 0; }

std::string StagingName(const std::string& name) {
  return io::kTempFilePrefix + name + "-" + std::to_string(::getpid());
}

std::vector<fs::path> StepFolders(const std::string& checkpoints_dir) {
  std::vector<fs::path> folders;
  if (!fs::is_directory(checkpoints_dir)) return folders;
  for (const auto& entry : fs::directory_iterator(checkpoints_dir)) {
    if (entry.is_directory() && IsStepName(entry.path().filename().string())) {
      folders.push_back(entry.path());
    }
  }
  std::sort(folders.begin(), folders.end());
  return folders;
}

// Files of a checkpoint are never modified in place, so a hard link is as good as a copy.
void LinkOrCopy(const fs::path& from, const fs::path& to) {
  std::error_code linked;
  fs::create_hard_link(from, to, linked);
  if (linked) fs::copy_file(from, to);
}

// Checks that the manifest lists the model and that every file it lists is a file of the folder
// with the listed size and SHA-256. Throws Json::exception for a manifest of another shape.
void VerifyFiles(const fs::path& dir, const Json& manifest) {
  const Json& files = manifest.at("files");
  TORCH_CHECK(files.contains(kModelFile), "manifest.json lists no ", kModelFile);
  for (const auto& [file, expected] : files.items()) {
    // Only names of the folder's own files: nothing a manifest says is read from elsewhere.
    TORCH_CHECK(!file.empty() && file != "." && file != ".." && file.find('/') == std::string::npos,
                "manifest.json lists '", file, "', which is not a file name");
    const fs::path path = dir / file;
    TORCH_CHECK(fs::is_regular_file(path), file, " is missing");
    const Json& bytes = expected.at("bytes");
    TORCH_CHECK(bytes.is_number_unsigned(), "manifest.json gives ", file, " the size ",
                bytes.dump());
    TORCH_CHECK(fs::file_size(path) == bytes.get<uintmax_t>(), file, " has ", fs::file_size(path),
                " bytes, the manifest says ", bytes.get<uintmax_t>());
    TORCH_CHECK(io::Sha256OfFile(path.string()) == expected.at("sha256").get<std::string>(), file,
                " does not match its SHA-256");
  }
}

}  // namespace

std::string SaveCheckpoint(const std::string& checkpoints_dir, const TrainedState& state,
                           const CheckpointInfo& info) {
  const std::string name = StepName(info.position.step);
  const fs::path final_dir = fs::path(checkpoints_dir) / name;
  const fs::path staging = fs::path(checkpoints_dir) / StagingName(name);
  fs::create_directories(checkpoints_dir);
  fs::remove_all(staging);
  fs::create_directory(staging);
  torch::save(state.net, (staging / kModelFile).string());
  torch::save(state.objective, (staging / kObjectiveFile).string());
  std::vector<std::string> files = {kModelFile, kObjectiveFile};
  if (!info.architecture.backbone_file().empty()) {
    // The scripted backbone's structure (its weights are in the model file) travels with it.
    LinkOrCopy(info.architecture.backbone_file(), staging / kBackboneFile);
    files.push_back(kBackboneFile);
  }
  if (state.optimizer != nullptr) {
    torch::save(*state.optimizer, (staging / kOptimizerFile).string());
    files.push_back(kOptimizerFile);
  }
  Json manifest = InfoJson(info);
  for (const std::string& file : files) {
    const fs::path path = staging / file;
    manifest["files"][file] = {{"bytes", fs::file_size(path)},
                               {"sha256", io::Sha256OfFile(path.string())}};
  }
  io::WriteFileAtomically((staging / kManifest).string(), manifest.dump(2));
  // A checkpoint of the same step (a resumed run redoing it) is moved aside in one rename, so no
  // half-deleted folder ever carries a step's name.
  const fs::path replaced = fs::path(checkpoints_dir) / StagingName(name + "-old");
  if (fs::exists(final_dir)) fs::rename(final_dir, replaced);
  io::PublishDirectory(staging.string(), final_dir.string());
  fs::remove_all(replaced);
  return final_dir.string();
}

CheckpointInfo ReadVerifiedManifest(const std::string& checkpoint_dir) {
  const fs::path dir(checkpoint_dir);
  Json manifest;
  try {
    manifest = Json::parse(io::ReadFile((dir / kManifest).string()));
  } catch (const Json::exception& e) {
    TORCH_CHECK(false, "checkpoint ", checkpoint_dir, ": manifest.json is not valid JSON (",
                e.what(), ")");
  }
  // Every problem is one error naming the folder, a manifest of another shape (Json::exception,
  // std::invalid_argument) or a name the file system refuses (filesystem_error) included, so that
  // LatestCheckpoint passes over a damaged checkpoint.
  try {
    VerifyFiles(dir, manifest);
    CheckpointInfo info = InfoFromJson(manifest);
    if (!info.architecture.backbone_file().empty()) {
      info.architecture.backbone_file((dir / info.architecture.backbone_file()).string());
    }
    return info;
  } catch (const c10::Error& e) {
    TORCH_CHECK(false, "checkpoint ", checkpoint_dir, ": ", e.what_without_backtrace());
  } catch (const std::exception& e) {
    TORCH_CHECK(false, "checkpoint ", checkpoint_dir, ": manifest.json: ", e.what());
  }
}

CheckpointInfo RestoreCheckpoint(const std::string& checkpoint_dir, const TrainedState& state) {
  CheckpointInfo info = ReadVerifiedManifest(checkpoint_dir);
  const fs::path dir(checkpoint_dir);
  model::EmbeddingNet net = state.net;
  core::Objective objective = state.objective;
  torch::load(net, (dir / kModelFile).string());
  torch::load(objective, (dir / kObjectiveFile).string());
  if (state.optimizer != nullptr) {
    TORCH_CHECK(fs::is_regular_file(dir / kOptimizerFile), "checkpoint ", checkpoint_dir,
                " has no optimizer state to resume from");
    torch::load(*state.optimizer, (dir / kOptimizerFile).string());
  }
  return info;
}

InferenceModel LoadInferenceModel(const std::string& checkpoint_dir) {
  InferenceModel loaded;
  loaded.info = ReadVerifiedManifest(checkpoint_dir);
  loaded.net = model::EmbeddingNet(loaded.info.architecture);
  torch::load(loaded.net, (fs::path(checkpoint_dir) / kModelFile).string());
  loaded.net->eval();
  return loaded;
}

std::optional<std::string> LatestCheckpoint(const std::string& checkpoints_dir) {
  const std::vector<fs::path> folders = StepFolders(checkpoints_dir);
  for (auto it = folders.rbegin(); it != folders.rend(); ++it) {
    try {
      ReadVerifiedManifest(it->string());
      return it->string();
    } catch (const c10::Error&) {
      // A damaged checkpoint: fall back to the one before it.
    }
  }
  return std::nullopt;
}

void PruneCheckpoints(const std::string& checkpoints_dir, int64_t keep) {
  const std::vector<fs::path> folders = StepFolders(checkpoints_dir);
  const int64_t excess = static_cast<int64_t>(folders.size()) - keep;
  for (int64_t i = 0; i < excess; ++i) fs::remove_all(folders[i]);
  for (const auto& entry : fs::directory_iterator(checkpoints_dir)) {
    if (IsStaging(entry.path().filename().string())) fs::remove_all(entry.path());
  }
}

void PublishCopy(const std::string& checkpoint_dir, const std::string& target_dir) {
  const fs::path target(target_dir);
  const fs::path staging = target.parent_path() / StagingName(target.filename().string());
  fs::remove_all(staging);
  fs::create_directory(staging);
  for (const auto& entry : fs::directory_iterator(checkpoint_dir)) {
    LinkOrCopy(entry.path(), staging / entry.path().filename());
  }
  if (!fs::exists(target)) {
    io::PublishDirectory(staging.string(), target.string());
    return;
  }
  for (const auto& entry : fs::directory_iterator(staging)) io::SyncFile(entry.path().string());
  io::SyncDirectory(staging.string());
  // Swap the two folders in one step, so `target` always names a whole copy.
  TORCH_CHECK(
      ::renameat2(AT_FDCWD, staging.c_str(), AT_FDCWD, target.c_str(), RENAME_EXCHANGE) == 0,
      "checkpoint: cannot replace ", target_dir, ": ", std::strerror(errno));
  io::SyncDirectory(target.parent_path().string());
  fs::remove_all(staging);
}

}  // namespace hier::train
