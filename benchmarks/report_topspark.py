#!/usr/bin/env python3
"""
Reproduction report of TopSpark (issue 4): the paper's headline table on Fashion-MNIST.

For every network size N and learning rule (and seed) it runs, through the ``topspark`` CLI:

1. ``train`` the full-T baseline (T = the first, largest value of ``--grid``, 350 by default);
2. ``sweep`` it over the grid with its own parameters (the plain profile);
3. ``enhance`` the parameters for the reduced T of ``--enhance-grid``;
4. ``sweep --params-from`` the enhanced profile on the TEST images (``--n-eval``): accuracy,
   latency, inference and training energy and early exit at every T with the enhanced
   parameters, all T back to back in one process (so the latency ratios share the machine's
   load as far as possible); these are the figures the table reports;
5. ``sweep --params-from --split train --n-eval <n_val>``, the same sweep on VALIDATION images:
   the ``--n-val`` training-split images the enhancement scored (both commands take the first
   n of one permutation of the training split drawn with ``--seed``:
   :func:`topspark_ros.core.data.dataset.split_indices`), with the same seed; no latency or
   training figures are used from it. Every choice below is made on these accuracies, never
   on the test images it reports;
6. picks the smallest T whose validation accuracy is within ``--tolerance-pp`` points of the
   full-T baseline's validation accuracy (:func:`pick_timesteps`: the trade-off strategy of
   :mod:`topspark_ros.core.topspark.strategy` over the swept accuracies, every step costing the
   same) and reports the test accuracy, latency and inference-energy savings at it;
7. ``train --params-from`` a new model at reduced T with the enhanced parameters (its own
   evaluation on the test images is the figure reported), measures it at that T on the same
   validation images (``sweep --grid T --split train``: the same images, seeds and so input
   spikes as the baseline's validation figure), and walks up the candidate T (those within the
   tolerance on validation) until such a model is itself within the tolerance of the baseline
   on validation (:func:`next_training_step`); the training-energy saving is the ratio of the
   energy of one training step at full T and at that T (the test sweep's figures);
8. the early-exit figure: the early-exit run with the fewest mean steps within
   ``--exit-tolerance-pp`` points of the baseline on validation (:func:`pick_early_exit`); its
   T's test figures (:func:`early_exit_at`) are reported, as a steps saving against the full T.

The row of a configuration has the test figures (``accuracy``, ``loss_pp``, ``accuracy_by_t``,
``train_accuracy``, ``early_exit``, ...) and the validation figures that chose them
(``val_accuracy``, ``val_loss_pp``, ``val_accuracy_by_t``, ``val_train_accuracy``,
``val_early_exit``, ...). The validation images are held out from the test set and from the
enhancement's scoring runs, not from the model's own training: ``train`` takes its
``--n-train`` images from the front of the same permutation (same seed), so the baseline learnt
from the validation images (without labels) and assigned its neurons' labels on them, and
validation accuracies run above test ones; every choice compares T on the same images and
input spikes, which is what it needs. (Images held out of training as well would be those
``train --eval-split train --n-eval`` takes after its training images: other images than the
enhancement scored, and off ``--n-train`` when the split is used whole, as at the full
settings.)

Every step is cached under ``--work-dir`` (default ``.cache/report``) in a folder named after the
hash of its arguments (and, for ``--data`` with a path, of the files under it: names, sizes,
modification times), so an interrupted run resumes where it stopped, a changed option or data set
re-runs only what depends on it (the validation steps have keys of their own; the steps made before
they existed keep their arguments, so their cache stays valid). A step is finished when its
``result.json`` is written (after its process exited); an unfinished step's folder is emptied (but
for the measurements an enhancement keeps as it makes them, ``*.trials.sqlite``: it resumes from
them) and the step run again, so a killed driver (even with SIGKILL: a step's process dies with it)
is resumed by running the same command again, and a step whose process was killed (OOM killer, a
lost worker) or stopped by SIGTERM or SIGHUP (a preemption) is run again at once
(``--retries``). A sweep whose latencies look stalled (a T slower per sample than a larger T,
:func:`stalled_latencies`: the machine paused the process or another job took the cores) is
measured again, a cached one too, at most ``--remeasures`` times, then kept
with ``latency_stalled`` recorded (the table marks a saving it divides "(stalled)"). Drivers may
share a cache (the full report was run so): a step is run under a lock (``<step folder>.lock``),
and a driver that finds a step another one is running waits for its result. Progress: one line on
stderr per step (started, cached, waiting, done, retried) with the elapsed time and load, and one
per finished configuration. Settings no step could run (an unknown rule, a seed given twice,
``--n-val 0``, ...) are refused before the first step.

Own data: ``--data`` (``folder:DIR``, ``bag:DIR`` with ``--topic``, ``--labels`` or
``--label-topic``; frames or events: an event data set's windows are its samples, as ``topspark
train``, ``sweep`` and ``enhance`` take them) runs the method on it; the table and plot then go
to ``--work-dir``, not into
this repository's docs (unless ``--docs`` / ``--plot`` say so), and the table gives the images
the steps used (a set smaller than ``--n-train`` / ``--n-eval`` is used whole). Each row of
``report.json`` names its baseline ``model``, its enhanced ``profile`` and each reduced-T
model (``trained``): what to deploy.

``--ray auto|ADDRESS`` runs the configurations (network size x rule x seed) as Ray tasks, one
CPU each (:mod:`topspark_ros.core.topspark.fanout`); their steps write into the same cache, so the
cluster's nodes need it on a shared file system, at the same path (one machine: nothing to
do). Each configuration runs in the driver's working directory, so relative paths (``--data
folder:objects``, ``--work-dir``) mean on a worker what they mean where the report was started
(a ``ray start`` cluster's workers start in the folder ``ray start`` ran in). Ray retries a
configuration whose worker died, and its finished steps are cached. The results are those of
the same run without it; the latencies are not, because configurations then run side by side.

It prints the headline table, writes a PNG plot and the markdown table (into ``--docs``
between the markers ``<!-- report:begin -->`` and ``<!-- report:end -->``, when that file has
them) and a JSON of everything.

Run it single-threaded and niced on a shared machine::

    export NUMBA_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
    nice -n 10 dev/in_env.sh python benchmarks/report_topspark.py

``--quick`` is a reduced run of a few minutes (small data, small budgets) to check the path.
"""

import argparse
import contextlib
import dataclasses
from dataclasses import dataclass
import datetime
import glob
import hashlib
import json
import math
import os
from pathlib import Path
import platform
import shutil
import signal
import subprocess
import sys
import time
from typing import List, Mapping, Optional, Sequence, Tuple

PAPER_AVERAGES = {'latency': 3.9, 'inference_energy': 3.3, 'training_energy': 3.5}
"""Average savings TopSpark reports within 2 % accuracy (the issue's figures to beat)."""

EARLY_EXIT_GOAL = 6.0
"""The issue's goal for the steps saving with early exit (at <= 1 point of accuracy loss)."""

LATENCY_GOAL_T = 32
"""T at which latency should fall with the steps (issue 16), measured in the plain sweep."""
LATENCY_GOAL_FRACTION = 0.7
"""Latency saving asked for at :data:`LATENCY_GOAL_T`, as a fraction of the step saving."""

MARK_BEGIN = '<!-- report:begin -->'
MARK_END = '<!-- report:end -->'


class ReportError(ValueError):
    """Bad input to the report's selection functions or options, with what to do."""


# ---------------------------------------------------------------- selection (pure, tested) --

@dataclass(frozen=True)
class StepCost:
    """
    One swept T as the trade-off strategy reads a profile entry: its accuracy, T steps of cost.

    Latency and energy are the step count itself (every step costs the same), so among the T
    within the accuracy tolerance the strategy's ``energy_saver`` mode picks the smallest.
    """

    timesteps: int
    accuracy: float

    @property
    def latency_ms(self) -> float:
        """Return the cost of T steps (one unit per step)."""
        return float(self.timesteps)

    @property
    def energy_j(self) -> float:
        """Return the cost of T steps (one unit per step)."""
        return float(self.timesteps)


@dataclass(frozen=True)
class StepProfile:
    """The swept T as a profile for the strategy: entries ascending, the largest T the baseline."""

    entries: Tuple[StepCost, ...]

    @property
    def baseline(self) -> StepCost:
        """Return the full-T entry (the largest T)."""
        return self.entries[-1]


def step_profile(accuracy: Mapping[int, float], baseline_timesteps: int,
                 tolerance_pp: float) -> tuple:
    """
    Return ``(profile, constraints)`` of the strategy for the report's accuracies per T.

    Parameters
    ----------
    accuracy : mapping int -> float
        Accuracy (fraction in [0, 1]) per timestep count T; must contain the baseline, the
        largest T.
    baseline_timesteps : int
        The full-T baseline (its own accuracy is the reference; it always qualifies).
    tolerance_pp : float
        Allowed loss in percentage points (2.0: 75.0 % -> >= 73.0 %): the constraints'
        ``max_accuracy_drop`` (a loss of exactly the tolerance qualifies; a T more accurate
        than the baseline qualifies).

    """
    from topspark_ros.core.topspark.strategy import Constraints

    if baseline_timesteps not in accuracy:
        raise ReportError(f'no accuracy for the baseline T={baseline_timesteps} (have '
                          f'{sorted(accuracy)}); sweep the baseline T too')
    if baseline_timesteps != max(accuracy):
        raise ReportError(f'the baseline T={baseline_timesteps} must be the largest T (have '
                          f'{sorted(accuracy)})')
    if tolerance_pp < 0:
        raise ReportError(f'tolerance must be >= 0 points, got {tolerance_pp}')
    entries = tuple(StepCost(int(t), float(a)) for t, a in sorted(accuracy.items()))
    return StepProfile(entries), Constraints(max_accuracy_drop=tolerance_pp / 100.0)


