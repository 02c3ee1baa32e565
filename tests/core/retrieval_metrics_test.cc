#include "trainer/core/retrieval_metrics.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <limits>
#include <numeric>
#include <string>

#include "tests/core/error_message.h"
#include "tests/core/test_data.h"
#include "trainer/analysis/class_tree.h"
#include "trainer/core/poincare.h"
#include "trainer/core/recall.h"

namespace hier::testing {
namespace {

using core::RecallQuery;
using core::RetrievalMetrics;

// 1-D points, a line through the origin: with c = 1, d(0, x) = 2 artanh|x|, so a query at the
// origin ranks the gallery by |x|, and x and -x tie exactly.
at::Tensor OnALine(const std::vector<double>& xs) {
  return at::tensor(xs, at::kDouble).unsqueeze(1);
}

RecallQuery Set(const std::vector<double>& xs, const std::vector<int64_t>& labels,
                int64_t first_id = 0) {
  const int64_t n = static_cast<int64_t>(xs.size());
  return {OnALine(xs), at::tensor(labels, at::kLong),
          at::arange(first_id, first_id + n, at::kLong)};
}

// Queries at the origin, with ids (1000, 1001, ...) that no gallery item of these tests has.
RecallQuery AtOrigin(const std::vector<int64_t>& labels) {
  return Set(std::vector<double>(labels.size(), 0.0), labels, 1000);
}

void ExpectNear(const std::vector<double>& actual, const std::vector<double>& expected) {
  ASSERT_EQ(actual.size(), expected.size());
  for (size_t i = 0; i < actual.size(); ++i) EXPECT_DOUBLE_EQ(actual[i], expected[i]) << "at " << i;
}

void ExpectPrecisionAtR(const RetrievalMetrics& metrics, double map_at_r, double r_precision,
                        int64_t scored_queries) {
  EXPECT_DOUBLE_EQ(metrics.map_at_r, map_at_r);
  EXPECT_DOUBLE_EQ(metrics.r_precision, r_precision);
  EXPECT_EQ(metrics.scored_queries, scored_queries);
}

TEST(RetrievalMetricsTest, PrecisionAtROfOneQuery) {
  // One query of label 0 at the origin; the gallery in ranking order at 0.1 .. 0.5.
  const struct {
    const char* name;
    std::vector<int64_t> gallery_labels;
    std::vector<double> recall;  // at 1, 3, 5
    double map_at_r;
    double r_precision;
  } cases[] = {
      // R = 3, relevance 1,0,1: (1/1 + 2/3) / 3.
      {"textbook 1,0,1", {0, 1, 0, 1, 0}, {1, 1, 1}, (1.0 + 2.0 / 3) / 3, 2.0 / 3},
      // R = 3, relevance 0,1,1: (1/2 + 2/3) / 3.
      {"late hits 0,1,1", {1, 0, 0, 1, 0}, {0, 1, 1}, (0.5 + 2.0 / 3) / 3, 2.0 / 3},
      {"all relevant first", {0, 0, 1, 1, 1}, {1, 1, 1}, 1.0, 1.0},
      // R = 2, and both relevant items come after the first 2.
      {"relevant only past R", {1, 1, 1, 0, 0}, {0, 0, 1}, 0.0, 0.0},
  };
  for (const auto& test_case : cases) {
    SCOPED_TRACE(test_case.name);
    const RetrievalMetrics metrics = core::EvaluateRetrieval(
        AtOrigin({0}), Set({0.1, 0.2, 0.3, 0.4, 0.5}, test_case.gallery_labels), {1, 3, 5}, 1.0);
    EXPECT_EQ(metrics.recall, test_case.recall);
    ExpectPrecisionAtR(metrics, test_case.map_at_r, test_case.r_precision, 1);
    // Asking for k = 1 only still ranks R items.
    const RetrievalMetrics top1 = core::EvaluateRetrieval(
        AtOrigin({0}), Set({0.1, 0.2, 0.3, 0.4, 0.5}, test_case.gallery_labels), {1}, 1.0);
    ExpectPrecisionAtR(top1, test_case.map_at_r, test_case.r_precision, 1);
  }
}

TEST(RetrievalMetricsTest, TiesGoToTheEarlierGalleryPosition) {
  const at::Tensor pair = core::DistMatrix(OnALine({0.0}), OnALine({0.2, -0.2}), 1.0);
  ASSERT_EQ(pair[0][0].item<double>(), pair[0][1].item<double>()) << "the test needs exact ties";
  // The query (label 0, at the origin) sees two tied pairs, |x| = 0.2 and |x| = 0.3; R = 2.
  const struct {
    const char* name;
    std::vector<double> xs;
    std::vector<int64_t> labels;
    std::vector<double> recall;  // at 1, 2
    double map_at_r;
  } cases[] = {
      // Ranked positions 1, 2, 0, 3: labels 1, 0, 0, 1; relevance within R: 0, 1.
      {"other label first", {0.3, -0.2, 0.2, -0.3}, {0, 1, 0, 1}, {0, 1}, 0.5 / 2},
      // Ranked positions 1, 2, 0, 3: labels 0, 1, 1, 0; relevance within R: 1, 0.
      {"same label first", {-0.3, 0.2, -0.2, 0.3}, {1, 0, 1, 0}, {1, 1}, 1.0 / 2},
  };
  for (const auto& test_case : cases) {
    SCOPED_TRACE(test_case.name);
    const RetrievalMetrics metrics =
        core::EvaluateRetrieval(AtOrigin({0}), Set(test_case.xs, test_case.labels), {1, 2}, 1.0);
    EXPECT_EQ(metrics.recall, test_case.recall);
    ExpectPrecisionAtR(metrics, test_case.map_at_r, 0.5, 1);
  }
}

TEST(RetrievalMetricsTest, QueriesAsGalleryExcludeThemselvesAndSkipSingleClasses) {
  // On a line with c = 1, d(a, b) = 2 artanh(|a - b| / (1 - ab)). Rankings without self: q0: 1, 2,
  // 3, 4; q1: 0, 2, 3, 4; q2: 3, 1, 0, 4; q3: 2, 1, 0, 4; q4: 3, 2, 1, 0; each query itself last.
  // R = 1 for q0, q1, q2, q4 (found first by q0 and q1 only); q3 is alone in label 2 (R = 0).
  const RecallQuery set = Set({0.0, 0.1, 0.5, 0.6, 0.9}, {0, 0, 1, 2, 1});
  const std::vector<int64_t> ks = {1, 2, 3, 4, 5};
  const RetrievalMetrics metrics = core::EvaluateRetrieval(set, set, ks, 1.0);
  ExpectPrecisionAtR(metrics, 0.5, 0.5, 4);
  // At k = 5 every query meets itself, ranked last, as RecallAtK counts it.
  EXPECT_EQ(metrics.recall, (std::vector<double>{0.4, 0.6, 0.6, 0.8, 1.0}));
  EXPECT_EQ(metrics.recall, core::RecallAtK(set, set, ks, 1.0));
  EXPECT_FALSE(metrics.has_hierarchy);
  EXPECT_TRUE(metrics.hierarchical_distance.empty());
  EXPECT_TRUE(metrics.super_recall.empty());
}

TEST(RetrievalMetricsTest, NoScoredQueriesGiveZeroMapAtR) {
  const RetrievalMetrics metrics =
      core::EvaluateRetrieval(AtOrigin({5, 6}), Set({0.1, 0.2}, {0, 1}), {1}, 1.0);
  ExpectPrecisionAtR(metrics, 0.0, 0.0, 0);
  EXPECT_EQ(metrics.recall, std::vector<double>{0.0});
}

std::vector<int64_t> Values(const at::Tensor& t) {
  const at::Tensor values = t.to(at::kLong).contiguous();
  return {values.data_ptr<int64_t>(), values.data_ptr<int64_t>() + values.numel()};
}

// MAP@R, R-Precision and Recall@K by a full stable sort of each query's distances: the simple
// reference for the blocked, partially sorted implementation.
RetrievalMetrics NaiveRetrieval(const RecallQuery& queries, const RecallQuery& gallery,
                                const std::vector<int64_t>& ks, double c) {
  const at::Tensor dist =
      core::DistMatrix(queries.embeddings, gallery.embeddings, c).to(at::kDouble).contiguous();
  const auto distance = dist.accessor<double, 2>();
  const std::vector<int64_t> query_labels = Values(queries.labels), query_ids = Values(queries.ids);
  const std::vector<int64_t> labels = Values(gallery.labels), ids = Values(gallery.ids);
  const int64_t num_queries = dist.size(0), num_gallery = dist.size(1);
  RetrievalMetrics metrics;
  std::vector<int64_t> hits(ks.size(), 0);
  for (int64_t q = 0; q < num_queries; ++q) {
    std::vector<double> d(num_gallery);
    int64_t relevant = 0;
    for (int64_t g = 0; g < num_gallery; ++g) {
      const bool excluded = ids[g] == query_ids[q];
      d[g] = excluded ? std::numeric_limits<double>::infinity() : distance[q][g];
      relevant += !excluded && labels[g] == query_labels[q];
    }
    std::vector<int64_t> order(num_gallery);
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return d[a] < d[b]; });
    std::vector<bool> match(num_gallery);
    for (int64_t i = 0; i < num_gallery; ++i) match[i] = labels[order[i]] == query_labels[q];
    for (size_t j = 0; j < ks.size(); ++j) {
      hits[j] += std::find(match.begin(), match.begin() + ks[j], true) != match.begin() + ks[j];
    }
    if (relevant == 0) continue;
    double found = 0, precision_sum = 0;
    for (int64_t i = 0; i < relevant; ++i) {
      if (match[i]) precision_sum += ++found / (i + 1);
    }
    metrics.map_at_r += precision_sum / relevant;
    metrics.r_precision += found / relevant;
    ++metrics.scored_queries;
  }
  metrics.map_at_r /= metrics.scored_queries;
  metrics.r_precision /= metrics.scored_queries;
  for (int64_t h : hits) metrics.recall.push_back(static_cast<double>(h) / num_queries);
  return metrics;
}

