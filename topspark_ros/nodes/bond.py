"""
The bond nav2's ``lifecycle_manager`` keeps with each node it activates.

nav2's manager activates the nodes of its ``node_names`` one by one and, after each, waits
half its ``bond_timeout`` (4 s: 2 s) for a bond: ``bond/msg/Status`` messages on the topic
``bond`` (in its namespace) whose ``id`` is the node's name. Without one it aborts the
bring-up ("Server X was unable to be reached ... by bond"). Once up, it watches every bond
(its heartbeat timeout: ``bond_timeout``): a node whose heartbeats stop (its process died)
breaks its bond, and the manager takes the other nodes down, or waits for it to come back
(``attempt_respawn_reconnection``).

The lifecycle nodes of this package keep that bond as nav2's own servers do (nav2_util's
``LifecycleNode``): made on every activate (a first status at once), a status every
``bond_heartbeat_period`` (0.1 s; 0: no bond), never timing out on the manager's silence
(nav2's servers set ``bond_disable_heartbeat_timeout``), broken on deactivate, shutdown, error
and when the node is destroyed: a status with ``active`` false, repeated every 0.05 s for 2
s. A bond the manager does not join within 10 s is given up (nothing published after that).
The node listens on ``bond`` only until the bond is formed (:class:`Bond`). Without the
``bond`` messages installed (``ros-<distro>-bond``, which nav2 depends on) there is no bond.

The protocol is bondcpp's (ros/bond_core, branch ``ros2``; written here from its state machine
``BondSM.sm``): :class:`BondMachine` is that machine without ROS, :class:`Bond` its topics and
timers on a node.
"""

import threading
import time
from typing import Callable, Optional
import uuid

from rclpy.duration import Duration
from rclpy.qos import QoSProfile

from .clocks import steady_clock
from .parameters import Param

TOPIC = 'bond'
"""The topic nav2's manager and servers bond on (relative: in the node's namespace)."""

PARAM = Param('bond_heartbeat_period', 0.1, "Period of the bond's status to nav2's "
              'lifecycle_manager (s; 0: no bond; at most 1: the manager gives up 2 s after '
              'activating a node without its status), read at activate: the bond is made on '
              'activate and broken on deactivate, as nav2 servers do.', low=0.0, high=1.0)
"""The parameter (nav2's name and default) of each lifecycle node of this package."""

CONNECT_TIMEOUT_S = 10.0  # bond/msg/Constants' defaults, as bondcpp uses them
DISCONNECT_TIMEOUT_S = 2.0
HEARTBEAT_TIMEOUT_S = 4.0  # announced only: the servers' side never times out
DEAD_PUBLISH_PERIOD_S = 0.05
CLOSE_WAIT_S = 0.1  # what bondcpp's destructor waits for the bond to break

WAITING, FORMED, DYING, DEAD = 'waiting', 'formed', 'dying', 'dead'
"""Bond states: waiting for the manager, formed, broken by us and awaiting its answer, over."""


class BondMachine:
    """
    bondcpp's bond state machine, for the side that never times out on its sister's silence.

    Each method takes the time (s, monotonic) and returns the ``active`` value of a status to
    publish now, or None. ``events`` collects ``'formed'``, ``'sister_broke'`` (the manager
    broke the bond) and ``'gave_up'`` (no manager in ``connect_timeout_s``) as they happen.
    """

    def __init__(self, bond_id: str, instance_id: str, now_s: float,
                 connect_timeout_s: float = CONNECT_TIMEOUT_S,
                 disconnect_timeout_s: float = DISCONNECT_TIMEOUT_S) -> None:
        """Start waiting for the sister at ``now_s``."""
        self.bond_id = bond_id
        self.instance_id = instance_id
        self.state = WAITING
        self.sister: Optional[str] = None  # the first other instance heard
        self.events: list = []
        self._since = now_s
        self._connect_timeout_s = connect_timeout_s
        self._disconnect_timeout_s = disconnect_timeout_s

    def heard(self, bond_id: str, instance_id: str, active: bool, now_s: float
              ) -> Optional[bool]:
        """Take a status heard on the topic (ours and other bonds' are ignored)."""
        if bond_id != self.bond_id or instance_id == self.instance_id:
            return None
        if self.sister is None:
            self.sister = instance_id
        if active:
            if self.state == WAITING:
                self.state = FORMED
                self.events.append('formed')
            return None
        if self.state in (WAITING, FORMED):  # the sister died first: answer at once
            self.state = DEAD
            self.events.append('sister_broke')
            return False
        self.state = DEAD  # (dying: the answer we waited for)
        return None

    def tick(self, now_s: float) -> Optional[bool]:
        """Return the periodic status (None once over); the timeouts are checked here."""
        if self.state == WAITING and now_s - self._since >= self._connect_timeout_s:
            self.state = DEAD
            self.events.append('gave_up')
        elif self.state == DYING and now_s - self._since >= self._disconnect_timeout_s:
            self.state = DEAD
        if self.state in (WAITING, FORMED):
            return True
        return False if self.state == DYING else None

    def die(self, now_s: float) -> Optional[bool]:
        """Break the bond (this side leaves): a formed one awaits the sister's answer."""
        if self.state == DEAD:
            return None
        self.state = DYING if self.state == FORMED else DEAD
        self._since = now_s
        return False


def status_type():
    """Return ``bond.msg.Status``, or None where the bond messages are not installed."""
    try:
        from bond.msg import Status
    except ImportError:
        return None
    return Status


