# noqa: A005  (topspark_ros.core.topspark.profile is only imported by its full name)
"""
Timestep profiles: for one trained model, T -> accuracy, latency, energy, spike and op counts.

A profile is measured offline on held-out data (``topspark sweep``), stored as a YAML file next
to the model it describes (:func:`default_profile_path`), and read by the timestep controller
(the trade-off strategy) and the classifier (which applies the parameters enhanced for each T).
It is self-describing: the model's path and the SHA-256 of its tensor file, the model family,
the data set, split and sample count, the machine, the energy preset, the date, the package
version and the schema version.

File layout (schema version 4; version 3 is the same without the early-exit rule and its
``early_exit_confidence_bins``, version 2 also without ``confidence_bins``, version 1 also
without ``measurement``, and all are read; a profile is written at the lowest version that
holds it, which earlier versions of topspark_ros read; every figure is per sample, energy under
``energy_preset``)::

    schema_version: 4
    model_path: stdp_fmnist_n400.json      # relative paths: relative to the profile's folder
    model_sha256: <64 hex digits>          # of the model's tensor file
    model_family: stdp                     # or converted, ...
    dataset: fashion-mnist
    split: test
    n_samples: 10000
    machine: 'x86_64, 16 CPUs, torch 2.3 cpu'
    energy_preset: cmos45_fp32             # a name in topspark_ros.core.energy.PRESETS
    created: '2026-11-23T10:00:00+00:00'   # ISO 8601
    package_version: 0.1.0
    ann_macs: 1867456.0                    # optional: MACs per input of the same network as
                                           #   an ANN (the model's ann_ops()), for the energy
                                           #   monitor's comparison
    enhancement: {...}                     # optional (left out when null): how the entries'
                                           #   params were found (topspark enhance, see
                                           #   topspark_ros.core.topspark.records); plain YAML data
    measurement: {...}                     # optional: how the entries were measured (topspark
                                           #   sweep: command, seed, batch_size); plain data
    entries:                               # one per profiled T (written in ascending T)
    - timesteps: 350                       # T >= 1, each T once
      accuracy: 0.826                      # in [0, 1]
      accuracy_ci95: [0.818, 0.833]        # Wilson score interval (wilson_interval)
      n_samples: 10000
      latency_ms: 4.2                      # inference, per sample (ms)
      spikes: 1234.5                       # spikes of all neurons per inference
      energy_j: 1.6e-05                    # per inference (J)
      ops: {accumulates: ..., macs: ..., neuron_updates: ..., plasticity_updates: ...}
      train_latency_ms: null               # optional, per training sample: latency (ms),
      train_ops: null                      #   operation counts,
      train_energy_j: null                 #   energy (J)
      params: null                         # optional {name: value}: enhanced parameters for T
      early_exit_accuracy: null            # optional: accuracy with early exit at budget T
      early_exit_mean_timesteps: null      #   and the mean steps it used (1 <= m <= T)
      confidence_bins: [[0.0, 412, 160], ...]  # optional (left out when null): results by
                                           #   confidence, [low, n, correct] rows, for the
                                           #   classifier's calibrated scores
                                           #   (topspark_ros.core.topspark.calibration)
      early_exit_margin: 3.0               # optional (left out when null): the early-exit
      early_exit_min_steps: 8              #   rule of the early_exit_* figures,
      early_exit_confidence_bins: [...]    #   and its results by confidence (as above)

Loading is strict (:func:`load_profile`): ``yaml.safe_load`` only; a missing, unknown or
ill-typed key, a duplicate T, T < 1, an accuracy outside [0, 1], a negative figure or another
schema version is a :class:`ProfileError` naming the file and the key path
(e.g. ``entries[3].accuracy``). Optional keys may be left out (read as null). Saving is atomic
(:func:`save_profile`) and a saved profile loads back equal: floats are written with ``repr``.
"""

from dataclasses import dataclass, fields, replace
import datetime
import math
from numbers import Integral, Real
import os
from pathlib import Path
import re
from typing import Callable, Mapping, Optional, Tuple, Union

from topspark_ros.core.energy import EnergyModel, OpCounts, PRESETS
from topspark_ros.core.files import atomic_write, fsync_dir, lock, read_regular
from topspark_ros.core.topspark.calibration import calibrated, check_bins
import yaml

