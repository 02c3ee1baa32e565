#!/usr/bin/env bash
# The server benchmark: hier-server measured with hier-bench over loopback.
#  a) Search by vector over the index benchmark's 100k items (exact and ivf-flat): queries/s and
#     p50/p99 at 1, 8 and 64 calls in flight, against the same searches in-process
#     (server_bench_gallery --measure: Collection::Open and Search from 1 or 8 threads), the gRPC
#     layer's cost; and SearchBatch calls of 32 queries against the index's batch path in-process.
#     Each pass runs the in-process measures, the server at 1, 8, 64 in flight and batched, then
#     the in-process batched measure. The server searches with the kind's fixed defaults
#     (--target-recall 0), as the in-process side does.
#  b) Embed: the same images embedded in-process 32 per forward pass (server_bench_embed), then
#     the server with dynamic batching (--max-batch 32) and without (--max-batch 1) at 32 in
#     flight, alternating; one more pass with --max-delay-us 500.
#  c) Search by image end to end (decode, embed, search) over a gallery of 2,000 test images.
# Tables give medians of PASSES alternating passes; a ratio is the median of the per-pass ratios
# (both sides measured in the same pass). Usage: server-bench.sh OUT_DIR. Writes
# OUT_DIR/server-bench.md and keeps every JSON result under OUT_DIR/json.
# Environment: HIER_BUILD_DIR (default build), HIER_MODEL (a run directory; default
# runs/fmnist-main when it has best/manifest.json, else one trained into OUT_DIR/model),
# DURATION / WARMUP (seconds per hier-bench run, default 10 / 2), PASSES (default 3),
# BENCH_CACHE (the bench data cache, default OUT_DIR/cache; point it at a shared folder to reuse the
# generated gallery and ground truth across runs), ITEMS
# (gallery size of part a, default 100000).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
out="${1:?usage: server-bench.sh OUT_DIR}"
build="${HIER_BUILD_DIR:-$root/build}"
duration="${DURATION:-10}"
warmup="${WARMUP:-2}"
passes="${PASSES:-3}"
items="${ITEMS:-100000}"
cache="${BENCH_CACHE:-$out/cache}"
mkdir -p "$out/json" "$out/logs"
out="$(cd "$out" && pwd)"
gallery_tool="$build/tests/server_bench_gallery"
embed_tool="$build/tests/server_bench_embed"
server_bin="$build/server/hier-server"
bench_bin="$build/client/hier-bench"
cli_bin="$build/client/hier"
train_bin="$build/trainer/hier-train"

# shellcheck source=deploy/experiments/hier-servers.sh
source "$root/deploy/experiments/hier-servers.sh"
trap stop_hier_servers EXIT
server_port=""
metrics_port=""
stop_server() { stop_hier_server main; }
# start_server LOG ARGS...: the server the benchmark measures, on a free loopback port.
start_server() {
  start_hier_server main "$@"
  server_port="${HIER_PORT[main]}"
  metrics_port="${HIER_METRICS_PORT[main]}"
}

# bench JSON ARGS...: one hier-bench run against the running server.
bench() {
  local json="$1"
  shift
  "$bench_bin" --server "127.0.0.1:$server_port" --duration "$duration" --warmup "$warmup" \
    --json "$json" "$@" >"${json%.json}.txt" 2>&1 || {
    echo "server-bench: hier-bench failed ($json):" >&2
    cat "${json%.json}.txt" >&2
    exit 1
  }
  printf '  %s: %s\n' "$(basename "$json" .json)" \
    "$(jq -r '"\(.qps | floor) q/s, p50 \(.latency_ms.p50) ms, p99 \(.latency_ms.p99) ms, errors \(.errors)"' "$json")"
}

# Mean forward-pass size from the server's hier_embed_batch_size histogram.
mean_embed_batch() {
  curl -s "http://127.0.0.1:$metrics_port/metrics" |
    awk '/^hier_embed_batch_size_sum/ {s=$2} /^hier_embed_batch_size_count/ {c=$2}
         END {if (c > 0) printf "%.2f", s / c; else print "n/a"}'
}

