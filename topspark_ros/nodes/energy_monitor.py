"""
The energy monitor: classifications in, energy estimates (and measurements) and diagnostics out.

Subscribes ``classification``; every ``1 / publish_rate_hz`` seconds publishes ``energy``
(EnergyEstimate: energy per inference, average power, cumulative energy, saving versus the
full-``T`` baseline, under ``energy_preset``, with what that preset includes; the same under
the memory-inclusive ``memory_preset``; the equivalent ANN's energy when ``ann_macs`` is given
or the profile records it; and, where the platform has a power meter (``energy_source``: RAPL,
NVML or INA monitors over hwmon, :mod:`topspark_ros.core.power`), the measured energy and
power beside the estimates) and a ``/diagnostics`` status ``energy_monitor: energy estimate``
(hardware id: the preset; energy, rate, dropped frames, the meter, whether classifications are
arriving). The operation counts of every classification are re-priced here
(:mod:`topspark_ros.core.topspark.meter`), so the monitor can report under another preset
than the classifier. Windows, estimated power and rates are timed on simulated time under
``use_sim_time`` (a bag replayed at any rate gives the recorded figures), where nothing is
published before the first ``/clock`` message, else on the steady clock
(:mod:`topspark_ros.nodes.clocks`: NTP steps of the system clock do not move them); a window
in which the clock went
back (a bag looped) or leapt forward (a later bag, a seek: a step of 2 s or more and ten
times the clock's typical step) is dropped, its inferences kept in the totals; the window
after it is published once it has run half a period or more. Measured figures are of the
machine running now, timed on its monotonic clock (and the meter read ``power_sample_hz``
times a second of it, whatever the simulated clock does).

A meter that is missing or stops reading never stops the monitor: the estimates are published
without measured figures and ``/diagnostics`` says why (WARN for a meter chosen by name; with
``auto``, finding none is normal on most machines and reported at OK level).
"""

import math
import os
from typing import Optional

from rclpy.clock import JumpThreshold
from rclpy.duration import Duration
from rclpy.node import Node

from topspark_ros.conversions.results import (classification_ops, classification_problem,
                                              energy_report_to_msg)
from topspark_ros.core.counters import Recent
from topspark_ros.core.energy import EnergyModel, format_joules, OpCounts, PRESETS
from topspark_ros.core.power import EnergyCounter, open_source, PowerSourceError, SOURCES
from topspark_ros.core.sources import describes, Sources
from topspark_ros.core.topspark.meter import EnergyMeter, Measured
from topspark_ros.msg import Classification, EnergyEstimate
from topspark_ros.nodes import diagnostics
from topspark_ros.nodes.clocks import elapsed_s, Leaps, period_clock, steady_clock
from topspark_ros.nodes.construction import destroyed_if_construction_fails
from topspark_ros.nodes.parameters import declare, Param, values
from topspark_ros.nodes.resources import resolve

PARAMS = (
    Param('energy_preset', 'cmos45_fp32', 'Hardware preset the estimates assume.',
          choices=tuple(PRESETS), live=False),
    Param('memory_preset', 'cmos45_fp32_sram', 'A memory-inclusive preset the same '
          "inferences are also priced with ('' : none).", choices=tuple(
              name for name, preset in PRESETS.items() if 'weight_memory' in preset.includes)
          + ('',), live=False),
    Param('ann_macs', 0.0, 'Multiply-accumulates per input of the same network as an ANN, for '
          "the ANN comparison (0: the profile's, where it records them, else no comparison).",
          low=0.0, live=False),
    Param('platform_power_w', 0.0, 'Power of the whole platform (board, computer) while it '
          "classifies, from its data sheet or your measurement (W; 0: none): the platform's "
          'energy per inference is estimated as it times the latency (and learning_ms, with '
          'on-line learning).', low=0.0, high=1e4,
          live=False),
    Param('energy_source', 'auto', "Measured energy: 'model' (none), 'rapl' (Linux powercap), "
          "'nvml' (NVIDIA GPU), 'hwmon' (INA power monitors, Jetson) or 'auto' (the first "
          'that reads, in that order).', choices=SOURCES, live=False),
    Param('power_channel', '', 'Which meter channel: a RAPL zone name, an NVML GPU index, an '
          "INA rail label ('' : CPU packages, GPU 0, the board input rail).", live=False),
    Param('sysfs_root', '/sys', 'Where sysfs is mounted (e.g. /host/sys in a container).',
          live=False),
    Param('power_sample_hz', 10.0, 'Power meter readings per second (power is integrated '
          'between readings).', low=0.1, high=1000.0, live=False),
    Param('publish_rate_hz', 1.0, 'EnergyEstimate messages and /diagnostics statuses per '
          'second (the averaging window, node clock).',
          low=0.01, high=100.0, live=False),
    Param('profile_path', '', 'Timestep profile giving the full-T baseline energy and the '
          "ANN's MACs ('' : use baseline_energy_j; config/topspark.yaml sets the shipped "
          "model's).", live=False),
    Param('baseline_energy_j', 0.0, 'Energy per inference at full T when no profile is given '
          '(0: unknown, no saving reported).', low=0.0, live=False),
    Param('silence_warn_s', 5.0, 'Diagnostics warn when no classification arrived for this '
          'long (s).', low=0.1),
)


