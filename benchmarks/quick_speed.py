"""
Quick speed check of the numba STDP engine at BindsNET's benchmark size (N=400, T=350, dt=1).

Times per-sample online learning and batched inference on real Fashion-MNIST images, Poisson
encoding (128 Hz max) included, after a warm-up call (numba compilation excluded). Prints
medians of a few repeats in ms per sample and one JSON line. For the BindsNET reference
figures on these machines see /work/shared/peer-benchmarks.md (175 ms/sample learning,
8.9 ms/sample batched inference, encoding excluded there).

Usage: python benchmarks/quick_speed.py [--neurons 400] [--timesteps 350] [--threads 2]
"""

import argparse
import json
import statistics
import time

import numba

from topspark_ros.core.data.idx import find_dataset_dir, load_mnist_family
from topspark_ros.core.stdp import DiehlCookNetwork, STDPConfig


def _median_ms_per_sample(run, n_samples: int, repeats: int) -> float:
    """Return the median over ``repeats`` of the wall time of ``run()`` per sample (ms)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append((time.perf_counter() - start) / n_samples * 1e3)
    return statistics.median(times)


def main() -> None:
    """Run the measurement and print the results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument('--neurons', type=int, default=400)
    parser.add_argument('--timesteps', type=int, default=350)
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--n-learn', type=int, default=100)
    parser.add_argument('--n-infer', type=int, default=512)
    parser.add_argument('--repeats', type=int, default=3)
    parser.add_argument('--inhibition', default='populations')
    args = parser.parse_args()
    numba.set_num_threads(args.threads)
    images = load_mnist_family(find_dataset_dir('fashion-mnist'), 'train').images
    model = DiehlCookNetwork(STDPConfig(n_neurons=args.neurons, inhibition=args.inhibition))
    model.learn(images[:2], timesteps=args.timesteps)
    model.infer(images[:2], timesteps=args.timesteps)
    learn_images = images[:args.n_learn]
    infer_images = images[1000:1000 + args.n_infer]
    learn_ms = _median_ms_per_sample(
        lambda: model.learn(learn_images, timesteps=args.timesteps), args.n_learn, args.repeats)
    infer_ms = _median_ms_per_sample(
        lambda: model.infer(infer_images, timesteps=args.timesteps), args.n_infer, args.repeats)
    result = {'neurons': args.neurons, 'timesteps': args.timesteps, 'threads': args.threads,
              'inhibition': args.inhibition, 'learn_ms_per_sample': learn_ms,
              'infer_ms_per_sample': infer_ms, 'infer_batch': args.n_infer,
              'encoding_included': True}
    print(f'learn (per sample, online): {learn_ms:.2f} ms/sample')
    print(f'infer (batch {args.n_infer}, {args.threads} threads): {infer_ms:.3f} ms/sample')
    print(json.dumps(result))


if __name__ == '__main__':
    main()
