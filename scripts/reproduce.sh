#!/usr/bin/env bash
# The DiLoCo paper's Table 2 in miniature: after a short plain pre-training shared by all rows
# (the paper pre-trains 24,000 steps), one island, data parallel over K ranks, and DiLoCo over K
# islands train for the same number of inner steps; then the rows of less traffic: each outer
# codec, error feedback, Streaming DiLoCo's fragments and overlap, and plain against streaming
# DiLoCo over a simulated 1 Gbit/s link; then a table, summary.json and a plot.
#
#   scripts/reproduce.sh [--rows paper|all] [--data FILE] [--out DIR] [--pretrain P] [--steps S]
#                        [--islands K] [--inner-steps H] [--batch B] [--seq T] [--preset NAME]
#                        [--build DIR]
# On 2 cores with the defaults (the built-in corpus, tiny preset) the paper's rows take about
# 15 minutes and all rows about 55; rows already finished in --out are kept.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
build=$root/build
out=runs/reproduce
data=""
pretrain=200
steps=200
islands=4
inner=10
batch=16
seq=64
preset=tiny
rows_wanted=all
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
    --rows) rows_wanted=$2; shift 2 ;;
    *) echo "reproduce.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
diloco=$build/diloco
[[ -x $diloco ]] || { echo "reproduce.sh: $diloco not built" >&2; exit 1; }
[[ $rows_wanted == paper || $rows_wanted == all ]] ||
  { echo "reproduce.sh: --rows $rows_wanted: expected paper or all" >&2; exit 2; }
mkdir -p "$out"

# One OpenMP thread per rank; OpenMPI needs to be told twice that running as root is meant.
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
common=(train --preset "$preset" --batch "$batch" --seq "$seq" --lr 2e-3 --warmup 50
        --val-batches 40)
[[ -n $data ]] && common+=(--data "$data")

# A row already finished in --out by the same command is kept, so an interrupted reproduce goes
# on where it stopped; delete --out to run everything again (after a rebuild, say).
finished() {  # name header
  local txt=$out/$1.txt
  [[ -f $txt && $(head -n 1 "$txt") == "$2" ]] &&
    tail -n 1 "$txt" | grep -qE '^step +([0-9]+)/\1 \| val loss'
}

run() {  # name ranks args...
  local name=$1 ranks=$2
  shift 2
  local header="== $name: $ranks rank(s): diloco ${common[*]} $*"
  if finished "$name" "$header"; then
    echo "$header: kept from an earlier run"
    tail -n 1 "$out/$name.txt"
    return
  fi
  echo "$header" | tee "$out/$name.txt"
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
k=$islands
dl=(--mode diloco --islands "$k" --inner-steps "$inner")
run diloco-$k "$k" "${rows[@]}" "${dl[@]}"
specs=("local-1:local:1:$steps" "ddp-$k:ddp:$k:$steps" "diloco-$k:diloco:$k:$steps:$inner")

if [[ $rows_wanted == all ]]; then
  more=()  # name, then its extra flags (one word, split on commas)
  for codec in bf16 int8 int4 e3m0; do more+=("diloco-$k-$codec" "--outer-codec,$codec"); done
  for codec in int4 e3m0; do
    more+=("diloco-$k-$codec-ef" "--outer-codec,$codec,--error-feedback")
  done
  more+=("streaming-$k-f2" "--fragments,2")
  more+=("streaming-$k-f2-overlap" "--fragments,2,--overlap,2,--merge-alpha,0.5")
  # A 1 Gbit/s link with 50 ms per collective (a continent apart): plain DiLoCo waits for
  # every sync, streaming hides its fragments' syncs behind two inner steps each.
  wan="--wan-gbps,1,--wan-latency-ms,50"
  more+=("wan-diloco-$k" "$wan")
  more+=("wan-streaming-$k-f2-overlap" "$wan,--fragments,2,--overlap,2,--merge-alpha,0.5")
  for ((i = 0; i < ${#more[@]}; i += 2)); do
    IFS=, read -r -a extra <<< "${more[i + 1]}"
    run "${more[i]}" "$k" "${rows[@]}" "${dl[@]}" "${extra[@]}"
    specs+=("${more[i]}:diloco:$k:$steps:$inner")
  done
fi

/usr/bin/python3 "$root/tools/summarize_runs.py" --out "$out" "${specs[@]}"
