#!/usr/bin/env bash
# Create or reuse the benchmark-only venv with the NIR importers of snnTorch 1.0.0, Sinabs
# 3.1.3 and Norse 1.1.0 (for benchmarks/nir_peers.py); print its path on stdout.
#
#   benchmarks/peers/setup_nir_peers.sh            create (once, a few minutes) or reuse
#   benchmarks/peers/setup_nir_peers.sh --path     only print where it lives
#
# The venv lives in ${TOPSPARK_ENV_DIR:-~/.cache/topspark_ros}/venv-peer-nir-<hash>, the hash
# taken over benchmarks/peers/nir_peers.lock and this script. Norse asks for torchvision,
# Sinabs for samna and nir<=1.0.4: none of them is needed to import a NIR graph (and
# torchvision does not work beside the CPU torch here), so: torch==2.13.0 first (the CPU
# wheel), then every package of the lock with --no-deps. topspark_ros itself is imported from
# the source tree (PYTHONPATH=<repo>), never installed here. Not a project dependency.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
lock=$here/nir_peers.lock
python=${PYTHON:-python3}
[ -f "$lock" ] || { echo "setup_nir_peers.sh: no lock file $lock" >&2; exit 2; }

want=$(cat "$lock" "$0" | sha256sum | cut -c1-12)
env_dir=${TOPSPARK_ENV_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/topspark_ros}
venv=$env_dir/venv-peer-nir-$want
stamp=$venv/.topspark-env-complete
if [ "${1:-}" = --path ] || [ -f "$stamp" ]; then
  echo "$venv"
  exit 0
fi

mkdir -p "$env_dir"
exec 9>"$env_dir/.lock-peer-nir"
flock 9
if [ -f "$stamp" ]; then
  echo "$venv"
  exit 0
fi

"$python" - <<'PY' || { echo "setup_nir_peers.sh: needs CPython 3.11 (set PYTHON=)" >&2; exit 2; }
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

# pip check would object to the peers' metadata (torchvision, samna, nir<=1.0.4) by design;
# check instead that every importer imports and that torch stayed the CPU build.
"$venv/bin/python" - <<'PY' >&2
from importlib.metadata import version

import nir  # noqa: F401
import norse.torch  # noqa: F401
import sinabs.nir  # noqa: F401
import snntorch.import_nir  # noqa: F401
import torch

assert torch.__version__.startswith('2.13.0'), torch.__version__
print(f"setup_nir_peers.sh: torch {torch.__version__}, nir {version('nir')}, "
      f"snntorch {version('snntorch')}, sinabs {version('sinabs')}, norse {version('norse')}")
PY
touch "$stamp"
echo "Environment ready: $venv" >&2
echo "$venv"
