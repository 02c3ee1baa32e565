// Process metrics under the names every Prometheus client uses (process_cpu_seconds_total,
// process_resident_memory_bytes, ...), read from /proc/self each time a scrape collects them,
// and the C library allocator's own count of bytes in use and held free (hier_malloc_*).
//
// Thread-safety: stateless, so Collect may run on any number of threads. Where /proc cannot be
// read (not Linux, a restricted sandbox) the series it would have given are left out.
#pragma once

#include <vector>

#include "prometheus/collectable.h"
#include "prometheus/metric_family.h"

namespace hier::server {

class ProcessMetrics final : public prometheus::Collectable {
 public:
  std::vector<prometheus::MetricFamily> Collect() const override;
};

}  // namespace hier::server
