"""
Play a rosbag2 bag's camera topics over DDS, with ``/clock`` (``topspark play BAG``).

For hosts without ``ros2 bag`` (these machines, CI): the bag (sqlite3 or MCAP) is read with the
pure-Python ``rosbags`` library and its ``sensor_msgs/Image``, ``sensor_msgs/CompressedImage``
and ``event_camera_msgs/EventPacket`` topics (or the ``topics`` named, of any type installed
here) are published unchanged: the recorded CDR bytes go out as serialised messages of the
real rclpy types, headers and all. The message types the bag declares are read from the bag's
own definitions (a ``rosbags`` typestore); a topic whose recorded fields differ from the
installed type's is refused rather than published garbled.

Timing: message ``i``, recorded at bag time ``t_i``, goes out at wall time ``start + (t_i -
t_0) / rate`` (``t_0``: the first played message; ``start_offset_s`` skips the bag's first
seconds). ``/clock`` (``rosgraph_msgs/Clock``)
carries the bag time ``t_0 + (now - start) rate`` at ``clock_hz`` and before each batch of
messages, so nodes started with ``use_sim_time:=true`` follow bag time. It is never ahead of
the data: when the player falls behind (a busy process), the clock stops at the first message
due and catches up with the messages, so no node sees bag time past a message it has not
been sent yet (and it never passes the last message); within a pass it never goes back.
With ``loop`` the bag plays again after one mean message interval (1 s after a lone message);
as with ``ros2 bag play --loop`` the bag time (and ``/clock``) starts again from ``t_0``.
Publisher QoS is reliable (it matches best-effort and reliable subscribers alike) unless
``reliability`` says best_effort; a topic whose publishers were all recorded as latched
(transient local, as ``label_info`` and ``timestep``) is published latched, as ``ros2 bag
play`` does, so a subscriber that comes after its message still gets it.

    ros2 run topspark_ros bag_player --ros-args -p bag:=field_run -p rate:=2.0
"""

import argparse
import sys
import time
from typing import Optional, Sequence

from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy

from topspark_ros.nodes.construction import destroyed_if_construction_fails
from topspark_ros.nodes.parameters import declare, Param, values
from topspark_ros.nodes.recorder import message_class, TYPES
from topspark_ros.nodes.runner import MATCH_SETTLE_S, play, SubscriberWait

PARAMS = (
    Param('bag', '', 'Bag directory to play (rosbag2, sqlite3 or mcap).', live=False),
    Param('topics', Parameter.Type.STRING_ARRAY, 'Topics to play (unset: every Image, '
          'CompressedImage and EventPacket topic of the bag).', live=False),
    Param('rate', 1.0, 'Playing speed as a multiple of the recorded rate.', low=0.001,
          high=1000.0, live=False),
    Param('loop', False, 'Play the bag again and again.', live=False),
    Param('start_offset_s', 0.0, "Start this many seconds into the bag (ros2 bag play's "
          '--start-offset); every pass of a loop starts there.', low=0.0, live=False),
    Param('clock', True, 'Publish /clock (rosgraph_msgs/Clock) with the bag time, for nodes '
          'with use_sim_time.', live=False),
    Param('clock_hz', 100.0, 'Rate of /clock messages between data messages (Hz).', low=1.0,
          high=1000.0, live=False),
    Param('wait_for_subscribers', 0, 'Start playing only once this many subscriptions are '
          f'matched on the played topics together, and {MATCH_SETTLE_S:g} s more for their '
          'side of the match (0: once one or more, and every one the graph knows, are '
          f'matched, from 0.5 s on, and {MATCH_SETTLE_S:g} s more; at the latest after 2 s).',
          low=0, live=False),
    Param('reliability', 'reliable', 'QoS reliability of the publishers.',
          choices=('best_effort', 'reliable'), live=False),
    Param('depth', 10, 'QoS queue depth of the publishers.', low=1, high=10000, live=False),
)
MAX_BURST = 100
"""Messages one timer tick may publish; after a stall the rest follow on the next ticks."""


