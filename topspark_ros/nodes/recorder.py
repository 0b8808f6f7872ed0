"""
Record a camera topic into an image folder, or topics into a rosbag2 bag (``topspark record``).

The recorder subscribes one topic of ``sensor_msgs/Image``, ``sensor_msgs/CompressedImage`` or
``event_camera_msgs/EventPacket`` (``type: auto`` takes the type its publishers announce; into a
bag, also a topic of any other one message type, e.g. ``classification``, and several topics:
``topics``, each of its own type) and keeps the first frame of each camera topic and then
every ``every_n``-th (every message of the others: event packets, labels, results), until
``count`` are written in all (0: until stopped). Where they go
(:mod:`topspark_ros.core.data.recording`):

- ``out_dir`` + ``label``: one image file per message in ``out_dir/<label>/``, the layout
  :mod:`topspark_ros.core.data.folder` reads, named after the header stamp
  (``<sec>_<nanosec>.png``; the receive time for a message stamped 0). Images become PNG
  (mono 8/16 bit, colour as 8-bit RGB/RGBA); compressed images are stored as their JPEG or PNG
  bytes unchanged. A message that cannot be stored (an unsupported encoding) is skipped and
  counted. Event packets are not samples of an image folder: record them into a bag.
- ``bag``: the messages as received (serialised CDR, no decoding) in a new rosbag2 bag
  (``storage``: sqlite3 or mcap), each with its receive time, as ``ros2 bag record`` does.

Files are written atomically and nothing is overwritten; the bag is built in ``<bag>.partial``
and moved into place when closed. A write that fails (a full disk) ends the recording: a
sqlite3 bag keeps the messages it had committed, and one that cannot be closed stays in
``<bag>.partial``, as the last line says. Ctrl-C or SIGTERM ends the recording cleanly: the
sample in hand is finished, the bag closed; a second signal stops at once (still closing the
bag).
Subscription QoS is sensor data (best effort, depth 5) unless ``reliability`` is reliable.

    ros2 run topspark_ros recorder --ros-args -p out_dir:=objects -p label:=mug -p count:=300
"""

import argparse
import os
import signal
import sys
from typing import Optional, Sequence

from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy

from topspark_ros.nodes.clocks import steady_clock
from topspark_ros.nodes.construction import destroyed_if_construction_fails
from topspark_ros.nodes.parameters import declare, given_at_start, Param, values
from topspark_ros.nodes.qos import bag_qos

TYPES = {
    'image': 'sensor_msgs/msg/Image',
    'compressed': 'sensor_msgs/msg/CompressedImage',
    'events': 'event_camera_msgs/msg/EventPacket',
}
"""``type`` parameter values -> the message types they record."""
FRAME_TYPES = (TYPES['image'], TYPES['compressed'])
"""The camera frames ``every_n`` thins; every other topic is recorded whole (thinned, a label
topic left frames under the wrong class, 35 of 100, and event packets left windows with a
third of their events, without a word; a review)."""
TYPE_OPTIONS = {name: key for key, name in TYPES.items()}
"""Message types -> the ``type`` (``--type``) that records them."""

PARAMS = (
    Param('topic', 'image', 'Topic to record (topics unset).', live=False),
    Param('topics', Parameter.Type.STRING_ARRAY, 'Topics to record into one bag, each of '
          'the type its publishers announce (unset: topic alone).', live=False),
    Param('type', 'auto', "Message type of the topic ('auto': the type its publishers "
          'announce, waited for).', choices=('auto', *TYPES), live=False),
    Param('out_dir', '', "Image folder to write into, one subfolder per label ('' : record "
          'into bag).', live=False),
    Param('label', '', 'Class of the recorded samples: the subfolder of out_dir.', live=False),
    Param('bag', '', "Bag directory to create ('' : record into out_dir).", live=False),
    Param('storage', 'sqlite3', 'Storage format of the bag.', choices=('sqlite3', 'mcap'),
          live=False),
    Param('count', 0, 'Stop after writing this many samples, of all topics together (0: until '
          'stopped).', low=0,
          live=False),
    Param('every_n', 1, 'Keep the first frame of each camera topic (Image, CompressedImage) '
          'and then every n-th; the other topics are kept whole.', low=1,
          live=False),
    Param('reliability', 'best_effort', 'Subscription QoS reliability (best_effort: sensor '
          'data, matches every publisher; reliable: no loss, reliable publishers only).',
          choices=('best_effort', 'reliable'), live=False),
    Param('depth', 0, 'Subscription queue depth (0: 1000 for event packets, a second of '
          "a driver's 1 ms packets, else 5).", low=0, high=10000, live=False),
)

