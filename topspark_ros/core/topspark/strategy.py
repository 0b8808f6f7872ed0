"""
The trade-off strategy: pick the timestep count T from a profile, constraints and live signals.

:func:`choose_timestep` is a pure function; :class:`TimestepSelector` wraps it with hysteresis
for a controller. Only profiled T values are ever chosen.

**Battery policy** (:class:`BatteryPolicy`, level from ``battery_fraction`` f):

.. code-block:: text

    f < critical_fraction  critical: energy_saver;   d += max(low_extra_drop, critical_extra_drop)
    f < low_fraction       low:      one mode step;  d += low_extra_drop
    otherwise, or unknown  normal:   mode and d as set
    (steps: accuracy_first -> balanced -> energy_saver; d = allowed accuracy drop)

A level is left upwards only when f >= its threshold + ``hysteresis_fraction``
(:meth:`BatteryPolicy.level` with the previous level; :class:`TimestepSelector` keeps it).

**Feasibility** of a profiled T (accuracy a, latency l, energy e per inference; the baseline is
the entry with the largest T, and ``a_base`` its accuracy, or 1 for an agreement-based profile:
agreement with the model at its reference T):

.. code-block:: text

    accuracy   a >= a_base - d                                   (max_accuracy_drop)
    latency    L(T) <= max_latency_ms                            (when set)
    energy     E <= max_energy_j                                 (when set)
    power      P <= max_power_w                                  (when set and P is known)

    L  latency on the robot = max(l, c + s * l, m): what the classifier measures (its
       ``latency_ms``: decoding, preprocessing and inference of one input) at the T it ran
       at, l(T) interpolated linearly in T between profiled values. Measured at one T only
       (T_m, ``measured_timesteps``): s = 1 and c = measured_latency_ms - l(T_m), what the
       robot adds to the profile (decoding and preprocessing an input cost milliseconds
       where the inference costs tens of microseconds: scaled by the measured ratio
       instead, a millisecond at T=8 predicted T=350 dozens of times slower than it runs
       and pinned T to the smallest for good). Measured at two T or more
       (``latency_points``, T_m's included) far enough apart to separate the two
       (profiled latencies :data:`LATENCY_FIT_RATIO` apart, and a fitted rise over them of
       :data:`LATENCY_FIT_SPREAD` of the measured mean at least): c and s fitted by least
       squares (c >= 0, s > 0), which also takes a machine slower than profiled (s > 1); a
       T predicted too optimistically from one point is left at its first measurements. At
       two T or more too close for that: s = 1 and c = the median of measured - profiled
       over all of them (from T_m alone, c moved with each T's noise and T switched every
       few frames). Never below l: a faster measurement does not loosen the ceiling; nor
       below m(T), the latency T itself measured (if it ran): a T measured over a ceiling is
       not taken again on the model's word.
    E  energy = measured_energy_j * e / e(T_p)   when the monitor's energy per inference is
                                                 given (as power: the profile's energies
                                                 priced on the robot's inputs),
              = e                                else.
    P  power = measured_power_w * e / e(T_p)     when a power measurement is given, T_p the
                                                 mean T it was measured at
                                                 (``power_timesteps``; T_m when not given),
             = e * rate_hz                       else when the inference rate is known,
             unknown                             else: max_power_w is not checked (priced
                                                 as back-to-back inference at the profile's
                                                 microsecond latencies, it put T at the
                                                 smallest while no classifier ran, and
                                                 reported a power violation; a review).

**Early exit** (``LiveSignals.early_exit``: the classifier's results say it stops inputs once
their class is decided). T is then a budget: an input at T uses m(T) <= T steps, and T is
priced at them: a and e above are the profile's ``early_exit_accuracy`` at T (its full-T
accuracy where it has none) and e(T) m(T) / T (T's energy at its own parameters, scaled by the
steps: e(m(T)) read off the curve across T was of other T's parameters, and for an event model
of its window in fewer steps, 2.2x the measured energy at T=350; scaled, within 8 % of it at
every T of the shipped models; a review), and the objective's l is l(m(T)), linear in T between
profiled values. The latency ceiling stays per input: L(T) is checked at the whole T (an input
that never decides runs all T steps; at the mean steps, 18 % of the shipped model's inputs at
T=250 ran past a ceiling priced so), with the robot's c and s fitted from measured latencies
at T set against l(m(T)) (medians against a mean: c about right, a little low). m(T) is the
mean steps used that the results showed at T (``steps_used``), else the profile's
``early_exit_mean_timesteps`` at T, else T (priced whole, on the safe side). Priced at the
whole T, a budget that early exit keeps well within reach (the shipped model at T=350: 82
steps on average, 1.2 of 5.2 uJ) was refused for an energy budget, and the full-T accuracy
above the early-exit one was promised.
The baseline (a_base, l_base, e_base) stays the full T's without early exit.

**Objective** (smaller is better), among the feasible T:

.. code-block:: text

    J = w_a * (a_max - a) / max(d, 0.01) + w_l * l / l_base + w_e * e / e_base

    a_max = the best accuracy in the profile; accuracy loss in units of the allowed drop
    (at least 1 point), latency and energy as fractions of the full-T baseline.

    mode            (w_a,  w_l,  w_e)     picks
    accuracy_first  (1,    0,    0)       the most accurate feasible T
    balanced        (1/3,  1/3,  1/3)     the best compromise
    energy_saver    (0,    0,    1)       the lowest-energy feasible T

Ties go to the smaller T. When no T is feasible, the **least-bad** T is chosen: the smallest
sum of normalised violations, each ``max(0, value / limit - 1)`` for latency, energy and power
and ``max(0, a_req - a) / a_base`` for accuracy (the shortfall as a fraction of the baseline
accuracy), ties broken by J, then by the smaller T, among the T within ``max_timesteps`` when
any profiled T is (a larger one is clamped by the classifier to a T never profiled, run with
its own parameters: it was taken as one more violation, T=64 commanded under a cap of 60; a
review). ``Choice.violated`` names the constraints (the :class:`Constraints` field names) the
chosen T violates.

**Hysteresis** (:class:`TimestepSelector`): besides the battery band, the current T is kept
unless (a) it violates a constraint and another T violates less (then the switch is immediate),
or (b) the best T's objective is lower by more than ``switch_margin`` (relative):
``J_best < (1 - switch_margin) * J_current``, and the best T keeps that margin under the
latency, energy and power limits too (each value <= ``(1 - switch_margin) * limit``). So a T
left for a violation is taken again only once it has that headroom: near a power cap, the
monitor's measurements scattering around it switched T back and forth several times a second.
A change of constraints, mode, battery policy or margin (:meth:`TimestepSelector.reconfigure`)
makes the next update choose afresh.
"""

