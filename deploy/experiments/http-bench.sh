#!/usr/bin/env bash
# The HTTP/JSON face and the web console, measured:
#  a) Search by vector through HTTP/JSON against gRPC on one hier-server (the index benchmark's
#     items, IVF-Flat, one search thread), 1 and 8 calls in flight (tests/bench/http_face_bench.cc:
#     the same queries, the same client threads, each face first in alternate rounds); the table
#     gives each face's median q/s and p50/p99 over the rounds, and the median of the per-round
#     ratios HTTP/gRPC.
#  b) The console's first load in headless chromium (tests/console/first_load.mjs) over a gallery
#     of test images: bytes transferred (the console's files, the API's answers and thumbnails),
#     time until the page loaded, time from picking an image to k results with their thumbnails,
#     and what a reload transfers; medians of RUNS fresh browser contexts.
# Usage: http-bench.sh OUT_DIR. Writes OUT_DIR/http-bench.md, the measurements under OUT_DIR/json
# and a screenshot of the console's results, OUT_DIR/console-search.png.
# Environment: HIER_BUILD_DIR (default build), DURATION (seconds per face and count, default 10),
# PASSES (rounds, default 3), ITEMS (gallery of part a, default 100000), BENCH_CACHE (default
# OUT_DIR/cache), HIER_MODEL (a run directory for part b; default runs/fmnist-main when trained,
# else a small model trained into OUT_DIR/model), IMAGES (gallery of part b, default 500), RUNS
# (default 5).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
out="${1:?usage: http-bench.sh OUT_DIR}"
build="${HIER_BUILD_DIR:-$root/build}"
duration="${DURATION:-10}"
passes="${PASSES:-3}"
items="${ITEMS:-100000}"
cache="${BENCH_CACHE:-$out/cache}"
runs="${RUNS:-5}"
mkdir -p "$out/json" "$out/logs"
out="$(cd "$out" && pwd)"
server_bin="$build/server/hier-server"
cli_bin="$build/client/hier"
train_bin="$build/trainer/hier-train"
# shellcheck source=deploy/experiments/hier-servers.sh
source "$root/deploy/experiments/hier-servers.sh"
trap stop_hier_servers EXIT
echo "http-bench: $(nproc) cores, ${duration}s per face and count, $passes rounds, $runs console loads"

# ---- a) the same searches through both faces ------------------------------------------------------
"$build/tests/server_bench_gallery" --state "$out/state-vectors" --items "$items" --kind ivf-flat \
  --cache "$cache"
start_hier_server vectors "$out/logs/server-vectors.log" --state-dir "$out/state-vectors" \
  --dim 128 --c 0.1 --index-threads 1
"$build/tests/http_face_bench" --grpc_port "${HIER_PORT[vectors]}" \
  --http_port "${HIER_HTTP_PORT[vectors]}" --in_flight 1,8 --seconds "$duration" \
  --rounds "$passes" --json "$out/json/faces.jsonl"
stop_hier_server vectors

# ---- b) the console's first load ----------------------------------------------------------------
model="$(bench_model "$out")"
if [[ ! -d "$out/gallery-images" ]]; then
  "$train_bin" export-images --out "$out/gallery-images" --limit "${IMAGES:-500}" >/dev/null
  "$train_bin" export-images --out "$out/queries" --from 9990 --limit 1 >/dev/null
fi
rm -rf "$out/state-images"
start_hier_server images "$out/logs/server-images.log" --state-dir "$out/state-images" \
  --model "$model"
"$cli_bin" --server "127.0.0.1:${HIER_PORT[images]}" items add "$out/gallery-images" \
  >"$out/logs/items-add.txt" 2>&1
query="$(find "$out/queries" -name '*.png' | head -n 1)"
(cd "$root/tests/console" &&
  node first_load.mjs "http://127.0.0.1:${HIER_HTTP_PORT[images]}/" "$query" 12 "$runs" \
    "$out/json/first-load.json" "$out/console-search.png")
stop_hier_server images

# ---- the report ---------------------------------------------------------------------------------
python3 - "$out" "$(nproc)" "$duration" "$passes" "$items" <<'PY' | tee "$out/http-bench.md"
import json, statistics, sys, pathlib
out, cores, duration, passes, items = sys.argv[1:]
j = pathlib.Path(out) / "json"
med = statistics.median
rows = [json.loads(line) for line in (j / "faces.jsonl").read_text().splitlines() if line]
print("# HTTP/JSON face and web console\n")
print(f"{cores} cores; search by vector, k 10, {int(items):,} items (IVF-Flat, 1 search thread); "
      f"{duration} s per face and count, medians of {passes} rounds.\n")
print("| in flight | gRPC q/s | gRPC p50 / p99 ms | HTTP/JSON q/s | HTTP/JSON p50 / p99 ms | HTTP/gRPC q/s | errors |")
print("|---|---|---|---|---|---|---|")
for n in sorted({r["in_flight"] for r in rows}):
    face = lambda f: [r for r in rows if r["in_flight"] == n and r["face"] == f]
    g, h = face("grpc"), face("http")
    ratios = [hr["qps"] / gr["qps"] for gr in g for hr in h if hr["round"] == gr["round"] and gr["qps"]]
    m = lambda rs, key: med(r[key] for r in rs)
    print(f"| {n} | {m(g, 'qps'):.0f} | {m(g, 'p50_ms'):.2f} / {m(g, 'p99_ms'):.2f} | {m(h, 'qps'):.0f} "
          f"| {m(h, 'p50_ms'):.2f} / {m(h, 'p99_ms'):.2f} | {med(ratios):.2f} "
          f"| {sum(r['errors'] for r in g + h)} |")
loads = json.loads((j / "first-load.json").read_text())
m = lambda key: med(r[key] for r in loads)
print(f"\nConsole, first load (median of {len(loads)} fresh browser contexts, headless chromium):\n")
print(f"- the console's files: {m('console_bytes') / 1024:.1f} KiB transferred; page loaded in "
      f"{m('load_ms'):.0f} ms")
print(f"- one image search: {m('search_ms'):.0f} ms from picking the image to 12 results with their "
      f"thumbnails ({m('api_bytes') / 1024:.1f} KiB of API answers and images); "
      f"{m('first_result_ms'):.0f} ms from navigation start")
print(f"- a reload transfers {m('reload_console_bytes') / 1024:.1f} KiB of the console's files "
      "(revalidated: 304)")
PY
