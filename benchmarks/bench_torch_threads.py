"""
Torch intra-op threads on this machine: converted-family training and inference, 1 vs 2+.

Times, alternating the thread counts in one run (A B A B ...: these machines are shared and
noisy), (a) training the converted VGG's ANN for one epoch over ``--n-images`` Fashion-MNIST
images at batch 128 and (b) SNN inference of the shipped converted model at T=4, batch 1 and
batch 256, optionally while ``--busy K`` other processes each keep one core busy (a robot's
other nodes, or a second job on a shared machine). Prints a table with the median seconds
per configuration and the ratio against one thread; ``--json`` prints the figures. The
default of ``--threads`` in ``topspark`` and of the classifier's ``torch_threads`` parameter
follows from it (docs/benchmarks.md).

    dev/in_env.sh python benchmarks/bench_torch_threads.py --repeats 3
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np
from topspark_ros.core.checkpoint import load_checkpoint
from topspark_ros.core.converted import ConvertedConfig, ConvertedNetwork
from topspark_ros.core.converted.train import train_ann
from topspark_ros.core.data.idx import find_dataset_dir, load_mnist_family
from topspark_ros.core.topspark.sweep import machine_description
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _train_seconds(images, labels, threads: int) -> float:
    torch.set_num_threads(threads)
    config = ConvertedConfig(arch='vgg', height=28, width=28, channels=1, n_classes=10,
                             widths=(16, 32, 64), hidden=64)
    model = ConvertedNetwork(config)
    start = time.perf_counter()
    train_ann(model, images, labels, epochs=1, batch_size=128, seed=0)
    return time.perf_counter() - start


def _infer_seconds(model, images, threads: int, batch: int) -> float:
    """Seconds per image of SNN inference at T=4 in batches of ``batch``."""
    torch.set_num_threads(threads)
    n = len(images)
    start = time.perf_counter()
    for first in range(0, n, batch):
        model.infer(images[first:first + batch], timesteps=4)
    return (time.perf_counter() - start) / n


def main() -> None:
    """Run the comparison and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--n-images', type=int, default=2048)
    parser.add_argument('--threads', default='1,2', help='thread counts to compare')
    parser.add_argument('--repeats', type=int, default=3)
    parser.add_argument('--busy', type=int, default=0,
                        help='processes spinning on a core meanwhile (default: %(default)s)')
    parser.add_argument('--json', action='store_true')
    args = parser.parse_args()
    burners = [subprocess.Popen([sys.executable, '-c', 'while True: pass'])
               for _ in range(args.busy)]
    try:
        _compare(args)
    finally:
        for burner in burners:
            burner.kill()


def _compare(args) -> None:
    counts = [int(t) for t in args.threads.split(',')]
    data = load_mnist_family(find_dataset_dir('fashion-mnist'), 'train')
    images, labels = data.images[:args.n_images], data.labels[:args.n_images]
    model, _ = load_checkpoint(os.path.join(ROOT, 'models', 'converted_fmnist_vgg.json'))
    jobs = {'train ANN, 1 epoch (s)': lambda t: _train_seconds(images, labels, t),
            'SNN infer T=4, batch 1 (ms/img)': lambda t: 1e3 * _infer_seconds(
                model, images[:200], t, 1),
            'SNN infer T=4, batch 256 (ms/img)': lambda t: 1e3 * _infer_seconds(
                model, images, t, 256)}
    times = {(job, t): [] for job in jobs for t in counts}
    for job, run in jobs.items():
        run(counts[0])  # warm-up
        for _ in range(args.repeats):
            for t in counts:
                times[job, t].append(run(t))
    result = {'machine': machine_description(), 'load_avg': os.getloadavg(),
              'busy': args.busy, 'n_images': args.n_images, 'repeats': args.repeats,
              'median': {f'{job} @ {t}': statistics.median(v) for (job, t), v in times.items()}}
    if args.json:
        print(json.dumps(result))
        return
    print(f"{result['machine']}; {args.busy} busy processes; load average "
          f"{' '.join(f'{x:.2f}' for x in result['load_avg'])}")
    print(f'{"job":36}' + ''.join(f'{f"{t} thr":>10}' for t in counts)
          + ''.join(f'{f"{t}/1":>8}' for t in counts[1:]))
    for job in jobs:
        medians = [statistics.median(times[job, t]) for t in counts]
        print(f'{job:36}' + ''.join(f'{m:10.3f}' for m in medians)
              + ''.join(f'{m / medians[0]:8.2f}' for m in medians[1:]))


if __name__ == '__main__':
    np.seterr(all='ignore')
    main()
