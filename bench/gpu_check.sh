#!/usr/bin/env bash
# GPU check for an offline H200 machine (CUDA 13, cmake, Python with PyTorch; no MPI, CLI11, Catch2,
# nlohmann-json or OpenBLAS): build core + CUDA lib + CUDA tests + benches, run the tests, run
# compute-sanitizer on a quick subset, run the benches, print a table of stages. Under 8 minutes.
#
#   bench/gpu_check.sh --pack   on the dev machine: copy the header-only deps (and a static zlib)
#                               into third_party_headers/, which travels with the tree
#   bench/gpu_check.sh          on the GPU machine; logs go to $GPU_CHECK_LOGS (default
#                               build-gpu/gpu_check), the build to $GPU_CHECK_BUILD (build-gpu)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
TP="$ROOT/third_party_headers"

# Minimal CMake package configs for the header-only deps: an INTERFACE target on our copy.
write_config() {  # name target
    cat >"$TP/cmake/$1Config.cmake" <<EOF
# Written by bench/gpu_check.sh --pack: $2 over the headers copied next to this file.
if(NOT TARGET $2)
  add_library($2 INTERFACE IMPORTED)
  set_target_properties($2 PROPERTIES INTERFACE_INCLUDE_DIRECTORIES "\${CMAKE_CURRENT_LIST_DIR}/../include")
endif()
set($1_FOUND TRUE)
EOF
}

pack() {
    rm -rf "$TP"
    mkdir -p "$TP/include" "$TP/cmake" "$TP/zlib/include" "$TP/zlib/lib"
    for d in catch2 CLI nlohmann; do
        [[ -d /usr/include/$d ]] || { echo "pack: /usr/include/$d is missing" >&2; exit 1; }
        cp -r "/usr/include/$d" "$TP/include/"
    done
    write_config CLI11 CLI11::CLI11
    write_config nlohmann_json nlohmann_json::nlohmann_json
    write_config Catch2 Catch2::Catch2
    # include(Catch) needs Catch2's CMake helpers on the module path (CMake expands the $).
    cp /usr/lib/cmake/Catch2/Catch.cmake /usr/lib/cmake/Catch2/CatchAddTests.cmake "$TP/cmake/"
    # shellcheck disable=SC2016
    echo 'list(APPEND CMAKE_MODULE_PATH "${CMAKE_CURRENT_LIST_DIR}")' >>"$TP/cmake/Catch2Config.cmake"
    # zlib, used only where the GPU machine has no development headers for it.
    cp /usr/include/zlib.h /usr/include/zconf.h "$TP/zlib/include/"
    cp "$(gcc -print-file-name=libz.a)" "$TP/zlib/lib/"
    echo "packed into $TP ($(du -sh "$TP" | cut -f1))"
}

if [[ "${1:-}" == "--pack" ]]; then
    pack
    exit 0
fi
[[ $# -eq 0 ]] || { echo "usage: $0 [--pack]" >&2; exit 2; }
[[ -d "$TP/cmake" ]] || { echo "no $TP: run 'bench/gpu_check.sh --pack' on the dev machine" >&2; exit 2; }

BUILD=${GPU_CHECK_BUILD:-$ROOT/build-gpu}
LOGS=${GPU_CHECK_LOGS:-$BUILD/gpu_check}
mkdir -p "$BUILD" "$LOGS"
START=$(date +%s)
DEADLINE=$((START + 465))  # 7m45s: every stage's timeout is cut to what is left
declare -a TABLE=()

# stage NAME BUDGET_S CMD...: runs CMD with a timeout, logs to $LOGS/NAME.log, records the result.
stage() {
    local name=$1 budget=$2 rc=0 t0 left
    shift 2
    left=$((DEADLINE - $(date +%s)))
    ((budget > left)) && budget=$left
    if ((budget <= 5)); then
        TABLE+=("$name|no time|0")
        return 0
    fi
    t0=$(date +%s)
    echo "=== $name (up to ${budget}s)"
    timeout --kill-after=10 "$budget" "$@" >"$LOGS/$name.log" 2>&1 || rc=$?
    local result=ok
    case $rc in
        0) result=ok ;;
        77) result=skipped ;;
        124 | 137) result="timeout (${budget}s)" ;;
        *) result="FAIL (rc $rc)" ;;
    esac
    [[ $rc -ne 0 && $rc -ne 77 ]] && tail -n 25 "$LOGS/$name.log" | sed "s/^/  [$name] /"
    TABLE+=("$name|$result|$(($(date +%s) - t0))")
    return 0
}