TEST(RetrievalMetricsTest, MatchesRecallAtKAndAFullSortOnRandomData) {
  const double c = 0.1;
  // 2100 x 2100 distances take two query blocks. Random labels among 400 give classes of 1 to
  // about 15 members, so R varies and some queries have none.
  const int64_t n = 2100;
  at::Generator gen = at::detail::createCPUGenerator(3);
  const at::Tensor labels = at::randint(0, 400, {n}, gen, at::TensorOptions().dtype(at::kLong));
  const RecallQuery all{BallPoints(n, 6, c, 7), labels, at::arange(n, at::kLong)};
  const RecallQuery queries{all.embeddings.narrow(0, 0, 300), labels.narrow(0, 0, 300),
                            all.ids.narrow(0, 0, 300)};
  const struct {
    const char* name;
    const RecallQuery& queries;
    std::vector<int64_t> ks;
  } cases[] = {{"queries = gallery", all, {1, 2, 4, 8, 16, 32}},
               {"a subset as queries", queries, {32, 4, 1}},
               {"ks below many R", all, {2, 1}}};
  for (const auto& test_case : cases) {
    SCOPED_TRACE(test_case.name);
    const std::vector<int64_t>& ks = test_case.ks;
    const RetrievalMetrics metrics = core::EvaluateRetrieval(test_case.queries, all, ks, c);
    const RetrievalMetrics naive = NaiveRetrieval(test_case.queries, all, ks, c);
    EXPECT_EQ(metrics.recall, core::RecallAtK(test_case.queries, all, ks, c));
    EXPECT_EQ(metrics.recall, naive.recall);
    EXPECT_NEAR(metrics.map_at_r, naive.map_at_r, 1e-12);
    EXPECT_NEAR(metrics.r_precision, naive.r_precision, 1e-12);
    EXPECT_EQ(metrics.scored_queries, naive.scored_queries);
    EXPECT_GT(metrics.map_at_r, 0.0);
  }
}