def pick_timesteps(accuracy: Mapping[int, float], baseline_timesteps: int,
                   tolerance_pp: float) -> int:
    """
    Return the smallest T whose accuracy is within ``tolerance_pp`` points of the baseline.

    The trade-off strategy chooses it (``energy_saver`` over :func:`step_profile`; arguments
    as there); the baseline itself when no smaller T qualifies.
    """
    from topspark_ros.core.topspark.strategy import choose_timestep, Mode

    profile, constraints = step_profile(accuracy, baseline_timesteps, tolerance_pp)
    return choose_timestep(profile, constraints, Mode.ENERGY_SAVER).timesteps


def candidates_within(accuracy: Mapping[int, float], baseline_timesteps: int,
                      tolerance_pp: float) -> List[int]:
    """Return every T within ``tolerance_pp`` points of the baseline, ascending (see above)."""
    from topspark_ros.core.topspark.strategy import feasible_timesteps

    return list(feasible_timesteps(*step_profile(accuracy, baseline_timesteps, tolerance_pp)))


def next_training_step(candidates: Sequence[int], trained: Mapping[int, float],
                       baseline_accuracy: float, tolerance_pp: float) -> Tuple[str, Optional[int]]:
    """
    Decide the next reduced-T training run from the results so far.

    Walk ``candidates`` in ascending T: the first T already trained whose model is within
    ``tolerance_pp`` points of ``baseline_accuracy`` is the answer (``('pass', T)``); a T
    trained and not within is skipped; the first T not trained yet is to be trained next
    (``('train', T)``). When every candidate failed: ``('none', None)``.
    """
    if tolerance_pp < 0:
        raise ReportError(f'tolerance must be >= 0 points, got {tolerance_pp}')
    floor = baseline_accuracy - tolerance_pp / 100.0
    for t in sorted(candidates):
        if t not in trained:
            return 'train', t
        if trained[t] >= floor - 1e-12:
            return 'pass', t
    return 'none', None


def saving(full: float, reduced: float) -> float:
    """
    Return the saving factor ``full / reduced`` (3.0: three times less), for positive figures.

    Raises ReportError for a figure that is missing, not finite or not positive.
    """
    for name, value in (('full-T', full), ('reduced-T', reduced)):
        if value is None or not math.isfinite(value) or value <= 0:
            raise ReportError(f'{name} figure must be a positive number, got {value!r}')
    return full / reduced


def latency_at_goal_t(entries: Sequence[Mapping], full_timesteps: int) -> Optional[float]:
    """
    Return latency(full T) / latency(:data:`LATENCY_GOAL_T`) of a sweep (None: T not swept).

    Taken from the plain sweep (the model's own parameters at every T, so a step costs the
    same at both T): whether latency falls with the steps, the issue's goal being
    :data:`LATENCY_GOAL_FRACTION` of the step saving.
    """
    by_t = {e['timesteps']: e.get('latency_ms') for e in entries}
    if LATENCY_GOAL_T not in by_t or full_timesteps not in by_t:
        return None
    return saving(by_t[full_timesteps], by_t[LATENCY_GOAL_T])


def pick_early_exit(entries: Sequence[Mapping], baseline_accuracy: float, full_timesteps: int,
                    tolerance_pp: float) -> Optional[dict]:
    """
    Return the early-exit operating point with the fewest mean steps within the tolerance.

    Parameters
    ----------
    entries : sequence of mappings
        Sweep entries with ``timesteps``, ``early_exit_accuracy`` (fraction) and
        ``early_exit_mean_timesteps`` (steps per input, 1 <= m <= T); entries without an
        early-exit figure are ignored.
    baseline_accuracy : float
        Accuracy of the full-T baseline without early exit (the reference).
    full_timesteps : int
        The full T, the denominator of nothing and numerator of the steps saving.
    tolerance_pp : float
        Allowed accuracy loss in points.

    Returns
    -------
    dict or None
        ``{'timesteps', 'mean_steps', 'accuracy', 'loss_pp', 'steps_saving'}``, or None when no
        entry qualifies.

    """
    floor = baseline_accuracy - tolerance_pp / 100.0
    best = None
    for e in entries:
        acc, steps = e.get('early_exit_accuracy'), e.get('early_exit_mean_timesteps')
        if acc is None or steps is None or acc < floor - 1e-12:
            continue
        if best is None or steps < best['mean_steps']:
            best = {'timesteps': int(e['timesteps']), 'mean_steps': float(steps),
                    'accuracy': float(acc), 'loss_pp': 100.0 * (baseline_accuracy - acc),
                    'steps_saving': saving(full_timesteps, steps)}
    return best


def early_exit_at(entries: Sequence[Mapping], timesteps: int, baseline_accuracy: float,
                  full_timesteps: int) -> Optional[dict]:
    """
    Return the early-exit figures of the entry at ``timesteps`` (chosen elsewhere).

    The report picks the operating point on validation images (:func:`pick_early_exit`) and
    reports the test sweep's figures at that T with this: the same keys as
    :func:`pick_early_exit` (``loss_pp`` against ``baseline_accuracy``, which may exceed the
    tolerance), or None when the entry is missing or has no early-exit figure.
    """
    for e in entries:
        if int(e['timesteps']) != int(timesteps):
            continue
        acc, steps = e.get('early_exit_accuracy'), e.get('early_exit_mean_timesteps')
        if acc is None or steps is None:
            return None
        return {'timesteps': int(timesteps), 'mean_steps': float(steps),
                'accuracy': float(acc), 'loss_pp': 100.0 * (baseline_accuracy - acc),
                'steps_saving': saving(full_timesteps, steps)}
    return None


def present(rows: Sequence[Mapping], key: str) -> List[float]:
    """Return ``row[key]`` of the rows that have it (a missing or None figure is left out)."""
    return [r[key] for r in rows if r.get(key) is not None]


def average(rows: Sequence[Mapping], key: str) -> Optional[float]:
    """Return the arithmetic mean of ``row[key]`` over rows that have it (None if none do)."""
    values = present(rows, key)
    return sum(values) / len(values) if values else None


# ------------------------------------------------------------------------- step runner --

STALL_FACTOR = 2.0
"""A T's per-sample latency above this multiple of a larger T's is taken for a stall."""


def stalled_latencies(entries: Sequence[Mapping], key: str = 'latency_ms',
                      factor: float = STALL_FACTOR) -> List[int]:
    """
    Return the T of a sweep whose per-sample latency cannot be right: a stalled measurement.

    The work per sample grows with T, so a T slower than ``factor`` times any larger T (the
    largest T: than ``factor`` times the next smaller one scaled up by the step ratio) was held
    up by something else: a machine that paused the process, or a job that took the cores (one
    enhanced sweep here measured 93.9 ms per sample at T=150 against 0.07 in a rerun). Entries
    without ``key`` are skipped.
    """
    points = sorted((int(e['timesteps']), float(e[key])) for e in entries
                    if e.get(key) is not None)
    stalled = []
    for i, (t, latency) in enumerate(points):
        if i + 1 < len(points):
            bound = factor * min(other for _, other in points[i + 1:])
        elif i > 0:
            t_before, latency_before = points[i - 1]
            bound = factor * latency_before * t / t_before
        else:
            continue
        if latency > bound:
            stalled.append(t)
    return stalled


def code_fingerprint(code: str = '') -> str:
    """
    Return ``<version>+<digest>``: the topspark_ros a step runs, its Python sources hashed.

    ``code``: the source tree given with ``--code`` ('' : the installed package). Recorded in
    every step's result, so that a cached step made by other code is said to be (the cache
    key leaves the code out, so that a long report survives an edit of the code; steps of
    several versions went into one table without a word; a review).
    """
    import topspark_ros
    root = os.path.join(os.path.abspath(code), 'topspark_ros') if code \
        else os.path.dirname(os.path.abspath(topspark_ros.__file__))
    digest = hashlib.sha256()
    for folder, dirs, files in sorted(os.walk(root, followlinks=True)):
        dirs.sort()
        for name in sorted(f for f in files if f.endswith('.py')):
            path = os.path.join(folder, name)
            digest.update(os.path.relpath(path, root).encode() + b'\0')
            with open(path, 'rb') as f:
                digest.update(f.read())
    return f'{"code" if code else topspark_ros.__version__}+{digest.hexdigest()[:12]}'


