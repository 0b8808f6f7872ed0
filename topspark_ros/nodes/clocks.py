"""
The clock a node times its periods and intervals with.

Simulated time under ``use_sim_time`` (a bag replayed with ``--clock`` gives the recorded
figures), else the steady clock. Without ``use_sim_time`` a node's own clock is the system
clock, which NTP or chrony steps: a robot without a real-time clock boots in 1970 and jumps
decades forward once synchronised, and a step backwards stalls rclpy's timers on it for as
long as the step (ros2/rclpy#1490). Periods (heartbeats, energy windows, diagnostics) and
intervals (energy age, arrival rates) are durations: on the steady clock they go on through
any step. Message stamps stay on the node's clock (ROS time), as other nodes read them.
"""

import collections
import math
import statistics

from rclpy.clock import Clock, ClockType


def steady_clock() -> Clock:
    """Return a steady clock (monotonic, never stepped)."""
    return Clock(clock_type=ClockType.STEADY_TIME)


def period_clock(node) -> Clock:
    """Return the clock for ``node``'s timers and durations (module docstring)."""
    if node.get_parameter('use_sim_time').value:
        return node.get_clock()
    return steady_clock()


def elapsed_s(clock: Clock) -> float:
    """Return ``clock``'s time in seconds (a :func:`period_clock`; 0 before a first /clock)."""
    return clock.now().nanoseconds * 1e-9


JUMP_MIN_S = 2.0
"""The least step of the simulated clock forward that is a leap (see :class:`Leaps`)."""
LEAP_FACTOR = 10.0
"""A leap is at least this many times the median of the clock's recent steps."""
LEAP_MIN_STEPS = 3
"""Steps of the clock seen before any is taken for a leap (its typical step is known)."""
CLOCK_STEPS_KEPT = 9
"""Recent steps of the clock whose median is its typical step: one seek does not move it, a
bag played faster from some point on does after five steps."""


class Leaps:
    """
    Tells a leap of the simulated clock (a later bag, a seek) from its ordinary steps.

    ``ros2 bag play --clock`` steps the clock 40 times a second of wall time: at ``--rate 80``
    every step is 2 s, which is no leap. A leap is a step of at least ``min_s`` (and
    :data:`JUMP_MIN_S`) and :data:`LEAP_FACTOR` times the clock's typical step.
    """

    def __init__(self, min_s: float = JUMP_MIN_S) -> None:
        """Take steps of ``min_s`` seconds or more (and JUMP_MIN_S) for leaps."""
        self.min_s = max(JUMP_MIN_S, min_s)
        self._steps = collections.deque(maxlen=CLOCK_STEPS_KEPT)

    def leapt(self, step_s: float) -> bool:
        """Take a step forward of the clock; return whether it is a leap."""
        steps = self._steps
        typical_s = statistics.median(steps) if len(steps) >= LEAP_MIN_STEPS else math.inf
        steps.append(step_s)  # a leap too: a bag played faster from now on is learnt
        return step_s >= max(self.min_s, LEAP_FACTOR * typical_s)
