#include "trainer/analysis/svg_plot.h"

#include <gtest/gtest.h>

#include <cctype>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "tests/core/error_message.h"

namespace hier::testing {
namespace {

using analysis::DiskPlot;
using analysis::LineChart;

bool IsEntityAt(const std::string& xml, size_t at) {
  for (const char* entity : {"&amp;", "&lt;", "&gt;", "&quot;", "&apos;"}) {
    if (xml.compare(at, std::char_traits<char>::length(entity), entity) == 0) return true;
  }
  return false;
}

// "" when `xml` is one element tree whose tags balance, attribute quotes pair up and every '&' is
// an entity; else what is wrong. Enough of XML for what the plots write (no comments, CDATA or
// processing instructions).
std::string XmlProblem(const std::string& xml) {
  std::vector<std::string> open;
  bool seen_root = false;
  for (size_t i = 0; i < xml.size();) {
    if (xml[i] == '&' && !IsEntityAt(xml, i)) return "bare '&' at " + std::to_string(i);
    if (xml[i] == '>') return "bare '>' at " + std::to_string(i);
    if (xml[i] != '<') {
      if (open.empty() && !std::isspace(static_cast<unsigned char>(xml[i]))) {
        return "text outside the root at " + std::to_string(i);
      }
      ++i;
      continue;
    }
    const size_t end = xml.find('>', i);
    if (end == std::string::npos) return "unterminated tag at " + std::to_string(i);
    const std::string tag = xml.substr(i + 1, end - i - 1);
    if (tag.find('<') != std::string::npos) return "'<' inside <" + tag + ">";
    if (std::count(tag.begin(), tag.end(), '"') % 2 != 0) return "odd quotes in <" + tag + ">";
    for (size_t k = tag.find('&'); k != std::string::npos; k = tag.find('&', k + 1)) {
      if (!IsEntityAt(xml, i + 1 + k)) return "bare '&' in <" + tag + ">";
    }
    if (tag.empty()) return "empty tag at " + std::to_string(i);
    if (tag[0] == '/') {
      if (open.empty() || open.back() != tag.substr(1)) return "unexpected </" + tag + ">";
      open.pop_back();
    } else {
      if (open.empty() && seen_root) return "second root <" + tag + ">";
      seen_root = true;
      if (tag.back() != '/') open.push_back(tag.substr(0, tag.find_first_of(" \t\n")));
    }
    i = end + 1;
  }
  if (!open.empty()) return "unclosed <" + open.back() + ">";
  return seen_root ? "" : "no element";
}

int64_t Count(const std::string& text, const std::string& needle) {
  int64_t count = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) {
    ++count;
  }
  return count;
}

void ExpectSvgDocument(const std::string& svg) {
  EXPECT_EQ(svg.rfind("<svg", 0), 0u);
  EXPECT_EQ(svg.substr(svg.find_last_not_of("\n") - 5, 6), "</svg>");
  EXPECT_EQ(XmlProblem(svg), "");
  EXPECT_EQ(svg.find("nan"), std::string::npos);
  EXPECT_EQ(svg.find("inf"), std::string::npos);
}

TEST(XmlCheckerTest, CatchesWhatItIsFor) {
  EXPECT_EQ(XmlProblem("<svg><g><circle r=\"1\"/></g></svg>"), "");
  EXPECT_NE(XmlProblem("<svg><g></svg>"), "");
  EXPECT_NE(XmlProblem("<svg><text>a & b</text></svg>"), "");
  EXPECT_NE(XmlProblem("<svg><text>a < b</text></svg>"), "");
  EXPECT_NE(XmlProblem("<svg a=\"1/></svg>"), "");
  EXPECT_NE(XmlProblem("<svg/><svg/>"), "");
}

// 30 points of three classes on a ring and five proxies: one root, its children, a grandchild.
DiskPlot SmallDiskPlot() {
  DiskPlot plot;
  plot.title = "Embeddings";
  for (int i = 0; i < 30; ++i) {
    const double angle = 0.2 * i;
    plot.points.push_back({0.8 * std::cos(angle), 0.8 * std::sin(angle)});
    plot.point_labels.push_back(i % 3);
  }
  plot.class_names = {{0, "cat"}, {1, "dog"}};  // label 2 is shown as "2"
  plot.proxies = {{0.05, 0.0}, {0.5, 0.1}, {-0.4, 0.3}, {0.7, 0.2}, {-0.1, -0.6}};
  plot.proxy_parents = {-1, 0, 0, 1, 0};
  plot.proxy_members = {0, 10, 5, 12, 3};
  return plot;
}

TEST(PoincareDiskSvgTest, WellFormedWithOneCirclePerPointAndProxy) {
  const DiskPlot plot = SmallDiskPlot();
  const std::string svg = analysis::PoincareDiskSvg(plot);
  ExpectSvgDocument(svg);
  // Every point and proxy is a circle; the one more is the disk's boundary.
  EXPECT_EQ(Count(svg, "<circle "), 30 + 5 + 1);
  EXPECT_NE(svg.find(">cat</text>"), std::string::npos);
  EXPECT_NE(svg.find(">2</text>"), std::string::npos);
  EXPECT_NE(svg.find(">Embeddings</text>"), std::string::npos);
  // One edge per proxy, the root's to the origin (canvas centre 400, 410).
  const size_t path = svg.find(" d=\"");
  ASSERT_NE(path, std::string::npos);
  EXPECT_EQ(Count(svg.substr(path, svg.find('"', path + 4) - path), "M"), 5);
  EXPECT_NE(svg.find("M418.0 410.0L400.0 410.0"), std::string::npos);
}

TEST(PoincareDiskSvgTest, EscapesSpecialCharacters) {
  DiskPlot plot = SmallDiskPlot();
  plot.title = "<A & \"B\">";
  plot.class_names[0] = "cats & 'dogs' <3";
  const std::string svg = analysis::PoincareDiskSvg(plot);
  ExpectSvgDocument(svg);
  EXPECT_NE(svg.find("&lt;A &amp; &quot;B&quot;&gt;"), std::string::npos);
  EXPECT_NE(svg.find("cats &amp; &apos;dogs&apos; &lt;3"), std::string::npos);
}

TEST(PoincareDiskSvgTest, EmptyPlotAndCappedLegend) {
  DiskPlot empty;
  const std::string empty_svg = analysis::PoincareDiskSvg(empty);
  ExpectSvgDocument(empty_svg);
  EXPECT_EQ(Count(empty_svg, "<circle "), 1);

  DiskPlot many;
  for (int i = 0; i < 30; ++i) {
    many.points.push_back({0.01 * i, 0.0});
    many.point_labels.push_back(i);
  }
  const std::string svg = analysis::PoincareDiskSvg(many);
  ExpectSvgDocument(svg);
  EXPECT_NE(svg.find(">+10 more</text>"), std::string::npos);
}

TEST(PoincareDiskSvgTest, TenThousandPointsStaySmall) {
  DiskPlot plot;
  for (int i = 0; i < 10000; ++i) {
    const double r = 0.99 * (i % 97) / 96.0, angle = 0.01 * i;
    plot.points.push_back({r * std::cos(angle), r * std::sin(angle)});
    plot.point_labels.push_back(i % 100);
  }
  for (int i = 0; i < 512; ++i) {
    plot.proxies.push_back({0.9 * std::cos(0.1 * i) * i / 512, 0.9 * std::sin(0.1 * i) * i / 512});
    plot.proxy_parents.push_back(i == 0 ? -1 : (i - 1) / 2);
    plot.proxy_members.push_back(i % 40);
  }
  const std::string svg = analysis::PoincareDiskSvg(plot);
  EXPECT_EQ(XmlProblem(svg), "");
  EXPECT_EQ(Count(svg, "<circle "), 10000 + 512 + 1);
  EXPECT_LT(svg.size(), 600u * 1024);
}

TEST(PoincareDiskSvgTest, RefusesBadInput) {
  const struct {
    const char* name;
    void (*spoil)(DiskPlot&);
    const char* message;
  } cases[] = {
      {"point outside",
       [](DiskPlot& p) {
         p.points[3] = {0.9, 0.9};
       },
       "PoincareDiskSvg: points[3] = (0.9, 0.9) is not a finite point of the closed unit disk"},
      {"nan proxy", [](DiskPlot& p) { p.proxies[1][0] = std::nan(""); }, "proxies[1]"},
      {"label count", [](DiskPlot& p) { p.point_labels.pop_back(); },
       "point_labels has 29 entries for 30 points"},
      {"self parent", [](DiskPlot& p) { p.proxy_parents[2] = 2; }, "proxy_parents[2] = 2"},
      {"parent range", [](DiskPlot& p) { p.proxy_parents[2] = 5; }, "proxy_parents[2] = 5"},
      {"member count", [](DiskPlot& p) { p.proxy_members.pop_back(); },
       "proxy_members has 4 entries; expected none or 5"},
      {"negative members", [](DiskPlot& p) { p.proxy_members[0] = -1; }, "proxy_members[0] = -1"},
  };
  for (const auto& test_case : cases) {
    DiskPlot plot = SmallDiskPlot();
    test_case.spoil(plot);
    EXPECT_NE(ErrorMessage([&] { analysis::PoincareDiskSvg(plot); }).find(test_case.message),
              std::string::npos)
        << test_case.name;
  }
}

constexpr double kNan = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

TEST(LineChartSvgTest, DegenerateChartsDrawWithoutCrashing) {
  const struct {
    const char* name;
    std::vector<analysis::LineSeries> series;
    bool no_data;
    int64_t dots;  // single-point series drawn as a circle
  } cases[] = {
      {"no series", {}, true, 0},
      {"empty series", {{"loss", {}, {}}}, true, 0},
      {"only non-finite values", {{"loss", {0, 1, kNan}, {kNan, kInf, 1}}}, true, 0},
      {"single point", {{"loss", {3}, {0.25}}}, false, 1},
      {"constant series", {{"recall", {0, 1, 2, 3}, {0.5, 0.5, 0.5, 0.5}}}, false, 0},
      {"constant zero", {{"recall", {5, 5}, {0, 0}}}, false, 0},
      {"nearly constant", {{"loss", {0, 1e-300}, {1e6, 1e6 + 1e-7}}}, false, 0},
      {"gaps and an empty one",
       {{"loss", {0, 1, 2, 3}, {1.0, kNan, 0.5, 0.4}}, {"empty", {}, {}}, {"one", {2}, {0.7}}},
       false,
       1},
  };
  for (const auto& test_case : cases) {
    SCOPED_TRACE(test_case.name);
    const std::string svg =
        analysis::LineChartSvg({"Training", "epoch", "value", test_case.series});
    ExpectSvgDocument(svg);
    EXPECT_EQ(svg.find(">no data</text>") != std::string::npos, test_case.no_data);
    EXPECT_EQ(Count(svg, "<circle "), test_case.dots);
    EXPECT_NE(svg.find(">epoch</text>"), std::string::npos);
  }
}

TEST(LineChartSvgTest, NiceTicksAndLegend) {
  const LineChart chart{"Recall & loss",
                        "step",
                        "value",
                        {{"R@1", {0, 50, 100}, {0.1, 0.5, 0.9}}, {"loss", {0, 100}, {0.9, 0.2}}}};
  const std::string svg = analysis::LineChartSvg(chart);
  ExpectSvgDocument(svg);
  for (const char* tick :
       {">0</text>", ">20</text>", ">100</text>", ">0.0</text>", ">0.4</text>", ">1.0</text>"}) {
    EXPECT_NE(svg.find(tick), std::string::npos) << tick;
  }
  EXPECT_EQ(svg.find(">120</text>"), std::string::npos);
  EXPECT_EQ(Count(svg, "<polyline "), 2);
  EXPECT_NE(svg.find(">R@1</text>"), std::string::npos);
  EXPECT_NE(svg.find(">Recall &amp; loss</text>"), std::string::npos);
}

TEST(LineChartSvgTest, RefusesMismatchedLengths) {
  const LineChart chart{"t", "x", "y", {{"loss", {0, 1}, {1}}}};
  EXPECT_NE(ErrorMessage([&] {
              analysis::LineChartSvg(chart);
            }).find("LineChartSvg: series[0] (\"loss\") has 2 x values but 1 y values"),
            std::string::npos);
}

}  // namespace
}  // namespace hier::testing