echo "server-bench: $(nproc) cores, hier-bench ${duration}s after ${warmup}s warm-up, $passes passes"
start_all=$SECONDS

# ---- a) Search by vector over 100k items --------------------------------------------------------
for kind in exact ivf-flat; do
  state="$out/state-$kind"
  "$gallery_tool" --state "$state" --items "$items" --kind "$kind" --cache "$cache"
  for pass in $(seq "$passes"); do
    echo "search-vector $kind, pass $pass"
    "$gallery_tool" --measure --state "$state" --queries 1000 --k 10 --repeats 1 \
      --warmup-seconds "$warmup" --json "$out/json/vector-$kind-inprocess-p$pass.json"
    "$gallery_tool" --measure --state "$state" --queries 1000 --k 10 --repeats 1 --threads 8 \
      --warmup-seconds "$warmup" --json "$out/json/vector-$kind-inprocess-t8-p$pass.json"
    # The in-process side searches with the kind's fixed defaults: so does the server.
    start_server "$out/logs/server-$kind-p$pass.log" --state-dir "$state" --dim 128 --c 0.1 \
      --metrics-listen= --http-listen= --index-threads 1 --target-recall 0
    for n in 1 8 64; do
      bench "$out/json/vector-$kind-grpc-n$n-p$pass.json" --method search-vector \
        --vectors-from-items 1000 --k 10 --in-flight "$n"
    done
    # Batches of 32 queries per call: SearchBatch against the index's batch path in-process.
    bench "$out/json/vector-$kind-grpc-batch32-p$pass.json" --method search-batch --batch 32 \
      --vectors-from-items 1000 --k 10 --in-flight 1
    stop_server
    "$gallery_tool" --measure --state "$state" --queries 1000 --k 10 --repeats 1 --batch 32 \
      --warmup-seconds "$warmup" --json "$out/json/vector-$kind-inprocess-batch32-p$pass.json"
  done
done

# ---- b) Embed: dynamic batching against batch size 1 -------------------------------------------
model="$(bench_model "$out")"
# hier-bench reads a flat folder; export-images writes class folders.
flatten() {  # flatten FROM TO
  rm -rf "$2"
  mkdir -p "$2"
  find "$1" -name '*.png' -exec cp -t "$2" {} +
}
if [[ ! -d "$out/images" ]]; then
  # Test images 2000..2499: queries that are not in the gallery of part c.
  "$train_bin" export-images --out "$out/images-by-class" --from 2000 --limit 500 >/dev/null
  flatten "$out/images-by-class" "$out/images"
fi
model_state="$out/state-model"
embed_pass() {  # embed_pass NAME SERVER_ARGS...
  local name="$1"
  shift
  start_server "$out/logs/server-embed-$name.log" --state-dir "$model_state" --model "$model" \
    --metrics-listen 127.0.0.1:0 "$@"
  bench "$out/json/embed-$name.json" --method embed --images "$out/images" --in-flight 32
  echo "    mean forward batch: $(mean_embed_batch)" | tee "$out/json/embed-$name.batch"
  stop_server
}
for pass in $(seq "$passes"); do
  echo "embed, pass $pass"
  "$embed_tool" --checkpoint "$model/best" --images "$out/images" --batch 32 --seconds "$duration" \
    --warmup-seconds "$warmup" --json "$out/json/embed-inprocess-p$pass.json" >/dev/null
  embed_pass "batch32-p$pass" --max-batch 32
  embed_pass "batch1-p$pass" --max-batch 1
done
echo "embed, --max-delay-us 500"
embed_pass "batch32-delay500" --max-batch 32 --max-delay-us 500

# ---- c) Search by image end to end -------------------------------------------------------------
if [[ ! -d "$out/gallery-images" ]]; then
  "$train_bin" export-images --out "$out/gallery-images" --limit 2000 >/dev/null
fi
start_server "$out/logs/server-image-add.log" --state-dir "$model_state" --model "$model" \
  --metrics-listen= --http-listen=
"$cli_bin" --server "127.0.0.1:$server_port" items add "$out/gallery-images" \
  >"$out/logs/items-add.txt" 2>&1
