#!/usr/bin/env bash
# A start over a damaged index snapshot, as an orchestrator sees it: a gallery of ITEMS items
# (server_bench_gallery: d 128, c 0.1, candidate stage KIND, snapshotted) whose snapshot has bytes
# overwritten in its middle, served by hier-server --log-format json while `hier health` is asked
# every 100 ms from the moment the process starts. Reports when the port first answered
# (NOT_SERVING), when it answered SERVING, when the log says it listened, and the start-up phases
# the log names, with their durations.
#
#   bash deploy/experiments/damaged-start.sh OUT_DIR
# Environment: ITEMS (default 1000000), KIND (default ivf-flat), HIER_BUILD_DIR (default build),
# BENCH_CACHE (the generated data, default OUT_DIR/cache). Writes OUT_DIR/damaged-start.json and
# keeps the server's log as OUT_DIR/server.log. The gallery stays in OUT_DIR/state for the next
# run (its snapshot is rebuilt by this one).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
out="${1:?usage: damaged-start.sh OUT_DIR}"
items="${ITEMS:-1000000}"
kind="${KIND:-ivf-flat}"
build="${HIER_BUILD_DIR:-$root/build}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
cache="${BENCH_CACHE:-$out/cache}"

"$build/tests/server_bench_gallery" --state "$out/state" --items "$items" --kind "$kind" \
  --cache "$cache" >"$out/gallery.log" 2>&1 || { cat "$out/gallery.log" >&2; exit 1; }
snapshot="$(find "$out/state" -name '*.snapshot' | head -n 1)"
[[ -n "$snapshot" ]] || { echo "damaged-start: no snapshot under $out/state" >&2; exit 1; }
size="$(stat -c %s "$snapshot")"
printf 'damaged!' | dd of="$snapshot" bs=1 seek=$((size / 2)) conv=notrunc status=none

port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
log="$out/server.log"
started_ns="$(date +%s%N)"
"$build/server/hier-server" --dim 128 --c 0.1 --state-dir "$out/state" --runs-dir "$out/runs" \
  --listen "127.0.0.1:$port" --metrics-listen 127.0.0.1:0 --http-listen 127.0.0.1:0 --log-format json >"$log" 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true' EXIT

# Health every 100 ms for at most 30 minutes: when the port first answered and when it served.
first_answer="" not_serving_seen=0 serving=""
for ((poll = 0; poll < 18000; ++poll)); do
  kill -0 "$server" 2>/dev/null || { echo "damaged-start: hier-server exited; see $log" >&2; exit 1; }
  answer="$("$build/client/hier" --server "127.0.0.1:$port" health 2>/dev/null || true)"
  now_ns="$(date +%s%N)"
  if [[ "$answer" == NOT_SERVING || "$answer" == SERVING ]] && [[ -z "$first_answer" ]]; then
    first_answer=$(((now_ns - started_ns) / 1000000))
  fi
  [[ "$answer" == NOT_SERVING ]] && not_serving_seen=1
  if [[ "$answer" == SERVING ]]; then
    serving=$(((now_ns - started_ns) / 1000000))
    break
  fi
  sleep 0.1
done
[[ -n "$serving" ]] || { echo "damaged-start: not SERVING within 30 minutes; see $log" >&2; exit 1; }
kill -TERM "$server"
wait "$server" || true
trap - EXIT

python3 - "$log" "$out/damaged-start.json" "$items" "$kind" "$first_answer" "$not_serving_seen" \
  "$serving" "$started_ns" <<'PY'
import datetime, json, sys
log, result, items, kind, first, not_serving, serving, started_ns = sys.argv[1:]
phases = []
listening_ms = None
for line in open(log, encoding="utf-8", errors="replace"):
    if not line.startswith("{"):
        continue
    event = json.loads(line)
    if event["event"] == "listening" and listening_ms is None:
        at = datetime.datetime.strptime(event["time"], "%Y-%m-%dT%H:%M:%S.%fZ")
        at = at.replace(tzinfo=datetime.timezone.utc).timestamp() * 1000
        listening_ms = int(at - int(started_ns) / 1e6)
    if event["event"] == "startup_phase":
        phases.append({"phase": event["phase"], "seconds": round(event["seconds"], 3),
                       "detail": event.get("detail", "")})
summary = {"items": int(items), "kind": kind, "listening_ms": listening_ms,
           "first_health_answer_ms": int(first),
           "not_serving_seen": not_serving == "1", "serving_ms": int(serving), "phases": phases}
json.dump(summary, open(result, "w"), indent=2)
print(f"items {items} ({kind}), snapshot damaged; listening {listening_ms / 1000:.2f} s after exec")
print(f"first health answer {int(first) / 1000:.2f} s after exec"
      f" ({'NOT_SERVING' if not_serving == '1' else 'SERVING'}), SERVING after {int(serving) / 1000:.1f} s")
print("| phase | seconds | what it found |")
print("|---|---:|---|")
for phase in phases:
    print(f"| {phase['phase']} | {phase['seconds']:.3f} | {phase['detail']} |")
PY
