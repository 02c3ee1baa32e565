// Tests of hier_client's parts that need no server: image sources, number and flag parsing,
// latency percentiles, the table and JSON formatters.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "client/bench/load_generator.h"
#include "client/bench/write_ledger.h"
#include "client/bench/write_requests.h"
#include "client/file_batches.h"
#include "client/flag_set.h"
#include "client/image_files.h"
#include "client/item_sources.h"
#include "client/json_output.h"
#include "client/latency_stats.h"
#include "client/number_parsing.h"
#include "client/table.h"

namespace hier::client {
namespace {

namespace fs = std::filesystem;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

class TempDirTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (fs::temp_directory_path() / "hier_client_test.XXXXXX").string();
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    root_ = pattern;
  }
  void TearDown() override { fs::remove_all(root_); }

  // Creates the file (and its folders) under the temp dir; returns its path.
  std::string Write(const std::string& relative, const std::string& content = "bytes") {
    const fs::path path = root_ / relative;
    fs::create_directories(path.parent_path());
    std::ofstream(path, std::ios::binary) << content;
    return path.string();
  }

  fs::path root_;
};

// --- the load generator ---

using LoadGeneratorTest = TempDirTest;

// A run whose stop file appears ends then, long before its duration.
TEST_F(LoadGeneratorTest, AStopFileEndsTheRun) {
  const std::string stop = (root_ / "loaded").string();
  std::atomic<int64_t> started{0};
  bench::LoadOptions options;
  options.in_flight = 2;
  options.duration = absl::Seconds(60);
  options.warmup = absl::ZeroDuration();
  options.stop_file = stop;
  const auto begin = std::chrono::steady_clock::now();
  const bench::LoadResult result = bench::RunLoad(
      options, [&](grpc::ClientContext*, int64_t sequence,
                   std::function<void(const grpc::Status&)> done) {
        if (++started == 50) Write("loaded");
        std::thread([done = std::move(done)] {
          std::this_thread::sleep_for(std::chrono::milliseconds(1));
          done(grpc::Status::OK);
        }).detach();
        (void)sequence;
      });
  EXPECT_LT(std::chrono::steady_clock::now() - begin, std::chrono::seconds(30));
  EXPECT_GE(result.requests, 49);
  EXPECT_LE(result.requests, 52);
  EXPECT_EQ(result.ok_latencies_ms.size(), static_cast<size_t>(result.requests));
}

// Paced at 100 calls/s, 40 calls take about 0.39 s however many are in flight and however fast
// each completes; unpaced, the same calls finish at once.
TEST(LoadGeneratorPacingTest, ARateSpacesTheStarts) {
  for (const double rate : {100.0, 0.0}) {
    SCOPED_TRACE(rate);
    bench::LoadOptions options;
    options.in_flight = 8;
    options.requests = 40;
    options.warmup = absl::ZeroDuration();
    options.rate = rate;
    std::mutex mu;
    std::vector<std::chrono::steady_clock::time_point> starts;
    const bench::LoadResult result = bench::RunLoad(
        options, [&](grpc::ClientContext*, int64_t, std::function<void(const grpc::Status&)> done) {
          {
            std::lock_guard<std::mutex> lock(mu);
            starts.push_back(std::chrono::steady_clock::now());
          }
          std::thread([done = std::move(done)] { done(grpc::Status::OK); }).detach();
        });
    EXPECT_EQ(result.requests, 40);
    ASSERT_EQ(starts.size(), 40u);
    std::sort(starts.begin(), starts.end());
    const double spread = std::chrono::duration<double>(starts.back() - starts.front()).count();
    if (rate > 0) {
      EXPECT_GE(spread, 0.37);
      EXPECT_LT(spread, 5.0);
    } else {
      EXPECT_LT(spread, 0.3);
    }
  }
}

// --- write requests and the ledger ---

