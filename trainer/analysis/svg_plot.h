// Self-contained SVG pictures for a run's plots/ folder: the Poincaré disk with data and proxy
// tree, and line charts of training curves. Std-only; the output is XML a browser opens directly.
//
// Text (titles, names, labels) is escaped. Invalid input throws c10::Error naming the field.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace hier::analysis {

// Data and proxies already flattened onto the unit disk (e.g. by ProjectToDisk).
struct DiskPlot {
  std::string title;
  std::vector<std::array<double, 2>> points;  // finite, |p| <= 1
  std::vector<int64_t> point_labels;          // one per point, any integers
  // Legend text per label; a label without an entry is shown as its number. Colours follow the
  // rank of the label among the distinct labels present, through a fixed 10-colour palette (so
  // colours repeat beyond 10 classes); the legend lists at most the first 20 labels.
  std::map<int64_t, std::string> class_names;
  std::vector<std::array<double, 2>> proxies;  // finite, |p| <= 1
  std::vector<int64_t> proxy_parents;          // one per proxy: a proxy index, or -1 (the origin)
  // Empty, or one non-negative count per proxy: marker area then grows with the count.
  std::vector<int64_t> proxy_members;
};

// A 1000 x 800 picture: the disk (radius 360 in the left 800 x 800 square) with its boundary
// circle and origin, an edge from every proxy to its parent, points as small semi-transparent dots
// (one <circle> each, grouped by label), proxies as outlined dots (one <circle> each) and the
// legend on the right. Coordinates are rounded to 0.1 so 10k points stay near 400 KB.
std::string PoincareDiskSvg(const DiskPlot& plot);

struct LineSeries {
  std::string name;
  std::vector<double> x;  // same length as y; pairs with a non-finite x or y are skipped
  std::vector<double> y;
};

struct LineChart {
  std::string title;
  std::string x_label;
  std::string y_label;
  std::vector<LineSeries> series;
};

// An 800 x 500 chart: one polyline per series (a dot where a series has a single point), axes
// spanning "nice" rounded ranges with about 5 labelled ticks each, and a legend of series names.
// A constant (or nearly constant) range is widened around its value; with no finite point at all it
// draws the axes and "no data".
std::string LineChartSvg(const LineChart& chart);

}  // namespace hier::analysis
