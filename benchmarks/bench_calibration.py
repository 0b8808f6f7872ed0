"""
Calibrated scores on images they were not measured on: raw shares against profile bins.

For each shipped Fashion-MNIST model and its profile, at each T of the profile (with its
enhanced parameters), the test images are classified once (the sweep's batches and seeds);
a seeded half of them (A) gives the results by confidence, as ``topspark sweep`` keeps them,
and the other half (B) is scored two ways: the best class's share of the evidence (what
``vision_msgs`` carried before) and the calibrated score from A's bins (what the classifier
publishes with such a profile). Printed per T, on B: the expected calibration error (ECE:
results in ten equal-width score bins, the gap between mean score and accuracy weighted by
the bin's share), the Brier score of the best class, and for the rule "act when score >= 0.9"
how many results pass and how many of those are wrong. ``--json`` prints the figures.

    dev/in_env.sh python benchmarks/bench_calibration.py
"""

import argparse
import json
import os
import sys

import numpy as np
from topspark_ros.core.checkpoint import load_checkpoint
from topspark_ros.core.data.dataset import split_indices
from topspark_ros.core.data.idx import find_dataset_dir, load_mnist_family
from topspark_ros.core.topspark.calibration import calibrated, confidence_bins, evidence_shares
from topspark_ros.core.topspark.evaluate import evaluate
from topspark_ros.core.topspark.profile import load_profile
from topspark_ros.core.topspark.sweep import machine_description

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODELS = ('stdp_fmnist_n400', 'converted_fmnist_vgg')


def ece(scores: np.ndarray, right: np.ndarray, bins: int = 10) -> float:
    """Return the expected calibration error of ``scores`` against ``right`` (equal widths)."""
    which = np.minimum((scores * bins).astype(int), bins - 1)
    total = 0.0
    for k in range(bins):
        inside = which == k
        if inside.any():
            total += inside.mean() * abs(scores[inside].mean() - right[inside].mean())
    return float(total)


def rule(scores: np.ndarray, right: np.ndarray, threshold: float) -> tuple:
    """Return (share of results passing ``score >= threshold``, share of those wrong)."""
    passing = scores >= threshold
    return float(passing.mean()), float(1.0 - right[passing].mean()) if passing.any() \
        else float('nan')


def measure(name: str, images: np.ndarray, labels: np.ndarray, n: int, seed: int,
            threshold: float) -> list:
    """Return one row per T of ``name``'s profile (module docstring)."""
    model, _ = load_checkpoint(os.path.join(ROOT, 'models', f'{name}.json'))
    profile = load_profile(os.path.join(ROOT, 'models', f'{name}.profile.yaml'))
    (idx,) = split_indices(len(images), [min(n, len(images))], seed)
    half_a, half_b = split_indices(len(idx), [len(idx) // 2, len(idx) - len(idx) // 2],
                                   seed + 1)
    rows = []
    for entry in profile.entries:
        params = None if entry.params is None else model.params_for_values(entry.params)
        run = evaluate(model, images[idx], timesteps=entry.timesteps, params=params, seed=seed)
        predicted, scores, truth = run.predicted, run.scores, labels[idx]
        bins = confidence_bins(scores[half_a], predicted[half_a], truth[half_a])
        shares = evidence_shares(scores[half_b])
        classed = predicted[half_b] >= 0
        share = np.where(classed, shares[np.arange(len(half_b)),
                                         np.maximum(predicted[half_b], 0)], 0.0)
        right = (predicted[half_b] == truth[half_b]).astype(float)
        calib = np.array([calibrated(bins, s) or 0.0 if c else 0.0
                          for s, c in zip(share, classed)])
        row = {'model': name, 'timesteps': entry.timesteps, 'n_a': len(half_a),
               'n_b': len(half_b), 'accuracy_b': float(right.mean()),
               'share_1_b': float(np.mean(share == 1.0))}
        for key, score in (('share', share), ('calibrated', calib)):
            passing, wrong = rule(score, right, threshold)
            row.update({f'{key}_ece': ece(score, right),
                        f'{key}_brier': float(np.mean((score - right) ** 2)),
                        f'{key}_pass': passing, f'{key}_wrong': wrong})
        rows.append(row)
    return rows


def main() -> None:
    """Measure every model and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--models', default=','.join(MODELS),
                        help='shipped models (names under models/) with profiles')
    parser.add_argument('--n', type=int, default=10000, help='test images (both halves)')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--threshold', type=float, default=0.9, help='the rule score >= X')
    parser.add_argument('--json', action='store_true')
    args = parser.parse_args()
    test = load_mnist_family(find_dataset_dir('fashion-mnist'), 'test')
    rows = []
    for name in args.models.split(','):
        rows += measure(name, test.images, test.labels, args.n, args.seed, args.threshold)
    if args.json:
        json.dump(rows, sys.stdout)
        print()
        return
    print(f'machine: {machine_description()}')
    print(f'command: {" ".join(sys.argv)}')
    t = f'{args.threshold:g}'
    print(f'| model | T | accuracy (B) | share 1.0 (B) | ECE share -> calibrated | '
          f'Brier share -> calibrated | pass score >= {t}: share -> calibrated | '
          f'wrong among them: share -> calibrated |')
    print('|---|---:|---:|---:|---|---|---|---|')

    def pct(value: float) -> str:
        return '-' if value != value else f'{value:.1%}'

    for r in rows:
        print(f'| {r["model"]} | {r["timesteps"]} | {r["accuracy_b"]:.1%} | '
              f'{r["share_1_b"]:.1%} | {r["share_ece"]:.3f} -> {r["calibrated_ece"]:.3f} | '
              f'{r["share_brier"]:.3f} -> {r["calibrated_brier"]:.3f} | '
              f'{pct(r["share_pass"])} -> {pct(r["calibrated_pass"])} | '
              f'{pct(r["share_wrong"])} -> {pct(r["calibrated_wrong"])} |')


if __name__ == '__main__':
    main()
