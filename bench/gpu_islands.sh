#!/usr/bin/env bash
# The islands stage of bench/gpu_check.sh: one model, the same tokens per island in every row, four
# ranks sharing one GPU; each row's metrics log goes to OUT, and bench/islands_table.py prints them.
#
#   bench/gpu_islands.sh --diloco BIN --out DIR [--mpirun MPIRUN] [--data SHARDS] [--text FILE]
#                        [--budget SECONDS] [--rows NAME,...] [--cpu]
# Rows: local-1 (one rank), ddp-4, diloco-4 (H = 50, Nesterov), diloco-4-int4, streaming-4-f4,
# and cpu+gpu (tiny, a GPU island and a CPU island: --island-devices cuda,cpu, on the bytes of
# --text).
# --cpu runs every row on the CPU with the tiny preset and two outer steps (cpu+gpu becomes
# cpu,cpu): a check of these commands where there is no GPU. GPU_ISLANDS_PRESET, _BATCH, _SEQ,
# _STEPS, _INNER_STEPS override the GPU rows' shape.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
usage="usage: $0 --diloco BIN --out DIR [--mpirun MPIRUN] [--data SHARDS] [--text FILE] \
[--budget SECONDS] [--rows NAME,...] [--cpu]"
ALL_ROWS=(local-1 ddp-4 diloco-4 diloco-4-int4 streaming-4-f4 cpu+gpu)
# ddp-4 all-reduces every step through host memory, the slowest row: it runs last, on what is left.
RUN_ORDER=(local-1 diloco-4 diloco-4-int4 streaming-4-f4 cpu+gpu ddp-4)
BIN="" OUT="" MPIRUN=mpirun DATA="" TEXT="" BUDGET=140 ROWS="" CPU=0
fail() { echo "gpu_islands: $*" >&2; exit 2; }
while (($#)); do
    case $1 in
        --cpu) CPU=1; shift; continue ;;
        --diloco | --out | --mpirun | --data | --text | --budget | --rows)
            [[ $# -ge 2 ]] || fail "$1 needs a value"
            ;;
        *) echo "$usage" >&2; exit 2 ;;
    esac
    case $1 in
        --diloco) BIN=$2 ;;
        --out) OUT=$2 ;;
        --mpirun) MPIRUN=$2 ;;
        --data) DATA=$2 ;;
        --text) TEXT=$2 ;;
        --budget) BUDGET=$2 ;;
        --rows) ROWS=$2 ;;
    esac
    shift 2
done
[[ -n $BIN && -n $OUT ]] || { echo "$usage" >&2; exit 2; }
[[ -x $BIN ]] || fail "--diloco $BIN: not an executable"
command -v "$MPIRUN" >/dev/null || fail "--mpirun $MPIRUN: not found"
[[ -z $DATA || -e $DATA ]] || fail "--data $DATA: no such file or directory"
[[ -z $TEXT || -f $TEXT ]] || fail "--text $TEXT: no such file"
[[ $BUDGET =~ ^[1-9][0-9]*$ ]] || fail "--budget '$BUDGET': expected a positive number of seconds"
selected=()
for name in ${ROWS//,/ }; do
    [[ " ${ALL_ROWS[*]} " == *" $name "* ]] || fail "--rows: unknown row '$name' (${ALL_ROWS[*]})"
    selected+=("$name")
done
((${#selected[@]})) || selected=("${ALL_ROWS[@]}")

if ((CPU)); then
    PRESET=tiny BATCH=2 SEQ=16 STEPS=8 H=4 WARMUP=2 THREADS=1 ROW_CAP=60
    DEVICE=(--device cpu) MIXED=(--island-devices "cpu,cpu") MIXED_THREADS=1
else
    PRESET=${GPU_ISLANDS_PRESET:-gpt2-124m} BATCH=${GPU_ISLANDS_BATCH:-8}
    SEQ=${GPU_ISLANDS_SEQ:-256} STEPS=${GPU_ISLANDS_STEPS:-100} H=${GPU_ISLANDS_INNER_STEPS:-50}
    # 4 ranks on the GPU machine's 16 cores: 4 OpenMP threads each for the outer step.
    WARMUP=10 THREADS=4 ROW_CAP=40  # seconds: a stuck row leaves time to the others
    DEVICE=(--device cuda --share-gpus) MIXED=(--island-devices "cuda,cpu" --share-gpus)
    MIXED_THREADS=8  # the CPU island's OpenMP threads
fi
# One evaluation, at the end, on 2 batches (the C4 sample holds 4,834 validation tokens).
COMMON=(--preset "$PRESET" --batch "$BATCH" --seq "$SEQ" --steps "$STEPS" --warmup "$WARMUP"
    --val-batches 2 --eval-every 0 --print-every 10)
[[ -n $DATA ]] && COMMON+=(--data "$DATA")
DILOCO=(--mode diloco --islands 4 --inner-steps "$H" --outer-opt nesterov)

# Sets the row's ranks and its diloco train arguments (--log and the device excepted).
row_args() {
    ranks=4
    case $1 in
        local-1) ranks=1; args=(--mode local --islands 1) ;;
        ddp-4) args=(--mode ddp --islands 4) ;;
        diloco-4) args=("${DILOCO[@]}") ;;
        diloco-4-int4) args=("${DILOCO[@]}" --outer-codec int4) ;;
        streaming-4-f4) args=("${DILOCO[@]}" --fragments 4) ;;
    esac
}

