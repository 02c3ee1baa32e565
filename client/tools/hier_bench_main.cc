// `hier-bench`: a load generator for the hier server; keeps N Search, SearchBatch, Embed, AddItems
// or DeleteItems calls in flight (optionally paced to a rate) and reports calls/s (and items/s),
// exact latency percentiles and errors by status code; writes can be recorded in a ledger.
#include <fstream>
#include <iostream>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "client/bench/bench_queries.h"
#include "client/bench/bench_report.h"
#include "client/bench/load_generator.h"
#include "client/bench/write_ledger.h"
#include "client/connection_flags.h"
#include "client/flag_set.h"
#include "client/status_macros.h"
#include "client/status_text.h"

namespace hier::client::bench {
namespace {

constexpr int kExitError = 1;
constexpr int kExitUsage = 2;

struct BenchFlags {
  std::string method = "search-vector";
  int64_t in_flight = 8;
  double duration_seconds = 10;
  int64_t requests = 0;
  double warmup_seconds = 1;
  int64_t k = 10;
  std::string label;
  int64_t overfetch = 0;
  int64_t dim = 0;
  double c = 0.1;
  int64_t random_queries = 1000;
  int64_t seed = 1;
  int64_t vectors_from_items = 0;
  std::string image;
  std::string images_dir;
  int64_t batch = 1;
  int64_t first_id = 1'000'000'000;
  std::string json_file;
  std::string stop_file;
  double rate = 0;
  std::string ledger_file;
  bool help = false;
};

void AddBenchFlags(FlagSet* flags, BenchFlags* f) {
  flags->AddString("method", &f->method, "M",
                   "search-vector | search-batch | search-image | embed | add-vectors | "
                   "add-images | delete");
  flags->AddInt("in-flight", &f->in_flight, "N", "calls outstanding at any time");
  flags->AddDouble("rate", &f->rate, "CALLS",
                   "start at most this many calls per second (0: as fast as they complete)");
  flags->AddDouble("duration", &f->duration_seconds, "SECONDS", "measured time");
  flags->AddInt("requests", &f->requests, "N", "measured calls instead of --duration");
  flags->AddDouble("warmup", &f->warmup_seconds, "SECONDS", "unmeasured load first");
  flags->AddString("stop-file", &f->stop_file, "PATH",
                   "also stop once this file exists (another load has finished)");
  flags->AddInt("k", &f->k, "N", "neighbours per search");
  flags->AddString("label", &f->label, "L", "searches only items with this label");
  flags->AddInt("overfetch", &f->overfetch, "N", "candidates re-ranked; 0: the server's default");
  flags->AddInt("dim", &f->dim, "N", "random query dimension; 0: the serving model's (Stats)");
  flags->AddDouble("c", &f->c, "C", "curvature of the ball random queries lie in");
  flags->AddInt("queries", &f->random_queries, "N", "random query vectors to draw");
  flags->AddInt("seed", &f->seed, "N", "random seed");
  flags->AddInt("vectors-from-items", &f->vectors_from_items, "N",
                "query with the vectors of items 0..N-1 instead of random points");
  flags->AddString("image", &f->image, "FILE", "the image for search-image / embed / add-images");
  flags->AddString("images", &f->images_dir, "DIR",
                   "images for search-image / embed / add-images, cycled");
  flags->AddInt("batch", &f->batch, "N",
                "images per Embed call, vectors per search-batch call, items per add or delete "
                "call");
  flags->AddInt("first-id", &f->first_id, "N",
                "add-vectors / add-images: the first new item id (call i writes ids first-id + "
                "i * batch onwards); delete: the same ids");
  flags->AddString("ledger", &f->ledger_file, "FILE",
                   "add / delete: append '<add|delete> <first id> <count> <CODE>' for every call");
  flags->AddString("json", &f->json_file, "FILE", "also write the results as JSON");
  flags->AddBool("help", &f->help, "show usage");
}

bool IsWrite(const std::string& method) {
  return method == "add-vectors" || method == "add-images" || method == "delete";
}

absl::Status CheckFlags(const FlagSet& flags, const BenchFlags& f) {
  const bool vectors =
      f.method == "search-vector" || f.method == "search-batch" || f.method == "add-vectors";
  const bool images = f.method == "search-image" || f.method == "embed" || f.method == "add-images";
  const bool writes = IsWrite(f.method);
  if (!vectors && !images && f.method != "delete") {
    return absl::InvalidArgumentError(
        absl::StrCat("--method: '", f.method,
                     "' is not one of search-vector, search-batch, search-image, embed, "
                     "add-vectors, add-images, delete"));
  }
  if (!f.ledger_file.empty() && !writes) {
    return absl::InvalidArgumentError(
        absl::StrCat("--ledger: ", f.method, " writes nothing (add-vectors, add-images, delete)"));
  }
  if (!(f.rate >= 0)) return absl::InvalidArgumentError("--rate: must not be negative");
  if (f.first_id < 0) return absl::InvalidArgumentError("--first-id: must not be negative");
  if (f.in_flight < 1 || f.in_flight > 100000) {
    return absl::InvalidArgumentError("--in-flight: must be between 1 and 100000");
  }
  if (flags.IsSet("duration") && flags.IsSet("requests")) {
    return absl::InvalidArgumentError("--requests: give --duration or --requests, not both");
  }
  if (!(f.duration_seconds > 0)) return absl::InvalidArgumentError("--duration: must be positive");
  if (f.requests < 0) return absl::InvalidArgumentError("--requests: must not be negative");
  if (f.warmup_seconds < 0) return absl::InvalidArgumentError("--warmup: must not be negative");
  if (f.k < 1 || f.k > std::numeric_limits<int32_t>::max()) {
    return absl::InvalidArgumentError("--k: must be at least 1");
  }
  if (f.overfetch < 0 || f.overfetch > std::numeric_limits<int32_t>::max()) {
    return absl::InvalidArgumentError("--overfetch: out of range");
  }
  if (vectors) {
    if (!f.image.empty() || !f.images_dir.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--image/--images: ", f.method, " sends vectors"));
    }
    if (f.dim < 0) return absl::InvalidArgumentError("--dim: must not be negative");
    if (!(f.c > 0)) return absl::InvalidArgumentError("--c: must be positive");
    if (f.random_queries < 1) return absl::InvalidArgumentError("--queries: must be at least 1");
    if (f.vectors_from_items < 0) {
      return absl::InvalidArgumentError("--vectors-from-items: must not be negative");
    }
  } else if (!images) {
    if (!f.image.empty() || !f.images_dir.empty()) {
      return absl::InvalidArgumentError(absl::StrCat("--image/--images: ", f.method, " sends ids"));
    }
  } else if (f.image.empty() == f.images_dir.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--image: ", f.method, " needs exactly one of --image FILE, --images DIR"));
  }
  if (f.batch < 1) return absl::InvalidArgumentError("--batch: must be at least 1");
  return absl::OkStatus();
}

// The calls for --method, with their requests built up front (those that write, as they go).
absl::StatusOr<StartCall> BuildCalls(const Connection& connection, const BenchFlags& f,
                                     std::shared_ptr<WriteLedger> ledger) {
  std::shared_ptr<hier::v1::Retrieval::Stub> stub =
      hier::v1::Retrieval::NewStub(connection.channel());
  if (f.method == "delete") return DeleteCalls(stub, f.batch, f.first_id, std::move(ledger));
  const SearchSettings settings{static_cast<int32_t>(f.k), f.label,
                                static_cast<int32_t>(f.overfetch)};
  if (f.method != "search-image" && f.method != "embed" && f.method != "add-images") {
    std::vector<std::vector<float>> vectors;
    if (f.vectors_from_items > 0) {
      HIER_ASSIGN_OR_RETURN(vectors, VectorsFromItems(connection, f.vectors_from_items));
    } else {
      int64_t dim = f.dim;
      if (dim == 0) {
        HIER_ASSIGN_OR_RETURN(dim, ServingDimension(connection));
      }
      vectors = RandomBallPoints(f.random_queries, dim, f.c, static_cast<uint64_t>(f.seed));
    }
    if (f.method == "add-vectors") {
      return AddCalls(stub, std::move(vectors), f.batch, f.first_id, std::move(ledger));
    }
    if (f.method == "search-batch") {
      return SearchBatchCalls(stub, SearchBatches(VectorSearches(vectors, settings), f.batch));
    }
    return SearchCalls(stub, VectorSearches(vectors, settings));
  }
  HIER_ASSIGN_OR_RETURN(const std::vector<std::string> images, LoadImages(f.image, f.images_dir));
  if (f.method == "search-image") return SearchCalls(stub, ImageSearches(images, settings));
  if (f.method == "add-images") {
    return AddImageCalls(stub, images, f.batch, f.first_id, std::move(ledger));
  }
  return EmbedCalls(stub, EmbedBatches(images, f.batch));
}

absl::Status WriteFile(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::trunc);
  out << text;
  out.close();
  if (!out) return absl::UnavailableError(absl::StrCat("--json: cannot write '", path, "'"));
  return absl::OkStatus();
}

// Runs the load and prints the report; returns the exit code.
absl::StatusOr<int> RunBench(const Connection& connection, const std::string& server,
                             const BenchFlags& f) {
  if (!connection.channel()->WaitForConnected(
          absl::ToChronoTime(absl::Now() + connection.timeout()))) {
    return absl::UnavailableError(absl::StrCat("cannot connect to ", server, " within ",
                                               absl::FormatDuration(connection.timeout())));
  }
  std::shared_ptr<WriteLedger> ledger;
  if (!f.ledger_file.empty()) {
    HIER_ASSIGN_OR_RETURN(ledger, WriteLedger::Open(f.ledger_file));
  }
  HIER_ASSIGN_OR_RETURN(const StartCall calls, BuildCalls(connection, f, ledger));
  LoadOptions options;
  options.rate = f.rate;
  options.in_flight = static_cast<int>(f.in_flight);
  options.requests = f.requests;
  options.duration = absl::Seconds(f.duration_seconds);
  options.warmup = absl::Seconds(f.warmup_seconds);
  options.stop_file = f.stop_file;
  options.prepare = [&connection](grpc::ClientContext* context) { connection.Prepare(context); };
  std::cerr << absl::StrFormat("hier-bench: %s, %d in flight%s, %s after %gs of warm-up\n",
                               f.method, f.in_flight,
                               f.rate > 0 ? absl::StrCat(", at most ", f.rate, " calls/s") : "",
                               f.requests > 0 ? absl::StrCat(f.requests, " requests")
                                              : absl::StrCat(f.duration_seconds, "s"),
                               f.warmup_seconds);
  const LoadResult result = RunLoad(options, calls);

  const int64_t items_per_call = f.method == "search-vector" || f.method == "search-image"
                                     ? 1
                                     : f.batch;  // embed, search-batch, add-*, delete
  const BenchSummary summary =
      Summarize(f.method, server, options.in_flight, items_per_call, result);
  std::cout << SummaryTable(summary) << std::flush;
  if (!f.json_file.empty()) HIER_RETURN_IF_ERROR(WriteFile(f.json_file, SummaryJson(summary)));
  if (ledger != nullptr) HIER_RETURN_IF_ERROR(ledger->status());
  return summary.ok > 0 ? 0 : kExitError;
}

int Main(const std::vector<std::string>& args) {
  FlagSet flags;
  ConnectionOptions connection_options;
  BenchFlags bench_flags;
  AddConnectionFlags(&flags, &connection_options);
  AddBenchFlags(&flags, &bench_flags);
  auto usage_error = [](const absl::Status& status) {
    std::cerr << "hier-bench: " << status.message() << "\nrun 'hier-bench --help' for usage\n";
    return kExitUsage;
  };

  absl::StatusOr<std::vector<std::string>> positional = flags.Parse(args);
  if (!positional.ok()) return usage_error(positional.status());
  if (bench_flags.help) {
    std::cout << "usage: hier-bench [FLAGS]\n\nflags:\n" << flags.Usage();
    return 0;
  }
  if (!positional->empty()) {
    return usage_error(
        absl::InvalidArgumentError(absl::StrCat("unexpected argument '", (*positional)[0], "'")));
  }
  if (absl::Status status = CheckFlags(flags, bench_flags); !status.ok()) {
    return usage_error(status);
  }
  absl::StatusOr<Connection> connection = ConnectWithFlags(flags, connection_options);
  if (absl::IsInvalidArgument(connection.status())) return usage_error(connection.status());
  if (!connection.ok()) {
    std::cerr << "hier-bench: " << StatusText(connection.status()) << "\n";
    return kExitError;
  }

  absl::StatusOr<int> exit_code = RunBench(*connection, connection_options.server, bench_flags);
  if (!exit_code.ok()) {
    std::cerr << "hier-bench: " << StatusText(exit_code.status()) << "\n";
    return kExitError;
  }
  return *exit_code;
}

}  // namespace
}  // namespace hier::client::bench

int main(int argc, char** argv) {
  return hier::client::bench::Main(std::vector<std::string>(argv + 1, argv + argc));
}