SCHEMA_VERSION = 4
"""Version of the profile layout written by :func:`save_profile` when an entry records its
early-exit rule (4); without one it writes :data:`BINNED_SCHEMA_VERSION` where an entry has
``confidence_bins``, else :data:`PLAIN_SCHEMA_VERSION`: the lowest version that holds the
profile, which readers of that version read. (2: the ``measurement`` record; a reader of
version 1 refused such a file for an unknown key, now for its version.)"""
BINNED_SCHEMA_VERSION = 3
"""Version written for a profile with ``confidence_bins`` and no early-exit rule."""
PLAIN_SCHEMA_VERSION = 2
"""Version written for a profile without either."""
READ_SCHEMA_VERSIONS = (1, 2, 3, 4)
"""Versions :func:`load_profile` reads (1: the layout before ``measurement``; 2: before
``confidence_bins``; 3: before the early-exit rule and its bins)."""
_SINCE = {'confidence_bins': 3, 'early_exit_margin': 4, 'early_exit_min_steps': 4,
          'early_exit_confidence_bins': 4}
"""The schema version each optional entry key came with (an older file may not hold it)."""
MAX_PROFILE_BYTES = 16 << 20
"""Largest profile file read (bytes); real ones are a few kB."""

_SHA256 = re.compile(r'[0-9a-f]{64}')


class ProfileError(ValueError):
    """
    A profile that is invalid, with where: ``<file>: <key path>: <problem>``.

    Attributes ``path`` (file, or None), ``key`` (key path such as ``entries[3].accuracy``, or
    None) and ``problem`` hold the parts.
    """

    def __init__(self, problem: str, key: Optional[str] = None,
                 path: Optional[str] = None) -> None:
        """Compose the message from its parts."""
        self.problem, self.key, self.path = problem, key, path
        super().__init__(': '.join(str(p) for p in (path, key, problem) if p is not None))

    def within(self, prefix: Optional[str] = None, path: Optional[str] = None) -> 'ProfileError':
        """Return this error with ``prefix`` put before its key path and ``path`` set."""
        key = self.key if prefix is None else (prefix if self.key is None
                                               else f'{prefix}.{self.key}')
        return ProfileError(self.problem, key, path if path is not None else self.path)


def wilson_interval(correct: int, n: int, z: float = 1.96) -> Tuple[float, float]:
    """
    Return the Wilson score interval ``(low, high)`` of the proportion ``correct / n``.

    .. code-block:: text

        p = correct / n,  d = 1 + z^2 / n
        centre = (p + z^2 / (2 n)) / d
        half   = z * sqrt(p (1 - p) / n + z^2 / (4 n^2)) / d
        (low, high) = (centre - half, centre + half)   clipped to [0, 1]

    ``z = 1.96`` gives the 95 % interval. Unlike the normal approximation it stays inside
    [0, 1] and is not empty at 0 % or 100 %, e.g. ``wilson_interval(80, 100)`` is about
    ``(0.7112, 0.8666)``.
    """
    if isinstance(correct, bool) or isinstance(n, bool) or not isinstance(correct, int) \
            or not isinstance(n, int):
        raise ValueError(f'correct and n must be integers, got {correct!r}, {n!r}')
    if n < 1 or not 0 <= correct <= n:
        raise ValueError(f'need n >= 1 and 0 <= correct <= n, got {correct}/{n}')
    if not (isinstance(z, Real) and math.isfinite(z) and z > 0):
        raise ValueError(f'z must be a finite number > 0, got {z!r}')
    p = correct / n
    d = 1.0 + z * z / n
    centre = (p + z * z / (2.0 * n)) / d
    half = z * math.sqrt(p * (1.0 - p) / n + z * z / (4.0 * n * n)) / d
    # Rounding can leave the exact bound a hair inside p at 0 % or 100 % (300/300 gave
    # 0.9999999999999999): the interval always contains p.
    return max(0.0, min(p, centre - half)), min(1.0, max(p, centre + half))


# Field checks: each returns the normalised value or raises ProfileError(problem, key).
def _number(key: str, value, low: float = 0.0, high: float = math.inf) -> float:
    if isinstance(value, bool) or not isinstance(value, Real):
        raise ProfileError(f'must be a number, got {type(value).__name__} {value!r}', key)
    value = float(value)
    if not (math.isfinite(value) and low <= value <= high):
        bounds = f'>= {low:g}' if high == math.inf else f'in [{low:g}, {high:g}]'
        raise ProfileError(f'must be finite and {bounds}, got {value!r}', key)
    return value


