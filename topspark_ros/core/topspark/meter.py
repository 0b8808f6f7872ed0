"""
Energy accounting over a stream of inferences (what the energy monitor publishes).

Each inference contributes its operation counts, re-priced with the meter's energy model, so a
monitor can report under a preset other than the classifier's. :meth:`EnergyMeter.report`
closes the current window:

.. code-block:: text

    energy per inference  E = sum_i E_i / n                 (J, over the window's n inferences)
    average power         P = sum_i E_i / (t_now - t_start) (W)
    saving                1 - E / E_baseline               (E_baseline: the same model at full T)

An inference that learnt on line too (``learnt``: its counts and energy hold the learning's,
plasticity updates or not) is set against the same model inferring *and learning* at full
T: the baseline of such an inference is ``baseline_energy_j + baseline_learning_energy_j``
(the profile's full-T ``train_ops``), averaged with the others over the window (set against
inference alone, learning at T=64 looked 64 % cheaper than full T where it is 82 %; a
review).

Beside the main preset's figures, a report carries (when the meter is given them) the same
inferences under a memory-inclusive preset (``memory_model``), the equivalent ANN's energy per
inference under both (``ann_ops``: one MAC per weight per input), and a measured window
(``measured``: energy from a platform power meter, :mod:`topspark_ros.core.power`):

.. code-block:: text

    measured energy per inference  E_m / n_m  (J; E_m: the meter's energy over the window)
    measured average power         E_m / window length on the meter's clock (W)

where a window whose meter reading failed is measured with the next one: ``E_m`` then spans
both, and ``n_m`` counts the inferences of both (it was the second window's alone, and one
failed reading doubled the next window's measured energy per inference; a review).

and, where the energy model has a platform power (the whole board's while it computes, from
its data sheet or a measurement of the user's) and the inferences their latencies, the
platform's energy per inference: ``P_platform x`` the mean latency of those inferences (their
decoding included, as ``Classification.latency_ms`` has it; the energy monitor adds
``learning_ms``, the on-line learning after each, which keeps the board busy too). No
preset prices what the board spends around the arithmetic; this does, as an estimate.
"""

from dataclasses import dataclass, field
from typing import Optional

from topspark_ros.core.energy import EnergyModel, OpCounts


@dataclass(frozen=True)
class Measured:
    """
    One window of a platform power meter.

    Attributes
    ----------
    source
        what was measured (e.g. ``'rapl:package-0'``, ``'nvml:gpu0:energy'``).
    energy_j
        energy over the window (J).
    average_power_w
        its average power (W).

    """

    source: str
    energy_j: float
    average_power_w: float


