"""
Timestep analysis (TopSpark step 1): measure a model over a grid of timestep counts.

For every T of the grid, on the same held-out samples: accuracy with its 95 % Wilson interval,
inference latency per sample on this machine, mean operation and spike counts, and energy per
inference under a preset; optionally the same for one on-line learning step at T (on a copy of
the model, so the model itself is unchanged) and the effect of early exit on top of T. The
result is a :class:`~topspark_ros.core.topspark.profile.TimestepProfile`.
"""

import copy
import datetime
import os
import platform
import time
from typing import Callable, Mapping, Optional, Sequence

import numpy as np

import topspark_ros
from topspark_ros.core.energy import EnergyModel, OpCounts
from topspark_ros.core.topspark.early_exit import EarlyExit
from topspark_ros.core.topspark.profile import ProfileEntry, TimestepProfile, wilson_interval


def machine_description() -> str:
    """Return a one-line description of this computer (CPU model, cores, torch)."""
    cpu = platform.processor() or platform.machine()
    try:
        with open('/proc/cpuinfo') as info:
            for line in info:
                if line.startswith('model name'):
                    cpu = line.split(':', 1)[1].strip()
                    break
    except OSError:
        pass
    import torch
    return f'{cpu}, {os.cpu_count()} CPUs, {platform.machine()}, torch {torch.__version__}'


def _mean_ops(results) -> OpCounts:
    total, n = OpCounts(), 0
    for result in results:
        for i in range(len(result.timesteps_used)):
            total = total + result.energy_ops(i)
            n += 1
    return total * (1.0 / max(n, 1))


def _infer_all(model, images, timesteps, params, batch_size, seed, early_exit=None):
    """Return ``(results, seconds)`` of batched inference over ``images``."""
    results = []
    start = time.perf_counter()
    for k, first in enumerate(range(0, len(images), batch_size)):
        results.append(model.infer(images[first:first + batch_size], timesteps=timesteps,
                                   params=params, seed=seed + k, early_exit=early_exit))
    return results, time.perf_counter() - start


def measure_timesteps(model, images: np.ndarray, labels: np.ndarray, timesteps: int, *,
                      energy_model: EnergyModel, batch_size: int = 256, seed: int = 0,
                      params: Optional[dict] = None,
                      train_images: Optional[np.ndarray] = None,
                      early_exit: Optional[EarlyExit] = None) -> ProfileEntry:
    """Return the :class:`ProfileEntry` of ``model`` at ``timesteps`` (see the module doc)."""
    run_params = None if params is None else model.params_for_values(params)
    results, seconds = _infer_all(model, images, timesteps, run_params, batch_size, seed)
    predicted = np.concatenate([r.predicted for r in results])
    correct = int(np.sum(predicted == labels))
    n = len(labels)
    ops = _mean_ops(results)
    spikes = float(np.mean(np.concatenate([r.spike_count for r in results])))
    extra = {}
    if train_images is not None and len(train_images):
        learner = copy.deepcopy(model)
        start = time.perf_counter()
        learnt = learner.learn(train_images, timesteps=timesteps, params=run_params, seed=seed)
        train_seconds = time.perf_counter() - start
        train_ops = learnt.ops.mean_energy_ops()
        extra.update(train_latency_ms=1e3 * train_seconds / len(train_images),
                     train_ops=train_ops,
                     train_energy_j=energy_model.estimate(train_ops).compute_j)
    if early_exit is not None:
        exits, _ = _infer_all(model, images, timesteps, run_params, batch_size, seed,
                              early_exit=early_exit)
        exit_predicted = np.concatenate([r.predicted for r in exits])
        extra.update(early_exit_accuracy=float(np.mean(exit_predicted == labels)),
                     early_exit_mean_timesteps=float(np.mean(np.concatenate(
                         [r.timesteps_used for r in exits]))))
    return ProfileEntry(
        timesteps=int(timesteps), accuracy=correct / n, accuracy_ci95=wilson_interval(correct, n),
        n_samples=n, latency_ms=1e3 * seconds / n, spikes=spikes,
        energy_j=energy_model.estimate(ops).compute_j, ops=ops,
        params=None if params is None else dict(params), **extra)


