"""
Timestep analysis (TopSpark step 1): measure a model over a grid of timestep counts.

For every T of the grid, on the same held-out samples: accuracy with its 95 % Wilson interval,
inference latency per sample on this machine, mean operation and spike counts, and energy per
inference under a preset; optionally the same for one on-line learning step at T (on a copy of
the model, so the model itself is unchanged) and the effect of early exit on top of T. The
result is a :class:`~topspark_ros.core.topspark.profile.TimestepProfile`
(:func:`topspark_ros.core.plotting.plot_profile` draws it). Inference runs through
:func:`~topspark_ros.core.topspark.evaluate.evaluate`, batch ``k`` seeded ``seed + k``.
"""

import copy
import datetime
import math
import os
import platform
import time
from typing import Callable, Mapping, Optional, Sequence

import numpy as np

import topspark_ros
from topspark_ros.core.energy import EnergyModel
from topspark_ros.core.topspark.calibration import confidence_bins
from topspark_ros.core.topspark.early_exit import EarlyExit
from topspark_ros.core.topspark.evaluate import evaluate
from topspark_ros.core.topspark.profile import ProfileEntry, TimestepProfile, wilson_interval


TIMING_S = 0.5
"""A sweep times each T's inference again until this many seconds were timed (see below)."""
MAX_TIMING_RUNS = 10
"""The most runs :func:`measure_timesteps` times a T's inference over."""


def cpu_model() -> str:
    """Return this computer's CPU model (``/proc/cpuinfo``; elsewhere what ``platform`` says)."""
    try:
        with open('/proc/cpuinfo') as info:
            for line in info:
                if line.startswith('model name'):
                    return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_description() -> str:
    """Return a one-line description of this computer (CPU model, cores, torch)."""
    import torch
    return (f'{cpu_model()}, {os.cpu_count()} CPUs, {platform.machine()}, '
            f'torch {torch.__version__}')


