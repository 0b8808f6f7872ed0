#!/usr/bin/env bash
# Create or reuse a local Python environment from a lock file; print its path on stdout.
#
#   dev/env.sh ros     ROS 2 wheels (TOPSPARK_ROS_DISTRO, default jazzy) + message build tools
#                      + colcon + torch + test tools: requirements/ros-<distro>.lock
#   dev/env.sh core    the core library's dependencies only, no ROS at all:
#                      requirements/core.lock
#   --path             only print where that environment lives (do not create it)
#
# Environments live outside the source tree, in $TOPSPARK_ENV_DIR (default
# ~/.cache/topspark_ros): CMake refuses to export include directories (numpy's, from the venv)
# that lie inside the package's source directory. Each is named after a hash of its lock file
# and of this script, so it is built once (a few minutes) and reused by every later run and by
# every clone with the same lock (well under a second).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
kind=${1:?usage: dev/env.sh ros|core [--path]}
distro=${TOPSPARK_ROS_DISTRO:-jazzy}
python=${PYTHON:-python3}

case "$kind" in
  ros) lock=$root/requirements/ros-$distro.lock; name=ros-$distro ;;
  core) lock=$root/requirements/core.lock; name=core ;;
  *) echo "dev/env.sh: unknown environment '$kind' (ros or core)" >&2; exit 2 ;;
esac
[ -f "$lock" ] || { echo "dev/env.sh: no lock file $lock (ROS distro '$distro'?)" >&2; exit 2; }

want=$(cat "$lock" "$0" | sha256sum | cut -c1-12)
env_dir=${TOPSPARK_ENV_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/topspark_ros}
venv=$env_dir/venv-$name-$want
stamp=$venv/.topspark-env-complete
if [ "${2:-}" = --path ] || [ -f "$stamp" ]; then
  echo "$venv"
  exit 0
fi

# One creator at a time (two `make` runs, or a test and a build, may ask at once).
mkdir -p "$env_dir"
exec 9>"$env_dir/.lock-$name"
flock 9
if [ -f "$stamp" ]; then
  echo "$venv"
  exit 0
fi

"$python" - <<'PY' || { echo "dev/env.sh: the ROS 2 wheels need CPython 3.11 (set PYTHON=)" >&2; exit 2; }
import sys
sys.exit(0 if sys.version_info[:2] == (3, 11) else 1)
PY

echo "Creating $venv from $(basename "$lock") (a few minutes, once)..." >&2
rm -rf "$venv"
# The ROS wheels' bootstrapper re-executes Python once with LD_LIBRARY_PATH set; a stale marker
# from another environment would stop it from doing so.
unset _ROS_WHEELS_BOOTSTRAP_COMPLETE
pip_install() {
  # Hide pip's noise about this machine's optional local indexes; keep everything else.
  "$venv/bin/python" -m pip install --quiet "$@" 2>&1 | { grep -v 'is ignored: it is neither' || true; }
}
"$python" -m venv "$venv"
pip_install --upgrade 'pip==25.3'
# Every package is pinned in the lock file, dependencies included: install exactly that set.
pip_install --no-deps -r "$lock"
"$venv/bin/python" -m pip check >/dev/null || {
  "$venv/bin/python" -m pip check >&2
  echo "dev/env.sh: $lock is incomplete or inconsistent (regenerate it: dev/lock.sh)" >&2
  exit 1
}

if [ "$kind" = ros ]; then
  # The wheels' exported CMake files name the wheel builder's include directories; point them
  # at this interpreter's, or CMake refuses the generated Python targets.
  "$venv/bin/python" - "$venv" <<'PY'
import pathlib
import sys
import sysconfig

import numpy

venv = pathlib.Path(sys.argv[1])
py_include = sysconfig.get_paths()['include']
builder = '/opt/python/cp311-cp311'
replacements = [
    (builder + '/lib/python3.11/site-packages/numpy/_core/include', numpy.get_include()),
    (builder + '/include/python3.11', py_include),
]
changed = 0
for path in (venv / 'share').rglob('*.cmake'):
    text = path.read_text()
    new = text
    for old, repl in replacements:
        new = new.replace(old, repl)
    if builder in new:
        sys.exit(f'dev/env.sh: unrecognised builder path left in {path}')
    if new != text:
        path.write_text(new)
        changed += 1
print(f'dev/env.sh: fixed include paths in {changed} CMake files', file=sys.stderr)
PY
fi
touch "$stamp"
echo "Environment ready: $venv" >&2
echo "$venv"