// Call i of an add load and call i of a delete load with the same first id and batch name the same
// ids, and consecutive calls' ids follow on without a gap.
TEST(WriteRequestsTest, AddAndDeleteCallsCoverTheSameIds) {
  const std::vector<std::string> images = {"a", "b", "c"};
  const std::vector<std::vector<float>> vectors = {{0.1f, 0.2f}, {0.3f, 0.4f}};
  for (const int64_t sequence : {0, 1, 7}) {
    SCOPED_TRACE(sequence);
    const hier::v1::AddItemsRequest by_image = bench::AddImagesRequest(images, 4, 1000, sequence);
    const hier::v1::AddItemsRequest by_vector =
        bench::AddVectorsRequest(vectors, 4, 1000, sequence);
    const hier::v1::DeleteItemsRequest deleted = bench::DeleteRequest(4, 1000, sequence);
    ASSERT_EQ(by_image.items_size(), 4);
    ASSERT_EQ(by_vector.items_size(), 4);
    ASSERT_EQ(deleted.ids_size(), 4);
    EXPECT_EQ(bench::FirstIdOfCall(1000, 4, sequence), 1000 + 4 * sequence);
    for (int j = 0; j < 4; ++j) {
      const int64_t id = 1000 + 4 * sequence + j;
      EXPECT_EQ(by_image.items(j).id(), id);
      EXPECT_EQ(by_image.items(j).key(), absl::StrCat("bench-", id));
      EXPECT_EQ(by_image.items(j).label(), "bench");
      EXPECT_EQ(by_image.items(j).image(), images[id % 3]);
      EXPECT_EQ(by_vector.items(j).id(), id);
      EXPECT_THAT(by_vector.items(j).vector().values(),
                  ElementsAre(vectors[id % 2][0], vectors[id % 2][1]));
      EXPECT_EQ(deleted.ids(j), id);
    }
  }
}

using WriteLedgerTest = TempDirTest;

TEST_F(WriteLedgerTest, AppendsOneLinePerCallFromManyThreads) {
  const std::string path = Write("ledger.txt", "add 0 4 OK\n");
  {
    absl::StatusOr<std::unique_ptr<bench::WriteLedger>> ledger = bench::WriteLedger::Open(path);
    ASSERT_TRUE(ledger.ok()) << ledger.status();
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
      threads.emplace_back([&, t] {
        for (int i = 0; i < 100; ++i) {
          (*ledger)->Record(t % 2 == 0 ? "add" : "delete", 1000 + 100 * t + i, 1,
                            i % 10 == 0 ? absl::StatusCode::kUnavailable : absl::StatusCode::kOk);
        }
      });
    }
    for (std::thread& thread : threads) thread.join();
    EXPECT_TRUE((*ledger)->status().ok());
  }
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  ASSERT_EQ(lines.size(), 401u);
  EXPECT_EQ(lines[0], "add 0 4 OK");  // appended, not truncated
  int unavailable = 0;
  for (const std::string& line : lines) {
    unavailable += line.find(" UNAVAILABLE") != std::string::npos;
  }
  EXPECT_EQ(unavailable, 40);
  EXPECT_EQ(bench::WriteLedger::Line("delete", 12, 4, absl::StatusCode::kDeadlineExceeded),
            "delete 12 4 DEADLINE_EXCEEDED");
}

TEST_F(WriteLedgerTest, AFolderThatIsMissingIsNamed) {
  absl::StatusOr<std::unique_ptr<bench::WriteLedger>> ledger =
      bench::WriteLedger::Open((root_ / "no" / "ledger.txt").string());
  ASSERT_FALSE(ledger.ok());
  EXPECT_EQ(ledger.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(ledger.status().message()), HasSubstr("ledger.txt"));
}

// --- image files ---

TEST(ImageFilesTest, RecognisesImageExtensions) {
  struct Case {
    const char* name;
    bool image;
  };
  for (const Case& c : std::vector<Case>{{"a.jpg", true},
                                         {"b.JPEG", true},
                                         {"c.png", true},
                                         {"d.webp", true},
                                         {"e.txt", false},
                                         {"jpg", false},
                                         {"f.jpg.bak", false}}) {
    EXPECT_EQ(IsImageFileName(c.name), c.image) << c.name;
  }
}

using ImageFilesDirTest = TempDirTest;

TEST_F(ImageFilesDirTest, ListsImagesSortedAndNotRecursively) {
  Write("b.png");
  Write("a.jpg");
  Write("notes.txt");
  Write(".hidden.jpg");
  Write("sub/c.jpg");
  auto images = ListImageFiles(root_.string());
  ASSERT_TRUE(images.ok()) << images.status();
  EXPECT_THAT(*images, ElementsAre((root_ / "a.jpg").string(), (root_ / "b.png").string()));
}

