"""
The energy monitor: classifications in, energy estimates and diagnostics out.

Subscribes ``classification``; every ``1 / publish_rate_hz`` seconds publishes ``energy``
(EnergyEstimate: energy per inference, average power, cumulative energy, saving versus the
full-``T`` baseline, under ``energy_preset``) and a ``/diagnostics`` status
``energy_monitor: energy estimate`` (hardware id: the preset; energy, rate, dropped frames,
whether classifications are arriving). The operation counts of every classification are
re-priced here (:mod:`topspark_ros.core.meter`), so the monitor can report under another
preset than the classifier. Windows, power and rates are timed on the node clock: simulated
time under ``use_sim_time`` (a bag replayed at any rate gives the recorded figures), where
nothing is published before the first ``/clock`` message.
"""

from rclpy.node import Node

from topspark_ros.conversions.results import energy_report_to_msg
from topspark_ros.core.energy import EnergyModel, OpCounts, PRESETS
from topspark_ros.core.meter import EnergyMeter
from topspark_ros.msg import Classification, EnergyEstimate
from topspark_ros.nodes import diagnostics
from topspark_ros.nodes.parameters import declare, Param, values
from topspark_ros.nodes.resources import resolve

PARAMS = (
    Param('energy_preset', 'cmos45_fp32', 'Hardware preset the estimates assume.',
          choices=tuple(PRESETS), live=False),
    Param('publish_rate_hz', 1.0, 'EnergyEstimate messages and /diagnostics statuses per '
          'second (the averaging window, node clock).',
          low=0.01, high=100.0, live=False),
    Param('profile_path', '', "Timestep profile giving the full-T baseline energy ('' : use "
          'baseline_energy_j).', live=False),
    Param('baseline_energy_j', 0.0, 'Energy per inference at full T when no profile is given '
          '(0: unknown, no saving reported).', low=0.0, live=False),
    Param('silence_warn_s', 5.0, 'Diagnostics warn when no classification arrived for this '
          'long.', low=0.1),
)


class EnergyMonitorNode(Node):
    """Prices classifications and publishes energy estimates."""

    def __init__(self, **kwargs) -> None:
        """Set up the meter, the subscription and the publishing timer."""
        super().__init__('energy_monitor', **kwargs)
        declare(self, PARAMS)
        p = values(self, PARAMS)
        model = EnergyModel(p['energy_preset'])
        baseline = p['baseline_energy_j']
        if p['profile_path']:
            from topspark_ros.core.profile import load_profile
            baseline = model.estimate(
                load_profile(resolve(p['profile_path'])).baseline.ops).compute_j
        self._meter = EnergyMeter(model, baseline_energy_j=baseline, start_s=self._now_s())
        self._last_seen_s = None
        self._dropped = 0
        self._pub = self.create_publisher(EnergyEstimate, 'energy', 10)
        self._diagnostics = diagnostics.Diagnostics(self, 'energy estimate',
                                                    lambda: model.preset.name)
        self._diag_pub = self._diagnostics.publisher
        self.create_subscription(Classification, 'classification', self._on_classification, 10)
        self.create_timer(1.0 / p['publish_rate_hz'], self._publish)

    def _on_classification(self, msg: Classification) -> None:
        ops = OpCounts(accumulates=msg.accumulates, macs=msg.macs,
                       neuron_updates=msg.neuron_updates,
                       plasticity_updates=msg.plasticity_updates)
        self._meter.add(ops, msg.timesteps_used)
        self._dropped = max(self._dropped, msg.frames_dropped)
        now_s = self._now_s()
        if self._started(now_s):
            self._last_seen_s = now_s

    def _now_s(self) -> float:
        """Return the node clock (s): simulated time under use_sim_time, 0 before /clock."""
        return self.get_clock().now().nanoseconds * 1e-9

    def _started(self, now_s: float) -> bool:
        """Return whether the clock runs; the first window starts when it starts."""
        if now_s <= 0.0:
            return False
        if self._meter.start_s <= 0.0:
            self._meter.start_s = now_s
        return True

    def _publish(self) -> None:
        now_s = self._now_s()
        if not self._started(now_s) or now_s <= self._meter.start_s:
            return  # the clock has not started (sim time), or the first window just did
        report = self._meter.report(now_s)
        msg = energy_report_to_msg(report)
        msg.header.stamp = self.get_clock().now().to_msg()
        self._pub.publish(msg)
        silent_s = None if self._last_seen_s is None else now_s - self._last_seen_s
        if silent_s is None or silent_s > self.get_parameter('silence_warn_s').value:
            level, text = diagnostics.WARN, 'no classifications arriving'
        else:
            level, text = diagnostics.OK, 'receiving classifications'
        self._diagnostics.publish(level, text, {
            'energy_per_inference_j': report.energy_per_inference_j,
            'average_power_w': report.average_power_w,
            'cumulative_energy_j': report.cumulative_energy_j,
            'inference_rate_hz': report.window_inferences / report.window_s,
            'mean_timesteps': report.mean_timesteps,
            'saving_vs_baseline': report.saving_vs_baseline,
            'frames_dropped': self._dropped,
            'preset': report.preset,
        })


def main(args=None) -> int:
    """Run the energy monitor alone (``ros2 run topspark_ros energy_monitor``)."""
    from topspark_ros.nodes.runner import run_nodes
    return run_nodes([EnergyMonitorNode], args=args)


if __name__ == '__main__':
    import sys
    sys.exit(main())
