#!/usr/bin/env bash
# Coverage-guided fuzzing of every parser and decoder with libFuzzer under ASan + UBSan (clang):
# builds build-fuzz/ with -DDILOCO_FUZZ=ON and runs each fuzz/fuzz_*.cpp target in turn for
# RUNS inputs, starting from the seeds make_seeds wrote and keeping what it finds new in
# build-fuzz/fuzz/corpus/. A crash, leak, hang (> 10 s) or sanitizer report stops the script
# with the input in build-fuzz/fuzz/crash-*; add it to a test, fix, and run again.
#
#   scripts/fuzz.sh [--runs N] [TARGET...]     (default 100000 runs of every target)
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
build=$root/build-fuzz
runs=100000
targets=()
while [[ $# -gt 0 ]]; do
  case $1 in
    --runs) runs=$2; shift 2 ;;
    *) targets+=("$1"); shift ;;
  esac
done
CC=clang CXX=clang++ cmake -S "$root" -B "$build" -DDILOCO_FUZZ=ON -DDILOCO_CUDA=OFF \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo
cmake --build "$build" -j"$(nproc)" --target fuzz_seeds
if [[ ${#targets[@]} -eq 0 ]]; then
  for src in "$root"/fuzz/fuzz_*.cpp; do targets+=("$(basename "$src" .cpp)"); done
fi
cmake --build "$build" -j"$(nproc)" --target "${targets[@]}"
for target in "${targets[@]}"; do
  corpus=${target#fuzz_}
  log=$build/fuzz/$target.log
  mkdir -p "$build/fuzz/corpus/$corpus"
  if ! "$build/fuzz/$target" -runs="$runs" -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=1024 \
      -print_final_stats=1 -artifact_prefix="$build/fuzz/" \
      "$build/fuzz/corpus/$corpus" "$build/fuzz/seeds/$corpus" >"$log" 2>&1; then
    tail -40 "$log"
    echo "$target: FAILED (the input is in $build/fuzz/crash-*, the log in $log)"
    exit 1
  fi
  echo "$target: $(grep -o 'number_of_executed_units: [0-9]*' "$log"), no failure"
done