@dataclass(frozen=True)
class MeterReport:
    """
    One window of the meter (see the module docstring for the equations).

    ``includes`` names what ``preset`` prices; the ``memory_*`` figures are 0 (and
    ``memory_preset`` '') without a memory model, the ``ann_*`` figures 0 without ANN counts,
    ``measured`` None without a meter.
    """

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
    includes: tuple = ()
    memory_preset: str = ''
    memory_energy_per_inference_j: float = 0.0
    ann_macs: float = 0.0
    ann_energy_per_inference_j: float = 0.0
    ann_memory_energy_per_inference_j: float = 0.0
    measured: Optional[Measured] = None
    measured_energy_per_inference_j: float = 0.0
    platform_power_w: float = 0.0
    platform_energy_per_inference_j: float = 0.0


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
    memory_model
        a memory-inclusive preset the same inferences are also priced with (None: none).
    ann_ops
        operation counts per input of the equivalent ANN (None: unknown).
    baseline_learning_energy_j
        energy of one on-line learning step at full ``T`` (0: unknown; inferences that learnt
        are then set against inference alone).

    """

    model: EnergyModel
    baseline_energy_j: float = 0.0
    start_s: float = 0.0
    memory_model: Optional[EnergyModel] = None
    ann_ops: Optional[OpCounts] = None
    baseline_learning_energy_j: float = 0.0
    _window_start_s: Optional[float] = None
    _window: list = field(default_factory=list)
    _cumulative_j: float = 0.0
    _count: int = 0
    _unmeasured: int = 0  # inferences of windows whose meter reading failed, since the last

    def add(self, ops: OpCounts, timesteps: int, latency_s: Optional[float] = None,
            learnt: Optional[bool] = None) -> float:
        """
        Account one inference; return its energy.

        ``latency_s``: its latency (None: unknown). ``learnt``: whether ``ops`` include
        learning from the same input (None: not said, taken from its plasticity updates,
        which a learning that changed no weight does not have).
        """
        priced = self.model.estimate(ops, latency_s)
        energy = priced.compute_j
        if learnt is None:
            learnt = ops.plasticity_updates > 0
        self._window.append((energy, int(timesteps), ops, priced.platform_j, bool(learnt)))
        self._cumulative_j += energy
        self._count += 1
        return energy

    @property
    def window_start_s(self) -> float:
        """Return when the window in progress started (s, the caller's clock)."""
        return self.start_s if self._window_start_s is None else self._window_start_s

    def restart(self, now_s: float) -> None:
        """
        Start a new window at ``now_s``: the clock went back (a replayed bag looped) or leapt.

        The inferences of the window in progress stay in the totals; its power is not
        reported (over a window that ended before it began it was nonsense: 126 kW for 43 uW
        in a user review). A meter's reading, on the wall clock, goes on over them: they
        count in the next measured window's inferences, as those of a failed reading do (a
        review: its energy per inference was twice the truth after a restart).
        """
        self._unmeasured += len(self._window)
        self._window = []
        self._window_start_s = now_s
        self.start_s = min(self.start_s, now_s)

    def report(self, now_s: float, measured: Optional[Measured] = None,
               measurement_failed: bool = False) -> MeterReport:
        """
        Close the window ending at ``now_s``; return its figures (``measured``: a meter's).

        ``measurement_failed``: the meter could not be read at this window's end; its
        reading then spans this window and the next (module docstring).
        """
        start = self.window_start_s
        window_s = max(now_s - start, 1e-9)
        n = len(self._window)
        n_measured = n + self._unmeasured
        self._unmeasured = n_measured if measurement_failed else 0
        energy = sum(e for e, _, _, _, _ in self._window)
        mean_ops = OpCounts()
        learnt = 0
        for _, _, ops, _, learning in self._window:
            mean_ops = mean_ops + ops
            learnt += learning
        platform = [p for _, _, _, p, _ in self._window if p is not None]
        per_inference = energy / n if n else 0.0
        baseline = self.baseline_energy_j
        if baseline > 0.0 and n and learnt and self.baseline_learning_energy_j > 0.0:
            baseline += self.baseline_learning_energy_j * learnt / n
        saving = 0.0
        if baseline > 0.0 and n:
            saving = 1.0 - per_inference / baseline
        report = MeterReport(
            energy_per_inference_j=per_inference, average_power_w=energy / window_s,
            cumulative_energy_j=self._cumulative_j, inference_count=self._count,
            window_inferences=n, window_s=window_s,
            mean_timesteps=sum(t for _, t, _, _, _ in self._window) / n if n else 0.0,
            mean_ops=mean_ops * (1.0 / n) if n else mean_ops,
            baseline_energy_per_inference_j=baseline,
            saving_vs_baseline=saving, preset=self.model.preset.name,
            includes=self.model.preset.includes, measured=measured,
            measured_energy_per_inference_j=(measured.energy_j / n_measured
                                             if measured and n_measured else 0.0),
            platform_power_w=self.model.platform_power_w or 0.0,
            platform_energy_per_inference_j=sum(platform) / len(platform) if platform else 0.0,
            **self._extra_figures(mean_ops * (1.0 / n) if n else mean_ops, n))
        self._window = []
        self._window_start_s = now_s
        return report

    def _extra_figures(self, mean_ops: OpCounts, n: int) -> dict:
        """Return the memory-inclusive and ANN figures of a window (see the module doc)."""
        figures = {}
        memory = self.memory_model
        if memory is not None:
            figures.update(memory_preset=memory.preset.name,
                           memory_energy_per_inference_j=(
                               memory.estimate(mean_ops).compute_j if n else 0.0))
        if self.ann_ops is not None:  # (0, unknown, under a preset no ANN runs on)
            figures['ann_macs'] = self.ann_ops.macs
            if self.model.preset.runs_anns:
                figures['ann_energy_per_inference_j'] = self.model.estimate(
                    self.ann_ops).compute_j
            if memory is not None and memory.preset.runs_anns:
                figures['ann_memory_energy_per_inference_j'] = memory.estimate(
                    self.ann_ops).compute_j
        return figures
