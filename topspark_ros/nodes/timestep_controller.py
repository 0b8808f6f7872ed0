"""
The timestep controller: picks the timestep count T by the trade-off strategy (lifecycle).

Loads a timestep profile on configure; subscribes ``battery`` (sensor_msgs/BatteryState;
best effort by default, which hears reliable and best-effort drivers alike, and a warning is
logged when a publisher's QoS cannot match),
``classification`` (measured latency and rate) and ``energy`` (EnergyEstimate); runs
:class:`topspark_ros.core.topspark.strategy.TimestepSelector` on every signal; publishes
``timestep`` (TimestepCommand, reliable + transient local, so a late classifier gets the current
T) when the choice changes and every ``heartbeat_period_s``. Mode and constraints change at run
time; an invalid value is refused with the reason and changes nothing.
"""

import collections
import statistics
import time
from typing import Optional

from rclpy.clock import JumpThreshold
from rclpy.duration import Duration
from rclpy.lifecycle import TransitionCallbackReturn
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import BatteryState

from topspark_ros.conversions.results import (choice_to_msg, classification_problem,
                                              energy_problem)
from topspark_ros.core.counters import Reasons, Recent
from topspark_ros.core.energy_windows import EnergyWindows
from topspark_ros.core.latencies import LatencyWindows
from topspark_ros.core.sources import describes, SOURCE_QUIET_S, Sources
from topspark_ros.core.topspark.strategy import (BatteryLevel, BatteryPolicy, charge_percent,
                                                 Constraints, LiveSignals, Mode,
                                                 profiled_energy_j, TimestepSelector)
from topspark_ros.msg import Classification, EnergyEstimate, TimestepCommand
from topspark_ros.nodes import diagnostics
from topspark_ros.nodes.bond import PARAM as BOND_PARAM
from topspark_ros.nodes.clocks import elapsed_s, Leaps, period_clock
from topspark_ros.nodes.construction import destroyed_if_construction_fails
from topspark_ros.nodes.lifecycle import LifecycleNode
from topspark_ros.nodes.parameters import configured, declare, Param, values
from topspark_ros.nodes.qos import RELIABILITIES, reliability, warn_on_incompatible_qos
from topspark_ros.nodes.resources import resolve, SHIPPED_PROFILE

MODES = tuple(m.value for m in Mode)
CHARGING = (BatteryState.POWER_SUPPLY_STATUS_CHARGING, BatteryState.POWER_SUPPLY_STATUS_FULL)
"""The ``power_supply_status`` values of a battery on its charger."""
CHARGING_LOG_S = 10.0
"""A battery's change to or from charging is logged (INFO) at most once in this long (s)."""
STEPS_WINDOW = 100
"""Results per T whose mean steps used price that T with early exit."""
STEPS_MIN = 30
"""Results a T takes before its mean steps used count (the profile's figure until then):
steps per input are bimodal (most stop at 30 to 60 steps, the undecided run all T), and means
of 10 scattered from 88 to 101 at one T (a review)."""
EXIT_WINDOW = 30
"""The latest results (at T above the profile's early-exit floor) whose early-exit flags say
whether the classifier exits early: one that stopped early says it does, none says it does
not (100 took 5 s at 20 Hz to see early exit switched off, the energy budget broken
meanwhile; a review)."""
PERCENT_ABOVE = 1.05
"""A battery percentage above this is read as 0..100 from then on; up to it, as a gauge's
overshoot of a full charge (1.0). One 1.02 read a 0..1 driver as percents for good, its 0.9
as 0.9 % (a review)."""
PARAMS = (
    Param('profile_path', '', "Timestep profile (.yaml) of the classifier's model, made by "
          '`topspark sweep` (a path or package://<package>/<path>; config/topspark.yaml sets '
          "the shipped model's).", live=False),
    Param('mode', 'balanced', 'Trade-off mode.', choices=MODES),
    Param('max_accuracy_drop', 0.02, 'Largest accuracy loss accepted versus the full-T '
          'baseline (fraction).', low=0.0, high=1.0),
    Param('max_latency_ms', 0.0, 'Latency ceiling per inference (ms; 0: none).', low=0.0),
    Param('max_energy_j', 0.0, "Energy budget per inference (J; 0: none), as the profile's "
          "preset prices it, or the energy monitor's once it has published.", low=0.0),
    Param('max_power_w', 0.0, 'Average power cap of the classifier (W; 0: none), priced as '
          'max_energy_j.', low=0.0),
    Param('max_timesteps', 0, "Largest T to command: the classifier's max_timesteps, which "
          'clamps a larger T (0: none). Below every profiled T, the smallest is commanded, '
          'as the least violation, and the classifier clamps it.', low=0),
    Param('battery_low_fraction', 0.3, 'Below this charge: one mode step toward energy_saver.',
          low=0.0, high=1.0),
    Param('battery_critical_fraction', 0.1, 'Below this charge: energy_saver.', low=0.0,
          high=1.0),
    Param('low_extra_drop', 0.02, 'Extra accuracy drop accepted on low battery.', low=0.0,
          high=1.0),
    Param('critical_extra_drop', 0.05, 'Extra accuracy drop accepted on critical battery (the '
          'larger of this and low_extra_drop).',
          low=0.0, high=1.0),
    Param('hysteresis_fraction', 0.02, 'A battery threshold crossed downwards is re-crossed '
          'only above threshold + this.', low=0.0, high=0.5),
    Param('battery_recover_s', 5.0, 'A better battery level is taken only once the charge has '
          'stayed above its threshold + hysteresis_fraction this long (s, node clock; 0: at '
          'once): a charge read from the voltage swings with the load. A worse level is '
          'taken at once.', low=0.0, high=3600.0),
    Param('battery_timeout_s', 30.0, 'No battery state for this long (s, node clock; 0: '
          'never): the charge is taken as unknown, the battery level in force is kept, and '
          '/diagnostics WARNs (a battery driver that died left its last charge standing).',
          low=0.0),
    Param('battery_charging_full', True, 'While the battery driver says it is charging or full '
          '(power_supply_status CHARGING or FULL), its charge is taken as full: a robot on '
          'its dock at 20 % does not trade accuracy for energy (false: the charge as '
          'published, whatever the status).'),
    Param('battery_reliability', 'best_effort', 'QoS reliability of the battery '
          "subscription: 'best_effort' hears reliable and best-effort drivers alike, "
          "'reliable' only reliable ones (a mismatch is logged as a warning).",
          choices=RELIABILITIES, live=False),
    Param('switch_margin', 0.05, 'Switch T only if the objective improves by more than this '
          'fraction, and to a T this fraction under the latency, energy and power limits '
          '(violations switch at once).', low=0.0, high=1.0),
    Param('heartbeat_period_s', 2.0, 'Republish the current command, and publish the '
          '/diagnostics status, this often (s, node clock).',
          low=0.05, high=3600.0, live=False),
    Param('energy_timeout_s', 5.0, "The energy monitor's last power and energy are dropped "
          'this long after it, or three of its windows if longer (s, node clock; checked '
          "every heartbeat), with a warning: the profile's energies at the measured rate "
          'stand in.', above=0.0),
    BOND_PARAM,
)


