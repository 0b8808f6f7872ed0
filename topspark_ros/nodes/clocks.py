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