EVENTS_DEPTH = 1000
"""Queue depth of an event topic (``depth`` 0): with 5, 1 ms packets were lost unsaid under
load (74 and 157 of 5 436 in a review, none with 100 or 1 000), as in the classifier, whose
``events_depth`` is 1000."""
OTHER_DEPTH = 5
"""Queue depth of any other topic (``depth`` 0)."""


MAX_REASONS_SAID = 20
"""Distinct reasons to skip a message logged at once; more share the throttled line."""
WAIT_NOTICE_S = 3.0
"""Seconds without a message after which the recorder says what it is waiting for."""


def message_class(type_name: str):
    """Return the rclpy message class of ``pkg/msg/Name`` (ImportError saying what is missing)."""
    import importlib

    package, _, name = type_name.split('/')
    try:
        return getattr(importlib.import_module(f'{package}.msg'), name)
    except (ImportError, AttributeError) as exc:
        raise ImportError(f'message type {type_name} is not importable ({exc}): install '
                          f'the package {package} and source its workspace') from None


class _Channel:
    """One recorded topic: its subscription's QoS, type, bag connection and counts."""

    def __init__(self, topic: str, qos: QoSProfile) -> None:
        self.topic, self.qos = topic, qos
        self.offered = []  # the publishers' QoS, when discovered
        self.type_name: Optional[str] = None
        self.connection = None
        self.received = self.written = 0
        # Event packets: their seq numbers say what was lost before the recorder (on the way
        # or in its queue); counted, warned about, and in the last line (a review: 157 of
        # 5 436 packets lost, 'wrote 5279 samples (5279 received, 0 skipped)').
        self.packets_lost = self.sequence_gaps = self.sequence_restarts = 0
        self.last_seq = None
        self.first_seq = None  # of the first packet received (above 0: joined a stream)
        self.refused: Optional[str] = None  # why this topic is not recorded (of several)


def _summed(name: str, what: str) -> property:
    """Return a read-only property: the channels' ``name`` counts added up."""
    return property(lambda node: sum(getattr(c, name) for c in node.channels),
                    doc=f'Return the {what}, on every topic.')