def sweep(model, images: np.ndarray, labels: Optional[np.ndarray], grid: Sequence[int], *,
          model_path: str, model_sha256: str, dataset: str, split: str,
          energy_model: EnergyModel, batch_size: int = 256, seed: int = 0,
          params_for: Callable[[int], Optional[dict]] = lambda t: None,
          train_images: Optional[np.ndarray] = None, early_exit: Optional[EarlyExit] = None,
          enhancement: Optional[Mapping] = None, reference_timesteps: Optional[int] = None,
          executor=None,
          progress: Callable[[ProfileEntry], None] = lambda entry: None) -> TimestepProfile:
    """
    Measure ``model`` at every T of ``grid``; return the profile (entries ascending in T).

    ``params_for(T)`` gives the enhanced parameters measured at T (None: the model's own);
    ``enhancement`` is the record of how they were found, copied into the profile.

    Without labels (``labels`` None: unlabelled deployment data, e.g. a bag from the field)
    the sweep is label-free: the model's own predictions at ``reference_timesteps`` (default:
    the largest T of the grid), with that T's parameters and the same seeds, serve as the
    targets, so each entry's ``accuracy`` (and early-exit accuracy) is the *agreement*
    ``g(T)`` with the full-T prediction, with its Wilson interval. When to trust it: for any
    labels, ``|accuracy(T) - accuracy(T_ref)| <= 1 - g(T)`` (a sample can change from right
    to wrong only by changing its prediction), so a controller bounding the agreement drop
    bounds the accuracy drop by the same amount; it says nothing about ``accuracy(T_ref)``
    itself, which only labelled data measures (on data unlike the training data a model can
    agree with itself and still be wrong).

    ``executor`` (:mod:`~topspark_ros.core.topspark.fanout`, e.g. Ray) measures the T
    concurrently, each after its own warm-up; the figures are the same but the latencies share the
    machines.
    """
    grid = sorted({int(t) for t in grid}, reverse=True)
    if not grid or grid[-1] < 1:
        raise ValueError(f'the timestep grid must hold positive counts, got {grid}')
    if labels is None:
        reference_timesteps = int(reference_timesteps or grid[0])
        if reference_timesteps < 1:
            raise ValueError(f'reference_timesteps must be >= 1, got {reference_timesteps}')
        labels = reference_predictions(model, images, reference_timesteps,
                                       params=params_for(reference_timesteps),
                                       batch_size=batch_size, seed=seed)
    elif reference_timesteps is not None:
        raise ValueError('reference_timesteps is for label-free sweeps (labels None)')
    # Compile and warm every code path once, so no T's latency includes it.
    warm = images[:min(len(images), 2)]
    model.infer(warm, timesteps=2, seed=seed)
    if early_exit is not None:
        model.infer(warm, timesteps=2, seed=seed, early_exit=early_exit)
    if train_images is not None and len(train_images):
        copy.deepcopy(model).learn(train_images[:1], timesteps=2, seed=seed)
    entries = []
    if executor is not None:
        entries = executor.run(_warm_and_measure, [(t, params_for(t)) for t in grid], shared={
            'model': model, 'images': images, 'labels': labels, 'energy_model': energy_model,
            'batch_size': batch_size, 'seed': seed, 'train_images': train_images,
            'early_exit': early_exit})
        for entry in entries:
            progress(entry)
    else:
        for timesteps in grid:
            entry = measure_timesteps(model, images, labels, timesteps,
                                      energy_model=energy_model, batch_size=batch_size,
                                      seed=seed, params=params_for(timesteps),
                                      train_images=train_images, early_exit=early_exit)
            entries.append(entry)
            progress(entry)
    return TimestepProfile(
        model_path=model_path, model_sha256=model_sha256, model_family=model.checkpoint_family,
        dataset=dataset, split=split, n_samples=len(labels), machine=machine_description(),
        energy_preset=energy_model.preset.name,
        created=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds'),
        package_version=topspark_ros.__version__, entries=tuple(entries),
        enhancement=enhancement, reference_timesteps=reference_timesteps)