class Runner:
    """Run ``topspark`` steps as child processes, each cached in a folder keyed by its args."""

    def __init__(self, work_dir: str, verbose: bool = True, code: str = '',
                 retries: int = 2, remeasures: int = 2, data_key: str = '') -> None:
        """
        Cache under ``work_dir``; print progress to stderr when ``verbose``.

        ``code``: a source tree whose ``topspark_ros`` the steps import instead of the
        installed one (put first on their PYTHONPATH); '' for the installed package.
        ``retries``: how many times a step whose process was killed or stopped by a signal
        (:func:`_stopped_by`) is run again.
        ``remeasures``: how many times a sweep whose latencies look stalled
        (:func:`stalled_latencies`; a cached one too) is run again; after that its result is
        kept with ``latency_stalled`` set. ``data_key``: a fingerprint of the data the steps
        read (:func:`data_fingerprint`), part of every step's cache key; '' for none (the
        keys of the default data set stay those of earlier runs).
        """
        self.work_dir = work_dir
        self.cwd = os.getcwd()  # where relative paths mean what they say (config_task)
        self.key_base = _key_base(work_dir)  # how the keys spell the work dir's paths
        self.data_key = data_key
        self.env = dict(os.environ)
        if code:
            self.env['PYTHONPATH'] = os.path.abspath(code) + (
                os.pathsep + self.env['PYTHONPATH'] if self.env.get('PYTHONPATH') else '')
        self.verbose = verbose
        self.retries = int(retries)
        self.remeasures = int(remeasures)
        self.started = time.monotonic()
        self.started_at = time.time()
        self.count = 0
        self.code_key = code_fingerprint(code)
        self.other_code = []  # labels of cached steps another code made

    def say(self, text: str) -> None:
        """
        Print a progress line with the elapsed time and the load average where it runs.

        The line reaches the driver's stderr from a Ray task too (``fanout.say``); the time is
        the wall clock's since the driver started (another machine's monotonic clock counts
        from its own boot).
        """
        if self.verbose:
            from topspark_ros.core.topspark.fanout import say

            elapsed = time.time() - self.started_at
            load = os.getloadavg()[0]
            say(f'[report {elapsed / 60:6.1f} min, load {load:4.2f}] {text}')

    def step_dir(self, name: str, key: Sequence) -> str:
        """
        Return the cache folder of step ``name`` with arguments ``key``.

        A path in the work dir (an earlier step's output) is keyed as the work dir was first
        spelt (:func:`_key_base`): ``--work-dir`` spelt otherwise (absolute, relative) ran 7
        of 8 steps again, the enhancement too (a review).
        """
        key = [self._keyed(item) for item in key] + (
            [{'data': self.data_key}] if self.data_key else [])
        digest = hashlib.sha256(json.dumps(key).encode()).hexdigest()[:12]
        return os.path.join(self.work_dir, 'steps', f'{name}-{digest}')

    def _in_work_dir(self, item) -> Optional[str]:
        """
        Return the path of an earlier step's output ``item`` names, relative to the work dir.

        None for anything else: an item that is no path into ``<work dir>/steps/`` (with
        ``--work-dir .`` every argument, ``400`` too, was taken for a path in it, and every
        key changed; a review).
        """
        if not isinstance(item, str) or '{dir}' in item or os.sep not in item:
            return None
        steps = os.path.abspath(os.path.join(self.cwd, self.work_dir, 'steps'))
        path = os.path.abspath(os.path.join(self.cwd, item))
        if not path.startswith(steps + os.sep):
            return None
        return os.path.relpath(path, os.path.dirname(steps))

    def _keyed(self, item):
        inside = self._in_work_dir(item)
        return item if inside is None else os.path.join(self.key_base, inside)

    def inputs(self, items: Sequence) -> dict:
        """
        Return ``{path: SHA-256}`` of the earlier steps' outputs that ``items`` name.

        Kept with a step's result: a cached step whose inputs changed since (an earlier step
        run again) runs again. The cache was keyed by their paths alone, and a report whose
        enhancement was run again kept the sweeps of the values before (a review).
        """
        out = {}
        for item in items:
            inside = self._in_work_dir(item)
            path = None if inside is None else os.path.join(self.work_dir, inside)
            if path is not None and os.path.isfile(path):
                with open(path, 'rb') as f:
                    out[inside] = hashlib.sha256(f.read()).hexdigest()
        return out

    def cached(self, folder: str, label: str = '') -> Optional[dict]:
        """Return the stored result of a finished step, or None (a damaged one: said)."""
        path = os.path.join(folder, 'result.json')
        if not os.path.exists(path):
            return None
        try:
            with open(path) as f:
                result = json.load(f)
        except (OSError, ValueError) as exc:  # (a traceback stopped the report; a review)
            self.say(f'{label}: its stored result {path} cannot be read ({exc}): running it '
                     'again')
            return None
        return result if isinstance(result, dict) else None

    def topspark(self, name: str, argv: List[str], label: str,
                 prepare=None, extra_key: Sequence = ()) -> Tuple[dict, str]:
        """
        Run ``topspark <argv>`` (``{dir}`` in argv: the step folder) unless cached.

        The cache key is ``argv`` plus ``extra_key`` (inputs the arguments do not name, such
        as a file ``prepare(folder)`` copies into the step folder first).

        Returns ``(result, folder)``: the CLI's JSON result with ``wall_s`` and the load
        averages before and after added.
        """
        folder = self.step_dir(name, list(argv) + list(extra_key))
        self.count += 1
        with self._step_lock(folder, label):
            result = self.cached(folder, label)
            inputs = self.inputs(list(argv) + list(extra_key))
            if result is not None and result.get('inputs', inputs) != inputs:
                changed = sorted(k for k in inputs if result['inputs'].get(k) != inputs[k])
                self.say(f'{label}: cached, but made from other versions of '
                         f'{", ".join(changed)}: running it again')
                result = None
            if result is not None and not self._stalled(result, label, cached=True):
                made_by = result.get('code_key')
                if made_by != self.code_key:  # (kept: hours of work; said, and listed)
                    self.other_code.append(label)
                    self.say(f'{label}: cached ({folder}), made by other code ('
                             f'{made_by or "not recorded"}; this run: {self.code_key}): '
                             '--work-dir elsewhere, or remove the folder, to run it again')
                else:
                    self.say(f'{label}: cached ({folder})')
                return result, folder
            for remeasure in range(self.remeasures + 1):
                result = self._run(folder, argv, label, prepare)
                if not self._stalled(result, label, last=remeasure == self.remeasures):
                    break
            os.makedirs(folder, exist_ok=True)
            result['code_key'] = self.code_key  # which code made it (cached steps say so)
            result['inputs'] = inputs
            from topspark_ros.core.files import atomic_write  # (synced: renamed unsynced, a
            # power cut could leave it empty)
            atomic_write(Path(folder), None, json.dumps(result, indent=1, sort_keys=True).encode(),
                         Path(folder) / 'result.json')
        self.say(f'{label}: done in {result["wall_s"]:.0f} s')
        return result, folder

    @contextlib.contextmanager
    def _step_lock(self, folder: str, label: str):
        """
        Hold the step's lock (``<folder>.lock``, ``flock``): one driver runs a step at a time.

        Several drivers on one cache is how the full report was run; a second driver found a
        step the first was running unfinished, emptied its folder under it and failed (a user
        review). It now waits for the step and takes its result. The lock goes with the
        process that holds it, a killed driver's too.
        """
        from topspark_ros.core.files import lock

        os.makedirs(os.path.dirname(folder), exist_ok=True)
        with open(folder + '.lock', 'a') as handle:
            if not lock(handle.fileno(), blocking=False):
                self.say(f'{label}: another driver is running it; waiting for its result')
                lock(handle.fileno(), blocking=True)
            yield

    def _stalled(self, result: Mapping, label: str, cached: bool = False,
                 last: bool = False) -> bool:
        """Say and return whether a sweep's latencies look stalled (a measure to repeat)."""
        if 'latency_stalled' in result or not result.get('entries'):
            return False
        stalled = stalled_latencies(result['entries'])
        if not stalled:
            return False
        what = 'its cached result' if cached else 'it'
        if last:
            self.say(f'{label}: latency at T={stalled} still looks stalled; kept, marked')
            result['latency_stalled'] = stalled
            return False
        self.say(f'{label}: {what} measured T={stalled} slower per sample than the other T '
                 'allow (a stall); measuring again')
        return True

    def _run(self, folder: str, argv: List[str], label: str, prepare) -> dict:
        """Run the step into ``folder`` (emptied first); return its result (not yet stored)."""
        args = [a.replace('{dir}', folder) for a in argv]
        for attempt in range(self.retries + 1):
            # What an unfinished attempt left (killed driver or step) is removed first, but for
            # the measurements an enhancement keeps as it goes: it resumes from them.
            _empty_keeping_trials(folder)
            if prepare is not None:
                prepare(folder)
            self.say(f'{label}: topspark {" ".join(args)}')
            load_before = os.getloadavg()
            start = time.monotonic()
            with open(os.path.join(folder, 'stderr.log'), 'w') as log:
                proc = _run_step([sys.executable, '-m', 'topspark_ros.cli', *args, '--json'],
                                 log, self.env)
            wall = time.monotonic() - start
            signum = _stopped_by(proc.returncode)
            if signum is None or attempt == self.retries:
                break
            self.say(f'{label}: its process was killed (signal {signum}); running it '
                     f'again ({attempt + 1} of {self.retries})')
        with open(os.path.join(folder, 'stderr.log')) as log:
            logged = log.read()
        if proc.returncode != 0:
            raise RuntimeError(f'{label} failed (exit {proc.returncode}); its log ends:\n'
                               f'{logged[-2000:]}')
        for line in logged.splitlines():  # (in the step's log only, it said nothing here)
            if line.startswith('topspark: resuming:'):
                self.say(f'{label}: {line[len("topspark: "):]}')
        result = json.loads(proc.stdout.strip().splitlines()[-1])
        result.update(wall_s=wall, load_before=list(load_before),
                      load_after=list(os.getloadavg()), argv=args)
        return result


