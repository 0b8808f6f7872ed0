"""
Measure a converted checkpoint: ANN vs SNN accuracy per T, compute energy, CPU latency.

Usage: ``dev/in_env.sh python dev/measure_converted.py MODEL.json [--n-eval N] [--threads K]``.
Prints one JSON object (the figures of docs/results-converted.md).
"""

import argparse
import json
import os
import statistics
import time

import numpy as np

from topspark_ros.core.checkpoint import load_checkpoint
from topspark_ros.core.converted.train import ann_accuracy, calibrate_threshold_scale
from topspark_ros.core.data.idx import find_dataset_dir, load_mnist_family
from topspark_ros.core.energy import EnergyModel
from topspark_ros.core.topspark.early_exit import EarlyExit
from topspark_ros.core.topspark.evaluate import evaluate
from topspark_ros.core.topspark.sweep import machine_description
import torch

BATCH = 500
"""Inputs per inference call of the accuracy and energy figures."""


def main() -> None:
    """Run the measurements and print them as JSON."""
    parser = argparse.ArgumentParser()
    parser.add_argument('model')
    parser.add_argument('--n-eval', type=int, default=10000)
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--grid', default='1,2,4,8')
    parser.add_argument('--latency-frames', type=int, default=300)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model, meta = load_checkpoint(args.model)
    test = load_mnist_family(find_dataset_dir('fashion-mnist'), 'test')
    images, labels = test.images[:args.n_eval], test.labels[:args.n_eval]
    energy = EnergyModel('cmos45_fp32')
    ann_ops = model.ann_ops()
    ann_j = energy.estimate(ann_ops).compute_j
    out = {'model': args.model, 'machine': machine_description(),
           'load_average': os.getloadavg(), 'torch_threads': args.threads,
           'n_eval': int(len(labels)), 'preset': energy.preset.name,
           'ann_accuracy': ann_accuracy(model, images, labels), 'ann_ops': ann_ops.as_dict(),
           'ann_energy_j': ann_j, 'snn': {}}
    train = load_mnist_family(find_dataset_dir('fashion-mnist'), 'train')
    # Calibration images: the last 2000 training images (the test set is never used for it).
    calib_x, calib_y = train.images[-2000:], train.labels[-2000:]
    for t in [int(v) for v in args.grid.split(',')]:
        run = evaluate(model, images, timesteps=t, batch_size=BATCH)
        ops = run.mean_energy_ops()
        snn_j = energy.estimate(ops).compute_j
        exits = evaluate(model, images, timesteps=t, batch_size=BATCH,
                         early_exit=EarlyExit(margin=2.0, min_steps=1))
        out['snn'][t] = {
            'accuracy': float(np.mean(run.predicted == labels)),
            'spikes_per_input': float(np.mean(run.spike_count)),
            'ops': ops.as_dict(), 'energy_j': snn_j, 'ann_over_snn_energy': ann_j / snn_j,
            'early_exit_margin2_accuracy': float(np.mean(exits.predicted == labels)),
            'early_exit_margin2_mean_steps': float(np.mean(exits.timesteps_used))}
        scale, scores = calibrate_threshold_scale(model, calib_x, calib_y, t)
        calibrated = evaluate(model, images, timesteps=t, batch_size=BATCH,
                              params=model.params.replace(threshold_scale=scale))
        out['snn'][t].update(
            calibrated_threshold_scale=scale, calibration_accuracy=scores,
            calibrated_accuracy=float(np.mean(calibrated.predicted == labels)),
            calibrated_energy_j=energy.estimate(calibrated.mean_energy_ops()).compute_j)
    # Latency at T = 2: one frame per call, and batches of 256 (per frame).
    frames = images[:args.latency_frames]
    model.infer(frames[:2], timesteps=2)
    single = []
    for frame in frames:
        start = time.perf_counter()
        model.infer(frame[None], timesteps=2)
        single.append(1e3 * (time.perf_counter() - start))
    start = time.perf_counter()
    n_batched = min(len(images), 2560)
    for i in range(0, n_batched, 256):
        model.infer(images[i:i + 256], timesteps=2)
    batched = 1e3 * (time.perf_counter() - start) / n_batched
    with torch.no_grad():
        x = images[:256]
        start = time.perf_counter()
        for _ in range(10):
            model.ann_logits(x)
        ann_batched = 1e3 * (time.perf_counter() - start) / 2560
        ann_single = []
        for frame in frames:
            start = time.perf_counter()
            model.ann_logits(frame[None])
            ann_single.append(1e3 * (time.perf_counter() - start))
    out['latency_t2_ms'] = {
        'batch1_median': statistics.median(single),
        'batch1_p90': float(np.percentile(single, 90)),
        'batch256_per_frame': batched,
        'ann_batch1_median': statistics.median(ann_single),
        'ann_batch256_per_frame': ann_batched}
    print(json.dumps(out, indent=1, sort_keys=True))


if __name__ == '__main__':
    main()