@destroyed_if_construction_fails
class RecorderNode(Node):
    """Writes the messages of one topic into an image folder, or of one or more into a bag."""

    def __init__(self, **kwargs) -> None:
        """Check the destination, open it, and subscribe (or wait for the topics' types)."""
        super().__init__('recorder', **kwargs)
        declare(self, PARAMS)
        p = values(self, [q for q in PARAMS if q.name != 'topics'])
        topics = self.get_parameter_or('topics').value  # None when not set
        from topspark_ros.core.data.recording import BagWriter, FolderWriter
        if bool(p['out_dir']) == bool(p['bag']):
            raise ValueError('give exactly one destination: out_dir with label (topspark '
                             'record: --out, --label) or bag (--bag)')
        if p['bag'] and p['label']:
            raise ValueError('a bag holds no label: record into out_dir with a label, or label '
                             "the bag's messages afterwards (a CSV or a label topic)")
        if p['out_dir'] and not p['label']:
            raise ValueError('recording into an image folder needs a label (the class; '
                             'topspark record: --label)')
        if p['out_dir'] and p['type'] == 'events':
            raise ValueError('event packets are not image-folder samples: record them into a '
                             'bag')
        if topics is None and given_at_start(self, ['topics']):
            # rcl gives an empty list no type: it recorded `topic` (image) without a word
            raise ValueError('topics is an empty list (topics:=[]): give the topics to record, '
                             'e.g. topics:=[image,classification], or one with topic:=NAME')
        names = [_topic_name(self, t) for t in (topics or [p['topic']])]
        twice = sorted({t for t in names if names.count(t) > 1})
        if twice:
            raise ValueError(f'{", ".join(twice)} named twice: each topic once')
        if len(names) > 1 and p['out_dir']:
            raise ValueError(f'an image folder takes one topic, not {len(names)}: record them '
                             'into a bag (--bag), or one topic at a time into folders')
        if len(names) > 1 and p['type'] != 'auto':
            raise ValueError(f'type {p["type"]} is for one topic: with {len(names)} each is '
                             'recorded as its publishers announce it (type auto)')
        self.topic = names[0]
        self._every_n, self._count = p['every_n'], p['count']
        self._depth = p['depth']
        reliability = (ReliabilityPolicy.BEST_EFFORT if p['reliability'] == 'best_effort'
                       else ReliabilityPolicy.RELIABLE)
        self.channels = [_Channel(name, QoSProfile(depth=p['depth'] or OTHER_DEPTH,
                                                   reliability=reliability))
                         for name in names]
        self.skipped = 0
        self._skip_reasons = set()  # the reasons to skip a message said so far
        self.folder_removed = False  # the class folder made for nothing, taken back by close
        self.finished = False
        self.error: Optional[str] = None
        self.to_bag = bool(p['bag'])  # a bag stores the serialised bytes as received
        if self.to_bag:  # ('~/run' made a folder named '~' here; a review)
            self.sink = BagWriter(os.path.expanduser(p['bag']), p['storage'])
            self.destination = str(self.sink.path)
        else:
            self.sink = FolderWriter(os.path.expanduser(p['out_dir']), p['label'])
            self.destination = str(self.sink.directory)
        self._discovery = None
        if self.to_bag:  # a burst's messages are committed though none follows (a review:
            # a recording killed 7 s after a burst of 20 frames kept 9)
            from topspark_ros.core.data.recording import COMMIT_EVERY_S
            self.create_timer(COMMIT_EVERY_S / 2, self._commit_due, clock=steady_clock())
        # Said once when nothing came for a while: with no publisher the recorder waited in
        # silence, and left an empty class folder behind (a review).
        self._waiting = self.create_timer(WAIT_NOTICE_S, self._say_waiting)
        try:
            if p['type'] == 'auto':
                self._discovery = self.create_timer(0.1, self._discover)
            else:
                self._subscribe(self.channels[0], TYPES[p['type']])
        except BaseException:
            if self.to_bag:
                self.sink.discard()
            else:
                self.sink.close()  # a class folder made for nothing goes
            raise

    @property
    def type_name(self) -> Optional[str]:
        """Return the message type of the first topic (None until it is known)."""
        return self.channels[0].type_name

    @property
    def _qos(self) -> QoSProfile:
        return self.channels[0].qos

    received = _summed('received', 'messages received')
    written = _summed('written', 'samples written')
    packets_lost = _summed('packets_lost', 'event packets lost before the recorder')
    sequence_gaps = _summed('sequence_gaps', "gaps in the event packets' ``seq``")
    sequence_restarts = _summed('sequence_restarts', "restarts of the event packets' ``seq``")

    def _say_waiting(self) -> None:
        """Say once, if a topic got no message in the first :data:`WAIT_NOTICE_S`, why."""
        self._waiting.cancel()
        if self.finished:
            return
        for channel in self.channels:
            if not channel.received:
                self._say_waiting_for(channel)

    def _say_waiting_for(self, channel: _Channel) -> None:
        infos = self.get_publishers_info_by_topic(channel.topic)
        announced = sorted({info.topic_type for info in infos})
        if channel.type_name is not None and announced and channel.type_name not in announced:
            # (--type compressed on an Image topic waited for ever, the hint blaming the QoS)
            hint = ' or '.join(f'--type {TYPE_OPTIONS[name]}' for name in announced
                               if name in TYPE_OPTIONS)
            self.get_logger().warn(
                f'no message on {channel.topic} after {WAIT_NOTICE_S:g} s: its publishers '
                f'announce {", ".join(announced)}, not the {channel.type_name} recorded; give '
                + (hint or '--type auto') + ' (topspark record) or type:=...')
            return
        self.get_logger().warn(
            f'no message on {channel.topic} after {WAIT_NOTICE_S:g} s; waiting ('
            + (f'{len(infos)} publishers matched by type: none has published yet, or their '
               'QoS cannot match this subscription (reliability '
               f'{channel.qos.reliability.name.lower()}; an incompatible QoS is logged as '
               'such)' if infos
               else 'no publisher of the topic yet: is the camera driver running, the topic '
               'name right? `ros2 topic list` lists them)'))

    def _discover(self) -> None:
        """Subscribe each topic once a publisher of it announces its type (and durability)."""
        for channel in self.channels:
            if channel.type_name is None and channel.refused is None and not self.finished:
                self._discover_one(channel)
        if self.finished or all(c.type_name is not None or c.refused is not None
                                for c in self.channels):
            self._discovery.cancel()

    def _refuse(self, channel: _Channel, reason: str) -> None:
        """
        End the recording for ``reason``; of several topics, leave out ``channel`` only.

        A topic of several that cannot be recorded (two types announced, a type not
        installed) ended the others' recording too (a review): it is said at once, in the
        last line, and in the exit status, and the others go on.
        """
        if len(self.channels) == 1:
            self._fail(reason)
            return
        channel.refused = reason
        self.get_logger().error(f'{channel.topic} is not recorded: {reason}; recording the '
                                'other topics')

    def _discover_one(self, channel: _Channel) -> None:
        """Subscribe ``channel`` once its type is announced (or refuse it, saying why)."""
        infos = self.get_publishers_info_by_topic(channel.topic)
        names = {info.topic_type for info in infos}
        if not names:
            return
        channel.offered = [info.qos_profile for info in infos]  # stored with a bag's topic
        if self.to_bag and all(i.qos_profile.durability == DurabilityPolicy.TRANSIENT_LOCAL
                               for i in infos):
            # As ros2 bag record does: the message in force too (the controller's latched
            # command was not recorded; a review).
            reliable = all(i.qos_profile.reliability == ReliabilityPolicy.RELIABLE
                           for i in infos)
            channel.qos = QoSProfile(
                depth=channel.qos.depth, durability=DurabilityPolicy.TRANSIENT_LOCAL,
                reliability=ReliabilityPolicy.RELIABLE if reliable
                else channel.qos.reliability)
        known = sorted(name for name in names if name in TYPES.values())
        if len(known) > 1:  # (one of them was taken at random; a review)
            self._refuse(channel, f'{channel.topic} has publishers of '
                         f'{" and ".join(known)}: give the type to record ('
                         + ' or '.join(f'--type {TYPE_OPTIONS[name]}' for name in known)
                         + '; the parameter type'
                         + (')' if len(self.channels) == 1 else ', recording it alone)'))
            return
        if not known and self.to_bag and len(names) == 1:
            # A bag stores any message as received: the classifier's results, the energy
            # estimates, the commands, beside a camera's bag (there is no ros2 bag with a
            # pip install of ROS 2, so results could not be recorded at all).
            known = sorted(names)
        if not known:
            self._refuse(channel, f'{channel.topic} has type {", ".join(sorted(names))}; '
                         f'record takes {", ".join(TYPES.values())}'
                         + (', or one message type of any kind into a bag' if self.to_bag
                            else ' into a folder (any one type into a bag)'))
            return
        if known[0] == TYPES['events'] and not self.to_bag:
            self._fail(f'{channel.topic} carries event packets, which are not image-folder '
                       'samples: record them into a bag')
            return
        from rosbags.typesys.base import TypesysError
        try:
            self._subscribe(channel, known[0])
        except (ImportError, ValueError, TypesysError) as exc:  # not here, no definition
            self._refuse(channel, f'cannot record {channel.topic}: {exc}')

    def _subscribe(self, channel: _Channel, type_name: str) -> None:
        msg_type = message_class(type_name)
        channel.type_name = type_name
        if self._depth == 0 and type_name == TYPES['events']:
            channel.qos.depth = EVENTS_DEPTH
        if self.to_bag:
            from topspark_ros.core.data.recording import installed_definition
            channel.connection = self.sink.add_topic(
                channel.topic, type_name, installed_definition,
                offered_qos_profiles=[bag_qos(profile) for profile in channel.offered])
        self.create_subscription(msg_type, channel.topic,
                                 lambda msg: self._on_message(channel, msg), channel.qos,
                                 raw=self.to_bag)
        self.get_logger().info(
            f'recording {channel.topic} ({type_name}) into {self.destination}'
            + ('' if self._every_n == 1 or type_name in FRAME_TYPES else
               f', every message: every_n {self._every_n} thins camera frames only'))

    def _on_message(self, channel: _Channel, msg) -> None:
        if self.finished:
            return
        channel.received += 1
        if self.to_bag and channel.type_name == TYPES['events']:  # every packet's, kept or not
            self._note_sequence(channel, msg)  # (every_n 2 read as a packet lost in two)
        if channel.type_name in FRAME_TYPES and (channel.received - 1) % self._every_n:
            return
        from topspark_ros.core.data.recording import (compressed_suffix, png_bytes, split_ns,
                                                      stamp_name)
        try:
            if self.to_bag:
                self.sink.write(channel.connection, self.get_clock().now().nanoseconds, msg)
            else:
                if channel.type_name == TYPES['image']:
                    from topspark_ros.conversions.image import FLOAT_ENCODINGS, image_to_array
                    if msg.encoding in FLOAT_ENCODINGS:  # depth in metres, most likely
                        raise ValueError(
                            f'{msg.encoding} is not stored in an image folder: a PNG holds '
                            'integers, and 0..1 scaled to 16 bits saturates depths beyond '
                            '1 m; record it into a bag (--bag)')
                    data = png_bytes(*image_to_array(msg))
                    suffix = '.png'
                else:
                    data = bytes(msg.data)
                    suffix = compressed_suffix(data)
                stamp = (msg.header.stamp.sec, msg.header.stamp.nanosec)
                if stamp == (0, 0):  # an unstamped message: named after its receive time
                    stamp = split_ns(self.get_clock().now().nanoseconds)
                self.sink.write(stamp_name(*stamp), data, suffix)
        except ValueError as exc:  # a message that cannot be stored: skipped and counted
            self.skipped += 1
            reason = str(exc)
            if reason not in self._skip_reasons and len(self._skip_reasons) < MAX_REASONS_SAID:
                self._skip_reasons.add(reason)  # a new reason at once (a second one was
                # hidden by the first's throttle; a review), repeats at most every 10 s
                self.get_logger().warn(f'skipped a message ({self.skipped} so far): {reason}')
            else:
                self.get_logger().warn(f'skipped a message ({self.skipped} so far): {reason}',
                                       throttle_duration_sec=10.0)
            return
        except OSError as exc:  # disk full, permissions: nothing more can be written
            self._fail(f'writing into {self.destination} failed: {exc}')
            return
        channel.written += 1
        if self._count and self.written >= self._count:
            self.finished = True

    def _commit_due(self) -> None:
        """Commit what the bag took if its last commit is a second old (sqlite3)."""
        if self.finished or self.error:
            return
        try:
            self.sink.commit_due()
        except OSError as exc:  # disk full: nothing more can be written
            self._fail(f'writing into {self.destination} failed: {exc}')

    def _note_sequence(self, channel: _Channel, data: bytes) -> None:
        """Count the packets an event packet's ``seq`` says were lost before it."""
        from topspark_ros.conversions.events import cdr_to_packet
        from topspark_ros.core.events.codecs.base import sequence_step
        try:
            seq = int(cdr_to_packet(data)[0]['seq'])
        except ValueError:  # not a packet this version reads: it is still stored
            return
        if channel.first_seq is None:
            channel.first_seq = seq
        gaps, lost, restarts = sequence_step(channel.last_seq, seq)
        channel.last_seq = seq
        channel.sequence_gaps += gaps
        channel.sequence_restarts += restarts
        if lost:
            channel.packets_lost += lost
            self.get_logger().warn(
                f'{channel.packets_lost} event packets of {channel.topic} lost before the '
                f'recorder so far (seq gaps; {channel.sequence_gaps} gaps): a deeper queue '
                '(--depth; default 1000 for packets) or less load on the cores',
                throttle_duration_sec=5.0)

    def _fail(self, reason: str) -> None:
        self.error = reason
        self.finished = True

    def close(self) -> None:
        """
        Finish the destination: close a bag, or take back a class folder left empty.

        A bag is closed and moved into place (an empty one dropped); the class folder (and
        those above it) the recorder made is removed when nothing was written into it.
        """
        removed = self.sink.close()
        self.folder_removed = bool(not self.to_bag and removed)


