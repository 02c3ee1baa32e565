#!/usr/bin/env bash
# Fashion-MNIST, default CNN, CPU: HIER (lambda2 0.5) against no HIER (lambda2 0), three seeds
# each, same budget; prints test Recall@1/2/4/8 (mean +- std), images/s, wall time and the
# hierarchy-discovery scores. Usage: hier-vs-no-hier.sh OUT_DIR [extra hier-train flags]
# (SUMMARY_ONLY=1 re-reads OUT_DIR without training). Needs python3 for the table.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
out="${1:?usage: hier-vs-no-hier.sh OUT_DIR [hier-train flags]}"
shift
train="${HIER_BUILD_DIR:-$root/build}/trainer/hier-train"
groups="$root/trainer/data/fashion_mnist_groups.json"
mkdir -p "$out"
if [ "${SUMMARY_ONLY:-0}" != 1 ]; then
  for seed in 0 1 2; do
    for lambda2 in 0.5 0; do
      run="$out/l$lambda2-s$seed"
      rm -rf "$run"
      "$train" --run-dir "$run" --epochs 10 --emb 128 --c 0.1 --lambda2 "$lambda2" \
        --seed "$seed" --threads 2 --groups "$groups" "$@" > "$run.out" 2> "$run.err"
    done
  done
fi
python3 - "$out" <<'PY'
import json, re, statistics, sys, pathlib
out = pathlib.Path(sys.argv[1])
def spread(values):
    return f"{statistics.mean(values):.4f} ± {statistics.stdev(values):.4f}" if len(values) > 1 else f"{values[0]:.4f}"
print("| run | R@1 | R@2 | R@4 | R@8 | best R@1 | images/s | wall | LCA-depth AUC | LCA-height AUC | centre-distance AUC |")
print("|---|---|---|---|---|---|---|---|---|---|---|")
for lambda2, name in (("0.5", "HIER (lambda2 0.5)"), ("0", "no HIER (lambda2 0)")):
    rows = {k: [] for k in ("1", "2", "4", "8", "best", "ips", "wall", "lca", "height", "centre")}
    for seed in (0, 1, 2):
        run = out / f"l{lambda2}-s{seed}"
        if not (run / "discovery.json").exists():
            continue
        evals = [json.loads(l) for l in open(run / "metrics.jsonl") if '"eval"' in l]
        for k in ("1", "2", "4", "8"):
            rows[k].append(evals[-1]["recall"][k])
        rows["best"].append(max(e["recall"]["1"] for e in evals))
        text = open(f"{run}.out").read()
        rows["ips"].append(float(re.search(r"at (\d+) images/s", text).group(1)))
        wall = re.search(r"wall time (?:(\d+)h)?(?:(\d+)m)?(\d+)?s?", text)
        rows["wall"].append(int(wall.group(1) or 0) * 3600 + int(wall.group(2) or 0) * 60 + int(wall.group(3) or 0))
        score = json.load(open(run / "discovery.json"))
        rows["lca"].append(score["lca_depth_auc"])
        rows["height"].append(score["lca_height_auc"])
        rows["centre"].append(score["centre_distance_auc"])
    if not rows["1"]:
        continue
    print(f"| {name}, {len(rows['1'])} seeds | " + " | ".join(spread(rows[k]) for k in ("1", "2", "4", "8", "best")) +
          f" | {statistics.median(rows['ips']):.0f} | {statistics.median(rows['wall']) / 60:.1f} min | " +
          f"{spread(rows['lca'])} | {spread(rows['height'])} | {spread(rows['centre'])} |")
print("\nR@K: test split (10,000 queries = gallery) after the last epoch; best R@1: the best epoch;")
print("images/s and wall: medians over the seeds; AUCs: hier-train score (README).")
PY