from dataclasses import dataclass, replace
import enum
import math
from numbers import Real
import statistics
from types import MappingProxyType
from typing import Callable, Mapping, Optional, Sequence, Tuple

from topspark_ros.core.energy import format_joules, format_watts
from topspark_ros.core.topspark.profile import TimestepProfile

_TOL = 1e-9
"""Relative tolerance of every constraint comparison (float noise is not a violation)."""

_MIN_DROP_SCALE = 0.01
"""Smallest accuracy-loss unit of the objective (1 point), for an allowed drop of 0."""


class Mode(enum.Enum):
    """Trade-off modes, from most accurate to most frugal (values are the parameter strings)."""

    ACCURACY_FIRST = 'accuracy_first'
    BALANCED = 'balanced'
    ENERGY_SAVER = 'energy_saver'


MODE_WEIGHTS: Mapping[Mode, Tuple[float, float, float]] = MappingProxyType({
    Mode.ACCURACY_FIRST: (1.0, 0.0, 0.0),
    Mode.BALANCED: (1.0 / 3.0, 1.0 / 3.0, 1.0 / 3.0),
    Mode.ENERGY_SAVER: (0.0, 0.0, 1.0),
})
"""Objective weights ``(w_accuracy, w_latency, w_energy)`` of each mode."""

_MODE_ORDER = (Mode.ACCURACY_FIRST, Mode.BALANCED, Mode.ENERGY_SAVER)
_MODE_GOAL = {Mode.ACCURACY_FIRST: 'highest accuracy', Mode.BALANCED: 'best balance',
              Mode.ENERGY_SAVER: 'lowest energy'}


class BatteryLevel(enum.Enum):
    """Battery levels of the :class:`BatteryPolicy`, from full to empty."""

    NORMAL = 'normal'
    LOW = 'low'
    CRITICAL = 'critical'


_LEVEL_ORDER = (BatteryLevel.NORMAL, BatteryLevel.LOW, BatteryLevel.CRITICAL)


def _finite(name: str, value, low: float = -math.inf, high: float = math.inf,
            low_open: bool = False) -> float:
    """Return ``value`` as a float; ValueError unless it is a finite number in range."""
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value):
        raise ValueError(f'{name} must be a finite number, got {value!r}')
    value = float(value)
    if value < low or value > high or (low_open and value == low):
        bracket = '(' if low_open else '['
        raise ValueError(f'{name} must be in {bracket}{low:g}, {high:g}], got {value!r}')
    return value


@dataclass(frozen=True)
class Constraints:
    """
    Limits per inference; None means no limit (ValueError for an invalid value).

    Attributes
    ----------
    max_accuracy_drop
        largest accuracy loss accepted versus the full-T baseline (fraction, 0.02 = 2 points).
    max_latency_ms
        latency ceiling (ms, > 0).
    max_energy_j
        energy budget per inference (J, > 0).
    max_power_w
        average power cap of the classifier (W, > 0).
    max_timesteps
        the largest T the classifier runs (its ``max_timesteps``, >= 1): a larger T would be
        clamped there, so the figures chosen for it would not be what runs.

    """

    max_accuracy_drop: float = 0.02
    max_latency_ms: Optional[float] = None
    max_energy_j: Optional[float] = None
    max_power_w: Optional[float] = None
    max_timesteps: Optional[int] = None

    def __post_init__(self) -> None:
        """Check every limit."""
        object.__setattr__(self, 'max_accuracy_drop',
                           _finite('max_accuracy_drop', self.max_accuracy_drop, 0.0, 1.0))
        for name in ('max_latency_ms', 'max_energy_j', 'max_power_w'):
            if getattr(self, name) is not None:
                object.__setattr__(self, name,
                                   _finite(name, getattr(self, name), 0.0, low_open=True))
        if self.max_timesteps is not None:
            if isinstance(self.max_timesteps, bool) or int(self.max_timesteps) != \
                    self.max_timesteps or self.max_timesteps < 1:
                raise ValueError(f'max_timesteps must be an integer >= 1, got '
                                 f'{self.max_timesteps!r}')
            object.__setattr__(self, 'max_timesteps', int(self.max_timesteps))


@dataclass(frozen=True)
class BatteryPolicy:
    """
    How the battery charge moves the mode and the allowed accuracy drop (module docstring).

    Attributes
    ----------
    low_fraction, critical_fraction
        charge thresholds (fractions, ``0 <= critical <= low <= 1``).
    low_extra_drop
        accuracy drop added on a low battery (fraction).
    critical_extra_drop
        accuracy drop added on a critical battery (fraction); never less than
        ``low_extra_drop`` is applied, so a lower battery never tightens the accuracy bound.
    hysteresis_fraction
        a level is left upwards only at threshold + this (fraction).
    recover_s
        ... and only once the charge has stayed there this long (s; 0: at once), in a
        :class:`TimestepSelector` given the time: a charge read from the voltage swings with
        the load, and 0.28 <-> 0.33 every 0.25 s flipped T six times in 1.5 s (a review).
        A level is entered downwards at once.

    """

    low_fraction: float = 0.3
    critical_fraction: float = 0.1
    low_extra_drop: float = 0.02
    critical_extra_drop: float = 0.05
    hysteresis_fraction: float = 0.02
    recover_s: float = 0.0

    def __post_init__(self) -> None:
        """Check the thresholds and drops."""
        for name in ('low_fraction', 'critical_fraction', 'low_extra_drop',
                     'critical_extra_drop', 'hysteresis_fraction'):
            object.__setattr__(self, name, _finite(name, getattr(self, name), 0.0, 1.0))
        object.__setattr__(self, 'recover_s', _finite('recover_s', self.recover_s, 0.0, 1e6))
        if self.critical_fraction > self.low_fraction:
            raise ValueError(f'critical_fraction ({self.critical_fraction}) must not exceed '
                             f'low_fraction ({self.low_fraction})')

    def extra_drop(self, level: BatteryLevel) -> float:
        """Return the accuracy drop ``level`` adds (fraction)."""
        if level == BatteryLevel.CRITICAL:
            return max(self.low_extra_drop, self.critical_extra_drop)
        return self.low_extra_drop if level == BatteryLevel.LOW else 0.0

    def threshold(self, level: BatteryLevel) -> Optional[float]:
        """Return the charge below which ``level`` starts (None for normal)."""
        return {BatteryLevel.LOW: self.low_fraction,
                BatteryLevel.CRITICAL: self.critical_fraction}.get(level)

    def level(self, fraction: Optional[float],
              previous: Optional[BatteryLevel] = None) -> BatteryLevel:
        """
        Return the battery level for charge ``fraction``, with hysteresis from ``previous``.

        Without ``previous`` (or when the charge falls): critical below ``critical_fraction``,
        low below ``low_fraction``, else normal. A level better than ``previous`` is reached
        only where ``fraction >= threshold + hysteresis_fraction``. An unknown charge (None)
        keeps ``previous`` (normal without one).
        """
        if fraction is None:
            return previous or BatteryLevel.NORMAL
        fraction = _finite('battery_fraction', fraction, 0.0, 1.0)

        def level_at(shift: float) -> BatteryLevel:
            if fraction < self.critical_fraction + shift:
                return BatteryLevel.CRITICAL
            return BatteryLevel.LOW if fraction < self.low_fraction + shift \
                else BatteryLevel.NORMAL

        now = level_at(0.0)
        if previous is None or _LEVEL_ORDER.index(now) >= _LEVEL_ORDER.index(previous):
            return now
        rising = level_at(self.hysteresis_fraction)
        return min(previous, rising, key=_LEVEL_ORDER.index)


