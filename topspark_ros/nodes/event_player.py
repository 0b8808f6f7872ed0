"""
Replay an event file as ``event_camera_msgs/EventPacket`` messages, as an event camera would.

A recorder-free stand-in for an event-camera driver, for demos and tests. The file (``.bin``
N-MNIST, ``.npz`` or a ``.raw`` evt3 recording, see :mod:`topspark_ros.core.events.files`) is
cut into packets of ``packet_ms`` milliseconds of sensor time, encoded (``evt3`` by default,
or ``mono``, see :mod:`topspark_ros.core.events.codecs`; the messages are filled by
:mod:`topspark_ros.conversions.events`) and published on ``events`` at ``rate`` times real
time. Packet ``k`` of a pass (the events with ``t0 + k P <= t < t0 + (k + 1) P``, ``t0`` the
first event's time, ``P`` the packet length: :mod:`topspark_ros.core.events.packets`; a
``.raw`` recording whose clock reset is read as one stream, :mod:`topspark_ros.core.events.files`)
is published once its interval has elapsed, at
wall time ``start + (k + 1) P / rate``; time slices without events publish nothing. Its header
stamp is ``start + (t_first - t0) / rate`` (``t_first``: its first event), i.e. the event
times replayed on the node's clock (under ``use_sim_time`` it starts with the first
``/clock``: before it, the clock reads 0); ``seq`` counts the published packets (0, 1, 2, ...). A
thread of the node publishes (named ``event_player``), not the executor's timers, so the stream
keeps its schedule in a process whose executor is busy with other nodes (the event demo); after
a stall it catches up at most :data:`MAX_BURST` packets per packet period, and ``lag_s`` says
how far behind the schedule it was at its last publication. A ``.raw`` file is read and cut a
piece at a time as it plays (a recording of any length in bounded memory; ``.bin`` and
``.npz`` files are read whole), so the packets a pass holds are known once it ends
(``packets_per_pass``, None until then, for a file read whole too).

With ``loop`` the file plays again and again, each pass shifted to start one packet length
(plus ``loop_gap_ms``) after the previous pass ended, so sensor time, stamps and ``seq`` keep
increasing as a live stream's do; without it the node finishes after one pass and the
executable exits.

Instead of a file, ``dataset: nmnist-synth`` plays a split of the N-MNIST-like event data set
(:mod:`topspark_ros.core.data.synthetic_events`; real N-MNIST with ``data_dir``) sample after
sample, in its stored (shuffled) order: sample ``i`` is shifted to start at its first event and
occupies the sensor time ``[i S, (i + 1) S)``, ``S = sample_ms`` (see :func:`dataset_stream`),
so a classifier with time windows of ``sample_ms`` sees one whole sample per window. The label
of every published packet's sample is kept, keyed by its stamp, so a scorer in the same
process can check classifications (:meth:`EventPlayerNode.label_for`; a file's own label, when
it has one, in file mode).

    ros2 run topspark_ros event_player --ros-args -p file:=digit.npz -p rate:=2.0
    ros2 run topspark_ros event_player --ros-args -p dataset:=nmnist-synth -p packet_ms:=1.0
"""

import argparse
import collections
import sys
import threading
from typing import Optional, Sequence

import numpy as np
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy

from topspark_ros.conversions.events import encoded_to_fields, event_packet_type, fields_to_packet
from topspark_ros.core.events.packets import PacketCutter
from topspark_ros.nodes.construction import destroyed_if_construction_fails
from topspark_ros.nodes.intake import name_native_thread
from topspark_ros.nodes.parameters import declare, Param, values
from topspark_ros.nodes.resources import resolve
from topspark_ros.nodes.runner import MATCH_SETTLE_S, play, SubscriberWait

MAX_BURST = 4
"""Overdue packets one tick of the publishing thread may publish. After a stall the player
catches up at most this many packets per packet period, stamps staying on the schedule,
instead of publishing the whole backlog at once: a burst that overflows subscribers' queues."""

