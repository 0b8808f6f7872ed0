"""
The enhancement knobs of the Diehl & Cook network (``DiehlCookNetwork.knobs``).

Fields of :class:`~topspark_ros.core.stdp.config.DynamicsParams` (see
:mod:`topspark_ros.core.topspark.knobs` for how a knob moves its value). *Inference* knobs:
firing threshold (``v_thresh_mv``, and ``theta_scale``, the factor on the learnt adaptive
thresholds), input rate, membrane time constant, reset potential, refractory period (whole
simulation steps), inhibition strength (``w_inh_mv``) and the excitatory -> inhibitory
weight. *Learning* knobs (adaptive-threshold increment ``theta_plus_mv`` and decay
``tau_theta_ms``, STDP rates ``nu_pre``, ``nu_post``) act only while learning. Potentials move
by their distance to rest (``'gap'`` around ``v_rest_mv``); ``tau_theta_ms`` (1e7 ms: no decay
within a run) is moved by powers of ten.
"""

from typing import Tuple

from topspark_ros.core.topspark.knobs import Knob

_RATIO = (0.25, 0.5, 2.0, 4.0)


def stdp_knobs(dt_ms: float) -> Tuple[Knob, ...]:
    """Return the knobs of a network simulated in steps of ``dt_ms`` (refractory periods)."""
    return (
        Knob('theta_scale', 'inference', 'ratio', (0.1, 0.25, 0.5, 2.0), (0.05, 1.5)),
        Knob('v_thresh_mv', 'inference', 'gap', (0.25, 0.5, 1.5, 2.0), (0.1, 2.0),
             origin='v_rest_mv'),
        Knob('input_rate_hz', 'inference', 'ratio', _RATIO, (0.5, 4.0)),
        Knob('tau_v_ms', 'inference', 'ratio', _RATIO, (0.25, 10.0)),
        Knob('v_reset_mv', 'inference', 'gap', (0.1, 0.5, 2.0, 3.0), (0.1, 3.0),
             origin='v_rest_mv'),
        Knob('refractory_ms', 'inference', 'ratio', (0.2, 0.4, 2.0, 4.0), (0.2, 4.0),
             quantum=float(dt_ms)),
        Knob('w_inh_mv', 'inference', 'ratio', _RATIO, (0.125, 4.0)),
        Knob('w_exc_inh_mv', 'inference', 'ratio', (0.5, 0.8, 2.0, 4.0), (0.5, 4.0)),
        Knob('theta_plus_mv', 'learning', 'ratio', _RATIO, (0.125, 16.0)),
        Knob('tau_theta_ms', 'learning', 'ratio', (1e-4, 1e-3, 1e-2, 0.1), (1e-5, 1.0)),
        Knob('nu_pre', 'learning', 'ratio', _RATIO, (0.125, 8.0)),
        Knob('nu_post', 'learning', 'ratio', _RATIO, (0.125, 8.0)),
    )
