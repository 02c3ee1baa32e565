# Sourced by the experiment scripts: hier-server processes on free loopback ports, by name.
#
#   start_hier_server NAME LOG ARGS...  starts "$server_bin" ARGS... (plus --listen, --metrics-listen
#                                       and --http-listen on 127.0.0.1:0, and a port file next to
#                                       LOG), waits up to 120 s until it listens; sets
#                                       HIER_PORT[NAME], HIER_METRICS_PORT[NAME], HIER_HTTP_PORT[NAME]
#   stop_hier_server NAME               SIGTERM, then waits for it
#   stop_hier_servers                   every server still running (the scripts' EXIT trap)
#   bench_hier_server NAME JSON ARGS... one "$bench_bin" run against server NAME (--json JSON, its
#                                       output beside it); exits the script when it fails
#   bench_model OUT                     prints the run directory a benchmark embeds with: $HIER_MODEL,
#                                       else runs/fmnist-main when trained, else a small model trained
#                                       once into OUT/model (log: OUT/logs/train.log; needs train_bin)
# Needs server_bin (and bench_bin for bench_hier_server) and jq.
declare -A HIER_PID=() HIER_PORT=() HIER_METRICS_PORT=() HIER_HTTP_PORT=()

start_hier_server() {
  local name="$1" log="$2"
  shift 2
  local port_file="${log%.log}.port.json"
  rm -f "$port_file"
  "$server_bin" --listen 127.0.0.1:0 --metrics-listen 127.0.0.1:0 --http-listen 127.0.0.1:0 --port-file "$port_file" "$@" \
    >"$log" 2>&1 &
  HIER_PID[$name]=$!
  for _ in $(seq 600); do
    [[ -s "$port_file" ]] && break
    if ! kill -0 "${HIER_PID[$name]}" 2>/dev/null; then
      echo "hier-server $name exited; see $log" >&2
      cat "$log" >&2
      exit 1
    fi
    sleep 0.2
  done
  [[ -s "$port_file" ]] || { echo "hier-server $name: no port file after 120 s; see $log" >&2; exit 1; }
  HIER_PORT[$name]="$(jq -r .grpc "$port_file")"
  HIER_METRICS_PORT[$name]="$(jq -r .metrics "$port_file")"
  HIER_HTTP_PORT[$name]="$(jq -r .http "$port_file")"
}

stop_hier_server() {
  local pid="${HIER_PID[$1]:-}"
  if [[ -n "$pid" ]]; then
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    unset "HIER_PID[$1]"
  fi
}

stop_hier_servers() {
  local name
  for name in "${!HIER_PID[@]}"; do stop_hier_server "$name"; done
}

bench_hier_server() {
  local name="$1" json="$2"
  shift 2
  "$bench_bin" --server "127.0.0.1:${HIER_PORT[$name]}" --json "$json" "$@" \
    >"${json%.json}.txt" 2>&1 || {
    echo "hier-bench failed against $name ($json):" >&2
    cat "${json%.json}.txt" >&2
    exit 1
  }
}

bench_model() {
  local model="${HIER_MODEL:-$root/runs/fmnist-main}"
  if [[ ! -f "$model/best/manifest.json" ]]; then
    model="$1/model"
    if [[ ! -f "$model/best/manifest.json" ]]; then
      echo "training a small model into $model" >&2
      mkdir -p "$1/logs"
      "$train_bin" --run-dir "$model" --epochs 1 --steps-per-epoch 50 --threads 2 \
        >"$1/logs/train.log" 2>&1
    fi
  fi
  echo "$model"
}