WAKE_S = 0.05
"""Longest sleep of the publishing thread (s): it checks for subscribers and a shut-down
context at least this often."""

RAW_PIECE_BYTES = 1 << 17
"""Bytes of a ``.raw`` file's words (or of a ``.npz`` file's arrays) read at a time while it
plays: about 1 ms of the publishing thread (a 1 MB piece held 1 ms packets up for several)."""

LABELS_KEPT = 1 << 16
"""Stamps of the most recent packets whose sample label :meth:`EventPlayerNode.label_for`
knows (65 s of 1 ms packets)."""

PARAMS = (
    Param('file', '', 'Event file to play (.bin N-MNIST, .npz or .raw evt3; a path or '
          "package://<package>/<path>); '' with a dataset.", live=False),
    Param('sensor', '', 'File: the sensor size WxH of a .raw recording whose header gives '
          "none (older recordings; '' : the header's).", live=False),
    Param('dataset', '', 'Event data set to play sample after sample instead of a file '
          "('' : play file).", choices=('', 'nmnist-synth'), live=False),
    Param('data_dir', '', "Dataset: directory with its split files ('' : search for it).",
          live=False),
    Param('split', 'test', 'Dataset: split to play.', choices=('train', 'test'), live=False),
    Param('sample_ms', 300.0, 'Dataset: sensor time each sample occupies (ms; at least its '
          'duration: 300 ms for N-MNIST); classify with windows of this length.', low=0.001,
          high=100000.0, live=False),
    Param('max_samples', 0, 'Dataset: play only the first this many samples (0: all).', low=0,
          live=False),
    Param('encoding', 'evt3', 'EventPacket encoding of the published packets.',
          choices=('evt3', 'mono'), live=False),
    Param('rate', 1.0, 'Playing speed as a multiple of real time (2.0: twice as fast).',
          low=0.001, high=100000.0, live=False),
    Param('packet_ms', 10.0, 'Sensor time covered by one packet (ms); drivers publish '
          'packets of about 1 ms (the classifier reads them without loss, and packets of 125 '
          'us, 8 000 a second, too: docs/benchmarks-ros.md).', low=0.001, high=100000.0,
          live=False),
    Param('loop', False, 'Play the file again and again (otherwise stop after one pass).',
          live=False),
    Param('loop_gap_ms', 0.0, 'Loop: extra sensor time between the end of a pass and the '
          'start of the next (ms).', low=0.0, live=False),
    Param('wait_for_subscribers', 0, 'Start playing only once this many subscriptions are '
          f'matched, and {MATCH_SETTLE_S:g} s more for their side of the match (0: once one or '
          'more, and every one the graph knows, are matched, from 0.5 s on, and '
          f'{MATCH_SETTLE_S:g} s more; at the latest after 2 s).',
          low=0, live=False),
    Param('frame_id', 'event_camera_optical_frame', 'frame_id of the published packets.',
          live=False),
    Param('reliability', 'best_effort', 'QoS reliability of the publisher (drivers publish '
          'best effort).', choices=('best_effort', 'reliable'), live=False),
    Param('depth', 10, 'QoS queue depth of the publisher.', low=1, high=10000, live=False),
)


