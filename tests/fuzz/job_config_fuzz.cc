// Fuzz target: a training request (a serialized StartTrainingRequest) made safe to run, as
// JobRunner::Start does it: the job name and the TrainingConfig checked (confined to the data
// roots, then the trainer's own rules), the job id made, and the checked config mapped to
// hier-train's --config JSON and to the job store's JSON. The data root is the working
// directory, so relative paths can pass the confinement and reach the trainer's checks. Every
// check must answer a status; what they accept must map to JSON that reads back unchanged.
#include <google/protobuf/stubs/logging.h>
#include <google/protobuf/util/message_differencer.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "hier/v1/training.pb.h"
#include "server/training/job_config.h"
#include "server/training/job_store.h"
#include "trainer/train/train_config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // Protobuf logs every string field that is not UTF-8 it refuses: millions of lines a run.
  static const bool quiet = (google::protobuf::SetLogHandler(nullptr), true);
  (void)quiet;
  hier::v1::StartTrainingRequest request;
  if (!request.ParseFromArray(data, static_cast<int>(size))) return 0;
  static const std::vector<std::string> roots = {std::filesystem::current_path().string()};
  if (!hier::server::CheckJobName(request.name()).ok()) return 0;
  (void)hier::server::MakeJobId(request.name(), std::chrono::system_clock::now(), 0xbeef);
  const absl::StatusOr<hier::v1::TrainingConfig> checked =
      hier::server::CheckTrainingConfig(request.config(), roots);
  if (!checked.ok()) return 0;
  // What hier-train reads: a ConfigError escaping here would be a finding.
  hier::train::TrainConfig trainer;
  hier::train::ApplyJson(hier::server::ToTrainerJson(*checked), trainer, "job-config.json");
  // What the job store keeps (the known fields) and a restarted server reads back.
  hier::v1::TrainingConfig known = *checked;
  known.DiscardUnknownFields();
  const absl::StatusOr<std::string> stored = hier::server::ConfigToJson(known);
  if (!stored.ok()) __builtin_trap();
  hier::v1::TrainingConfig restored;
  if (!hier::server::ConfigFromJson(*stored, &restored).ok() ||
      !google::protobuf::util::MessageDifferencer::Equals(restored, known)) {
    __builtin_trap();
  }
  return 0;
}