@destroyed_if_construction_fails
class BagPlayerNode(Node):
    """Publishes a bag's topics in (scaled) recorded time, with /clock."""

    def __init__(self, **kwargs) -> None:
        """Open the bag, check its types against the installed ones, make the publishers."""
        super().__init__('bag_player', **kwargs)
        declare(self, PARAMS)
        p = values(self, [q for q in PARAMS if q.name != 'topics'])
        p['topics'] = self.get_parameter_or('topics').value  # None when not set
        if not p['bag']:
            raise ValueError('parameter bag is empty: name the bag directory to play')
        from pathlib import Path

        from rosbags.highlevel import AnyReader, AnyReaderError
        from rosbags.typesys import get_typestore, Stores
        from topspark_ros.core.data.bag import check_sqlite_bag
        bag = Path(p['bag']).expanduser()  # ('~/run' read a folder named '~'; a review)
        check_sqlite_bag(bag)
        try:
            self._reader = AnyReader([bag], default_typestore=get_typestore(Stores.ROS2_JAZZY))
            self._reader.open()
        except (AnyReaderError, OSError) as exc:
            from topspark_ros.core.data.recover import recovery_hint
            raise ValueError(f"cannot read the bag {p['bag']}: {exc}"
                             + recovery_hint(bag)) from None
        try:
            self._connections = self._one_type_a_topic(self._choose(p['bag'], p['topics']))
            qos = QoSProfile(depth=p['depth'], reliability=(
                ReliabilityPolicy.BEST_EFFORT if p['reliability'] == 'best_effort'
                else ReliabilityPolicy.RELIABLE))
            self._pubs = {}
            for connection in self._connections:
                if connection.topic not in self._pubs:
                    msg_type = self._installed_type(connection.msgtype)
                    self._pubs[connection.topic] = self.create_publisher(
                        msg_type, connection.topic, _latched(qos) if _recorded_latched(
                            connection) else qos)
        except BaseException:
            self._reader.close()
            raise
        self._clock_pub = None
        if p['clock']:
            from rosgraph_msgs.msg import Clock
            self._clock_pub = self.create_publisher(Clock, '/clock', QoSProfile(depth=1))
        self._rate, self._loop = p['rate'], p['loop']
        self._start_at = None  # bag time the passes start at (None: the bag's start)
        if p['start_offset_s'] > 0.0:
            self._start_at = self._reader.start_time + round(p['start_offset_s'] * 1e9)
            if self._start_at >= self._reader.end_time:
                message = (f"start_offset_s {p['start_offset_s']:g} s is past the end of "
                           f"{p['bag']} ({self._reader.duration / 1e9:.3f} s long)")
                self._reader.close()
                raise ValueError(message)
        self._clock_period_ns = round(1e9 / p['clock_hz'])
        self._waiting = SubscriberWait(p['wait_for_subscribers'])
        self._messages = None  # iterator over (connection, t_ns, raw) of the current pass
        self._pending = None  # the next message, taken from the iterator
        self._start_ns = None  # wall time (monotonic) of t0 in this pass
        self._t0 = self._t_last = None
        self._last_clock_ns = 0  # wall time (monotonic) of the last /clock
        self._last_clock_bag_ns = None  # and the bag time it carried
        self._last_clock_pass = 0  # in which pass
        self._count = 0  # messages of the first pass
        self.published = 0
        self.passes = 0
        self.finished = False
        self._timer = self.create_timer(0.005, self._tick)
        self.get_logger().info(
            f"playing {p['bag']}: {', '.join(sorted(self._pubs))} at {self._rate}x"
            f"{' in a loop' if self._loop else ''}{', with /clock' if p['clock'] else ''}")
        if not sum(int(c.msgcount) for c in self._connections):  # 'published 0' said nothing
            self.get_logger().warn(f"{p['bag']} holds no message on "
                                   f"{', '.join(sorted(self._pubs))}: nothing to play")

    def _choose(self, bag: str, topics: Optional[list]) -> list:
        """Return the bag's connections to play: of ``topics``, or of the camera types."""
        available = sorted({c.topic for c in self._reader.connections})
        if topics:  # 'camera/image_raw' is '/camera/image_raw', in the bag either way
            from topspark_ros.core.data.bag import same_topic
            missing = [t for t in topics if not any(same_topic(t, a) for a in available)]
            if missing:
                raise ValueError(f'{bag} has no topic {", ".join(missing)} (it has: '
                                 f'{", ".join(available) or "none"})')
            return [c for c in self._reader.connections
                    if any(same_topic(c.topic, t) for t in topics)]
        chosen = [c for c in self._reader.connections if c.msgtype in TYPES.values()]
        if not chosen:
            raise ValueError(f'{bag} has no {", ".join(TYPES.values())} topic (it has: '
                             f'{", ".join(available) or "none"}); name others with topics')
        return chosen

    def _one_type_a_topic(self, connections: list) -> list:
        """
        Return ``connections`` with one message type per topic: the first type of each.

        A topic recorded with two types (a driver restarted with another encoding) had its
        second type's bytes published as the first type (a user review); they are left out
        now, with a warning. The data commands choose with ``--topic NAME:TYPE``.
        """
        first = {}
        for connection in connections:
            first.setdefault(connection.topic, connection.msgtype)
        for topic, msgtype in first.items():
            others = sorted({c.msgtype for c in connections if c.topic == topic} - {msgtype})
            if others:
                self.get_logger().warn(f'{topic} was recorded as {msgtype} and as '
                                       f'{", ".join(others)}: only {msgtype} is played (a '
                                       'topic carries one type)')
        return [c for c in connections if c.msgtype == first[c.topic]]

    def _installed_type(self, msgtype: str):
        """
        Return the rclpy class of ``msgtype``; refuse one whose fields differ from the bag's.

        A bag that carries no definition of the type (``ros2 bag record`` before Iron, e.g.
        a metavision_driver recording) is played with the installed one: its messages go out
        as the bytes recorded (a KeyError traceback before: a user review).
        """
        msg_type = message_class(msgtype)
        known = self._reader.typestore.fielddefs.get(msgtype)
        if known is None:
            self.get_logger().info(f'{msgtype}: the bag holds no definition of it; played '
                                   'with the installed one')
            return msg_type
        _, fields = known
        recorded = [name for name, _ in fields]
        installed = list(msg_type.get_fields_and_field_types())
        if recorded != installed:  # (the two whole lists were hard to read; a review)
            added = [name for name in installed if name not in recorded]
            gone = [name for name in recorded if name not in installed]
            change = '; '.join(part for part in (
                f"the installed type adds {', '.join(added)}" if added else '',
                f"the bag's has {', '.join(gone)}, which the installed type lacks" if gone
                else '') if part) or 'the fields are in another order'
            raise ValueError(f'{msgtype}: recorded with another definition than the installed '
                             f'one ({change}); its messages cannot be published as they are '
                             '(the data commands read such bags with their own definitions)')
        return msg_type

    def _next_message(self):
        """Return the next message of the pass, starting a new pass when looping; or None."""
        for _ in range(2):
            if self._messages is None:
                self._messages = self._reader.messages(connections=self._connections,
                                                       start=self._start_at)
            item = next(self._messages, None)
            if item is not None:
                return item
            self._messages = None
            self.passes += 1
            if not self._loop or self._t0 is None:
                return None
            # The next pass starts one mean interval (1 s for a lone message) after the last
            # message of this one.
            mean_ns = (self._t_last - self._t0) / (self._count - 1) if self._count > 1 else 1e9
            self._start_ns += round((self._t_last - self._t0 + mean_ns) / self._rate)
        return None

    def _tick(self) -> None:
        """Publish /clock and every message that is due."""
        if self.finished:
            return
        now = time.monotonic_ns()
        if self._start_ns is None:
            matched = sum(pub.get_subscription_count() for pub in self._pubs.values())
            if not self._waiting.ready(matched, lambda: sum(
                    self.count_subscribers(topic) for topic in self._pubs)):
                return
            self._pending = self._next_message()
            if self._pending is None:
                self._finish()
                return
            self._t0 = self._t_last = self._pending[1]
            self._start_ns = now
        bag_now = self._bag_time(now)
        due = self._pending is not None and self._pending[1] <= bag_now
        if self._clock_pub is not None and (
                due or now - self._last_clock_ns >= self._clock_period_ns):
            # Never ahead of the data: after a late tick the clock stops at the first message
            # due, not where the wall clock says bag time is, and catches up with the messages.
            upto = bag_now if self._pending is None else min(bag_now, self._pending[1])
            self._publish_clock(upto, now)
        for _ in range(MAX_BURST):
            if self._pending is None or self._pending[1] > bag_now:
                break
            connection, t_ns, raw = self._pending
            self._pubs[connection.topic].publish(bytes(raw))
            self.published += 1
            if self.passes == 0:
                self._t_last, self._count = t_ns, self._count + 1
            self._pending = self._next_message()
            bag_now = self._bag_time(now)  # a new pass (loop) starts later
        if self._pending is None:
            self._finish()

    def _bag_time(self, now_ns: int) -> int:
        """Return the bag time (ns) at monotonic time ``now_ns`` (< ``t0`` between passes)."""
        return self._t0 + round((now_ns - self._start_ns) * self._rate)

    def _publish_clock(self, bag_ns: int, now_ns: int) -> None:
        """
        Publish ``/clock`` at ``bag_ns``: ``t0`` while waiting for a new pass, and never back.

        Within a pass the clock does not go back (a split bag's files may overlap in time, and
        the reader plays them one after the other); a new pass starts again from ``t0``.
        """
        from rosgraph_msgs.msg import Clock
        bag_ns = max(int(bag_ns), self._t0)
        if self._last_clock_pass == self.passes and self._last_clock_bag_ns is not None:
            bag_ns = max(bag_ns, self._last_clock_bag_ns)
        msg = Clock()
        msg.clock.sec, msg.clock.nanosec = divmod(bag_ns, 1_000_000_000)
        self._clock_pub.publish(msg)
        self._last_clock_ns, self._last_clock_bag_ns = now_ns, bag_ns
        self._last_clock_pass = self.passes

    def _finish(self) -> None:
        self.finished = True
        self._timer.cancel()

    def destroy_node(self) -> None:
        """Close the bag and destroy the node (again: nothing happens)."""
        if self._reader.stack:  # open
            self._reader.close()
        super().destroy_node()