def effective_mode(mode: Mode, level: BatteryLevel) -> Mode:
    """Return ``mode`` after the battery policy: one step toward energy_saver when low."""
    if level == BatteryLevel.CRITICAL:
        return Mode.ENERGY_SAVER
    if level == BatteryLevel.LOW:
        return _MODE_ORDER[min(_MODE_ORDER.index(mode) + 1, len(_MODE_ORDER) - 1)]
    return mode


def _t_pairs(name: str, what: str, pairs, value: Callable[[int, object], float]) -> tuple:
    """Return ``pairs`` of ``(T, x)`` checked: T an integer >= 1, ``value(T, x)`` for x."""
    checked = []
    for pair in pairs:
        try:
            at, x = pair
        except (TypeError, ValueError):
            raise ValueError(f'{name}: expected (T, {what}) pairs, got {pair!r}') from None
        if isinstance(at, bool) or not isinstance(at, int) or at < 1:
            raise ValueError(f'{name}: T must be an integer >= 1, got {at!r}')
        checked.append((at, value(at, x)))
    return tuple(checked)


@dataclass(frozen=True)
class LiveSignals:
    """
    What the robot measures now; None means unknown (ValueError for an invalid value).

    Attributes
    ----------
    battery_fraction
        state of charge in [0, 1].
    measured_latency_ms
        latency of recent inferences (ms), measured at ``measured_timesteps``.
    measured_timesteps
        the T the measurements were taken at (:class:`TimestepSelector` fills in its current T
        when this is None).
    rate_hz
        inference rate (Hz).
    measured_power_w
        average power of the classifier's inferences (W), as the energy monitor estimates it
        over its window.
    power_timesteps
        the mean T of the inferences that power was measured over (the energy monitor's
        window; None: ``measured_timesteps``). A window's power describes the T it ran at,
        not the T the latest classification reports: scaled from that, a power cap made the
        controller climb a T a frame and fall back at the next window (a user review).
    power_run_at
        with early exit, the T (the budget) the inferences of that window ran under: their
        steps are priced at its energy, scaled (:func:`profiled_energy_j`), as the controller
        priced the window; None: read off the profile across T. Kept with the window: priced
        at the T the latest results report, a window of T=350 read 0.65 of its cost once T=150
        had been commanded, and T flipped between them 136 times in 15 s (a review).
    measured_energy_j
        energy per inference over the same window (J); scales the energy budget's check as
        ``measured_power_w`` scales the power's (the profile's energies, measured on its data
        set, priced the robot's inputs 30 % low in a user review).
    latency_points
        ``((T, latency_ms), ...)``: latencies measured at other T (the latest of each; the
        controller keeps them until it runs at that T again). With ``measured_timesteps``'
        they fit the robot's latency as a fixed cost plus a multiple of the profile's (module
        docstring).
    early_exit
        the classifier stops inputs early (its results say so): a T is a budget, priced at
        the steps it uses (module docstring, "Early exit").
    steps_used
        ``((T, mean steps used), ...)``: the steps the classifier's inputs used on average at
        each T it ran at (``1 <= steps <= T``); with ``early_exit`` they price that T.

    """

    battery_fraction: Optional[float] = None
    measured_latency_ms: Optional[float] = None
    measured_timesteps: Optional[int] = None
    rate_hz: Optional[float] = None
    measured_power_w: Optional[float] = None
    power_timesteps: Optional[float] = None
    power_run_at: Optional[int] = None
    measured_energy_j: Optional[float] = None
    latency_points: Tuple[Tuple[int, float], ...] = ()
    early_exit: bool = False
    steps_used: Tuple[Tuple[int, float], ...] = ()

    def __post_init__(self) -> None:
        """Check the values that are known."""
        checks = {'battery_fraction': (0.0, 1.0, False), 'measured_latency_ms': (0.0, math.inf,
                  False), 'rate_hz': (0.0, math.inf, True),
                  'measured_power_w': (0.0, math.inf, False),
                  'power_timesteps': (1.0, math.inf, False),
                  'measured_energy_j': (0.0, math.inf, False)}
        for name, (low, high, low_open) in checks.items():
            if getattr(self, name) is not None:
                object.__setattr__(self, name, _finite(name, getattr(self, name), low, high,
                                                       low_open))
        for name in ('measured_timesteps', 'power_run_at'):
            t = getattr(self, name)
            if t is not None and (isinstance(t, bool) or not isinstance(t, int) or t < 1):
                raise ValueError(f'{name} must be an integer >= 1, got {t!r}')
        object.__setattr__(self, 'latency_points', _t_pairs(
            'latency_points', 'latency_ms', self.latency_points,
            lambda at, ms: _finite('latency_points', ms, 0.0, math.inf)))
        object.__setattr__(self, 'early_exit', bool(self.early_exit))
        object.__setattr__(self, 'steps_used', _t_pairs(
            'steps_used', 'mean steps', self.steps_used,
            lambda at, used: _finite(f'steps_used at T={at}', used, 1.0, float(at))))

    def replace(self, **changes) -> 'LiveSignals':
        """Return a copy with ``changes`` applied."""
        return replace(self, **changes)