KEY_BASE_FILE = 'key_base'
"""In the work dir: how its paths are spelt in the steps' keys (:func:`_key_base`)."""


def _key_base(work_dir: str) -> str:
    """
    Return how the steps' keys spell the work dir: as the first run that made it spelt it.

    Recorded in the work dir (:data:`KEY_BASE_FILE`) by the first run, so a cache made with a
    relative ``--work-dir`` keeps its keys when given another way.
    """
    path = os.path.join(work_dir, KEY_BASE_FILE)
    try:
        with open(path, encoding='utf-8') as f:
            return f.read().strip() or work_dir
    except OSError:
        pass
    os.makedirs(work_dir, exist_ok=True)
    from topspark_ros.core.files import atomic_write

    atomic_write(Path(work_dir), None, (work_dir + '\n').encode(), Path(path))
    return work_dir


def _stopped_by(returncode: int) -> Optional[int]:
    """
    Return the signal that stopped a step's process, or None (it ended by itself).

    A negative status is the signal that killed it (SIGKILL: the OOM killer); a `topspark`
    command stopped by SIGTERM or SIGHUP (a scheduler's preemption, ``kill PID``) unwinds and
    exits with 128 + the signal, which was taken for a failure: the whole report stopped
    where the step should have been run again (a review).
    """
    if returncode < 0:
        return -returncode
    stopping = [signal.SIGTERM] + ([signal.SIGHUP] if hasattr(signal, 'SIGHUP') else [])
    if returncode - 128 in stopping:
        return returncode - 128
    return None


def _empty_keeping_trials(folder: str) -> None:
    """
    Empty (or make) a step's ``folder``, keeping its ``*.trials.sqlite`` files (journals too).

    `topspark enhance` keeps its measurements there as it makes them and the same command
    resumes from them (``core.topspark.trials``): a killed enhancement step lost hours. They
    wait in ``<folder>.trials`` meanwhile, so a driver killed in between finds them there.
    """
    aside = folder + '.trials'  # with SQLite's journal: a killed commit's rollback is in it
    for name in glob.glob(os.path.join(glob.escape(folder), '*.trials.sqlite*')):
        os.makedirs(aside, exist_ok=True)
        os.replace(name, os.path.join(aside, os.path.basename(name)))
    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(folder)
    if os.path.isdir(aside):
        for name in os.listdir(aside):
            os.replace(os.path.join(aside, name), os.path.join(folder, name))
        os.rmdir(aside)


def _run_step(argv: List[str], log, env) -> subprocess.CompletedProcess:
    """Run a step's process (stdout captured, stderr to ``log``); return it once it has ended."""
    return subprocess.run(argv, stdout=subprocess.PIPE, stderr=log, text=True, env=env,
                          preexec_fn=_die_with_parent)


def _die_with_parent() -> None:
    """In a step's child process: ask Linux to SIGKILL it when the driver dies (no orphans)."""
    try:
        import ctypes
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass  # not Linux: an orphaned step is re-run (its folder emptied) on the next run


def search_options(opts) -> List[str]:
    """
    Return the enhancement's search options that differ from ``topspark enhance``'s defaults.

    Only those: the defaults add nothing to a step's arguments, so the steps cached before
    these options existed stay valid.
    """
    from topspark_ros.core.topspark.search import DEFAULT_SAMPLER, DEFAULT_TRIAL_BATCH

    sampler = getattr(opts, 'sampler', DEFAULT_SAMPLER)  # (settings made without them)
    trial_batch = getattr(opts, 'trial_batch', DEFAULT_TRIAL_BATCH)
    return ((['--sampler', sampler] if sampler != DEFAULT_SAMPLER else [])
            + (['--trial-batch', str(trial_batch)] if trial_batch != DEFAULT_TRIAL_BATCH
               else []))


def copy_profile(source: str, folder: str) -> str:
    """Copy a profile into ``folder`` as profile.yaml, its model path made relative to it."""
    from topspark_ros.core.topspark.profile import load_profile, resolve_model_path, save_profile

    profile = load_profile(source)
    model = resolve_model_path(profile, source)
    target = os.path.join(folder, 'profile.yaml')
    save_profile(dataclasses.replace(profile, model_path=os.path.relpath(model, folder)), target)
    return target


# ------------------------------------------------------------------------ one config --

def run_config(runner: Runner, opts, neurons: int, rule: str, seed: int) -> dict:
    """Run the whole pipeline for one (N, rule, seed); return its row of the table."""
    tag = f'N={neurons} {rule} seed {seed}'
    grid = [int(t) for t in opts.grid.split(',')]
    full_t = grid[0]
    n_train = n_train_for(opts, neurons)
    common = ['--seed', str(seed), '--batch-size', str(opts.batch_size), '--quiet']
    if getattr(opts, 'data', None):  # older cached option sets have no data source
        common += ['--data', opts.data]
    train_args = ['train', '--neurons', str(neurons), '--learning-rule', rule,
                  '--n-train', str(n_train), '--n-eval', str(opts.n_eval),
                  '--eval-split', 'test']
    for option in ('topic', 'labels', 'label_topic'):  # a bag's; the model records them
        if getattr(opts, option, None):
            train_args += [f'--{option.replace("_", "-")}', getattr(opts, option)]
    base, base_dir = runner.topspark(
        'train', train_args + ['--timesteps', str(full_t), '--output', '{dir}/model.json']
        + common, f'{tag}: train baseline T={full_t} on {n_train} images')
    model = os.path.join(base_dir, 'model.json')
    sweep_args = ['sweep', '-m', model, '--grid', opts.grid, '--n-eval', str(opts.n_eval),
                  '--n-train-steps', str(opts.n_train_steps),
                  '--early-exit-margin', str(opts.early_exit_margin)]
    plain, plain_dir = runner.topspark(
        'sweep', sweep_args + ['-o', '{dir}/profile.yaml'] + common, f'{tag}: plain sweep')
    plain_profile = os.path.join(plain_dir, 'profile.yaml')
    enh, enh_dir = runner.topspark(
        'enhance', ['enhance', '-m', model, '--grid', opts.enhance_grid,
                    '--budget', str(opts.budget), '--learn-budget', str(opts.learn_budget),
                    '--n-val', str(opts.n_val), '--learn-samples', str(opts.learn_samples),
                    '--confirm-samples', str(opts.confirm_samples),
                    '-o', '{dir}/profile.yaml', '--plot', '{dir}/sensitivity.png']
        + search_options(opts) + common,
        f'{tag}: enhance T={opts.enhance_grid}',
        prepare=lambda folder: copy_profile(plain_profile, folder), extra_key=[plain_profile])
    enhanced_profile = os.path.join(enh_dir, 'profile.yaml')
    swept, _ = runner.topspark(
        'sweep', sweep_args + ['--params-from', enhanced_profile, '-o', '{dir}/profile.yaml']
        + common, f'{tag}: enhanced sweep')
    # The same sweep on the validation images the enhancement scored (module doc, step 5).
    val_args = ['--split', 'train', '--n-eval', str(opts.n_val), '--n-train-steps', '0']
    val, _ = runner.topspark(
        'sweep', ['sweep', '-m', model, '--grid', opts.grid, *val_args,
                  '--early-exit-margin', str(opts.early_exit_margin),
                  '--params-from', enhanced_profile, '-o', '{dir}/profile.yaml', '--plot', '']
        + common, f'{tag}: validation sweep on {opts.n_val} training-split images')
    entries = {e['timesteps']: e for e in swept['entries']}
    accuracy = {t: e['accuracy'] for t, e in entries.items()}
    val_accuracy = {e['timesteps']: e['accuracy'] for e in val['entries']}
    base_acc, val_base = accuracy[full_t], val_accuracy[full_t]
    # Chosen on validation, reported on test.
    chosen = pick_timesteps(val_accuracy, full_t, opts.tolerance_pp)
    candidates = candidates_within(val_accuracy, full_t, opts.tolerance_pp)
    full, at = entries[full_t], entries[chosen]
    # The images the steps used: a data set smaller than asked is used whole (own data: the
    # table claimed 60 000 and 10 000 for 630 and 180; a user review).
    row = {'neurons': neurons, 'rule': rule, 'seed': seed,
           'n_train': int(base.get('n_samples', n_train)),
           'n_eval': int(swept.get('n_samples', opts.n_eval)),
           'n_val': int(val.get('n_samples', opts.n_val)),
           'model': model, 'profile': enhanced_profile,
           'latency_stalled': sorted(set(swept.get('latency_stalled', []))
                                     & {full_t, chosen}),
           'full_timesteps': full_t, 'baseline_accuracy': base_acc,
           'baseline_train_eval_accuracy': base['accuracy'],
           'timesteps': chosen, 'accuracy': at['accuracy'],
           'loss_pp': 100.0 * (base_acc - at['accuracy']), 'params': at['params'],
           'latency_ms_full': full['latency_ms'], 'latency_ms': at['latency_ms'],
           'latency': saving(full['latency_ms'], at['latency_ms']),
           'energy_j_full': full['energy_j'], 'energy_j': at['energy_j'],
           'inference_energy': saving(full['energy_j'], at['energy_j']),
           'sweep_load': [swept['load_before'][0], swept['load_after'][0]],
           'enhance_wall_s': enh['wall_s'], 'baseline_train_wall_s': base['wall_s'],
           'accuracy_by_t': {str(t): a for t, a in sorted(accuracy.items())},
           'plain_accuracy_by_t': {str(e['timesteps']): e['accuracy']
                                   for e in plain['entries']},
           'plain_latency_ms_by_t': {str(e['timesteps']): e['latency_ms']
                                     for e in plain['entries']},
           'latency_at_goal_t': latency_at_goal_t(plain['entries'], full_t),
           'val_baseline_accuracy': val_base, 'val_accuracy': val_accuracy[chosen],
           'val_loss_pp': 100.0 * (val_base - val_accuracy[chosen]),
           'val_candidates': candidates,
           'val_accuracy_by_t': {str(t): a for t, a in sorted(val_accuracy.items())}}
    # Training at reduced T with the enhanced parameters, until a model is within tolerance
    # on the validation images; its test accuracy is reported, measured as the baseline's is
    # (a one-T test sweep: the same images and seed, so the same draws of the input spikes).
    # It was train's own evaluation, other draws: the baseline measured 3.5 points apart
    # both ways on 200 images (0.11 at 10 000, the shipped model; a review).
    val_trained, test_trained = {}, {}  # T -> accuracy of the model trained at T
    while True:
        state, t = next_training_step(candidates, val_trained, val_base, opts.tolerance_pp)
        if state != 'train':
            break
        if t == full_t:  # the baseline model itself: the reference, by definition
            val_trained[t], test_trained[t] = val_base, base_acc
            continue
        result, train_dir = runner.topspark(
            'train', train_args + ['--timesteps', str(t), '--params-from', enhanced_profile,
                                   '--output', '{dir}/model.json'] + common,
            f'{tag}: train at T={t} with enhanced parameters')
        # Its own parameters are the enhanced ones (train --params-from records them).
        checked, _ = runner.topspark(
            'sweep', ['sweep', '-m', os.path.join(train_dir, 'model.json'), '--grid', str(t),
                      *val_args, '--early-exit-margin', '0', '-o', '{dir}/profile.yaml',
                      '--plot', ''] + common,
            f'{tag}: validation accuracy of the model trained at T={t}')
        tested, _ = runner.topspark(
            'sweep', ['sweep', '-m', os.path.join(train_dir, 'model.json'), '--grid', str(t),
                      '--n-eval', str(opts.n_eval), '--n-train-steps', '0',
                      '--early-exit-margin', '0', '-o', '{dir}/profile.yaml', '--plot', '']
            + common, f'{tag}: test accuracy of the model trained at T={t}')
        val_trained[t] = checked['accuracy']
        test_trained[t] = tested['accuracy']
        row.setdefault('trained', {})[str(t)] = {'accuracy': tested['accuracy'],
                                                 'train_eval_accuracy': result['accuracy'],
                                                 'val_accuracy': checked['accuracy'],
                                                 'wall_s': result['wall_s'],
                                                 'train_seconds': result['train_seconds'],
                                                 'model': os.path.join(train_dir, 'model.json')}
    row['train_timesteps'] = t
    if t is not None:
        row.update(train_accuracy=test_trained[t],
                   train_loss_pp=100.0 * (base_acc - test_trained[t]),
                   val_train_accuracy=val_trained[t],
                   val_train_loss_pp=100.0 * (val_base - val_trained[t]),
                   train_energy_j_full=full['train_energy_j'],
                   train_energy_j=entries[t]['train_energy_j'],
                   training_energy=saving(full['train_energy_j'],
                                          entries[t]['train_energy_j']))
    val_exit = pick_early_exit(val['entries'], val_base, full_t, opts.exit_tolerance_pp)
    exit_point = (early_exit_at(swept['entries'], val_exit['timesteps'], base_acc, full_t)
                  if val_exit else None)
    row['val_early_exit'] = val_exit
    row['early_exit'] = exit_point
    row['early_exit_saving'] = exit_point['steps_saving'] if exit_point else None
    return row


