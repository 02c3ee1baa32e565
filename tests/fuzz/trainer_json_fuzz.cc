// Fuzz target: the trainer's JSON readers. The first byte picks the reader ('0' to '2', counted
// from '0' modulo 3), the rest is the file: the training configuration (--config: ApplyJson, then
// Validate), a class tree (--groups) and a checkpoint's manifest.json. Each must refuse bad input
// with its own error (ConfigError, c10::Error); any other exception escaping is a finding, as it
// would end hier-train.
#include <c10/util/Exception.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>

#include "tests/fuzz/fuzz_scratch.h"
#include "trainer/analysis/class_tree.h"
#include "trainer/train/checkpoint.h"
#include "trainer/train/train_config.h"

namespace {

// A configuration that validates is written to the run directory (ToJson) and read back on
// resume and by the server: it must read back as itself.
void ReadTrainConfig(const std::string& text) {
  hier::train::TrainConfig config;
  try {
    hier::train::ApplyJson(text, config, "fuzz");
    hier::train::Validate(config);
  } catch (const hier::train::ConfigError&) {
    return;
  }
  const std::string json = hier::train::ToJson(config);
  hier::train::TrainConfig again;
  hier::train::ApplyJson(json, again, "config.json");
  if (hier::train::ToJson(again) != json) __builtin_trap();
}

// A class tree is read, then placed on its own classes as evaluation does.
void ReadClassTree(const std::string& text) {
  try {
    const hier::analysis::ClassTree tree = hier::analysis::ClassTree::Parse(text, "fuzz");
    const hier::analysis::LabelHierarchy labels = tree.ForLabels(tree.ClassNames());
    for (int64_t label = 0; label < labels.num_labels(); ++label) {
      if (labels.LcaHeight(0, label) > tree.Height()) __builtin_trap();
      (void)labels.SuperCategory(label);
    }
  } catch (const c10::Error&) {
  }
}

// The manifest of a checkpoint folder whose model.pt is empty (a manifest can list it with the
// empty file's size and SHA-256, so the fuzzer gets past the file checks).
void ReadManifest(const uint8_t* data, size_t size) {
  const std::filesystem::path& dir = hier::fuzz::ScratchDir("trainer_json_fuzz");
  hier::fuzz::WriteScratchFile(dir / "model.pt", nullptr, 0);
  hier::fuzz::WriteScratchFile(dir / "manifest.json", data, size);
  try {
    (void)hier::train::ReadVerifiedManifest(dir.string());
  } catch (const c10::Error&) {
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string text(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (static_cast<uint8_t>(data[0] - '0') % 3) {
    case 0:
      ReadTrainConfig(text);
      break;
    case 1:
      ReadClassTree(text);
      break;
    default:
      ReadManifest(data + 1, size - 1);
  }
  return 0;
}
