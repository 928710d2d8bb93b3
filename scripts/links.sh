#!/usr/bin/env bash
# Real links against the simulated WAN and the plan: the miniature's ddp-K and diloco-K rows with
# one island per namespace of scripts/hosts.sh over links of G Gbit/s, the same rows on this
# machine's loopback under `--wan-gbps G`, and `diloco plan`'s prediction for the measured step
# time; prints wall time, the share of it spent waiting for the other islands, and the rest
# (utilisation) of each. Needs root (namespaces).
#
#   scripts/links.sh [--islands K] [--gbps G] [--steps S] [--inner-steps H] [--out DIR]
#                    [--build DIR] [-- TRAIN_OPTION...]
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
build=$root/build
out=runs/links
islands=4
gbps=1
steps=60
inner=10
extra=()
while [[ $# -gt 0 ]]; do
  case $1 in
    --islands) islands=$2; shift 2 ;;
    --gbps) gbps=$2; shift 2 ;;
    --steps) steps=$2; shift 2 ;;
    --inner-steps) inner=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --build) build=$2; shift 2 ;;
    --) shift; extra=("$@"); break ;;
    *) echo "links.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
diloco=$build/diloco
[[ -x $diloco ]] || { echo "links.sh: $diloco not built" >&2; exit 1; }
mkdir -p "$out"
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
# The miniature's rows (scripts/reproduce.sh), without evaluation until the end.
common=(train --preset tiny --batch 16 --seq 64 --lr 2e-3 --warmup 10 --val-batches 4
        --steps "$steps" --eval-every "$steps" --inner-steps "$inner" "${extra[@]}")

"$root/scripts/hosts.sh" up "$islands" --gbps "$gbps"
trap '"$root/scripts/hosts.sh" down' EXIT
read -r -a hosts <<<"$("$root/scripts/hosts.sh" mpirun-args)"

for mode in ddp diloco; do
  echo "== $mode-$islands over $islands namespaces, links of $gbps Gbit/s"
  mpirun "${hosts[@]}" -np "$islands" "$diloco" "${common[@]}" --mode "$mode" --islands host \
    --log "$out/real-$mode.jsonl" > "$out/real-$mode.txt"
  tail -n 1 "$out/real-$mode.txt"
  echo "== $mode-$islands on loopback under --wan-gbps $gbps"
  mpirun -np "$islands" --oversubscribe "$diloco" "${common[@]}" --mode "$mode" \
    --islands "$islands" --wan-gbps "$gbps" --log "$out/sim-$mode.jsonl" > "$out/sim-$mode.txt"
  tail -n 1 "$out/sim-$mode.txt"
done

# The plan for the compute time the real runs measured per step (their mean).
step_ms=$(python3 -c '
import json, sys
last = [r for r in map(json.loads, open(sys.argv[1])) if r["event"] == "eval"][-1]
print(1000 * last["compute_s"] / last["step"])' "$out/real-diloco.jsonl")
"$diloco" plan --preset tiny --step-ms "$step_ms" --islands "$islands" --inner-steps "$inner" \
  --wan-gbps "$gbps" --json > "$out/plan.json"

python3 - "$out" "$islands" "$gbps" "$steps" "$inner" <<'EOF'
import json, sys
out, k, gbps, steps, inner = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
plan = {m["method"]: m for m in json.load(open(f"{out}/plan.json"))["methods"]}
# Utilisation: the share of wall time not spent waiting for the other islands (in ddp the
# all-reduce runs inside the step, so the step's own time would count it as compute).
print(f"\n{'row':<10} {'where':<28} {'wall s':>8} {'wait share':>11} {'utilisation':>12}")
for mode in ("ddp", "diloco"):
    for kind, where in (("real", f"{k} namespaces, {gbps} Gbit/s"),
                        ("sim", f"loopback, --wan-gbps {gbps}")):
        log = open(f"{out}/{kind}-{mode}.jsonl")
        last = [r for r in map(json.loads, log) if r["event"] == "eval"][-1]
        wall, wait = last["wall_s"], last["wait_s"]
        print(f"{mode + '-' + k:<10} {where:<28} {wall:>8.1f} {wait / wall:>11.1%}"
              f" {1 - wait / wall:>12.1%}")
    p = plan[mode]
    wall = p["seconds_per_round"] * steps / inner
    print(f"{mode + '-' + k:<10} {'diloco plan':<28} {wall:>8.1f} {1 - p['utilisation']:>11.1%}"
          f" {p['utilisation']:>12.1%}")
EOF
