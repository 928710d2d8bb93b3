#!/usr/bin/env bash
# The DiLoCo paper's C4 runs from C4 json.gz files you downloaded: `diloco prepare` deals the
# documents to the islands (k-means clusters by default), then plain pre-training on one island,
# then DiLoCo across the islands from the pre-trained weights, as in the paper.
#
#   scripts/c4.sh --tokenizer DIR [--out DIR] [--config FILE] [--islands K] [--ranks-per-island R]
#                 [--split cluster|iid|domain] [--pretrain-steps P] [--steps S] [--build DIR]
#                 C4_FILE.json.gz... [-- TRAIN_OPTION...]
# --tokenizer: GPT-2's encoder.json + vocab.bpe (or a tokenizer.json); --config: a TOML of
# `diloco train` options (default configs/paper-150m-c4.toml); options after `--` go to both
# phases and override the config. $MPIRUN (default mpirun) launches K x R ranks; shards are made
# once into OUT/data and kept. Phase 1 trains P steps (default 24,000) and saves OUT/pretrain;
# phase 2 starts each island from those weights (--init: fresh AdamW state and schedule, with its
# own warm-up) for S steps (default: the config's) and saves OUT/checkpoint; metrics go to
# OUT/*.jsonl.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
build=$root/build
out=runs/c4
config=$root/configs/paper-150m-c4.toml
tokenizer=""
islands=8
ranks_per_island=1
split=cluster
pretrain=24000
steps=()
inputs=()
train_extra=()
usage() { sed -n '5,7p' "$0" | sed 's/^# *//' >&2; exit 2; }
while [[ $# -gt 0 ]]; do
  case $1 in
    --tokenizer) tokenizer=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --config) config=$2; shift 2 ;;
    --islands) islands=$2; shift 2 ;;
    --ranks-per-island) ranks_per_island=$2; shift 2 ;;
    --split) split=$2; shift 2 ;;
    --pretrain-steps) pretrain=$2; shift 2 ;;
    --steps) steps=(--steps "$2"); shift 2 ;;
    --build) build=$2; shift 2 ;;
    --) shift; train_extra=("$@"); break ;;
    -*) echo "c4.sh: unknown option $1" >&2; usage ;;
    *) inputs+=("$1"); shift ;;
  esac
done
[[ -n $tokenizer ]] || { echo "c4.sh: --tokenizer DIR is required" >&2; usage; }
[[ ${#inputs[@]} -gt 0 ]] || { echo "c4.sh: no C4 json.gz files given" >&2; usage; }
for n in "$islands" "$ranks_per_island" "$pretrain"; do
  [[ $n =~ ^[0-9]+$ && $n -gt 0 ]] ||
    { echo "c4.sh: '$n': --islands, --ranks-per-island and --pretrain-steps take positive integers" >&2; exit 2; }
done
[[ -f $config ]] || { echo "c4.sh: $config: config file not found" >&2; exit 1; }
diloco=$build/diloco
[[ -x $diloco ]] || { echo "c4.sh: $diloco not built" >&2; exit 1; }
mkdir -p "$out"

# Shards once: a finished prepare leaves its manifest, which a rerun keeps.
if [[ ! -f $out/data/manifest.json ]]; then
  rm -rf "$out/data"
  "$diloco" prepare --tokenizer "$tokenizer" --out "$out/data" --islands "$islands" \
    --split "$split" "${inputs[@]}"
fi

common=(--config "$config" --data "$out/data" "${train_extra[@]}")
# The paper's first 24,000 steps: one island, plain training on all the islands' shards.
if [[ ! -f $out/pretrain/config.json ]]; then
  "$diloco" train "${common[@]}" --mode local --islands 1 --steps "$pretrain" \
    --save "$out/pretrain" --log "$out/pretrain.jsonl"
fi
# OpenMPI refuses root unless told twice; a cluster's launcher replaces MPIRUN.
export OMPI_ALLOW_RUN_AS_ROOT=${OMPI_ALLOW_RUN_AS_ROOT:-1}
export OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=${OMPI_ALLOW_RUN_AS_ROOT_CONFIRM:-1}
read -r -a mpirun <<<"${MPIRUN:-mpirun}"
"${mpirun[@]}" -np $((islands * ranks_per_island)) "$diloco" train "${common[@]}" \
  "${steps[@]}" --islands "$islands" --init "$out/pretrain" --save "$out/checkpoint" --log "$out/diloco.jsonl"
