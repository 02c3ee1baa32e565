// A training request made safe to run: the job's name and id, the TrainingConfig checked by the
// trainer's own rules (trainer/train/train_config.h) and confined to the server's data roots,
// and the JSON file hier-train reads it from.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "hier/v1/training.pb.h"

namespace hier::server {

// The configuration as hier-train's --config JSON: the set fields only (so unset ones keep the
// trainer's defaults), under their snake_case names, numbers as JSON numbers.
std::string ToTrainerJson(const hier::v1::TrainingConfig& config);

// Checks `config` before anything runs. Path fields (data_dir, pretrained, backbone_file, groups;
// data_dir's default when unset) must have no ".." component (InvalidArgument) and, made absolute
// with symlinks resolved, lie under one of `data_roots` (PermissionDenied listing the roots);
// then the trainer's ApplyJson and Validate must accept it (InvalidArgument). Every message starts
// with "config.<field>". Returns the config with the path fields that were set made absolute and
// canonical, which is what the trainer is given.
absl::StatusOr<hier::v1::TrainingConfig> CheckTrainingConfig(
    const hier::v1::TrainingConfig& config, const std::vector<std::string>& data_roots);

// InvalidArgument naming "name" unless `name` is empty or matches [A-Za-z0-9_.-]{1,64}.
absl::Status CheckJobName(const std::string& name);

// "<name or 'job'>-<UTC yyyymmdd-hhmmss>-<4 hex digits of random>".
std::string MakeJobId(const std::string& name, std::chrono::system_clock::time_point now,
                      uint16_t random);

}  // namespace hier::server
