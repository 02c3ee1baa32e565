#!/usr/bin/env bash
# What HIER buys: a seeded study of HIER against no HIER on the class-disjoint protocol (and the
# closed one), on Fashion-MNIST and on the generated shape world (hier-train generate-shapes).
# Every cell runs once per seed; the table (deploy/experiments/hier_study_table.py) reports mean ±
# std of R@1, MAP@R and mistake severity at the last evaluation, and the paired difference per seed
# against the same protocol's "no-hier" cell.
#
# Usage: hier-study.sh OUT_DIR [STAGE ...]   stages: coarse (default), refine; SUMMARY_ONLY=1 only
# re-reads OUT_DIR. A run whose status.json says "finished" is kept, so an interrupted study
# continues where it stopped. SEEDS (default "0 1 2"), THREADS (default 2), PROTOCOLS (default
# all: fmnist-disjoint fmnist-closed shapes) and CELLS (cell names; default all) may be set, e.g.
# to run two disjoint sets of cells side by side.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
out="${1:?usage: hier-study.sh OUT_DIR [coarse|refine ...]}"
shift
stages=("${@:-coarse}")
train="${HIER_BUILD_DIR:-$root/build}/trainer/hier-train"
seeds=(${SEEDS:-0 1 2})
threads="${THREADS:-2}"
protocols=" ${PROTOCOLS:-fmnist-disjoint fmnist-closed shapes} "
cell_filter=" ${CELLS:-} "
mkdir -p "$out"
shapes="$out/shape-world"

# protocol -> the flags every cell of it shares.
declare -A protocol_flags=(
  [fmnist-disjoint]="--dataset fashion-mnist --protocol disjoint --epochs 3
    --groups $root/trainer/data/fashion_mnist_groups.json"
  [fmnist-closed]="--dataset fashion-mnist --train-limit 30000 --epochs 3
    --groups $root/trainer/data/fashion_mnist_groups.json"
  [shapes]="--dataset list --data-dir $shapes/shapes.tsv --image-size 32 --resize 32
    --crop-scale-min 0.7 --ipc 2 --epochs 15 --groups $shapes/class_tree.json"
)

# Cells: "protocol cell-name flags...". Proxy lr = lr (1e-3) x --hier-proxy-lr-scale, so the scales
# 0.25, 1, 30 span the authors' 2.5e-4 ... 3e-2. Every HIER cell names its proxy lr scale and AdamW
# epsilon, so the cells mean the same whatever the defaults; a cell ending in "-eps1e-4" is
# compared with no-hier-eps1e-4 (the epsilon moves every parameter group, not only the proxies).
hier="--lambda2 0.5 --hier-proxy-lr-scale 50 --adam-eps 1e-8"   # the defaults the study started from
coarse_cells=(
  "fmnist-disjoint no-hier --lambda2 0 --adam-eps 1e-8"
  "fmnist-disjoint hier $hier"
  "fmnist-disjoint no-hier-eps1e-4 --lambda2 0 --adam-eps 1e-4"
  "fmnist-disjoint hier-proxy-lr1e-3-eps1e-4 --lambda2 0.5 --hier-proxy-lr-scale 1 --adam-eps 1e-4"
  "fmnist-closed no-hier --lambda2 0 --adam-eps 1e-8"
  "fmnist-closed hier-proxy-lr1e-3-eps1e-4 --lambda2 0.5 --hier-proxy-lr-scale 1 --adam-eps 1e-4"
  "shapes no-hier --lambda2 0 --adam-eps 1e-8"
  "shapes hier $hier"
  "shapes no-hier-eps1e-4 --lambda2 0 --adam-eps 1e-4"
  "shapes hier-proxy-lr1e-3-eps1e-4 --lambda2 0.5 --hier-proxy-lr-scale 1 --adam-eps 1e-4"
)
refine_cells=(
  "shapes no-hier-ipc18 --lambda2 0 --adam-eps 1e-8 --ipc 18"
  "shapes hier-ipc18 $hier --ipc 18"
  "shapes hier-proxy-lr3e-2-eps1e-4 --lambda2 0.5 --hier-proxy-lr-scale 30 --adam-eps 1e-4"
  "shapes hier-proxy-lr2.5e-4-eps1e-4 --lambda2 0.5 --hier-proxy-lr-scale 0.25 --adam-eps 1e-4"
  "shapes hier-lambda1 $hier --lambda2 1"
  "shapes hier-topk10 $hier --topk 10"
  "shapes hier-proxies128 $hier --num-proxies 128"
  "shapes hier-clip4 $hier --clip-r 4"
  "shapes hier-lambda0.1 $hier --lambda2 0.1"
)

run_cell() {
  local protocol="$1" name="$2"
  shift 2
  [[ "$protocols" == *" $protocol "* ]] || return 0
  [[ "$cell_filter" == "  " || "$cell_filter" == *" $name "* ]] || return 0
  for seed in "${seeds[@]}"; do
    local run="$out/$protocol/$name/s$seed"
    if grep -qs '"state": "finished"' "$run/status.json"; then continue; fi
    rm -rf "$run"
    mkdir -p "$(dirname "$run")"
    echo "hier-study: $protocol $name seed $seed ($(date -u +%H:%M:%S))"
    # shellcheck disable=SC2086  # the protocol's flags are words
    "$train" --run-dir "$run" ${protocol_flags[$protocol]} --seed "$seed" --threads "$threads" \
      --log-every 20 --eval-every 1000 "$@" > "$run.out" 2> "$run.err" || {
      echo "hier-study: $run failed (see $run.err)" >&2
    }
  done
}

if [ "${SUMMARY_ONLY:-0}" != 1 ]; then
  if [[ "$protocols" == *" shapes "* && ! -f "$shapes/shapes.tsv" ]]; then
    "$train" generate-shapes --out "$shapes" --seed 0 > /dev/null
  fi
  for stage in "${stages[@]}"; do
    case "$stage" in
      coarse) cells=("${coarse_cells[@]}") ;;
      refine) cells=("${refine_cells[@]}") ;;
      *) echo "hier-study: unknown stage $stage (coarse or refine)" >&2; exit 2 ;;
    esac
    for cell in "${cells[@]}"; do
      # shellcheck disable=SC2086
      run_cell $cell
    done
  done
fi
python3 "$root/deploy/experiments/hier_study_table.py" "$out"
