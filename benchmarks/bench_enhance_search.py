#!/usr/bin/env python3
"""
TPE against random search in the parameter enhancement, side by side at equal budget (issue 16).

On each data set, for every seed, it runs :func:`topspark_ros.core.topspark.enhance.enhance` twice
on the same validation images (``--n-val`` of the training split, chosen by the seed), once per
sampler, with the same budget (candidates per T), the same successive-halving rungs and the
same sensitivity analysis (measured once, by the first run, and reused), so the two differ
only in how candidates are proposed. Then it measures the model's own and both enhanced
parameter sets on the whole test split at each T. Reported per data set, T and seed:
validation accuracy (own, TPE, random), test accuracy with its 95 % Wilson interval, and the
paired test difference TPE - random on the same images with its 95 % interval (normal
approximation of a paired difference of proportions); and the mean over seeds.

Data sets: the shipped model (``models/stdp_fmnist_n400.json``) on Fashion-MNIST, and an N=100
model of the MNIST digits (``--data mnist-digits``), trained first with ``topspark train`` when
``--digits-model`` does not exist. Learning parameters are not searched by default
(``--learn-budget 0``): they act only while learning, so the test accuracy of a trained model
does not see them.

Run it niced on a shared machine::

    nice -n 10 dev/in_env.sh python benchmarks/bench_enhance_search.py
"""

import argparse
import datetime
import json
import math
import os
import subprocess
import sys
import time


def wilson(correct: int, n: int) -> tuple:
    """Return the 95 % Wilson interval of ``correct / n``."""
    from topspark_ros.core.topspark.profile import wilson_interval

    return wilson_interval(correct, n)


def paired_difference(a, b) -> tuple:
    """Return ``(mean(a) - mean(b), low, high)``: 95 % interval of a paired difference."""
    import numpy as np

    a, b = np.asarray(a, bool), np.asarray(b, bool)
    n = len(a)
    only_a, only_b = int(np.sum(a & ~b)), int(np.sum(b & ~a))
    diff = (only_a - only_b) / n
    se = math.sqrt(max(only_a + only_b - (only_a - only_b) ** 2 / n, 0.0)) / n
    return diff, diff - 1.96 * se, diff + 1.96 * se


def correct_at(model, images, labels, timesteps: int, values, batch_size: int):
    """Return a bool array: which test images the model classifies right at T with ``values``."""
    from topspark_ros.core.topspark.evaluate import evaluate

    params = model.params_for_values(dict(values)) if values else None
    return evaluate(model, images, timesteps=timesteps, batch_size=batch_size, params=params,
                    seed=0).predicted == labels


def ensure_digits_model(path: str) -> None:
    """Train the N=100 MNIST-digits model with ``topspark train`` unless it exists."""
    if os.path.exists(path):
        return
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    subprocess.run([sys.executable, '-m', 'topspark_ros.cli', 'train', '--data', 'mnist-digits',
                    '--neurons', '100', '--n-train', '8000', '--timesteps', '350',
                    '--n-eval', '2000', '--eval-split', 'test', '--seed', '0', '--output', path,
                    '--quiet'], check=True)


def run_dataset(name: str, model_path: str, data: str, opts) -> list:
    """Return the rows (one per T and seed) of one data set."""
    from topspark_ros.core.checkpoint import load_checkpoint
    from topspark_ros.core.data.sources import load_split, parse_data
    from topspark_ros.core.energy import EnergyModel
    from topspark_ros.core.topspark import enhance as enh

    model, _ = load_checkpoint(model_path)
    source = parse_data(data)
    train = load_split(source, 'train')
    test = load_split(source, 'test')
    energy = EnergyModel('cmos45_fp32')
    grid = [int(t) for t in opts.grid.split(',')]
    learn = opts.learn_samples if opts.learn_budget else 0
    rows = []
    for seed in (int(s) for s in opts.seeds.split(',')):
        val_idx, learn_idx = enh.enhancement_split(len(train), opts.n_val, learn, seed)
        results, sens = {}, None
        for sampler in ('tpe', 'random'):
            start = time.monotonic()
            results[sampler] = enh.enhance(
                model, train.images[val_idx], train.labels[val_idx], grid, energy_model=energy,
                budget=opts.budget, learn_budget=opts.learn_budget, top_k=opts.top_k,
                train_images=train.images[learn_idx] if learn else None,
                train_labels=train.labels[learn_idx] if learn else None,
                learn_neurons=100, seed=seed, sampler=sampler, precomputed=sens)
            sens = results[sampler].sensitivity
            print(f'{name} seed {seed} {sampler}: {time.monotonic() - start:.0f} s',
                  file=sys.stderr, flush=True)
        for t in grid:
            item = {s: next(i for i in results[s].timesteps if i.timesteps == t)
                    for s in results}
            own = correct_at(model, test.images, test.labels, t, None, opts.batch_size)
            row = {'dataset': name, 'timesteps': t, 'seed': seed, 'n_val': opts.n_val,
                   'n_test': int(len(test.labels)),
                   'val_own': item['tpe'].inference.before.accuracy,
                   'test_own': float(own.mean()), 'test_own_ci': wilson(int(own.sum()),
                                                                        len(own))}
            correct = {}
            for sampler, it in item.items():
                correct[sampler] = correct_at(model, test.images, test.labels, t, it.params,
                                              opts.batch_size)
                n_val = it.inference.after.n_samples
                row[f'val_{sampler}'] = it.inference.after.accuracy
                row[f'val_{sampler}_ci'] = wilson(round(it.inference.after.accuracy * n_val),
                                                  n_val)
                row[f'test_{sampler}'] = float(correct[sampler].mean())
                row[f'test_{sampler}_ci'] = wilson(int(correct[sampler].sum()),
                                                   len(correct[sampler]))
                row[f'params_{sampler}'] = None if it.params is None else dict(it.params)
            row['test_diff'] = paired_difference(correct['tpe'], correct['random'])
            rows.append(row)
            print(json.dumps(row), file=sys.stderr, flush=True)
    return rows


