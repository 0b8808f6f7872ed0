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
is given the ratio of the last :data:`WINDOWS` windows, weighted by their inferences, at the
latest window's T. Ratios of windows at different T average alike, so a change of T does not
start afresh. Light on purpose (no numpy): the nodes use it.
"""

import collections
import math
from typing import Callable, Optional, Tuple

WINDOWS = 5
"""Windows whose inference-weighted ratio is the measurement (about 5 s of a 1 Hz monitor)."""


class EnergyWindows:
    """The ratios of the latest windows to the profile, and their weighted mean."""

    def __init__(self, windows: int = WINDOWS) -> None:
        """Keep up to ``windows`` windows."""
        self._ratios = collections.deque(maxlen=windows)  # (inferences, energy, power ratio)

    def clear(self) -> None:
        """Forget every window (the profile priced again, the monitor's figures dropped)."""
        self._ratios.clear()

    def __len__(self) -> int:
        return len(self._ratios)

    def add(self, inferences: int, energy_j: Optional[float], power_w: float,
            mean_timesteps: float, profiled: Callable[[float], float]
            ) -> Tuple[Optional[float], float]:
        """
        Take a window; return ``(energy_j, power_w)`` smoothed, at ``mean_timesteps``.

        ``profiled(T)``: the profile's energy per inference at T (J, interpolated).
        ``energy_j`` may be None (a monitor that gives only power); then None comes back.
        A window whose profiled energy is not positive is returned as it is, not kept; one
        whose ratio to it is not finite (overflowed) raises ValueError, not kept either.
        """
        base = profiled(mean_timesteps)
        if not base > 0.0 or inferences < 1:
            return energy_j, power_w
        ratios = (None if energy_j is None else energy_j / base, power_w / base)
        if not all(math.isfinite(r) for r in ratios if r is not None):
            # (kept, an overflow to inf made every smoothed figure after it inf; a review)
            raise ValueError(f'energy {energy_j} J, power {power_w} W: too large for the '
                             f"profile's {base} J at T={mean_timesteps:g}")
        self._ratios.append((inferences, *ratios))
        total = sum(n for n, _, _ in self._ratios)
        power = sum(n * p for n, _, p in self._ratios) / total * base
        if energy_j is None:
            return None, power
        known = [(n, e) for n, e, _ in self._ratios if e is not None]
        energy = sum(n * e for n, e in known) / sum(n for n, _ in known) * base
        return energy, power