"$cli_bin" --server "127.0.0.1:$server_port" stats >"$out/logs/stats.txt" 2>&1
stop_server
for pass in $(seq "$passes"); do
  echo "search-image, pass $pass"
  start_server "$out/logs/server-image-p$pass.log" --state-dir "$model_state" --model "$model" \
    --metrics-listen= --http-listen= --index-threads 1
  for n in 1 8; do
    bench "$out/json/image-n$n-p$pass.json" --method search-image --images "$out/images" \
      --k 10 --in-flight "$n"
  done
  stop_server
done

# ---- the report ---------------------------------------------------------------------------------
python3 - "$out" "$passes" "$duration" "$warmup" "$(nproc)" "$model" "$((SECONDS - start_all))" \
  <<'EOF' | tee "$out/server-bench.md"
import json, statistics, sys, pathlib
out, passes, duration, warmup, cores, model, seconds = sys.argv[1:]
passes = int(passes)
j = pathlib.Path(out) / "json"
load = lambda name: json.loads((j / name).read_text())
med = statistics.median
def runs(pattern):
    return [load(pattern.format(p=p)) for p in range(1, passes + 1)]
faiss = load("vector-exact-inprocess-p1.json").get("faiss_compile_options", "?")
print(f"# hier-serve server benchmark\n")
print(f"{cores} cores (shared machine); server and hier-bench on the same machine over loopback; "
      f"hier-bench {duration} s measured after {warmup} s warm-up; medians of {passes} alternating "
      f"passes; ratios are medians of per-pass ratios. FAISS compiled with: {faiss}.\n")
gallery_items = load("vector-exact-inprocess-p1.json")["items"]
print(f"## Search by vector, {gallery_items:,} items (d 128, c 0.1), k 10, --index-threads 1\n")
print("Queries: the vectors of items 0..999 (`hier-bench --vectors-from-items 1000`); in-process: "
      "the same searches through Collection::Open + HyperbolicIndex::Search, one at a time, "
      "1 thread.\n")
print("| kind | system | in flight | q/s | p50 ms | p99 ms |\n|---|---|---|---|---|---|")
ratios = []
for kind in ("exact", "ivf-flat"):
    inprocess = {n: runs(f"vector-{kind}-inprocess{'' if n == 1 else '-t8'}-p{{p}}.json")
                 for n in (1, 8)}
    for n, inproc in inprocess.items():
        print(f"| {kind} | in-process | {n} | {med(r['qps'] for r in inproc):.0f} | "
              f"{med(r['latency_ms']['p50'] for r in inproc):.2f} | "
              f"{med(r['latency_ms']['p99'] for r in inproc):.2f} |")
    for n in (1, 8, 64):
        g = runs(f"vector-{kind}-grpc-n{n}-p{{p}}.json")
        errors = sum(sum(r["errors"].values()) for r in g)
        print(f"| {kind} | gRPC | {n} | {med(r['qps'] for r in g):.0f} | "
              f"{med(r['latency_ms']['p50'] for r in g):.2f} | "
              f"{med(r['latency_ms']['p99'] for r in g):.2f} |" + (f" errors {errors}" if errors else ""))
        if n in inprocess:
            inproc = inprocess[n]
            qr = [a["qps"] / b["qps"] for a, b in zip(g, inproc)]
            pr = [a["latency_ms"]["p50"] / b["latency_ms"]["p50"] for a, b in zip(g, inproc)]
            dp = [a["latency_ms"]["p50"] - b["latency_ms"]["p50"] for a, b in zip(g, inproc)]
            ratios.append((kind, n, qr, pr, dp))
    bi = runs(f"vector-{kind}-inprocess-batch32-p{{p}}.json")
    bg = runs(f"vector-{kind}-grpc-batch32-p{{p}}.json")
    print(f"| {kind} | in-process, batches of 32 | 1 | {med(r['qps'] for r in bi):.0f} | "
          f"{med(r['latency_ms']['p50'] for r in bi):.2f} per call | "
          f"{med(r['latency_ms']['p99'] for r in bi):.2f} per call |")
    print(f"| {kind} | gRPC SearchBatch of 32 | 1 | {med(r['items_per_second'] for r in bg):.0f} | "
          f"{med(r['latency_ms']['p50'] for r in bg):.2f} per call | "
          f"{med(r['latency_ms']['p99'] for r in bg):.2f} per call |")
    ratios.append((kind, "batch 32", [a["items_per_second"] / b["qps"] for a, b in zip(bg, bi)],
                   [a["latency_ms"]["p50"] / b["latency_ms"]["p50"] for a, b in zip(bg, bi)],
                   [a["latency_ms"]["p50"] - b["latency_ms"]["p50"] for a, b in zip(bg, bi)]))