def config_task(config: tuple, *, runner: Runner, opts) -> dict:
    """Run one ``(neurons, rule, seed)`` configuration (a fan-out item; see the module doc)."""
    neurons, rule, seed = config
    if os.path.isdir(runner.cwd):  # a Ray worker starts elsewhere (module doc)
        os.chdir(runner.cwd)
    before = len(runner.other_code)
    row = run_config(runner, opts, neurons, rule, seed)
    # In the row: a Ray task's runner is a copy, and its list never reached the driver (the
    # report said nothing of the steps other code made; a review).
    row['cached_steps_of_other_code'] = runner.other_code[before:]
    return row


def data_fingerprint(spec: Optional[str]) -> str:
    """
    Return a fingerprint of the files a ``--data`` source with a path reads ('' for none).

    Names, sizes and modification times of every file under the path
    (:func:`topspark_ros.core.data.cache.fingerprint`): a cached step is not reused after the
    data changed (a class deleted from a folder was served from the cache).
    """
    from topspark_ros.core.data.cache import fingerprint

    if not spec or ':' not in spec:
        return ''
    path = spec.split(':', 1)[1]
    if not os.path.exists(path):
        return ''  # the steps say what is wrong with it
    text = json.dumps(fingerprint(path), sort_keys=True)
    return hashlib.sha256(text.encode('utf-8')).hexdigest()[:16]


def n_train_for(opts, neurons: int) -> int:
    """Return the training images for ``neurons`` (``--n-train``, capped by ``--n-train-cap``)."""
    n = opts.n_train
    for item in filter(None, opts.n_train_cap.split(',')):
        size, cap = (int(x) for x in item.split(':'))
        if neurons >= size:
            n = min(n, cap)
    return n


# -------------------------------------------------------------------------- output --

def fmt(value, spec: str, suffix: str = '') -> str:
    """Format ``value`` with ``spec`` (a dash for None)."""
    return '-' if value is None else f'{value:{spec}}{suffix}'


def trained_cell(row: Mapping) -> str:
    """
    Return the 'trained at T' cell: the T that passed, and the reduced-T runs that missed.

    A run missed on its validation accuracy (what the walk compares); its test accuracy follows.
    """
    missed = [f'{t}: val {v["val_accuracy"]:.2%}, test {v["accuracy"]:.2%}' for t, v in sorted(
        (row.get('trained') or {}).items(), key=lambda kv: int(kv[0]))
        if int(t) != row['train_timesteps']]
    cell = fmt(row['train_timesteps'], 'd')
    if row['train_timesteps'] == row['full_timesteps']:
        cell += ' (the baseline: no reduced-T model within tolerance)'
    return cell + (f' (missed: {", ".join(missed)})' if missed else '')


def counts(rows: Sequence[Mapping], key: str, asked: int) -> str:
    """Return the images the rows used for ``key`` ('180', '180 to 200'; ``asked``: none)."""
    used = sorted({int(r.get(key, asked)) for r in rows}) or [asked]
    return str(used[0]) if len(used) == 1 else f'{used[0]} to {used[-1]}'


def method_line(opts, rows: Sequence[Mapping] = ()) -> str:
    """Return the table's header text: where T was picked and where figures are measured."""
    return (f'T, the reduced-T training run and the early-exit point are picked on validation '
            f'images ({counts(rows, "n_val", opts.n_val)} training-split images drawn with '
            f'the seed of the row, --seeds {opts.seeds}: those `enhance` scored; the baseline '
            'learnt from them too, without labels, so "val" accuracies run above test ones: '
            'they compare T, they are not held-out accuracies) and reported '
            f'on {counts(rows, "n_eval", opts.n_eval)} test images; the validation loss that '
            f'chose them is given as "val". "loss" is the T={opts.full_t} baseline minus the '
            f'accuracy (negative: a gain). A latency saving marked "(stalled)" was measured '
            f'while the machine held the sweep up, after {opts.remeasures} more tries: not a '
            'figure of the method.')


def latency_cell(row: Mapping) -> str:
    """Return the latency saving of ``row``, marked when a latency it divides stalled."""
    return f'{row["latency"]:.1f}x' + (' (stalled)' if row.get('latency_stalled') else '')


