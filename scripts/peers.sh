#!/usr/bin/env bash
# Installs the peers (torch, transformers, safetensors, tokenizers, tiktoken, numpy) from PyPI into
# a virtual environment outside the build, for the tests labelled `peers` and the benches' peer runs.
#
#   scripts/peers.sh [VENV_DIR]      (default: $DILOCO_PEERS_VENV, else .venv-peers in the repo root)
# Idempotent: a venv that already imports every peer is left as it is. Needs python3-venv.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
venv=${1:-${DILOCO_PEERS_VENV:-$root/.venv-peers}}
packages=(torch transformers safetensors tokenizers tiktoken numpy)
modules=$(IFS=,; echo "${packages[*]}")

if [[ -x $venv/bin/python ]] && "$venv/bin/python" -c "import $modules" 2>/dev/null; then
  echo "peers: $venv already has ${packages[*]}"
  exit 0
fi
if ! python3 -c "import venv, ensurepip" 2>/dev/null; then
  echo "peers: python3 cannot make a venv: apt-get install -y python3-venv" >&2
  exit 1
fi
python3 -m venv "$venv"
"$venv/bin/python" -m pip install --upgrade pip
"$venv/bin/python" -m pip install "${packages[@]}"
"$venv/bin/python" -c "import $modules"
echo "peers: installed ${packages[*]} into $venv"
