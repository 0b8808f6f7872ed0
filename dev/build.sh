#!/usr/bin/env bash
# Build this package with colcon inside the local environment: generates the messages and
# installs messages, Python package, executables, launch and config files into
# install/<distro>/ (symlinked Python sources, so edits need no rebuild). Also builds the test
# stand-ins of event_camera_msgs, vision_msgs and bond (test/interfaces/, see its README: not
# installable here) into the same prefix, so tests and demos exchange the real EventPacket,
# Classification, LabelInfo and bond Status types over DDS; a robot workspace never sees them
# (COLCON_IGNORE); each is rebuilt only when its files change. About 30 s the first time,
# about 1 s when nothing changed.
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
# The test message packages: each built only when its sources (or the venv) changed since its
# last successful build, so an unchanged rebuild costs what topspark_ros's alone does.
paths=(.)
declare -A stamps=()
mkdir -p "build/$distro"
for interfaces in test/interfaces/event_camera_msgs test/interfaces/vision_msgs \
    test/interfaces/bond; do
  name=$(basename "$interfaces")
  stamp=build/$distro/$name.stamp
  want=$( (echo "$venv"; find "$interfaces" -type f | sort | xargs sha256sum) \
    | sha256sum | cut -c1-16)
  if [ ! -f "install/$distro/share/$name/package.xml" ] \
      || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    paths+=("$interfaces")
    stamps[$stamp]=$want
    rm -f "$stamp"
  fi
done
colcon --log-base "log/$distro" build \
  --paths "${paths[@]}" \
  --build-base "build/$distro" --install-base "install/$distro" --merge-install \
  --symlink-install \
  --cmake-args -DBUILD_TESTING=OFF -DPython3_EXECUTABLE="$VIRTUAL_ENV/bin/python" \
  --event-handlers console_direct- summary- \
  > "log/build-$distro.txt" 2>&1 || {
    cat "log/build-$distro.txt" >&2
    echo "dev/build.sh: colcon build failed (log above, also in log/build-$distro.txt)" >&2
    exit 1
  }
for stamp in "${!stamps[@]}"; do
  echo "${stamps[$stamp]}" > "$stamp"
done
