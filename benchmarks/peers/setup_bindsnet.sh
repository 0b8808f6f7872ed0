#!/usr/bin/env bash
# Create or reuse the benchmark-only venv with BindsNET 0.3.4 beside topspark_ros's engine;
# print its path on stdout.
#
#   benchmarks/peers/setup_bindsnet.sh            create (once, a few minutes) or reuse
#   benchmarks/peers/setup_bindsnet.sh --path     only print where it lives
#
# The venv lives in ${TOPSPARK_ENV_DIR:-~/.cache/topspark_ros}/venv-peer-bindsnet-<hash>, the
# hash taken over benchmarks/peers/bindsnet.lock and this script, so it is built once and reused
# until either changes. BindsNET's metadata asks for torch>=2.14 and torchvision (a multi-GB
# CUDA pull, and torchvision does not work beside the CPU torch here), so: torch==2.13.0 first
# (pip takes the CPU wheel from this machine's find-links), then every package of the lock,
# bindsnet included, with --no-deps. numba/llvmlite/PyYAML/safetensors are in the lock so one
# interpreter can run both implementations; topspark_ros itself is imported from the source
# tree (PYTHONPATH=<repo>), never installed here. Not a project dependency.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
lock=$here/bindsnet.lock
python=${PYTHON:-python3}
[ -f "$lock" ] || { echo "setup_bindsnet.sh: no lock file $lock" >&2; exit 2; }

want=$(cat "$lock" "$0" | sha256sum | cut -c1-12)
env_dir=${TOPSPARK_ENV_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/topspark_ros}
venv=$env_dir/venv-peer-bindsnet-$want
stamp=$venv/.topspark-env-complete
if [ "${1:-}" = --path ] || [ -f "$stamp" ]; then
  echo "$venv"
  exit 0
fi

mkdir -p "$env_dir"
exec 9>"$env_dir/.lock-peer-bindsnet"
flock 9
if [ -f "$stamp" ]; then
  echo "$venv"
  exit 0
fi

"$python" - <<'PY' || { echo "setup_bindsnet.sh: needs CPython 3.11 (set PYTHON=)" >&2; exit 2; }
import sys
sys.exit(0 if sys.version_info[:2] == (3, 11) else 1)
PY

echo "Creating $venv from $(basename "$lock") (a few minutes, once)..." >&2
rm -rf "$venv"
pip_install() {
  # Hide pip's noise about this machine's optional local indexes; keep everything else.
  "$venv/bin/python" -m pip install --quiet "$@" 2>&1 | { grep -v 'is ignored: it is neither' || true; }
  return "${PIPESTATUS[0]}"
}
"$python" -m venv "$venv"
pip_install --upgrade 'pip==25.3'
pip_install 'torch==2.13.0'
pip_install --no-deps -r "$lock"

# pip check would object to bindsnet's own metadata (torch>=2.14, torchvision) by design;
# check instead that the pinned set imports and that torch stayed the CPU build.
"$venv/bin/python" - <<'PY' >&2
from importlib.metadata import version

import llvmlite  # noqa: F401
import numba  # noqa: F401
import safetensors  # noqa: F401
import scipy  # noqa: F401
import torch
import yaml  # noqa: F401

assert torch.__version__.startswith('2.13.0'), torch.__version__
assert not torch.cuda.is_available() or torch.version.cuda is None, torch.version.cuda
print(f"setup_bindsnet.sh: torch {torch.__version__}, numba {version('numba')}, "
      f"bindsnet {version('bindsnet')}")
PY
touch "$stamp"
echo "Environment ready: $venv" >&2
echo "$venv"
