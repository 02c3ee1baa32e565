#!/usr/bin/env bash
# The growth benchmark (README "The index", issue: no search stalls while the index grows): one
# hier-server (vectors only, d 128, IVF-Flat at its defaults, SQLite state folder) takes ITEMS
# items in AddItems calls of 1,000 while 2 clients search by random vector, each keeping one call
# in flight, from the first added batch until the last is acknowledged. The automatically sized
# IVF trains at 10,000 items and retrains at 40,000, 160,000 and 640,000, beside the live stage.
# Reports every search's latency over the whole load (max, p99.9, p99, p50), the searches' q/s
# and the items/s written, beside the same searches alone for as long afterwards (the control). Usage: growth-bench.sh OUT_DIR. Writes OUT_DIR/growth-bench.md, keeps
# the JSON under OUT_DIR/json. Environment: HIER_BUILD_DIR (default build), ITEMS (default
# 1000000), INDEX_KIND (default ivf-flat).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
out="${1:?usage: growth-bench.sh OUT_DIR}"
build="${HIER_BUILD_DIR:-$root/build}"
items="${ITEMS:-1000000}"
index_kind="${INDEX_KIND:-ivf-flat}"
mkdir -p "$out/json" "$out/logs"
out="$(cd "$out" && pwd)"
server_bin="$build/server/hier-server"
bench_bin="$build/client/hier-bench"

# shellcheck source=deploy/experiments/hier-servers.sh
source "$root/deploy/experiments/hier-servers.sh"
trap stop_hier_servers EXIT

rm -rf "$out/state" "$out/loaded"
start_hier_server growth "$out/logs/server.log" --state-dir "$out/state" --dim 128 --c 0.1 \
  --index-kind "$index_kind" --index-threads 1 --metrics-listen= --http-listen=
# The first batch, so that searches find something from their first call.
bench_hier_server growth "$out/json/first.json" --method add-vectors --dim 128 --batch 1000 \
  --in-flight 1 --requests 1 --warmup 0 --first-id 0
bench_hier_server growth "$out/json/search.json" --method search-vector --dim 128 --c 0.1 \
  --in-flight 2 --duration 7200 --warmup 0 --stop-file "$out/loaded" &
searcher=$!
bench_hier_server growth "$out/json/load.json" --method add-vectors --dim 128 --batch 1000 \
  --in-flight 1 --requests $((items / 1000 - 1)) --warmup 0 --first-id 1000
touch "$out/loaded"
wait "$searcher"
# The control: the same searches for as long again with no writes, on the full index, so that a
# stall of the machine itself (shared, 2 cores) shows in both rows.
control_seconds="$(python3 -c "import json,sys; print(max(10, round(json.load(open(sys.argv[1]))['seconds'])))" "$out/json/load.json")"
bench_hier_server growth "$out/json/control.json" --method search-vector --dim 128 --c 0.1 \
  --in-flight 2 --duration "$control_seconds" --warmup 0
stop_hier_servers

python3 - "$out" "$items" "$index_kind" <<'PY'
import json, sys
out, items, kind = sys.argv[1], int(sys.argv[2]), sys.argv[3]
search = json.load(open(f"{out}/json/search.json"))
control = json.load(open(f"{out}/json/control.json"))
load = json.load(open(f"{out}/json/load.json"))

def row(name, run, written):
    lat = run["latency_ms"]
    return (f"| {name} | {run['ok']} | {lat['max']:.1f} | {lat['p999']:.1f} | {lat['p99']:.1f} | "
            f"{lat['p50']:.2f} | {run['qps']:.0f} | {written} |")

errors = ", ".join(f"{code} {n}" for code, n in search["errors"].items()) or "none"
lines = [f"{items} items ({kind}, d 128) added in calls of 1,000 while 2 clients search "
         f"({search['ok']} searches over {load['seconds']:.0f} s), then the same searches alone "
         f"for as long (control):", "",
         "| phase | searches | max ms | p99.9 ms | p99 ms | p50 ms | q/s | items/s written |",
         "|---|---|---|---|---|---|---|---|",
         row("during the load", search, f"{load['items_per_second']:.0f}"),
         row("searches alone (control)", control, "-"), "",
         f"During the load / control: max {search['latency_ms']['max'] / control['latency_ms']['max']:.2f}, "
         f"p99.9 {search['latency_ms']['p999'] / control['latency_ms']['p999']:.2f}. "
         f"Search errors during the load: {errors}."]
open(f"{out}/growth-bench.md", "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