MIN_WINDOW = 0.5
"""A window shorter than this part of the publishing period is not published: it runs on."""

METER_FAILURES = 5
"""
Failed meter readings in a row after which the monitor stops reading its meter.

One failed reading (an INA rail on a busy I2C bus) stopped the measurement until the node was
restarted (a user review). A reading that fails leaves the counter at the last good one, so
the next good one covers the gap (exactly for RAPL's energy counter, by the trapezoid for a
power rail).
"""


@destroyed_if_construction_fails
class EnergyMonitorNode(Node):
    """Prices classifications, reads the power meter and publishes energy estimates."""

    def __init__(self, **kwargs) -> None:
        """Set up the meter, the power meter, the subscription and the publishing timer."""
        super().__init__('energy_monitor', **kwargs)
        declare(self, PARAMS)
        p = values(self, PARAMS)
        self._window_clock = period_clock(self)  # windows on it: NTP steps do not move them
        model = EnergyModel(p['energy_preset'], p['platform_power_w'] or None)
        baseline, ann_macs = p['baseline_energy_j'], p['ann_macs']
        learning = 0.0  # one learning step at full T (the profile's), for results that learnt
        self._profile_sha256 = None  # the model the baseline is of
        if p['profile_path']:
            from topspark_ros.core.topspark.profile import load_profile_parameter
            # Priced under this monitor's preset, as the controller prices it to take the power.
            profile = load_profile_parameter(resolve(p['profile_path']))
            mismatch = profile.energy_mismatch()
            if mismatch is not None:
                self.get_logger().warn(f"profile_path {p['profile_path']}: {mismatch}")
            profile = profile.priced(p['energy_preset'])
            if baseline > 0.0:  # (taken without a word; a review)
                self.get_logger().warn(
                    f'baseline_energy_j {baseline:g} is not used: profile_path is given, and '
                    "the baseline is its full T's energy, "
                    f'{format_joules(profile.baseline.energy_j)} under {p["energy_preset"]} '
                    "(set profile_path:='' to use baseline_energy_j)")
            baseline = profile.baseline.energy_j
            learning = profile.baseline.train_energy_j or 0.0
            ann_macs = self._ann_macs(ann_macs, profile.ann_macs)
            self._profile_sha256 = profile.model_sha256
        self._meter = EnergyMeter(
            model, baseline_energy_j=baseline, start_s=self._now_s(),
            memory_model=EnergyModel(p['memory_preset']) if p['memory_preset'] else None,
            ann_ops=OpCounts(macs=ann_macs) if ann_macs > 0.0 else None,
            baseline_learning_energy_j=learning)
        self._last_seen_s = None
        self._sources = Sources()  # the classifiers heard: their dropped frames add up
        self._other_models = 0  # results of a model the profile does not describe
        self._refused = 0  # classifications whose values were refused
        self._recent = Recent()  # counts since the last status
        self._power, self._power_problem = self._open_power(p)
        self._failures = 0  # failed meter readings in a row
        self._pub = self.create_publisher(EnergyEstimate, 'energy', 10)
        self._diagnostics = diagnostics.Diagnostics(self, 'energy estimate',
                                                    lambda: model.preset.name)
        self._diag_pub = self._diagnostics.publisher
        self.create_subscription(Classification, 'classification', self._on_classification, 10)
        self._period_s = 1.0 / p['publish_rate_hz']
        self.create_timer(self._period_s, self._publish, clock=self._window_clock)
        self._leaps = Leaps(2.0 / p['publish_rate_hz'])  # (two windows at least)
        self._jumps = self.get_clock().create_jump_callback(JumpThreshold(
            min_forward=Duration(nanoseconds=1), min_backward=None, on_clock_change=False),
            post_callback=self._clock_stepped)
        if self._power is not None:  # readings per second of the machine, as the meter
            # times them (on simulated time, a bag at 10x read the meter 48 times a second;
            # none while it was paused; a review)
            self.create_timer(1.0 / p['power_sample_hz'], self._sample_power,
                              clock=steady_clock())

    def _ann_macs(self, given: float, profiled: Optional[float]) -> float:
        """
        Return the ANN's MACs per input: ``given`` (the parameter), else the profile's.

        A parameter that is not the profiled model's is used, with a warning: a value copied
        from another model's configuration made the comparison one with another network.
        """
        if not given:
            return profiled or 0.0
        if profiled and not math.isclose(given, profiled, rel_tol=1e-6):
            self.get_logger().warn(
                f"ann_macs {given:.0f} is not the profiled model's {profiled:.0f} (its "
                'ann_ops()): the ANN comparison is with another network; set ann_macs to 0 '
                "to take the profile's")
        return given

    def _open_power(self, p: dict) -> tuple:
        """Return ``(EnergyCounter or None, why there is none: '' when none was asked)``."""
        try:
            if p['energy_source'] in ('rapl', 'hwmon', 'auto') and not os.path.isabs(
                    p['sysfs_root']):  # ('' read class/powercap in the working
                # directory; a review of the parameters)
                raise PowerSourceError('sysfs_root must be an absolute path, not '
                                       f"{p['sysfs_root']!r}")
            source = open_source(p['energy_source'], root=p['sysfs_root'],
                                 channel=p['power_channel'])
            if source is None:
                return None, ''
            counter = EnergyCounter(source)
        except PowerSourceError as exc:
            text = f'no measured energy ({exc}); publishing the {p["energy_preset"]} estimates'
            if p['energy_source'] == 'auto':  # (one call site per severity: see classifier)
                self.get_logger().info(text)
            else:
                self.get_logger().warn(text)
            return None, str(exc)
        self.get_logger().info(f'measuring energy with {source.name}')
        return counter, ''

    def _sample_power(self) -> None:
        if self._power is None:
            return
        try:
            self._power.sample()
        except PowerSourceError as exc:
            self._power_failed(exc)
            return
        self._power_read()

    def _power_read(self) -> None:
        """Note a good reading: the failures in a row start again from 0."""
        if self._failures:
            self.get_logger().info(f'meter reads again after {self._failures} failed '
                                   'reading(s)')
            self._failures, self._power_problem = 0, ''

    def _power_failed(self, exc: PowerSourceError) -> None:
        """
        Note a failed reading; stop measuring after METER_FAILURES of them in a row.

        The reason goes to /diagnostics (WARN) either way.
        """
        self._failures += 1
        if self._failures < METER_FAILURES:
            self._power_problem = f'meter failed to read ({self._failures} in a row): {exc}'
            self.get_logger().warn(self._power_problem, throttle_duration_sec=5.0)
            return
        self._power, self._power_problem = None, f'meter stopped reading: {exc}'
        self.get_logger().warn(f'{self._power_problem} ({METER_FAILURES} failed readings in a '
                               'row); publishing estimates only')

    def _measure(self) -> tuple:
        """
        Return ``(measured window or None, whether the meter failed to read now)``.

        A failed reading leaves the meter's window open: the next one spans both.
        """
        if self._power is None:
            return None, False
        try:
            energy, power = self._power.window()
        except PowerSourceError as exc:
            self._power_failed(exc)
            return None, self._power is not None  # (not if it stopped reading for good)
        self._power_read()
        return Measured(self._power.source.name, energy, power), False

    def _on_classification(self, msg: Classification) -> None:
        problem = classification_problem(msg)
        if problem is not None:  # kept, it stayed in the totals for good (a user review)
            self._refused += 1
            self.get_logger().warn(f'a Classification with {problem} was ignored '
                                   f'({self._refused} so far)', throttle_duration_sec=30.0)
            return
        ops = classification_ops(msg)
        now_s = self._now_s()
        started = self._started(now_s)  # before the window takes the inference
        busy_ms = msg.latency_ms + msg.learning_ms  # the board is busy learning too (a review:
        # with online_learning the platform's energy left out more than half its time)
        self._meter.add(ops, msg.timesteps_used, busy_ms * 1e-3 if busy_ms > 0.0 else None,
                        learnt=msg.learnt)
        # Per classifier, over its restarts: the largest count heard hid a second one's and
        # a restarted one's (a review of several classifiers).
        self._sources.dropped(msg.source, msg.frames_dropped, now_s)
        if self._profile_sha256 and not describes(self._profile_sha256, msg.model_sha256,
                                                  msg.base_model_sha256):
            self._other_models += 1
        if started:
            self._last_seen_s = now_s

    def _now_s(self) -> float:
        """Return the window clock (s): simulated time under use_sim_time (0 before /clock)."""
        return elapsed_s(self._window_clock)

    def _started(self, now_s: float) -> bool:
        """
        Return whether the clock runs; the first window starts when it starts.

        Inferences before the first ``/clock`` count in the totals, not in a window: they
        made the first window's power that of all of them in its first milliseconds (700
        times too high, and a controller under a power cap cut T for it; a user review).
        """
        if now_s <= 0.0:
            return False
        if self._meter.start_s <= 0.0:
            self._meter.start_s = now_s
            self._meter.restart(now_s)
        return True

    def _clock_stepped(self, jump) -> None:
        """
        Start a new window where the simulated clock leapt forward (a later bag, a seek).

        The window in progress spanned the leap: its power was its energy over the leap
        (260 times too low, and "no classifications arriving" while they were; a user
        review). Its inferences stay in the totals; the silence is counted without the leap.
        A leap is a step of at least ``2 / publish_rate_hz`` seconds
        (:class:`~topspark_ros.nodes.clocks.Leaps`): at ``--rate 80`` every step is 2 s
        (taken for leaps, they left every window empty; a review).
        """
        now_s, step_s = self._now_s(), jump.delta.nanoseconds * 1e-9
        if now_s <= 0.0 or self._meter.start_s <= 0.0:
            return  # the clock's start: _started opens the first window
        if not self._leaps.leapt(step_s):
            return
        self._meter.restart(now_s)
        if self._last_seen_s is not None:
            self._last_seen_s += step_s

    def _publish(self) -> None:
        now_s = self._now_s()
        if not self._started(now_s):
            return  # the clock has not started (sim time)
        if now_s < self._meter.window_start_s:  # it went back: a replayed bag looped
            self._meter.restart(now_s)
            self._last_seen_s = None
            return
        if now_s <= self._meter.start_s:
            return  # the first window just started
        if now_s - self._meter.window_start_s < MIN_WINDOW * self._period_s:
            # A window restarted at a leap of the simulated clock, with the timer overdue:
            # it lasted nothing, and one inference in it was a power 1e8 times too high
            # (a controller under a power cap cut T; a review). It runs on to the next tick.
            return
        measured, failed = self._measure()
        report = self._meter.report(now_s, measured, measurement_failed=failed)
        msg = energy_report_to_msg(report)
        msg.header.stamp = self.get_clock().now().to_msg()
        self._pub.publish(msg)
        silent_s = None if self._last_seen_s is None else now_s - self._last_seen_s
        if silent_s is None or silent_s > self.get_parameter('silence_warn_s').value:
            level, text = diagnostics.WARN, 'no classifications arriving'
        else:
            level, text = diagnostics.OK, 'receiving classifications'
        refused = self._recent.since('refused', self._refused)
        if refused:
            level = max(level, diagnostics.WARN)
            text = f'{text}; {refused} classifications with values that cannot be taken ignored'
        others = self._recent.since('other_models', self._other_models)
        if others:  # priced and counted (the robot's energy), but not of the baseline's model
            level = max(level, diagnostics.WARN)
            text = (f"{text}; {others} results of another model than the profile's: in the "
                    "energy, but saving_vs_baseline is against the profile's model")
        source = self.get_parameter('energy_source').value
        if self._power_problem and (source != 'auto' or self._power is not None
                                    or 'stopped' in self._power_problem):
            level = max(level, diagnostics.WARN)
            text = f'{text}; no measured energy ({source}): {self._power_problem}'
        self._diagnostics.publish(level, text, {
            'energy_per_inference_j': report.energy_per_inference_j,
            'average_power_w': report.average_power_w,
            'cumulative_energy_j': report.cumulative_energy_j,
            'inference_rate_hz': report.window_inferences / report.window_s,
            'mean_timesteps': report.mean_timesteps,
            'saving_vs_baseline': report.saving_vs_baseline,
            'frames_dropped': self._sources.dropped_total,
            'messages_refused': self._refused,
            'sources': ', '.join(self._sources.names(now_s)),
            'other_model_results': self._other_models,
            'preset': report.preset,
            'preset_includes': ', '.join(report.includes),
            'memory_preset': report.memory_preset,
            'memory_energy_per_inference_j': report.memory_energy_per_inference_j,
            'ann_energy_per_inference_j': report.ann_energy_per_inference_j,
            'measured_source': report.measured.source if report.measured else
            f'none ({self._power_problem or source})',
            'measured_energy_per_inference_j': report.measured_energy_per_inference_j,
            'measured_average_power_w': (report.measured.average_power_w
                                         if report.measured else 0.0),
            'platform_power_w': report.platform_power_w,
            'platform_energy_per_inference_j': report.platform_energy_per_inference_j,
        })


def main(args=None) -> int:
    """Run the energy monitor alone (``ros2 run topspark_ros energy_monitor``)."""
    from topspark_ros.nodes.runner import run_nodes
    return run_nodes([EnergyMonitorNode], args=args)


if __name__ == '__main__':
    import sys
    sys.exit(main())
