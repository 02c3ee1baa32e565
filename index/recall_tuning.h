// Choosing how hard searches look (SearchEffort: nprobe, efSearch, overfetch) for a recall
// target, as FAISS's AutoTune does for its operating points: every setting tried is measured on a
// sample of queries whose exact neighbours are known, and the fastest one that reaches the target
// wins. HyperbolicIndex::TuneForRecall supplies the sample and the measurement.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "index/candidate_stage.h"

namespace hier::index {

// What tuning aims at: the share of each query's exact k nearest items a search returns.
struct RecallTarget {
  double recall = 0.99;
  int64_t k = 10;
  int64_t queries = 200;  // gallery items searched for (every item when there are fewer)
  uint64_t seed = 1;      // which items
};

// One setting measured on the sample.
struct EffortMeasurement {
  double recall = 0;          // mean over the sample's queries of |found ∩ exact| / k
  double recall_error = 0;    // the standard error of that mean
  double seconds = 0;         // for the whole sample, one query at a time
};

// The measurement of a sample whose queries found `recalls` (one each) in `seconds`: their mean
// and its standard error.
EffortMeasurement MeasurementOf(const std::vector<double>& recalls, double seconds);

// Whether `measured` reaches `target` with confidence: its recall less two standard errors (a
// setting chosen as the least to pass on one sample would otherwise fall short on other queries
// about half the time).
bool Reaches(const EffortMeasurement& measured, double target);

// What tuning chose and what it measured with it.
struct RecallTuning {
  RecallTarget target;
  SearchEffort effort;
  EffortMeasurement measured;
  bool reached = false;     // Reaches(measured, target.recall) (else the most recall tried)
  int64_t queries = 0;      // the sample's size
  int64_t settings_tried = 0;
  double seconds = 0;       // the tuning's own time, ground truth included
};

// InvalidArgument-style message naming the field ("" when the target is usable).
std::string RecallTargetProblem(const RecallTarget& target);

// The fastest setting whose measured recall reaches `target.recall`, among `start` (the settings
// in use, measured first) and: overfetch k, 2k, 4k, ... (at most 128k), and for each the least
// nprobe (IVF) or ef_search (HNSW) up to `most` that reaches it, found by doublings and then
// bisection between the last two (a knob `most` leaves at 0 is not searched); a setting that
// misses the target and is already slower than the fastest found ends its overfetch's doublings.
// When no setting reaches the target, the one with the most recall. `measure` runs the sample
// with a setting; `stopping` (may be empty) ends the search early with what it has. `start` is
// the effort returned when nothing was measured.
RecallTuning ChooseEffort(const RecallTarget& target, const SearchEffort& most,
                          const SearchEffort& start,
                          const std::function<EffortMeasurement(const SearchEffort&)>& measure,
                          const std::function<bool()>& stopping);

}  // namespace hier::index