def measure_timesteps(model, images: np.ndarray, labels: np.ndarray, timesteps: int, *,
                      energy_model: EnergyModel, batch_size: int = 256, seed: int = 0,
                      params: Optional[dict] = None,
                      train_images: Optional[np.ndarray] = None,
                      early_exit: Optional[EarlyExit] = None, calibrate: bool = False,
                      timing_s: float = 0.0,
                      measured: Callable[[int], None] = lambda n: None) -> ProfileEntry:
    """
    Return the :class:`ProfileEntry` of ``model`` at ``timesteps`` (see the module doc).

    ``calibrate``: also keep the results by confidence (``confidence_bins``, for calibrated
    scores: :mod:`~topspark_ros.core.topspark.calibration`; with ``early_exit``, that rule's
    too: ``early_exit_confidence_bins``); for ``labels`` that are labels. The entry records
    the ``early_exit`` rule its early-exit figures are of. ``measured(n)``: ``n`` more images
    classified (per batch of the accuracy's run).

    ``timing_s``: a run of the images shorter than this is timed again, up to
    :data:`MAX_TIMING_RUNS` runs or ``timing_s`` in all, and ``latency_ms`` is the fastest run's
    (timed once, a few hundred images gave 0.32 to 0.48 ms at every T, in no order, and a
    latency bound then chose a larger T; a review). The figures are the first run's (the
    runs are seeded alike).
    """
    run_params = None if params is None else model.params_for_values(params)
    run = evaluate(model, images, timesteps=timesteps, batch_size=batch_size, params=run_params,
                   seed=seed, progress=measured)
    seconds = spent = run.seconds
    for _ in range(MAX_TIMING_RUNS - 1):
        if spent >= timing_s:
            break
        again = evaluate(model, images, timesteps=timesteps, batch_size=batch_size,
                         params=run_params, seed=seed).seconds
        seconds, spent = min(seconds, again), spent + again
    correct = int(np.sum(run.predicted == labels))
    n = len(labels)
    ops = run.mean_energy_ops()
    spikes = float(np.mean(run.spike_count))
    extra = {}
    if calibrate:
        extra['confidence_bins'] = confidence_bins(run.scores, run.predicted, labels)
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
        exits = evaluate(model, images, timesteps=timesteps, batch_size=batch_size,
                         params=run_params, seed=seed, early_exit=early_exit)
        extra.update(early_exit_accuracy=float(np.mean(exits.predicted == labels)),
                     early_exit_mean_timesteps=float(np.mean(exits.timesteps_used)),
                     early_exit_margin=float(early_exit.margin),
                     early_exit_min_steps=int(early_exit.min_steps))
        if calibrate:
            extra['early_exit_confidence_bins'] = confidence_bins(exits.scores, exits.predicted,
                                                                  labels)
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
          executor=None, timing_s: float = TIMING_S,
          progress: Callable[[ProfileEntry], None] = lambda entry: None,
          measured: Callable[[int], None] = lambda n: None) -> TimestepProfile:
    """
    Measure ``model`` at every T of ``grid``; return the profile (entries ascending in T).

    ``params_for(T)`` gives the enhanced parameters measured at T (None: the model's own);
    ``enhancement`` is the record of how they were found, copied into the profile.

    With labels each entry keeps its results by confidence (``confidence_bins``), from which
    the classifier publishes calibrated scores (:mod:`~topspark_ros.core.topspark.calibration`).
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

    ``timing_s``: each T's inference is timed over at least this long, or
    :data:`MAX_TIMING_RUNS` runs (:func:`measure_timesteps`).

    ``executor`` (:mod:`~topspark_ros.core.topspark.fanout`, e.g. Ray) measures the T
    concurrently, each after its own warm-up; the figures are the same but the latencies share the
    machines.

    ``progress(entry)`` is called as each T is done; ``measured(n)`` as ``n`` more images are
    classified at a T (per batch; with an executor, all of a T's when it is done), so that a
    long T shows progress.
    """
    grid = sorted({int(t) for t in grid}, reverse=True)
    if not grid or grid[-1] < 1:
        raise ValueError(f'the timestep grid must hold positive counts, got {grid}')
    calibrate = labels is not None
    if labels is None:
        reference_timesteps = int(reference_timesteps or grid[0])
        if reference_timesteps < 1:
            raise ValueError(f'reference_timesteps must be >= 1, got {reference_timesteps}')
        labels = reference_predictions(model, images, reference_timesteps,
                                       params=params_for(reference_timesteps),
                                       batch_size=batch_size, seed=seed)
    elif reference_timesteps is not None:
        raise ValueError('reference_timesteps is for label-free sweeps (labels None)')
    _warm(model, images, train_images, seed, early_exit)
    entries = []
    if executor is not None:
        def done(index: int, entry) -> None:  # as each T's task returns (all at the end
            measured(len(images))  # before: 0 % until the whole sweep was done; a review)
            progress(entry)
        entries = executor.run(_warm_and_measure, [(t, params_for(t)) for t in grid], shared={
            'model': model, 'images': images, 'labels': labels, 'energy_model': energy_model,
            'batch_size': batch_size, 'seed': seed, 'train_images': train_images,
            'early_exit': early_exit, 'calibrate': calibrate, 'timing_s': timing_s},
            on_result=done)
    else:
        for timesteps in grid:
            entry = measure_timesteps(model, images, labels, timesteps,
                                      energy_model=energy_model, batch_size=batch_size,
                                      seed=seed, params=params_for(timesteps),
                                      train_images=train_images, early_exit=early_exit,
                                      calibrate=calibrate, timing_s=timing_s,
                                      measured=measured)
            entries.append(entry)
            progress(entry)
    return TimestepProfile(
        model_path=model_path, model_sha256=model_sha256, model_family=model.checkpoint_family,
        dataset=dataset, split=split, n_samples=len(labels), machine=machine_description(),
        energy_preset=energy_model.preset.name,
        created=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds'),
        package_version=topspark_ros.__version__, entries=tuple(entries),
        ann_macs=model.ann_ops().macs, enhancement=enhancement,
        reference_timesteps=reference_timesteps)


def _warm(model, images: np.ndarray, train_images: Optional[np.ndarray], seed: int,
          early_exit: Optional[EarlyExit]) -> None:
    """
    Compile and warm every code path of a measurement once, so no T's latency includes it.

    Each in the form the measurement calls it: a batch takes another path, and another
    compiled kernel, than a single frame (a one-frame warm-up left batched learning's kernel
    to load within the first T's training time, 30 ms against 2 ms a call after it).
    Learning runs on a copy of ``model``.
    """
    warm = images[:min(len(images), 2)]
    model.infer(warm, timesteps=2, seed=seed)
    if early_exit is not None:
        model.infer(warm, timesteps=2, seed=seed, early_exit=early_exit)
    if train_images is not None and len(train_images):
        copy.deepcopy(model).learn(train_images[:min(len(train_images), 2)], timesteps=2,
                                   seed=seed)


def _warm_and_measure(item: tuple, *, model, images: np.ndarray, labels: np.ndarray,
                      seed: int, train_images: Optional[np.ndarray],
                      early_exit: Optional[EarlyExit], **options) -> ProfileEntry:
    """Warm ``model``'s code paths in this process (:func:`_warm`), then measure ``item``."""
    timesteps, params = item
    _warm(model, images, train_images, seed, early_exit)
    return measure_timesteps(model, images, labels, timesteps, seed=seed, params=params,
                             train_images=train_images, early_exit=early_exit, **options)


