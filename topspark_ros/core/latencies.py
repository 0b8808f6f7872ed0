"""
Recent inference latencies per timestep count T, as the timestep controller keeps them.

A result's latency describes the T it ran at; the controller's strategy fits a fixed cost
plus a multiple of the profile's latencies through the median latency of the T it runs at
and of the other T it ran at before (:class:`.topspark.strategy.LiveSignals`). The controller
kept one window, cleared at every change of the results' T: two classifiers of one model at
different T on one topic (one clamped by its own ``max_timesteps``) alternate their T, so
the window never held more than one latency and no latency was ever measured (a review). Each
T has a window of its own here; a window a T left for a while (more than a window's length
of results at other T since its last) starts afresh when that T comes back, its median
standing as the T's point until then.

The controller keeps the steps its results used at each T (fewer than T with early exit) in
windows of the same kind, summed up by their mean: energy is linear in the steps.

Light on purpose (no numpy, no torch): the nodes use it.
"""

import collections
import statistics
from typing import Callable, Dict, Optional, Sequence, Tuple

WINDOW = 21
"""Latencies of a T whose median is its measurement."""
MIN_SAMPLES = 5
"""Latencies of a T it takes before they count (one slow first frame moved T every frame or
two with a median of one; a user review)."""


class LatencyWindows:
    """The latest latencies of each T heard, and the median of each."""

    def __init__(self, window: int = WINDOW, min_samples: int = MIN_SAMPLES,
                 summary: Callable[[Sequence[float]], float] = statistics.median) -> None:
        """Keep ``window`` values a T, counted from ``min_samples``, summed up by ``summary``."""
        self._window = int(window)
        self._min = int(min_samples)
        self._summary = summary
        self._clear()

    def _clear(self) -> None:
        self._latencies: Dict[int, collections.deque] = {}
        self._last_heard: Dict[int, int] = {}  # T -> the count of results at its last
        self._points: Dict[int, float] = {}  # T -> the median of its last counted window
        self._heard = 0
        self._latest: Optional[int] = None  # the T measured last (with enough latencies)

    def clear(self) -> None:
        """Forget every latency (another profile: another model or input)."""
        self._clear()

    def add(self, timesteps: int, latency_ms: float) -> None:
        """Take one result's latency (ms) at ``timesteps``."""
        timesteps = int(timesteps)
        self._heard += 1
        window = self._latencies.get(timesteps)
        if window is None:
            window = self._latencies[timesteps] = collections.deque(maxlen=self._window)
        elif self._heard - self._last_heard[timesteps] > self._window:
            window.clear()  # left for a while: what it measured then stands as its point
        self._last_heard[timesteps] = self._heard
        window.append(float(latency_ms))
        if len(window) >= self._min:
            self._points[timesteps] = self._summary(window)
            self._latest = timesteps

    def measured(self) -> Optional[Tuple[int, float]]:
        """
        Return ``(T, median ms)`` of the T measured last, or None before any.

        The T of the latest result once it has :data:`MIN_SAMPLES` latencies in its window;
        until then, the T measured before it.
        """
        return None if self._latest is None else (self._latest, self._points[self._latest])

    def points(self) -> Tuple[Tuple[int, float], ...]:
        """Return ``((T, median ms), ...)`` of the other T measured, in order of T."""
        return tuple((t, ms) for t, ms in sorted(self._points.items()) if t != self._latest)

    def all_points(self) -> Tuple[Tuple[int, float], ...]:
        """Return ``((T, summary), ...)`` of every T measured, the latest's included."""
        return tuple(sorted(self._points.items()))
