#!/usr/bin/env bash
# The index benchmark tables of the README: every candidate kind at its defaults, hier_index against
# FAISS direct, at 100k and 1M items (the 1M data set and its ground truth take about a minute to
# make the first time; cached in OUT_DIR/cache). Usage: index-bench.sh OUT_DIR. Writes
# OUT_DIR/index-bench-<items>.md and appends JSON lines to OUT_DIR/index-bench.jsonl.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
out="${1:?usage: index-bench.sh OUT_DIR}"
build="${HIER_BUILD_DIR:-$root/build}"
mkdir -p "$out"
"$build/tests/index_bench" --items=100000 --cache="$out/cache" --json="$out/index-bench.jsonl" \
  | tee "$out/index-bench-100000.md"
# One query at a time over a million items is slow for FAISS's exact scan: fewer of those.
"$build/tests/index_bench" --items=1000000 --single-queries=300 --cache="$out/cache" \
  --json="$out/index-bench.jsonl" | tee "$out/index-bench-1000000.md"