def dataset_stream(dataset, sample_us: int, max_samples: int = 0) -> np.ndarray:
    """
    Return the samples of an event data set as one stream, sample ``i`` in ``[i S, (i+1) S)``.

    ``dataset``: an :class:`~topspark_ros.core.data.synthetic_events.EventDataset`; ``S =
    sample_us`` (microseconds); ``max_samples``: the first this many samples only (0: all).
    Each sample is shifted to start at its first event (``t' = i S + t - t_first``), as the
    N-MNIST files are, and must last less than ``S``: a time window of ``S`` that starts at
    the stream's first event then holds exactly one sample. Samples without events occupy
    their ``S`` silently. Raises ValueError when a sample is too long.
    """
    n = len(dataset.labels) if max_samples <= 0 else min(max_samples, len(dataset.labels))
    offsets = np.asarray(dataset.offsets[:n + 1], np.int64)
    events = dataset.events[offsets[0]:offsets[-1]].copy()
    counts = np.diff(offsets)
    t = events['t'].astype(np.int64)
    firsts = np.repeat(t[offsets[:-1][counts > 0] - offsets[0]], counts[counts > 0])
    local = t - firsts
    if len(local) and int(local.max()) >= sample_us:
        i = int(np.searchsorted(offsets, offsets[0] + int(np.argmax(local)), 'right')) - 1
        raise ValueError(f'sample {i} lasts {int(local.max()) + 1} us, longer than sample_ms '
                         f'({sample_us / 1000.0} ms): raise sample_ms')
    events['t'] = local + np.repeat(np.arange(n, dtype=np.int64) * int(sample_us), counts)
    return events