def run(args: Optional[Sequence[str]] = None, *, overrides: Optional[dict] = None,
        progress: bool = True) -> int:
    """
    Record until ``count`` samples are written or a signal comes; return the exit status.

    ``args``: process arguments, ROS arguments included (``sys.argv`` by default);
    ``overrides``: parameter values that take precedence over them; ``progress``: a tqdm bar
    on stderr.
    """
    import rclpy
    from rclpy.exceptions import ParameterException
    from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
    from rclpy.parameter import Parameter
    from tqdm import tqdm

    from topspark_ros.core.signals import handle_unless_ignored, STOP_SIGNALS
    from topspark_ros.nodes.runner import fatal, init, warn_parameter_misses
    argv = list(sys.argv if args is None else args)
    init(argv)
    stop, closing = [], []

    def on_signal(signum, frame) -> None:
        # The second signal stops now, unless the bag is being closed: interrupted there, it
        # stayed in its .partial folder without metadata (a user review: two Ctrl-C 50 ms
        # apart), which the next run says to delete. A close is never interrupted.
        if stop and not closing:
            raise KeyboardInterrupt
        stop.append(signum)  # the first: finish the sample in hand, then stop
    handle_unless_ignored((signal.SIGINT, *STOP_SIGNALS), on_signal)  # (a hang-up: closed)
    node = bar = None
    status = 0
    try:
        node = RecorderNode(parameter_overrides=[
            Parameter(name, value=value) for name, value in (overrides or {}).items()])
        warn_parameter_misses(node, argv)
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        bar = tqdm(total=node._count or None, unit='msg',
                   desc='record ' + ', '.join(c.topic for c in node.channels),
                   file=sys.stderr, disable=not progress,
                   mininterval=0.2 if sys.stderr.isatty() else 15.0)
        while executor.context.ok() and not node.finished and not stop:
            executor.spin_once(timeout_sec=0.1)
            bar.update(node.written - bar.n)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except (ImportError, ValueError, OSError, ParameterException) as exc:  # (of a type too)
        fatal(node, 'recorder', exc)
        status = 1
    finally:
        closing.append(True)
        if bar is not None:
            bar.close()
        if node is not None:
            if len(stop) > 1:
                print('recorder: closing the bag (signals wait until it is closed)',
                      file=sys.stderr)
            try:
                node.close()
            except OSError as exc:
                fatal(node, 'recorder', exc)
                status = 1
            node.destroy_node()
        rclpy.try_shutdown()
    if node is not None:
        if node.error:
            fatal(node, 'recorder', node.error)
            status = 1
        for channel in node.channels:
            if channel.refused is not None:  # (the others were recorded)
                print(f'recorder: error: {channel.topic} was not recorded: {channel.refused}',
                      file=sys.stderr)
                status = 1
        if node.received and not node.written and not node.error:  # (exit 0 let a script's
            # `record && train` go on with nothing; a review)
            print(f'recorder: error: none of the {node.received} messages received could be '
                  'recorded (the reasons are above)', file=sys.stderr)
            status = 1
        print(f'recorder: {_outcome(node)}', file=sys.stderr)
    return status


