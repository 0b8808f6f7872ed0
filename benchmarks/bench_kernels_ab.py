"""
A/B speed comparison of two versions of the numba STDP kernels in one process.

``A`` is the kernels of ``topspark_ros/core/stdp/`` (``kernels.py`` and the ``rng.py`` and
``normalise.py`` it calls) at a git revision (default ``HEAD``, read with ``git show``, nothing
in the repository changes; a revision from before issue 12 split them is refused), ``B`` the
working tree's; both are called with the working tree's argument types. Both run the same
calls on real Fashion-MNIST images, Poisson encoding included: per-sample online learning
(``learn_batch`` over ``--n-learn`` samples) and batched inference (``infer_batch`` over
``--n-infer`` samples on ``--threads`` threads). The calls alternate A B A B ... so that both
see the same machine load; the script prints the median ms per sample of each and the median
of the per-round ratios A / B (> 1: B is faster). Quote the ratios: on a shared machine the
absolute times can move by 1.5x between runs.

Usage: python benchmarks/bench_kernels_ab.py [--rev HEAD] [--neurons 400 100] [--rounds 7]
"""

import argparse
import importlib
import json
from pathlib import Path
import statistics
import subprocess
import sys
import tempfile
import time

import numba
import numpy as np

from topspark_ros.core.data.idx import find_dataset_dir, load_mnist_family
from topspark_ros.core.stdp import DynamicsParams, initial_weights, simulation_constants
from topspark_ros.core.stdp import kernels as kernels_b
from topspark_ros.core.stdp import STDPConfig
from topspark_ros.core.stdp.encoding import draw_seeds, log_no_spike, spike_probabilities
from topspark_ros.core.stdp.normalise import ColumnStats

REPO = Path(__file__).resolve().parents[1]


KERNEL_MODULES = ('rng', 'normalise', 'readout', 'kernels')
"""The modules of ``topspark_ros/core/stdp/`` that make up the kernels, callees first."""
OPTIONAL_MODULES = ('readout',)
"""Modules the kernels of older revisions do not import (the class scores, issue 16)."""


def load_kernels_at(rev: str):
    """
    Import the kernel modules of git revision ``rev`` as a package; return its ``kernels``.

    The files are written to a folder per commit (so numba's cache there is reused) with their
    imports of each other pointed at that package.
    """
    commit = subprocess.run(['git', 'rev-parse', '--short', rev], cwd=REPO, check=True,
                            capture_output=True, text=True).stdout.strip()
    package = f'topspark_kernels_ab_{commit}'
    folder = Path(tempfile.gettempdir()) / 'topspark_bench_ab' / commit
    (folder / package).mkdir(parents=True, exist_ok=True)
    (folder / package / '__init__.py').touch()
    for name in KERNEL_MODULES:
        shown = subprocess.run(['git', 'show', f'{rev}:topspark_ros/core/stdp/{name}.py'],
                               cwd=REPO, capture_output=True, text=True)
        if shown.returncode != 0 and name in OPTIONAL_MODULES:
            continue
        if shown.returncode != 0:
            sys.exit(f'{rev} has no topspark_ros/core/stdp/{name}.py: its kernels predate '
                     'the layout this script compares (issue 12)')
        source = shown.stdout.replace('topspark_ros.core.stdp.', f'{package}.')
        path = folder / package / f'{name}.py'
        if not path.exists() or path.read_text() != source:
            path.write_text(source)
    sys.path.insert(0, str(folder))
    return importlib.import_module(f'{package}.kernels')


def _batch_input(kern, images, seeds, timesteps: int):
    """Return the kernels' input of ``images`` Poisson coded at 128 Hz from ``seeds``."""
    fields = {'log_q': log_no_spike(spike_probabilities(images, 128.0, 1.0)), 'seeds': seeds,
              'pixels': np.zeros(0, np.int32), 'row_ptr': np.zeros((0, timesteps + 1), np.int64),
              'levels': np.zeros((0, 0), np.uint8), 'table': np.zeros(0, np.float64)}
    # Revisions before issue 16's level tables have the first four fields only.
    return kern.BatchInput(*(fields[name] for name in kern.BatchInput._fields))