def _warm_and_measure(item: tuple, *, model, images: np.ndarray, labels: np.ndarray,
                      seed: int, train_images: Optional[np.ndarray],
                      early_exit: Optional[EarlyExit], **options) -> ProfileEntry:
    """Warm ``model``'s code paths in this process, then measure ``item = (T, params)``."""
    timesteps, params = item
    warm = images[:min(len(images), 2)]
    model.infer(warm, timesteps=2, seed=seed)
    if early_exit is not None:
        model.infer(warm, timesteps=2, seed=seed, early_exit=early_exit)
    return measure_timesteps(model, images, labels, timesteps, seed=seed, params=params,
                             train_images=train_images, early_exit=early_exit, **options)


def reference_predictions(model, images: np.ndarray, timesteps: int, *,
                          params: Optional[dict] = None, batch_size: int = 256,
                          seed: int = 0) -> np.ndarray:
    """
    Return the model's predictions ``[N]`` at ``timesteps``, as a label-free sweep's targets.

    The batches and seeds are those :func:`measure_timesteps` uses, so the entry of the
    reference T agrees with them on every sample.
    """
    run_params = None if params is None else model.params_for_values(params)
    results, _ = _infer_all(model, images, timesteps, run_params, batch_size, seed)
    return np.concatenate([r.predicted for r in results])


def plot_profile(profile: TimestepProfile, path: str) -> None:
    """Draw accuracy (with its interval), latency and energy against T into a PNG."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    t = np.array(profile.timesteps)
    entries = profile.entries
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    acc = np.array([e.accuracy for e in entries]) * 100
    low = np.array([e.accuracy_ci95[0] for e in entries]) * 100
    high = np.array([e.accuracy_ci95[1] for e in entries]) * 100
    axes[0].errorbar(t, acc, yerr=[acc - low, high - acc], marker='o', capsize=3,
                     label='inference')
    if all(e.early_exit_accuracy is not None for e in entries):
        axes[0].plot([e.early_exit_mean_timesteps for e in entries],
                     [e.early_exit_accuracy * 100 for e in entries], 's--',
                     label='early exit (x: mean steps used)')
    axes[0].set_ylabel('accuracy (%)')
    axes[0].legend(fontsize=8)
    axes[1].plot(t, [e.latency_ms for e in entries], 'o-', label='inference')
    if all(e.train_latency_ms is not None for e in entries):
        axes[1].plot(t, [e.train_latency_ms for e in entries], 's-', label='training step')
    axes[1].set_ylabel('latency per sample (ms)')
    axes[1].legend(fontsize=8)
    axes[2].plot(t, [e.energy_j * 1e6 for e in entries], 'o-', label='inference')
    if all(e.train_energy_j is not None for e in entries):
        axes[2].plot(t, [e.train_energy_j * 1e6 for e in entries], 's-', label='training step')
    axes[2].set_ylabel(f'energy per sample (uJ, {profile.energy_preset})')
    axes[2].legend(fontsize=8)
    for ax in axes:
        ax.set_xlabel('timesteps T')
        ax.set_xscale('log', base=2)
        ax.grid(alpha=0.3)
    if profile.agreement_based:
        axes[0].set_ylabel(f'agreement with T={profile.reference_timesteps} (%)')
    fig.suptitle(f'{os.path.basename(profile.model_path)} on {profile.dataset} '
                 f'{profile.split} ({profile.n_samples} samples'
                 + (', no labels)' if profile.agreement_based else ')'))
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
