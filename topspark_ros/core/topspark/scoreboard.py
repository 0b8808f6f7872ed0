"""
Score a run of the pipeline over time: accuracy, timesteps, latency, energy, battery.

The demo records one :class:`Sample` per classification (with the true label when known) and
the battery's state of charge over time; :meth:`Scoreboard.summary` condenses them and
:func:`topspark_ros.core.plotting.plot_run` draws T, accuracy, energy and battery over time
into a PNG.
"""

from dataclasses import dataclass, field
from typing import Optional

import numpy as np


@dataclass(frozen=True)
class Sample:
    """
    One classification: when (s since start), right or wrong, its steps, latency and energy.

    ``timesteps``: the steps it used; ``budget``: the T it was given (0: the same), which
    early exit leaves unused in part.
    """

    time_s: float
    correct: Optional[bool]
    timesteps: int
    latency_ms: float
    energy_j: float
    budget: int = 0

    @property
    def given(self) -> int:
        """Return the T the input was given."""
        return self.budget or self.timesteps


@dataclass(frozen=True)
class Summary:
    """Condensed figures of a run (units in the names; fractions in [0, 1])."""

    classifications: int
    scored: int
    accuracy: float
    mean_timesteps: float
    final_timesteps: int
    latency_p50_ms: float
    latency_p99_ms: float
    energy_per_inference_j: float
    baseline_energy_per_inference_j: float
    energy_saving: float
    frames_dropped: int
    battery_start: float
    battery_end: float
    duration_s: float
    mean_steps_used: float = 0.0
    final_steps_used: int = 0

    def lines(self, preset: str) -> list:
        """Return human-readable lines of the summary (energy under ``preset``)."""
        # (the baseline: 'full T' read as the model's own T, which a converted model's profile
        # may sweep beyond; a review)
        saving = (f'{self.energy_saving:.1%} less than at the largest profiled T '
                  f'({self.baseline_energy_per_inference_j * 1e6:.3f} uJ)'
                  if self.baseline_energy_per_inference_j > 0 else 'baseline unknown')
        return [
            f'classifications     {self.classifications} in {self.duration_s:.1f} s '
            f'({self.frames_dropped} frames dropped)',
            f'accuracy            {self.accuracy:.1%} of {self.scored} scored',
            f'timesteps T         mean {self.mean_timesteps:.1f}, final {self.final_timesteps}'
            + (f'; steps used mean {self.mean_steps_used:.1f}, final {self.final_steps_used} '
               '(early exit)' if self.mean_steps_used < self.mean_timesteps else ''),
            f'latency             p50 {self.latency_p50_ms:.2f} ms, '
            f'p99 {self.latency_p99_ms:.2f} ms',
            f'energy/inference    {self.energy_per_inference_j * 1e6:.3f} uJ ({preset}): '
            + saving,
            f'battery             {self.battery_start:.1%} -> {self.battery_end:.1%}',
        ]


@dataclass
class Scoreboard:
    """Accumulates samples and battery readings of one run."""

    baseline_energy_j: float = 0.0
    samples: list = field(default_factory=list)
    battery: list = field(default_factory=list)
    frames_dropped: int = 0

    def add(self, sample: Sample) -> None:
        """Record one classification."""
        self.samples.append(sample)

    def add_battery(self, time_s: float, fraction: float) -> None:
        """Record the battery's state of charge at ``time_s``."""
        self.battery.append((float(time_s), float(fraction)))

    def summary(self) -> Summary:
        """Return the figures of everything recorded so far."""
        n = len(self.samples)
        scored = [s.correct for s in self.samples if s.correct is not None]
        latency = np.array([s.latency_ms for s in self.samples]) if n else np.zeros(1)
        energy = float(np.mean([s.energy_j for s in self.samples])) if n else 0.0
        saving = 1.0 - energy / self.baseline_energy_j if self.baseline_energy_j > 0 else 0.0
        times = [s.time_s for s in self.samples] + [t for t, _ in self.battery]
        return Summary(
            classifications=n, scored=len(scored),
            accuracy=float(np.mean(scored)) if scored else 0.0,
            mean_timesteps=float(np.mean([s.given for s in self.samples])) if n else 0.0,
            final_timesteps=self.samples[-1].given if n else 0,
            mean_steps_used=float(np.mean([s.timesteps for s in self.samples])) if n else 0.0,
            final_steps_used=self.samples[-1].timesteps if n else 0,
            latency_p50_ms=float(np.percentile(latency, 50)),
            latency_p99_ms=float(np.percentile(latency, 99)),
            energy_per_inference_j=energy, baseline_energy_per_inference_j=self.baseline_energy_j,
            energy_saving=saving, frames_dropped=self.frames_dropped,
            battery_start=self.battery[0][1] if self.battery else float('nan'),
            battery_end=self.battery[-1][1] if self.battery else float('nan'),
            duration_s=max(times) if times else 0.0)
