#include "index/recall_tuning.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "absl/strings/str_cat.h"

namespace hier::index {
namespace {

// Overfetch is tried at k, 2k, ... 2^kOverfetchDoublings k.
constexpr int kOverfetchDoublings = 7;
// Bisection steps between the last failing and the first reaching doubling of a knob.
constexpr int kRefinements = 3;
// A larger overfetch is not tried once the best at the current one is this much slower than the
// fastest found (re-ranking more candidates only costs more from there on).
constexpr double kGivingUpSlowdown = 2.0;
// Reaches: how many standard errors the measured recall must clear the target by.
constexpr double kStandardErrors = 2.0;

}  // namespace

std::string RecallTargetProblem(const RecallTarget& target) {
  if (!(target.recall > 0 && target.recall <= 1)) {
    return absl::StrCat("target_recall: must be in (0, 1], got ", target.recall);
  }
  if (target.k < 1) return absl::StrCat("k: must be >= 1, got ", target.k);
  if (target.queries < 1) return absl::StrCat("sample_queries: must be >= 1, got ", target.queries);
  return "";
}

EffortMeasurement MeasurementOf(const std::vector<double>& recalls, double seconds) {
  EffortMeasurement measured;
  measured.seconds = seconds;
  const double n = static_cast<double>(recalls.size());
  if (recalls.empty()) return measured;
  double sum = 0, squares = 0;
  for (const double recall : recalls) {
    sum += recall;
    squares += recall * recall;
  }
  measured.recall = sum / n;
  if (recalls.size() > 1) {
    const double deviations = squares - n * measured.recall * measured.recall;
    const double variance = std::max(0.0, deviations) / (n - 1);
    measured.recall_error = std::sqrt(variance / n);
  }
  return measured;
}

bool Reaches(const EffortMeasurement& measured, double target) {
  return measured.recall - kStandardErrors * measured.recall_error >= target;
}

RecallTuning ChooseEffort(const RecallTarget& target, const SearchEffort& most,
                          const SearchEffort& start,
                          const std::function<EffortMeasurement(const SearchEffort&)>& measure,
                          const std::function<bool()>& stopping) {
  const bool lists = most.nprobe > 0;
  const bool graph = !lists && most.ef_search > 0;
  // What the stage makes of `start` (an IVF visits at most all its lists).
  SearchEffort current = start;
  if (lists) current.nprobe = std::clamp<int64_t>(start.nprobe, 1, most.nprobe);
  if (graph) current.ef_search = std::clamp<int64_t>(start.ef_search, 1, most.ef_search);
  RecallTuning tuning;
  tuning.target = target;
  tuning.effort = current;
  const auto stop = [&stopping] { return stopping && stopping(); };
  // Measures a setting and keeps it when it is the fastest reaching the target, or, while none
  // has, the one with the most recall.
  const auto try_effort = [&](const SearchEffort& effort) {
    const EffortMeasurement measured = measure(effort);
    const bool reached = Reaches(measured, target.recall);
    const bool better = reached ? !tuning.reached || measured.seconds < tuning.measured.seconds
                                : !tuning.reached && (tuning.settings_tried == 0 ||
                                                      measured.recall > tuning.measured.recall);
    ++tuning.settings_tried;
    if (better) {
      tuning.effort = effort;
      tuning.measured = measured;
      tuning.reached = reached;
    }
    return measured;
  };
  // The settings in use first: when they reach the target, nothing slower needs measuring.
  if (!stop()) try_effort(current);
  // Whether a setting measured `seconds` and missed: every larger one is slower still.
  const auto too_slow = [&](double seconds) {
    return tuning.reached && seconds >= tuning.measured.seconds;
  };
  int64_t ceiling = lists ? most.nprobe : most.ef_search;
  for (int doubling = 0; doubling <= kOverfetchDoublings && !stop(); ++doubling) {
    const int64_t overfetch = target.k << doubling;
    const auto with = [&](int64_t knob) {
      SearchEffort effort = current;
      effort.overfetch = overfetch;
      if (lists) effort.nprobe = knob;
      if (graph) effort.ef_search = knob;
      return effort;
    };
    const double fastest = tuning.reached ? tuning.measured.seconds : 0;
    if (!lists && !graph) {
      const EffortMeasurement measured = try_effort(with(0));
      // More candidates only cost more.
      if (Reaches(measured, target.recall) || too_slow(measured.seconds)) break;
      continue;
    }
    // The least knob that reaches the target: doublings from the floor, then bisection between
    // the last failing and the first reaching one. HNSW's candidate list is never shorter than
    // the candidates it returns, hence its floor.
    const int64_t floor = graph ? std::min(overfetch, most.ef_search) : 1;
    ceiling = std::max(ceiling, floor);
    int64_t failing = floor - 1, reaching = 0;
    double reaching_seconds = 0;
    const auto probe = [&](int64_t knob) {
      const EffortMeasurement measured = try_effort(with(knob));
      if (!Reaches(measured, target.recall)) {
        failing = knob;
      } else {
        reaching = knob;
        reaching_seconds = measured.seconds;
      }
      return measured;
    };
    bool hopeless = false;  // even this overfetch's least setting is slower than the fastest
    for (int64_t knob = floor; !stop(); knob = std::min(2 * knob, ceiling)) {
      const EffortMeasurement measured = probe(knob);
      if (reaching != 0 || knob >= ceiling) break;
      if (too_slow(measured.seconds)) {
        hopeless = knob == floor;
        break;
      }
    }
    if (hopeless) break;          // and a larger overfetch costs more again
    if (reaching == 0) continue;  // not with this many candidates
    for (int step = 0; step < kRefinements && reaching - failing > 1 && !stop(); ++step) {
      probe(failing + (reaching - failing) / 2);
    }
    // More candidates never need more lists or a longer list to reach the same recall.
    ceiling = reaching;
    if (fastest > 0 && reaching_seconds > kGivingUpSlowdown * fastest) break;
  }
  return tuning;
}

}  // namespace hier::index
