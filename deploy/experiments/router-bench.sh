#!/usr/bin/env bash
# The router benchmark (README "Scaling out"): ITEMS items (d 128, IVF-Flat) served by one node,
# and the same items split over 2 shards (one replica each) behind a router, all on one machine.
# Both galleries live in databases of one scratch PostgreSQL (deploy/postgres-scratch.sh), loaded
# through hier-bench add-vectors (the sharded one through the router); every process stays up
# while searches by vector run against the one node, the router and each shard directly, at 1 and
# 8 calls in flight, in alternating order from pass to pass. On 2 cores the point is the router's
# overhead and each process's memory, not a speed-up. Ratios are medians of per-pass ratios.
# Usage: router-bench.sh OUT_DIR. Writes OUT_DIR/router-bench.md, keeps the JSON under
# OUT_DIR/json. Environment: HIER_BUILD_DIR (default build), ITEMS (default 1000000), PASSES
# (default 5), DURATION / WARMUP (seconds per search run, default 10 / 2), INDEX_KIND (default
# ivf-flat), PG_PORT (default 55434).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
out="${1:?usage: router-bench.sh OUT_DIR}"
build="${HIER_BUILD_DIR:-$root/build}"
items="${ITEMS:-1000000}"
passes="${PASSES:-5}"
duration="${DURATION:-10}"
warmup="${WARMUP:-2}"
index_kind="${INDEX_KIND:-ivf-flat}"
pg_port="${PG_PORT:-55434}"
mkdir -p "$out/json" "$out/logs"
out="$(cd "$out" && pwd)"
server_bin="$build/server/hier-server"
bench_bin="$build/client/hier-bench"
# shellcheck source=deploy/experiments/hier-servers.sh
source "$root/deploy/experiments/hier-servers.sh"
# shellcheck source=deploy/experiments/scratch-postgres.sh
source "$root/deploy/experiments/scratch-postgres.sh"
cleanup() {
  stop_hier_servers
  stop_scratch_postgres
}
trap cleanup EXIT
start_scratch_postgres "$out/pg" "$pg_port"

# metric NAME SERVER: the value of the unlabelled series NAME on SERVER's /metrics.
metric() {
  python3 - "$1" "${HIER_METRICS_PORT[$2]}" <<'PY'
import sys, urllib.request
name, port = sys.argv[1], sys.argv[2]
for line in urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode().splitlines():
    if line.split(" ")[0] == name:
        print(int(float(line.split(" ")[1])))
        break
else:
    print(0)
PY
}

# wait_items COUNT SERVER...: until the servers together hold COUNT items (at most 20 minutes).
wait_items() {
  local want="$1" held name
  shift
  for _ in $(seq 1200); do
    held=0
    for name in "$@"; do held=$((held + $(metric hier_index_items "$name"))); done
    ((held == want)) && return 0
    sleep 1
  done
  echo "router-bench: $* hold $held items, not $want, after 20 minutes" >&2
  exit 1
}

# load SERVER HOLDER...: ITEMS items written through SERVER, until the HOLDERs hold them all.
load() {
  local through="$1" started=$SECONDS
  shift
  bench_hier_server "$through" "$out/json/load-$through.json" --method add-vectors --dim 128 \
    --batch 100 --in-flight 4 --requests $((items / 100)) --warmup 0 --first-id 0 --queries 20000
  wait_items "$items" "$@"
  echo $((SECONDS - started)) >"$out/json/load-seconds-$through.txt"
}

node=(--dim 128 --c 0.1 --index-kind "$index_kind" --index-threads 1
      --store-password-file "$pg_password_file")
echo "router-bench: $items items ($index_kind), $passes passes, PostgreSQL on 127.0.0.1:$pg_port" >&2
single="$(new_database one_node)"
start_hier_server one "$out/logs/one.log" --state-dir "$out/state/one" --store "$single" "${node[@]}"
load one one
sharded="$(new_database sharded)"
for shard in 0 1; do
  start_hier_server "shard$shard" "$out/logs/shard$shard.log" --state-dir "$out/state/shard$shard" \
    --store "$sharded" --shard "$shard/2" "${node[@]}"
done
start_hier_server router "$out/logs/router.log" --router --state-dir "$out/state/router" \
  --store "$sharded" --store-password-file "$pg_password_file"
