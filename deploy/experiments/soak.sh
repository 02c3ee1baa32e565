#!/usr/bin/env bash
# The soak (README "Reliability"): one hier-server under a mixed load for MINUTES minutes while
# faults are injected on a schedule; a client-side ledger proves that no acknowledged write is
# lost, every status code is counted against the faults that explain it, and the server's
# resident memory is sampled.
#
# Usage: soak.sh MINUTES [OUT]   (as root: the state folder is a tmpfs it mounts and fills)
#
# Load, in rounds of ROUND_SECONDS (default 20), each a set of hier-bench runs paced with --rate:
# search by vector (20 calls/s, 2 in flight), search by image (10/s), embed (10/s, 2 images per
# call), add by image (2 calls/s of 4 items, ids of round r from 1,000,000 + 10,000 r, ledger) and
# delete (every add call of the previous round, same ids, ledger: the gallery keeps its size, so
# memory that grows is not the gallery's). Before the rounds: the two small models of the
# end-to-end tests' fixture (60 and 30 steps; copied from <build>/tests/e2e-models when there,
# else trained) and 1,000 items added.
# Faults, on a cycle of 15 rounds (5 minutes at 20 s):
#   round 1   hot swap to the other model (LoadModel, wait), under the load
#   round 3   a training job (200 steps on the server's local Fashion-MNIST, watched to its end),
#             and 8 WatchJob streams on it that are never read (held 45 s, then cancelled)
#   round 6   a burst: every load at 10x its rate and in-flight count
#   round 8   full disk: the state folder's tmpfs filled for 12 s (and a writer at 50 calls/s
#             pushes SQLite past its preallocated WAL), then freed
#   round 11  SIGKILL of the server and a restart (the first KILLS cycles, default 2, so that
#             the last lifetime is long enough to judge memory)
#   round 13  hot swap back
# The ledger (OUT/ledger) is read back with GetItem after every restart, after the disk is freed,
# at the end, and after a final SIGTERM and restart. RSS and threads of the server are read from
# /proc every 2 s. soak_check.py writes OUT/soak.md (operations x codes, faults, writes, memory)
# and the verdict: the script exits 1 on a lost acknowledged write, an unexpected code, a crash,
# or RSS growth of 5% or more within a lifetime after WARMUP_SECONDS (default 300; 60 under 15
# minutes).
#
# Environment: HIER_BUILD_DIR (default build; its binaries and Python stubs are copied into OUT
# first, so a rebuild during the soak changes nothing), ROUND_SECONDS, KILLS, TMPFS_MB (default
# 64), WARMUP_SECONDS, PYTHON (default /usr/bin/python3, Debian's, with python3-grpcio).
# Traffic is loopback only; every loop is bounded; the EXIT trap stops every process it started
# and unmounts the tmpfs.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
minutes="${1:?usage: soak.sh MINUTES [OUT]}"
usage_error() { echo "soak: $*" >&2; exit 2; }
[[ "$minutes" =~ ^[0-9]+$ && "$minutes" -ge 1 ]] || usage_error "MINUTES must be >= 1"
out="${2:-$root/runs/soak-$(date -u +%Y%m%d-%H%M%S)}"
build="${HIER_BUILD_DIR:-$root/build}"
round_seconds="${ROUND_SECONDS:-20}"
kills="${KILLS:-2}"
tmpfs_mb="${TMPFS_MB:-64}"
if [[ -z "${WARMUP_SECONDS:-}" ]]; then
  if ((minutes >= 15)); then WARMUP_SECONDS=300; else WARMUP_SECONDS=60; fi
fi
python="${PYTHON:-/usr/bin/python3}"
[[ $EUID -eq 0 ]] || usage_error "run as root (it mounts a tmpfs as the state folder)"

mkdir -p "$out"
out="$(cd "$out" && pwd)"
[[ ! -e "$out/ledger" ]] || usage_error "$out holds a previous soak; give a new OUT"
mkdir -p "$out"/{bin,bench,ledger,logs,runs,state,jobs}
state="$out/state"
runs="$out/runs"
bin="$out/bin"
for tool in server/hier-server trainer/hier-train client/hier-bench; do
  cp "$build/$tool" "$bin/"
done
cp -r "$build/python" "$out/python"
export PYTHONPATH="$out/python"
client=("$python" "$root/deploy/experiments/soak_client.py")

now() { date +%s.%N; }
# note EVENT T_START T_END [JSON FIELDS]: one line of events.jsonl.
note() {
  printf '{"event": "%s", "t_start": %s, "t_end": %s%s}\n' "$1" "$2" "$3" "${4:+, $4}" \
    >>"$out/events.jsonl"
}
log() { echo "soak $(date -u +%H:%M:%S): $*"; }

