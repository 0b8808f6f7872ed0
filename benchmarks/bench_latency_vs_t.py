"""
Latency against the timestep count T, side by side: does it fall as the steps do (issue 16).

Times per-sample latency of the shipped STDP model (``models/stdp_fmnist_n400.json``) at a full
and a reduced T (350 and 32 by default) side by side in one run, alternating the two T
(A B A B ...: these machines are shared and noisy), for

* ``infer_b1``: inference one image per call (a camera stream), Poisson encoding and the
  readout included;
* ``infer_batch``: batched inference (``--batch`` 256, as ``topspark sweep``), per sample;
* ``learn_b1``: online STDP learning, one image per call (on a copy of the model), its seeds
  from the model's stream as a node learning on line draws them (``seed=None``);
* ``converted_b1`` / ``converted_batch`` (with ``--converted``): the shipped converted SNN
  (``models/converted_fmnist_vgg.json``) at ``--converted-timesteps`` (16 and 2).

Per round and mode, every T is timed over ``--calls`` calls (median wall time per sample,
each call timed alone with ``perf_counter``); the ratio latency(full T) / latency(reduced T)
of each round is reported with its median over rounds, beside the step ratio and the goal: at
least 0.7 x the step ratio (7.66 for 350 vs 32). ``fixed_us`` is the per-sample cost left at
T=0 by a straight line through the two points, ``per_step_us`` its slope. CPU time per
sample (``time.process_time`` over all of a T's calls, all threads, divided by the samples)
is given too: less sensitive to other jobs than wall time.

    dev/in_env.sh python benchmarks/bench_latency_vs_t.py [--rounds 5] [--json out.json]
    ... --modes infer_b1,infer_batch --timesteps 350,32 --threads 2 --converted
"""

import argparse
import copy
import json
import os
from pathlib import Path
import platform
import statistics
import time

import numba
import numpy as np
from topspark_ros.core.checkpoint import load_checkpoint
from topspark_ros.core.data.idx import find_dataset_dir, load_mnist_family
from topspark_ros.core.topspark.sweep import cpu_model

ROOT = Path(__file__).resolve().parents[1]
STDP_MODES = ('infer_b1', 'infer_batch', 'learn_b1')
CONVERTED_MODES = ('converted_b1', 'converted_batch')
GOAL_FRACTION = 0.7
"""Latency saving asked for, as a fraction of the step saving."""


def _time_calls(call, n_calls: int, per_call: int) -> tuple:
    """
    Return (median wall us, mean CPU us) per sample of ``n_calls`` calls of ``call(k)``.

    Each call's wall time is taken with ``perf_counter`` alone; the CPU time over all the
    calls. ``process_time`` is a system call (0.6 us here, and the caches and branch
    predictors it disturbs): taken around each call, as this script did before, it was timed
    with the call, a fixed cost that is the benchmark's, not the model's.
    """
    walls = []
    cpu = time.process_time()
    for k in range(n_calls):
        start = time.perf_counter()
        call(k)
        walls.append(time.perf_counter() - start)
    cpu = time.process_time() - cpu
    return statistics.median(walls) / per_call * 1e6, cpu / (n_calls * per_call) * 1e6


def _runner(mode: str, stdp, converted, images: np.ndarray, batch: int):
    """Return ``(call(k, T), samples per call)`` for ``mode``."""
    n = len(images)
    if mode == 'infer_b1':
        return (lambda k, t: stdp.infer(images[k % n:k % n + 1], timesteps=t)), 1
    if mode == 'infer_batch':
        return (lambda k, t: stdp.infer(images[:batch], timesteps=t, seed=k)), batch
    if mode == 'learn_b1':  # the model's stream, as a node learning on line draws
        learner = copy.deepcopy(stdp)
        return (lambda k, t: learner.learn(images[k % n:k % n + 1], timesteps=t)), 1
    if mode == 'converted_b1':
        return (lambda k, t: converted.infer(images[k % n:k % n + 1], timesteps=t)), 1
    return (lambda k, t: converted.infer(images[:batch], timesteps=t)), batch