@dataclass(frozen=True)
class Choice:
    """
    A chosen T, what it is expected to give and cost, and why.

    Attributes
    ----------
    timesteps
        the chosen T (always a profiled one).
    mode
        the mode in effect (after the battery policy).
    expected_accuracy, expected_latency_ms, expected_energy_j
        the profile's figures at T, latency and energy as the robot's measurements predict
        them (the figures the constraints were checked on; the profile's own energy was
        published while the check used the measured one, a review); with early exit, the
        accuracy and energy at the steps T is expected to use, the latency of an input that
        runs all T steps (the ceiling is per input).
    expected_steps
        the steps an input is expected to use at T: T, or fewer with early exit.
    expected_power_w
        predicted power (W), None when neither a rate nor a measurement gives it.
    feasible
        whether every constraint holds.
    violated
        names of the violated constraints (:class:`Constraints` fields), in field order.
    reason
        one human-readable line: the rule, the limits, the battery's effect.
    objective
        the mode's objective J at T (module docstring).
    battery_level
        the battery level in effect.
    allowed_accuracy_drop
        max_accuracy_drop plus the battery's extra drop (fraction).

    """

    timesteps: int
    mode: Mode
    expected_accuracy: float
    expected_latency_ms: float
    expected_energy_j: float
    expected_power_w: Optional[float]
    feasible: bool
    violated: Tuple[str, ...]
    reason: str
    objective: float
    battery_level: BatteryLevel
    allowed_accuracy_drop: float
    expected_steps: float = 0.0


# Evaluation --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Setting:
    """What the constraints, mode, battery and signals amount to for every T."""

    mode: Mode
    level: BatteryLevel
    allowed_drop: float
    required_accuracy: float
    latency_scale: float
    latency_offset_ms: float = 0.0
    latency_fitted_at: Tuple[int, ...] = ()
    early_exit: bool = False


@dataclass(frozen=True)
class _Row:
    """One profiled T under a :class:`_Setting`."""

    entry: object
    latency_ms: float
    energy_j: float
    power_w: Optional[float]
    objective: float
    excess: Tuple[Tuple[str, float], ...]
    accuracy: float = 0.0
    steps: float = 0.0
    steps_from: str = 'whole'

    @property
    def violation(self) -> float:
        """Return the sum of normalised violations, rounded so float noise does not rank."""
        return round(sum(v for _, v in self.excess), 12)

    @property
    def timesteps(self) -> int:
        return self.entry.timesteps


def _reference_accuracy(profile: TimestepProfile) -> float:
    """
    Return the accuracy the loss is counted from: the full-T baseline's.

    An agreement-based profile (label-free) counts agreement with the model at its
    ``reference_timesteps``, which agrees with itself: 1. Its largest T may agree less (a
    reference below it); counted from that, the loss bound let T go further from the
    reference than asked (a user review: T=8 at 0.94 agreement with a 2-point bound).
    """
    # A duck-typed profile (the report's steps) without the attribute is label-based.
    return 1.0 if getattr(profile, 'agreement_based', False) else profile.baseline.accuracy


def _interpolate(entries: Sequence, timesteps: float, attribute: str) -> float:
    """Return ``attribute`` at ``timesteps``, linear in T between entries, clamped at the ends."""
    if timesteps <= entries[0].timesteps:
        return getattr(entries[0], attribute)
    for lower, upper in zip(entries, entries[1:]):
        if timesteps <= upper.timesteps:
            w = (timesteps - lower.timesteps) / (upper.timesteps - lower.timesteps)
            return (1.0 - w) * getattr(lower, attribute) + w * getattr(upper, attribute)
    return getattr(entries[-1], attribute)


def profiled_energy_j(profile: TimestepProfile, timesteps: float,
                      run_at: Optional[int] = None) -> float:
    """
    Return the profile's energy per inference of inputs that ran ``timesteps`` steps.

    ``run_at``: the T they ran under with early exit (a budget they stopped within): its
    energy (linear in T between the profiled T) scaled by the steps, as the strategy prices
    each T (:func:`_energy_at`). Else linear in T between the profiled T, at ``timesteps``.
    """
    entries = list(profile.entries)
    if run_at is None or timesteps >= run_at:
        return _interpolate(entries, timesteps, 'energy_j')
    # (A T between profiled ones, a classifier's max_timesteps: its energy read across T,
    # then scaled; read at the steps, the error the scaling removes; a review.)
    return _interpolate(entries, run_at, 'energy_j') * float(timesteps) / run_at


def _steps(entries: Sequence, signals: LiveSignals) -> Callable[[int], Tuple[float, str]]:
    """
    Return ``steps(T) -> (steps an input uses at T, where from)`` (module docstring).

    T without early exit ('whole'); with it, the mean the classifier's results showed at T
    ('measured'), else the profile's ``early_exit_mean_timesteps`` at T ('profiled'), scaled
    by what the T measured used against their profiled steps ('profiled, scaled'), else T
    ('whole': a T never run under an early-exit rule the profile did not measure, on the
    safe side). Unscaled, every T measured read dearer than the T not yet run (the robot's
    inputs used 85 to 123 steps at T=250 and 350 against 77 and 82 profiled), and T went
    through every profiled T in turn as it came up (a review).
    """
    if not signals.early_exit:
        return lambda t: (float(t), 'whole')
    measured = dict(signals.steps_used)
    profiled = {e.timesteps: getattr(e, 'early_exit_mean_timesteps', None) for e in entries}
    both = [(measured[t], profiled[t]) for t in measured if profiled.get(t)]
    scale = sum(m for m, _ in both) / sum(p for _, p in both) if both else 1.0

    def steps(t: int) -> Tuple[float, str]:
        if t in measured:
            return min(measured[t], float(t)), 'measured'
        at = profiled.get(t)
        if at is None:
            return float(t), 'whole'
        return min(float(at) * scale, float(t)), 'profiled, scaled' if both else 'profiled'
    return steps