print("\ngRPC / in-process with the same calls in flight (the gRPC layer's cost: in-process, 8 "
      "threads search at once on the 2 cores), per pass and median\n")
print("| kind | in flight | q/s ratio | p50 ratio | p50 added ms | q/s ratio per pass |")
print("|---|---|---|---|---|---|")
for kind, n, qr, pr, dp in ratios:
    print(f"| {kind} | {n} | {med(qr):.2f} | {med(pr):.2f} | {med(dp):.3f} | "
          f"{', '.join(f'{x:.2f}' for x in qr)} |")
print("\nThe server answers from memory (keys and labels beside the index); the rest of the cost "
      "is protobuf, HTTP/2 over loopback and the client's share of the 2 cores.")

print(f"\n## Embed, 32 calls in flight, 1 image per call (model {pathlib.Path(model).name})\n")
def batch(name):
    t = (j / f"embed-{name}.batch").read_text().split(":")[-1].strip()
    return t
b32 = runs("embed-batch32-p{p}.json")
b1 = runs("embed-batch1-p{p}.json")
bi = runs("embed-inprocess-p{p}.json")
print("| server | images/s | p50 ms | p99 ms | mean forward batch (pass 1) |\n|---|---|---|---|---|")
print(f"| in-process, 32 images per call (decode, prepare, one forward pass) | "
      f"{med(r['images_per_second'] for r in bi):.0f} | | | 32 |")
print(f"| --max-batch 32 (delay sized from the model's passes, at most --max-delay-us 2000) | "
      f"{med(r['qps'] for r in b32):.0f} | "
      f"{med(r['latency_ms']['p50'] for r in b32):.2f} | {med(r['latency_ms']['p99'] for r in b32):.2f} | "
      f"{batch('batch32-p1')} |")
print(f"| --max-batch 1 | {med(r['qps'] for r in b1):.0f} | "
      f"{med(r['latency_ms']['p50'] for r in b1):.2f} | {med(r['latency_ms']['p99'] for r in b1):.2f} | "
      f"{batch('batch1-p1')} |")
d = load("embed-batch32-delay500.json")
print(f"| --max-batch 32 --max-delay-us 500 (1 pass, after the others) | {d['qps']:.0f} | "
      f"{d['latency_ms']['p50']:.2f} | {d['latency_ms']['p99']:.2f} | {batch('batch32-delay500')} |")
er = [a["qps"] / b["qps"] for a, b in zip(b32, b1)]
print(f"\nimages/s ratio batch 32 / batch 1: {med(er):.2f} (per pass: "
      f"{', '.join(f'{x:.2f}' for x in er)})")
ir = [a["qps"] / b["images_per_second"] for a, b in zip(b32, bi)]
print(f"\nimages/s ratio server (--max-batch 32, 32 in flight) / in-process batches of 32: "
      f"{med(ir):.2f} (per pass: {', '.join(f'{x:.2f}' for x in ir)})")

print("\n## Search by image end to end (decode + embed + search), 2,000-image gallery, k 10\n")
print("Queries: 500 Fashion-MNIST test images (2000..2499, not in the gallery), cycled.\n")
print("| in flight | q/s | p50 ms | p99 ms |\n|---|---|---|---|")
for n in (1, 8):
    g = runs(f"image-n{n}-p{{p}}.json")
    print(f"| {n} | {med(r['qps'] for r in g):.0f} | {med(r['latency_ms']['p50'] for r in g):.2f} | "
          f"{med(r['latency_ms']['p99'] for r in g):.2f} |")
print(f"\nTotal run time {int(seconds) // 60} min {int(seconds) % 60} s.")
EOF
