"""
The knobs of the parameter enhancement: which run-time parameters it moves, and how.

A :class:`Knob` is a field of a model's run-time parameters (``model.params``) moved by a
factor ``f`` around the model's own value ``x``:

.. code-block:: text

    mode 'ratio'    value = x f
    mode 'gap'      value = o + f (x - o)      o = the params field ``origin`` (a distance to it:
                                               e.g. a potential's distance to rest)

*Inference* knobs (``stage`` ``'inference'``) change what a trained model does at T;
*learning* knobs act only while learning (searched only for a model that learns on line).
Each family lists its own knobs (``model.knobs``: the STDP table in
:mod:`topspark_ros.core.stdp.knobs`, the converted one in
:mod:`topspark_ros.core.converted.knobs`), each with its factors for the sensitivity analysis
and its factor range for the search (:mod:`~topspark_ros.core.topspark.enhance`).

Values are clipped to the knob's ``limits`` (when it has any), then rounded: to whole
multiples of ``quantum`` (when it has one, e.g. a refractory period to whole steps ``dt``),
else to 4 significant digits (:func:`round_significant`), before they are measured, so what is
stored is exactly what was validated.
"""

from dataclasses import dataclass
import math
from typing import Optional, Tuple

STAGES = ('inference', 'learning')
"""Knob stages: acting on a trained model, or while learning."""
MODES = ('ratio', 'gap')
"""How a knob's factor moves its value (module docstring)."""


@dataclass(frozen=True)
class Knob:
    """
    One tunable parameter: how it is moved around the model's value.

    Attributes
    ----------
    name
        a field of the model's run-time parameters.
    stage
        ``'inference'`` (acts on a trained model) or ``'learning'`` (acts while learning).
    mode
        ``'ratio'``: value ``x f``; ``'gap'``: value ``o + f (x - o)``.
    factors
        factors of the sensitivity analysis (the own value, 1, is measured once).
    search
        ``(low, high)`` factor range of the search (log-uniform).
    origin
        ``'gap'`` only: the params field ``o`` the distance is taken to (e.g. ``'v_rest_mv'``).
    quantum
        values are whole multiples of it (e.g. the simulation step for a refractory period;
        None: 4 significant digits).
    limits
        ``(low, high)`` the value is clipped to (the parameter's valid range; None: none).

    """

    name: str
    stage: str
    mode: str
    factors: Tuple[float, ...]
    search: Tuple[float, float]
    origin: Optional[str] = None
    quantum: Optional[float] = None
    limits: Optional[Tuple[float, float]] = None

    def __post_init__(self) -> None:
        """Check the fields."""
        if self.stage not in STAGES or self.mode not in MODES:
            raise ValueError(f'bad stage {self.stage!r} or mode {self.mode!r}')
        if (self.mode == 'gap') != (self.origin is not None):
            raise ValueError(f'{self.name}: a gap knob needs an origin field, a ratio knob none')
        low, high = self.search
        if not 0 < low <= 1 <= high or any(f <= 0 for f in self.factors):
            raise ValueError(f'{self.name}: factors must be > 0 and the range hold 1')
        if self.quantum is not None and not self.quantum > 0:
            raise ValueError(f'{self.name}: quantum must be > 0, got {self.quantum}')

    def base(self, params) -> float:
        """Return what the factor scales the distance to: ``o`` (``'gap'``) or 0 (``'ratio'``)."""
        return float(getattr(params, self.origin)) if self.mode == 'gap' else 0.0

    def value(self, params, factor: float) -> float:
        """Return the knob's value at ``factor`` around ``params`` (rounded, module docstring)."""
        own = getattr(params, self.name)
        if self.mode == 'gap':
            origin = getattr(params, self.origin)
            value = origin + factor * (own - origin)
        else:
            value = own * factor
        if self.limits is not None:
            value = min(max(value, self.limits[0]), self.limits[1])
        if self.quantum is not None:
            return float(round(value / self.quantum) * self.quantum)
        return round_significant(value)


def round_significant(value: float, digits: int = 4) -> float:
    """Return ``value`` rounded to ``digits`` significant digits."""
    if value == 0 or not math.isfinite(value):
        return float(value)
    return float(round(value, digits - 1 - int(math.floor(math.log10(abs(value))))))