def _evaluate(profile: TimestepProfile, constraints: Constraints, mode: Mode,
              signals: LiveSignals, policy: BatteryPolicy,
              level: Optional[BatteryLevel]) -> Tuple[_Setting, list]:
    """Return the setting and one :class:`_Row` per profiled T (ascending T)."""
    entries = list(profile.entries)
    base = profile.baseline
    level = policy.level(signals.battery_fraction) if level is None else level
    used = effective_mode(mode, level)
    allowed = constraints.max_accuracy_drop + policy.extra_drop(level)
    required = _reference_accuracy(profile) - allowed
    t_meas = signals.measured_timesteps
    steps_at = _steps(entries, signals)
    offset, scale, fitted = _latency_model(entries, signals, steps_at)
    measured_at = _measured_latencies(signals)
    t_power, run_at = signals.power_timesteps, signals.power_run_at
    if t_power is None and t_meas is not None:
        t_power = steps_at(t_meas)[0]
        run_at = t_meas if signals.early_exit else None
    measured = signals.measured_power_w is not None or signals.measured_energy_j is not None
    measured_energy = 0.0  # (priced as the controller's energy windows priced it)
    if measured and t_power is not None:
        measured_energy = profiled_energy_j(profile, t_power, run_at)
    accuracies = [_accuracy(e, signals.early_exit) for e in entries]
    a_max = max(accuracies)
    w_a, w_l, w_e = MODE_WEIGHTS[used]
    drop_unit = max(allowed, _MIN_DROP_SCALE)
    rows = []
    for e, accuracy in zip(entries, accuracies):
        steps, steps_from = steps_at(e.timesteps)
        whole = steps >= e.timesteps
        profiled_latency = e.latency_ms if whole else _interpolate(entries, steps, 'latency_ms')
        profiled_energy = _energy_at(e, steps)
        # A latency ceiling is per input: one that never decides runs all T steps (priced at
        # the mean steps, 18 % of the shipped model's inputs at T=250 ran past it; a review).
        # Never below what the T itself measured: a model that missed it (a machine slower
        # than profiled, not fitted) took T again where it broke the ceiling (a review).
        latency = max(e.latency_ms, offset + scale * e.latency_ms,
                      measured_at.get(e.timesteps, 0.0))
        energy = profiled_energy
        if measured_energy > 0.0 and signals.measured_energy_j is not None:
            energy = signals.measured_energy_j * profiled_energy / measured_energy
        if measured_energy > 0.0 and signals.measured_power_w is not None:
            power = signals.measured_power_w * profiled_energy / measured_energy
        elif signals.rate_hz is not None:
            power = profiled_energy * signals.rate_hz
        else:
            power = None
        objective = (w_a * (a_max - accuracy) / drop_unit
                     + w_l * (profiled_latency / base.latency_ms if base.latency_ms > 0 else 0.0)
                     + w_e * (profiled_energy / base.energy_j if base.energy_j > 0 else 0.0))
        excess = []
        if accuracy < required - _TOL:
            excess.append(('max_accuracy_drop',
                           (required - accuracy) / max(base.accuracy, _TOL)))
        for name, value in (('max_latency_ms', latency), ('max_energy_j', energy),
                            ('max_power_w', power), ('max_timesteps', e.timesteps)):
            limit = getattr(constraints, name)
            if limit is not None and value is not None and value > limit * (1.0 + _TOL):
                excess.append((name, value / limit - 1.0))
        rows.append(_Row(e, latency, energy, power, objective, tuple(excess), accuracy, steps,
                         steps_from))
    return _Setting(used, level, allowed, required, scale, offset, fitted,
                    signals.early_exit), rows


def _energy_at(entry, steps: float) -> float:
    """
    Return the energy of an input at ``entry``'s T that runs ``steps`` of its steps.

    Its T's energy scaled by the steps (at its own parameters). The energy curve across T,
    read at the mean steps, was of other T's parameters (and for an event model of its
    window in fewer steps): the shipped event model at T=350 was priced 1.35 uJ where its
    early exit measured 0.62 (a review); so scaled, 0.64.
    """
    if steps >= entry.timesteps:
        return entry.energy_j
    return entry.energy_j * float(steps) / entry.timesteps


def _accuracy(entry, early_exit: bool) -> float:
    """Return the accuracy at ``entry``'s T: with early exit, the profile's under its rule."""
    with_exit = getattr(entry, 'early_exit_accuracy', None) if early_exit else None
    return entry.accuracy if with_exit is None else with_exit


LATENCY_FIT_SPREAD = 0.5
"""A latency fit must rise over its points by at least this fraction of their measured mean.

The shipped profile's T=8 and 16 differ by 5 us where the robot measures 2 ms, and 0.06 ms
of jitter between their medians fitted a slope of 11 (T=350 predicted at 4 ms for 2.2; a
review). The rise is the fitted one, not the profile's: compared with the profile's (a scale
of 1 taken for granted), a robot 10 times slower than profiled, measured at T=8 and 250 (a
rise of 1.5 times the mean), was never fitted, and T=250 was kept at 0.82 ms predicted under
a 1 ms ceiling while it ran 1.35 ms (a review). Half the mean, not a quarter: a load that
slowed one T's results by a third (2.7 ms for 2.0 at T=32 beside T=8) fitted a scale of 56,
priced every larger T over a ceiling each met, and T stayed low for good, since a T not run
is not measured again (a review). A rise too small for a fit leaves the fixed cost, and
each T measured its own latency as a floor (:func:`_evaluate`)."""

LATENCY_FIT_RATIO = 2.0
"""A latency fit's points must span profiled latencies at least this ratio apart (the
highest over the lowest): nearer, the slope is the jitter between their medians over a
difference of microseconds."""


def _measured_latencies(signals: LiveSignals) -> dict:
    """Return ``{T: latency ms}`` of every T measured (``latency_points`` and ``T_m``)."""
    points = dict(signals.latency_points)
    if signals.measured_timesteps is not None and signals.measured_latency_ms is not None:
        points[signals.measured_timesteps] = signals.measured_latency_ms
    return points


