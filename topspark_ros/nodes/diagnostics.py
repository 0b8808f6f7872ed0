"""
``/diagnostics`` for the nodes, following ``diagnostic_updater``'s conventions.

Each node owns one :class:`Diagnostics`, made in its constructor (so a node that never
configures, or failed to, still reports), which publishes one ``DiagnosticStatus`` per period:

- ``name`` is ``'<node name>: <task>'`` (``diagnostic_updater.Updater.publish``), e.g.
  ``'classifier: classification'``;
- ``hardware_id`` names the device the figures are about (the torch device ``'cpu'`` /
  ``'cuda:0'``, the energy preset, ...; ``'none'`` where there is none, as diagnostic_updater
  asks);
- the level says what happened *recently*: :class:`topspark_ros.core.counters.Recent` turns
  ever-growing counters into increments since the previous status, so a WARN for errors
  clears once errors stop.
"""

from typing import Callable, Optional

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from topspark_ros.nodes.clocks import period_clock, steady_clock

OK, WARN, ERROR = DiagnosticStatus.OK, DiagnosticStatus.WARN, DiagnosticStatus.ERROR
LEVELS = (OK, WARN, ERROR)
"""The levels by number (0, 1, 2: those of :mod:`topspark_ros.core.pipeline`)."""
NO_HARDWARE = 'none'  # diagnostic_updater: "for devices that do not have a HW_ID"
CLOCK_WAIT_S = 5.0
"""Steady seconds between the warnings of a node on ``use_sim_time`` that no ``/clock`` came."""


class Diagnostics:
    """
    The ``/diagnostics`` publisher (and timer) of one node.

    With ``update`` and ``period_parameter``, ``update()`` (returning ``(level, message,
    values)``) is published every ``period_parameter`` seconds of simulated time under
    ``use_sim_time``, else of the steady clock (:mod:`~topspark_ros.nodes.clocks`), a new
    value of the parameter applying at once (where the node lets it change: the nodes of this
    package read theirs at configure), and by :meth:`publish_now`; without them the node
    calls :meth:`publish` itself.
    ``hardware_id()`` returns the device named in each status.

    Under ``use_sim_time`` those timers wait for the first ``/clock``; until it comes, a
    status ``WARN`` "waiting for /clock" is published every :data:`CLOCK_WAIT_S` seconds of
    the steady clock, and logged at most once a minute (a bag played without ``--clock`` left
    every timed output of the pipeline silent, and nothing said why; a review of sim time).
    """

    def __init__(self, node, task: str, hardware_id: Callable[[], str],
                 update: Optional[Callable[[], tuple]] = None,
                 period_parameter: Optional[str] = None, callback_group=None) -> None:
        """Create the publisher (and the timer) on ``node``, in its constructor."""
        self._node, self._task = node, task
        self._update, self._hardware_id = update, hardware_id
        self.publisher = node.create_publisher(DiagnosticArray, '/diagnostics', 10)
        self._timer = None
        if update is not None and period_parameter is not None:
            self._timer = node.create_timer(node.get_parameter(period_parameter).value,
                                            self.publish_now, callback_group=callback_group,
                                            clock=period_clock(node))
            node.add_post_set_parameters_callback(lambda changes: [
                self._set_period(c.value) for c in changes if c.name == period_parameter])
        self._clock_watch, self._clock_waited_s = None, 0.0
        if node.get_parameter('use_sim_time').value:
            self._clock_watch = node.create_timer(
                CLOCK_WAIT_S, self._check_clock, callback_group=callback_group,
                clock=steady_clock())

    @property
    def name(self) -> str:
        """
        Return the status name, ``'<node>: <task>'``, the node by its fully qualified name.

        Without the leading ``/``: ``classifier: classification`` in the root namespace,
        ``camA/classifier: classification`` under ``/camA``. With the bare name, two pipelines
        in namespaces published statuses of one name, which aggregators merge into one
        entry flipping between them (diagnostic_updater's ``use_fqn``; a user review).
        """
        return f'{self._node.get_fully_qualified_name().lstrip("/")}: {self._task}'

    def _check_clock(self) -> None:
        """Warn while the node's simulated clock has not started; stop once it has."""
        if self._node.get_clock().now().nanoseconds > 0:
            self._clock_watch.cancel()
            return
        self._clock_waited_s += CLOCK_WAIT_S
        message = (f'waiting for /clock: use_sim_time is true and none came in '
                   f'{self._clock_waited_s:g} s (a bag played without --clock?); the '
                   "node's timed outputs start with it")
        self._node.get_logger().warn(message, throttle_duration_sec=60.0)
        self.publish(WARN, message)

    def _set_period(self, period_s: float) -> None:
        self._timer.timer_period_ns = int(period_s * 1e9)
        self._timer.reset()

    def publish_now(self) -> None:
        """Publish the status ``update()`` returns."""
        level, message, values = self._update()
        self.publish(level, message, values)

    def publish(self, level: bytes, message: str, values: Optional[dict] = None) -> None:
        """Publish one status with this node's name and hardware id."""
        self.publisher.publish(status_array(
            self._node, self.name, self._hardware_id(), level, message, values or {}))


def status_array(node, name: str, hardware_id: str, level: bytes, message: str,
                 values: dict) -> DiagnosticArray:
    """Return a one-status array stamped with ``node``'s clock."""
    status = DiagnosticStatus(
        level=level, name=name, message=message, hardware_id=hardware_id or NO_HARDWARE,
        values=[KeyValue(key=str(k), value=_text(v)) for k, v in values.items()])
    array = DiagnosticArray(status=[status])
    array.header.stamp = node.get_clock().now().to_msg()
    return array


def torch_device_id(device: str) -> str:
    """
    Return the torch device ``device`` names, with its index: ``'cuda'`` -> ``'cuda:0'``.

    An unparsable name is returned as given (the status still says what was asked for).
    """
    try:
        import torch
        parsed = torch.device(device)
    except (ImportError, RuntimeError, TypeError, ValueError):
        return device
    if parsed.type == 'cuda' and parsed.index is None:
        # (Only once CUDA is in use: current_device() starts CUDA, hundreds of MB of device
        # memory, from a status published before configure or after cleanup; a review.)
        index = torch.cuda.current_device() if torch.cuda.is_initialized() else 0
        return f'cuda:{index}'
    return str(parsed)


UNKNOWN = 'unknown'
"""The text of a value not known yet (no battery state, no result): it read ``None``."""


def _text(value) -> str:
    if value is None:
        return UNKNOWN
    if isinstance(value, float):
        return f'{value:.6g}'
    return str(value)