@destroyed_if_construction_fails
class EventPlayerNode(Node):
    """Publishes an event file (or an event data set) as EventPackets in (scaled) real time."""

    def __init__(self, **kwargs) -> None:
        """Open the file (or read the data set), cut its first packet and start publishing."""
        super().__init__('event_player', **kwargs)
        declare(self, PARAMS)
        p = values(self, PARAMS)
        packet_type = event_packet_type()  # first: a missing package is the clearest error
        from topspark_ros.core.events.codecs import make_encoder
        from topspark_ros.core.events.codecs.mono import MONO_MAX_DT_NS
        self.class_names = ()
        self._packet_us = max(1, round(p['packet_ms'] * 1000.0))
        if p['encoding'] == 'mono' and self._packet_us * 1000 > MONO_MAX_DT_NS:
            raise ValueError(f"packet_ms {p['packet_ms']} is longer than a mono packet can "
                             f'span ({MONO_MAX_DT_NS / 1e6:.0f} ms)')
        source, what = self._read_dataset(p) if p['dataset'] else self._read_file(p)
        self._source, self._loop = source, p['loop']
        self._encoder = make_encoder(p['encoding'], self.width, self.height)
        self._loop_gap_us = round(p['loop_gap_ms'] * 1000.0)
        self._dataset_us = len(self._sample_labels) * self._sample_us if p['dataset'] else 0
        self._cutter = PacketCutter(self._packet_us)
        self._chunks = self._open_pass()
        self._pass = self._cutter.packets_of(self._chunks)
        self._pass_us = None  # one pass's sensor time, gap included: known once it is read
        self._offset_us = 0  # sensor time added to the pass being played
        self._told = (0, 0)  # (pieces sorted, sensor clock resets) already warned about
        self.packets_per_pass = None  # known once a pass is read
        self._due = self._peek()  # the next packet: (slot, events, offset_us), None at the end
        if self._due is None:
            raise ValueError(f'{source}: the recording holds no events')
        # Encode the first packet once now, on an encoder of its own: the first encode loads
        # the compiled encoder (0.1 to 0.2 s here, seconds with an empty numba cache), and
        # done at the first tick it made the first quarter second of packets late, then burst
        # (a user review).
        make_encoder(p['encoding'], self.width, self.height).encode(self._due[1])
        self._t0 = self._cutter.t0
        self._labels = collections.OrderedDict()  # (sec, nanosec) -> label, the newest kept
        self._lock = threading.Lock()  # label_for runs in the scorer's thread
        self._rate = p['rate']
        self._frame_id = p['frame_id']
        self._waiting = SubscriberWait(p['wait_for_subscribers'])
        self._msg_type = packet_type
        self._start_ns = None  # clock time of t0 of the first pass, set when playing starts
        self.published = 0
        self.finished = False
        self.lag_s = 0.0  # how far the player was behind its schedule at its last tick (s)
        qos = QoSProfile(depth=p['depth'], reliability=(
            ReliabilityPolicy.BEST_EFFORT if p['reliability'] == 'best_effort'
            else ReliabilityPolicy.RELIABLE))
        self._pub = self.create_publisher(packet_type, 'events', qos)
        self._packet_s = self._packet_us / 1e6 / self._rate
        # A thread of its own publishes, not a timer of the executor: in one process with the
        # classifier (the event demo) the executor ticked a 1 ms timer only 100 to 400 times a
        # second, and the stream fell behind real time.
        self._wake = threading.Event()  # set: stop sleeping (stop, destroy)
        self._closing = False
        self._thread = threading.Thread(target=self._run, name='event_player', daemon=True)
        self._thread.start()
        self.get_logger().info(
            f'playing {source} ({what}, {self.width}x{self.height}, packets of '
            f"{p['packet_ms']} ms, {p['encoding']}) at {self._rate}x real time"
            f"{' in a loop' if self._loop else ''}")

    def _read_file(self, p: dict) -> tuple:
        """
        Open ``file``; return its name for messages and what it holds.

        A ``.raw`` or ``.npz`` file is read a piece at a time as it plays
        (:data:`RAW_PIECE_BYTES`), so a recording of any length plays in bounded memory; a
        ``.bin`` file is read whole.
        """
        if not p['file']:
            raise ValueError('parameters file and dataset are both empty: name the event file '
                             'or the data set to play')
        from topspark_ros.core.events.files import EventChunks, open_events
        path = resolve(p['file'])
        sensor = _sensor(p['sensor'])
        chunks = open_events(path, piece_bytes=RAW_PIECE_BYTES, sensor_size=sensor)
        self.width, self.height = chunks.width, chunks.height
        if chunks.size:  # read as it plays: opened again for every pass
            self._open_pass = lambda: open_events(path, piece_bytes=RAW_PIECE_BYTES,
                                                  sensor_size=sensor)
            what = (f"{chunks.metadata['events']:,} events" if 'events' in chunks.metadata
                    else f'{chunks.size:,} bytes of evt3 words')
        else:  # one piece, in memory
            recording = chunks.read()
            self._open_pass = lambda: EventChunks.of(recording)
            what = f'{len(recording.events)} events'
        # One label for the whole file (-1: unknown); its "sample" lasts forever.
        self._sample_labels = np.array([-1 if chunks.label is None else chunks.label])
        self._sample_us = 1 << 62
        return p['file'], what

    def _read_dataset(self, p: dict) -> tuple:
        """Take the samples of ``dataset`` as one stream (:func:`dataset_stream`)."""
        if p['file']:
            raise ValueError(f"give either file ({p['file']}) or dataset ({p['dataset']}), "
                             'not both')
        from topspark_ros.core.data.synthetic_events import load_event_dataset
        data = load_event_dataset(p['split'], p['data_dir'] or None)
        self._sample_us = max(1, round(p['sample_ms'] * 1000.0))
        from topspark_ros.core.events.files import EventChunks
        events = dataset_stream(data, self._sample_us, p['max_samples'])
        self._open_pass = lambda: EventChunks(data.width, data.height, (events,))
        n = len(data.labels)
        n = n if p['max_samples'] <= 0 else min(p['max_samples'], n)
        self._sample_labels = np.asarray(data.labels[:n], np.int64)
        self.width, self.height = data.width, data.height
        self.class_names = tuple(data.class_names)
        return (f"{p['dataset']} {p['split']} ({n} samples of {p['sample_ms']} ms, "
                f"{data.source or p['data_dir'] or 'found'})", f'{len(events)} events')

    @property
    def samples_per_pass(self) -> int:
        """Return the number of samples one pass plays (1 for a file)."""
        return len(self._sample_labels)

    def label_for(self, stamp) -> int:
        """
        Return the label of the sample of the packet published with ``stamp`` (-1 if unknown).

        The classifier stamps a window's result with the header of the packet holding the
        window's last event, so this is the label of the sample that event came from. The
        newest :data:`LABELS_KEPT` packets are known.
        """
        with self._lock:
            return self._labels.get((stamp.sec, stamp.nanosec), -1)

    def stop(self) -> None:
        """
        Publish no more packets (the node is then ``finished``); the labels stay known.

        Safe from any thread: the publishing thread ends at once.
        """
        self.finished = True
        self._wake.set()

    def destroy_node(self) -> None:
        """Stop the publishing thread (after the packet in hand), then destroy the node."""
        self._closing = True
        self._wake.set()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout=5.0)
        super().destroy_node()

    def _run(self) -> None:
        """Publish what is due, sleep until the next packet is due (the publishing thread)."""
        name_native_thread(threading.current_thread().name)
        try:
            while not self.finished and not self._closing and self.context.ok():
                self._wake.wait(min(self._tick(), WAKE_S))
        except Exception as exc:  # the context shut down underneath it, or a bug: say so
            if self.context.ok() and not self._closing:
                self.get_logger().error(f'event player stopped: {type(exc).__name__}: {exc}')
            self.finished = True

    def _peek(self) -> Optional[tuple]:
        """
        Return the next packet to publish, ``(slot, events, offset_us)``; None after the last.

        At the end of a pass its length becomes known (``packets_per_pass``); with ``loop``
        the next pass starts one packet length (plus ``loop_gap_ms``) after it, cut from
        the file again like the first.
        """
        packet = next(self._pass, None)
        if packet is None:
            if self._pass_us is None:
                self.packets_per_pass = self._cutter.packets
                self._pass_us = max((self._cutter.last_slot + 1) * self._packet_us,
                                    self._dataset_us) + self._loop_gap_us
            if not self._loop or self._cutter.packets == 0:
                return None
            self._offset_us += self._pass_us
            self._cutter = PacketCutter(self._packet_us, self._t0)
            self._chunks = self._open_pass()
            self._pass = self._cutter.packets_of(self._chunks)
            packet = next(self._pass, None)
            if packet is None:
                return None
        told = (self._cutter.sorted_pieces, self._chunks.metadata.get('sensor_resets', 0))
        if told != self._told and self._pass_us is None:  # said for the first pass only
            if told[0] > self._told[0]:
                self.get_logger().warn(f'{self._source}: events not in time order; sorted '
                                       'them')
            if told[1] > self._told[1]:
                self.get_logger().warn(
                    f'{self._source}: the recording goes back in time ({told[1]} so far: '
                    "the sensor's clock reset); played on from the last event before it")
            self._told = told
        return packet[0], packet[1], self._offset_us

    def _tick(self) -> float:
        """Publish every packet whose interval has elapsed; return the seconds to the next."""
        now = self.get_clock().now().nanoseconds
        if self._start_ns is None:
            if not self._waiting.ready(self._pub.get_subscription_count(), lambda:
                                       self.count_subscribers(self._pub.topic_name)) \
                    or now <= 0:
                return WAKE_S  # (0: use_sim_time and no /clock yet; the stream starts with it)
            self._start_ns = now
        burst = 0
        while not self.finished and not self._closing:
            if self._due is None:
                self.finished = True
                break
            slot, events, offset_us = self._due
            due_ns = self._start_ns + round(
                (offset_us + (slot + 1) * self._packet_us) * 1e3 / self._rate)
            if due_ns > now:
                self.lag_s = 0.0
                return (due_ns - now) / 1e9
            if burst == MAX_BURST:  # behind (a stall): catch up a burst per packet period
                self.lag_s = (now - due_ns) / 1e9
                return self._packet_s
            self._publish(events, offset_us)
            self._due = self._peek()
            burst += 1
        return 0.0

    def _publish(self, chunk: np.ndarray, offset_us: int) -> None:
        """Encode and publish the packet ``chunk`` of a pass shifted by ``offset_us``."""
        sample = int(chunk['t'][0]) // self._sample_us  # data set: t >= 0
        if offset_us:
            chunk = chunk.copy()
            chunk['t'] += offset_us
        first_ns = round((int(chunk['t'][0]) - self._t0) * 1e3 / self._rate)
        msg = fields_to_packet(encoded_to_fields(self._encoder.encode(chunk)),
                               stamp_ns=self._start_ns + first_ns, frame_id=self._frame_id,
                               msg_type=self._msg_type)
        label = int(self._sample_labels[min(max(sample, 0), len(self._sample_labels) - 1)])
        with self._lock:
            self._labels[(msg.header.stamp.sec, msg.header.stamp.nanosec)] = label
            if len(self._labels) > LABELS_KEPT:
                self._labels.popitem(last=False)
        self._pub.publish(msg)
        self.published += 1


