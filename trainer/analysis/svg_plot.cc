#include "trainer/analysis/svg_plot.h"

#include <c10/util/Exception.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <set>

namespace hier::analysis {
namespace {

// Tableau 10: distinguishable, and readable on white.
constexpr std::array<const char*, 10> kPalette = {"#4e79a7", "#f28e2b", "#e15759", "#76b7b2",
                                                  "#59a14f", "#edc948", "#b07aa1", "#ff9da7",
                                                  "#9c755f", "#bab0ac"};
constexpr int64_t kMaxLegendEntries = 20;

// Disk picture geometry (SVG user units; y grows downwards).
constexpr double kDiskWidth = 1000.0;
constexpr double kDiskHeight = 800.0;
constexpr double kDiskCentreX = 400.0;
constexpr double kDiskCentreY = 410.0;
constexpr double kDiskRadius = 360.0;
constexpr double kDiskLegendX = 820.0;

// Line chart geometry: the plot area and where the legend starts.
constexpr double kChartWidth = 800.0;
constexpr double kChartHeight = 500.0;
constexpr double kPlotLeft = 80.0;
constexpr double kPlotRight = 600.0;
constexpr double kPlotTop = 50.0;
constexpr double kPlotBottom = 420.0;
constexpr double kChartLegendX = 620.0;
constexpr int kTargetTicks = 5;
constexpr double kMinRelativeSpan = 1e-9;

struct Point {
  double x;
  double y;
};

// One decimal: enough for an 800-unit canvas, and keeps big scatter plots small.
std::string Num(double v) {
  char buffer[32];
  std::snprintf(buffer, sizeof(buffer), "%.1f", v);
  return buffer;
}

std::string EscapeXml(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (char ch : text) {
    switch (ch) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&apos;";
        break;
      default:
        out += ch;
    }
  }
  return out;
}

std::string SvgOpen(double width, double height) {
  return "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 " + Num(width) + " " +
         Num(height) + "\" width=\"" + Num(width) + "\" height=\"" + Num(height) +
         "\" font-family=\"sans-serif\">\n<rect width=\"100%\" height=\"100%\" "
         "fill=\"#ffffff\"/>\n";
}

// `extra` holds further attributes, already escaped.
std::string Text(Point at, const std::string& text, const std::string& extra) {
  return "<text x=\"" + Num(at.x) + "\" y=\"" + Num(at.y) + "\" " + extra + ">" + EscapeXml(text) +
         "</text>\n";
}

std::string Title(double centre_x, const std::string& title) {
  return Text({centre_x, 30.0}, title, "font-size=\"18\" text-anchor=\"middle\"");
}

std::string Circle(Point at, double r) {
  return "<circle cx=\"" + Num(at.x) + "\" cy=\"" + Num(at.y) + "\" r=\"" + Num(r) + "\"/>\n";
}

std::string Line(Point from, Point to, const std::string& style) {
  return "<line x1=\"" + Num(from.x) + "\" y1=\"" + Num(from.y) + "\" x2=\"" + Num(to.x) +
         "\" y2=\"" + Num(to.y) + "\" " + style + "/>\n";
}

std::string LegendSwatch(Point at, const char* colour) {
  return "<rect x=\"" + Num(at.x) + "\" y=\"" + Num(at.y - 9) + "\" width=\"10\" height=\"10\" " +
         "fill=\"" + colour + "\"/>\n";
}

// ---- Poincaré disk ----

void CheckDiskCoordinates(const char* name, const std::vector<std::array<double, 2>>& coords) {
  for (size_t i = 0; i < coords.size(); ++i) {
    const auto& p = coords[i];
    TORCH_CHECK(std::isfinite(p[0]) && std::isfinite(p[1]) && std::hypot(p[0], p[1]) <= 1.0,
                "PoincareDiskSvg: ", name, "[", i, "] = (", p[0], ", ", p[1],
                ") is not a finite point of the closed unit disk");
  }
}

void CheckDiskPlot(const DiskPlot& plot) {
  CheckDiskCoordinates("points", plot.points);
  CheckDiskCoordinates("proxies", plot.proxies);
  TORCH_CHECK(plot.point_labels.size() == plot.points.size(), "PoincareDiskSvg: point_labels has ",
              plot.point_labels.size(), " entries for ", plot.points.size(), " points");
  const int64_t num_proxies = static_cast<int64_t>(plot.proxies.size());
  TORCH_CHECK(plot.proxy_parents.size() == plot.proxies.size(),
              "PoincareDiskSvg: proxy_parents has ", plot.proxy_parents.size(), " entries for ",
              num_proxies, " proxies");
  for (int64_t i = 0; i < num_proxies; ++i) {
    const int64_t parent = plot.proxy_parents[i];
    TORCH_CHECK(parent >= -1 && parent < num_proxies && parent != i,
                "PoincareDiskSvg: proxy_parents[", i, "] = ", parent, " must be -1 or another of ",
                num_proxies, " proxies");
  }
  TORCH_CHECK(plot.proxy_members.empty() || plot.proxy_members.size() == plot.proxies.size(),
              "PoincareDiskSvg: proxy_members has ", plot.proxy_members.size(),
              " entries; expected none or ", num_proxies);
  for (size_t i = 0; i < plot.proxy_members.size(); ++i) {
    TORCH_CHECK(plot.proxy_members[i] >= 0, "PoincareDiskSvg: proxy_members[", i,
                "] = ", plot.proxy_members[i], " is negative");
  }
}

Point DiskToCanvas(const std::array<double, 2>& p) {
  return {kDiskCentreX + kDiskRadius * p[0], kDiskCentreY - kDiskRadius * p[1]};
}

std::string DiskFrame() {
  const Point origin = DiskToCanvas({0.0, 0.0});
  return "<circle cx=\"" + Num(origin.x) + "\" cy=\"" + Num(origin.y) + "\" r=\"" +
         Num(kDiskRadius) + "\" fill=\"none\" stroke=\"#333333\" stroke-width=\"1.5\"/>\n" +
         Line({origin.x - 6, origin.y}, {origin.x + 6, origin.y}, "stroke=\"#333333\"") +
         Line({origin.x, origin.y - 6}, {origin.x, origin.y + 6}, "stroke=\"#333333\"");
}

// All parent edges as one path (proxies with parent -1 join the origin).
std::string ProxyEdges(const DiskPlot& plot) {
  if (plot.proxies.empty()) return "";
  std::string d;
  for (size_t i = 0; i < plot.proxies.size(); ++i) {
    const int64_t parent = plot.proxy_parents[i];
    const Point from = DiskToCanvas(plot.proxies[i]);
    const Point to =
        DiskToCanvas(parent == -1 ? std::array<double, 2>{0.0, 0.0} : plot.proxies[parent]);
    d += "M" + Num(from.x) + " " + Num(from.y) + "L" + Num(to.x) + " " + Num(to.y);
  }
  return "<path fill=\"none\" stroke=\"#777777\" stroke-width=\"0.7\" stroke-opacity=\"0.8\" d=\"" +
         d + "\"/>\n";
}

std::vector<int64_t> DistinctLabels(const std::vector<int64_t>& labels) {
  const std::set<int64_t> distinct(labels.begin(), labels.end());
  return {distinct.begin(), distinct.end()};
}

std::string PointGroups(const DiskPlot& plot, const std::vector<int64_t>& classes) {
  std::string out;
  for (size_t k = 0; k < classes.size(); ++k) {
    out +=
        "<g fill=\"" + std::string(kPalette[k % kPalette.size()]) + "\" fill-opacity=\"0.45\">\n";
    for (size_t i = 0; i < plot.points.size(); ++i) {
      if (plot.point_labels[i] == classes[k]) out += Circle(DiskToCanvas(plot.points[i]), 2.0);
    }
    out += "</g>\n";
  }
  return out;
}

// Marker radius 3 without counts; with counts, area grows linearly from radius 2 (empty) to 9.
double ProxyRadius(const DiskPlot& plot, size_t i, int64_t max_members) {
  if (plot.proxy_members.empty() || max_members == 0) return 3.0;
  return 2.0 + 7.0 * std::sqrt(static_cast<double>(plot.proxy_members[i]) / max_members);
}

std::string ProxyMarkers(const DiskPlot& plot) {
  const int64_t max_members =
      plot.proxy_members.empty()
          ? 0
          : *std::max_element(plot.proxy_members.begin(), plot.proxy_members.end());
  std::string out =
      "<g fill=\"#222222\" fill-opacity=\"0.85\" stroke=\"#ffffff\" stroke-width=\"0.6\">\n";
  for (size_t i = 0; i < plot.proxies.size(); ++i) {
    out += Circle(DiskToCanvas(plot.proxies[i]), ProxyRadius(plot, i, max_members));
  }
  return out + "</g>\n";
}

std::string ClassName(const DiskPlot& plot, int64_t label) {
  const auto it = plot.class_names.find(label);
  return it == plot.class_names.end() ? std::to_string(label) : it->second;
}

std::string DiskLegend(const DiskPlot& plot, const std::vector<int64_t>& classes) {
  std::string out;
  const int64_t shown = std::min<int64_t>(kMaxLegendEntries, classes.size());
  double y = 70.0;
  for (int64_t k = 0; k < shown; ++k, y += 18.0) {
    out += LegendSwatch({kDiskLegendX, y}, kPalette[k % kPalette.size()]);
    out += Text({kDiskLegendX + 16, y}, ClassName(plot, classes[k]), "font-size=\"12\"");
  }
  if (static_cast<int64_t>(classes.size()) > shown) {
    out += Text({kDiskLegendX, y}, "+" + std::to_string(classes.size() - shown) + " more",
                "font-size=\"12\"");
  }
  return out;
}

// ---- Line chart ----

struct Range {
  double lo;
  double hi;
};

// The finite (x, y) pairs of a series, in order.
std::vector<Point> FinitePoints(const LineSeries& series) {
  std::vector<Point> points;
  for (size_t i = 0; i < series.x.size(); ++i) {
    if (std::isfinite(series.x[i]) && std::isfinite(series.y[i])) {
      points.push_back({series.x[i], series.y[i]});
    }
  }
  return points;
}

// Heckbert's "nice number": 1, 2, 5 or 10 times a power of ten near x (> 0); rounded to the
// nearest when `round`, else the smallest not below x.
double NiceNumber(double x, bool round) {
  const double power = std::pow(10.0, std::floor(std::log10(x)));
  const double fraction = x / power;
  double nice;
  if (round) {
    nice = fraction < 1.5 ? 1.0 : fraction < 3.0 ? 2.0 : fraction < 7.0 ? 5.0 : 10.0;
  } else {
    nice = fraction <= 1.0 ? 1.0 : fraction <= 2.0 ? 2.0 : fraction <= 5.0 ? 5.0 : 10.0;
  }
  return nice * power;
}

// A range too narrow to tick (constant, or within kMinRelativeSpan of its magnitude) widened by 10%
// of its magnitude (or 1 at zero) each side: the ticks then stay many ulps apart.
Range Widened(Range range) {
  const double magnitude = std::max(std::fabs(range.lo), std::fabs(range.hi));
  if (range.hi - range.lo > kMinRelativeSpan * magnitude) return range;
  const double pad = magnitude == 0.0 ? 1.0 : 0.1 * magnitude;
  return {range.lo - pad, range.hi + pad};
}

// Tick values covering `range` at a nice step, about kTargetTicks of them.
std::vector<double> NiceTicks(Range range) {
  range = Widened(range);
  TORCH_CHECK(std::isfinite(range.hi - range.lo), "LineChartSvg: value range [", range.lo, ", ",
              range.hi, "] is too wide to draw");
  const double step = NiceNumber(NiceNumber(range.hi - range.lo, false) / (kTargetTicks - 1), true);
  const double first = std::floor(range.lo / step) * step;
  const int64_t count = std::llround((std::ceil(range.hi / step) * step - first) / step);
  std::vector<double> ticks;
  for (int64_t i = 0; i <= count; ++i) ticks.push_back(first + i * step);
  return ticks;
}

// Enough decimals to tell ticks `step` apart; exponent form for very large or small values.
std::string TickLabel(double value, double step) {
  if (std::fabs(value) < 1e-9 * step) value = 0.0;  // no "-0"
  const int decimals = std::max(0, static_cast<int>(-std::floor(std::log10(step) + 1e-9)));
  char buffer[48];
  if (decimals > 6 || std::fabs(value) >= 1e7) {
    std::snprintf(buffer, sizeof(buffer), "%.3g", value);
  } else {
    std::snprintf(buffer, sizeof(buffer), "%.*f", decimals, value);
  }
  return buffer;
}

// Maps data coordinates onto the plot area.
class ChartScale {
 public:
  ChartScale(const std::vector<double>& x_ticks, const std::vector<double>& y_ticks)
      : x_{x_ticks.front(), x_ticks.back()}, y_{y_ticks.front(), y_ticks.back()} {}

