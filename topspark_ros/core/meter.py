"""
Energy accounting over a stream of inferences (what the energy monitor publishes).

Each inference contributes its operation counts, re-priced with the meter's energy model, so a
monitor can report under a preset other than the classifier's. :meth:`EnergyMeter.report`
closes the current window:

.. code-block:: text

    energy per inference  E = sum_i E_i / n                 (J, over the window's n inferences)
    average power         P = sum_i E_i / (t_now - t_start) (W)
    saving                1 - E / E_baseline               (E_baseline: the same model at full T)
"""

from dataclasses import dataclass, field
from typing import Optional

from topspark_ros.core.energy import EnergyModel, OpCounts


@dataclass(frozen=True)
class MeterReport:
    """One window of the meter (see the module docstring for the equations)."""

    energy_per_inference_j: float
    average_power_w: float
    cumulative_energy_j: float
    inference_count: int
    window_inferences: int
    window_s: float
    mean_timesteps: float
    mean_ops: OpCounts
    baseline_energy_per_inference_j: float
    saving_vs_baseline: float
    preset: str


@dataclass
class EnergyMeter:
    """
    Accumulates inferences; :meth:`report` returns and restarts the window.

    Attributes
    ----------
    model
        prices operation counts.
    baseline_energy_j
        energy per inference at full ``T`` (0: unknown, then no saving is reported).
    start_s
        time the first window starts (seconds, any monotonic clock the caller uses).

    """

    model: EnergyModel
    baseline_energy_j: float = 0.0
    start_s: float = 0.0
    _window_start_s: Optional[float] = None
    _window: list = field(default_factory=list)
    _cumulative_j: float = 0.0
    _count: int = 0

    def add(self, ops: OpCounts, timesteps: int) -> float:
        """Account one inference; return its energy (J)."""
        energy = self.model.estimate(ops).compute_j
        self._window.append((energy, int(timesteps), ops))
        self._cumulative_j += energy
        self._count += 1
        return energy

    def report(self, now_s: float) -> MeterReport:
        """Close the window ending at ``now_s``; return its figures."""
        start = self.start_s if self._window_start_s is None else self._window_start_s
        window_s = max(now_s - start, 1e-9)
        n = len(self._window)
        energy = sum(e for e, _, _ in self._window)
        mean_ops = OpCounts()
        for _, _, ops in self._window:
            mean_ops = mean_ops + ops
        per_inference = energy / n if n else 0.0
        saving = 0.0
        if self.baseline_energy_j > 0.0 and n:
            saving = 1.0 - per_inference / self.baseline_energy_j
        report = MeterReport(
            energy_per_inference_j=per_inference, average_power_w=energy / window_s,
            cumulative_energy_j=self._cumulative_j, inference_count=self._count,
            window_inferences=n, window_s=window_s,
            mean_timesteps=sum(t for _, t, _ in self._window) / n if n else 0.0,
            mean_ops=mean_ops * (1.0 / n) if n else mean_ops,
            baseline_energy_per_inference_j=self.baseline_energy_j,
            saving_vs_baseline=saving, preset=self.model.preset.name)
        self._window = []
        self._window_start_s = now_s
        return report
