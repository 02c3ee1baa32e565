#!/usr/bin/env bash
# The main job: installs what the project needs, builds it, trains a HIER model of Fashion-MNIST
# on the CPU (or reuses the one a previous run trained), starts hier-server with it, indexes the
# test images, searches for a few of them with the `hier` CLI, and leaves the server running,
# saying where its metrics and its web console are and how to stop it.
#
# HIER_EPOCHS sets the training length (default 3, a few minutes on two cores), HIER_RETRAIN=1
# trains again, HIER_PORT / HIER_METRICS_PORT / HIER_HTTP_PORT choose the ports (50051 / 9464 /
# 8080), HIER_IMAGES how many test images are indexed (2000). Extra arguments go to hier-train (`hier-train --help`).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/deploy/install-deps.sh"
bash "$root/deploy/build.sh"
cd "$root"
bin="${HIER_BUILD_DIR:-$root/build}"
run="runs/fmnist-main"
images="runs/fmnist-test-images"    # the gallery: the first test images
queries="runs/fmnist-query-images"  # held-out test images to search with
state="state/main"
port="${HIER_PORT:-50051}"
metrics_port="${HIER_METRICS_PORT:-9464}"
http_port="${HIER_HTTP_PORT:-8080}"
hier=("$bin/client/hier" --server "127.0.0.1:$port")

echo "== 1. the model"
if [ -f "$run/best/manifest.json" ] && [ -z "${HIER_RETRAIN:-}" ]; then
  echo "reusing $run (HIER_RETRAIN=1 trains again)"
else
  rm -rf "$run"
  "$bin/trainer/hier-train" --run-dir "$run" --epochs "${HIER_EPOCHS:-3}" \
    --groups "$root/trainer/data/fashion_mnist_groups.json" "$@"
fi

echo "== 2. the server"
if [ -f "$state/server.pid" ] && kill -0 "$(cat "$state/server.pid")" 2>/dev/null; then
  echo "stopping the server a previous run left (pid $(cat "$state/server.pid"))"
  kill -TERM "$(cat "$state/server.pid")"
  while kill -0 "$(cat "$state/server.pid")" 2>/dev/null; do sleep 0.2; done
fi
mkdir -p "$state"
nohup "$bin/server/hier-server" --model "$run" --runs-dir runs --state-dir "$state" \
  --listen "127.0.0.1:$port" --metrics-listen "127.0.0.1:$metrics_port" \
  --http-listen "127.0.0.1:$http_port" > "$state/server.log" 2>&1 &
echo $! > "$state/server.pid"
for _ in $(seq 1 100); do
  if "${hier[@]}" health > /dev/null 2>&1; then break; fi
  if ! kill -0 "$(cat "$state/server.pid")" 2>/dev/null; then
    cat "$state/server.log"; exit 1
  fi
  sleep 0.2
done
"${hier[@]}" health

echo "== 3. the gallery: Fashion-MNIST test images"
if [ ! -d "$images" ]; then
  "$bin/trainer/hier-train" export-images --split test --limit "${HIER_IMAGES:-2000}" --out "$images"
fi
"${hier[@]}" items add "$images"
"${hier[@]}" stats

echo "== 4. image queries (test images not in the gallery)"
if [ ! -d "$queries" ]; then
  "$bin/trainer/hier-train" export-images --split test --from 9990 --limit 10 --out "$queries"
fi
find "$queries" -name '*.png' | sort | head -n 3 | while IFS= read -r query; do
  "${hier[@]}" search --image "$query" --k 5
done

pid="$(cat "$state/server.pid")"
echo
echo "hier-server is serving on 127.0.0.1:$port (pid $pid, log $state/server.log)."
echo "  HTTP/JSON: curl -d '' http://127.0.0.1:$http_port/v1/hier.v1.Retrieval/Stats"
echo "  metrics:   curl http://127.0.0.1:$metrics_port/metrics"
echo "  more:      $bin/client/hier --server 127.0.0.1:$port --help"
echo "  stop it:   kill -TERM $pid"
echo
echo "The web console: http://127.0.0.1:$http_port/"