# ---- cleanup -------------------------------------------------------------------------------------
server_pid=""
sampler_pid=""
bench_pids=()
client_pids=()
stop_pid() {  # stop_pid PID SECONDS: SIGTERM, then SIGKILL after SECONDS
  local pid="$1" i
  kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < $2 * 5; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}
cleanup() {
  local status=$? pid
  trap - EXIT INT TERM
  rm -f "$out/.sampling"
  for pid in "${bench_pids[@]}" "${client_pids[@]}" $sampler_pid; do stop_pid "$pid" 5; done
  [[ -n "$server_pid" ]] && stop_pid "$server_pid" 40
  # Training jobs of this soak that outlived their server (they stop with it, this is a backstop).
  for pid in $(pgrep -x hier-train || true); do
    if tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "--run-dir $runs/"; then
      kill -KILL "$pid" 2>/dev/null || true
    fi
  done
  if mountpoint -q "$state"; then umount "$state" 2>/dev/null || umount -l "$state" || true; fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- models, images, the state folder -----------------------------------------------------------
# The end-to-end tests' two fixture models (tests/server/e2e/server_fixture.cc): copied from the
# build tree's e2e-models/ when the tests trained them there, else trained the same way here.
train_model() {  # train_model RUN FIXTURE STEPS SEED
  local fixture="$build/tests/e2e-models/$2"
  if [[ -f "$fixture/best/manifest.json" ]]; then
    cp -r "$fixture" "$runs/$1"
    return 0
  fi
  log "training $1 ($3 steps)"
  "$bin/hier-train" --run-dir "$runs/$1" --epochs 1 --steps-per-epoch "$3" --seed "$4" \
    --test-limit 1000 --emb 32 --num-proxies 64 --threads 2 >"$out/logs/train-$1.log" 2>&1
}
train_model model-a run 60 0
train_model model-b run2 30 1
# 256 Fashion-MNIST test images, flat, for search, embed and add (the adds cycle through them, so
# the image store stays small and the state folder's space goes to SQLite).
"$bin/hier-train" export-images --out "$out/images-by-class" --limit 256 >/dev/null
mkdir -p "$out/images"
find "$out/images-by-class" -name '*.png' -exec cp -t "$out/images" {} +
mount -t tmpfs -o "size=${tmpfs_mb}m" tmpfs "$state"

read -r port metrics_port < <("$python" -c '
import socket
s = [socket.socket() for _ in range(2)]
for x in s: x.bind(("127.0.0.1", 0))
print(*[x.getsockname()[1] for x in s])')
server="127.0.0.1:$port"

# ---- the server ----------------------------------------------------------------------------------
lifetime=-1
start_server() {
  lifetime=$((lifetime + 1))
  rm -f "$out/port.json"
  "$bin/hier-server" --listen "$server" --metrics-listen "127.0.0.1:$metrics_port" --http-listen= \
    --port-file "$out/port.json" --state-dir "$state" --runs-dir "$runs" \
    --model "$runs/model-a" --trainer "$bin/hier-train" --torch-threads 1 --index-threads 1 \
    >>"$out/logs/server-$lifetime.log" 2>&1 &
  server_pid=$!
  echo "$server_pid $lifetime" >"$out/server.pid"
  local i
  for ((i = 0; i < 600; i++)); do
    [[ -s "$out/port.json" ]] && return 0
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.2
  done
  echo "soak: hier-server did not start; see $out/logs/server-$lifetime.log" >&2
  tail -20 "$out/logs/server-$lifetime.log" >&2
  exit 1
}
# A server that exited without being killed by the soak crashed: noted, restarted.
check_alive() {
  if ! kill -0 "$server_pid" 2>/dev/null; then
    local t status=0
    t="$(now)"
    wait "$server_pid" || status=$?
    log "hier-server exited on its own (status $status); restarting"
    note crash "$t" "$t" "\"status\": $status, \"lifetime\": $lifetime"
    start_server
  fi
}

# RSS and threads of the current server every 2 s, until .sampling goes, with what malloc holds in
# use and free (from its metrics; "-" while they cannot be read).
sample() {
  local end=$((SECONDS + minutes * 60 + 3600)) pid life heap
  while [[ -e "$out/.sampling" ]] && ((SECONDS < end)); do
    read -r pid life <"$out/server.pid" || true
    heap="$(curl -sf --max-time 1 "http://127.0.0.1:$metrics_port/metrics" | awk '
      $1 == "hier_malloc_in_use_bytes" {used = $2} $1 == "hier_malloc_free_bytes" {free = $2}
      END {print (used == "" ? "-" : used), (free == "" ? "-" : free)}')" || heap="- -"
    awk -v t="$(now)" -v life="$life" -v pid="$pid" -v heap="$heap" '
      /^VmRSS:/ {rss = $2 * 1024} /^Threads:/ {threads = $2}
      END {if (rss) print t, life, pid, rss, threads, heap}' "/proc/$pid/status" 2>/dev/null \
      >>"$out/rss.tsv" || true
    sleep 2
  done
}

check_ledger() {  # check_ledger LABEL
  log "ledger check ($1)"
  "${client[@]}" check "$out" --server "$server" --label "$1" | tee -a "$out/logs/checks.txt" ||
    log "ledger check ($1) FAILED"
}

# ---- load ----------------------------------------------------------------------------------------
bench() {  # bench ROUND OP ARGS...: one hier-bench run in the background
  local json
  json="$out/bench/round-$(printf %04d "$1")-$2.json"
  shift 2
  timeout -k 5 $((round_seconds + 120)) "$bin/hier-bench" --server "$server" --warmup 0 \
    --timeout 10 --json "$json" "$@" >"${json%.json}.txt" 2>&1 &
  bench_pids+=($!)
}
first_id() { echo $((1000000 + 10000 * $1)); }
ledger_of() { echo "$out/ledger/round-$(printf %04d "$1")-$2.txt"; }

swap_to=model-b
fault_swap() {
  sleep 4
  log "hot swap to $swap_to"
  "${client[@]}" swap "$out" "$swap_to" --server "$server" | tee -a "$out/logs/swaps.txt"
  if [[ "$swap_to" == model-b ]]; then swap_to=model-a; else swap_to=model-b; fi
}
fault_train_and_stall() {
  local job_file="$out/jobs/round-$1.txt"
  sleep 2
  log "training job, 8 stalled WatchJob readers"
  timeout -k 5 900 "${client[@]}" train "$out" "$job_file" --server "$server" --name "soak-r$1" \
    >>"$out/logs/training.txt" 2>&1 &
  client_pids+=($!)
  timeout -k 5 300 "${client[@]}" stall "$out" "$job_file" --server "$server" --streams 8 \
    --hold 45 >>"$out/logs/stall.txt" 2>&1 &
  client_pids+=($!)
}
fault_disk_full() {
  local t0 t1
  sleep 3
  log "filling the state folder"
  t0="$(now)"
  dd if=/dev/zero of="$state/fill" bs=1M count="$tmpfs_mb" status=none 2>/dev/null || true
  # The WAL's preallocated pages take a few hundred writes before SQLite needs a new block.
  timeout -k 5 60 "$bin/hier-bench" --server "$server" --method add-images \
    --images "$out/images" --batch 4 --rate 50 --in-flight 2 --duration 12 --warmup 0 \
    --timeout 10 --first-id $(($(first_id "$1") + 5000)) --ledger "$(ledger_of "$1" add-full)" \
    --json "$out/bench/round-$(printf %04d "$1")-add-full.json" \
    >"$out/bench/round-$(printf %04d "$1")-add-full.txt" 2>&1 || true
  rm -f "$state/fill"
  t1="$(now)"
  note disk-full "$t0" "$t1" "\"round\": $1"
  log "state folder freed"
}
fault_kill() {
  local t0 t1
  sleep 7
  log "SIGKILL"
  t0="$(now)"
  kill -KILL "$server_pid"
  wait "$server_pid" 2>/dev/null || true
  start_server
  t1="$(now)"
  note kill "$t0" "$t1" "\"round\": $1, \"lifetime\": $lifetime"
  log "restarted in $(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.1f", b - a}') s"
}

run_round() {  # run_round R FAULTS
  local r="$1" faults="$2" mult=1 t_start t_end deletes rate burst=false
  [[ " $faults " == *" burst "* ]] && mult=10 && burst=true
  t_start="$(now)"
  bench_pids=()
  bench "$r" search-vector --method search-vector --rate $((20 * mult)) --in-flight $((2 * mult)) \
    --duration "$round_seconds"
  bench "$r" search-image --method search-image --images "$out/images" --rate $((10 * mult)) \
    --in-flight $((2 * mult)) --duration "$round_seconds"
  bench "$r" embed --method embed --images "$out/images" --batch 2 --rate $((10 * mult)) \
    --in-flight $((2 * mult)) --duration "$round_seconds"
  bench "$r" add --method add-images --images "$out/images" --batch 4 --rate $((2 * mult)) \
    --in-flight $((2 * mult)) --duration "$round_seconds" --first-id "$(first_id "$r")" \
    --ledger "$(ledger_of "$r" add)"
  # Deletes: every add call of the previous round (call i deletes what add call i added), spread
  # over three quarters of the round, so the gallery keeps its size.
  if ((r > 0)) && [[ -f "$(ledger_of $((r - 1)) add)" ]]; then
    deletes=$(wc -l <"$(ledger_of $((r - 1)) add)")
    if ((deletes > 0)); then
      rate="$(awk -v n="$deletes" -v s="$round_seconds" 'BEGIN {printf "%.2f", n / (0.75 * s)}')"
      bench "$r" delete --method delete --batch 4 --first-id "$(first_id $((r - 1)))" \
        --requests "$deletes" --rate "$rate" --in-flight $((2 * mult)) \
        --ledger "$(ledger_of "$r" delete)"
    fi
  fi
  for fault in $faults; do
    case "$fault" in
      swap) fault_swap ;;
      train) fault_train_and_stall "$r" ;;
      disk-full) fault_disk_full "$r" ;;
      kill) fault_kill "$r" ;;
    esac
  done
  local pid
  for pid in "${bench_pids[@]}"; do wait "$pid" || true; done
  bench_pids=()
  t_end="$(now)"
  printf '{"round": %d, "t_start": %s, "t_end": %s, "burst": %s, "faults": "%s", "lifetime": %d}' \
    "$r" "$t_start" "$t_end" "$burst" "$faults" "$lifetime" >>"$out/rounds.jsonl"
  echo >>"$out/rounds.jsonl"
  for op in search-vector search-image embed add; do
    [[ -s "$out/bench/round-$(printf %04d "$r")-$op.json" ]] ||
      note error "$t_end" "$t_end" "\"what\": \"round $r: hier-bench $op wrote no result\""
  done
}

