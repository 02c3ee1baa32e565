#!/usr/bin/env bash
# Fuzzes the parsers that read untrusted bytes (tests/fuzz/*_fuzz.cc) with libFuzzer under
# AddressSanitizer and UndefinedBehaviorSanitizer (clang 14), starting from each target's corpus in
# tests/fuzz/corpus/<target>. New inputs go to build-fuzz/new/<target> (the committed corpus is
# left alone); an input that crashes a target is saved as build-fuzz/findings/<target>-crash-*:
# copy it into the target's corpus and write a unit test for the bug it shows. CI replays every
# corpus on its own build (ctest -L fuzz).
#
#   bash deploy/fuzz.sh [TARGET|all] [SECONDS]     (default: all, 60 seconds per target)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${HIER_FUZZ_BUILD_DIR:-$root/build-fuzz}"
targets=(image_header_fuzz shard_spec_fuzz candidate_stage_fuzz idx_reader_fuzz mat_file_fuzz
  trainer_json_fuzz server_json_fuzz store_rows_fuzz job_config_fuzz grpc_requests_fuzz)
which="${1:-all}"
seconds="${2:-60}"
if [[ "$which" != all ]]; then
  if [[ ! " ${targets[*]} " =~ " $which " ]]; then
    echo "fuzz: no target $which (targets: ${targets[*]})" >&2
    exit 2
  fi
  targets=("$which")
fi
sanitizers="-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined"
mkdir -p "$build"
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_COMPILER=clang++-14 -DHIER_FUZZ=ON -DHIER_BUILD_BENCHMARKS=OFF \
  -DCMAKE_CXX_FLAGS="$sanitizers" -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=address,undefined" \
  >"$build/configure.log" 2>&1 || { cat "$build/configure.log" >&2; exit 1; }
cmake --build "$build" --parallel "$(nproc)" --target "${targets[@]}"
mkdir -p "$build/findings"
# Targets whose parsers read files write them to a scratch folder under $TMPDIR: in memory when
# it can be (/dev/shm), as SQLite syncs every commit.
scratch="${TMPDIR:-/tmp}"
if [[ -z "${TMPDIR:-}" && -w /dev/shm ]]; then scratch=/dev/shm; fi
failed=()
for target in "${targets[@]}"; do
  mkdir -p "$build/new/$target"
  echo "fuzz: $target for ${seconds} s" >&2
  options=(-rss_limit_mb=2048)
  leaks=1
  # FAISS's read_index leaks what it had built when it throws on bad bytes (a one-off, at the start
  # of a server whose snapshot is damaged): not ours to fix, so leaks are not findings there (nor
  # at exit), and the leaked memory piles up over a run (hence more room).
  if [[ $target == candidate_stage_fuzz ]]; then
    options=(-detect_leaks=0 -rss_limit_mb=8192)
    leaks=0
  fi
  if ! ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=$leaks" TMPDIR="$scratch" \
      "$build/tests/$target" -max_total_time="$seconds" -timeout=10 \
      "${options[@]}" -artifact_prefix="$build/findings/$target-" "$build/new/$target" \
      "$root/tests/fuzz/corpus/$target" 2>"$build/$target.log"; then
    failed+=("$target")
    tail -n 30 "$build/$target.log" >&2
  fi
  grep -E '^(Done|#[0-9]+ +DONE)' "$build/$target.log" | tail -n 1 >&2 || true
done
if ((${#failed[@]} > 0)); then
  echo "fuzz: findings in ${failed[*]} (see $build/findings)" >&2
  exit 1
fi
echo "fuzz: no finding" >&2
