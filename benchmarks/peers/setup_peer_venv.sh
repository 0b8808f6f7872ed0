#!/usr/bin/env bash
# Create or reuse a benchmark-only venv of peer libraries; print its path on stdout.
#
#   benchmarks/peers/setup_peer_venv.sh NAME LOCK CHECK [--path]
#
# What setup_bindsnet.sh and setup_nir_peers.sh run (see them for the peers). The venv lives in
# ${TOPSPARK_ENV_DIR:-~/.cache/topspark_ros}/venv-peer-NAME-<hash>, the hash taken over LOCK,
# CHECK and this script, so it is built once and reused until one of them changes. The peers'
# metadata asks for what is not wanted here (torch>=2.14, torchvision: a multi-GB CUDA pull,
# and torchvision does not work beside the CPU torch), so: torch==2.13.0 first (pip takes the
# CPU wheel from this machine's find-links), then every package of LOCK with --no-deps. pip
# check would object to that metadata by design; CHECK (a Python script) checks instead that
# the pinned set imports and that torch stayed the CPU build, and prints the versions.
# topspark_ros itself is imported from the source tree (PYTHONPATH=<repo>), never installed
# here. Not a project dependency.
set -euo pipefail

name=${1:?NAME}
lock=${2:?LOCK}
check=${3:?CHECK}
me="setup_peer_venv.sh $name"
python=${PYTHON:-python3}
for file in "$lock" "$check"; do
  [ -f "$file" ] || { echo "$me: no file $file" >&2; exit 2; }
done

want=$(cat "$lock" "$check" "$0" | sha256sum | cut -c1-12)
env_dir=${TOPSPARK_ENV_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/topspark_ros}
venv=$env_dir/venv-peer-$name-$want
stamp=$venv/.topspark-env-complete
if [ "${4:-}" = --path ] || [ -f "$stamp" ]; then
  echo "$venv"
  exit 0
fi

# One creator at a time.
mkdir -p "$env_dir"
exec 9>"$env_dir/.lock-peer-$name"
flock 9
if [ -f "$stamp" ]; then
  echo "$venv"
  exit 0
fi

"$python" - <<'PY' || { echo "$me: needs CPython 3.11 (set PYTHON=)" >&2; exit 2; }
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
"$venv/bin/python" "$check" >&2
touch "$stamp"
echo "Environment ready: $venv" >&2
echo "$venv"
