#!/usr/bin/env bash
# Training images/s of hier-train with 1 and 2 processes (Gloo) x 1 and 2 threads per process:
# the small CNN on Fashion-MNIST (28x28, global batch 180) and ResNet-50 on synthetic 500x375
# JPEGs decoded and cropped to 224x224 (global batch 16, HIER top-k 16, BatchNorm frozen). Prints the median over
# REPEATS runs (default 3) of each setting, read from status.json, and each setting's ratio to
# 1 process x 1 thread measured in the same invocation. Usage: trainer-throughput.sh OUT_DIR.
# Needs python3 for the table.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
out="${1:?usage: trainer-throughput.sh OUT_DIR}"
build="${HIER_BUILD_DIR:-$root/build}"
repeats="${REPEATS:-3}"
mkdir -p "$out"
[ -d "$out/photos" ] || "$build/tests/hier_synthetic_photos" "$out/photos" 16 4

small=(--epochs 1 --steps-per-epoch 20 --test-limit 200)
resnet=(--dataset folder --data-dir "$out/photos" --model resnet50 --bn-freeze --image-size 224
        --resize 256 --ipc 2 --topk 16 --epochs 1 --steps-per-epoch 3 --test-limit 16 --decode-threads 2)
for repeat in $(seq "$repeats"); do
  for nproc in 1 2; do
    for threads in 1 2; do
      run="$out/small-p$nproc-t$threads-r$repeat"
      rm -rf "$run"
      "$build/trainer/hier-train" --run-dir "$run" --nproc "$nproc" --threads "$threads" \
        --batch-size $((180 / nproc)) "${small[@]}" > "$run.log" 2>&1
      run="$out/resnet50-p$nproc-t$threads-r$repeat"
      rm -rf "$run"
      "$build/trainer/hier-train" --run-dir "$run" --nproc "$nproc" --threads "$threads" \
        --batch-size $((16 / nproc)) "${resnet[@]}" > "$run.log" 2>&1
    done
  done
done
python3 - "$out" "$repeats" <<'PY'
import json, statistics, sys, pathlib
out, repeats = pathlib.Path(sys.argv[1]), int(sys.argv[2])
print("| model | processes x threads | images/s (median) | ratio to 1 x 1 |")
print("|---|---|---|---|")
for model in ("small", "resnet50"):
    base = None
    for nproc in (1, 2):
        for threads in (1, 2):
            values = [json.load(open(out / f"{model}-p{nproc}-t{threads}-r{r}" / "status.json"))
                      ["images_per_second"] for r in range(1, repeats + 1)]
            median = statistics.median(values)
            base = base or median
            print(f"| {model} | {nproc} x {threads} | {median:.4g} | {median / base:.2f} |")
PY