def _integer(key: str, value, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ProfileError(f'must be an integer, got {type(value).__name__} {value!r}', key)
    if value < low:
        raise ProfileError(f'must be >= {low}, got {value}', key)
    return int(value)


def _text(key: str, value) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ProfileError(f'must be a non-empty string, got {value!r}', key)
    return value


def _ops(key: str, value) -> OpCounts:
    if isinstance(value, OpCounts):
        return value
    if not isinstance(value, Mapping):
        raise ProfileError(f'must be a mapping of operation counts, got {value!r}', key)
    names = [f.name for f in fields(OpCounts)]
    _check_keys(value, names, names, key)
    counts = {name: _number(f'{key}.{name}', value[name]) for name in names}
    return OpCounts(**counts)


def _plain(key: str, value):
    """Return a private copy of plain data ``value``; ProfileError for anything else."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, Integral):
        return int(value)
    if isinstance(value, Real):
        return _number(key, value, -math.inf)
    if isinstance(value, Mapping):
        out = {}
        for name, item in value.items():
            if not isinstance(name, str):
                raise ProfileError(f'keys must be strings, got {name!r}', key)
            out[name] = _plain(f'{key}.{name}', item)
        return out
    if isinstance(value, (list, tuple)):
        return [_plain(f'{key}[{i}]', item) for i, item in enumerate(value)]
    raise ProfileError(f'must be plain data, got {type(value).__name__}', key)


def _check_keys(mapping: Mapping, required, allowed, where: Optional[str]) -> None:
    """Raise ProfileError for a missing required key or a key not in ``allowed``."""
    prefix = '' if where is None else f'{where}.'
    for key in mapping:
        if key not in allowed:
            raise ProfileError(f'unknown key (allowed: {", ".join(allowed)})',
                               f'{prefix}{key}')
    for key in required:
        if key not in mapping:
            raise ProfileError('missing', f'{prefix}{key}')


@dataclass(frozen=True)
class ProfileEntry:
    """
    Measurements at one timestep count T, per sample (see the module docstring's layout).

    Every field is checked on construction (:class:`ProfileError` naming the field); ``params``
    is a private copy (treat it as read-only); ``ops`` and ``train_ops`` are
    :class:`~topspark_ros.core.energy.OpCounts`.

    Attributes
    ----------
    timesteps
        T (>= 1).
    accuracy, accuracy_ci95
        fraction correct on the held-out samples and its 95 % Wilson interval (low, high),
        with ``low <= accuracy <= high``.
    n_samples
        samples measured at this T.
    latency_ms
        inference wall time per sample (ms).
    spikes
        spikes of all neurons per inference.
    energy_j, ops
        energy (J, under the profile's preset) and operation counts per inference.
    train_latency_ms, train_ops, train_energy_j
        the same per training sample (on-line STDP at T); None when not measured.
    params
        ``{name: value}`` neuron/learning parameters enhanced for this T (None: the model's own).
    early_exit_accuracy, early_exit_mean_timesteps
        accuracy with early exit at budget T and the mean steps used; None when not measured.
    confidence_bins
        the results at T (without early exit) by confidence, rows ``(low, n, correct)``
        (:mod:`~topspark_ros.core.topspark.calibration`), for :meth:`calibrated`; None when
        not measured (a label-free sweep, or an older profile).
    early_exit_margin, early_exit_min_steps
        the early-exit rule (:class:`~topspark_ros.core.topspark.early_exit.EarlyExit`) the
        ``early_exit_*`` figures were measured with; None when not recorded (an older
        profile). Both or neither, and only beside ``early_exit_accuracy``.
    early_exit_confidence_bins
        the results of that rule at budget T by confidence, for :meth:`calibrated` with
        ``early_exit``; None when not measured. Only beside the rule.

    """

    timesteps: int
    accuracy: float
    accuracy_ci95: Tuple[float, float]
    n_samples: int
    latency_ms: float
    spikes: float
    energy_j: float
    ops: OpCounts
    train_latency_ms: Optional[float] = None
    train_ops: Optional[OpCounts] = None
    train_energy_j: Optional[float] = None
    params: Optional[Mapping[str, float]] = None
    early_exit_accuracy: Optional[float] = None
    early_exit_mean_timesteps: Optional[float] = None
    confidence_bins: Optional[Tuple[Tuple[float, int, int], ...]] = None
    early_exit_margin: Optional[float] = None
    early_exit_min_steps: Optional[int] = None
    early_exit_confidence_bins: Optional[Tuple[Tuple[float, int, int], ...]] = None

    def __post_init__(self) -> None:
        """Check and normalise every field."""
        put = object.__setattr__
        t = _integer('timesteps', self.timesteps, 1)
        put(self, 'timesteps', t)
        accuracy = _number('accuracy', self.accuracy, 0.0, 1.0)
        put(self, 'accuracy', accuracy)
        ci = self.accuracy_ci95
        if isinstance(ci, (str, bytes)) or not hasattr(ci, '__len__') or len(ci) != 2:
            raise ProfileError(f'must be a pair [low, high], got {ci!r}', 'accuracy_ci95')
        low = _number('accuracy_ci95[0]', ci[0], 0.0, 1.0)
        high = _number('accuracy_ci95[1]', ci[1], 0.0, 1.0)
        if not low <= accuracy <= high:
            raise ProfileError(f'[{low!r}, {high!r}] must contain the accuracy {accuracy!r}',
                               'accuracy_ci95')
        put(self, 'accuracy_ci95', (low, high))
        put(self, 'n_samples', _integer('n_samples', self.n_samples, 1))
        for key in ('latency_ms', 'spikes', 'energy_j'):
            put(self, key, _number(key, getattr(self, key)))
        put(self, 'ops', _ops('ops', self.ops))
        for key in ('train_latency_ms', 'train_energy_j'):
            if getattr(self, key) is not None:
                put(self, key, _number(key, getattr(self, key)))
        if self.train_ops is not None:
            put(self, 'train_ops', _ops('train_ops', self.train_ops))
        if self.params is not None:
            if not isinstance(self.params, Mapping):
                raise ProfileError(f'must be a mapping name -> number, got {self.params!r}',
                                   'params')
            values = {}
            for name, value in self.params.items():
                if not isinstance(name, str) or not name:
                    raise ProfileError(f'parameter names must be non-empty strings, got '
                                       f'{name!r}', 'params')
                values[name] = _number(f'params.{name}', value, -math.inf)
            put(self, 'params', values)
        if self.early_exit_accuracy is not None:
            put(self, 'early_exit_accuracy',
                _number('early_exit_accuracy', self.early_exit_accuracy, 0.0, 1.0))
        if self.early_exit_mean_timesteps is not None:
            put(self, 'early_exit_mean_timesteps',
                _number('early_exit_mean_timesteps', self.early_exit_mean_timesteps, 1.0, t))
        if self.confidence_bins is not None:
            try:
                put(self, 'confidence_bins', check_bins(
                    self.confidence_bins, self.n_samples, round(accuracy * self.n_samples)))
            except ValueError as exc:
                raise ProfileError(str(exc), 'confidence_bins') from None
        self._check_early_exit_rule()

    def _check_early_exit_rule(self) -> None:
        """Check the early-exit rule and its bins (both parts of the rule, beside figures)."""
        put = object.__setattr__
        margin, floor = self.early_exit_margin, self.early_exit_min_steps
        if (margin is None) != (floor is None):
            raise ProfileError('needs early_exit_margin and early_exit_min_steps together',
                               'early_exit_margin' if margin is None else 'early_exit_min_steps')
        if margin is not None:
            if self.early_exit_accuracy is None:
                raise ProfileError('an early-exit rule without early_exit_accuracy',
                                   'early_exit_margin')
            margin = _number('early_exit_margin', margin)
            if not margin > 0.0:
                raise ProfileError(f'must be > 0, got {margin!r}', 'early_exit_margin')
            put(self, 'early_exit_margin', margin)
            put(self, 'early_exit_min_steps', _integer('early_exit_min_steps', floor, 1))
        bins = self.early_exit_confidence_bins
        if bins is not None:
            if margin is None:
                raise ProfileError('needs the early-exit rule it was measured with '
                                   '(early_exit_margin, early_exit_min_steps)',
                                   'early_exit_confidence_bins')
            try:
                put(self, 'early_exit_confidence_bins', check_bins(
                    bins, self.n_samples, round(self.early_exit_accuracy * self.n_samples)))
            except ValueError as exc:
                raise ProfileError(str(exc), 'early_exit_confidence_bins') from None

    def early_exit_rule(self) -> Optional[Tuple[float, int]]:
        """Return ``(margin, min_steps)`` of the early-exit figures, or None (not recorded)."""
        if self.early_exit_margin is None:
            return None
        return self.early_exit_margin, self.early_exit_min_steps

    def calibrated(self, confidence: float, early_exit: bool = False) -> Optional[float]:
        """
        Return the probability that a result at T of ``confidence`` is right, or None.

        The accuracy of its bin of :attr:`confidence_bins` (``early_exit``: of
        :attr:`early_exit_confidence_bins`, results of :meth:`early_exit_rule`), leaning on the
        T's overall one and on its neighbours when the bin holds few results, monotone in
        confidence (:func:`~topspark_ros.core.topspark.calibration.calibrated`); None without
        bins, or for a confidence outside (0, 1].
        """
        bins = self.early_exit_confidence_bins if early_exit else self.confidence_bins
        if bins is None:
            return None
        return calibrated(bins, confidence)


@dataclass(frozen=True)
class TimestepProfile:
    """
    One model's timestep profile: what was measured, where, and one entry per profiled T.

    ``entries`` are kept sorted by T (ascending); T values are unique and there is at least
    one. Every field is checked on construction (:class:`ProfileError` naming the field).

    Attributes
    ----------
    model_path
        the model (checkpoint metadata file) measured; relative to the profile's folder when
        relative.
    model_sha256
        SHA-256 (64 lowercase hex digits) of the model's tensor file.
    model_family
        model family (``'stdp'``, ``'converted'``, ...).
    dataset, split, n_samples
        held-out data the figures were measured on.
    machine
        description of the computer that measured the latencies.
    energy_preset
        name of the :data:`~topspark_ros.core.energy.PRESETS` entry that priced ``energy_j``.
    created
        ISO 8601 date and time of the measurement.
    package_version
        topspark_ros version that measured it.
    entries
        one :class:`ProfileEntry` per profiled T.
    ann_macs
        MACs per input of the same network as an ANN (the model's ``ann_ops()``): what the
        energy monitor compares the SNN with when its ``ann_macs`` parameter is 0. None: not
        recorded (profiles written before it was).
    enhancement
        how the entries' ``params`` were found (the record
        :func:`topspark_ros.core.topspark.records.describe` makes: command, data, search, per-T
        validation figures), or None. Plain data only (mappings with string keys, lists,
        strings, numbers, booleans, null).
    reference_timesteps
        None when ``accuracy`` is measured against labels. A label-free profile (unlabelled
        deployment data) sets it to the T whose predictions served as the reference: every
        entry's ``accuracy`` is then the *agreement* with the model's own prediction at that
        T (see :func:`topspark_ros.core.topspark.sweep.sweep`).
    measurement
        how the entries were measured, to measure them again: ``topspark sweep`` records its
        ``command``, ``seed`` (the images drawn and their input spikes) and ``batch_size``;
        None: not recorded. Plain data, as ``enhancement``.

    """

    model_path: str
    model_sha256: str
    model_family: str
    dataset: str
    split: str
    n_samples: int
    machine: str
    energy_preset: str
    created: str
    package_version: str
    entries: Tuple[ProfileEntry, ...]
    ann_macs: Optional[float] = None
    enhancement: Optional[Mapping] = None
    reference_timesteps: Optional[int] = None
    measurement: Optional[Mapping] = None

    def __post_init__(self) -> None:
        """Check the header and the entries; sort the entries by T."""
        if self.reference_timesteps is not None:
            object.__setattr__(self, 'reference_timesteps',
                               _integer('reference_timesteps', self.reference_timesteps, 1))
        for key in ('model_path', 'model_family', 'dataset', 'split', 'machine',
                    'package_version'):
            _text(key, getattr(self, key))
        if not isinstance(self.model_sha256, str) or not _SHA256.fullmatch(self.model_sha256):
            raise ProfileError(f'must be 64 lowercase hex digits, got {self.model_sha256!r}',
                               'model_sha256')
        _integer('n_samples', self.n_samples, 1)
        if self.ann_macs is not None:
            object.__setattr__(self, 'ann_macs', _number('ann_macs', self.ann_macs))
        if self.energy_preset not in PRESETS:
            raise ProfileError(f'unknown energy preset {self.energy_preset!r} (known: '
                               f'{", ".join(sorted(PRESETS))})', 'energy_preset')
        created = self.created
        if isinstance(created, (datetime.date, datetime.datetime)):
            created = created.isoformat()  # an unquoted date in hand-written YAML
            object.__setattr__(self, 'created', created)
        try:
            datetime.datetime.fromisoformat(_text('created', created))
        except ValueError:
            raise ProfileError(f'must be an ISO 8601 date, got {created!r}', 'created') from None
        entries = tuple(self.entries)
        if not entries:
            raise ProfileError('a profile needs at least one entry', 'entries')
        seen = {}
        for i, entry in enumerate(entries):
            if not isinstance(entry, ProfileEntry):
                raise ProfileError(f'must be a ProfileEntry, got {type(entry).__name__}',
                                   f'entries[{i}]')
            if entry.timesteps in seen:
                raise ProfileError(f'duplicate T={entry.timesteps} (also entries['
                                   f'{seen[entry.timesteps]}])', f'entries[{i}].timesteps')
            seen[entry.timesteps] = i
        object.__setattr__(self, 'entries', tuple(sorted(entries, key=lambda e: e.timesteps)))
        if self.enhancement is not None:
            if not isinstance(self.enhancement, Mapping):
                raise ProfileError(f'must be a mapping, got {type(self.enhancement).__name__}',
                                   'enhancement')
            object.__setattr__(self, 'enhancement', _plain('enhancement', self.enhancement))
        if self.measurement is not None:
            if not isinstance(self.measurement, Mapping):
                raise ProfileError(f'must be a mapping, got {type(self.measurement).__name__}',
                                   'measurement')
            object.__setattr__(self, 'measurement', _plain('measurement', self.measurement))

    @property
    def agreement_based(self) -> bool:
        """Whether ``accuracy`` is agreement with the model at ``reference_timesteps``."""
        return self.reference_timesteps is not None

    @property
    def preset(self) -> str:
        """Return ``energy_preset`` (the name the nodes report)."""
        return self.energy_preset

    @property
    def timesteps(self) -> list:
        """Return the profiled T values, ascending."""
        return [e.timesteps for e in self.entries]

    @property
    def baseline(self) -> ProfileEntry:
        """Return the full-T reference: the entry with the largest T."""
        return self.entries[-1]

    def entry(self, timesteps: int) -> ProfileEntry:
        """Return the entry of exactly ``timesteps``; KeyError when T was not profiled."""
        for e in self.entries:
            if e.timesteps == timesteps:
                return e
        raise KeyError(f'T={timesteps} is not in the profile (profiled: {self.timesteps})')

    def priced(self, preset: str) -> 'TimestepProfile':
        """
        Return this profile with every energy priced under ``preset`` (self when it is already).

        The energies are made again from the entries' operation counts (``ops`` and
        ``train_ops``), as ``topspark sweep --preset`` prices them: what a sweep under
        ``preset`` would have written, without measuring again. Everything else is kept.
        ValueError for an unknown preset.
        """
        if preset == self.energy_preset:
            return self
        model = EnergyModel(preset)  # ValueError for an unknown name

        def priced_entry(e: ProfileEntry) -> ProfileEntry:
            train = None if e.train_ops is None else model.estimate(e.train_ops).compute_j
            return replace(e, energy_j=model.estimate(e.ops).compute_j, train_energy_j=train)
        return replace(self, energy_preset=model.preset.name,
                       entries=tuple(priced_entry(e) for e in self.entries))

    def energy_mismatch(self, rel_tol: float = 1e-6) -> Optional[str]:
        """
        Return where an energy differs from its operation counts priced by the profile's preset.

        None when every ``energy_j`` and ``train_energy_j`` is what ``energy_preset`` prices
        its ``ops`` / ``train_ops`` at (as a sweep writes them); else a line naming the first
        T that is not: a file edited or damaged, whose figures the nodes take under its own
        preset and price again from the counts under any other (a review: a baseline of 0,
        or one written in uJ, loaded without a word).
        """
        model = EnergyModel(self.energy_preset)
        for e in self.entries:
            for what, stored, ops in (('energy_j', e.energy_j, e.ops),
                                      ('train_energy_j', e.train_energy_j, e.train_ops)):
                if stored is None or ops is None:
                    continue
                priced = model.estimate(ops).compute_j
                if abs(stored - priced) > rel_tol * max(abs(priced), 1e-30):
                    return (f'T={e.timesteps}: {what} {stored:.4g} J is not its operation '
                            f'counts priced under {self.energy_preset} ({priced:.4g} J): the '
                            'file was edited or damaged (`topspark sweep` writes them equal); '
                            'sweep the model again')
        return None

    def params_for(self, timesteps: int) -> Optional[dict]:
        """
        Return (a copy of) the enhanced parameters for exactly ``timesteps``, or None.

        Rule: exact match only. Parameters are enhanced (searched) for one T and validated at
        that T; applied at another T they are untested, so a T that was not profiled, or was
        profiled without enhancement, runs with the model's own parameters (None). The
        strategy only ever picks profiled T values.
        """
        for e in self.entries:
            if e.timesteps == timesteps:
                return None if e.params is None else dict(e.params)
        return None


def default_profile_path(model_path: Union[str, os.PathLike]) -> Path:
    """Return where the profile of ``model_path`` goes: ``<dir>/<stem>.profile.yaml``."""
    model_path = Path(model_path)
    return model_path.with_name(f'{model_path.stem}.profile.yaml')


def resolve_model_path(profile: TimestepProfile, profile_path: Union[str, os.PathLike]) -> str:
    """
    Return the path of the model ``profile`` describes, read from the file ``profile_path``.

    Its ``model_path`` as it is when absolute, else relative to the folder of ``profile_path``.
    """
    return os.path.join(os.path.dirname(os.path.abspath(profile_path)), profile.model_path)


_HEADER = ('model_path', 'model_sha256', 'model_family', 'dataset', 'split', 'n_samples',
           'machine', 'energy_preset', 'created', 'package_version')
_ENTRY_KEYS = tuple(f.name for f in fields(ProfileEntry))
_ENTRY_REQUIRED = tuple(f.name for f in fields(ProfileEntry) if f.default is not None)
_LEFT_OUT_WHEN_NULL = tuple(_SINCE)  # not written where null: older readers refuse the keys


def profile_to_dict(profile: TimestepProfile) -> dict:
    """Return ``profile`` as plain data (the YAML document :func:`save_profile` writes)."""
    out = {'schema_version': max([PLAIN_SCHEMA_VERSION] + [
        version for e in profile.entries for key, version in _SINCE.items()
        if getattr(e, key) is not None])}
    out.update({key: getattr(profile, key) for key in _HEADER})
    if profile.ann_macs is not None:
        out['ann_macs'] = profile.ann_macs
    if profile.enhancement is not None:
        out['enhancement'] = profile.enhancement
    if profile.reference_timesteps is not None:
        out['reference_timesteps'] = profile.reference_timesteps
    if profile.measurement is not None:
        out['measurement'] = profile.measurement
    entries = []
    for e in profile.entries:
        item = {}
        for key in _ENTRY_KEYS:
            value = getattr(e, key)
            if key in _LEFT_OUT_WHEN_NULL and value is None:
                continue
            if key in ('confidence_bins', 'early_exit_confidence_bins'):
                value = [list(row) for row in value]
            elif isinstance(value, OpCounts):
                value = value.as_dict()
            elif isinstance(value, Mapping):
                value = dict(value)
            elif isinstance(value, tuple):
                value = list(value)
            item[key] = value
        entries.append(item)
    out['entries'] = entries
    return out


def profile_from_dict(data, source: str = '<data>') -> TimestepProfile:
    """
    Return the profile in ``data`` (as :func:`profile_to_dict` gives), strictly validated.

    Raises
    ------
    ProfileError
        ``<source>: <key path>: <problem>`` for the first problem found.

    """
    try:
        if not isinstance(data, Mapping):
            raise ProfileError(f'the document must be a mapping, got {type(data).__name__}')
        if 'tensors' in data and 'family' in data:  # ('family: unknown key'; a CLI review)
            raise ProfileError('this is a checkpoint, not a timestep profile (`topspark sweep '
                               '-m MODEL` writes the profile, MODEL.profile.yaml)')
        top = ('schema_version',) + _HEADER + ('entries',)
        _check_keys(data, top, top + ('ann_macs', 'enhancement', 'reference_timesteps',
                                      'measurement'), None)
        version = data['schema_version']
        if isinstance(version, bool) or version not in READ_SCHEMA_VERSIONS:
            raise ProfileError(f'{version!r} is not supported (this version of topspark_ros '
                               f"reads {', '.join(map(str, READ_SCHEMA_VERSIONS))})",
                               'schema_version')
        raw_entries = data['entries']
        if not isinstance(raw_entries, list):
            raise ProfileError(f'must be a list, got {type(raw_entries).__name__}', 'entries')
        entries = []
        for i, raw in enumerate(raw_entries):
            where = f'entries[{i}]'
            try:
                if not isinstance(raw, Mapping):
                    raise ProfileError(f'must be a mapping, got {type(raw).__name__}')
                _check_keys(raw, _ENTRY_REQUIRED, _ENTRY_KEYS, None)
                for key, since in _SINCE.items():
                    if version < since and raw.get(key) is not None:
                        raise ProfileError(f'needs schema_version {since}, the file says '
                                           f'{version!r}', key)
                entries.append(ProfileEntry(**raw))
            except ProfileError as exc:
                raise exc.within(where) from None
        header = {key: data[key] for key in _HEADER}
        return TimestepProfile(**header, entries=tuple(entries), ann_macs=data.get('ann_macs'),
                               enhancement=data.get('enhancement'),
                               reference_timesteps=data.get('reference_timesteps'),
                               measurement=data.get('measurement'))
    except ProfileError as exc:
        raise exc.within(path=source) from None


WITH_END = 'with an end line'
"""Said in the first line of a profile that ends with :data:`END_LINE` (since 2026-12-07)."""
END_LINE = '# end of the TopSpark timestep profile'
"""
The last line of a profile :func:`save_profile` writes.

A copy cut short (a transfer interrupted, a full disk on the way) that was still valid YAML
loaded with the entries it kept, and the controller chose among fewer T without a word (a
review). A YAML comment: older versions read such a file as before.
"""


def _check_whole(text: str) -> None:
    """
    Raise ProfileError when ``text`` says it ends with :data:`END_LINE` and has no such line.

    Any line ending (a copy made on Windows, or an old Mac's), a byte-order mark, blank lines
    and what was added by hand after the end line are taken.
    """
    lines = text.lstrip('\ufeff').splitlines()
    if lines and lines[0].startswith('#') and WITH_END in lines[0] \
            and END_LINE not in (line.strip() for line in lines):
        raise ProfileError(f"cut short: its first line says it ends with '{END_LINE}', which "
                           'is not there (a copy interrupted, a disk that filled up?); copy '
                           'it again whole, or sweep the model again')


def save_profile(profile: TimestepProfile, path: Union[str, os.PathLike], *,
                 replace: bool = True) -> Path:
    """
    Write ``profile`` to ``path`` (YAML) atomically and return the path.

    The text goes to a temporary file in the same folder, is fsync'ed and then renamed over
    ``path`` (``os.replace``): a crash or an error leaves the previous file intact, and the
    next save removes the temporaries a killed one left (unlocked and stale, see
    :func:`~topspark_ros.core.files.remove_stale_temporaries`). ``replace`` False: an existing
    ``path``, also one made while the profile was measured, is kept (``FileExistsError``).
    """
    if not isinstance(profile, TimestepProfile):
        raise ValueError(f'profile must be a TimestepProfile, got {type(profile).__name__}')
    path = Path(path)
    data = profile_to_dict(profile)
    text = (f"# TopSpark timestep profile (schema {data['schema_version']}, {WITH_END}), "
            f'written by topspark_ros {profile.package_version}\n')
    text += yaml.safe_dump(data, sort_keys=False, default_flow_style=None,
                           width=99, allow_unicode=True)
    text += END_LINE + '\n'
    directory = path.parent if str(path.parent) else Path('.')
    directory.mkdir(parents=True, exist_ok=True)  # a missing folder failed after the sweep
    # (atomic_write removes the temporaries of killed saves of this profile first)
    atomic_write(directory, f'.{path.name}.', text.encode('utf-8'), path, replace=replace)
    fsync_dir(directory)
    return path


def update_profile(path: Union[str, os.PathLike],
                   change: Callable[[TimestepProfile], TimestepProfile]) -> TimestepProfile:
    """
    Read the profile at ``path``, write ``change(profile)`` there, atomically; return it.

    Read, changed and written under an exclusive lock (``flock`` on ``.<name>.lock`` beside
    it), so writers that change a profile one after the other all keep their changes: two
    ``topspark enhance`` runs on other T of one profile each read it at their start and wrote
    their copy back at their end, the later one dropping the other's values while both said
    they were saved (a user review). ``change`` sees the profile as it is now.
    """
    path = Path(path)
    directory = path.parent if str(path.parent) else Path('.')
    with open(directory / f'.{path.name}.lock', 'a') as handle:
        lock(handle.fileno(), blocking=True)
        updated = change(load_profile(path))
        save_profile(updated, path)
    return updated


def load_profile_parameter(path: Union[str, os.PathLike],
                           name: str = 'profile_path') -> TimestepProfile:
    """
    Read the profile a node's parameter ``name`` gives; ValueError naming the parameter.

    A missing file said only ``[Errno 2] No such file or directory`` in a node's log and
    ``/diagnostics``, not which parameter to fix (a review of the parameters).
    """
    try:
        return load_profile(path)
    except OSError as exc:
        raise ValueError(f'{name}: cannot read {os.fspath(path)}: '
                         f'{exc.strerror or exc}') from None
    except ValueError as exc:
        raise ValueError(f'{name}: {exc}') from None


def yaml_problem(exc: 'yaml.YAMLError') -> str:
    """
    Return a YAML error in one line: its problem and where (``line 3, column 7``).

    PyYAML's text takes three lines and a caret (a command's error was that, and a node's
    log line; a review).
    """
    problem = getattr(exc, 'problem', None) or ' '.join(str(exc).split())
    mark = getattr(exc, 'problem_mark', None)
    return problem if mark is None else f'{problem} (line {mark.line + 1}, column ' \
        f'{mark.column + 1})'


def load_profile(path: Union[str, os.PathLike]) -> TimestepProfile:
    """
    Read the profile at ``path`` (``yaml.safe_load`` only) and validate it strictly.

    Raises
    ------
    OSError
        when the file cannot be read.
    ProfileError
        when it is not a regular file (a FIFO or device is never read), is larger than
        :data:`MAX_PROFILE_BYTES`, is not valid YAML or not a valid profile; the message
        names the file and the key path (e.g. ``entries[3].accuracy``).

    """
    path = os.fspath(path)
    try:  # a regular file of at most MAX_PROFILE_BYTES: never a FIFO or device
        text = read_regular(Path(path), MAX_PROFILE_BYTES, ProfileError).decode('utf-8')
    except UnicodeDecodeError as exc:
        raise ProfileError(f'not valid YAML: {exc}', path=path) from None
    try:
        _check_whole(text)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ProfileError(f'not valid YAML: {yaml_problem(exc)}', path=path) from None
    except RecursionError:
        raise ProfileError('not valid YAML: nested too deeply', path=path) from None
    except ProfileError as exc:
        raise exc.within(path=path) from None
    return profile_from_dict(data, source=path)
