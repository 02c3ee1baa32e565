#!/usr/bin/env bash
# The cluster benchmark: the state folder (SQLite) against PostgreSQL as the store of record, and
# the replication lag between two replicas (README "Running several replicas").
#  a) For each store, a fresh hier-server (vectors only, d 128, exact index) loaded with ITEMS
#     items through hier-bench add-vectors (100 items per call, 4 calls in flight): acknowledged
#     items/s; then search by vector at 1 and 8 calls in flight (q/s, p50/p99). Both stores run in
#     every pass, in alternating order; ratios are medians of per-pass ratios.
#  b) Two replicas on one PostgreSQL database under a steady write load through the first
#     (hier-bench add-vectors, 1 call of 10 items in flight): deploy/experiments/replication_lag.py
#     adds single items through the first and times until a search on the second finds them.
# PostgreSQL is a scratch server in OUT_DIR/pg (deploy/postgres-scratch.sh), on the same disk as
# the SQLite state folders. Usage: cluster-bench.sh OUT_DIR. Writes OUT_DIR/cluster-bench.md and
# keeps the JSON results under OUT_DIR/json. Environment: HIER_BUILD_DIR (default build), ITEMS
# (default 100000), PASSES (default 3), DURATION / WARMUP (seconds per search run, default 10 / 2),
# LAG_SAMPLES (default 300), PG_PORT (default 55433), GRPC_PYTHON (an interpreter with grpcio;
# default Debian's /usr/bin/python3, which python3-grpcio serves).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
out="${1:?usage: cluster-bench.sh OUT_DIR}"
build="${HIER_BUILD_DIR:-$root/build}"
items="${ITEMS:-100000}"
passes="${PASSES:-3}"
duration="${DURATION:-10}"
warmup="${WARMUP:-2}"
lag_samples="${LAG_SAMPLES:-300}"
pg_port="${PG_PORT:-55433}"
grpc_python="${GRPC_PYTHON:-/usr/bin/python3}"
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

pg_args() { echo "--store $1 --store-password-file $pg_password_file"; }

echo "cluster-bench: $passes passes, $items items, PostgreSQL on 127.0.0.1:$pg_port" >&2
for pass in $(seq "$passes"); do
  order="sqlite postgres"
  if ((pass % 2 == 0)); then order="postgres sqlite"; fi
  for store in $order; do
    state="$out/state/$store-p$pass"
    rm -rf "$state"
    store_args=()
    if [[ $store == postgres ]]; then
      # shellcheck disable=SC2207
      store_args=($(pg_args "$(new_database "bench_p$pass")"))
    fi
    start_hier_server "$store" "$out/logs/$store-p$pass.log" --state-dir "$state" --dim 128 \
      --c 0.1 --metrics-listen= --http-listen= --index-threads 1 "${store_args[@]}"
    bench_hier_server "$store" "$out/json/write-$store-p$pass.json" --method add-vectors \
      --dim 128 --batch 100 --in-flight 4 --requests $((items / 100)) --warmup 0 --first-id 0 \
      --queries 20000
    for in_flight in 1 8; do
      bench_hier_server "$store" "$out/json/search-$store-$in_flight-p$pass.json" \
        --method search-vector --vectors-from-items 1000 --in-flight "$in_flight" --duration "$duration" \
        --warmup "$warmup"
    done
    stop_hier_server "$store"
    printf '  pass %s %s: %s items/s, %s q/s at 1, %s q/s at 8\n' "$pass" "$store" \
      "$(jq -r '.items_per_second | floor' "$out/json/write-$store-p$pass.json")" \
      "$(jq -r '.qps | floor' "$out/json/search-$store-1-p$pass.json")" \
      "$(jq -r '.qps | floor' "$out/json/search-$store-8-p$pass.json")" >&2
  done
done

# b) The replication lag under a steady write load.
uri="$(new_database lag)"
for name in first second; do
  # shellcheck disable=SC2046
  start_hier_server "$name" "$out/logs/lag-$name.log" --state-dir "$out/state/lag-$name" \
    --dim 128 --c 0.1 --metrics-listen= --http-listen= $(pg_args "$uri")
done
# The load outlasts the probe (LAG_SAMPLES samples, about 25 ms each).
load_seconds=$((lag_samples / 20 + 10))
"$bench_bin" --server "127.0.0.1:${HIER_PORT[first]}" --method add-vectors --dim 128 --batch 10 \
  --in-flight 1 --duration "$load_seconds" --warmup 0 --first-id 0 \
  --json "$out/json/lag-load.json" >"$out/logs/lag-load.txt" 2>&1 &
load_pid=$!
sleep 2
PYTHONPATH="$build/python" "$grpc_python" "$root/deploy/experiments/replication_lag.py" \
  --writer "127.0.0.1:${HIER_PORT[first]}" --reader "127.0.0.1:${HIER_PORT[second]}" \
  --samples "$lag_samples" >"$out/json/lag.json"
wait "$load_pid"
stop_hier_servers

python3 - "$out" "$passes" "$items" <<'PY'
import json, statistics, sys
out, passes, items = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
load = lambda name: json.load(open(f"{out}/json/{name}.json"))
rows, ratios = [], {"write": [], "1": [], "8": []}
for p in range(1, passes + 1):
    sq, pg = load(f"write-sqlite-p{p}"), load(f"write-postgres-p{p}")
    ratios["write"].append(pg["items_per_second"] / sq["items_per_second"])
    for n in ("1", "8"):
        ratios[n].append(load(f"search-postgres-{n}-p{p}")["qps"] / load(f"search-sqlite-{n}-p{p}")["qps"])
med = statistics.median
lines = [f"Stores at {items} items (d 128, exact index), medians of {passes} passes:", "",
         "| store | items/s written | search q/s (1 in flight) | p50 ms | p99 ms | search q/s (8) | p50 ms | p99 ms |",
         "|---|---|---|---|---|---|---|---|"]
for store in ("sqlite", "postgres"):
    w = med(load(f"write-{store}-p{p}")["items_per_second"] for p in range(1, passes + 1))
    cells = [store, f"{w:.0f}"]
    for n in ("1", "8"):
        runs = [load(f"search-{store}-{n}-p{p}") for p in range(1, passes + 1)]
        cells += [f"{med(r['qps'] for r in runs):.0f}", f"{med(r['latency_ms']['p50'] for r in runs):.2f}",
                  f"{med(r['latency_ms']['p99'] for r in runs):.2f}"]
    lines.append("| " + " | ".join(cells) + " |")
lines += ["", "PostgreSQL / SQLite (median of per-pass ratios): writes "
          f"{med(ratios['write']):.2f}, search q/s {med(ratios['1']):.2f} at 1 in flight, "
          f"{med(ratios['8']):.2f} at 8 (per pass: " +
          ", ".join(f"{a:.2f}/{b:.2f}" for a, b in zip(ratios['1'], ratios['8'])) + ")."]
lag = load("lag")
lines += ["", f"Replication lag, 2 replicas, steady writes through the first "
          f"({load('lag-load')['items_per_second']:.0f} items/s): p50 {lag['p50_ms']:.1f} ms, "
          f"p99 {lag['p99_ms']:.1f} ms, max {lag['max_ms']:.1f} ms over {lag['samples']} samples "
          f"({lag['missed']} not seen within 10 s)."]
open(f"{out}/cluster-bench.md", "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