def _outcome(node: RecorderNode) -> str:
    """
    Return the last line of a recording: how many samples it wrote, and where they are.

    A bag is counted as closed: after a failed write, the messages it holds (a sqlite3 bag
    keeps those committed before); one that could not be closed is named where its messages
    are, not where the bag would be (it said 'wrote 64 samples to <bag>' of a bag that did
    not exist, a review of storage faults).
    """
    figures = f'{node.received} received, {node.skipped} skipped'
    if len(node.channels) > 1:  # each topic's, in the order given
        figures = ', '.join(f'{c.topic} {c.written}' if c.refused is None
                            else f'{c.topic} not recorded' for c in node.channels) \
            + '; ' + figures
    if any(c.type_name == TYPES['events'] for c in node.channels) and node.to_bag:
        figures += (f', {node.packets_lost} packets lost before the recorder (seq gaps: '
                    f'{node.sequence_gaps})')
        if node.sequence_restarts:
            figures += f', {node.sequence_restarts} seq restarts (the driver started again?)'
        joined = [(c.topic, c.first_seq) for c in node.channels if c.first_seq]
        if joined:  # (packets before the recorder's first are not counted as lost; a review)
            figures += ', first packet ' + ', '.join(
                f'of {topic} seq {seq} (the stream ran before)' if len(node.channels) > 1
                else f'seq {seq} (the stream ran before)' for topic, seq in joined)
    if not node.to_bag:
        if node.folder_removed:
            return f'wrote no sample; {node.destination} not kept ({figures})'
        return f'wrote {node.written} samples to {node.destination} ({figures})'
    bag = node.sink
    if bag.kept_in is not None:  # (it named the bag that appeared: of other messages)
        return (f'wrote {bag.written} samples to {bag.kept_in}, a closed bag ({node.destination} '
                f'appeared while recording; {figures})')
    if bag.left_in is not None:
        return (f'the bag {node.destination} was not closed ({bag.failure}): what was '
                f'written of its {bag.written} samples is in {bag.left_in} ({figures})')
    lost = node.written - bag.written
    if lost > 0:
        figures += f', {lost} lost when writing failed'
    where = node.destination if bag.written else f'{node.destination} (no bag written)'
    return f'wrote {bag.written} samples to {where} ({figures})'