def _latency_model(entries: Sequence, signals: LiveSignals,
                   steps_at: Callable[[int], Tuple[float, bool]]
                   ) -> Tuple[float, float, tuple]:
    """
    Return ``(c, s, T fitted)``: the robot's latency ``c + s l(T)`` (module docstring).

    ``l(T)`` is the profile's latency at the steps T uses (``steps_at``; T without early exit).

    One measured T: ``s = 1``, ``c`` what the measurement adds to the profile's latency.
    Two T or more whose profiled latencies are :data:`LATENCY_FIT_RATIO` apart: least
    squares over the points, ``c`` clamped at 0 (then ``s`` through the origin), kept if
    ``s`` is positive and the fitted rise over the points is :data:`LATENCY_FIT_SPREAD` of
    their measured mean at least; otherwise, or for points too close, the fixed cost all of
    them measured at ``s = 1``.
    """
    t_meas, measured = signals.measured_timesteps, signals.measured_latency_ms
    points = _measured_latencies(signals)
    pairs = [(_interpolate(entries, steps_at(t)[0], 'latency_ms'), ms)
             for t, ms in sorted(points.items())]
    pairs = [(x, y) for x, y in pairs if x > 0.0]
    low = min((x for x, _ in pairs), default=0.0)
    high = max((x for x, _ in pairs), default=0.0)
    if len(pairs) >= 2 and high >= LATENCY_FIT_RATIO * low:
        n = len(pairs)
        mean_x = sum(x for x, _ in pairs) / n
        mean_y = sum(y for _, y in pairs) / n
        sxx = sum((x - mean_x) ** 2 for x, _ in pairs)
        slope = sum((x - mean_x) * (y - mean_y) for x, y in pairs) / sxx
        offset = mean_y - slope * mean_x
        if offset < 0.0:  # through the origin: no negative fixed cost
            offset, slope = 0.0, sum(x * y for x, y in pairs) / sum(x * x for x, _ in pairs)
        if slope > 0.0 and slope * (high - low) >= LATENCY_FIT_SPREAD * mean_y:
            return offset, slope, tuple(sorted(points))
    if len(pairs) >= 2:  # too close to fit a slope: the fixed cost all of them measured
        # (from the T run last alone it moved with each T's noise, and T switched 216 to
        # 274 times in 25 s under a ceiling near the measured latencies; a review)
        return max(0.0, statistics.median(y - x for x, y in pairs)), 1.0, tuple(sorted(points))
    if measured is not None and t_meas is not None:
        expected = _interpolate(entries, steps_at(t_meas)[0], 'latency_ms')
        return max(0.0, measured - expected), 1.0, (t_meas,)
    return 0.0, 1.0, ()


def _over_cap(row: _Row) -> bool:
    """Return whether ``row``'s T is above ``max_timesteps`` (the classifier cannot run it)."""
    return any(name == 'max_timesteps' for name, _ in row.excess)


def _best(rows: list) -> _Row:
    """Return the feasible row of least objective, else the least-bad row (module docstring)."""
    feasible = [r for r in rows if not r.excess]
    if feasible:
        return min(feasible, key=lambda r: (r.objective, r.timesteps))
    runnable = [r for r in rows if not _over_cap(r)] or rows
    return min(runnable, key=lambda r: (r.violation, r.objective, r.timesteps))


# Explanation -------------------------------------------------------------------------------------
def _limits_text(setting: _Setting, profile: TimestepProfile, constraints: Constraints,
                 rows: list) -> str:
    parts = [f'accuracy >= {setting.required_accuracy:.3f} (baseline '
             f'{_reference_accuracy(profile):.3f} - {setting.allowed_drop * 100:.1f} pt)']
    if constraints.max_latency_ms is not None:
        text = f'latency <= {constraints.max_latency_ms:g} ms'
        if setting.latency_fitted_at:
            at = ', '.join(str(t) for t in setting.latency_fitted_at)
            text += (f' ({setting.latency_offset_ms:.3g} ms + profiled latency '
                     f'x{setting.latency_scale:.2f}, as measured at T={at})')
        parts.append(text)
    if constraints.max_energy_j is not None:
        parts.append(f'energy <= {format_joules(constraints.max_energy_j)}')
    if constraints.max_power_w is not None:
        known = all(r.power_w is not None for r in rows)
        parts.append(f'power <= {format_watts(constraints.max_power_w)}'
                     + ('' if known else ' (unchecked: no inference rate or power heard yet)'))
    if constraints.max_timesteps is not None:
        parts.append(f'T <= {constraints.max_timesteps}')
    return ' and '.join(parts)


def _violations_text(row: _Row, setting: _Setting, constraints: Constraints) -> str:
    e = row.entry
    texts = {
        'max_accuracy_drop': lambda: (f'accuracy {row.accuracy:.3f} < '
                                      f'{setting.required_accuracy:.3f}'),
        'max_latency_ms': lambda: (f'latency {row.latency_ms:.3g} ms > '
                                   f'{constraints.max_latency_ms:g} ms'),
        'max_energy_j': lambda: (f'energy {format_joules(row.energy_j)} > '
                                 f'{format_joules(constraints.max_energy_j)}'),
        'max_power_w': lambda: (f'power {format_watts(row.power_w)} > '
                                f'{format_watts(constraints.max_power_w)}'),
        'max_timesteps': lambda: f'T={e.timesteps} > {constraints.max_timesteps}',
    }
    return ', '.join(texts[name]() for name, _ in row.excess)


def _battery_text(setting: _Setting, mode: Mode, signals: LiveSignals,
                  policy: BatteryPolicy) -> str:
    if setting.level == BatteryLevel.NORMAL:
        return ''
    threshold = policy.threshold(setting.level)
    fraction = signals.battery_fraction
    if fraction is None:
        charge = 'charge unknown, level kept'
    elif fraction < threshold:
        digits = 1  # more where a tenth reads both alike ('30.0% < 30.0%' at 0.29996)
        while digits < 4 and charge_percent(fraction, digits) == charge_percent(threshold, digits):
            digits += 1
        charge = f'{charge_percent(fraction, digits)} < {charge_percent(threshold, digits)}'
    elif fraction >= threshold + policy.hysteresis_fraction and policy.recover_s > 0:
        charge = (f'{charge_percent(fraction)}, held until it stays >= '
                  f'{charge_percent(threshold + policy.hysteresis_fraction)} for '
                  f'{policy.recover_s:g} s')
    else:
        charge = (f'{charge_percent(fraction)}, held until >= '
                  f'{charge_percent(threshold + policy.hysteresis_fraction)}')
    modes = (f'{mode.value} -> {setting.mode.value}' if setting.mode != mode
             else setting.mode.value)
    extra = policy.extra_drop(setting.level)
    return (f'; battery {setting.level.value} ({charge}): {modes}'
            + (f', +{extra * 100:.1f} pt accuracy drop allowed' if extra > 0 else ''))


def charge_percent(fraction: Optional[float], digits: int = 1) -> str:
    """
    Return a charge in percent, to a tenth: 29.9 % read '30% < 30%' in whole percents.

    None (a level kept while no charge is known) is 'unknown'.
    """
    if fraction is None:
        return 'unknown'
    return f'{fraction * 100:.{digits}f}%'


