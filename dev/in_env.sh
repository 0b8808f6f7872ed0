#!/usr/bin/env bash
# Run a command inside the local environment: the venv of $TOPSPARK_ROS_DISTRO activated and
# the colcon install of this package sourced (messages, Python package, executables).
#   dev/in_env.sh python -m pytest test/test_messages.py
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
distro=${TOPSPARK_ROS_DISTRO:-jazzy}
venv=$("$root/dev/env.sh" ros)
install=$root/install/$distro
[ -f "$install/setup.bash" ] || { echo "dev/in_env.sh: no $install; run 'make build'" >&2; exit 2; }

unset _ROS_WHEELS_BOOTSTRAP_COMPLETE
# shellcheck disable=SC1091
source "$venv/bin/activate"
export AMENT_PREFIX_PATH=$VIRTUAL_ENV${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}
# Import topspark_ros from the colcon install (where the generated messages are), never from
# the source tree that `python -c` / `python -m` would otherwise put first on sys.path.
export PYTHONSAFEPATH=1
export RMW_IMPLEMENTATION=${RMW_IMPLEMENTATION:-rmw_fastrtps_cpp}
# colcon's setup scripts read unset variables.
set +u
# shellcheck disable=SC1091
source "$install/setup.bash"
set -u
# The executables `ros2 run topspark_ros <name>` would find, callable by name here.
export PATH=$install/lib/topspark_ros:$PATH
exec "$@"
