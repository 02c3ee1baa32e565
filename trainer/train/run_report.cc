#include "trainer/train/run_report.h"

#include <ATen/ATen.h>
#include <c10/util/Exception.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>

#include "trainer/analysis/class_tree.h"
#include "trainer/analysis/hierarchy.h"
#include "trainer/analysis/svg_plot.h"
#include "trainer/io/atomic_file.h"
#include "trainer/train/checkpoint.h"
#include "trainer/train/evaluation.h"
#include "trainer/train/train_config.h"
#include "trainer/train/training_data.h"

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

// The tree's top-level group of every label, the super-categories of the discovery score.
std::map<int64_t, int64_t> SuperCategories(const analysis::LabelHierarchy& hierarchy) {
  std::map<int64_t, int64_t> super_of_label;
  for (int64_t label = 0; label < hierarchy.num_labels(); ++label) {
    super_of_label[label] = hierarchy.SuperCategory(label);
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
  using SeriesByName = std::map<std::string, analysis::LineSeries>;
  SeriesByName losses, recalls, mistakes, shares, depths;
  auto add = [](SeriesByName& chart, const std::string& name, double x, double y) {
    analysis::LineSeries& series = chart[name];
    series.name = name;
    series.x.push_back(x);
    series.y.push_back(y);
  };
  for (const Json& record : MetricRecords(run)) {
    const double step = record.value("step", 0.0);
    if (record["kind"] == "train") {
      for (const char* term : {"loss", "metric", "hier"}) {
        if (record.contains(term)) add(losses, term, step, record[term].get<double>());
      }
      if (record.contains("active_sample_proxy")) {
        add(shares, "active triplets, sample part", step, record["active_sample_proxy"]);
        add(shares, "active triplets, proxy part", step, record["active_proxy_proxy"]);
      }
    } else if (record["kind"] == "eval") {
      const double epoch = record.value("epoch", 0.0);
      const Json recall = record.value("recall", Json::object());
      const Json metrics = record.value("metrics", Json::object());
      for (const auto& [k, value] : recall.items()) {
        add(recalls, "R@" + k, epoch, value.get<double>());
      }
      for (const auto& [name, value] : metrics.items()) {
        const bool height = name == "mistake_severity" || name.rfind("HD@", 0) == 0;
        if (name.rfind("R@", 0) != 0) add(height ? mistakes : recalls, name, epoch, value);
      }
      if (record.contains("proxies")) {
        const Json& proxies = record["proxies"];
        add(shares, "proxies on the clip sphere", step,
            proxies["on_clip_sphere"].get<double>() / proxies["proxies"].get<double>());
        for (const auto& [name, value] : proxies["depth"].items()) {
          add(depths, "depth " + name, step, value.get<double>());
        }
      }
    }
  }
  auto chart = [](std::string title, std::string x, std::string y, SeriesByName series) {
    analysis::LineChart out{std::move(title), std::move(x), std::move(y), {}};
    for (auto& [name, s] : series) out.series.push_back(std::move(s));
    return analysis::LineChartSvg(out);
  };
  io::WriteFileAtomically(run.File("plots/loss.svg"),
                          chart("Training loss", "step", "loss (window mean)", losses));
  io::WriteFileAtomically(run.File("plots/recall.svg"),
                          chart("Test retrieval", "epoch", "R@K, MAP@R, R-Precision", recalls));
  if (!mistakes.empty()) {
    io::WriteFileAtomically(run.File("plots/mistakes.svg"),
                            chart("Mistake severity and hierarchical distance@K", "epoch",
                                  "LCA height in the class tree", mistakes));
  }
  if (shares.empty()) return;  // a run without HIER has no proxies to watch
  io::WriteFileAtomically(
      run.File("plots/hier_diagnostics.svg"),
      chart("HIER: active triplets and proxies at the clip radius", "step", "share", shares));
  io::WriteFileAtomically(run.File("plots/proxy_depth.svg"),
                          chart("HIER proxies: distance from the origin", "step", "depth", depths));
}

RunScore ScoreRun(const std::string& run_dir, const std::string& groups_file) {
  TORCH_CHECK(std::filesystem::is_directory(std::filesystem::path(run_dir) / "best"),
              "--run-dir: ", run_dir, " has no best/ checkpoint (has the run evaluated yet?)");
  const RunDirectory run(run_dir);
  InferenceModel model = LoadInferenceModel(run.best());
  TrainConfig config;
  ApplyJson(model.info.config_json, config, run.best() + "/manifest.json");
  const TrainingData data = OpenTrainingData(config, /*with_train=*/false);
  const c10::Device cpu(c10::kCPU);
  const EmbeddedImages test = EmbedImages(model.net, *data.query, 0, data.query->size(), cpu);
  std::optional<EmbeddedImages> gallery;
  if (data.gallery) gallery = EmbedImages(model.net, *data.gallery, 0, data.gallery->size(), cpu);
  std::optional<analysis::LabelHierarchy> hierarchy;
  if (!groups_file.empty()) {
    hierarchy = analysis::ClassTree::Load(groups_file).ForLabels(data.query->class_names());
  }

  RunScore result;
  result.metrics =
      NamedMetrics(EvaluateRetrieval(test, gallery ? &*gallery : nullptr, data.recall_k, config.c,
                                     hierarchy ? &*hierarchy : nullptr),
                   data.recall_k);
  Json out = {{"metrics", result.metrics}, {"checkpoint", run.best()}};
  if (hierarchy) {
    Json tree;
    try {
      tree = Json::parse(io::ReadFile(run.File("hierarchy.json")));
    } catch (const Json::exception& e) {
      TORCH_CHECK(false, "score: ", run.File("hierarchy.json"), " is not valid JSON: ", e.what());
    }
    analysis::BallPoints proxies;
    for (const Json& proxy : tree.at("proxies")) {
      const std::vector<float> coords = proxy.at("coords").get<std::vector<float>>();
      proxies.dim = static_cast<int64_t>(coords.size());
      proxies.coords.insert(proxies.coords.end(), coords.begin(), coords.end());
      ++proxies.rows;
    }
    const double c = tree.at("c").get<double>();
    const analysis::DiscoveryScore score = analysis::HierarchyDiscovery(
        ToBallPoints(test.embeddings), test.labels, proxies, SuperCategories(*hierarchy), c,
        kPairsPerClassPair, /*seed=*/0);
    result.discovery = score;
    result.trained_proxies = tree.value("trained_proxies", false);
    const Json discovery = {{"lca_depth_auc", score.lca_depth_auc},
                            {"lca_height_auc", score.lca_height_auc},
                            {"centre_distance_auc", score.centre_distance_auc},
                            {"same_pairs", score.same_pairs},
                            {"cross_pairs", score.cross_pairs},
                            {"trained_proxies", result.trained_proxies},
                            {"groups", groups_file},
                            {"pairs_per_class_pair", kPairsPerClassPair}};
    io::WriteFileAtomically(run.File("discovery.json"), discovery.dump(2) + "\n");
    out["discovery"] = discovery;
  }
  result.json = out.dump(2);
  return result;
}

}  // namespace hier::train
