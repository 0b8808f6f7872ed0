"""
The enhancement knobs of a converted network (``ConvertedNetwork.knobs``).

Fields of :class:`~topspark_ros.core.converted.config.ConvertedParams` (see
:mod:`topspark_ros.core.topspark.knobs` for how a knob moves its value), inference only: the
network is trained offline and does not learn on line.

* ``threshold_scale`` ``s`` (IF thresholds ``s mu_l``): below 1 the neurons fire after less
  input, which at 1 to 4 steps recovers rates the floor of ``T`` steps would cut (the
  calibration of :func:`~topspark_ros.core.converted.train.calibrate_threshold_scale` spans
  0.5 to 1.2); factors 0.5 to 1.25, searched in ``[0.3, 1.5]``.
* ``v_init_frac`` ``f`` (initial potential ``f theta_l``, in ``[0, 1]``): 0.5 turns the rate
  code's flooring into rounding; factors 0.25 to 2 (0.125 to 1 around 0.5), searched in
  ``[0.1, 2]``, clipped to ``[0, 1]``.
"""

from typing import Tuple

from topspark_ros.core.topspark.knobs import Knob

CONVERTED_KNOBS: Tuple[Knob, ...] = (
    Knob('threshold_scale', 'inference', 'ratio', (0.5, 0.7, 0.85, 1.25), (0.3, 1.5)),
    Knob('v_init_frac', 'inference', 'ratio', (0.25, 0.5, 1.5, 2.0), (0.1, 2.0),
         limits=(0.0, 1.0)),
)
"""The knobs of every converted network."""