rm -rf "$OUT"
mkdir -p "$OUT"
DEADLINE=$(($(date +%s) + BUDGET))
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OPENBLAS_NUM_THREADS=1

# run NAME RANKS THREADS ARGS...: the row under mpirun, cut to the time left; appends
# "name|result|seconds" to OUT/rows.txt and keeps the command in OUT/NAME.cmd.
run() {
    local name=$1 ranks=$2 threads=$3 rc=0 t0 left result
    shift 3
    left=$((DEADLINE - $(date +%s) - 2))
    ((left > ROW_CAP)) && left=$ROW_CAP
    if ((left < 8)); then
        echo "$name|no time left|0" >>"$OUT/rows.txt"
        return 0
    fi
    local cmd=("$MPIRUN" -np "$ranks" --oversubscribe --bind-to none "$BIN" train "$@"
        --log "$OUT/$name.jsonl")
    printf '%q ' "${cmd[@]}" >"$OUT/$name.cmd"
    echo "=== $name (up to ${left}s): ${cmd[*]}"
    t0=$(date +%s)
    OMP_NUM_THREADS=$threads timeout --kill-after=5 "$left" "${cmd[@]}" >"$OUT/$name.out" 2>&1 ||
        rc=$?
    case $rc in
        0) result=ok ;;
        124 | 137) result="timeout (${left}s)" ;;
        *) result="FAIL (rc $rc)" ;;
    esac
    [[ $rc -ne 0 ]] && tail -n 15 "$OUT/$name.out" | sed "s/^/  [$name] /"
    echo "$name|$result|$(($(date +%s) - t0))" >>"$OUT/rows.txt"
    return 0
}

# A CPU island beside a GPU island needs --island-devices; a build without it says so.
mixed_row() {
    if ! "$BIN" train --help 2>/dev/null | grep -q -- --island-devices; then
        echo "cpu+gpu: option missing: $BIN train --help has no --island-devices"
        echo "cpu+gpu|option missing|0" >>"$OUT/rows.txt"
        return 0
    fi
    local data=()
    [[ -n ${TEXT:-$DATA} ]] && data=(--data "${TEXT:-$DATA}")
    local small=(--batch 4 --seq 64 --steps 20 --inner-steps 10)
    ((CPU)) && small=(--batch "$BATCH" --seq "$SEQ" --steps "$STEPS" --inner-steps "$H")
    run cpu+gpu 2 "$MIXED_THREADS" --preset tiny "${small[@]}" --warmup 2 --val-batches 2 \
        --eval-every 0 "${data[@]}" --mode diloco --islands 2 --weight-by-tokens "${MIXED[@]}"
}

for name in "${RUN_ORDER[@]}"; do
    [[ " ${selected[*]} " == *" $name "* ]] || continue
    if [[ $name == cpu+gpu ]]; then
        mixed_row
        continue
    fi
    row_args "$name"
    run "$name" "$ranks" "$THREADS" "${COMMON[@]}" "${args[@]}" "${DEVICE[@]}"
done
python3 "$ROOT/bench/islands_table.py" "$OUT"
