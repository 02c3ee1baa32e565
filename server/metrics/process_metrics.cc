#include "server/metrics/process_metrics.h"

#include <malloc.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <optional>
#include <sstream>
#include <string>
#include <system_error>
#include <vector>

#include "prometheus/client_metric.h"
#include "prometheus/metric_type.h"

namespace hier::server {
namespace {

// The fields of /proc/self/stat that the metrics need (proc(5) numbers them from 1).
struct ProcStat {
  double cpu_ticks = 0;         // utime (14) + stime (15)
  double threads = 0;           // num_threads (20)
  double start_after_boot = 0;  // starttime (22), clock ticks after boot
};

std::optional<std::string> ReadFile(const char* path) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

std::optional<ProcStat> ReadProcStat() {
  const std::optional<std::string> text = ReadFile("/proc/self/stat");
  if (!text) return std::nullopt;
  // The command name (field 2) is in parentheses and may hold spaces and ')': skip to the last ')'.
  const size_t close = text->rfind(')');
  if (close == std::string::npos) return std::nullopt;
  // Field 3 is the state letter; the numeric fields 4..22 follow.
  std::istringstream in(text->substr(close + 1));
  std::string state;
  std::vector<double> fields(19);
  if (!(in >> state)) return std::nullopt;
  for (double& field : fields) {
    if (!(in >> field)) return std::nullopt;
  }
  const auto field = [&fields](int number) { return fields[number - 4]; };
  return ProcStat{field(14) + field(15), field(20), field(22)};
}

// Seconds since the epoch at boot: the "btime" line of /proc/stat.
std::optional<double> ReadBootTime() {
  std::ifstream in("/proc/stat");
  std::string key;
  double value = 0;
  while (in >> key) {
    if (key == "btime" && in >> value) return value;
    in.ignore(std::numeric_limits<std::streamsize>::max(), '\n');
  }
  return std::nullopt;
}

int64_t CountOpenFds() {
  std::error_code error;
  std::filesystem::directory_iterator it("/proc/self/fd", error);
  if (error) return -1;
  int64_t count = 0;
  for (; it != std::filesystem::directory_iterator(); it.increment(error)) {
    if (error) return -1;
    ++count;
  }
  return count - 1;  // the descriptor the listing itself holds open
}

prometheus::MetricFamily OneValue(const char* name, const char* help, prometheus::MetricType type,
                                  double value) {
  prometheus::ClientMetric metric;
  if (type == prometheus::MetricType::Counter) {
    metric.counter.value = value;
  } else {
    metric.gauge.value = value;
  }
  return prometheus::MetricFamily{name, help, type, {metric}};
}

}  // namespace

std::vector<prometheus::MetricFamily> ProcessMetrics::Collect() const {
  using prometheus::MetricType;
  std::vector<prometheus::MetricFamily> families;
  const double ticks_per_second = static_cast<double>(sysconf(_SC_CLK_TCK));
  const double page_bytes = static_cast<double>(sysconf(_SC_PAGESIZE));

  if (const std::optional<ProcStat> stat = ReadProcStat()) {
    families.push_back(OneValue("process_cpu_seconds_total",
                                "Total user and system CPU time spent in seconds.",
                                MetricType::Counter, stat->cpu_ticks / ticks_per_second));
    if (const std::optional<double> boot = ReadBootTime()) {
      families.push_back(OneValue(
          "process_start_time_seconds", "Start time of the process since unix epoch in seconds.",
          MetricType::Gauge, *boot + stat->start_after_boot / ticks_per_second));
    }
    families.push_back(OneValue("process_threads", "Number of OS threads in the process.",
                                MetricType::Gauge, stat->threads));
  }
  if (const std::optional<std::string> statm = ReadFile("/proc/self/statm")) {
    std::istringstream fields(*statm);
    double size_pages = 0;
    double resident_pages = 0;
    if (fields >> size_pages >> resident_pages) {
      families.push_back(OneValue("process_virtual_memory_bytes", "Virtual memory size in bytes.",
                                  MetricType::Gauge, size_pages * page_bytes));
      families.push_back(OneValue("process_resident_memory_bytes", "Resident memory size in bytes.",
                                  MetricType::Gauge, resident_pages * page_bytes));
    }
  }
  // What the C library's allocator holds: in use by the program, and free but kept from the
  // system. Resident memory that grows while the first stays flat is the allocator's, not a leak.
  const struct mallinfo2 heap = mallinfo2();
  families.push_back(OneValue("hier_malloc_in_use_bytes",
                              "Bytes the program holds from malloc (heap and mmapped chunks).",
                              MetricType::Gauge, static_cast<double>(heap.uordblks + heap.hblkhd)));
  families.push_back(OneValue("hier_malloc_free_bytes",
                              "Bytes malloc holds free in its arenas, not returned to the system.",
                              MetricType::Gauge, static_cast<double>(heap.fordblks)));
  if (const int64_t fds = CountOpenFds(); fds >= 0) {
    families.push_back(OneValue("process_open_fds", "Number of open file descriptors.",
                                MetricType::Gauge, static_cast<double>(fds)));
  }
  return families;
}

}  // namespace hier::server
