#!/usr/bin/env bash
# Build this package with colcon inside the local environment: generates the messages and
# installs messages, Python package, executables, launch and config files into
# install/<distro>/ (symlinked Python sources, so edits need no rebuild). About 10 s the first
# time, about 1 s when nothing changed.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
distro=${TOPSPARK_ROS_DISTRO:-jazzy}
venv=$("$root/dev/env.sh" ros)
cd "$root"
mkdir -p log
unset _ROS_WHEELS_BOOTSTRAP_COMPLETE
# shellcheck disable=SC1091
source "$venv/bin/activate"
# The message generators are found through the ament index of the venv.
export AMENT_PREFIX_PATH=$VIRTUAL_ENV
colcon --log-base "log/$distro" build \
  --paths . \
  --build-base "build/$distro" --install-base "install/$distro" --merge-install \
  --symlink-install \
  --cmake-args -DBUILD_TESTING=OFF -DPython3_EXECUTABLE="$VIRTUAL_ENV/bin/python" \
  --event-handlers console_direct- summary- \
  > "log/build-$distro.txt" 2>&1 || {
    cat "log/build-$distro.txt" >&2
    echo "dev/build.sh: colcon build failed (log above, also in log/build-$distro.txt)" >&2
    exit 1
  }