  double X(double x) const {
    return kPlotLeft + (x - x_.lo) / (x_.hi - x_.lo) * (kPlotRight - kPlotLeft);
  }
  double Y(double y) const {
    return kPlotBottom - (y - y_.lo) / (y_.hi - y_.lo) * (kPlotBottom - kPlotTop);
  }

 private:
  Range x_;
  Range y_;
};

std::string ChartFrame(const LineChart& chart) {
  const double mid_x = (kPlotLeft + kPlotRight) / 2;
  const double mid_y = (kPlotTop + kPlotBottom) / 2;
  return "<rect x=\"" + Num(kPlotLeft) + "\" y=\"" + Num(kPlotTop) + "\" width=\"" +
         Num(kPlotRight - kPlotLeft) + "\" height=\"" + Num(kPlotBottom - kPlotTop) +
         "\" fill=\"none\" stroke=\"#333333\"/>\n" +
         Title((kPlotLeft + kPlotRight) / 2, chart.title) +
         Text({mid_x, kPlotBottom + 45}, chart.x_label, "font-size=\"14\" text-anchor=\"middle\"") +
         Text({20, mid_y}, chart.y_label,
              "font-size=\"14\" text-anchor=\"middle\" transform=\"rotate(-90 20 " + Num(mid_y) +
                  ")\"");
}

std::string TicksAndGrid(const std::vector<double>& x_ticks, const std::vector<double>& y_ticks,
                         const ChartScale& scale) {
  const std::string grid = "stroke=\"#dddddd\"";
  const std::string label = "font-size=\"11\" text-anchor=\"middle\"";
  const double x_step = x_ticks[1] - x_ticks[0];
  const double y_step = y_ticks[1] - y_ticks[0];
  std::string out;
  for (double x : x_ticks) {
    out += Line({scale.X(x), kPlotTop}, {scale.X(x), kPlotBottom}, grid);
    out += Text({scale.X(x), kPlotBottom + 16}, TickLabel(x, x_step), label);
  }
  for (double y : y_ticks) {
    out += Line({kPlotLeft, scale.Y(y)}, {kPlotRight, scale.Y(y)}, grid);
    out += Text({kPlotLeft - 6, scale.Y(y) + 4}, TickLabel(y, y_step),
                "font-size=\"11\" text-anchor=\"end\"");
  }
  return out;
}

std::string SeriesPath(const std::vector<Point>& points, const char* colour,
                       const ChartScale& scale) {
  if (points.size() == 1) {
    return "<g fill=\"" + std::string(colour) + "\">" +
           Circle({scale.X(points[0].x), scale.Y(points[0].y)}, 3.0) + "</g>\n";
  }
  std::string coords;
  for (const Point& p : points) {
    coords += (coords.empty() ? "" : " ") + Num(scale.X(p.x)) + "," + Num(scale.Y(p.y));
  }
  return "<polyline fill=\"none\" stroke=\"" + std::string(colour) +
         "\" stroke-width=\"1.5\" points=\"" + coords + "\"/>\n";
}

std::string ChartLegend(const LineChart& chart) {
  std::string out;
  double y = kPlotTop + 10;
  for (size_t k = 0; k < chart.series.size(); ++k, y += 18.0) {
    const char* colour = kPalette[k % kPalette.size()];
    out += Line({kChartLegendX, y - 4}, {kChartLegendX + 20, y - 4},
                "stroke=\"" + std::string(colour) + "\" stroke-width=\"2\"");
    out += Text({kChartLegendX + 26, y}, chart.series[k].name, "font-size=\"12\"");
  }
  return out;
}

void CheckLineChart(const LineChart& chart) {
  for (size_t k = 0; k < chart.series.size(); ++k) {
    const LineSeries& s = chart.series[k];
    TORCH_CHECK(s.x.size() == s.y.size(), "LineChartSvg: series[", k, "] (\"", s.name, "\") has ",
                s.x.size(), " x values but ", s.y.size(), " y values");
  }
}

// The plotted data: every series' finite points, and their x and y ranges when there are any.
struct ChartData {
  std::vector<std::vector<Point>> series;
  bool empty = true;
  Range x{0.0, 0.0};
  Range y{0.0, 0.0};
};

ChartData CollectChartData(const LineChart& chart) {
  ChartData data;
  for (const LineSeries& s : chart.series) {
    data.series.push_back(FinitePoints(s));
    for (const Point& p : data.series.back()) {
      if (data.empty) {
        data.x = {p.x, p.x};
        data.y = {p.y, p.y};
        data.empty = false;
      }
      data.x = {std::min(data.x.lo, p.x), std::max(data.x.hi, p.x)};
      data.y = {std::min(data.y.lo, p.y), std::max(data.y.hi, p.y)};
    }
  }
  return data;
}

std::string NoData() {
  return Text({(kPlotLeft + kPlotRight) / 2, (kPlotTop + kPlotBottom) / 2}, "no data",
              "font-size=\"16\" fill=\"#777777\" text-anchor=\"middle\"");
}

std::string ChartBody(const ChartData& data) {
  const std::vector<double> x_ticks = NiceTicks(data.x);
  const std::vector<double> y_ticks = NiceTicks(data.y);
  const ChartScale scale(x_ticks, y_ticks);
  std::string out = TicksAndGrid(x_ticks, y_ticks, scale);
  for (size_t k = 0; k < data.series.size(); ++k) {
    if (!data.series[k].empty()) {
      out += SeriesPath(data.series[k], kPalette[k % kPalette.size()], scale);
    }
  }
  return out;
}

}  // namespace

std::string PoincareDiskSvg(const DiskPlot& plot) {
  CheckDiskPlot(plot);
  const std::vector<int64_t> classes = DistinctLabels(plot.point_labels);
  return SvgOpen(kDiskWidth, kDiskHeight) + Title(kDiskCentreX, plot.title) + DiskFrame() +
         ProxyEdges(plot) + PointGroups(plot, classes) + ProxyMarkers(plot) +
         DiskLegend(plot, classes) + "</svg>\n";
}

std::string LineChartSvg(const LineChart& chart) {
  CheckLineChart(chart);
  const ChartData data = CollectChartData(chart);
  return SvgOpen(kChartWidth, kChartHeight) + (data.empty ? NoData() : ChartBody(data)) +
         ChartFrame(chart) + ChartLegend(chart) + "</svg>\n";
}

}  // namespace hier::analysis