def markdown_table(rows: Sequence[Mapping], opts) -> str:
    """Return the headline table: its header text, a row per configuration, average, paper."""
    lines = [
        method_line(opts, rows), '',
        f'| N | rule | seed | train images | accuracy T={opts.full_t} (val) | chosen T | accuracy '
        f'at T (loss; val loss) | latency saving | inference energy saving | trained at T | its '
        f'accuracy (loss; val loss) | training energy saving | early exit: T, mean steps, loss '
        f'(val loss) | steps saving |',
        '|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|']
    for r in rows:
        ee, vee = r['early_exit'], r.get('val_early_exit')
        lines.append(
            f'| {r["neurons"]} | {r["rule"]} | {r.get("seed", "-")} | {r["n_train"]} '
            f'| {r["baseline_accuracy"]:.2%} '
            f'({r["val_baseline_accuracy"]:.2%}) '
            f'| {r["timesteps"]} | {r["accuracy"]:.2%} ({r["loss_pp"]:+.2f} pt; '
            f'val {r["val_loss_pp"]:+.2f} pt) '
            f'| {latency_cell(r)} | {r["inference_energy"]:.1f}x '
            f'| {trained_cell(r)} '
            f'| {fmt(r.get("train_accuracy"), ".2%")} '
            f'({fmt(r.get("train_loss_pp"), "+.2f", " pt")}; '
            f'val {fmt(r.get("val_train_loss_pp"), "+.2f", " pt")}) '
            f'| {fmt(r.get("training_energy"), ".1f", "x")} '
            + (f'| {ee["timesteps"]}, {ee["mean_steps"]:.1f}, {ee["loss_pp"]:+.2f} pt '
               f'(val {vee["loss_pp"]:+.2f} pt) | {ee["steps_saving"]:.1f}x |'
               if ee and vee else '| - | - |'))
    lines.append(
        f'| **average** | | | | | | | **{fmt(average(rows, "latency"), ".1f", "x")}** '
        f'| **{fmt(average(rows, "inference_energy"), ".1f", "x")}** | | '
        f'| **{fmt(average(rows, "training_energy"), ".1f", "x")}** | '
        f'| **{fmt(average(rows, "early_exit_saving"), ".1f", "x")}** |')
    lines.append(f'| paper (TopSpark) / goal | | | | | | | {PAPER_AVERAGES["latency"]}x '
                 f'| {PAPER_AVERAGES["inference_energy"]}x | | '
                 f'| {PAPER_AVERAGES["training_energy"]}x | | >= {EARLY_EXIT_GOAL:.0f}x |')
    return '\n'.join(lines)


SUMMARY_KEYS = (('baseline_accuracy', 'accuracy at the full T', 'pct'),
                ('loss_pp', 'loss at the chosen T (pt)', 'pt'),
                ('latency', 'latency saving', 'x'),
                ('latency_at_goal_t', f'latency saving at T={LATENCY_GOAL_T}, own parameters',
                 'x'),
                ('inference_energy', 'inference energy saving', 'x'),
                ('training_energy', 'training energy saving', 'x'),
                ('early_exit_saving', 'early-exit steps saving', 'x'))
"""Figures of :func:`seed_summary`: row key, column title, unit."""


def spread(values: Sequence[float]) -> Tuple[float, float]:
    """Return ``(mean, sample standard deviation)`` of ``values`` (deviation 0 for one)."""
    mean = sum(values) / len(values)
    if len(values) < 2:
        return mean, 0.0
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


def _mean_sd(values: Sequence[float], unit: str) -> str:
    """Format ``mean +- sd`` of ``values`` in ``unit`` (a dash for none; one value: no sd)."""
    if not values:
        return '-'
    mean, sd = spread(values)
    one = len(values) < 2  # no spread to give: '+- 0.00' read as none measured (a review)
    if unit == 'pct':
        return f'{100 * mean:.2f} ' + ('% (one value)' if one else f'+- {100 * sd:.2f} %')
    if unit == 'pt':
        return f'{mean:+.2f}' + (' (one value)' if one else f' +- {sd:.2f}')
    return f'{mean:.1f}' + ('x (one value)' if one else f' +- {sd:.1f}x')


def seed_summary(rows: Sequence[Mapping], opts) -> str:
    """
    Return the figures over seeds: per (N, rule) and over all rows, mean +- sample deviation.

    The chosen T of each seed is listed (a T is picked per seed, on its own validation
    images); a configuration's spread is that of its seeds, the last row's that of all rows.
    """
    groups = {}
    for r in rows:
        groups.setdefault((r['neurons'], r['rule']), []).append(r)
    head = ['N', 'rule', 'seeds', 'chosen T'] + [
        f'accuracy T={opts.full_t}' if key == 'baseline_accuracy' else title
        for key, title, _ in SUMMARY_KEYS]
    lines = [f'Over seeds: mean +- sample standard deviation of the rows above '
             f'(--seeds {opts.seeds}).', '',
             '| ' + ' | '.join(head) + ' |',
             '|---:|---|---|---|' + '---:|' * len(SUMMARY_KEYS)]

    def cells(group):
        return [_mean_sd(present(group, key), unit)
                for key, _, unit in SUMMARY_KEYS]

    for (neurons, rule), group in sorted(groups.items()):
        seeds = ', '.join(str(r.get('seed', '-')) for r in group)
        chosen = ', '.join(str(r['timesteps']) for r in group)
        lines.append('| ' + ' | '.join([str(neurons), rule, seeds, chosen] + cells(group))
                     + ' |')
    lines.append('| ' + ' | '.join(['**all**', '', str(len(rows)), ''] + cells(rows)) + ' |')
    return '\n'.join(lines)


def verdict(rows: Sequence[Mapping], tolerance_pp: Optional[float] = None,
            exit_tolerance_pp: Optional[float] = None) -> List[str]:
    """
    Return one line per goal: the measured average against the paper / the issue's goal.

    ``tolerance_pp`` and ``exit_tolerance_pp``: the accuracy losses T and the early-exit
    point were chosen within, on the validation images; a last line says which rows lose
    more on the test images (a verdict 'beaten' beside a 6-point test loss did not say that
    the tolerance is judged on validation; a review).
    """
    out = []
    for key, name in (('latency', 'latency'), ('inference_energy', 'inference energy'),
                      ('training_energy', 'training energy')):
        avg, paper = average(rows, key), PAPER_AVERAGES[key]
        out.append(f'{name}: average {fmt(avg, ".2f", "x")} vs paper {paper}x -> '
                   + ('beaten' if avg is not None and avg > paper else 'NOT beaten'))
    at_t = [r['latency_at_goal_t'] for r in rows if r.get('latency_at_goal_t') is not None]
    if at_t:
        full_t = rows[0]['full_timesteps']
        goal = LATENCY_GOAL_FRACTION * full_t / LATENCY_GOAL_T
        out.append(f'latency at T={LATENCY_GOAL_T} against T={full_t}, own parameters (plain '
                   f'sweep, batched): average {sum(at_t) / len(at_t):.2f}x, lowest '
                   f'{min(at_t):.2f}x vs goal >= {LATENCY_GOAL_FRACTION:g} x {full_t}/'
                   f'{LATENCY_GOAL_T} = {goal:.2f}x -> met in '
                   f'{sum(1 for v in at_t if v >= goal)} of {len(at_t)} configurations')
    avg = average(rows, 'early_exit_saving')
    worst = min((r['early_exit_saving'] or 0.0 for r in rows), default=None)
    hits = sum(1 for r in rows if (r['early_exit_saving'] or 0.0) >= EARLY_EXIT_GOAL)
    within = '' if exit_tolerance_pp is None else f'<= {exit_tolerance_pp:g} pt on validation'
    out.append(f'early exit ({within or "within the tolerance"}): average '
               f'{fmt(avg, ".2f", "x")}, worst {fmt(worst, ".2f")}x'
               f' vs goal >= {EARLY_EXIT_GOAL:.0f}x -> '
               + ('met' if avg is not None and avg >= EARLY_EXIT_GOAL else 'NOT met')
               + f' on average; reached in {hits} of {len(rows)} configurations')
    if tolerance_pp is not None:
        over = [r for r in rows if r.get('loss_pp') is not None
                and r['loss_pp'] > tolerance_pp]
        out.append(f'T is chosen within {tolerance_pp:g} pt of the full-T accuracy on the '
                   'validation images; on the test images '
                   + (f'{len(over)} of {len(rows)} configurations lose more: '
                      + ', '.join(f"N={r.get('neurons')} {r.get('rule')} seed {r.get('seed')} "
                                  f"({r['loss_pp']:+.2f} pt)" for r in over)
                      if over else 'every configuration is within it'))
    return out