def _settings(p: dict) -> tuple:
    """Return (Constraints, Mode, BatteryPolicy) from parameter values."""
    constraints = Constraints(
        max_accuracy_drop=p['max_accuracy_drop'],
        max_latency_ms=p['max_latency_ms'] or None, max_energy_j=p['max_energy_j'] or None,
        max_power_w=p['max_power_w'] or None, max_timesteps=p['max_timesteps'] or None)
    policy = BatteryPolicy(
        low_fraction=p['battery_low_fraction'], critical_fraction=p['battery_critical_fraction'],
        low_extra_drop=p['low_extra_drop'], critical_extra_drop=p['critical_extra_drop'],
        hysteresis_fraction=p['hysteresis_fraction'], recover_s=p['battery_recover_s'])
    return constraints, Mode(p['mode']), policy


def _check_battery_order(p: dict):
    if p['battery_critical_fraction'] > p['battery_low_fraction']:
        return 'battery_critical_fraction must not exceed battery_low_fraction'
    if p['battery_low_fraction'] + p['hysteresis_fraction'] > 1.0:  # low never left (a review)
        return ('battery_low_fraction + hysteresis_fraction must not exceed 1: a low battery '
                'would never read normal again, even full')
    return None


@destroyed_if_construction_fails
class TimestepControllerNode(LifecycleNode):
    """Lifecycle node wrapping :class:`topspark_ros.core.topspark.strategy.TimestepSelector`."""

    def __init__(self, **kwargs) -> None:
        """Declare parameters; the profile is loaded on configure."""
        super().__init__('timestep_controller', **kwargs)
        declare(self, PARAMS, is_locked=lambda: configured(self),
                extra_check=_check_battery_order)
        self.add_post_set_parameters_callback(self._on_parameters_set)
        self._in_request, self._settings_changed = False, False
        self._batch_parameter_requests()
        self._active = False
        self._selector = None
        self._profiled_preset = ''
        self._signals = LiveSignals()
        self._energy_at_s = None  # node clock (s) of the monitor's last window taken
        # The monitor's window: the median interval of its recent stamps (an outage's long
        # gap does not count for long), until known its inferences over the inference rate.
        self._energy_intervals = collections.deque(maxlen=5)
        self._energy_window_s = 0.0
        self._energy_stamp_s = None  # the stamp of its last window (its end)
        self._power_run_at = None  # the T the latest window's inferences ran under (early exit)
        self._energy_windows = EnergyWindows()  # its last windows, smoothed (a review: the
        # energy of one window of ten inferences scattered by a quarter and flipped T)
        # Medians of recent latencies per T, so one slow frame does not move T; through the
        # current T's and the other T's (kept until it runs there again: a point dropped
        # after a while left T pinned where one scaled point puts it), the strategy fits a
        # fixed cost plus a multiple of the profile's.
        self._latencies = LatencyWindows()
        # With early exit a T is a budget: the mean steps its inputs used price it, and the
        # results' early-exit flags say whether the classifier exits early (strategy docs).
        self._steps_used = LatencyWindows(STEPS_WINDOW, STEPS_MIN, statistics.fmean)
        self._exits = collections.deque(maxlen=EXIT_WINDOW)
        self._exit_floor = 1
        self._chosen = None  # (T, stamp) of the T published last, and when it was chosen
        self._sources = Sources()  # the classifiers heard: their rates add up
        self._other_models = 0  # results of a model the profile does not describe
        self._publish_count = 0
        self._period_clock = period_clock(self)  # heartbeats, energy age: NTP steps aside
        if self.get_parameter('use_sim_time').value:  # a seek in a replayed bag is no silence
            self._leaps = Leaps()
            self._jumps = self.get_clock().create_jump_callback(JumpThreshold(
                min_forward=Duration(nanoseconds=1), min_backward=Duration(nanoseconds=-1),
                on_clock_change=False), post_callback=self._clock_stepped)
        self._refused = 0  # messages whose values cannot be taken
        self._refusals = Reasons(30.0)  # their warnings, by message type
        self._recent = Recent()  # counts since the last status
        self._battery_qos_incompatible, self._battery_qos_reason = 0, ''
        self._battery_at_s = None  # node clock (s) of the last battery state taken
        self._battery_heard_s = None  # ... and of the last one heard (an unknown charge too)
        self._battery_ignored, self._battery_ignored_reason = 0, ''
        self._battery_percent = False  # the driver publishes 0..100 (one value above 1 heard)
        self._battery_charging = False  # the last state heard says charging or full
        self._battery_published = None  # its charge (0..1; None: unknown or out of range)
        self._charging_logged_s = None  # node clock (s) of the last change of it logged
        # /diagnostics from construction on (every heartbeat), so a failed configure shows.
        self._configure_error = ''
        self._diagnostics = diagnostics.Diagnostics(
            self, 'timestep selection', self._hardware_id, self._diagnostic_status,
            'heartbeat_period_s')
        self._diag_pub = self._diagnostics.publisher

    def on_configure(self, state) -> TransitionCallbackReturn:
        """Load the profile, build the selector, create publishers and subscriptions."""
        p = values(self, PARAMS)
        try:
            from topspark_ros.core.topspark.profile import load_profile_parameter
            if not p['profile_path']:
                raise ValueError('profile_path is empty: give the profile `topspark sweep` '
                                 'wrote for the model (e.g. '
                                 f'{SHIPPED_PROFILE})')
            profile = load_profile_parameter(resolve(p['profile_path']))
            mismatch = profile.energy_mismatch()
            if mismatch is not None:
                self.get_logger().warn(f"profile_path {p['profile_path']}: {mismatch}")
        except (OSError, ValueError) as exc:
            self._configure_error = f'cannot load the timestep profile: {exc}'
            self.get_logger().error(self._configure_error)
            self._publish_diagnostics()  # ERROR with the reason, at once
            return TransitionCallbackReturn.FAILURE
        try:
            reason = _check_battery_order(p)
            if reason is not None:
                raise ValueError(reason)
            constraints, mode, policy = _settings(p)
        except ValueError as exc:  # (set at start-up: a set at run time is refused instead)
            self._configure_error = f'parameters: {exc}'
            self.get_logger().error(self._configure_error)
            self._publish_diagnostics()
            return TransitionCallbackReturn.FAILURE
        self._configure_error = ''
        if (profile.enhancement or {}).get('measured_with_params') is False:
            # After enhance, before a sweep: the entries are the figures of the parameters
            # before (the model's own, or values an earlier enhancement found).
            self.get_logger().warn(
                "the profile's accuracies, latencies and energies were measured with other "
                'parameters than the enhanced ones the classifier applies (before the last '
                '`topspark enhance`): T is chosen on those; run `topspark sweep -m MODEL '
                '--params-from PROFILE -o PROFILE --overwrite` to measure them')
        self._selector = TimestepSelector(profile, constraints, mode, policy,
                                          switch_margin=p['switch_margin'])
        self._profiled_preset = profile.energy_preset  # the monitor's may price it again
        floors = [e.early_exit_min_steps for e in profile.entries
                  if e.early_exit_min_steps is not None]
        self._exit_floor = max(floors) if floors else 1  # (a result at T=1 cannot stop early)
        qos = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                         durability=DurabilityPolicy.TRANSIENT_LOCAL)
        self._pub = self.create_lifecycle_publisher(TimestepCommand, 'timestep', qos)
        self._subs = [
            self._subscribe_battery(p),
            self.create_subscription(Classification, 'classification', self._on_classification,
                                     10),
            self.create_subscription(EnergyEstimate, 'energy', self._on_energy, 10)]
        self._timer = self.create_timer(p['heartbeat_period_s'], self._heartbeat,
                                        clock=self._period_clock)
        self.get_logger().info(
            f"profile {p['profile_path']}: model {profile.model_sha256[:12]}, T "
            f"{', '.join(str(t) for t in profile.timesteps)}, energies under "
            f'{profile.energy_preset}')
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state) -> TransitionCallbackReturn:
        """Start publishing: the first command goes out at once."""
        result = super().on_activate(state)
        self._active = True
        self._chosen = None  # the first command is a choice made now
        self._evaluate(force_publish=True)
        choice = self._selector.current
        if choice is not None:  # (a change is logged; the first T was not: a review)
            self.get_logger().info(f'active, first {choice.reason}')
        return result

    def on_deactivate(self, state) -> TransitionCallbackReturn:
        """Stop publishing commands."""
        self._active = False
        return super().on_deactivate(state)

    def on_cleanup(self, state) -> TransitionCallbackReturn:
        """Drop the profile and everything configure created."""
        self._teardown()
        self._forget_measurements()
        return TransitionCallbackReturn.SUCCESS

    def _forget_measurements(self) -> None:
        """Forget what was heard of the model the profile described (a next one may differ)."""
        self._latencies.clear()  # latencies of this profile's model and input
        self._steps_used.clear()  # ... and steps used
        self._exits.clear()
        # ... and what was measured of them (kept, the old model's latencies priced the next
        # profile's T until 5 new results at a T came; a review)
        self._signals = self._signals.replace(
            early_exit=False, steps_used=(), measured_latency_ms=None, measured_timesteps=None,
            latency_points=(), rate_hz=None)
        self._sources = Sources()
        self._forget_energy()  # ratios to this profile's energies
        self._battery_percent = False  # (the next configure may hear another driver)

    def on_shutdown(self, state) -> TransitionCallbackReturn:
        """Release everything."""
        self._active = False
        self._teardown()
        self._forget_measurements()
        return TransitionCallbackReturn.SUCCESS

    def on_error(self, state) -> TransitionCallbackReturn:
        """Return to unconfigured after an error in a transition (as cleanup does)."""
        self._active = False
        self._teardown()
        self._forget_measurements()  # (kept, they priced the next profile's T; a review)
        return TransitionCallbackReturn.SUCCESS

    # Signals ---------------------------------------------------------------------------------
    def _subscribe_battery(self, p: dict):
        """Return the ``battery`` subscription (``battery_reliability``; mismatches warned)."""
        def incompatible(policy: str) -> None:
            self._battery_qos_incompatible += 1
            self._battery_qos_reason = policy

        events = warn_on_incompatible_qos(
            self, self.resolve_topic_name('battery'),
            "set battery_reliability to 'best_effort' to hear it",
            incompatible)
        qos = QoSProfile(depth=10, reliability=reliability(p['battery_reliability']))
        return self.create_subscription(BatteryState, 'battery', self._on_battery, qos,
                                        event_callbacks=events)

    def _on_battery(self, msg: BatteryState) -> None:
        """
        Take the state of charge, unless it is unknown.

        Unknown: NaN, or 0 from a message saying no battery is present (a message left at its
        defaults: taken as an empty battery, it forced the energy saver). sensor_msgs gives
        the charge as 0..1; a driver that publishes 0..100 is known by a value above 1 (a WARN,
        once), and from then on its values are taken as percents: its 25 and 5 were ignored,
        then its 1 and 0.5 read as a full and a half-full battery (a review). A value that is
        neither (negative, above 100) is ignored, counted and WARNed in /diagnostics.

        A battery charging or full (``power_supply_status``) is taken as full with
        ``battery_charging_full``, whatever its charge (unknown or out of range too): the
        thresholds lowered T on a robot docked at 20 %. NOT_CHARGING, which drivers send both
        for a charger's pause and for running on battery, is taken as published. Said in the
        log when charging starts and ends (at most once in :data:`CHARGING_LOG_S`, else at
        debug level: some drivers flip at the top of a charge). The published charge is kept,
        so a change of the parameter takes effect at once (:meth:`_take_battery`).
        """
        charging = msg.power_supply_status in CHARGING
        if charging != self._battery_charging:
            self._battery_charging = charging
            text = (f'battery {"charging or full" if charging else "no longer charging"}'
                    f'{self._battery_taken_as()}')
            now_s = self._now_s()
            if self._charging_logged_s is None \
                    or not 0.0 <= now_s - self._charging_logged_s < CHARGING_LOG_S:
                self._charging_logged_s = now_s
                self.get_logger().info(text)
            else:  # flipping (FULL and NOT_CHARGING at the top of a charge): not at its rate
                self.get_logger().debug(text)
        self._battery_heard_s = self._now_s()  # (a driver that says 'unknown' is alive)
        self._battery_published = self._published_charge(msg)
        self._take_battery()

    def _published_charge(self, msg: BatteryState) -> Optional[float]:
        """Return the charge ``msg`` gives (0..1), None if unknown or out of range (WARNed)."""
        fraction = msg.percentage
        if fraction != fraction or (fraction == 0.0 and not msg.present):
            return None
        if 1.0 < fraction <= PERCENT_ABOVE and not self._battery_percent:
            fraction = 1.0  # a gauge overshooting after a full charge (1.02), not 0..100
        if PERCENT_ABOVE < fraction <= 100.0 and not self._battery_percent:
            self._battery_percent = True
            self.get_logger().warn(
                f'battery percentage {fraction:g}: this battery driver publishes 0..100, not '
                'the 0..1 of sensor_msgs/BatteryState; its values are taken as percents from '
                'now on')
        if self._battery_percent:
            fraction = fraction / 100.0
        if not 0.0 <= fraction <= 1.0:
            self._battery_ignored += 1
            self._battery_ignored_reason = f'percentage {msg.percentage:g}'
            self.get_logger().warn(f'battery percentage {msg.percentage:g} ignored: '
                                   'sensor_msgs/BatteryState gives it as 0..1 (NaN when '
                                   'unknown)', throttle_duration_sec=30.0)
            return None
        return float(fraction)

    def _battery_taken_as(self) -> str:
        """Return how the charge is taken now, for the log (after 'battery charging...')."""
        if not self._battery_charging:
            return ': its charge is taken as published'
        if self.get_parameter('battery_charging_full').value:
            return ': its charge is taken as full (battery_charging_full)'
        return ': its charge is taken as published (battery_charging_full false)'

    def _take_battery(self) -> None:
        """
        Take the charge from the last battery state: full while charging, else as published.

        A charge neither known nor taken as full is not taken (the level in force stays; it is
        not fresh for ``battery_timeout_s`` either).
        """
        if self._battery_charging and self.get_parameter('battery_charging_full').value:
            fraction = 1.0
        elif self._battery_published is not None:
            fraction = self._battery_published
        else:
            return
        self._battery_at_s = self._battery_heard_s = self._now_s()
        self._signals = self._signals.replace(battery_fraction=fraction)
        self._evaluate()

    def _check_battery_age(self) -> None:
        """
        Take the charge as unknown once none came for ``battery_timeout_s``.

        Counted from the last charge taken: a driver that goes on publishing the charge as
        unknown (NaN) is said to, not to have gone quiet (a review).
        """
        timeout_s = self.get_parameter('battery_timeout_s').value
        if not timeout_s or self._battery_at_s is None \
                or self._signals.battery_fraction is None:
            return
        now_s = self._now_s()
        age_s = now_s - self._battery_at_s
        if age_s < 0.0:  # the clock went back (a replayed bag looped): counted from now
            self._battery_at_s = self._battery_heard_s = now_s
        elif age_s > timeout_s:
            self._signals = self._signals.replace(battery_fraction=None)
            self._battery_published, self._battery_charging = None, False  # (both unknown)
            level = self._selector.battery_level if self._selector is not None else None
            self.get_logger().warn(
                f'{self._battery_silence(now_s)} (battery_timeout_s {timeout_s:g}): the '
                'charge is unknown, the battery level '
                f"{level.value if level is not None else 'normal'} is kept")
            self._evaluate()

    def _battery_silence(self, now_s: float) -> str:
        """Say how long no charge came, and whether battery states came meanwhile."""
        text = f'no battery charge for {now_s - self._battery_at_s:.0f} s'
        heard = self._battery_heard_s
        if heard is not None and now_s - heard < now_s - self._battery_at_s - 1.0:
            text += ' (its battery states give it as unknown)'
        return text

    def _refuse(self, what: str, problem) -> bool:
        """Count, and warn about, a message whose values cannot be taken; return whether."""
        if problem is None:
            return False
        self._refused += 1
        # Each message type its own throttle: rclpy's is per call site, and a bad energy
        # estimate hid a bad result for 30 s (as the QoS warnings; a review).
        if self._refusals.due(what, time.monotonic()):
            article = 'an' if what[:1] in 'AEIOU' else 'a'
            self.get_logger().warn(f'{article} {what} with {problem} was ignored '
                                   f'({self._refused} so far)')
        return True

    def _other_model(self, msg: Classification) -> bool:
        """
        Count, and warn about, a result of a model the profile does not describe; say whether.

        Its latency and rate say nothing of this profile's T: a classifier restarted with
        another model ran the profile's T=64 at 40 to 85 ms a frame, and a second classifier
        on the topic mixed its latencies in, at OK (a review of several classifiers).
        """
        selector = self._selector
        if selector is None or describes(selector.profile.model_sha256, msg.model_sha256,
                                         msg.base_model_sha256):
            return False
        self._other_models += 1
        # What it heard of its own model goes quiet: the rate must not stay as it was (it
        # read 10 Hz beside an empty list of sources; a review).
        self._signals = self._signals.replace(rate_hz=self._sources.rate_hz(self._now_s()))
        source = msg.source or 'a classifier'
        self.get_logger().warn(
            f"results of another model than the profile's ignored ({source}: model "
            f"{msg.model_sha256[:16]}..., the profile's {selector.profile.model_sha256[:16]}"
            f"...; {self._other_models} so far): give this controller that model's profile, "
            'or each classifier a controller of its own (a namespace each)',
            throttle_duration_sec=30.0)
        return True

    def _on_classification(self, msg: Classification) -> None:
        if self._refuse('Classification', classification_problem(msg)) \
                or self._other_model(msg):
            return
        # Intervals between the classified inputs' stamps (capture time: the camera's rate,
        # a replayed bag's recorded one); the arrival here bunches results that waited in a
        # queue (a steady 30 Hz read as up to 1 760 Hz, a user review). Unstamped inputs: the
        # arrival on the node clock (simulated under use_sim_time; 0 before /clock). Per
        # classifier, the rates adding up (core.sources).
        now = msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9
        if now <= 0.0:
            now = self.get_clock().now().nanoseconds * 1e-9
        heard_s = self._now_s()
        self._sources.stamp(msg.source, now, heard_s)
        if msg.timestep_budget > 0 and msg.timesteps_used > 0 and self._take_steps(msg) \
                and not msg.latency_ms > 0.0:
            self._evaluate()
        if msg.latency_ms > 0.0 and msg.timestep_budget > 0:
            self._latencies.add(msg.timestep_budget, msg.latency_ms)
            rate = self._sources.rate_hz(heard_s)
            measured = self._latencies.measured()
            if measured is not None:
                self._signals = self._signals.replace(
                    measured_latency_ms=measured[1], measured_timesteps=measured[0],
                    rate_hz=rate, latency_points=self._latencies.points())
            else:
                self._signals = self._signals.replace(rate_hz=rate)
            self._evaluate()

    def _take_steps(self, msg: Classification) -> bool:
        """
        Take a result's steps used and early-exit flag; return whether the signals changed.

        A result at a T no larger than the early-exit floor of the profile's rule (8 steps for
        the shipped model) could not exit early, so it says nothing of early exit: counted,
        a controller at T=8 read early exit as off and priced T=350 whole again.
        """
        budget = msg.timestep_budget
        if budget > self._exit_floor:
            self._exits.append(bool(msg.early_exit))
        early_exit = any(self._exits)
        signals = self._signals
        if early_exit != signals.early_exit:
            # The steps counted before are of the other way (those of a T run without early
            # exit priced it whole after; a review).
            self._steps_used.clear()
            self.get_logger().info(
                'results stop early: the classifier runs with early exit, each T is priced at '
                'the steps its inputs use' if early_exit else
                f'no result of the last {len(self._exits)} (above T={self._exit_floor}) stopped '
                'early: each T is priced whole')
        self._steps_used.add(budget, min(msg.timesteps_used, budget))
        steps = self._steps_used.all_points() if early_exit else ()
        if (early_exit, steps) == (signals.early_exit, signals.steps_used):
            return False
        self._signals = signals.replace(early_exit=early_exit, steps_used=steps)
        return True

    def _on_energy(self, msg: EnergyEstimate) -> None:
        """
        Take the monitor's window: its power and the mean T it was measured at.

        The power is set against the profile's energies, so both must be priced alike
        (another preset's power, scaled by this profile's energies, moved T by orders of
        magnitude: a user review). A monitor under another preset has the profile's energies
        priced again from its operation counts under the monitor's preset, with a line in the
        log; a preset this package does not know leaves the profile as it is, and its power
        unused, with a warning.
        """
        if self._refuse('EnergyEstimate', energy_problem(msg)):
            return
        selector = self._selector
        if selector is not None and msg.energy_preset and \
                msg.energy_preset != selector.profile.energy_preset:
            before = selector.profile.energy_preset
            try:
                selector.price_under(msg.energy_preset)
            except ValueError:
                self.get_logger().warn(
                    f'the energy monitor prices with {msg.energy_preset}, a preset this '
                    f'package does not know; the profile prices with {before}: its power is '
                    'not used (set the same energy_preset)', throttle_duration_sec=30.0)
                return
            self._energy_windows.clear()  # (ratios to the energies of the other preset)
            self.get_logger().info(
                f'the energy monitor prices with {msg.energy_preset}: the energies of the '
                f'profile ({before}) are priced again under {msg.energy_preset} from its '
                f'operation counts, as `topspark sweep --preset {msg.energy_preset}` prices '
                'them; max_energy_j and max_power_w bound them')
        stamp_s = msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9
        if self._energy_stamp_s and stamp_s > self._energy_stamp_s:  # 0: an unstamped one
            self._energy_intervals.append(stamp_s - self._energy_stamp_s)
        self._energy_stamp_s = stamp_s
        # Before two stamps, the window's own length (a review: the monitor's count since it
        # started over the rate, minutes after a while, kept a stale figure that long).
        self._energy_window_s = statistics.median(self._energy_intervals) \
            if self._energy_intervals else max(float(msg.window_s), 0.0)
        # Energy weighted by the windows' inferences, not the count since the monitor started
        # (a review: one window of 1 inference after four of 20 moved the smoothed energy 41 %
        # of its step, not 2.5 %); power by their length, empty windows in (weighted by
        # inferences, a classifier at half the monitor's rate read twice its power; a review).
        inferences = msg.window_inferences if msg.mean_timesteps >= 1.0 else 0
        if inferences and not msg.average_power_w > 0.0:
            inferences = 0  # (no power measured over inferences: says nothing of them)
        if selector is None:  # (a window heard while the node tears down)
            return
        # A window is priced at the T its inferences ran under with early exit, kept with it
        # (power_run_at) for the strategy to price it alike (module docstring of strategy).
        run_at = self._early_exit_t() if inferences else self._power_run_at
        try:
            energy, power = self._energy_windows.add(
                inferences, float(msg.energy_per_inference_j) or None,
                float(msg.average_power_w), float(msg.mean_timesteps),
                lambda t, at=run_at: profiled_energy_j(selector.profile, t, at),
                window_s=float(msg.window_s))
        except ValueError as exc:  # (its ratio to the profile overflowed)
            self._refuse('EnergyEstimate', str(exc))
            return
        if inferences:
            self._power_run_at = run_at
        if power is None and energy is None:  # nothing ran in the last windows
            self._signals = self._signals.replace(measured_power_w=None, measured_energy_j=None,
                                                  power_timesteps=None, power_run_at=None)
            self._energy_at_s = None
        else:  # (an empty window is no pause in the smoothing: the windows before stay in)
            self._signals = self._signals.replace(
                measured_power_w=power, measured_energy_j=energy,
                power_timesteps=self._energy_windows.timesteps,
                power_run_at=self._power_run_at)
            self._energy_at_s = self._now_s()
        self._evaluate()

    def _now_s(self) -> float:
        """Return the clock the energy's age is counted on (:mod:`~topspark_ros.nodes.clocks`)."""
        return elapsed_s(self._period_clock)

    def _clock_stepped(self, jump) -> None:
        """
        Count what was heard before a leap of the simulated clock (or a step back) as heard after.

        A seek of 100 s in a replayed bag dropped the monitor's figures ("no energy estimate
        for 101 s", while it published), took the battery and the rate for silent, and gave
        the monitor's window an interval of 101 s (a review). A leap is told from the clock's
        ordinary steps as the energy monitor tells it (:class:`~.clocks.Leaps`).
        """
        step_s = jump.delta.nanoseconds * 1e-9
        if self._now_s() <= 0.0 or (step_s > 0.0 and not self._leaps.leapt(step_s)):
            return  # (a step back, a replayed bag looping, is always one: ages went negative)
        for name in ('_energy_at_s', '_battery_at_s', '_battery_heard_s'):
            if getattr(self, name) is not None:
                setattr(self, name, getattr(self, name) + step_s)
        self._sources.shift(step_s)
        if self._selector is not None:  # (a better battery level's wait)
            self._selector.shift(step_s)
        self._energy_stamp_s = None  # (no interval across the leap)

    def _early_exit_t(self) -> Optional[int]:
        """
        Return the T the classifier's inputs ran under with early exit, else None.

        Its energy windows' mean steps are then priced at that T's energy scaled by them, as
        the strategy prices each T (:func:`profiled_energy_j`); without early exit, read off
        the profile across T.
        """
        signals = self._signals
        if not signals.early_exit:
            return None
        if signals.measured_timesteps is not None:
            return signals.measured_timesteps
        current = self._selector.current if self._selector is not None else None
        return None if current is None else current.timesteps

    def _forget_energy(self) -> None:
        self._signals = self._signals.replace(measured_power_w=None, measured_energy_j=None,
                                              power_timesteps=None, power_run_at=None)
        self._power_run_at = None
        self._energy_windows.clear()
        self._energy_at_s = None

    def _check_energy_age(self) -> None:
        """
        Drop the monitor's figures once older than ``energy_timeout_s``, with a warning.

        They were kept for ever: with the monitor killed, the controller held T under a power
        cap on a figure of minutes before (a user review).
        """
        if self._energy_at_s is None:
            return
        age_s = self._now_s() - self._energy_at_s
        if age_s < 0.0:  # the clock went back (a replayed bag looped): counted from now
            self._energy_at_s = self._now_s()
            return
        # A monitor's windows may be longer than the timeout (publish_rate_hz down to 0.01):
        # three of them are waited for (a review: each window was dropped after 5 s).
        limit_s = max(self.get_parameter('energy_timeout_s').value, 3.0 * self._energy_window_s)
        if age_s > limit_s:
            self._forget_energy()
            self.get_logger().warn(
                f'no energy estimate for {age_s:.1f} s: the power and energy limits use the '
                "profile's energies at the measured rate until the monitor is heard again",
                throttle_duration_sec=30.0)
            self._evaluate()

    def _check_rate(self) -> None:
        """
        Drop the inference rate once no classifier has been heard lately (SOURCE_QUIET_S).

        The rate is taken from results, so it stood after they stopped: 10 Hz at OK with the
        camera stopped and no source left (a review), and power caps priced at it.
        """
        if self._signals.rate_hz is not None and self._sources.rate_hz(self._now_s()) is None:
            self._signals = self._signals.replace(rate_hz=None)
            self._evaluate()

    def _batch_parameter_requests(self) -> None:
        """
        Choose T once per ``~/set_parameters`` request, after all its parameters are set.

        rclpy's service sets a request's parameters one at a time, each with its callbacks:
        one request (``ros2 param load``) of mode, max_timesteps and max_accuracy_drop
        published T=250, which its max_timesteps forbade, then T=100 (a review).
        """
        for service in self.services:
            if service.srv_name.endswith(('/set_parameters', '/set_parameters_atomically')):
                service.callback = self._batched(service.callback)

    def _batched(self, answer):
        """Return ``answer`` (a parameter service's callback) evaluating once, at its end."""
        def batched(request, response):
            self._in_request = True
            try:
                return answer(request, response)
            finally:
                self._in_request = False
                if self._settings_changed:
                    self._settings_changed = False
                    self._evaluate()
        return batched

    def _on_parameters_set(self, parameters) -> None:
        if self._selector is None:
            return
        if any(p.name == 'battery_charging_full' for p in parameters) and self._battery_charging:
            self.get_logger().info(f'battery charging or full{self._battery_taken_as()}')
            self._take_battery()  # (T chosen below)
        constraints, mode, policy = _settings(values(self, PARAMS))
        self._selector.reconfigure(constraints=constraints, mode=mode, battery_policy=policy,
                                   switch_margin=self.get_parameter('switch_margin').value)
        if self._in_request:  # chosen once the request's last parameter is set
            self._settings_changed = True
        else:
            self._evaluate()

    # Output ----------------------------------------------------------------------------------
    def _evaluate(self, force_publish: bool = False) -> None:
        if self._selector is None:
            return
        previous = self._selector.current
        choice = self._selector.update(self._signals, now_s=self._now_s())
        if previous is not None and choice.battery_level != previous.battery_level:
            # (Said only where T changed: at T's smallest, low -> critical and an empty
            # battery went by without a line; a review of a long run.)
            text = (f'battery {previous.battery_level.value} -> {choice.battery_level.value} '
                    f'(charge {charge_percent(self._signals.battery_fraction)}): mode '
                    f'{choice.mode.value}, T={choice.timesteps}')
            if choice.battery_level == BatteryLevel.CRITICAL:
                self.get_logger().warn(text)
            else:
                self.get_logger().info(text)
        if force_publish or previous is None or choice.timesteps != previous.timesteps:
            if previous is not None and choice.timesteps != previous.timesteps:
                self.get_logger().info(f'T {previous.timesteps} -> {choice.timesteps}: '
                                       f'{choice.reason}')
            self._publish(choice)

    def _heartbeat(self) -> None:
        self._check_energy_age()
        self._check_battery_age()
        self._check_rate()
        if self._selector is not None and self._selector.current is not None:
            self._publish(self._selector.current)

    def _publish(self, choice) -> None:
        """
        Publish ``choice``, stamped when its T was chosen (TimestepCommand.msg).

        The heartbeat republishes the current choice with that stamp (stamped at each
        heartbeat, a consumer could not tell when T last changed; a user review).
        """
        if not self._active:
            return
        if self._chosen is None or self._chosen[0] != choice.timesteps \
                or not (self._chosen[1].sec or self._chosen[1].nanosec):
            # (a stamp 0: chosen before the first /clock under use_sim_time; restamped once
            # the clock runs, where it stayed 0 for whole runs: a review of sim time)
            self._chosen = (choice.timesteps, self.get_clock().now().to_msg())
        profile = self._selector.profile
        msg = choice_to_msg(choice, profile.preset, model_sha256=profile.model_sha256)
        msg.header.stamp = self._chosen[1]
        self._pub.publish(msg)
        self._publish_count += 1

    def _publish_diagnostics(self) -> None:
        """Publish the status now (the timer does every ``heartbeat_period_s``)."""
        self._diagnostics.publish_now()

    def _diagnostic_status(self) -> tuple:
        """
        Return ``(level, message, values)`` of the ``timestep_controller: timestep selection``.

        ERROR while the last configure failed (with its reason); WARN while not active, without
        a choice yet, with a violated constraint or when messages were ignored since the last
        status (values not finite, negative or huge; results of a model the profile does not
        describe); else OK with the reason of the choice. ``sources``: the classifiers heard.
        """
        selector = self._selector
        choice = selector.current if selector else None
        signals = self._signals
        now_s = self._now_s()
        heard = self._sources.names(now_s)
        stats = {'lifecycle_state': self._state_machine.current_state[1],
                 'battery_fraction': signals.battery_fraction,
                 'rate_hz': self._sources.rate_hz(now_s),
                 'measured_latency_ms': signals.measured_latency_ms,
                 'early_exit_seen': signals.early_exit,
                 # the energy monitor's figures: estimates under its preset (its own
                 # measured_* values are a meter's), not measurements (a review)
                 'monitor_power_w': signals.measured_power_w,
                 'monitor_energy_per_inference_j': signals.measured_energy_j,
                 'commands_published': self._publish_count, 'messages_refused': self._refused,
                 'sources': ', '.join(heard), 'other_model_results': self._other_models,
                 'battery_age_s': (None if self._battery_at_s is None
                                   else round(now_s - self._battery_at_s, 1)),
                 'battery_percent_driver': self._battery_percent,
                 'battery_charging': self._battery_charging,
                 'battery_published_fraction': self._battery_published,
                 'battery_ignored': self._battery_ignored,
                 'battery_qos_incompatible': self._battery_qos_incompatible,
                 'bond': self.bond_state}
        refused = self._recent.since('refused', self._refused)
        others = self._recent.since('other_models', self._other_models)
        ignored = self._recent.since('battery_ignored', self._battery_ignored)
        incompatible = self._recent.since('battery_qos', self._battery_qos_incompatible)
        if selector is not None:
            stats['machine'] = selector.profile.machine
            stats['energy_preset'] = selector.profile.energy_preset
            stats['profiled_energy_preset'] = self._profiled_preset
        if self._configure_error:
            return diagnostics.ERROR, f'configure failed: {self._configure_error}', stats
        if not self._active:
            return diagnostics.WARN, stats['lifecycle_state'], stats
        if choice is None:
            return diagnostics.WARN, 'no choice yet', stats
        stats.update(timesteps=choice.timesteps, mode=choice.mode.value,
                     feasible=choice.feasible, violated=','.join(choice.violated),
                     expected_steps=round(choice.expected_steps, 1))
        problems = []
        if refused:
            problems.append(f'{refused} messages with values that cannot be taken ignored '
                            '(non-finite, negative or huge)')
        if others:
            problems.append(f"{others} results of another model than the profile's ignored")
        if ignored:  # (logged once in 30 s only; /diagnostics said nothing: a review)
            problems.append(f'{ignored} battery states ignored, last: '
                            f'{self._battery_ignored_reason} (sensor_msgs/BatteryState '
                            'gives 0..1)')
        if incompatible:
            problems.append(f'a battery publisher cannot match: incompatible '
                            f'{self._battery_qos_reason} (set battery_reliability to '
                            "'best_effort')")
        if self._battery_at_s is not None and signals.battery_fraction is None:
            problems.append(f'{self._battery_silence(now_s)}: charge unknown, battery level '
                            'kept')
        if choice.battery_level == BatteryLevel.CRITICAL:  # (OK all along, at 0 %; a review)
            problems.append(f'battery critical: charge {charge_percent(signals.battery_fraction)}')
        if not heard:  # (the monitor WARNs likewise: a camera stopped, a classifier gone)
            problems.append(f'no classifications heard for {SOURCE_QUIET_S:g} s: no rate or '
                            'latency measured')
        if problems:
            return diagnostics.WARN, '; '.join([choice.reason] + problems), stats
        return (diagnostics.OK if choice.feasible else diagnostics.WARN), choice.reason, stats

    def _hardware_id(self) -> str:
        """Return the energy preset the profile prices T with ('none' before configure)."""
        selector = self._selector
        return selector.profile.energy_preset if selector else diagnostics.NO_HARDWARE

    def _teardown(self) -> None:
        for sub in getattr(self, '_subs', []):
            self.destroy_subscription(sub)
        self._subs = []
        if getattr(self, '_timer', None) is not None:
            self.destroy_timer(self._timer)
            self._timer = None
        if getattr(self, '_pub', None) is not None:
            self.destroy_lifecycle_publisher(self._pub)
            self._pub = None  # /diagnostics lives as long as the node
        self._selector = None


def main(args=None) -> int:
    """Run the controller alone (``ros2 run topspark_ros timestep_controller``)."""
    from topspark_ros.nodes.runner import run_nodes
    return run_nodes([TimestepControllerNode], args=args)


if __name__ == '__main__':
    import sys
    sys.exit(main())