// Depth 3: root -> animal -> bird -> owl. Heights: classes 0; bird, cat, boat 1; animal, vehicle 2;
// the root 3. Labels: owl 0, crow 1, lion 2, tiger 3, car 4, ferry 5, canoe 6.
analysis::LabelHierarchy ThreeLevelHierarchy() {
  const analysis::ClassTree tree = analysis::ClassTree::Parse(
      R"({"animal": {"bird": ["owl", "crow"], "cat": ["lion", "tiger"]},
          "vehicle": ["car", {"boat": ["ferry", "canoe"]}]})",
      "three-level");
  return tree.ForLabels({"owl", "crow", "lion", "tiger", "car", "ferry", "canoe"});
}

TEST(RetrievalMetricsTest, HierarchyMetricsOnAThreeLevelTree) {
  const analysis::LabelHierarchy hierarchy = ThreeLevelHierarchy();
  // Every query (at the origin) sees the gallery as crow, lion, car, owl. LCA heights of those:
  //   owl:   1 2 3 0   top-1 wrong (1); super hit at 1; own class at 4
  //   ferry: 3 3 2 3   top-1 wrong (3); super hit at 3 (car)
  //   tiger: 2 1 3 2   top-1 wrong (2); super hit at 1
  //   crow:  0 2 3 1   top-1 right;      super hit at 1
  // Hierarchical distance@1: (1 + 3 + 2 + 0) / 4; @2: (1.5 + 3 + 1.5 + 1) / 4; @4: (6/4 + 11/4 +
  // 8/4 + 6/4) / 4. R: owl 1, crow 1, ferry and tiger 0; AP: owl 0 (found 4th), crow 1.
  const RetrievalMetrics metrics = core::EvaluateRetrieval(
      AtOrigin({0, 5, 3, 1}), Set({0.1, 0.2, 0.3, 0.4}, {1, 2, 4, 0}), {1, 2, 4}, 1.0, &hierarchy);
  ASSERT_TRUE(metrics.has_hierarchy);
  EXPECT_EQ(metrics.mistakes, 3);
  EXPECT_DOUBLE_EQ(metrics.mistake_severity, (1.0 + 3 + 2) / 3);
  ExpectNear(metrics.hierarchical_distance, {6.0 / 4, 7.0 / 4, 31.0 / 16});
  EXPECT_EQ(metrics.super_recall, (std::vector<double>{0.75, 0.75, 1.0}));
  EXPECT_EQ(metrics.recall, (std::vector<double>{0.25, 0.25, 0.5}));
  ExpectPrecisionAtR(metrics, 0.5, 0.5, 2);
}

