// One training run end to end: data, model, objective and optimiser from a TrainConfig; the loop
// with evaluation, checkpoints, the best model, the hierarchy and plots in the run directory; and
// resumption from the latest checkpoint.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "trainer/train/progress.h"
#include "trainer/train/train_config.h"

namespace hier::train {

struct TrainSummary {
  std::string run_dir;
  std::vector<int64_t> recall_k;
  std::vector<double> best_recall;  // at the best evaluation (empty: none ran)
  int64_t steps = 0;                // the run's position (steps done in all)
  int64_t total_steps = 0;          // epochs x steps per epoch
  int64_t steps_trained_here = 0;   // by this process (after a resume, fewer)
  double images_per_second = 0;     // all ranks together, over the steps this process trained
  double wall_seconds = 0;
  bool interrupted = false;
};

class Trainer {
 public:
  // `config` must have passed Validate(). Loads the data, builds the model, the objective and the
  // optimiser, and with config.resume restores the latest checkpoint.
  explicit Trainer(const TrainConfig& config);
  ~Trainer();

  // Trains to the last epoch, or until `*stop` becomes true, when it checkpoints where it is and
  // returns with `interrupted` set.
  TrainSummary Run(ProgressReporter& progress, const std::atomic<bool>* stop);

  // Records a failure that ended the run in status.json (state "failed" and the message).
  void MarkFailed(const std::string& message);

  const std::string& run_dir() const;

  // Whether this process is rank 0 of its job (the one that writes the run directory and reports).
  bool is_root() const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

// The run directory a configuration names, or runs/<UTC time>-<model>-<loss> when it names none.
std::string ResolveRunDir(const TrainConfig& config);

}  // namespace hier::train