def run(args: Optional[Sequence[str]] = None, *, overrides: Optional[dict] = None,
        linger_s: float = 0.5) -> int:
    """Play until done (or forever with ``loop``): :func:`~.runner.play`."""
    return play(EventPlayerNode, 'event_player', 'packets', args, overrides=overrides,
                linger_s=linger_s)


def main(args: Optional[Sequence[str]] = None) -> int:
    """Run the player alone (``ros2 run topspark_ros event_player --ros-args -p file:=...``)."""
    return run(args)


def _sensor(text: str) -> Optional[tuple]:
    """Return the ``sensor`` parameter as ``(width, height)``, None when empty."""
    if not text:
        return None
    from topspark_ros.core.events.files import parse_sensor_size
    try:
        return parse_sensor_size(text)
    except ValueError as exc:
        raise ValueError(f'parameter sensor: {exc}') from None


def cli(argv: Optional[Sequence[str]] = None) -> int:
    """
    ``topspark event-player FILE [options] [--ros-args ...]``: the player with CLI options.

    Each option sets the parameter of the same name; ROS arguments (a remap of ``events``,
    say) pass through.
    """
    parser = argparse.ArgumentParser(
        prog='topspark event-player',
        description='Publish an event file (.bin N-MNIST, .npz or .raw evt3) as '
                    'event_camera_msgs/EventPacket messages on `events`, in (scaled) real time.')
    parser.add_argument('file', help='event file to play')
    parser.add_argument('--encoding', choices=('evt3', 'mono'), default='evt3',
                        help='packet encoding (default: evt3)')
    spec = {param.name: param for param in PARAMS}  # (checked as the parameters: --rate 0
    # passed argparse and failed at the node, in rclpy's words; a review)
    parser.add_argument('--rate', type=spec['rate'].argument(), default=1.0,
                        help='speed as a multiple of real time (default: 1.0)')
    parser.add_argument('--packet-ms', type=spec['packet_ms'].argument(), default=10.0,
                        help='sensor time per packet in ms (default: 10.0)')
    parser.add_argument('--loop', action='store_true', help='play again and again')
    parser.add_argument('--wait-for-subscribers',
                        type=spec['wait_for_subscribers'].argument(), default=0,
                        help='start once this many subscriptions are matched (default: 0)')
    parser.add_argument('--frame-id', default='event_camera_optical_frame',
                        help='frame_id of the packets')
    parser.add_argument('--sensor', metavar='WxH', default='',
                        help='the sensor size of a .raw recording whose header gives none '
                        '(older recordings, e.g. 640x480)')
    own, ros_args = parser.parse_known_args(argv)
    if ros_args and ros_args[0] != '--ros-args':
        parser.error(f'unrecognized arguments: {" ".join(ros_args)}')
    overrides = {'file': own.file, 'encoding': own.encoding, 'rate': own.rate,
                 'packet_ms': own.packet_ms, 'loop': own.loop,
                 'wait_for_subscribers': own.wait_for_subscribers, 'frame_id': own.frame_id,
                 'sensor': own.sensor}
    return run(['topspark', *ros_args], overrides=overrides)


if __name__ == '__main__':
    sys.exit(main())