TEST(RetrievalMetricsTest, OneLevelTreeMistakesCostOne) {
  // All classes in one group: a wrong class is at LCA height 1.
  const analysis::LabelHierarchy hierarchy =
      analysis::ClassTree::Parse(R"({"all": ["a", "b"]})", "one-level").ForLabels({"a", "b"});
  // Both queries see labels 0, 1, 1, 0: label 1's query is wrong at height 1. Query 0 sees
  // heights 0 1 1, query 1 sees 1 0 0.
  const RetrievalMetrics metrics = core::EvaluateRetrieval(
      AtOrigin({0, 1}), Set({0.1, 0.15, 0.2, 0.3}, {0, 1, 1, 0}), {1, 3}, 1.0, &hierarchy);
  EXPECT_EQ(metrics.mistakes, 1);
  EXPECT_DOUBLE_EQ(metrics.mistake_severity, 1.0);
  ExpectNear(metrics.hierarchical_distance, {0.5, 0.5});
  EXPECT_EQ(metrics.super_recall, (std::vector<double>{1.0, 1.0}));

  const RetrievalMetrics right =
      core::EvaluateRetrieval(AtOrigin({0}), Set({0.1, 0.2}, {0, 1}), {1, 2}, 1.0, &hierarchy);
  EXPECT_EQ(right.mistakes, 0);
  EXPECT_EQ(right.mistake_severity, 0.0);
  EXPECT_EQ(right.hierarchical_distance, (std::vector<double>{0.0, 0.5}));
}

TEST(RetrievalMetricsTest, RefusesBadInput) {
  const analysis::LabelHierarchy hierarchy = ThreeLevelHierarchy();  // labels 0 .. 6
  const RecallQuery queries = AtOrigin({0});
  const RecallQuery gallery = Set({0.1, 0.2, 0.3, 0.4}, {0, 1, 2, 3});
  const RecallQuery wide{at::zeros({1, 2}, at::kDouble), at::zeros({1}, at::kLong),
                         at::zeros({1}, at::kLong)};
  const struct {
    const char* name;
    std::function<void()> call;
    std::string message;
  } cases[] = {
      {"k = 0",
       [&] {
         core::EvaluateRetrieval(queries, gallery, {1, 0}, 1.0);
       },
       "evaluate_retrieval: every k must be in [1, 4] (the gallery size), got 0"},
      {"k > gallery", [&] { core::EvaluateRetrieval(queries, gallery, {5}, 1.0); },
       "every k must be in [1, 4] (the gallery size), got 5"},
      {"no ks", [&] { core::EvaluateRetrieval(queries, gallery, {}, 1.0); },
       "evaluate_retrieval: ks is empty"},
      {"bad curvature", [&] { core::EvaluateRetrieval(queries, gallery, {1}, 0.0); },
       "evaluate_retrieval: curvature c must be finite and > 0, got 0"},
      {"widths differ", [&] { core::EvaluateRetrieval(wide, gallery, {1}, 1.0); },
       "queries and gallery must have the same dimension, got 2 and 1"},
      {"labels of another length",
       [&] {
         core::EvaluateRetrieval({queries.embeddings, at::zeros({2}, at::kLong), queries.ids},
                                 gallery, {1}, 1.0);
       },
       "evaluate_retrieval: queries has 2 entries but the batch has 1"},
      {"gallery label outside the hierarchy",
       [&] { core::EvaluateRetrieval(queries, Set({0.1}, {7}), {1}, 1.0, &hierarchy); },
       "evaluate_retrieval: gallery label 7 is outside the hierarchy's labels [0, 7)"},
      {"negative query label",
       [&] { core::EvaluateRetrieval(AtOrigin({-1}), gallery, {1}, 1.0, &hierarchy); },
       "queries label -1 is outside the hierarchy's labels [0, 7)"},
  };
  for (const auto& test_case : cases) {
    SCOPED_TRACE(test_case.name);
    EXPECT_NE(ErrorMessage(test_case.call).find(test_case.message), std::string::npos)
        << ErrorMessage(test_case.call);
  }
}

}  // namespace
}  // namespace hier::testing