def main() -> None:
    """Run the measurement and print the table (and the JSON)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument('--model', default=str(ROOT / 'models' / 'stdp_fmnist_n400.json'))
    parser.add_argument('--converted-model',
                        default=str(ROOT / 'models' / 'converted_fmnist_vgg.json'))
    parser.add_argument('--modes', default=','.join(STDP_MODES))
    parser.add_argument('--converted', action='store_true', help='add the converted modes')
    parser.add_argument('--timesteps', default='350,32', help='full,reduced T (STDP)')
    parser.add_argument('--converted-timesteps', default='16,2')
    parser.add_argument('--rounds', type=int, default=5)
    parser.add_argument('--calls', type=int, default=200, help='batch-1 calls per T and round')
    parser.add_argument('--batch-calls', type=int, default=3)
    parser.add_argument('--batch', type=int, default=256)
    parser.add_argument('--threads', type=int, default=2, help='numba threads')
    parser.add_argument('--torch-threads', type=int, default=1)
    parser.add_argument('--json', help='write the figures to this file')
    args = parser.parse_args()
    numba.set_num_threads(args.threads)
    modes = [m for m in args.modes.split(',') if m]
    unknown = sorted(set(modes) - set(STDP_MODES) - set(CONVERTED_MODES))
    if unknown:
        parser.error(f'unknown modes {unknown}: choose from {STDP_MODES + CONVERTED_MODES}')
    if args.converted:
        modes += [m for m in CONVERTED_MODES if m not in modes]
    images = load_mnist_family(find_dataset_dir('fashion-mnist', start=ROOT), 'test').images
    images = images[:max(args.batch, 512)]
    stdp, _ = load_checkpoint(args.model)
    converted = None
    if any(m in CONVERTED_MODES for m in modes):
        import torch
        torch.set_num_threads(args.torch_threads)
        converted, _ = load_checkpoint(args.converted_model)
    load_before = os.getloadavg()
    results = {}
    for mode in modes:
        grid = args.converted_timesteps if mode in CONVERTED_MODES else args.timesteps
        full, reduced = (int(t) for t in grid.split(','))
        call, per_call = _runner(mode, stdp, converted, images, args.batch)
        n_calls = args.batch_calls if per_call > 1 else args.calls
        for t in (full, reduced):  # warm-up: compilation, caches
            call(0, t)
        rounds = []
        for r in range(args.rounds):
            order = (full, reduced) if r % 2 == 0 else (reduced, full)
            got = {}
            for t in order:
                got[t] = _time_calls(lambda k: call(k, t), n_calls, per_call)
            rounds.append(got)
        wall = {t: statistics.median(g[t][0] for g in rounds) for t in (full, reduced)}
        cpu = {t: statistics.median(g[t][1] for g in rounds) for t in (full, reduced)}
        ratio = statistics.median(g[full][0] / g[reduced][0] for g in rounds)
        cpu_ratio = statistics.median(g[full][1] / g[reduced][1] for g in rounds)
        slope = (wall[full] - wall[reduced]) / (full - reduced)
        results[mode] = {
            'full_t': full, 'reduced_t': reduced, 'samples_per_call': per_call,
            'wall_us': {str(t): wall[t] for t in wall}, 'cpu_us': {str(t): cpu[t] for t in cpu},
            'ratio': ratio, 'cpu_ratio': cpu_ratio, 'step_ratio': full / reduced,
            'goal_ratio': GOAL_FRACTION * full / reduced,
            'per_step_us': slope, 'fixed_us': wall[reduced] - slope * reduced,
            'round_ratios': [g[full][0] / g[reduced][0] for g in rounds]}
        print(f'{mode} done: ratio {ratio:.2f}', flush=True)
    info = {'machine': f'{cpu_model()}, {os.cpu_count()} CPUs', 'numba_threads': args.threads,
            'load_before': load_before, 'load_after': os.getloadavg(),
            'python': platform.python_version(), 'numba': numba.__version__,
            'rounds': args.rounds, 'calls': args.calls, 'batch': args.batch,
            'date': time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}
    print(f"\nmachine: {info['machine']}; numba threads {args.threads}; load average before "
          f"{', '.join(f'{x:.2f}' for x in load_before)}, after "
          f"{', '.join(f'{x:.2f}' for x in info['load_after'])}")
    print('\n| mode | T full / reduced | latency full us | latency reduced us | ratio (wall) | '
          'ratio (CPU) | goal | met | fixed us | per step us |')
    print('|---|---|---:|---:|---:|---:|---:|---|---:|---:|')
    for mode, r in results.items():
        full, reduced = r['full_t'], r['reduced_t']
        met = 'yes' if r['ratio'] >= r['goal_ratio'] else 'no'
        print(f"| {mode} | {full} / {reduced} | {r['wall_us'][str(full)]:.1f} | "
              f"{r['wall_us'][str(reduced)]:.1f} | {r['ratio']:.2f} | {r['cpu_ratio']:.2f} | "
              f">= {r['goal_ratio']:.2f} | {met} | {r['fixed_us']:.1f} | "
              f"{r['per_step_us']:.3f} |")
    if args.json:
        Path(args.json).write_text(json.dumps({'info': info, 'results': results}, indent=1))


if __name__ == '__main__':
    main()
