// The server benchmark's in-process embedding baseline (deploy/experiments/server-bench.sh): the
// images `hier-bench --method embed` sends, decoded, prepared and embedded by the same model in
// this process, `batch` images per ServingModel::EmbedImages call (one forward pass each), the
// way a caller holding a batch would embed it without the server. Prints images/s over --seconds
// after a warm-up and writes it as one JSON object to --json.
//
// server_bench_embed --checkpoint DIR --images DIR [--batch 32] [--seconds 10]
//                    [--warmup-seconds 2] [--torch-threads 0] [--json FILE]
#include <ATen/Parallel.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "client/flag_set.h"
#include "server/model/serving_model.h"

namespace hier::bench {
namespace {

namespace fs = std::filesystem;

int Fail(const std::string& message) {
  std::fprintf(stderr, "server_bench_embed: %s\n", message.c_str());
  return 1;
}

// Every .png file directly in `folder`, read into memory, in name order.
std::vector<std::string> ReadImages(const std::string& folder) {
  std::vector<fs::path> paths;
  for (const auto& entry : fs::directory_iterator(folder)) {
    if (entry.path().extension() == ".png") paths.push_back(entry.path());
  }
  std::sort(paths.begin(), paths.end());
  std::vector<std::string> images;
  for (const fs::path& path : paths) {
    std::ifstream in(path, std::ios::binary);
    images.emplace_back(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  return images;
}

int Main(int argc, char** argv) {
  std::string checkpoint, folder, json;
  int64_t batch = 32, torch_threads = 0;
  double seconds = 10, warmup_seconds = 2;
  client::FlagSet flags;
  flags.AddString("checkpoint", &checkpoint, "DIR", "the model's checkpoint folder");
  flags.AddString("images", &folder, "DIR", "a folder of PNG images");
  flags.AddInt("batch", &batch, "N", "images per call");
  flags.AddDouble("seconds", &seconds, "S", "measured time");
  flags.AddDouble("warmup-seconds", &warmup_seconds, "S", "time before measuring");
  flags.AddInt("torch-threads", &torch_threads, "N", "intra-op threads (0: LibTorch's default)");
  flags.AddString("json", &json, "FILE", "where to write the result");
  const absl::StatusOr<std::vector<std::string>> rest =
      flags.Parse(std::vector<std::string>(argv + 1, argv + argc));
  if (!rest.ok()) return Fail(std::string(rest.status().message()));
  if (checkpoint.empty() || folder.empty()) return Fail("--checkpoint and --images are required");
  if (batch < 1) return Fail("--batch: must be at least 1");
  if (torch_threads > 0) at::set_num_threads(static_cast<int>(torch_threads));
  const std::vector<std::string> images = ReadImages(folder);
  if (images.empty()) return Fail(absl::StrCat("--images: no .png file in ", folder));
  absl::StatusOr<std::shared_ptr<server::ServingModel>> model =
      server::ServingModel::Load(checkpoint, server::BatchingOptions{batch, 0}, nullptr);
  if (!model.ok()) return Fail(model.status().ToString());

  size_t next = 0;
  // Embeds batches for `duration` seconds; returns the images embedded.
  const auto run_for = [&](double duration) -> absl::StatusOr<int64_t> {
    const auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(duration);
    int64_t embedded = 0;
    while (std::chrono::steady_clock::now() < end) {
      std::vector<server::EncodedImage> call;
      for (int64_t i = 0; i < batch; ++i, next = (next + 1) % images.size()) {
        call.push_back({&images[next], absl::StrCat("images[", i, "]")});
      }
      absl::StatusOr<std::vector<float>> out = (*model)->EmbedImages(
          call, 40'000'000, std::chrono::steady_clock::now() + std::chrono::seconds(60));
      if (!out.ok()) return out.status();
      embedded += batch;
    }
    return embedded;
  };
  if (absl::StatusOr<int64_t> warm = run_for(warmup_seconds); !warm.ok()) {
    return Fail(warm.status().ToString());
  }
  const auto start = std::chrono::steady_clock::now();
  const absl::StatusOr<int64_t> embedded = run_for(seconds);
  if (!embedded.ok()) return Fail(embedded.status().ToString());
  const double rate =
      static_cast<double>(*embedded) /
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("in-process embed, %lld images per call: %.1f images/s\n",
              static_cast<long long>(batch), rate);
  if (!json.empty()) {
    std::ofstream out(json, std::ios::trunc);
    out << "{\"method\":\"in-process-embed\",\"batch\":" << batch
        << ",\"images_per_second\":" << rate << "}\n";
    if (!out) return Fail(absl::StrCat("--json: cannot write '", json, "'"));
  }
  return 0;
}

}  // namespace
}  // namespace hier::bench

int main(int argc, char** argv) { return hier::bench::Main(argc, argv); }