TEST_F(ImageFilesDirTest, ReadsBytesAndNamesAMissingFile) {
  const std::string path = Write("x.bin", std::string("a\0b", 3));
  auto bytes = ReadFileBytes(path);
  ASSERT_TRUE(bytes.ok()) << bytes.status();
  EXPECT_EQ(*bytes, std::string("a\0b", 3));

  auto missing = ReadFileBytes((root_ / "nope.jpg").string());
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(missing.status().message(), HasSubstr("nope.jpg"));
}

// --- class folders and list files ---

using ItemSourcesTest = TempDirTest;

TEST_F(ItemSourcesTest, ClassFolderGivesLabelsAndRelativeKeysSorted) {
  Write("dog/x.JPG");
  Write("cat/b.jpg");
  Write("cat/a.png");
  Write("cat/readme.txt");
  Write("top-level.jpg");  // not in a class folder
  Write(".cache/y.jpg");   // hidden folder
  auto entries = ReadClassFolder(root_.string());
  ASSERT_TRUE(entries.ok()) << entries.status();
  ASSERT_EQ(entries->size(), 3u);
  const std::vector<std::vector<std::string>> expected = {
      {"cat/a.png", "cat", (root_ / "cat" / "a.png").string()},
      {"cat/b.jpg", "cat", (root_ / "cat" / "b.jpg").string()},
      {"dog/x.JPG", "dog", (root_ / "dog" / "x.JPG").string()}};
  for (size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ((*entries)[i].key, expected[i][0]);
    EXPECT_EQ((*entries)[i].label, expected[i][1]);
    EXPECT_EQ((*entries)[i].path, expected[i][2]);
  }
}

