// Training progress for people: on a terminal a live one-line bar (epoch, step, loss terms,
// images/s, ETA), otherwise plain lines every few steps, so logs stay readable.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <ostream>
#include <string>

namespace hier::train {

struct ProgressSnapshot {
  int64_t epoch = 0;  // 0-based epoch being trained
  int64_t epochs = 0;
  int64_t step = 0;  // steps done
  int64_t total_steps = 0;
  std::map<std::string, double> losses;
  double images_per_second = 0;
  double eta_seconds = 0;
};

class ProgressReporter {
 public:
  // `live`: redraw one line with '\r' (a terminal); otherwise print a line every `every` steps.
  ProgressReporter(std::ostream& out, bool live, int64_t every);

  void Update(const ProgressSnapshot& snapshot);

  // A line of its own (evaluation results, checkpoints), not overwritten by the bar.
  void Message(const std::string& line);

 private:
  std::ostream& out_;
  const bool live_;
  const int64_t every_;
  bool bar_drawn_ = false;
  std::chrono::steady_clock::time_point last_draw_;
};

// "1h02m", "3m07s", "42s".
std::string FormatDuration(double seconds);

}  // namespace hier::train
