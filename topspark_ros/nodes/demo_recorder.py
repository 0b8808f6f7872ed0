"""
The demo's recorder: scores classifications against the player's labels, over DDS.

Subscribes ``classification``, ``battery`` and ``energy``; feeds a
:class:`topspark_ros.core.topspark.scoreboard.Scoreboard`; prints a compact live line every second.
The player (image or event player, in the same process) gives the true label of the input a
classification's stamp came from (``label_for``). With an event player it also reads the
classifier's ``/diagnostics`` status for the packets it received and the packets it found
missing (sequence gaps), and reports them beside the packets the player sent.

Energies are compared under one preset: the classifications' counts are priced under the
energy monitor's preset, which its baseline is of, once it has published (the summary set a
``cmos45_fp32`` energy against a ``loihi`` baseline, a saving of 99.8 % for 82 to 96 %; a
review).
"""

import dataclasses
import time

from diagnostic_msgs.msg import DiagnosticArray
from rclpy.node import Node
from sensor_msgs.msg import BatteryState

from topspark_ros.conversions.results import classification_ops
from topspark_ros.core.energy import EnergyModel
from topspark_ros.core.plotting import plot_run
from topspark_ros.core.topspark.scoreboard import Sample, Scoreboard
from topspark_ros.msg import Classification, EnergyEstimate
from topspark_ros.nodes.construction import destroyed_if_construction_fails


@destroyed_if_construction_fails
class DemoRecorderNode(Node):
    """Records the run for the demo's live line, summary and plot."""

    def __init__(self, player, live: bool = True, packets: bool = False,
                 classifier_status: str = 'classifier: classification', **kwargs) -> None:
        """
        Score against ``player.label_for(stamp)``; print a live line if ``live``.

        ``packets``: count event packets (``player.published`` sent; received and lost from
        the ``/diagnostics`` status named ``classifier_status``).
        """
        super().__init__('demo_recorder', **kwargs)
        self._player = player
        self._live = live
        self._start = time.monotonic()
        self._preset = ''  # what the samples' energies are priced under
        self._pricing = None  # the monitor's preset (EnergyModel), once it has published
        self._ops = []  # the samples' operation counts, to price them under it
        self.board = Scoreboard()
        self._status_name = classifier_status
        self.packets_received = self.packets_lost = None  # None: no classifier status yet
        self.create_subscription(Classification, 'classification', self._on_classification, 50)
        self.create_subscription(BatteryState, 'battery', self._on_battery, 10)
        self.create_subscription(EnergyEstimate, 'energy', self._on_energy, 10)
        if packets:
            self.create_subscription(DiagnosticArray, '/diagnostics', self._on_diagnostics, 50)
        self._packets = packets
        if live:
            self.create_timer(1.0, self._print_live)

    @property
    def packets_sent(self) -> int:
        """Packets the player published so far."""
        return self._player.published

    @property
    def packets_accounted(self) -> bool:
        """Return True once the classifier reported every sent packet received or lost."""
        return self.packets_received is not None \
            and self.packets_received + self.packets_lost >= self.packets_sent

    def _now(self) -> float:
        return time.monotonic() - self._start

    def _on_classification(self, msg: Classification) -> None:
        label = self._player.label_for(msg.header.stamp)
        ops = classification_ops(msg)
        self._ops.append(ops)
        self.board.add(Sample(time_s=self._now(),
                              correct=None if label < 0 else msg.class_id == label,
                              timesteps=msg.timesteps_used, budget=msg.timestep_budget,
                              latency_ms=msg.latency_ms,
                              energy_j=msg.energy_j if self._pricing is None
                              else self._pricing.estimate(ops).compute_j))
        self.board.frames_dropped = msg.frames_dropped
        if self._pricing is None:
            self._preset = msg.energy_preset

    def _on_battery(self, msg: BatteryState) -> None:
        self.board.add_battery(self._now(), msg.percentage)

    def _on_energy(self, msg: EnergyEstimate) -> None:
        self.board.baseline_energy_j = msg.baseline_energy_per_inference_j
        if msg.energy_preset and msg.energy_preset != self._preset:  # the baseline's preset
            try:
                self._pricing = EnergyModel(msg.energy_preset)
            except ValueError:  # a preset of another version: no saving is a fair one
                self.board.baseline_energy_j = 0.0
                return
            self._preset = msg.energy_preset
            self.board.samples[:] = [
                dataclasses.replace(sample, energy_j=self._pricing.estimate(ops).compute_j)
                for sample, ops in zip(self.board.samples, self._ops)]

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        """Take the classifier's packet counters (monotonic) from its status."""
        for status in msg.status:
            if status.name == self._status_name:
                values = {kv.key: kv.value for kv in status.values}
                if 'packets_received' in values:
                    self.packets_received = int(values['packets_received'])
                    self.packets_lost = int(values.get('packets_lost', 0))

    def _print_live(self) -> None:
        samples = self.board.samples[-50:]
        if not samples:
            print(f't={self._now():5.1f}s  waiting for classifications...', flush=True)
            return
        scored = [s.correct for s in samples if s.correct is not None]
        accuracy = sum(scored) / len(scored) if scored else float('nan')
        battery = self.board.battery[-1][1] if self.board.battery else float('nan')
        latency = sorted(s.latency_ms for s in samples)[len(samples) // 2]
        packets = ''
        if self._packets:
            received, lost = (('-', '-') if self.packets_received is None
                              else (self.packets_received, self.packets_lost))
            packets = f'  packets rx/lost/sent={received}/{lost}/{self.packets_sent}'
        print(f't={self._now():5.1f}s  n={len(self.board.samples):5d}  '
              f'T={samples[-1].timesteps:4d}  acc(last {len(samples)})={accuracy:6.1%}  '
              f'latency={latency:6.2f} ms  E={samples[-1].energy_j * 1e6:7.3f} uJ  '
              f'battery={battery:6.1%}  dropped={self.board.frames_dropped}{packets}',
              flush=True)

    def packet_line(self) -> str:
        """Return the summary line of the event packets (sent, received, lost)."""
        if self.packets_received is None:
            return f'packets             sent {self.packets_sent}, no classifier status received'
        unaccounted = self.packets_sent - self.packets_received - self.packets_lost
        return (f'packets             sent {self.packets_sent}, received '
                f'{self.packets_received}, lost {self.packets_lost} (sequence gaps)'
                + (f', {unaccounted} unaccounted' if unaccounted else '')
                + f'; the player {self._player.lag_s:.2f} s behind real time at the end')

    def finish(self, plot_path=None):
        """Print the summary, write the plot (when a path is given) and return the summary."""
        summary = self.board.summary()
        lines = summary.lines(_estimate_label(self._preset))
        if self._packets:
            lines.append(self.packet_line())
        print('\n'.join(['', 'Summary'] + lines))
        if plot_path and self.board.samples:
            plot_run(self.board, plot_path)
            print(f'plot                {plot_path}')
        return summary


def _estimate_label(preset: str) -> str:
    """
    Return what the summary's energy is: an estimate, its preset and what the preset prices.

    ``estimate, cmos45_fp32: arithmetic``: the line gave the preset alone, and nothing said
    that the CPU that ran the network drew watts meanwhile (a review).
    """
    from topspark_ros.core.energy import PRESETS

    if preset not in PRESETS:
        return f"estimate, {preset or 'unknown preset'}"
    return f"estimate, {preset}: {', '.join(PRESETS[preset].includes)}"