def run_infer(kern, w, theta, images, seeds, timesteps, const) -> np.ndarray:
    """Encode and classify ``images`` with ``kern.infer_batch``; return the spike counts."""
    n_samples, n = len(images), w.shape[1]
    counts = np.zeros((n_samples, n), np.int64)
    ops = np.zeros((n_samples, kern.N_OPS), np.int64)
    kern.infer_batch(w, theta, _batch_input(kern, images, seeds, timesteps), timesteps, const,
                     kernels_b.NO_EXIT, counts, ops, np.zeros(n_samples, np.int64))
    return counts


def run_learn(kern, w, theta, images, seeds, timesteps, const) -> np.ndarray:
    """Learn from ``images`` one by one with ``kern.learn_batch`` on copies of ``w, theta``."""
    w, theta = w.copy(), theta.copy()
    n_in, n = w.shape
    state = kernels_b.empty_state(n_in, n)
    kern.reset_state(state, const.par)
    counts = np.zeros((len(images), n), np.int64)
    ops = np.zeros((len(images), kern.N_OPS), np.int64)
    kern.learn_batch(w, theta, state, _batch_input(kern, images, seeds, timesteps), timesteps,
                     const, ColumnStats.all_changed(n), counts, ops)
    return counts


def compare(kern_a, kern_b, n_neurons: int, args, images) -> dict:
    """Time A and B alternately for one network size; return medians and ratios."""
    config = STDPConfig(n_neurons=n_neurons)
    const = simulation_constants(config, DynamicsParams())
    w, theta = initial_weights(config), np.zeros(n_neurons)
    rng = np.random.default_rng(0)
    learn_images = images[:args.n_learn]
    infer_images = images[1000:1000 + args.n_infer]
    learn_seeds = draw_seeds(rng, args.n_learn)
    infer_seeds = draw_seeds(rng, args.n_infer)
    calls = {
        'learn': (run_learn, learn_images, learn_seeds),
        'infer': (run_infer, infer_images, infer_seeds),
    }
    times = {(kind, tag): [] for kind in calls for tag in 'AB'}
    for kern in (kern_a, kern_b):   # warm-up (compilation or cache load)
        for run, imgs, seeds in calls.values():
            run(kern, w, theta, imgs[:2], seeds[:2], args.timesteps, const)
    for _ in range(args.rounds):
        for kind, (run, imgs, seeds) in calls.items():
            for tag, kern in (('A', kern_a), ('B', kern_b)):
                start = time.perf_counter()
                run(kern, w, theta, imgs, seeds, args.timesteps, const)
                times[kind, tag].append((time.perf_counter() - start) / len(imgs) * 1e3)
    result = {'neurons': n_neurons}
    for kind in calls:
        a, b = times[kind, 'A'], times[kind, 'B']
        result[f'{kind}_a_ms'] = statistics.median(a)
        result[f'{kind}_b_ms'] = statistics.median(b)
        result[f'{kind}_ratio'] = statistics.median(x / y for x, y in zip(a, b))
    return result


def main() -> None:
    """Run the comparison and print one line per size and a JSON summary."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument('--rev', default='HEAD', help='git revision of version A')
    parser.add_argument('--neurons', type=int, nargs='+', default=[400, 100])
    parser.add_argument('--timesteps', type=int, default=350)
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--n-learn', type=int, default=50)
    parser.add_argument('--n-infer', type=int, default=512)
    parser.add_argument('--rounds', type=int, default=7)
    args = parser.parse_args()
    numba.set_num_threads(args.threads)
    kern_a = load_kernels_at(args.rev)
    images = load_mnist_family(find_dataset_dir('fashion-mnist'), 'train').images
    results = []
    for n_neurons in args.neurons:
        r = compare(kern_a, kernels_b, n_neurons, args, images)
        results.append(r)
        print(f"N={n_neurons} T={args.timesteps}: learn (batch 1) A {r['learn_a_ms']:.3f} "
              f"B {r['learn_b_ms']:.3f} ms/sample, A/B {r['learn_ratio']:.2f} | infer "
              f"(batch {args.n_infer}, {args.threads} threads) A {r['infer_a_ms']:.3f} "
              f"B {r['infer_b_ms']:.3f} ms/sample, A/B {r['infer_ratio']:.2f}")
    print(json.dumps({'rev_a': args.rev, 'threads': args.threads,
                      'timesteps': args.timesteps, 'results': results}))


if __name__ == '__main__':
    main()
