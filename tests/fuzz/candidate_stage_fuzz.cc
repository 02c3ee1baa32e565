// Fuzz target: reading a candidate stage back from snapshot bytes (the part of a snapshot after
// its checksum), for the approximate kinds. Whatever the bytes, Deserialize answers DataLoss or
// leaves a stage that searches without crashing.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/types/span.h"
#include "index/candidate_stage.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  constexpr int64_t kDim = 8;
  for (const char* kind : {"ivf-flat", "hnsw"}) {
    hier::index::CandidateStageOptions options;
    options.kind = kind;
    options.min_train_items = 16;
    absl::StatusOr<std::unique_ptr<hier::index::CandidateStage>> stage =
        hier::index::MakeCandidateStage(options, kDim, 1.0);
    if (!stage.ok()) __builtin_trap();
    if (!(*stage)->Deserialize(absl::MakeConstSpan(data, size)).ok()) continue;
    const std::vector<float> query(kDim, 0.01f);
    std::vector<int64_t> found(4);
    (*stage)->Search(query, 4, 1, hier::index::SearchEffort(), found.data());
    (void)(*stage)->MostEffort();
    (void)(*stage)->Describe();
  }
  return 0;
}
