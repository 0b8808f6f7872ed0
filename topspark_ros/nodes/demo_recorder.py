"""
The demo's recorder: scores classifications against the image player's labels, over DDS.

Subscribes ``classification``, ``battery`` and ``energy``; feeds a
:class:`topspark_ros.core.scoreboard.Scoreboard`; prints a compact live line every second.
"""

import time

from rclpy.node import Node
from sensor_msgs.msg import BatteryState

from topspark_ros.core.scoreboard import plot_run, Sample, Scoreboard
from topspark_ros.msg import Classification, EnergyEstimate


class DemoRecorderNode(Node):
    """Records the run for the demo's live line, summary and plot."""

    def __init__(self, player, live: bool = True, **kwargs) -> None:
        """Score against ``player.label_for(stamp)``; print a live line if ``live``."""
        super().__init__('demo_recorder', **kwargs)
        self._player = player
        self._live = live
        self._start = time.monotonic()
        self._preset = ''
        self.board = Scoreboard()
        self.create_subscription(Classification, 'classification', self._on_classification, 50)
        self.create_subscription(BatteryState, 'battery', self._on_battery, 10)
        self.create_subscription(EnergyEstimate, 'energy', self._on_energy, 10)
        if live:
            self.create_timer(1.0, self._print_live)

    def _now(self) -> float:
        return time.monotonic() - self._start

    def _on_classification(self, msg: Classification) -> None:
        label = self._player.label_for(msg.header.stamp)
        self.board.add(Sample(time_s=self._now(),
                              correct=None if label < 0 else msg.class_id == label,
                              timesteps=msg.timesteps_used, latency_ms=msg.latency_ms,
                              energy_j=msg.energy_j))
        self.board.frames_dropped = msg.frames_dropped
        self._preset = msg.energy_preset

    def _on_battery(self, msg: BatteryState) -> None:
        self.board.add_battery(self._now(), msg.percentage)

    def _on_energy(self, msg: EnergyEstimate) -> None:
        self.board.baseline_energy_j = msg.baseline_energy_per_inference_j

    def _print_live(self) -> None:
        samples = self.board.samples[-50:]
        if not samples:
            print(f't={self._now():5.1f}s  waiting for classifications...', flush=True)
            return
        scored = [s.correct for s in samples if s.correct is not None]
        accuracy = sum(scored) / len(scored) if scored else float('nan')
        battery = self.board.battery[-1][1] if self.board.battery else float('nan')
        latency = sorted(s.latency_ms for s in samples)[len(samples) // 2]
        print(f't={self._now():5.1f}s  n={len(self.board.samples):5d}  '
              f'T={samples[-1].timesteps:4d}  acc(last {len(samples)})={accuracy:6.1%}  '
              f'latency={latency:6.2f} ms  E={samples[-1].energy_j * 1e6:7.3f} uJ  '
              f'battery={battery:6.1%}  dropped={self.board.frames_dropped}', flush=True)

    def finish(self, plot_path=None):
        """Print the summary, write the plot (when a path is given) and return the summary."""
        summary = self.board.summary()
        print('\n'.join(['', 'Summary'] + summary.lines(self._preset or 'unknown preset')))
        if plot_path and self.board.samples:
            plot_run(self.board, plot_path)
            print(f'plot                {plot_path}')
        return summary