for _ in $(seq 100); do
  [[ "$(metric hier_router_shards_healthy router)" == 2 ]] && break
  sleep 0.2
done
load router shard0 shard1
for name in one shard0 shard1 router; do
  metric process_resident_memory_bytes "$name" >"$out/json/rss-$name.txt"
done
echo "router-bench: loaded; one node $(($(cat "$out/json/rss-one.txt") >> 20)) MiB," \
  "shards $(($(cat "$out/json/rss-shard0.txt") >> 20)) and $(($(cat "$out/json/rss-shard1.txt") >> 20)) MiB" >&2

for pass in $(seq "$passes"); do
  order="one router shard0"
  if ((pass % 2 == 0)); then order="shard0 router one"; fi
  for name in $order; do
    for in_flight in 1 8; do
      bench_hier_server "$name" "$out/json/search-$name-$in_flight-p$pass.json" \
        --method search-vector --dim 128 --vectors-from-items 1000 --in-flight "$in_flight" --duration "$duration" \
        --warmup "$warmup"
    done
  done
  printf '  pass %s: q/s at 1 in flight: one node %s, router %s, shard 0 alone %s\n' "$pass" \
    "$(jq -r '.qps | floor' "$out/json/search-one-1-p$pass.json")" \
    "$(jq -r '.qps | floor' "$out/json/search-router-1-p$pass.json")" \
    "$(jq -r '.qps | floor' "$out/json/search-shard0-1-p$pass.json")" >&2
done
stop_hier_servers

python3 - "$out" "$passes" "$items" "$index_kind" <<'PY'
import json, statistics, sys
out, passes, items, kind = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
load = lambda name: json.load(open(f"{out}/json/{name}.json"))
med = statistics.median
rss = {n: int(open(f"{out}/json/rss-{n}.txt").read()) / 2**20 for n in ("one", "shard0", "shard1", "router")}
names = {"one": "one node, all items", "router": "router, 2 shards", "shard0": "shard 0 alone (its half)"}
lines = [f"{items} items (d 128, {kind}), searches by vector, k 10; medians of {passes} passes:", "",
         "| target | q/s (1 in flight) | p50 ms | p99 ms | q/s (8 in flight) | p50 ms | p99 ms |",
         "|---|---|---|---|---|---|---|"]
for name in ("one", "router", "shard0"):
    cells = [names[name]]
    for n in ("1", "8"):
        runs = [load(f"search-{name}-{n}-p{p}") for p in range(1, passes + 1)]
        cells += [f"{med(r['qps'] for r in runs):.0f}", f"{med(r['latency_ms']['p50'] for r in runs):.2f}",
                  f"{med(r['latency_ms']['p99'] for r in runs):.2f}"]
    lines.append("| " + " | ".join(cells) + " |")
def ratio(target, n, key):
    values = []
    for p in range(1, passes + 1):
        a, b = load(f"search-{target}-{n}-p{p}"), load(f"search-one-{n}-p{p}")
        values.append(a[key] / b[key] if key == "qps" else a["latency_ms"][key] / b["latency_ms"][key])
    return med(values)
lines += ["", "Router / one node (median of per-pass ratios): q/s "
          f"{ratio('router', '1', 'qps'):.2f} at 1 in flight, {ratio('router', '8', 'qps'):.2f} at 8; "
          f"p50 {ratio('router', '1', 'p50'):.2f} / {ratio('router', '8', 'p50'):.2f}, "
          f"p99 {ratio('router', '1', 'p99'):.2f} / {ratio('router', '8', 'p99'):.2f}.",
          "", f"Resident memory after loading: one node {rss['one']:.0f} MiB; shard 0 {rss['shard0']:.0f} MiB, "
          f"shard 1 {rss['shard1']:.0f} MiB (each {(rss['shard0'] + rss['shard1']) / 2 / rss['one']:.2f} of the one node "
          f"on average); router {rss['router']:.0f} MiB.",
          "", "Loading (add-vectors, 100 per call, 4 in flight, until every process holds its items): "
          f"one node {load('load-one')['items_per_second']:.0f} items/s acknowledged, "
          f"{open(f'{out}/json/load-seconds-one.txt').read().strip()} s in all; through the router "
          f"{load('load-router')['items_per_second']:.0f} items/s, "
          f"{open(f'{out}/json/load-seconds-router.txt').read().strip()} s."]
open(f"{out}/router-bench.md", "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
