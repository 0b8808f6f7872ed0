# topspark_ros developer entry points. The two that matter:
#   make demo   the main job: set up (once), build, run the end-to-end demo
#   make test   set up (once), build, run every test (what CI runs)
# and the main job for event cameras:
#   make demo-events   the same demo on an event stream (1 ms evt3 packets)
# Both create or reuse the local environment on their own; nothing needs installing by hand.
# TOPSPARK_ROS_DISTRO=jazzy (default) selects the ROS 2 wheels; PYTEST_ARGS passes options on;
# TEST_WORKERS (default 2) runs the tests in that many processes (pytest-xdist; 0: in one).

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
TOPSPARK_ROS_DISTRO ?= jazzy
export TOPSPARK_ROS_DISTRO
PYTEST_ARGS ?=
# Two processes take the suite from about 14 to about 6 minutes on 2 cores: much of it waits on
# other processes (ROS discovery, nodes starting). Tests that share a resource run in one
# process, in order (`xdist_group`: the Ray clusters).
TEST_WORKERS ?= 2

.PHONY: demo demo-events test env data build lint lock clean

demo: env data build
	dev/in_env.sh topspark demo --duration-s 60 --plot demo.png

demo-events: env data build
	dev/in_env.sh topspark demo --events --duration-s 60 --plot demo_events.png

test: env data build
	dev/in_env.sh python -m pytest -n $(TEST_WORKERS) --dist loadgroup $(PYTEST_ARGS)

# The ROS environment (build, run, test) and the ROS-free one (the `pip install .` test).
env:
	@dev/env.sh ros >/dev/null
	@dev/env.sh core >/dev/null

data:
	@dev/data.sh

build: env
	@dev/build.sh

lint: env build
	dev/in_env.sh python -m pytest test/test_lint.py

lock:
	dev/lock.sh

clean:
	rm -rf build install log .cache