TEST_F(ItemSourcesTest, ClassFolderErrorsNameTheFolder) {
  auto missing = ReadClassFolder((root_ / "absent").string());
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(missing.status().message(), HasSubstr("absent"));

  Write("empty-class/notes.txt");
  auto empty = ReadClassFolder(root_.string());
  EXPECT_EQ(empty.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(empty.status().message(), HasSubstr(root_.string()));
}

TEST_F(ItemSourcesTest, ListFileResolvesPathsAgainstItsFolderAndSortsByKey) {
  Write("lists/img/b.jpg");
  Write("lists/img/a b.png");
  const std::string absolute = Write("elsewhere/c.jpg");
  const std::string list = Write("lists/items.txt",
                                 "# path label\n"
                                 "img/b.jpg   bird\n"
                                 "\n"
                                 "img/a b.png\tcat\r\n" +
                                     absolute + " dog\n");
  auto entries = ReadListFile(list);
  ASSERT_TRUE(entries.ok()) << entries.status();
  ASSERT_EQ(entries->size(), 3u);
  EXPECT_EQ((*entries)[0].key, absolute);
  EXPECT_EQ((*entries)[0].path, absolute);
  EXPECT_EQ((*entries)[0].label, "dog");
  EXPECT_EQ((*entries)[1].key, "img/a b.png");
  EXPECT_EQ((*entries)[1].path, (root_ / "lists" / "img" / "a b.png").string());
  EXPECT_EQ((*entries)[1].label, "cat");
  EXPECT_EQ((*entries)[2].key, "img/b.jpg");
  EXPECT_EQ((*entries)[2].label, "bird");
}

TEST_F(ItemSourcesTest, ListFileNamesAMissingImageAndItsLine) {
  Write("img/a.jpg");
  const std::string list = Write("items.txt", "img/a.jpg cat\nimg/missing.jpg dog\n");
  auto entries = ReadListFile(list);
  EXPECT_EQ(entries.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(entries.status().message(), HasSubstr("img/missing.jpg"));
  EXPECT_THAT(entries.status().message(), HasSubstr("items.txt:2"));
}

TEST_F(ItemSourcesTest, ListFileErrors) {
  auto missing_list = ReadListFile((root_ / "no-list.txt").string());
  EXPECT_EQ(missing_list.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(missing_list.status().message(), HasSubstr("no-list.txt"));

  Write("a.jpg");
  auto no_label = ReadListFile(Write("no-label.txt", "a.jpg cat\na.jpg\n"));
  EXPECT_EQ(no_label.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(no_label.status().message(), HasSubstr("no-label.txt:2"));

  auto twice = ReadListFile(Write("twice.txt", "a.jpg cat\na.jpg dog\n"));
  EXPECT_EQ(twice.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(twice.status().message(), HasSubstr("twice.txt:2"));

  auto empty = ReadListFile(Write("empty.txt", "# nothing\n\n"));
  EXPECT_EQ(empty.status().code(), absl::StatusCode::kNotFound);
}

// --- batches ---

using FileBatchesTest = TempDirTest;

TEST_F(FileBatchesTest, CutsByCountAndBytesAndKeepsLargeFilesAlone) {
  std::vector<std::string> paths;
  for (int size : {10, 10, 10, 50, 10, 10, 10, 10}) {
    paths.push_back(Write(absl::StrCat("f", paths.size()), std::string(size, 'x')));
  }
  auto batches = PlanFileBatches(paths, /*max_items=*/3, /*max_bytes=*/30);
  ASSERT_TRUE(batches.ok()) << batches.status();
  std::vector<std::pair<size_t, size_t>> ranges;
  for (const FileBatch& batch : *batches) ranges.emplace_back(batch.begin, batch.end);
  // [10 10 10] full by count and bytes; [50] alone, over the byte limit; [10 10 10]; [10].
  EXPECT_THAT(ranges, ElementsAre(std::make_pair(0u, 3u), std::make_pair(3u, 4u),
                                  std::make_pair(4u, 7u), std::make_pair(7u, 8u)));

  auto none = PlanFileBatches({}, 3, 30);
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
}

TEST_F(FileBatchesTest, NamesAMissingFile) {
  auto batches = PlanFileBatches({Write("a"), (root_ / "gone.jpg").string()}, 8);
  EXPECT_EQ(batches.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(batches.status().message(), HasSubstr("gone.jpg"));
}

// --- numbers ---

TEST(NumberParsingTest, ParsesVectors) {
  struct Case {
    const char* text;
    std::vector<float> values;
  };
  for (const Case& c : std::vector<Case>{
           {"0.1,0.2,-0.3", {0.1f, 0.2f, -0.3f}}, {" 1e-2 , 2 ", {0.01f, 2.0f}}, {"0", {0.0f}}}) {
    auto values = ParseVector("--vector", c.text);
    ASSERT_TRUE(values.ok()) << c.text << ": " << values.status();
    EXPECT_EQ(*values, c.values) << c.text;
  }
}

TEST(NumberParsingTest, BadVectorElementsAreNamed) {
  struct Case {
    const char* text;
    const char* expected;  // in the message
  };
  for (const Case& c : std::vector<Case>{{"0.1,abc,0.3", "element 2 ('abc')"},
                                         {"0.1,,0.3", "element 2 ('')"},
                                         {"0.1,0.2,", "element 3 ('')"},
                                         {"nan,1", "element 1 ('nan')"},
                                         {"1,inf", "element 2 ('inf')"},
                                         {"1,1e99", "element 2 ('1e99')"},
                                         {"0.5x", "element 1 ('0.5x')"},
                                         {"  ", "empty vector"}}) {
    auto values = ParseVector("--vector", c.text);
    EXPECT_EQ(values.status().code(), absl::StatusCode::kInvalidArgument) << c.text;
    EXPECT_THAT(values.status().message(), HasSubstr("--vector: ")) << c.text;
    EXPECT_THAT(values.status().message(), HasSubstr(c.expected)) << c.text;
  }
}

TEST(NumberParsingTest, ScalarsNameTheValue) {
  EXPECT_EQ(*ParseInt64("ID", "-12"), -12);
  EXPECT_THAT(ParseInt64("ID", "12x").status().message(), HasSubstr("ID: '12x' is not an integer"));
  EXPECT_THAT(ParseInt64("ID", "99999999999999999999").status().message(), HasSubstr("ID"));
  EXPECT_DOUBLE_EQ(*ParseDouble("--c", "0.25"), 0.25);
  EXPECT_THAT(ParseDouble("--c", "nan").status().message(),
              HasSubstr("--c: 'nan' is not a number"));
}

// --- flags ---

TEST(FlagSetTest, ParsesTypedFlagsAndPositionals) {
  std::string server = "localhost:50051";
  int64_t k = 10;
  double timeout = 30;
  bool json = false;
  bool ancestors = true;
  FlagSet flags;
  flags.AddString("server", &server, "HOST:PORT", "");
  flags.AddInt("k", &k, "N", "");
  flags.AddDouble("timeout", &timeout, "SECONDS", "");
  flags.AddBool("json", &json, "");
  flags.AddBool("ancestors", &ancestors, "");
  const std::vector<std::string> args = {
      "items", "--k", "5", "--server=h:1", "add", "--json", "--ancestors=false", "--", "--timeout"};
  auto positional = flags.Parse(args);
  ASSERT_TRUE(positional.ok()) << positional.status();
  EXPECT_THAT(*positional, ElementsAre("items", "add", "--timeout"));
  EXPECT_EQ(server, "h:1");
  EXPECT_EQ(k, 5);
  EXPECT_EQ(timeout, 30);
  EXPECT_TRUE(json);
  EXPECT_FALSE(ancestors);
  EXPECT_TRUE(flags.IsSet("k"));
  EXPECT_FALSE(flags.IsSet("timeout"));
}

TEST(FlagSetTest, NegativeValuesAndLeadingFlags) {
  std::string vector;
  int64_t first = 0;
  FlagSet flags;
  flags.AddString("vector", &vector, "X,Y", "");
  flags.AddInt("first", &first, "N", "");
  const std::vector<std::string> args = {"--vector", "-0.1,0.2", "--first", "-3", "search", "--k"};
  auto consumed = flags.ParseLeading(args);
  ASSERT_TRUE(consumed.ok()) << consumed.status();
  EXPECT_EQ(*consumed, 4u);
  EXPECT_EQ(vector, "-0.1,0.2");
  EXPECT_EQ(first, -3);
}

TEST(FlagSetTest, ErrorsNameTheFlag) {
  int64_t k = 10;
  bool json = false;
  FlagSet flags;
  flags.AddInt("k", &k, "N", "");
  flags.AddBool("json", &json, "");
  struct Case {
    std::vector<std::string> args;
    const char* expected;
  };
  for (const Case& c : std::vector<Case>{{{"--k", "ten"}, "--k: 'ten' is not an integer"},
                                         {{"--k"}, "--k: missing value"},
                                         {{"--kk", "1"}, "unknown flag --kk"},
                                         {{"--json=yes"}, "--json: 'yes' is not true or false"}}) {
    auto parsed = flags.Parse(c.args);
    EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument) << c.expected;
    EXPECT_EQ(parsed.status().message(), c.expected);
  }
}

TEST(FlagSetTest, UsageShowsValueNamesAndDefaults) {
  int64_t k = 10;
  int64_t overfetch = 0;
  bool json = false;
  FlagSet flags;
  flags.AddInt("k", &k, "N", "neighbours");
  flags.AddInt("overfetch", &overfetch, "N", "candidates");
  flags.AddBool("json", &json, "JSON output");
  EXPECT_EQ(flags.Usage(),
            "  --k N          neighbours (default 10)\n"
            "  --overfetch N  candidates\n"
            "  --json         JSON output\n");
}

// --- latency percentiles ---

TEST(LatencyStatsTest, NearestRankPercentilesOfOneToHundred) {
  std::vector<double> samples;
  for (int i = 100; i >= 1; --i) samples.push_back(i);  // unsorted on purpose
  const LatencySummary summary = SummarizeLatencies(samples);
  EXPECT_EQ(summary.count, 100);
  EXPECT_EQ(summary.p50, 50);
  EXPECT_EQ(summary.p90, 90);
  EXPECT_EQ(summary.p99, 99);
  EXPECT_EQ(summary.p999, 100);  // ceil(99.9) = rank 100
  EXPECT_EQ(summary.max, 100);
  EXPECT_DOUBLE_EQ(summary.mean, 50.5);
}

TEST(LatencyStatsTest, P999NeedsAThousandSamplesToDifferFromTheMaximum) {
  std::vector<double> samples;
  for (int i = 1; i <= 2000; ++i) samples.push_back(i);
  const LatencySummary summary = SummarizeLatencies(samples);
  EXPECT_EQ(summary.p99, 1980);
  EXPECT_EQ(summary.p999, 1998);  // ceil(1998) = rank 1998
  EXPECT_EQ(summary.max, 2000);
}

TEST(LatencyStatsTest, NearestRankOnSmallSamples) {
  struct Case {
    std::vector<double> sorted;
    double percent;
    double expected;
  };
  for (const Case& c : std::vector<Case>{
           {{1, 2, 3, 4}, 50, 2},                     // ceil(2) = rank 2
           {{1, 2, 3, 4, 5}, 50, 3},                  // ceil(2.5) = rank 3
           {{1, 2, 3, 4, 5}, 90, 5},                  // ceil(4.5) = rank 5
           {{1, 2, 3, 4, 5}, 0, 1},                   // rank 1 at least
           {{1, 2, 3, 4, 5}, 100, 5},                 // the maximum
           {{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, 90, 9},  // 0.9 * 10 must not round up to 10
           {{7}, 99, 7},
           {{}, 50, 0},
       }) {
    EXPECT_EQ(NearestRankPercentile(c.sorted, c.percent), c.expected)
        << "p" << c.percent << " of " << c.sorted.size() << " samples";
  }
}

TEST(LatencyStatsTest, SkewedSampleAndEmpty) {
  // 98 fast calls and 2 slow ones: p50 and p90 fast, p99 catches the first slow one.
  std::vector<double> samples(98, 1.5);
  samples.push_back(40);
  samples.push_back(80);
  const LatencySummary summary = SummarizeLatencies(samples);
  EXPECT_EQ(summary.p50, 1.5);
  EXPECT_EQ(summary.p90, 1.5);
  EXPECT_EQ(summary.p99, 40);
  EXPECT_EQ(summary.max, 80);

  const LatencySummary none = SummarizeLatencies({});
  EXPECT_EQ(none.count, 0);
  EXPECT_EQ(none.p99, 0);
  EXPECT_EQ(none.max, 0);
}

// --- formatting ---

TEST(TextTableTest, AlignsColumnsWithoutTrailingSpaces) {
  using Align = TextTable::Align;
  TextTable table({{"rank", Align::kRight}, {"key"}, {"distance", Align::kRight}, {"label"}});
  table.AddRow({"1", "cat/001.jpg", FormatFixed(0.1234567, 6), "cat"});
  table.AddRow({"10", "d.png", FormatFixed(12.5, 6)});  // label left blank
  EXPECT_EQ(table.Render(),
            "rank  key           distance  label\n"
            "----  -----------  ---------  -----\n"
            "   1  cat/001.jpg   0.123457  cat\n"
            "  10  d.png        12.500000\n");
}

TEST(TextTableTest, CountsUtf8CodePoints) {
  TextTable table({{"key"}, {"n", TextTable::Align::kRight}});
  table.AddRow({"café", "1"});
  table.AddRow({"tea", "22"});
  EXPECT_EQ(table.Render(),
            "key    n\n"
            "----  --\n"
            "café   1\n"
            "tea   22\n");
}

TEST(JsonOutputTest, KeepsKeyOrderEscapesAndFormatsNumbers) {
  JsonValue neighbours = JsonValue::array();
  neighbours.push_back({{"id", -7}, {"distance", 0.1}});
  neighbours.push_back({{"id", 8}, {"distance", std::nan("")}});
  const JsonValue value = JsonValue::array(
      {{{"query", "a \"b\"\\\n\x01"}, {"neighbours", neighbours}, {"ok", true},
        {"x", FloatForJson(0.1f)}},
       JsonValue::array()});
  EXPECT_EQ(DumpJson(value),
            "[{\"query\":\"a \\\"b\\\"\\\\\\n\\u0001\",\"neighbours\":"
            "[{\"id\":-7,\"distance\":0.1},{\"id\":8,\"distance\":null}],"
            "\"ok\":true,\"x\":0.1},[]]");
}

TEST(JsonOutputTest, BytesThatAreNotUtf8AreReplacedNotFatal) {
  const std::string dumped = DumpJson({{"file", std::string("caf\xe9.png")}});
  EXPECT_EQ(dumped, "{\"file\":\"caf\xef\xbf\xbd.png\"}");
}

}  // namespace
}  // namespace hier::client