def run(args: Optional[Sequence[str]] = None, *, overrides: Optional[dict] = None,
        linger_s: float = 0.5) -> int:
    """Play until done (or forever with ``loop``): :func:`~.runner.play`."""
    return play(BagPlayerNode, 'bag_player', 'messages', args, overrides=overrides,
                linger_s=linger_s)


def _recorded_latched(connection) -> bool:
    """Return whether every publisher a bag recorded for ``connection`` was transient local."""
    from rosbags.interfaces import QosDurability
    offered = getattr(getattr(connection, 'ext', None), 'offered_qos_profiles', None) or []
    return bool(offered) and all(getattr(q, 'durability', None) ==
                                 QosDurability.TRANSIENT_LOCAL for q in offered)


def _latched(qos: QoSProfile) -> QoSProfile:
    """Return ``qos`` made transient local (and reliable: a late subscriber's copy arrives)."""
    return QoSProfile(depth=qos.depth, reliability=ReliabilityPolicy.RELIABLE,
                      durability=DurabilityPolicy.TRANSIENT_LOCAL)


def main(args: Optional[Sequence[str]] = None) -> int:
    """Run the player alone (``ros2 run topspark_ros bag_player --ros-args -p bag:=...``)."""
    return run(args)


def cli(argv: Optional[Sequence[str]] = None) -> int:
    """
    ``topspark play BAG [options] [--ros-args ...]``: the player with CLI options.

    Each option sets the parameter of the same name; ROS arguments (remaps) pass through.
    """
    from topspark_ros.cli.args import non_negative_float, non_negative_int

    parser = argparse.ArgumentParser(
        prog='topspark play',
        description="Publish a rosbag2 bag's Image, CompressedImage and EventPacket topics "
                    'over DDS at their recorded rate, with /clock (for use_sim_time).')
    parser.add_argument('bag', help='bag directory (sqlite3 or mcap)')
    spec = {param.name: param for param in PARAMS}
    parser.add_argument('--rate', type=spec['rate'].argument(), default=1.0,
                        help='speed as a multiple of the recorded rate (default: 1.0)')
    parser.add_argument('--loop', action='store_true', help='play again and again')
    parser.add_argument('--start-offset', type=non_negative_float, default=0.0,
                        metavar='SECONDS', help='start this many seconds into the bag')
    parser.add_argument('--topics', nargs='+', metavar='TOPIC',
                        help='topics to play (default: every image, compressed-image and '
                        'event topic)')
    parser.add_argument('--no-clock', action='store_true', help='do not publish /clock')
    parser.add_argument('--clock-hz', type=spec['clock_hz'].argument(), default=100.0,
                        help='/clock messages per second (default: %(default)s)')
    parser.add_argument('--best-effort', action='store_true',
                        help='best-effort publishers (default: reliable)')
    parser.add_argument('--wait-for-subscribers', type=non_negative_int, default=0,
                        help='start once this many subscriptions are matched (default: 0: '
                        'once those that exist already are, after 0.5 s, at most 2 s)')
    own, ros_args = parser.parse_known_args(argv)
    if ros_args and ros_args[0] != '--ros-args':
        parser.error(f'unrecognized arguments: {" ".join(ros_args)}')
    overrides = {'bag': own.bag, 'rate': own.rate, 'loop': own.loop,
                 'start_offset_s': own.start_offset,
                 'clock': not own.no_clock, 'clock_hz': own.clock_hz,
                 'wait_for_subscribers': own.wait_for_subscribers,
                 'reliability': 'best_effort' if own.best_effort else 'reliable'}
    if own.topics:
        overrides['topics'] = own.topics
    return run(['topspark', *ros_args], overrides=overrides)


if __name__ == '__main__':
    sys.exit(main())
