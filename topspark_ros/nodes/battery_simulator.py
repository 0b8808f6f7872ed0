"""
A simulated battery for the demo: drains by the energy the pipeline reports (plus a base load).

Publishes ``battery`` (sensor_msgs/BatteryState) at ``rate_hz``. The charge falls by
``(base_load_w + average_power_w) * dt`` every period, where ``average_power_w`` is the latest
EnergyEstimate on ``energy``, for :data:`STALE_WINDOWS` of its windows at most: with no
estimate since, the monitor is gone and only ``base_load_w`` drains (the last power drained
on for ever, and a dead monitor emptied the demo's battery; a review). The capacity is a
parameter: the demo uses a tiny battery so the drain is visible in a minute; nothing here
claims a real robot's battery life.
"""

import math

from rclpy.node import Node
from sensor_msgs.msg import BatteryState

from topspark_ros.conversions.results import energy_problem
from topspark_ros.msg import EnergyEstimate
from topspark_ros.nodes.clocks import elapsed_s, period_clock
from topspark_ros.nodes.construction import destroyed_if_construction_fails
from topspark_ros.nodes.parameters import declare, Param, values

PARAMS = (
    Param('capacity_j', 3600.0, 'Energy of a full battery (J).', low=1e-9, live=False),
    Param('initial_fraction', 1.0, 'State of charge at start.', low=0.0, high=1.0, live=False),
    Param('base_load_w', 0.0, 'Constant load besides the SNN (W).', low=0.0),
    Param('energy_scale', 1.0, 'Multiplier on the reported SNN power (to emulate a larger '
          'model or a slower platform).', low=0.0),
    Param('rate_hz', 5.0, 'BatteryState messages per second.', low=0.1, high=1000.0,
          live=False),
    Param('voltage_v', 12.0, 'Voltage reported in BatteryState.', low=0.0, live=False),
)

STALE_WINDOWS = 3.0
"""An estimate's power drains for this many of its windows (1 s for one without a length)."""


@destroyed_if_construction_fails
class BatterySimulatorNode(Node):
    """Integrates the reported power into a falling state of charge."""

    def __init__(self, **kwargs) -> None:
        """Start full (or at ``initial_fraction``) and publish periodically."""
        super().__init__('battery_simulator', **kwargs)
        declare(self, PARAMS)
        p = values(self, PARAMS)
        self._energy_j = p['capacity_j'] * p['initial_fraction']
        self._power_w = 0.0
        self._power_until_s = 0.0  # the power drains until then (the period clock's time)
        self._pub = self.create_publisher(BatteryState, 'battery', 10)
        self.create_subscription(EnergyEstimate, 'energy', self._on_energy, 10)
        self._period_s = 1.0 / p['rate_hz']
        self._period_clock = period_clock(self)
        self.create_timer(self._period_s, self._tick, clock=self._period_clock)

    @property
    def fraction(self) -> float:
        """State of charge in [0, 1]."""
        return max(0.0, self._energy_j / self.get_parameter('capacity_j').value)

    def _on_energy(self, msg: EnergyEstimate) -> None:
        problem = energy_problem(msg)
        if problem is not None:  # (a review: -1 mW charged it past full, NaN emptied it)
            self.get_logger().warn(f'an EnergyEstimate with {problem} was ignored',
                                   throttle_duration_sec=30.0)
            return
        self._power_w = float(msg.average_power_w)
        window_s = float(msg.window_s) if 0.0 < msg.window_s < math.inf else 1.0
        self._power_until_s = elapsed_s(self._period_clock) + STALE_WINDOWS * window_s

    def _tick(self) -> None:
        p = values(self, PARAMS)
        if self._power_w and elapsed_s(self._period_clock) > self._power_until_s:
            self.get_logger().warn(
                f'no EnergyEstimate for more than {STALE_WINDOWS:g} of its windows: the '
                'energy monitor is gone; draining base_load_w alone (not the last '
                f'{self._power_w:.3g} W)')
            self._power_w = 0.0
        drain_w = p['base_load_w'] + p['energy_scale'] * self._power_w
        self._energy_j = max(0.0, self._energy_j - drain_w * self._period_s)
        msg = BatteryState()
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.voltage = float(p['voltage_v'])
        msg.percentage = float(self.fraction)
        msg.power_supply_status = BatteryState.POWER_SUPPLY_STATUS_DISCHARGING
        msg.present = True
        # What it does not simulate is NaN, as sensor_msgs/BatteryState asks of an unmeasured
        # value (0 read as an empty battery, no current; a review).
        msg.current = msg.charge = msg.capacity = msg.design_capacity = float('nan')
        msg.temperature = float('nan')
        self._pub.publish(msg)


def main(args=None) -> int:
    """Run the simulated battery alone (``ros2 run topspark_ros battery_simulator``)."""
    from topspark_ros.nodes.runner import run_nodes
    return run_nodes([BatterySimulatorNode], args=args)


if __name__ == '__main__':
    import sys
    sys.exit(main())
