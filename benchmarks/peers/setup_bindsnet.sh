#!/usr/bin/env bash
# Create or reuse the benchmark-only venv with BindsNET 0.3.4 beside topspark_ros's engine;
# print its path on stdout.
#
#   benchmarks/peers/setup_bindsnet.sh            create (once, a few minutes) or reuse
#   benchmarks/peers/setup_bindsnet.sh --path     only print where it lives
#
# The venv is venv-peer-bindsnet-<hash> (setup_peer_venv.sh). BindsNET's metadata asks for
# torch>=2.14 and torchvision, so bindsnet is installed with --no-deps beside the CPU torch
# 2.13.0; numba/llvmlite/PyYAML/safetensors are in the lock so that one interpreter can run both
# implementations. The check: bindsnet_check.py.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
exec "$here/setup_peer_venv.sh" bindsnet "$here/bindsnet.lock" "$here/bindsnet_check.py" "$@"
