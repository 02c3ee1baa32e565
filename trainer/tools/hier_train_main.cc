// hier-train: trains HIER embeddings (`hier-train [train] --flag value ...`), scores a finished
// run's retrieval and hierarchy (`hier-train score --run-dir DIR [--groups FILE]`), exports
// Fashion-MNIST as an image folder (`hier-train export-images --out DIR`) and generates the
// shape-world data set with its class tree (`hier-train generate-shapes --out DIR`).
#include <c10/util/Exception.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <climits>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include "trainer/data/image_set.h"
#include "trainer/data/shape_world.h"
#include "trainer/io/atomic_file.h"
#include "trainer/io/png_writer.h"
#include "trainer/train/evaluation.h"
#include "trainer/train/launcher.h"
#include "trainer/train/progress.h"
#include "trainer/train/run_report.h"
#include "trainer/train/train_config.h"
#include "trainer/train/trainer.h"

namespace {

using hier::train::ConfigError;
using hier::train::TrainConfig;

std::atomic<bool> stop_requested{false};

void RequestStop(int) { stop_requested.store(true); }

constexpr const char* kUsage =
    "usage: hier-train [train] [--config FILE.json] [--flag value ...]\n"
    "       hier-train score --run-dir DIR [--groups CLASS_TREE.json]\n"
    "       hier-train export-images --out DIR [--split test|train] [--from I] [--limit N]\n"
    "                                [--data-dir D]\n"
    "       hier-train generate-shapes --out DIR [--seed N] [--images-per-class N]\n"
    "                                  [--image-size S] [--threads N]\n"
    "Trains embeddings on the Poincare ball with HIER; SIGINT/SIGTERM checkpoint and stop\n"
    "(continue with --resume --run-dir DIR).\n\nflags:\n";

// With --resume, the run directory's config.json is the base and the flags override it.
TrainConfig ReadTrainConfig(const std::vector<std::string>& args) {
  TrainConfig config;
  hier::train::ApplyFlags(args, config);
  const std::string saved = (std::filesystem::path(config.run_dir) / "config.json").string();
  if (config.resume && !config.run_dir.empty() && std::filesystem::exists(saved)) {
    TrainConfig base;
    hier::train::ApplyJson(hier::io::ReadFile(saved), base, saved);
    hier::train::ApplyFlags(args, base);
    config = base;
  }
  hier::train::Validate(config);
  return config;
}

// --nproc N (outside a job already): this process only supervises N ranks that train.
int LaunchRanks(const TrainConfig& config, const std::vector<std::string>& args) {
  hier::train::LaunchOptions options;
  options.nproc = config.nproc;
  options.args = args;
  options.args.insert(options.args.begin(), "train");
  const hier::train::LaunchResult result = hier::train::LaunchLocalRanks(options, &stop_requested);
  if (!result.message.empty()) {
    std::cerr << "hier-train: " << result.message << "; the job of " << config.nproc
              << " processes was stopped\n";
  }
  return result.exit_code;
}

int Train(const std::vector<std::string>& args) {
  const TrainConfig config = ReadTrainConfig(args);
  std::signal(SIGINT, RequestStop);
  std::signal(SIGTERM, RequestStop);
  // Started by a server that wants no trainer to outlive it (a cluster replica, whose job another
  // replica takes over): its death stops this run as SIGTERM would.
  if (const char* parent = std::getenv("HIER_TRAIN_EXIT_WITH_PARENT"); parent != nullptr) {
    ::prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (std::to_string(::getppid()) != parent) RequestStop(SIGTERM);  // it died already
  }
  if (config.nproc > 1 && std::getenv("WORLD_SIZE") == nullptr) return LaunchRanks(config, args);
  hier::train::Trainer trainer(config);
  std::ostream silent(nullptr);  // ranks other than 0 report nothing but errors
  hier::train::ProgressReporter progress(trainer.is_root() ? std::cerr : silent,
                                         ::isatty(STDERR_FILENO) != 0, config.log_every);
  hier::train::TrainSummary summary;
  try {
    summary = trainer.Run(progress, &stop_requested);
  } catch (const std::exception& e) {
    trainer.MarkFailed(e.what());
    throw;
  }
  if (!trainer.is_root()) return summary.interrupted ? 3 : 0;
  const std::filesystem::path run(summary.run_dir);
  std::printf("run directory: %s\n", run.c_str());
  std::printf("best model:    %s\n", (run / "best").c_str());
  std::printf("hierarchy:     %s\n", (run / "hierarchy.json").c_str());
  std::printf("plots:         %s\n", (run / "plots").c_str());
  for (size_t i = 0; i < summary.best_recall.size(); ++i) {
    std::printf("%sR@%lld %.4f", i == 0 ? "best test recall: " : "  ",
                static_cast<long long>(summary.recall_k[i]), summary.best_recall[i]);
  }
  std::printf(
      "\nstep %lld of %lld; this process trained %lld steps at %.0f images/s; wall time %s\n",
      static_cast<long long>(summary.steps), static_cast<long long>(summary.total_steps),
      static_cast<long long>(summary.steps_trained_here), summary.images_per_second,
      hier::train::FormatDuration(summary.wall_seconds).c_str());
  if (!summary.interrupted && !config.groups.empty()) {
    const hier::train::RunScore score = hier::train::ScoreRun(summary.run_dir, config.groups);
    std::printf("best model: %s\n", hier::train::FormatMetrics(score.metrics).c_str());
    std::printf(
        "hierarchy discovery: LCA-depth AUC %.4f, LCA-height AUC %.4f, "
        "centre-distance AUC %.4f\n",
        score.discovery->lca_depth_auc, score.discovery->lca_height_auc,
        score.discovery->centre_distance_auc);
  }
  return summary.interrupted ? 3 : 0;
}

int Score(const std::vector<std::string>& args) {
  std::string run_dir, groups;
  for (size_t i = 0; i + 1 < args.size(); i += 2) {
    if (args[i] == "--run-dir") {
      run_dir = args[i + 1];
    } else if (args[i] == "--groups") {
      groups = args[i + 1];
    } else {
      throw ConfigError("score: unknown flag " + args[i]);
    }
  }
  if (args.size() % 2 != 0) throw ConfigError("score: " + args.back() + ": missing value");
  if (run_dir.empty()) throw ConfigError("--run-dir: required by score");
  std::printf("%s\n", hier::train::ScoreRun(run_dir, groups).json.c_str());
  return 0;
}

// The "--flag value" pairs of a subcommand, each flag one of `known`; throws ConfigError for an
// unknown flag or one without its value.
std::map<std::string, std::string> SubcommandFlags(const std::string& command,
                                                   const std::vector<std::string>& args,
                                                   const std::vector<std::string>& known) {
  std::map<std::string, std::string> flags;
  for (size_t i = 0; i < args.size(); i += 2) {
    if (std::find(known.begin(), known.end(), args[i]) == known.end()) {
      throw ConfigError(command + ": unknown flag " + args[i]);
    }
    if (i + 1 == args.size()) throw ConfigError(command + ": " + args[i] + ": missing value");
    flags[args[i]] = args[i + 1];
  }
  return flags;
}

// The value of `flag`, or `fallback` when it is absent.
std::string TextFlag(const std::map<std::string, std::string>& flags, const std::string& flag,
                     const std::string& fallback) {
  const auto it = flags.find(flag);
  return it == flags.end() ? fallback : it->second;
}

// The integer value of `flag` (`fallback` when absent), which must lie in [min, max].
int64_t IntegerFlag(const std::map<std::string, std::string>& flags, const std::string& flag,
                    int64_t fallback, int64_t min, int64_t max) {
  const auto it = flags.find(flag);
  if (it == flags.end()) return fallback;
  size_t used = 0;
  int64_t value = 0;
  try {
    value = std::stoll(it->second, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used == 0 || used != it->second.size()) {
    throw ConfigError(flag + ": expected an integer, got '" + it->second + "'");
  }
  if (value < min || value > max) {
    throw ConfigError(flag + ": must be in [" + std::to_string(min) + ", " + std::to_string(max) +
                      "], got " + it->second);
  }
  return value;
}

// Writes Fashion-MNIST images [from, from + limit) as a folder of class folders of PNG files
// (what `hier items add` and the folder layout read), each named by its index in the split.
int ExportImages(const std::vector<std::string>& args) {
  const auto flags = SubcommandFlags("export-images", args,
                                     {"--from", "--data-dir", "--split", "--limit", "--out"});
  const std::string data_dir = TextFlag(flags, "--data-dir", "/usr/share/datasets/fashion-mnist");
  const std::string split = TextFlag(flags, "--split", "test");
  const std::string out = TextFlag(flags, "--out", "");
  const int64_t limit = IntegerFlag(flags, "--limit", 0, 0, INT64_MAX);  // 0: all
  const int64_t from = IntegerFlag(flags, "--from", 0, 0, INT64_MAX);
  if (out.empty()) throw ConfigError("--out: required by export-images");
  if (split != "test" && split != "train") throw ConfigError("--split: test or train");
  const hier::data::ImageSet set = hier::data::LoadFashionMnist(
      data_dir, split == "test" ? hier::data::Split::kTest : hier::data::Split::kTrain,
      limit > 0 ? from + limit : 0);
  const int64_t pixels = set.height * set.width;
  for (int64_t i = from; i < set.count; ++i) {
    std::string folder = set.class_names[set.labels[i]];
    std::replace(folder.begin(), folder.end(), '/', '-');  // "T-shirt/top"
    std::filesystem::create_directories(std::filesystem::path(out) / folder);
    char name[32];
    std::snprintf(name, sizeof(name), "%05lld.png", static_cast<long long>(i));
    hier::io::WriteFileAtomically(
        (std::filesystem::path(out) / folder / name).string(),
        hier::io::EncodePng(set.pixels.data() + i * pixels, static_cast<int>(set.width),
                            static_cast<int>(set.height), 1));
  }
  std::printf("%lld %s images in %s\n",
              static_cast<long long>(std::max<int64_t>(0, set.count - from)), split.c_str(),
              out.c_str());
  return 0;
}

// Writes the shape world (trainer/data/shape_world.h) and prints how to train on it.
int GenerateShapes(const std::vector<std::string>& args) {
  const auto flags =
      SubcommandFlags("generate-shapes", args,
                      {"--out", "--seed", "--images-per-class", "--image-size", "--threads"});
  const std::string out = TextFlag(flags, "--out", "");
  if (out.empty()) throw ConfigError("--out: required by generate-shapes");
  hier::data::ShapeWorldOptions options;
  options.seed = static_cast<uint64_t>(IntegerFlag(flags, "--seed", 0, 0, INT64_MAX));
  // WriteShapeWorld checks the ranges; these bounds only keep the values in their types.
  options.images_per_class =
      IntegerFlag(flags, "--images-per-class", options.images_per_class, 0, INT64_MAX);
  options.image_size =
      static_cast<int>(IntegerFlag(flags, "--image-size", options.image_size, 0, INT_MAX));
  options.threads = static_cast<int>(IntegerFlag(flags, "--threads", 0, 0, INT_MAX));
  const auto start = std::chrono::steady_clock::now();
  const hier::data::ShapeWorldFiles files = hier::data::WriteShapeWorld(out, options);
  const std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
  std::printf("%lld images of %d classes in %.1f s: %lld train, %lld test (class-disjoint)\n",
              static_cast<long long>(files.train_images + files.test_images),
              hier::data::kShapeWorldClasses, took.count(),
              static_cast<long long>(files.train_images),
              static_cast<long long>(files.test_images));
  std::printf("images:     %s\nlist:       %s\nclass tree: %s\n", files.image_dir.c_str(),
              files.list_file.c_str(), files.tree_file.c_str());
  std::printf(
      "train on it: hier-train --dataset list --data-dir %s --image-size %d --resize %d "
      "--crop-scale-min 0.5 --groups %s\n",
      files.list_file.c_str(), options.image_size, options.image_size, files.tree_file.c_str());
  return 0;
}

// "hier-train", or "hier-train (rank R)" inside a data-parallel job, to start error lines with.
std::string Me() {
  const char* rank = std::getenv("RANK");
  return rank != nullptr && std::getenv("WORLD_SIZE") != nullptr
             ? std::string("hier-train (rank ") + rank + ")"
             : std::string("hier-train");
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  std::string command = "train";
  if (!args.empty() && args[0].rfind("--", 0) != 0) {
    command = args[0];
    args.erase(args.begin());
  }
  try {
    if (command == "help" || (!args.empty() && (args[0] == "--help" || args[0] == "-h"))) {
      std::cout << kUsage << hier::train::ConfigHelp();
      return 0;
    }
    if (command == "train") return Train(args);
    if (command == "score") return Score(args);
    if (command == "export-images") return ExportImages(args);
    if (command == "generate-shapes") return GenerateShapes(args);
    throw ConfigError("unknown command '" + command +
                      "' (train, score, export-images, generate-shapes or help)");
  } catch (const ConfigError& e) {
    std::cerr << Me() << ": " << e.what() << "\n";
    return 2;
  } catch (const c10::Error& e) {
    std::cerr << Me() << ": " << e.what_without_backtrace() << "\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << Me() << ": " << e.what() << "\n";
    return 1;
  }
}