def _topic_name(node, topic: str) -> str:
    """Return ``topic`` resolved; ValueError naming it when it is no topic name (not rcl's)."""
    from rclpy.impl.implementation_singleton import rclpy_implementation as _rclpy
    try:
        return node.resolve_topic_name(topic)
    except _rclpy.RCLError as exc:  # (a traceback; a review)
        reason = str(exc).split(', at ')[0].removeprefix('failed to resolve name: ')
        raise ValueError(f'invalid topic {topic!r}: {reason}') from None


def main(args: Optional[Sequence[str]] = None) -> int:
    """Run the recorder alone (``ros2 run topspark_ros recorder --ros-args -p ...``)."""
    from topspark_ros.nodes.runner import parse_player_args
    argv = list(sys.argv if args is None else args)
    try:
        parse_player_args(argv, 'recorder')  # --help answered, other options refused
    except ValueError as exc:  # a parameter file that is not there: one line (a review)
        print(f'recorder: error: {exc}', file=sys.stderr)
        return 2
    return run(argv)


def cli(argv: Optional[Sequence[str]] = None) -> int:
    """
    ``topspark record [TOPIC ...] (--out DIR --label NAME | --bag DIR) [options] [ROS args]``.

    Each option sets the parameter of the same name; ROS arguments pass through.
    """
    from topspark_ros.cli.args import non_negative_int, positive_int

    parser = argparse.ArgumentParser(
        prog='topspark record',
        description='Record an image, compressed-image or event topic into a labelled image '
                    'folder (DIR/LABEL/<stamp>.png), or topics into a rosbag2 bag (a bag '
                    'also takes topics of any other message type: classification, energy, '
                    'timestep). Atomic: Ctrl-C leaves no partial file and a finished bag.')
    parser.add_argument('topic', nargs='*', default=['image'],
                        help='topic to record (default: image); several go into one bag, '
                        'each of the type its publishers announce')
    parser.add_argument('--type', choices=('auto', *TYPES), default='auto',
                        help="message type (default: auto, the type the topic's publishers "
                        'announce)')
    parser.add_argument('--out', metavar='DIR', default='',
                        help='image folder to write into (samples go to DIR/LABEL/)')
    parser.add_argument('--label', default='', help='class of the samples (with --out)')
    parser.add_argument('--bag', metavar='DIR', default='',
                        help='bag to create instead (the messages as received)')
    parser.add_argument('--storage', choices=('sqlite3', 'mcap'), default='sqlite3',
                        help='bag storage format (default: %(default)s)')
    parser.add_argument('--count', type=non_negative_int, default=0,
                        help='stop after this many samples (default: 0, until Ctrl-C)')
    parser.add_argument('--every-n', type=positive_int, default=1,
                        help='keep the first frame of each camera topic and then every '
                        'n-th; event packets, labels and results are kept whole (default: 1)')
    parser.add_argument('--reliable', action='store_true',
                        help='reliable subscription QoS (default: sensor data, best effort)')
    parser.add_argument('--depth', type=next(p for p in PARAMS if p.name == 'depth').argument(),
                        default=0,
                        help='subscription queue depth (default: 0, 1000 for event packets, '
                        'else 5)')
    parser.add_argument('--quiet', '-q', action='store_true', help='no progress bar')
    own, ros_args = parser.parse_known_args(argv)
    if ros_args and ros_args[0] != '--ros-args':
        parser.error(f'unrecognized arguments: {" ".join(ros_args)}')
    topics = {'topic': own.topic[0]} if len(own.topic) == 1 else {'topics': own.topic}
    overrides = {**topics, 'type': own.type, 'out_dir': own.out,
                 'label': own.label, 'bag': own.bag, 'storage': own.storage,
                 'count': own.count, 'every_n': own.every_n, 'depth': own.depth,
                 'reliability': 'reliable' if own.reliable else 'best_effort'}
    return run(['topspark', *ros_args], overrides=overrides, progress=not own.quiet)


if __name__ == '__main__':
    sys.exit(main())