faults_of() {  # the faults of round R
  local slot=$(($1 % 15)) cycle=$(($1 / 15))
  case "$slot" in
    1 | 13) echo swap ;;
    3) echo train ;;
    6) echo burst ;;
    8) echo disk-full ;;
    11) ((cycle < kills)) && echo kill || echo "" ;;
    *) echo "" ;;
  esac
}

# ---- the soak ------------------------------------------------------------------------------------
log "out $out, server $server, $minutes min in rounds of $round_seconds s, $(nproc) cores"
touch "$out/.sampling"
start_server
sample &
sampler_pid=$!
"$bin/hier-bench" --server "$server" --method add-images --images "$out/images" --batch 4 \
  --requests 250 --in-flight 2 --warmup 0 --first-id 0 --ledger "$out/ledger/init.txt" \
  --json "$out/bench/init-add.json" >"$out/bench/init-add.txt" 2>&1
deadline=$((SECONDS + minutes * 60))
max_rounds=$((minutes * 60 / round_seconds + 1))
for ((r = 0; r < max_rounds && SECONDS + round_seconds <= deadline; r++)); do
  check_alive
  faults="$(faults_of "$r")"
  log "round $r${faults:+: $faults}"
  run_round "$r" "$faults"
  check_alive
  case " $faults " in
    *" kill "*) check_ledger "after restart (round $r)" ;;
    *" disk-full "*) check_ledger "after the disk was freed (round $r)" ;;
  esac
done

log "load over; waiting for the training job and stalled readers"
for pid in "${client_pids[@]}"; do wait "$pid" || true; done
client_pids=()
check_alive
check_ledger "end"
# SIGTERM must drain, snapshot and exit 0.
stop_server() {
  local t0 status=0
  t0="$(now)"
  kill -TERM "$server_pid"
  wait "$server_pid" || status=$?
  server_pid=""
  [[ "$status" -eq 0 ]] ||
    note error "$t0" "$(now)" "\"what\": \"hier-server exited $status on SIGTERM\""
  note sigterm "$t0" "$(now)" "\"status\": $status"
}
log "SIGTERM (drain, snapshot), restart, check again"
stop_server
start_server
check_ledger "after SIGTERM and restart"
stop_server
rm -f "$out/.sampling"
wait "$sampler_pid" || true
sampler_pid=""

"$python" "$root/deploy/experiments/soak_check.py" report "$out" --warmup "$WARMUP_SECONDS" \
  --min-span "$WARMUP_SECONDS"
