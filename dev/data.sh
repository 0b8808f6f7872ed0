#!/usr/bin/env bash
# Make the Fashion-MNIST data set (Debian package dataset-fashion-mnist, MIT licence, the full
# 60k/10k IDX files) available to the readers, without needing root:
#   1. already installed system-wide (/usr/share/datasets/fashion-mnist): nothing to do;
#   2. otherwise `apt-get download` the package and unpack it into .cache/datasets/.
# The files are checked against known SHA-256 sums either way.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
name=fashion-mnist
system_dir=/usr/share/datasets/$name
local_dir=$root/.cache/datasets/$name

sums='cc1d090a38ace84dfa1aa66e3ada7c336ef481a96936906477e6dd344da56eaa  t10k-images-idx3-ubyte.gz
8d3605d196f4be44669e46906da9733c8131fef761fdbfec72c424d5222f1a05  t10k-labels-idx1-ubyte.gz
b0564c3eedabfbf835052cff8503ea422014ce006caf5b757f851416ee8300c7  train-images-idx3-ubyte.gz
0ae29f65d86684f32d1b9c85147786c547b9c6aebcaf235f0400a0cce308b056  train-labels-idx1-ubyte.gz'

verified() {  # verified <dir>: the four files are there and intact
  [ -d "$1" ] && (cd "$1" && echo "$sums" | sha256sum --check --status 2>/dev/null)
}

# A stamp keeps the second run instant (hashing 30 MB each time would not be).
stamp=$local_dir/.verified
if [ -f "$stamp" ] || verified "$system_dir"; then
  exit 0
fi
if verified "$local_dir"; then
  touch "$stamp"
  exit 0
fi

echo "Fetching Fashion-MNIST (Debian package dataset-fashion-mnist, 31 MB)..." >&2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
if ! (cd "$work" && apt-get download dataset-fashion-mnist >/dev/null 2>&1); then
  # Fresh machines may not have package lists yet.
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq >/dev/null
    (cd "$work" && apt-get download dataset-fashion-mnist >/dev/null 2>&1)
  else
    echo "dev/data.sh: could not download dataset-fashion-mnist; install it with" \
      "'sudo apt-get install dataset-fashion-mnist' and run again" >&2
    exit 1
  fi
fi
dpkg-deb -x "$work"/dataset-fashion-mnist_*.deb "$work/root"
mkdir -p "$local_dir"
cp "$work/root/usr/share/datasets/$name"/*.gz "$local_dir/"
if ! verified "$local_dir"; then
  echo "dev/data.sh: the downloaded files do not match their known checksums" >&2
  exit 1
fi
touch "$stamp"
echo "Fashion-MNIST ready in $local_dir" >&2