def plot(rows: Sequence[Mapping], path: str, opts) -> None:
    """
    Write a PNG: accuracy vs T per configuration, and the savings per configuration.

    A configuration's seeds are drawn together: the mean accuracy over its seeds at each T
    (test solid, validation dashed; each seed's chosen T as a star at its test accuracy) and
    the mean saving with the seeds' standard deviation as an error bar.
    """
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.ticker
    import matplotlib.pyplot as plt

    groups = {}
    for r in rows:
        groups.setdefault((r['neurons'], r['rule']), []).append(r)
    configs = sorted(groups)

    def mean_by_t(group, key):
        ts = sorted({int(t) for r in group for t in r[key]})
        return ts, [100 * spread([r[key][str(t)] for r in group if str(t) in r[key]])[0]
                    for t in ts]

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 4.8))
    for config in configs:
        group = groups[config]
        ts, acc = mean_by_t(group, 'accuracy_by_t')
        n_seeds = len(group)
        line, = ax1.plot(ts, acc, marker='o', label=f'N={config[0]} {config[1]}'
                         + (f' ({n_seeds} seeds)' if n_seeds > 1 else ''))
        for r in group:
            ax1.plot([r['timesteps']], [100 * r['accuracy']], marker='*', markersize=12,
                     color=line.get_color(), alpha=0.8)
        vts, vacc = mean_by_t(group, 'val_accuracy_by_t')
        ax1.plot(vts, vacc, linestyle='--', marker='.', color=line.get_color(), alpha=0.6)
    ax1.set_xscale('log')
    ax1.set_xticks(sorted({int(t) for r in rows for t in r['accuracy_by_t']}))
    ax1.xaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
    ax1.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
    ax1.set_xlabel('timesteps T (log)')
    ax1.set_ylabel('accuracy with enhanced parameters (%)')
    ax1.set_title(f'test (solid) and validation (dashed) accuracy vs T, mean over seeds\n'
                  f"(stars: each seed's smallest T within {opts.tolerance_pp:g} pt on "
                  f'validation, at its test accuracy)', fontsize=9)
    ax1.grid(True, alpha=0.3)
    ax1.legend(fontsize=8)
    keys = (('latency', 'latency'), ('inference_energy', 'inference energy'),
            ('training_energy', 'training energy'), ('early_exit_saving', 'early-exit steps'))
    width = 0.8 / len(keys)
    for i, (key, name) in enumerate(keys):
        xs = [j + (i - (len(keys) - 1) / 2) * width for j in range(len(configs))]
        values = [present(groups[c], key) for c in configs]
        stats = [spread(v) if v else (0.0, 0.0) for v in values]  # none: no bar
        ax2.bar(xs, [m for m, _ in stats], width, yerr=[sd for _, sd in stats], capsize=2,
                label=name)
    for key, style in (('latency', ':'), ('inference_energy', '--'),
                       ('training_energy', '-.')):
        ax2.axhline(PAPER_AVERAGES[key], color='grey', linestyle=style, linewidth=1)
    ax2.axhline(EARLY_EXIT_GOAL, color='red', linestyle='-', linewidth=1)
    ax2.set_xticks(range(len(configs)))
    ax2.set_xticklabels([f'N={n}\n{rule}' for n, rule in configs])
    ax2.set_ylabel('saving versus T=%d (x)' % opts.full_t)
    ax2.set_title('savings, mean and standard deviation over seeds\n(grey: paper averages '
                  '3.9/3.3/3.5x; red: early-exit goal 6x)', fontsize=9)
    ax2.legend(fontsize=8)
    ax2.grid(True, axis='y', alpha=0.3)
    fig.tight_layout()
    import io

    from topspark_ros.core.files import atomic_write  # (the topspark_ros of --code)

    image = io.BytesIO()  # written atomically: it was truncated in place (a review)
    fig.savefig(image, format='png', dpi=110)
    plt.close(fig)
    target = Path(os.path.abspath(path))
    target.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(target.parent, None, image.getvalue(), target)


def write_docs(path: str, block: str) -> bool:
    """Replace the text between the report markers of ``path``; False if it has none."""
    if not os.path.exists(path):
        return False
    with open(path) as f:
        text = f.read()
    if MARK_BEGIN not in text or MARK_END not in text:
        return False
    head, rest = text.split(MARK_BEGIN, 1)
    _, tail = rest.split(MARK_END, 1)
    with open(path + '.tmp', 'w') as f:
        f.write(f'{head}{MARK_BEGIN}\n{block}\n{MARK_END}{tail}')
    os.replace(path + '.tmp', path)
    return True


# ---------------------------------------------------------------------------- main --

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
"""The repository this script is in: the default plot and docs are its own, wherever it runs
(on its own data set: with ``--data``, the table is the user's and goes to ``--work-dir``)."""
DEFAULT_PLOT = os.path.join(REPO, 'docs', 'img', 'report_topspark.png')
DEFAULT_DOCS = os.path.join(REPO, 'docs', 'results.md')
QUICK = {'sizes': '100', 'rules': 'dc,pair', 'n_train': 1000, 'n_eval': 500, 'n_val': 500,
         'budget': 6, 'learn_budget': 0, 'learn_samples': 300, 'confirm_samples': 0,
         'n_train_steps': 10, 'grid': '350,64,32', 'enhance_grid': '32',
         'plot': '{work}/report_quick.png', 'docs': ''}


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser."""
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument('--quick', action='store_true',
                   help='reduced run of a few minutes, in <work-dir>/quick; its defaults (the '
                   'options given win): ' + ', '.join(f'{k}={v}' for k, v in QUICK.items()))
    p.add_argument('--sizes', default='100,400,900', help='excitatory neurons N, comma-separated')
    p.add_argument('--rules', default='dc,pair', help='learning rules, comma-separated')
    p.add_argument('--seeds', default='0', help='seeds, comma-separated (one row each)')
    p.add_argument('--data', help='data source of every step, as `topspark --data` takes it '
                   '(default: Fashion-MNIST, found as `topspark` finds it)')
    p.add_argument('--n-train', type=int, default=60000, help='training images per model')
    p.add_argument('--n-train-cap', default='',
                   help="caps 'N:images,...': networks with >= N neurons learn from at most "
                   'that many images (e.g. 900:20000)')
    p.add_argument('--n-eval', type=int, default=10000, help='test images per accuracy')
    p.add_argument('--grid', default='350,250,150,100,64,32,16,8',
                   help='swept T, the first one is the full-T baseline')
    p.add_argument('--enhance-grid', default='64,32,16', help='T whose parameters are enhanced')
    p.add_argument('--budget', type=int, default=24, help='enhance: inference candidates per T')
    p.add_argument('--learn-budget', type=int, default=4, help='enhance: training runs per T')
    p.add_argument('--sampler', choices=('tpe', 'random'), default='tpe',
                   help="enhance: how candidates are proposed (topspark enhance's --sampler)")
    p.add_argument('--trial-batch', type=int, default=4,
                   help="enhance: tpe's candidates proposed at once (its --trial-batch)")
    p.add_argument('--n-val', type=int, default=5000, help='enhance: validation images')
    p.add_argument('--learn-samples', type=int, default=2000,
                   help='enhance: images per short scoring run')
    p.add_argument('--confirm-samples', type=int, default=10000,
                   help='enhance: images per confirmation run')
    p.add_argument('--n-train-steps', type=int, default=50,
                   help='sweep: training steps measured per T (training energy)')
    p.add_argument('--early-exit-margin', type=float, default=3.0,
                   help='early exit: margin in output spikes')
    p.add_argument('--batch-size', type=int, default=256, help='inference batch')
    p.add_argument('--tolerance-pp', type=float, default=2.0,
                   help='accuracy loss allowed at the chosen T (points)')
    p.add_argument('--exit-tolerance-pp', type=float, default=1.0,
                   help='accuracy loss allowed with early exit (points)')
    p.add_argument('--work-dir', default='.cache/report', help='cache of every step')
    p.add_argument('--code', default='',
                   help='source tree whose topspark_ros the steps run (e.g. `git archive '
                   "HEAD topspark_ros` unpacked; '': the installed package); not in the cache "
                   'keys, but recorded with each step: a cached step made by other code is '
                   'said to be, and listed in the report')
    p.add_argument('--ray', metavar='ADDRESS',
                   help='run the configurations on a Ray cluster: auto or HOST:PORT (module '
                   'doc); default: one after the other in this process')
    p.add_argument('--remeasures', type=int, default=2,
                   help='times a sweep whose latencies look stalled is measured again')
    p.add_argument('--retries', type=int, default=2,
                   help='times a step whose process was killed by a signal is run again')
    p.add_argument('--topic', help='--data bag:DIR: the topic to read (train records it)')
    p.add_argument('--labels', metavar='CSV', help='--data bag:DIR: its labels (a CSV file)')
    p.add_argument('--label-topic', metavar='TOPIC',
                   help='--data bag:DIR: its labels, a std_msgs/String topic of the bag')
    p.add_argument('--plot', default=None,
                   help='PNG to write (default: report_topspark.png in --work-dir; that of '
                   f'this repository is {os.path.relpath(DEFAULT_PLOT, REPO)})')
    p.add_argument('--docs', default=None,
                   help='markdown file whose report markers get the table (default: none; '
                   f'that of this repository is {os.path.relpath(DEFAULT_DOCS, REPO)})')
    return p


def output_paths(opts) -> Tuple[str, str]:
    """
    Return the plot and the docs file the report writes (``--plot``, ``--docs``).

    Not given: the plot in ``--work-dir`` and no docs file. This repository's table and plot
    (:data:`DEFAULT_DOCS`, :data:`DEFAULT_PLOT`) are written only when named: a run on a
    team's photos, and a trial at small settings on the default data, rewrote them (user
    reviews).
    """
    plot = opts.plot or '{work}/report_topspark.png'
    return plot.replace('{work}', opts.work_dir), opts.docs or ''


def _items(text: str, what: str, kind=int, low: Optional[int] = None) -> list:
    """Return the comma-separated ``text`` as ``kind`` items: none twice, each >= ``low``."""
    items = [item.strip() for item in text.split(',')]
    if '' in items:
        raise ValueError(f'{what} {text!r}: an empty item')
    try:
        items = [kind(item) for item in items]
    except ValueError:
        raise ValueError(f'{what} {text!r}: expected comma-separated '
                         f'{"integers" if kind is int else "names"}') from None
    if len(set(items)) != len(items):  # a seed twice counted twice in the mean and spread
        raise ValueError(f'{what} {text!r}: an item given twice')
    if low is not None and min(items) < low:
        raise ValueError(f'{what} {text!r}: every item must be >= {low}')
    return items


def check_settings(opts) -> tuple:
    """
    Return ``(sizes, rules, seeds, grid)``; raise ValueError for a setting no step could run.

    Checked before the first step: a bad value found by a step (``--rules dc,stdp`` after
    every ``dc`` configuration, ``--n-val 0`` after the baseline) cost the work before it.
    """
    sizes = _items(opts.sizes, '--sizes', low=1)
    from topspark_ros.core.stdp.config import LEARNING_RULES  # the topspark_ros of --code

    rules = _items(opts.rules, '--rules', kind=str)
    unknown = [r for r in rules if r not in LEARNING_RULES]
    if unknown:
        raise ValueError(f'--rules: unknown {", ".join(unknown)} (expected '
                         f'{" or ".join(LEARNING_RULES)})')
    seeds = _items(opts.seeds, '--seeds', low=0)
    grid = _items(opts.grid, '--grid', low=1)
    if grid[0] != max(grid):
        raise ValueError('--grid: the first T is the full-T baseline and must be the largest')
    enhance_grid = _items(opts.enhance_grid, '--enhance-grid', low=1)
    if not set(enhance_grid) <= set(grid) - {grid[0]}:
        raise ValueError('--enhance-grid must be reduced T of --grid (not the full T)')
    if opts.ray is not None and not opts.ray.strip():  # (it ran in-process, unsaid)
        raise ValueError("--ray: expected auto or HOST:PORT, got ''")
    for name in ('n_train', 'n_eval', 'n_val', 'budget', 'learn_samples', 'batch_size',
                 'trial_batch'):
        if getattr(opts, name) < 1:
            raise ValueError(f'--{name.replace("_", "-")} must be >= 1')
    for name in ('learn_budget', 'confirm_samples', 'n_train_steps', 'tolerance_pp',
                 'exit_tolerance_pp', 'early_exit_margin', 'remeasures', 'retries'):
        if getattr(opts, name) < 0:
            raise ValueError(f'--{name.replace("_", "-")} must be >= 0')
    for item in filter(None, opts.n_train_cap.split(',')):
        try:
            size, cap = (int(x) for x in item.split(':'))
        except ValueError:
            raise ValueError(f"--n-train-cap {item!r}: expected 'N:images'") from None
        if size < 1 or cap < 1:
            raise ValueError(f'--n-train-cap {item!r}: N and images must be >= 1')
    if (opts.labels or opts.label_topic or opts.topic) and not (opts.data or '').startswith(
            'bag:'):
        raise ValueError('--topic, --labels and --label-topic are for --data bag:DIR')
    if opts.data:  # a spec no step could read is refused before the first (event data too)
        from topspark_ros.core.data.sources import parse_data
        parse_data(opts.data)
    check_outputs(opts.plot, opts.docs)
    return sizes, rules, seeds, grid


def check_outputs(plot_path: str, docs: str) -> None:
    """
    Raise ValueError for a ``--plot`` or ``--docs`` the report could not write, before the work.

    A plot of a format matplotlib does not write (``--plot x.yaml``) was a traceback after
    every step, and report.json and report.md were not written; a ``--docs`` file without
    the report's markers (or none at all) was skipped without a word (a review).
    """
    from matplotlib.backend_bases import FigureCanvasBase

    from topspark_ros.core.files import output_folder_problem

    suffix = os.path.splitext(plot_path)[1].lstrip('.').lower()
    formats = FigureCanvasBase.get_supported_filetypes()
    if suffix not in formats:
        raise ValueError(f'--plot {plot_path}: name a file of a format matplotlib writes '
                         f'({", ".join(sorted(formats))})')
    problem = output_folder_problem(os.path.abspath(plot_path))
    if problem:
        raise ValueError(f'--plot {problem}')
    if docs:
        try:
            with open(docs) as f:
                text = f.read()
        except OSError as exc:
            raise ValueError(f'--docs {docs}: {exc.strerror or exc} (the file whose report '
                             'markers the table goes between)') from None
        if MARK_BEGIN not in text or MARK_END not in text:
            raise ValueError(f'--docs {docs}: no {MARK_BEGIN} ... {MARK_END} lines in it: '
                             'add them where the table goes')


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the report; return the exit status (130 interrupted, 1 a failed step)."""
    global _driver_pid
    _driver_pid = os.getpid()
    previous = signal.signal(signal.SIGTERM, _interrupt)  # timeout, systemd: as Ctrl-C
    try:
        return _main(argv)
    except KeyboardInterrupt:
        print('report: interrupted; the same command resumes from its cache', file=sys.stderr)
        return 130
    except (ConnectionError, RuntimeError) as exc:  # a step that failed, a Ray cluster
        print(f'report: error: {exc}', file=sys.stderr)
        return 1
    finally:
        signal.signal(signal.SIGTERM, previous)


