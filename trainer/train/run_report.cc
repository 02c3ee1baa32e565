#include "trainer/train/run_report.h"

#include <ATen/ATen.h>
#include <c10/util/Exception.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>

#include "trainer/analysis/hierarchy.h"
#include "trainer/analysis/svg_plot.h"
#include "trainer/train/training_data.h"
#include "trainer/io/atomic_file.h"
#include "trainer/train/checkpoint.h"
#include "trainer/train/evaluation.h"
#include "trainer/train/train_config.h"

namespace hier::train {
namespace {

using Json = nlohmann::json;

constexpr int64_t kNearestProxiesPerClass = 5;
constexpr int64_t kPairsPerClassPair = 200;
constexpr const char* kTreeReading =
    "depth: hyperbolic distance from the origin; parent: the nearest proxy among those strictly "
    "closer to the origin, -1 for the root (the origin); level: edges to the root; the lowest "
    "common ancestor of two points is the proxy minimising the larger of its distances to them";

analysis::BallPoints ToBallPoints(const at::Tensor& points) {
  const at::Tensor rows = points.to(at::kCPU, at::kFloat).contiguous();
  analysis::BallPoints out;
  out.rows = rows.size(0);
  out.dim = rows.size(1);
  out.coords.assign(rows.data_ptr<float>(), rows.data_ptr<float>() + rows.numel());
  return out;
}

std::vector<float> Row(const analysis::BallPoints& points, int64_t i) {
  return std::vector<float>(points.Row(i), points.Row(i) + points.dim);
}

void WriteDiskPlot(const RunDirectory& run, const analysis::BallPoints& points,
                   const std::vector<int64_t>& labels, const std::vector<std::string>& class_names,
                   const analysis::BallPoints& proxies, const analysis::ProxyTree& tree,
                   const std::vector<int64_t>& members, bool trained_proxies, double c) {
  const analysis::DiskProjection projection = analysis::FitDiskProjection(points, c);
  analysis::DiskPlot plot;
  plot.title = std::string("Test embeddings; ") +
               (trained_proxies ? "learned" : "untrained (no HIER)") +
               " proxies in use + ancestors";
  plot.points = analysis::ProjectToDisk(projection, points, c);
  plot.point_labels = labels;
  for (size_t k = 0; k < class_names.size(); ++k) plot.class_names[k] = class_names[k];
  // Only proxies that hold test images, with their chains to the root: the hundreds of unused
  // proxies would bury the tree.
  std::vector<int64_t> index_of(proxies.rows, -1);
  analysis::BallPoints shown{{}, 0, proxies.dim};
  std::vector<int64_t> order;
  for (int64_t p = 0; p < proxies.rows; ++p) {
    for (int64_t q = members[p] > 0 ? p : -1; q >= 0 && index_of[q] < 0; q = tree.parent[q]) {
      index_of[q] = shown.rows++;
      order.push_back(q);
      shown.coords.insert(shown.coords.end(), proxies.Row(q), proxies.Row(q) + proxies.dim);
    }
  }
  for (int64_t q : order) {
    plot.proxy_parents.push_back(tree.parent[q] < 0 ? -1 : index_of[tree.parent[q]]);
    plot.proxy_members.push_back(members[q]);
  }
  plot.proxies = analysis::ProjectToDisk(projection, shown, c);
  io::WriteFileAtomically(run.File("plots/poincare_disk.svg"), analysis::PoincareDiskSvg(plot));
}

// Reads metrics.jsonl's training and evaluation lines (torn or foreign lines are skipped).
std::vector<Json> MetricRecords(const RunDirectory& run) {
  std::vector<Json> records;
  const std::string path = run.File("metrics.jsonl");
  if (!std::filesystem::exists(path)) return records;
  std::istringstream lines(io::ReadFile(path));
  for (std::string line; std::getline(lines, line);) {
    Json record = Json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (record.is_object() && record.contains("kind")) records.push_back(std::move(record));
  }
  return records;
}

std::map<int64_t, int64_t> ReadGroups(const std::string& groups_file,
                                      const std::vector<std::string>& class_names) {
  Json groups;
  try {
    groups = Json::parse(io::ReadFile(groups_file));
  } catch (const Json::exception& e) {
    TORCH_CHECK(false, "--groups: ", groups_file, " is not valid JSON: ", e.what());
  }
  TORCH_CHECK(groups.is_object(), "--groups: ", groups_file,
              " must map group names to lists of class names");
  std::map<int64_t, int64_t> super_of_label;
  int64_t group = 0;
  for (const auto& [name, members] : groups.items()) {
    TORCH_CHECK(members.is_array(), "--groups: ", groups_file, ": group '", name,
                "' must be a list of class names");
    for (const Json& member : members) {
      const std::string cls = member.is_string() ? member.get<std::string>() : member.dump();
      const auto it = std::find(class_names.begin(), class_names.end(), cls);
      TORCH_CHECK(it != class_names.end(), "--groups: ", groups_file, ": '", cls,
                  "' is not a class of this run");
      super_of_label[it - class_names.begin()] = group;
    }
    ++group;
  }
  return super_of_label;
}

}  // namespace

void WriteHierarchyReport(const RunDirectory& run, const at::Tensor& proxies, bool trained_proxies,
                          const at::Tensor& embeddings, const std::vector<int64_t>& labels,
                          const std::vector<std::string>& class_names, double c) {
  const analysis::BallPoints proxy_points = ToBallPoints(proxies);
  const analysis::BallPoints points = ToBallPoints(embeddings);
  const analysis::ProxyTree tree = analysis::BuildProxyTree(proxy_points, c);
  const std::vector<int64_t> members = analysis::MemberCounts(points, proxy_points, c);
  Json json = {{"c", c},
               {"trained_proxies", trained_proxies},
               {"reading", kTreeReading},
               {"points", {{"split", "test"}, {"count", points.rows}}}};
  json["proxies"] = Json::array();
  for (int64_t p = 0; p < proxy_points.rows; ++p) {
    json["proxies"].push_back({{"id", p},
                               {"coords", Row(proxy_points, p)},
                               {"parent", tree.parent[p]},
                               {"depth", tree.depth[p]},
                               {"level", tree.level[p]},
                               {"members", members[p]}});
  }
  json["classes"] = Json::array();
  for (const analysis::ClassSummary& summary : analysis::SummariseClasses(
           points, labels, proxy_points, c, std::min(kNearestProxiesPerClass, proxy_points.rows))) {
    json["classes"].push_back({{"label", summary.label},
                               {"name", class_names.at(summary.label)},
                               {"nearest_proxies", summary.nearest_proxies},
                               {"members", summary.members}});
  }
  io::WriteFileAtomically(run.File("hierarchy.json"), json.dump(1) + "\n");
  WriteDiskPlot(run, points, labels, class_names, proxy_points, tree, members, trained_proxies, c);
}

void WriteTrainingCurves(const RunDirectory& run) {
  std::map<std::string, analysis::LineSeries> losses, recalls;
  for (const Json& record : MetricRecords(run)) {
    if (record["kind"] == "train") {
      for (const char* term : {"loss", "metric", "hier"}) {
        if (!record.contains(term)) continue;
        analysis::LineSeries& series = losses[term];
        series.name = term;
        series.x.push_back(record.value("step", 0.0));
        series.y.push_back(record[term].get<double>());
      }
    } else if (record["kind"] == "eval" && record.contains("recall")) {
      for (const auto& [k, value] : record["recall"].items()) {
        analysis::LineSeries& series = recalls["R@" + k];
        series.name = "R@" + k;
        series.x.push_back(record.value("epoch", 0.0));
        series.y.push_back(value.get<double>());
      }
    }
  }
  auto chart = [](std::string title, std::string x, std::string y,
                  std::map<std::string, analysis::LineSeries> series) {
    analysis::LineChart out{std::move(title), std::move(x), std::move(y), {}};
    for (auto& [name, s] : series) out.series.push_back(std::move(s));
    return analysis::LineChartSvg(out);
  };
  io::WriteFileAtomically(run.File("plots/loss.svg"),
                          chart("Training loss", "step", "loss (window mean)", losses));
  io::WriteFileAtomically(run.File("plots/recall.svg"),
                          chart("Test Recall@K", "epoch", "recall", recalls));
}

RunDiscovery ScoreRun(const std::string& run_dir, const std::string& groups_file) {
  TORCH_CHECK(std::filesystem::is_directory(std::filesystem::path(run_dir) / "best"),
              "--run-dir: ", run_dir, " has no best/ checkpoint (has the run evaluated yet?)");
  const RunDirectory run(run_dir);
  InferenceModel model = LoadInferenceModel(run.best());
  TrainConfig config;
  ApplyJson(model.info.config_json, config, run.best() + "/manifest.json");
  const TrainingData data = OpenTrainingData(config, /*with_train=*/false);
  const EmbeddedImages test = EmbedImages(model.net, *data.query, 0, data.query->size(),
                                          c10::Device(c10::kCPU));

  Json hierarchy;
  try {
    hierarchy = Json::parse(io::ReadFile(run.File("hierarchy.json")));
  } catch (const Json::exception& e) {
    TORCH_CHECK(false, "score: ", run.File("hierarchy.json"), " is not valid JSON: ", e.what());
  }
  analysis::BallPoints proxies;
  for (const Json& proxy : hierarchy.at("proxies")) {
    const std::vector<float> coords = proxy.at("coords").get<std::vector<float>>();
    proxies.dim = static_cast<int64_t>(coords.size());
    proxies.coords.insert(proxies.coords.end(), coords.begin(), coords.end());
    ++proxies.rows;
  }
  const double c = hierarchy.at("c").get<double>();
  RunDiscovery result;
  result.score = analysis::HierarchyDiscovery(ToBallPoints(test.embeddings), test.labels, proxies,
                                              ReadGroups(groups_file, data.query->class_names()), c,
                                              kPairsPerClassPair, /*seed=*/0);
  result.trained_proxies = hierarchy.value("trained_proxies", false);
  result.json = Json({{"lca_depth_auc", result.score.lca_depth_auc},
                      {"lca_height_auc", result.score.lca_height_auc},
                      {"centre_distance_auc", result.score.centre_distance_auc},
                      {"same_pairs", result.score.same_pairs},
                      {"cross_pairs", result.score.cross_pairs},
                      {"trained_proxies", result.trained_proxies},
                      {"groups", groups_file},
                      {"pairs_per_class_pair", kPairsPerClassPair}})
                    .dump(2);
  io::WriteFileAtomically(run.File("discovery.json"), result.json + "\n");
  return result;
}

}  // namespace hier::train
