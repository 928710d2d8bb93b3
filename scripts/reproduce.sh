#!/usr/bin/env bash
# The DiLoCo paper's Table 2 in miniature: after a short plain pre-training shared by all rows
# (the paper pre-trains 24,000 steps), one island, data parallel over K ranks, and DiLoCo over K
# islands train for the same number of inner steps; then a table, summary.json and a plot.
#
#   scripts/reproduce.sh [--data FILE] [--out DIR] [--pretrain P] [--steps S] [--islands K]
#                        [--inner-steps H] [--batch B] [--seq T] [--preset NAME] [--build DIR]
# Defaults finish in about 15 minutes on 2 cores (the built-in corpus, tiny preset).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
build=$root/build
out=runs/reproduce
data=""
pretrain=200
steps=200
islands=4
inner=10
batch=8
seq=64
preset=tiny
while [[ $# -gt 0 ]]; do
  case $1 in
    --data) data=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --pretrain) pretrain=$2; shift 2 ;;
    --steps) steps=$2; shift 2 ;;
    --islands) islands=$2; shift 2 ;;
    --inner-steps) inner=$2; shift 2 ;;
    --batch) batch=$2; shift 2 ;;
    --seq) seq=$2; shift 2 ;;
    --preset) preset=$2; shift 2 ;;
    --build) build=$2; shift 2 ;;
    *) echo "reproduce.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
diloco=$build/diloco
[[ -x $diloco ]] || { echo "reproduce.sh: $diloco not built" >&2; exit 1; }
mkdir -p "$out"

# One OpenMP thread per rank; OpenMPI needs to be told twice that running as root is meant.
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
common=(train --preset "$preset" --batch "$batch" --seq "$seq" --lr 2e-3 --warmup 50
        --val-batches 40)
[[ -n $data ]] && common+=(--data "$data")

run() {  # name ranks args...
  local name=$1 ranks=$2
  shift 2
  echo "== $name: $ranks rank(s): diloco $*" | tee "$out/$name.txt"
  local start=$SECONDS
  if [[ $ranks -eq 1 ]]; then
    OMP_NUM_THREADS=2 "$diloco" "${common[@]}" "$@" --log "$out/$name.jsonl" >> "$out/$name.txt"
  else
    mpirun -np "$ranks" --oversubscribe "$diloco" "${common[@]}" "$@" \
      --log "$out/$name.jsonl" >> "$out/$name.txt"
  fi
  tail -n 1 "$out/$name.txt"
  echo "   ($((SECONDS - start)) s)"
}

init=()
if [[ $pretrain -gt 0 ]]; then
  run pretrain 1 --steps "$pretrain" --eval-every "$pretrain" --save "$out/pretrained"
  init=(--init "$out/pretrained")
fi
rows=(--steps "$steps" --eval-every 20 "${init[@]}")
run local-1 1 "${rows[@]}" --mode local --islands 1
run ddp-$islands "$islands" "${rows[@]}" --mode ddp --islands "$islands"
run diloco-$islands "$islands" "${rows[@]}" --mode diloco --islands "$islands" --inner-steps "$inner"

/usr/bin/python3 "$root/tools/summarize_runs.py" --out "$out" \
  "local-1:local:1:$steps" "ddp-$islands:ddp:$islands:$steps" \
  "diloco-$islands:diloco:$islands:$steps:$inner"
