"""
The energy monitor's recent windows, smoothed, as the timestep controller uses them.

The monitor publishes one window a second or so: about ten inferences at a camera's rate,
whose energy per inference scatters by a quarter from one window to the next at a fixed T
(inputs differ in how many spikes they make). The strategy scales the profile's energies by
the measurement (:class:`.topspark.strategy.LiveSignals`), so each window moved every T's
prediction by as much: near an energy budget T went 16 -> 32 -> 16 -> 32 every window, over
the budget a third of the time while each command said it was within it (a review).

Each window is kept as the ratio of what it measured to what the profile prices at the
window's mean T (energy per inference, and power per unit of profiled energy); the controller
is given the ratios at the latest T of the windows with inferences: energy per inference over
the last :data:`WINDOWS` of them, weighted by their inferences; power over the last
:data:`WINDOWS` windows, weighted by their length. Empty windows within the classifier's
usual gap between windows with inferences (the median of its recent gaps: one for a
classifier at half the monitor's rate, none for a camera) are time at no power: left out, a
classifier at half the monitor's rate read twice its power, and with every empty window
dropping the figure T flipped at every window (a review). A longer run of empty windows is
a pause, which says nothing of the power when it runs, and is left out: counted, a pause of
2 s let a controller raise T to 2.4 times its power cap, and one of 200 s to 9 times; and
told by the inferences of the windows (fewer than 2 a window), a classifier that sends two
at a time every other window read twice its power (reviews of those changes).
Ratios of windows at different T average alike, so a change of T does not start afresh.
Light on purpose (no numpy): the nodes use it.
"""

import collections
import math
import statistics
from typing import Callable, Optional, Tuple

WINDOWS = 5
"""Windows whose weighted ratio is the measurement (about 5 s of a 1 Hz monitor)."""
GAPS_KEPT = 9
"""Recent gaps (empty windows between two with inferences) whose median is the usual one."""


class EnergyWindows:
    """The ratios of the latest windows to the profile, and their weighted means."""

    def __init__(self, windows: int = WINDOWS) -> None:
        """Keep up to ``windows`` windows."""
        self._energies = collections.deque(maxlen=windows)  # (inferences, energy ratio)
        self._powers = collections.deque(maxlen=windows)  # (inferences, length, power ratio)
        self._gaps = collections.deque(maxlen=GAPS_KEPT)  # empty windows between busy ones
        self._run = 0  # empty windows since the last one with inferences
        self.timesteps: Optional[float] = None  # the mean T of the latest window with inferences
        self._profiled: Callable[[float], float] = lambda timesteps: 0.0

    def clear(self) -> None:
        """Forget every window (the profile priced again, the monitor's figures dropped)."""
        self._energies.clear()
        self._powers.clear()
        self._gaps.clear()
        self._run = 0
        self.timesteps = None

    def __len__(self) -> int:
        """Return how many windows with inferences are kept."""
        return len(self._energies)

    def add(self, inferences: int, energy_j: Optional[float], power_w: float,
            mean_timesteps: float, profiled: Callable[[float], float], window_s: float = 0.0
            ) -> Tuple[Optional[float], Optional[float]]:
        """
        Take a window; return ``(energy_j, power_w)`` smoothed, at the latest window's T.

        ``profiled(T)``: the profile's energy per inference at T (J, interpolated).
        ``energy_j`` may be None (a monitor that gives only power); then None comes back.
        ``window_s``: the window's length, its weight in the power (0: unknown, weighed as
        the windows before it, or 1 s). A window without inferences leaves the energy per
        inference as it was; within the classifier's usual gap it is time at no power, in a
        longer run a pause, left out (module docstring). The power is None when no window of
        the last :data:`WINDOWS` had inferences; both are None before a first window with
        inferences.
        A window whose profiled energy is not positive is returned as it is, not kept; one
        whose ratio to it is not finite (overflowed) raises ValueError, not kept either.
        """
        weight = window_s if window_s > 0.0 and math.isfinite(window_s) else (
            self._powers[-1][1] if self._powers else 1.0)
        if inferences < 1:
            if not self._energies:
                return self._smoothed()  # (before the first window with inferences)
            self._run += 1
            usual = statistics.median_low(self._gaps) if self._gaps else 0
            if self._run <= usual:  # the classifier's duty cycle: time at no power
                self._powers.append((0, weight, 0.0))
            else:  # a pause: this run of empty windows is left out, from its first
                while self._powers and not self._powers[-1][0]:
                    self._powers.pop()
            return self._smoothed()
        base = profiled(mean_timesteps)
        if not base > 0.0:
            return energy_j, power_w
        ratios = (None if energy_j is None else energy_j / base, power_w / base)
        if not all(math.isfinite(r) for r in ratios if r is not None):
            # (kept, an overflow to inf made every smoothed figure after it inf; a review)
            raise ValueError(f'energy {energy_j} J, power {power_w} W: too large for the '
                             f"profile's {base} J at T={mean_timesteps:g}")
        if self._energies:
            self._gaps.append(self._run)
        self._run = 0
        self._energies.append((inferences, ratios[0]))
        self._powers.append((inferences, weight, ratios[1]))
        self.timesteps = mean_timesteps
        self._profiled = profiled
        return self._smoothed()

    def _smoothed(self) -> Tuple[Optional[float], Optional[float]]:
        """Return the smoothed ``(energy_j, power_w)`` at :attr:`timesteps`."""
        if self.timesteps is None:
            return None, None
        base = self._profiled(self.timesteps)
        powers = list(self._powers)
        while powers and not powers[0][0]:  # from the first window with inferences on
            del powers[0]
        power = None
        if powers:  # (else empty windows alone: nothing runs)
            power = sum(s * p for _, s, p in powers) / sum(s for _, s, _ in powers) * base
        known = [(n, e) for n, e in self._energies if e is not None]
        if not known or self._energies[-1][1] is None:
            return None, power
        energy = sum(n * e for n, e in known) / sum(n for n, _ in known) * base
        return energy, power