def pct(x: float) -> str:
    """Return ``x`` in percent with two decimals."""
    return f'{100 * x:.2f}'


def ci(pair) -> str:
    """Return an interval in percent."""
    return f'[{100 * pair[0]:.1f}, {100 * pair[1]:.1f}]'


def table(rows: list) -> str:
    """Return the markdown table of the rows, with the mean over seeds per data set and T."""
    lines = ['| data set | T | seed | val own | val TPE | val random | test own | test TPE '
             '(95 % CI) | test random (95 % CI) | test TPE - random (95 % CI) |',
             '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|']
    keys = sorted({(r['dataset'], r['timesteps']) for r in rows}, key=lambda k: (k[0], -k[1]))
    for dataset, t in keys:
        group = [r for r in rows if r['dataset'] == dataset and r['timesteps'] == t]
        for r in group:
            d = r['test_diff']
            lines.append(
                f'| {dataset} | {t} | {r["seed"]} | {pct(r["val_own"])} | {pct(r["val_tpe"])} '
                f'| {pct(r["val_random"])} | {pct(r["test_own"])} | {pct(r["test_tpe"])} '
                f'{ci(r["test_tpe_ci"])} | {pct(r["test_random"])} {ci(r["test_random_ci"])} '
                f'| {100 * d[0]:+.2f} [{100 * d[1]:+.1f}, {100 * d[2]:+.1f}] |')

        def mean(key):
            return sum(r[key] for r in group) / len(group)

        diff = sum(r['test_diff'][0] for r in group) / len(group)
        lines.append(f'| **{dataset}** | **{t}** | mean | {pct(mean("val_own"))} '
                     f'| **{pct(mean("val_tpe"))}** | **{pct(mean("val_random"))}** '
                     f'| {pct(mean("test_own"))} | **{pct(mean("test_tpe"))}** '
                     f'| **{pct(mean("test_random"))}** | **{100 * diff:+.2f}** |')
    return '\n'.join(lines)


def main(argv=None) -> int:
    """Run the comparison; print the table; write JSON and markdown under --out."""
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument('--budget', type=int, default=24, help='inference candidates per T')
    p.add_argument('--learn-budget', type=int, default=0, help='learning scoring runs per T')
    p.add_argument('--learn-samples', type=int, default=1000, help='images per scoring run')
    p.add_argument('--top-k', type=int, default=4, help='knobs searched per T')
    p.add_argument('--n-val', type=int, default=2000, help='validation images (training split)')
    p.add_argument('--grid', default='32,16', help='T to enhance')
    p.add_argument('--seeds', default='0,1,2,3,4', help='seeds (validation set and search)')
    p.add_argument('--batch-size', type=int, default=256, help='inference batch')
    p.add_argument('--fashion-model', default='models/stdp_fmnist_n400.json')
    p.add_argument('--digits-model', default='.cache/bench_enhance/mnist_digits_n100.json')
    p.add_argument('--out', default='.cache/bench_enhance', help='folder of the results')
    opts = p.parse_args(argv)
    from topspark_ros.core.threads import set_torch_threads
    from topspark_ros.core.topspark.sweep import machine_description

    set_torch_threads(1)
    start = time.monotonic()
    ensure_digits_model(opts.digits_model)
    rows = (run_dataset('fashion-mnist', opts.fashion_model, 'fashion-mnist', opts)
            + run_dataset('mnist-digits', opts.digits_model, 'mnist-digits', opts))
    text = table(rows)
    wall = time.monotonic() - start
    note = (f'`python benchmarks/bench_enhance_search.py {" ".join(argv or sys.argv[1:])}`'
            f' ({", ".join(f"{k}={v}" for k, v in sorted(vars(opts).items()))}); '
            f'{machine_description()}; {wall / 60:.1f} min; '
            f'{datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}')
    print(text)
    print()
    print(note)
    os.makedirs(opts.out, exist_ok=True)
    with open(os.path.join(opts.out, 'search.json'), 'w') as f:
        json.dump({'rows': rows, 'note': note, 'settings': vars(opts)}, f, indent=1)
    with open(os.path.join(opts.out, 'search.md'), 'w') as f:
        f.write(text + '\n\n' + note + '\n')
    return 0


if __name__ == '__main__':
    sys.exit(main())