_driver_pid = None
"""The process :func:`main` runs in (its SIGTERM handler's; a forked step's is another)."""


def _interrupt(signum, frame) -> None:
    """
    SIGTERM in the driver: as Ctrl-C. In a step forked from it, before its exec: as the step.

    The child has the driver's handler until its exec: a SIGTERM there raised in the fork's
    Python callbacks and was lost (the step ran on; seen once on CI), or in its set-up, which
    failed the step. It ends the child by the signal now, so the driver runs the step again.
    """
    if _driver_pid is not None and os.getpid() != _driver_pid:
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)
        return
    raise KeyboardInterrupt


def parse_options(argv: Optional[Sequence[str]]) -> tuple:
    """
    Return ``(parser, options)`` of the command line ``argv`` (None: this process's).

    ``--quick``'s values are defaults: an option given wins, also one given at the full
    default (``--quick --budget 24`` ran the quick budget of 6, its steps cached from a run
    that asked for 6; a review).
    """
    parser = build_parser()
    args = list(sys.argv[1:] if argv is None else argv)
    if parser.parse_known_args(args)[0].quick:  # (--qui too: argparse takes abbreviations)
        parser.set_defaults(**QUICK)
    opts = parser.parse_args(args)
    taken = next((p for p in (opts.work_dir, os.path.dirname(os.path.abspath(opts.work_dir)))
                  if os.path.exists(p) and not os.path.isdir(p)), None)
    if taken:  # (a traceback, NotADirectoryError, after the checks; a review)
        parser.error(f'--work-dir {opts.work_dir}: {taken} is a file, not a folder')
    if opts.quick:
        opts.work_dir = os.path.join(opts.work_dir, 'quick')
    opts.plot, opts.docs = output_paths(opts)
    return parser, opts


def _main(argv: Optional[Sequence[str]]) -> int:
    parser, opts = parse_options(argv)
    if opts.code:
        sys.path.insert(0, os.path.abspath(opts.code))  # copy_profile imports it here too
    try:
        sizes, rules, seeds, grid = check_settings(opts)
    except ValueError as exc:  # before any step: at full settings a typo cost hours
        parser.error(str(exc))
    opts.full_t = grid[0]
    from topspark_ros.core.topspark.fanout import executor_for

    runner = Runner(opts.work_dir, code=opts.code, retries=opts.retries,
                    remeasures=opts.remeasures,
                    data_key=data_fingerprint(opts.data) + (  # a bag's labels file too
                        '+' + data_fingerprint(f'labels:{opts.labels}') if opts.labels else ''))
    started = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds')
    load_start = os.getloadavg()
    configs = [(n, rule, seed) for n in sizes for rule in rules for seed in seeds]
    done = []

    def progress(n: int) -> None:
        done.append(n)
        runner.say(f'{sum(done)} of {len(configs)} configurations done')

    executor = executor_for(opts.ray, threads=1)
    try:
        rows = executor.run(config_task, configs, progress=progress,
                            shared={'runner': runner, 'opts': opts})
    finally:
        executor.close()
    wall = time.monotonic() - runner.started
    table = markdown_table(rows, opts) + '\n\n' + seed_summary(rows, opts)
    lines = verdict(rows, opts.tolerance_pp, opts.exit_tolerance_pp)
    machine = f'{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}'
    settings = ', '.join(f'{k}={v}' for k, v in sorted(vars(opts).items()) if k != 'full_t')
    other_code = [label for row in rows for label in row.get('cached_steps_of_other_code', ())]
    if other_code:  # (their figures are of other code than this run's)
        lines.append(f'{len(other_code)} steps were taken from the cache made by other '
                     f'code than this run ({runner.code_key}): ' + '; '.join(other_code))
    print(table)
    print()
    for line in lines:
        print(line)
    plot(rows, opts.plot, opts)
    summary = {'started': started, 'wall_s_this_run': wall, 'machine': machine,
               'load_this_run': [load_start[0], os.getloadavg()[0]],
               'settings': vars(opts), 'rows': rows, 'verdict': lines, 'table': table,
               'code': runner.code_key, 'cached_steps_of_other_code': other_code}
    from topspark_ros.core.files import atomic_write  # (the topspark_ros of --code)

    work = Path(opts.work_dir)  # drivers may share it: no torn file when they end together
    atomic_write(work, None, json.dumps(summary, indent=1, sort_keys=True).encode(),
                 work / 'report.json')
    loads = [x for r in rows for x in r['sweep_load']]
    block = (f'{table}\n\nMeasured by `benchmarks/report_topspark.py` ({settings}); machine: '
             f'{machine}; load average (1 min) around the enhanced sweeps that give the '
             f'latencies: {min(loads):.1f} to {max(loads):.1f}; table assembled {started}. '
             f'Plot: `{opts.plot}`.\n\n'
             + '\n'.join(f'- {line}' for line in lines))
    atomic_write(work, None, (block + '\n').encode(), work / 'report.md')
    if opts.docs and write_docs(opts.docs, block):
        print(f'table written into {opts.docs}', file=sys.stderr)
    print(f'plot: {opts.plot}; everything: {os.path.join(opts.work_dir, "report.json")}',
          file=sys.stderr)
    return 0


if __name__ == '__main__':
    sys.exit(main())