# Where the NVIDIA Python wheels keep NCCL, cuDNN (and cuBLAS, if the toolkit lacks it).
NV_DIRS=$(python3 - <<'EOF' 2>/dev/null || true
import os
try:
    import nvidia
except ImportError:
    raise SystemExit
for root in nvidia.__path__:
    for name in sorted(os.listdir(root)):
        if os.path.isdir(os.path.join(root, name, "include")):
            print(os.path.join(root, name))
EOF
)
CUDA_HOME=${CUDA_HOME:-$(dirname "$(dirname "$(command -v nvcc)")")}
INC_PATH="" LIB_PATH="$BUILD/nvlibs" EXTRA_FLAGS=""
mkdir -p "$BUILD/nvlibs"
for d in $NV_DIRS; do
    INC_PATH="$INC_PATH;$d/include"
    # Wheels ship libX.so.N only and find_library wants libX.so; the toolkit's own libs win.
    # The libX.so.N link beside it is what the binaries' run path finds at load time.
    for lib in "$d"/lib/lib*.so.*; do
        [[ -e $lib ]] || continue
        name=$(basename "$lib")
        name=${name%%.so.*}
        if [[ ! -e $CUDA_HOME/lib64/$name.so ]]; then
            ln -sf "$lib" "$BUILD/nvlibs/$name.so"
            ln -sf "$lib" "$BUILD/nvlibs/$(basename "$lib")"
        fi
    done
done
# A toolkit without cuBLAS: take the wheel's headers, and its libraries at run time.
if [[ ! -f $CUDA_HOME/include/cublas_v2.h ]]; then
    for d in $NV_DIRS; do
        if [[ -f $d/include/cublas_v2.h ]]; then
            EXTRA_FLAGS="-isystem $d/include"
            export LD_LIBRARY_PATH="${LD_LIBRARY_PATH:+$LD_LIBRARY_PATH:}$d/lib"
        fi
    done
fi

CMAKE_ARGS=(-S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DDILOCO_CUDA=ON -DDILOCO_MPI=OFF
    -DDILOCO_TESTS=ON -DCLI11_DIR="$TP/cmake" -Dnlohmann_json_DIR="$TP/cmake"
    -DCatch2_DIR="$TP/cmake" -DCMAKE_INCLUDE_PATH="${INC_PATH#;}" -DCMAKE_LIBRARY_PATH="$LIB_PATH")
command -v ninja >/dev/null && CMAKE_ARGS+=(-G Ninja)
if pkg-config --exists openblas 2>/dev/null; then
    CMAKE_ARGS+=(-DDILOCO_BLAS=ON)
else
    CMAKE_ARGS+=(-DDILOCO_BLAS=OFF)
fi
if ! echo '#include <zlib.h>' | cc -E - >/dev/null 2>&1; then
    CMAKE_ARGS+=(-DZLIB_INCLUDE_DIR="$TP/zlib/include" -DZLIB_LIBRARY="$TP/zlib/lib/libz.a")
fi
if [[ -n $EXTRA_FLAGS ]]; then
    CMAKE_ARGS+=(-DCMAKE_CXX_FLAGS="$EXTRA_FLAGS" -DCMAKE_CUDA_FLAGS="$EXTRA_FLAGS")
fi

nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader >"$LOGS/gpu.txt" 2>&1 || true
stage configure 90 cmake "${CMAKE_ARGS[@]}"
stage build 300 cmake --build "$BUILD" -j"$(nproc)" --target diloco_cuda_tests bench_kernels
# The compiler's per-kernel resource report, one line per kernel.
grep -E "Compiling entry function|Used [0-9]+ registers|spill" "$LOGS/build.log" \
    >"$LOGS/ptxas.txt" 2>/dev/null || true
SPILLS=$(grep -cE "[1-9][0-9]* bytes spill (stores|loads)" "$LOGS/ptxas.txt" 2>/dev/null || true)

TESTS="$BUILD/diloco_cuda_tests"
stage tests 180 "$TESTS" --durations yes
SANITIZER=$(command -v compute-sanitizer || true)
for c in "$CUDA_HOME/compute-sanitizer/compute-sanitizer" /opt/nvidia/*/compute-sanitizer; do
    if [[ -z $SANITIZER && -x $c ]]; then SANITIZER=$c; fi
done
if [[ -n $SANITIZER ]]; then
    stage memcheck 120 env DILOCO_CUDA_TEST_QUICK=1 "$SANITIZER" --tool memcheck \
        --error-exitcode 1 "$TESTS" "[sanitize]"
    stage racecheck 90 env DILOCO_CUDA_TEST_QUICK=1 "$SANITIZER" --tool racecheck \
        --error-exitcode 1 "$TESTS" "[attention]"
else
    TABLE+=("memcheck|no compute-sanitizer|0")
fi
stage bench_bf16 90 "$BUILD/bench_kernels" --reps 20
stage bench_fp32 60 "$BUILD/bench_kernels" --fp32 --reps 5

echo
echo "gpu: $(cat "$LOGS/gpu.txt")"
[[ -f $LOGS/bench_bf16.log ]] && cat "$LOGS/bench_bf16.log"
echo
printf "%-12s %-26s %6s\n" stage result seconds
for row in "${TABLE[@]}"; do
    IFS='|' read -r name result secs <<<"$row"
    printf "%-12s %-26s %6s\n" "$name" "$result" "$secs"
done
printf "%-12s %-26s %6s\n" ptxas "${SPILLS:-0} spill lines" "-"
echo "total $(($(date +%s) - START)) s; logs in $LOGS"
