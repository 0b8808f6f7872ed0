"""
The knobs of the parameter enhancement: which run-time parameters it moves, and how.

A :class:`Knob` is a :class:`~topspark_ros.core.stdp.DynamicsParams` field moved by a factor
``f`` around the model's own value ``x``:

.. code-block:: text

    mode 'ratio'    value = x f
    mode 'gap'      value = v_rest + f (x - v_rest)      (potentials: the distance to rest)

*Inference* knobs (``stage`` ``'inference'``) change what a trained model does at T: firing
threshold (``v_thresh_mv``, and ``theta_scale``, the factor on the learnt adaptive
thresholds), input rate, membrane time constant, reset potential, refractory period,
inhibition strength (``w_inh_mv``) and the excitatory -> inhibitory weight. *Learning* knobs
(adaptive-threshold increment ``theta_plus_mv`` and decay ``tau_theta_ms``, STDP rates
``nu_pre``, ``nu_post``) act only while learning. :data:`STDP_KNOBS` is the table of the
Diehl & Cook network: each knob's factors for the sensitivity analysis and its factor range
for the search (:mod:`~topspark_ros.core.topspark.enhance`).

Values are rounded to 4 significant digits (:func:`round_significant`; refractory periods to
whole steps ``dt``) before they are measured, so what is stored is exactly what was validated.
"""

from dataclasses import dataclass, fields
import math
from typing import Tuple

from topspark_ros.core.stdp import DynamicsParams

STAGES = ('inference', 'learning')
"""Knob stages: acting on a trained model, or while learning."""


@dataclass(frozen=True)
class Knob:
    """
    One tunable parameter: how it is moved around the model's value.

    Attributes
    ----------
    name
        a :class:`~topspark_ros.core.stdp.DynamicsParams` field.
    stage
        ``'inference'`` (acts on a trained model) or ``'learning'`` (acts while learning).
    mode
        ``'ratio'``: value ``x f``; ``'gap'``: value ``v_rest + f (x - v_rest)``.
    factors
        factors of the sensitivity analysis (the own value, 1, is measured once).
    search
        ``(low, high)`` factor range of the search (log-uniform).

    """

    name: str
    stage: str
    mode: str
    factors: Tuple[float, ...]
    search: Tuple[float, float]

    def __post_init__(self) -> None:
        """Check the fields."""
        if self.name not in {f.name for f in fields(DynamicsParams)}:
            raise ValueError(f'{self.name!r} is not a DynamicsParams field')
        if self.stage not in STAGES or self.mode not in ('ratio', 'gap'):
            raise ValueError(f'bad stage {self.stage!r} or mode {self.mode!r}')
        low, high = self.search
        if not 0 < low <= 1 <= high or any(f <= 0 for f in self.factors):
            raise ValueError(f'{self.name}: factors must be > 0 and the range hold 1')

    def value(self, params: DynamicsParams, factor: float, dt_ms: float) -> float:
        """Return the knob's value at ``factor`` around ``params`` (rounded, module docstring)."""
        own = getattr(params, self.name)
        if self.mode == 'gap':
            value = params.v_rest_mv + factor * (own - params.v_rest_mv)
        else:
            value = own * factor
        if self.name == 'refractory_ms':
            return float(round(value / dt_ms) * dt_ms)
        return round_significant(value)


_RATIO = (0.25, 0.5, 2.0, 4.0)
STDP_KNOBS: Tuple[Knob, ...] = (
    Knob('theta_scale', 'inference', 'ratio', (0.1, 0.25, 0.5, 2.0), (0.05, 1.5)),
    Knob('v_thresh_mv', 'inference', 'gap', (0.25, 0.5, 1.5, 2.0), (0.1, 2.0)),
    Knob('input_rate_hz', 'inference', 'ratio', _RATIO, (0.5, 4.0)),
    Knob('tau_v_ms', 'inference', 'ratio', _RATIO, (0.25, 10.0)),
    Knob('v_reset_mv', 'inference', 'gap', (0.1, 0.5, 2.0, 3.0), (0.1, 3.0)),
    Knob('refractory_ms', 'inference', 'ratio', (0.2, 0.4, 2.0, 4.0), (0.2, 4.0)),
    Knob('w_inh_mv', 'inference', 'ratio', _RATIO, (0.125, 4.0)),
    Knob('w_exc_inh_mv', 'inference', 'ratio', (0.5, 0.8, 2.0, 4.0), (0.5, 4.0)),
    Knob('theta_plus_mv', 'learning', 'ratio', _RATIO, (0.125, 16.0)),
    Knob('tau_theta_ms', 'learning', 'ratio', (1e-4, 1e-3, 1e-2, 0.1), (1e-5, 1.0)),
    Knob('nu_pre', 'learning', 'ratio', _RATIO, (0.125, 8.0)),
    Knob('nu_post', 'learning', 'ratio', _RATIO, (0.125, 8.0)),
)
"""Knobs of the Diehl & Cook network. ``tau_theta_ms`` (1e7 ms: no decay within a run) is
moved by powers of ten."""


def round_significant(value: float, digits: int = 4) -> float:
    """Return ``value`` rounded to ``digits`` significant digits."""
    if value == 0 or not math.isfinite(value):
        return float(value)
    return float(round(value, digits - 1 - int(math.floor(math.log10(abs(value))))))