def measure_confidence_bins(model, images: np.ndarray, labels: np.ndarray, entry: ProfileEntry,
                            *, batch_size: int = 256, seed: int = 0,
                            measured: Callable[[int], None] = lambda n: None):
    """
    Return the results by confidence of the run ``entry`` measured (``confidence_bins``).

    ``model`` runs over ``images`` at the entry's T with its parameters, the seeds and batches
    of :func:`measure_timesteps`, which must give the entry's accuracy on ``labels`` and its
    mean spike count (to the last digits: a fingerprint of the run, where an accuracy of 0 at
    a T without output spikes matched any images): else the images, seed, batch size, values
    or engine are not those of the profile (ValueError, saying so).
    """
    run, correct = _run_again(model, images, labels, entry, batch_size=batch_size, seed=seed,
                              measured=measured)
    spikes = float(np.mean(run.spike_count))
    right = round(entry.accuracy * entry.n_samples)
    if not _same_run(len(labels), correct, spikes, entry, right, entry.spikes):
        raise ValueError(
            f'T={entry.timesteps}: {correct} of {len(labels)} right and {spikes:.6g} spikes an '
            f'input here, the profile says {right} of {entry.n_samples} and '
            f'{entry.spikes:.6g}: not the run it measured (other images, seed, batch size, '
            'values or engine); sweep it again instead')
    return confidence_bins(run.scores, run.predicted, labels)


def measure_early_exit_bins(model, images: np.ndarray, labels: np.ndarray,
                            entry: ProfileEntry, early_exit: EarlyExit, *, batch_size: int = 256,
                            seed: int = 0, measured: Callable[[int], None] = lambda n: None):
    """
    Return the results by confidence of the entry's early-exit run, if ``early_exit`` was its rule.

    As :func:`measure_confidence_bins`, for the early-exit figures: the run with
    ``early_exit`` must give the entry's ``early_exit_accuracy`` on ``labels`` and its mean
    steps to the last digits (which also tells whether a profile that did not record its rule
    was measured with this one); else ValueError, saying so.
    """
    if entry.early_exit_accuracy is None:
        raise ValueError(f'T={entry.timesteps}: the profile has no early-exit figures')
    run, correct = _run_again(model, images, labels, entry, batch_size=batch_size, seed=seed,
                              measured=measured, early_exit=early_exit)
    steps = float(np.mean(run.timesteps_used))
    right = round(entry.early_exit_accuracy * entry.n_samples)
    if not _same_run(len(labels), correct, steps, entry, right, entry.early_exit_mean_timesteps):
        raise ValueError(
            f'T={entry.timesteps}, early exit (margin {early_exit.margin:g}, from step '
            f'{early_exit.min_steps}): {correct} of {len(labels)} right in {steps:.6g} steps '
            f'an input here, the profile says {right} of {entry.n_samples} in '
            f'{entry.early_exit_mean_timesteps:.6g}: not the run it measured (another rule, '
            'images, seed, batch size, values or engine); give the --early-exit-margin and '
            '--early-exit-min-steps of its sweep, or sweep it again')
    return confidence_bins(run.scores, run.predicted, labels)


def _same_run(n: int, correct: int, figure: float, entry: ProfileEntry, right: int,
              recorded: float) -> bool:
    """Return whether a run again of ``entry`` is the run it measured (its fingerprint)."""
    return n == entry.n_samples and correct == right and math.isclose(
        figure, recorded, rel_tol=1e-9, abs_tol=1e-12)


def _run_again(model, images: np.ndarray, labels: np.ndarray, entry: ProfileEntry, *,
               batch_size: int, seed: int, measured: Callable[[int], None],
               early_exit: Optional[EarlyExit] = None) -> tuple:
    """Return ``(run, right)``: the entry's T run again with its values, as the sweep ran it."""
    params = None if entry.params is None else model.params_for_values(entry.params)
    run = evaluate(model, images, timesteps=entry.timesteps, batch_size=batch_size,
                   params=params, seed=seed, early_exit=early_exit, progress=measured)
    return run, int(np.sum(run.predicted == labels))


def reference_predictions(model, images: np.ndarray, timesteps: int, *,
                          params: Optional[dict] = None, batch_size: int = 256,
                          seed: int = 0) -> np.ndarray:
    """
    Return the model's predictions ``[N]`` at ``timesteps``, as a label-free sweep's targets.

    The batches and seeds are those :func:`measure_timesteps` uses, so the entry of the
    reference T agrees with them on every sample.
    """
    run_params = None if params is None else model.params_for_values(params)
    return evaluate(model, images, timesteps=timesteps, batch_size=batch_size,
                    params=run_params, seed=seed).predicted