class Bond:
    """
    One bond of ``node`` to nav2's lifecycle manager (module doc), from construction on.

    :meth:`break_` leaves it; :meth:`close` (also after :meth:`break_`) destroys its topics.

    The topic ``bond`` carries every bond of the manager (about 10 statuses a second of each
    node it manages): each is a Python callback here, 12 to 14 % of a core in a stack of 12
    nav2 servers (a review). So the bond listens only while it waits for the manager; formed,
    it publishes its heartbeat and no longer listens (the servers' side never times out on
    the manager's silence, so what it would hear changes nothing but the answer to a manager
    that breaks the bond first, which then waits its 2 s disconnect timeout instead). The
    subscription and the timer go once the bond is over.

    Thread-safe: the transitions that make and break it and the executor's callbacks may run in
    different threads. ``on_event(name)`` is called with each of :class:`BondMachine`'s events.
    """

    def __init__(self, node, period_s: float, status=None,
                 on_event: Callable[[str], None] = lambda name: None) -> None:
        """Publish (a first status at once), listen and start the heartbeat on ``node``."""
        self._node = node
        self._status = status or status_type()
        self._period_s = float(period_s)
        self._on_event = on_event
        self._lock = threading.Lock()
        self._machine = BondMachine(node.get_name(), str(uuid.uuid4()), time.monotonic())
        self._pub = node.create_publisher(self._status, TOPIC, QoSProfile(depth=5))
        self._sub = node.create_subscription(self._status, TOPIC, self._on_status,
                                             QoSProfile(depth=100))
        self._clock = steady_clock()  # bondcpp's timers are wall timers: sim time aside
        self._timer = node.create_timer(self._period_s, self._on_tick, clock=self._clock)
        self._closed = False
        self._left = False  # a status saying we leave went out (close waits for its acks)
        with self._lock:  # (the manager waits 2 s for a first status: not a period later)
            self._publish(True)

    @property
    def state(self) -> str:
        """Return the machine's state: waiting, formed, dying or dead."""
        return self._machine.state

    def break_(self) -> None:
        """Leave the bond: say so now, again every 0.05 s until 2 s have passed."""
        with self._lock:
            if self._closed:
                return
            active = self._machine.die(time.monotonic())
            self._publish(active)
            if self._machine.state == DYING:
                self._node.destroy_timer(self._timer)
                self._timer = self._node.create_timer(DEAD_PUBLISH_PERIOD_S, self._on_tick,
                                                      clock=self._clock)
        self._settle()

    def close(self) -> None:
        """
        Break the bond if it holds (said once) and destroy its topics and timer.

        Once this bond said it leaves (here, or in :meth:`break_` just before, as a shutdown
        transition does), waits up to 0.1 s for the manager to acknowledge it, as bondcpp's
        destructor waits: the manager then knows at once, not after its heartbeat timeout.
        Fast DDS drops a sample whose writer is destroyed before a busy reader's process has
        taken it, so without the wait a node stopped before its bond formed exited unheard:
        6 of 120 Ctrl-C on a loaded machine, none of 120 with it (measured side by side). The
        wait ends once every reader acknowledged; Fast DDS's acknowledgements come with its
        periodic heartbeat, so a listening manager usually costs the whole 0.1 s. A context
        already shut down says nothing (as rclcpp drops a publish then) and waits for nothing.
        """
        with self._lock:
            if self._closed:
                return
            if self._machine.die(time.monotonic()) is not None:
                self._publish(False)
            said = self._left
            self._closed = True
        if said:
            try:
                self._pub.wait_for_all_acked(Duration(seconds=CLOSE_WAIT_S))
            except Exception:  # noqa: B902 - a context shut down meanwhile: nothing to wait for
                pass
        node = self._node
        for entity, destroy in ((self._timer, node.destroy_timer),
                                (self._sub, node.destroy_subscription),
                                (self._pub, node.destroy_publisher)):
            if entity is not None:
                destroy(entity)
        self._timer = self._sub = None

    def _on_status(self, msg) -> None:
        with self._lock:
            if not self._closed:
                self._publish(self._machine.heard(msg.id, msg.instance_id, msg.active,
                                                  time.monotonic()))
        self._settle()

    def _on_tick(self) -> None:
        with self._lock:
            if not self._closed:
                self._publish(self._machine.tick(time.monotonic()))
        self._settle()

    def _settle(self) -> None:
        """Report the machine's events; stop listening once not waiting, ticking once over."""
        with self._lock:
            events, self._machine.events = self._machine.events, []
            state = self._machine.state
            sub = timer = None
            if not self._closed:
                if state != WAITING and self._sub is not None:
                    sub, self._sub = self._sub, None
                if state == DEAD and self._timer is not None:
                    timer, self._timer = self._timer, None
        if sub is not None:  # (destroyed once its callback in progress, if any, returns)
            self._node.destroy_subscription(sub)
        if timer is not None:
            self._node.destroy_timer(timer)
        for name in events:
            self._on_event(name)

    def _publish(self, active: Optional[bool]) -> bool:
        """Publish a status (None: none); return whether it went out."""
        if active is None or self._closed or not self._node.context.ok():
            return False
        msg = self._status()
        msg.header.stamp = self._clock.now().to_msg()  # (bondcpp stamps steady time)
        msg.id = self._machine.bond_id
        msg.instance_id = self._machine.instance_id
        msg.active = active
        msg.heartbeat_timeout = HEARTBEAT_TIMEOUT_S
        msg.heartbeat_period = self._period_s
        try:
            self._pub.publish(msg)
        except Exception:  # noqa: B902 - the context shut down in between (rclpy RCLError)
            return False
        self._left = self._left or not active
        return True
