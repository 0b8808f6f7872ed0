#!/usr/bin/env bash
# Create or reuse the benchmark-only venv with the NIR importers of snnTorch 1.0.0, Sinabs
# 3.1.3 and Norse 1.1.0 (for benchmarks/nir_peers.py); print its path on stdout.
#
#   benchmarks/peers/setup_nir_peers.sh            create (once, a few minutes) or reuse
#   benchmarks/peers/setup_nir_peers.sh --path     only print where it lives
#
# The venv is venv-peer-nir-<hash> (setup_peer_venv.sh). Norse asks for torchvision, Sinabs for
# samna and nir<=1.0.4: none of them is needed to import a NIR graph, so the lock is installed
# with --no-deps beside the CPU torch 2.13.0. The check: nir_peers_check.py.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
exec "$here/setup_peer_venv.sh" nir "$here/nir_peers.lock" "$here/nir_peers_check.py" "$@"