def _choice(row: _Row, setting: _Setting, reason: str) -> Choice:
    e = row.entry
    if setting.early_exit:
        source = {'measured': 'as measured', 'profiled': 'as profiled',
                  'profiled, scaled': 'as profiled, scaled as the T measured ran',
                  'whole': 'whole: none measured or profiled'}[row.steps_from]
        reason += (f'; early exit: T={e.timesteps} priced at {row.steps:.1f} steps ({source}), '
                   f'accuracy {row.accuracy:.3f}')
    return Choice(timesteps=e.timesteps, mode=setting.mode, expected_accuracy=row.accuracy,
                  expected_latency_ms=row.latency_ms, expected_energy_j=row.energy_j,
                  expected_power_w=row.power_w, feasible=not row.excess,
                  violated=tuple(name for name, _ in row.excess), reason=reason,
                  objective=row.objective, battery_level=setting.level,
                  allowed_accuracy_drop=setting.allowed_drop, expected_steps=row.steps)


def _explain(row: _Row, setting: _Setting, rows: list, profile: TimestepProfile,
             constraints: Constraints, mode: Mode, signals: LiveSignals,
             policy: BatteryPolicy) -> Choice:
    """Return the :class:`Choice` of the best row, with its reason."""
    limits = _limits_text(setting, profile, constraints, rows)
    if not row.excess:
        n_ok = sum(1 for r in rows if not r.excess)
        goal = _MODE_GOAL[setting.mode]
        if setting.mode == Mode.BALANCED:
            goal += f' (objective {row.objective:.3f})'
        reason = f'T={row.timesteps}: {goal} among {n_ok} of {len(rows)} T with {limits}'
    else:
        reason = (f'T={row.timesteps}: no profiled T meets {limits}; least violation: '
                  f'{_violations_text(row, setting, constraints)}')
    return _choice(row, setting, reason + _battery_text(setting, mode, signals, policy))


def choose_timestep(profile: TimestepProfile, constraints: Constraints, mode: Mode,
                    signals: LiveSignals = LiveSignals(),
                    battery_policy: BatteryPolicy = BatteryPolicy(), *,
                    battery_level: Optional[BatteryLevel] = None) -> Choice:
    """
    Return the T the strategy picks (rules in the module docstring). Pure.

    Parameters
    ----------
    profile
        the model's timestep profile (any object with ``entries`` sorted by T and
        ``baseline``, whose entries have ``timesteps``, ``accuracy``, ``latency_ms`` and
        ``energy_j``; ``agreement_based`` when it has it).
    constraints, mode, signals, battery_policy
        as documented on their classes.
    battery_level
        the battery level to apply; None derives it from ``signals.battery_fraction`` without
        hysteresis (:class:`TimestepSelector` passes the level it keeps).

    """
    setting, rows = _evaluate(profile, constraints, Mode(mode), signals, battery_policy,
                              battery_level)
    return _explain(_best(rows), setting, rows, profile, constraints, Mode(mode), signals,
                    battery_policy)


def feasible_timesteps(profile: TimestepProfile, constraints: Constraints,
                       signals: LiveSignals = LiveSignals(),
                       battery_policy: BatteryPolicy = BatteryPolicy()) -> Tuple[int, ...]:
    """
    Return the profiled T that meet every constraint, ascending (the module docstring's rules).

    These are the T :func:`choose_timestep` chooses among (the mode weighs them, it does not
    change which are feasible); empty when none is. Pure; arguments as for
    :func:`choose_timestep`.
    """
    _, rows = _evaluate(profile, constraints, Mode.BALANCED, signals, battery_policy, None)
    return tuple(r.timesteps for r in rows if not r.excess)


class TimestepSelector:
    """
    :func:`choose_timestep` with hysteresis, for a controller (rules in the module docstring).

    ``current`` is the last choice (None before the first :meth:`update`).
    """

    def __init__(self, profile: TimestepProfile, constraints: Constraints = Constraints(),
                 mode: Mode = Mode.BALANCED, battery_policy: BatteryPolicy = BatteryPolicy(),
                 *, switch_margin: float = 0.05) -> None:
        """Hold the settings; nothing is chosen before the first :meth:`update`."""
        self._profile = profile
        self._current: Optional[Choice] = None
        self._level: Optional[BatteryLevel] = None
        self._rising_since: dict = {}  # better level -> since when the charge is above it (s)
        self._margin = self._constraints = self._mode = self._policy = None
        self.reconfigure(constraints, mode, battery_policy, switch_margin)

    @property
    def profile(self) -> TimestepProfile:
        """Return the profile choices are made from."""
        return self._profile

    def shift(self, step_s: float) -> None:
        """
        Move the times held (a better battery level's wait) by ``step_s``: the clock leapt.

        A controller on simulated time calls it when the clock leaps or steps back (a bag
        seeked, or looping): a wait begun before a loop of 150 s went on 150 s longer, as
        ``now_s`` had gone back (a review's suspicion, confirmed by a test).
        """
        for level in self._rising_since:
            self._rising_since[level] += step_s

    @property
    def current(self) -> Optional[Choice]:
        """Return the last choice, or None before the first update."""
        return self._current

    @property
    def constraints(self) -> Constraints:
        """Return the constraints in force."""
        return self._constraints

    @property
    def mode(self) -> Mode:
        """Return the requested mode, before the battery policy applies."""
        return self._mode

    @property
    def battery_policy(self) -> BatteryPolicy:
        """Return the battery policy."""
        return self._policy

    @property
    def switch_margin(self) -> float:
        """Return the relative objective improvement a switch needs."""
        return self._margin

    @property
    def battery_level(self) -> Optional[BatteryLevel]:
        """Return the battery level kept for hysteresis (None before any update)."""
        return self._level

    def reconfigure(self, constraints: Optional[Constraints] = None,
                    mode: Optional[Mode] = None,
                    battery_policy: Optional[BatteryPolicy] = None,
                    switch_margin: Optional[float] = None) -> None:
        """
        Change the settings given (None: unchanged); the next update chooses afresh if any did.

        Settings given as they are change nothing: a node passes all of them at every
        parameter set, and a set of another parameter dropped the switch margin and moved T
        (a review).
        """
        before = (self._margin, self._constraints, self._mode, self._policy)
        if switch_margin is not None:
            self._margin = _finite('switch_margin', switch_margin, 0.0, 1.0)
        if constraints is not None:
            if not isinstance(constraints, Constraints):
                raise ValueError(f'constraints must be Constraints, got {constraints!r}')
            self._constraints = constraints
        if mode is not None:
            self._mode = Mode(mode)
        if battery_policy is not None:
            if not isinstance(battery_policy, BatteryPolicy):
                raise ValueError(f'battery_policy must be BatteryPolicy, got {battery_policy!r}')
            self._policy = battery_policy
        if (self._margin, self._constraints, self._mode, self._policy) != before:
            self._fresh = True

    def price_under(self, preset: str) -> bool:
        """
        Price the profile's energies under ``preset`` (:meth:`TimestepProfile.priced`).

        Return whether they changed (False: already under it); the next update chooses afresh.
        ValueError for an unknown preset, the profile unchanged.
        """
        priced = self._profile.priced(preset)
        if priced is self._profile:
            return False
        self._profile = priced
        self._fresh = True
        return True

    def set_constraints(self, constraints: Constraints) -> None:
        """Replace the constraints; the next update chooses afresh if they changed."""
        self.reconfigure(constraints=constraints)

    def set_mode(self, mode: Mode) -> None:
        """Replace the mode; the next update chooses afresh if it changed."""
        self.reconfigure(mode=mode)

    def update(self, signals: LiveSignals, now_s: Optional[float] = None) -> Choice:
        """
        Return the choice for ``signals``: the current T unless a switch is due.

        ``now_s`` (monotonic seconds) holds a better battery level back until it has been read
        for ``recover_s`` (:class:`BatteryPolicy`); without it a level changes at once.
        """
        self._level = self._battery_level(signals.battery_fraction, now_s)
        current = self._current
        measured = signals.measured_latency_ms is not None or signals.measured_power_w is not None
        if current is not None and measured and signals.measured_timesteps is None:
            signals = signals.replace(measured_timesteps=current.timesteps)
        setting, rows = _evaluate(self._profile, self._constraints, self._mode, signals,
                                  self._policy, self._level)
        best = _best(rows)
        choice = _explain(best, setting, rows, self._profile, self._constraints, self._mode,
                          signals, self._policy)
        if current is not None and not self._fresh and best.timesteps != current.timesteps:
            kept = next((r for r in rows if r.timesteps == current.timesteps), None)
            if kept is not None and not kept.excess:
                # A switch for a better objective goes to the best T with headroom under the
                # limits (keeping the current T when that is it): kept instead, a T that had
                # dropped (a battery dip) never came back while the best sat near a limit.
                roomy = min((r for r in rows if not r.excess and (
                    r is kept or not self._close_to_limits(r))),
                    key=lambda r: (r.objective, r.timesteps))
                if roomy is not best:
                    close = (f'T={best.timesteps} would be within the switch margin '
                             f'({self._margin:.0%}) of its {self._close_to_limits(best)}')
                    if roomy is kept:
                        limits = _limits_text(setting, self._profile, self._constraints, rows)
                        choice = _choice(kept, setting, (
                            f'T={kept.timesteps}: kept, meets {limits}; {close}'
                            + _battery_text(setting, self._mode, signals, self._policy)))
                    else:
                        choice = _explain(roomy, setting, rows, self._profile,
                                          self._constraints, self._mode, signals,
                                          self._policy)
                        choice = replace(choice, reason=f'{choice.reason}; {close}')
                    best = roomy
            if kept is not None and best is not kept:
                reason = self._keep_reason(kept, best, setting, rows, signals)
                if reason is not None:
                    choice = _choice(kept, setting, reason)
        self._fresh = False
        self._current = choice
        return choice

    def _battery_level(self, fraction: Optional[float], now_s: Optional[float]) -> BatteryLevel:
        """
        Return the level in force: :meth:`BatteryPolicy.level`, better ones after a wait.

        A better level is taken once the charge has stayed ``recover_s`` at or above its
        threshold plus the hysteresis, each level timed on its own: one timer for whichever
        better level was read took normal 0.5 s after a dip to low while critical was held
        (the timer had started at an earlier rise to normal; a review).
        """
        level = self._policy.level(fraction, self._level)
        held = self._level
        if held is None or now_s is None or self._policy.recover_s <= 0 \
                or _LEVEL_ORDER.index(level) >= _LEVEL_ORDER.index(held):
            self._rising_since.clear()
            return level
        reached = _LEVEL_ORDER.index(level)
        for better in _LEVEL_ORDER[:_LEVEL_ORDER.index(held)]:
            if _LEVEL_ORDER.index(better) >= reached:  # the charge is above its threshold
                self._rising_since.setdefault(better, now_s)
            else:
                self._rising_since.pop(better, None)
        for better in _LEVEL_ORDER[:_LEVEL_ORDER.index(held)]:  # the best first
            since = self._rising_since.get(better)
            if since is not None and now_s - since >= self._policy.recover_s:
                self._rising_since.pop(better)  # (those above it time on)
                return better
        return held

    def _keep_reason(self, kept: _Row, best: _Row, setting: _Setting, rows: list,
                     signals: LiveSignals) -> Optional[str]:
        """Return why ``kept`` stays instead of ``best``, or None when a switch is due."""
        limits = _limits_text(setting, self._profile, self._constraints, rows)
        battery = _battery_text(setting, self._mode, signals, self._policy)
        if kept.excess:
            if best.excess and not best.violation < kept.violation and not (
                    _over_cap(kept) and not _over_cap(best)):
                return (f'T={kept.timesteps}: kept; no profiled T meets {limits} and T='
                        f'{best.timesteps} violates no less: '
                        f'{_violations_text(kept, setting, self._constraints)}{battery}')
            return None
        if best.objective < (1.0 - self._margin) * kept.objective:
            return None
        gain = 1.0 - best.objective / kept.objective if kept.objective > 0 else 0.0
        return (f'T={kept.timesteps}: kept, meets {limits}; T={best.timesteps} would improve '
                f'the {setting.mode.value} objective by only {gain:.1%} (switch margin '
                f'{self._margin:.0%}){battery}')

    def _close_to_limits(self, row: _Row) -> str:
        """Name the latency, energy and power limits ``row`` is within the margin of ('')."""
        headroom = 1.0 - self._margin
        close = [text for text, value, limit in (
            ('latency limit', row.latency_ms, self._constraints.max_latency_ms),
            ('energy budget', row.energy_j, self._constraints.max_energy_j),
            ('power cap', row.power_w, self._constraints.max_power_w))
            if limit is not None and value is not None and value > headroom * limit]
        return ' and '.join(close)
