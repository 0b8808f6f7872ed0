"""
ROS 2 bags as a data source: camera frames or event windows of one topic, with labels.

A bag is a rosbag2 directory (``metadata.yaml`` and its sqlite3 or MCAP files), read with the
pure-Python ``rosbags`` library (no ROS needed). One topic is read:

==========================================  ==================================================
``sensor_msgs/msg/Image``                   every encoding the classifier node reads
                                            (:mod:`topspark_ros.conversions.image`); one
                                            sample per message
``sensor_msgs/msg/CompressedImage``         JPEG or PNG, decoded with Pillow as the node
                                            decodes them; one sample per message
``event_camera_msgs/msg/EventPacket``       decoded by :mod:`topspark_ros.core.events.codecs`
                                            and cut into windows as the classifier node's
                                            event mode cuts them (by time, ``window_ms``, or
                                            by count, ``window_events``; windows with fewer
                                            than ``window_min_events`` are dropped); one
                                            sample per window, the last (open) window of the
                                            bag included; the windows are kept on disk
                                            (:mod:`topspark_ros.core.events.spool`)
==========================================  ==================================================

Without ``topic`` the bag's only topic of these types is read (an error lists them when there
are several). Frames go through :class:`~topspark_ros.core.preprocess.Preprocessor`, the path
the classifier node takes, to the model input ``spec``: what is trained is what the robot
sees. Event windows keep their events (``t`` in microseconds as decoded).

**Times.** A frame's time is its ``header.stamp``; an event window's is the ``header.stamp``
of the packet that holds its last event (the header the classifier node copies onto the
window's result). The bag's own (receive) time of each message is kept too.

**Labels**, one of:

* a CSV file (``labels``) whose first row is a header naming its kind:

  - ``start,end,label``: time ranges, in seconds of ``header.stamp`` (e.g.
    ``1712345678.25``), half-open ``[start, end)``; ranges must not overlap;
  - ``stamp,label``: the sample whose stamp lies within ``stamp_tolerance_s`` (default
    1 ms) of ``stamp`` (the nearest one);

  blank rows and rows starting with ``#`` are skipped;
* a ``std_msgs/msg/String`` topic of the same bag (``label_topic``): each message labels the
  samples whose bag time is at or after its own, until the next one; an empty string ends
  labelling (the samples after it are unlabelled);
* none: every sample is kept with label -1 and ``class_names`` is empty (what the label-free
  sweep takes).

Class names are the distinct labels, sorted. Samples no label covers are dropped and counted
(``unlabelled``); so is, apart (``straddling``), an event window whose first and last events'
packets are labelled differently, or one of them not at all (it straddles two ranges, or a
gap and a range, of a CSV of ranges or a label topic). Splits are stratified and seeded as
for image folders (:func:`~topspark_ros.core.data.folder.stratified_split`) over the whole
topic, sample by sample (``split_by='sample'``, the default), or by stretches of time
(``'time'``): a class's samples recorded within the same :data:`SPLIT_BLOCK_S` seconds share
a name, ``<class>/<block>``, and so a split (:func:`~topspark_ros.core.data.folder.name_split`,
seeded, the fractions per class). Sample by sample, each test frame of a 10 Hz camera has its
neighbour of 100 ms in train, so test figures are optimistic (a review); by time, only the
frames at the edges of a stretch have one. Samples in bag order within a split. A bag read
without labels is not split: every split is the whole topic (nothing can be trained on it,
and a label-free sweep measured a fifth of a field run).

**Errors** (:class:`~topspark_ros.core.data.dataset.DatasetError`, one line): a missing path or a
directory without ``metadata.yaml``, a bag without the topic (listing the topics it has), an
unsupported message type, labels that match no message, a class with no sample, a label file
that cannot be parsed. A message that cannot be read (bad serialisation, unknown image or
event encoding, undecodable image data) is skipped and counted in ``skipped``, or refused with
``strict=True``.
"""

import bisect
import csv
import dataclasses
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
import functools
import os
from pathlib import Path
from typing import Callable, Dict, List, NamedTuple, Optional, Sequence, Tuple, Union

import numpy as np
from rosbags.serde import SerdeError

from topspark_ros.core.data.dataset import DatasetError
from topspark_ros.core.data.folder import name_split, stratified_split
from topspark_ros.core.events.encode import EventSamples
from topspark_ros.core.events.spool import WindowSpool
from topspark_ros.core.preprocess import FrameSpec, Preprocessor

PathLike = Union[str, os.PathLike]

IMAGE_TYPE = 'sensor_msgs/msg/Image'
COMPRESSED_TYPE = 'sensor_msgs/msg/CompressedImage'
EVENTS_TYPE = 'event_camera_msgs/msg/EventPacket'
LABEL_TYPE = 'std_msgs/msg/String'
SAMPLE_TYPES = {IMAGE_TYPE: 'image', COMPRESSED_TYPE: 'compressed', EVENTS_TYPE: 'events'}
"""Message types read as samples, and their kind."""

EVENT_PACKET_MSG = """\
std_msgs/Header header
uint32 height
uint32 width
uint64 seq
uint64 time_base
string encoding
bool is_bigendian
uint8[] events
"""
"""``event_camera_msgs/msg/EventPacket`` (its fields), for bags that do not carry it."""

IMAGE_MSG = """\
std_msgs/Header header
uint32 height
uint32 width
string encoding
uint8 is_bigendian
uint32 step
uint8[] data
"""
"""``sensor_msgs/msg/Image`` (its fields), for :func:`live_typestore`."""

DEFAULT_WINDOW_MS = 300.0
"""Event windows by time: the classifier node's default ``window_ms``."""
DEFAULT_WINDOW_MIN_EVENTS = 50
"""Event windows with fewer events are dropped: the node's default ``window_min_events``."""
CSV_HEADERS = (('start', 'end', 'label'), ('stamp', 'label'))
_UNREADABLE = (SerdeError, ValueError, TypeError, IndexError, OverflowError)
"""What reading one message may raise on bad data (image and event errors are ValueErrors)."""


@dataclass(frozen=True)
class BagOptions:
    """
    How to read a bag: the topic, the labels, the event windows.

    Attributes
    ----------
    topic
        topic to read (default: the bag's only image, compressed image or event topic); a
        name with or without its leading ``/`` names the same topic (:func:`same_topic`).
    labels
        CSV label file (module docstring), or None.
    label_topic
        ``std_msgs/msg/String`` topic of the bag giving the labels, or None.
    window_ms
        event windows by time: length in milliseconds (used when ``window_events`` is None).
    window_events
        event windows by count: events per window, or None (windows by time).
    window_min_events
        event windows with fewer events are dropped.
    stamp_tolerance_s
        ``stamp,label`` files: largest distance (seconds) between a row and the stamp it
        labels.

    """

    topic: Optional[str] = None
    labels: Optional[str] = None
    label_topic: Optional[str] = None
    window_ms: float = DEFAULT_WINDOW_MS
    window_events: Optional[int] = None
    window_min_events: int = DEFAULT_WINDOW_MIN_EVENTS
    stamp_tolerance_s: float = 1e-3

    def __post_init__(self) -> None:
        if self.labels is not None and self.label_topic is not None:
            raise ValueError('give labels (a CSV file) or label_topic, not both')
        if not self.window_ms > 0 or (self.window_events is not None
                                      and self.window_events < 1):
            raise ValueError('window_ms must be > 0 and window_events >= 1')
        if self.window_min_events < 1 or not self.stamp_tolerance_s >= 0:
            raise ValueError('window_min_events must be >= 1 and stamp_tolerance_s >= 0')


@dataclass(frozen=True)
class BagTopic:
    """One topic of a bag: name, message type, message count."""

    name: str
    msgtype: str
    count: int

    @property
    def kind(self) -> Optional[str]:
        """``'image'``, ``'compressed'``, ``'events'``, or None (not a sample type)."""
        return SAMPLE_TYPES.get(self.msgtype)


@dataclass(frozen=True)
class BagDataset:
    """
    Frames and labels of one split of a bag topic.

    Attributes
    ----------
    images
        ``uint8 [N, h, w]`` (grayscale spec) or ``[N, 3, h, w]`` (RGB spec): model inputs.
    labels
        ``int64 [N]`` class indices into ``class_names`` (-1 everywhere when unlabelled).
    class_names
        the distinct labels, sorted (empty when unlabelled).
    source
        the bag directory.
    topic
        the topic read.
    stamps_ns
        ``int64 [N]`` header stamp of each sample (nanoseconds).
    times_ns
        ``int64 [N]`` bag (receive) time of each sample (nanoseconds).
    skipped
        ``(message index, bag time ns, reason)`` of every message that could not be read
        (``strict=False``), over the whole topic.
    unlabelled
        samples of the whole topic dropped because no label covers them.

    """

    images: np.ndarray
    labels: np.ndarray
    class_names: Sequence[str]
    source: Path
    topic: str = ''
    stamps_ns: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    times_ns: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    skipped: Tuple[Tuple[int, int, str], ...] = ()
    unlabelled: int = 0

    def __len__(self) -> int:
        """Return the number of samples."""
        return int(self.labels.shape[0])


@dataclass(frozen=True)
class BagEventSamples(EventSamples):
    """
    Event windows of one split of a bag's event topic (an :class:`EventSamples`).

    The attributes beyond :class:`EventSamples` are those of :class:`BagDataset`.
    """

    topic: str = ''
    stamps_ns: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    times_ns: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    skipped: Tuple[Tuple[int, int, str], ...] = ()
    unlabelled: int = 0
    straddling: int = 0
    """Windows dropped because their first and last events lie under different labels."""


# --------------------------------------------------------------------------- opening a bag


def _open(path: PathLike):
    """Return an open ``rosbags.rosbag2.Reader`` of the bag directory ``path``."""
    from rosbags.rosbag2 import Reader

    path = Path(path)
    if not path.exists():
        raise DatasetError(f'bag {path} does not exist')
    if not path.is_dir() or not (path / 'metadata.yaml').is_file():
        raise DatasetError(f'{path} is not a rosbag2 bag (expected a directory with '
                           'metadata.yaml and its .db3 or .mcap files)')
    check_sqlite_bag(path, DatasetError)
    try:
        reader = Reader(path)
        reader.open()
    except Exception as exc:  # noqa: B902 - rosbags raises its own and OS/YAML errors
        from topspark_ros.core.data.recover import recovery_hint
        raise DatasetError(f'{path}: cannot read the bag ({exc}){recovery_hint(path)}') \
            from None
    return reader


def check_sqlite_bag(path: PathLike, error=ValueError) -> None:
    """
    Raise ``error`` for a sqlite3 bag that rosbags would read from another file.

    Its path holds a character rosbags' ``file:`` URI takes for syntax
    (:func:`~topspark_ros.core.data.recording.sqlite_path_problem`).
    """
    from topspark_ros.core.data.recording import sqlite_path_problem

    for database in Path(path).glob('*.db3'):
        problem = sqlite_path_problem(database)
        if problem is not None:
            raise error(f'cannot read the bag {path}: {problem}')


def _topics(reader) -> List[BagTopic]:
    counts: Dict[Tuple[str, str], int] = {}
    for connection in reader.connections:
        key = (connection.topic, connection.msgtype)
        counts[key] = counts.get(key, 0) + int(connection.msgcount)
    return [BagTopic(name, msgtype, count) for (name, msgtype), count in sorted(counts.items())]


def _describe(topics: Sequence[BagTopic]) -> str:
    return ', '.join(f'{t.name} ({t.msgtype}, {t.count})' for t in topics) or 'none'


def bag_topics(path: PathLike) -> List[BagTopic]:
    """Return the topics of the bag ``path``, sorted by name."""
    reader = _open(path)
    try:
        return _topics(reader)
    finally:
        reader.close()


def same_topic(name: str, other: str) -> bool:
    """
    Return whether two topic names of a bag name the same topic.

    A name without its leading ``/`` is in the root namespace, as ``topspark record`` and
    ``play`` take it; bags hold either (``ros2 bag record`` writes ``/cam``; other writers,
    and ``events convert --out-topic cam`` before 2026-12-07, wrote ``cam``). Taken as given
    on one side, ``--topic cam`` found no ``/cam`` (a review), and once both were made
    absolute a bag's ``cam`` could not be named at all (a review of that change).
    """
    return name.lstrip('/') == other.lstrip('/')


def _choose(path: PathLike, topics: Sequence[BagTopic], topic: Optional[str]) -> BagTopic:
    if topic is None:
        candidates = [t for t in topics if t.kind is not None]
        if len(candidates) == 1:
            return candidates[0]
        if not candidates:
            raise DatasetError(f'bag {path} has no image, compressed image or event topic '
                               f'(its topics: {_describe(topics)})')
        raise DatasetError(f'bag {path} has several image or event topics; choose one with '
                           f'--topic: {_describe(candidates)}')
    name, _, msgtype = topic.partition(':')  # a ROS name has no ':': NAME:TYPE picks a type
    found = [t for t in topics if same_topic(t.name, name)]
    if not found:
        raise DatasetError(f'bag {path} has no topic {name} (its topics: '
                           f'{_describe(topics)})')
    if msgtype:
        found_named = found
        found = [t for t in found if msgtype in (t.msgtype, t.msgtype.rsplit('/', 1)[-1])]
        if not found:
            raise DatasetError(f'{name} in bag {path} has no message of type {msgtype} (its '
                               f'types: {_describe(found_named)})')
    readable = [t for t in found if t.kind is not None]
    if len(readable) > 1:  # a driver restarted with another type, say: choose one
        raise DatasetError(
            f'{name} in bag {path} holds messages of several types ({_describe(readable)}): '
            f'choose one with --topic {name}:TYPE (e.g. {name}:{readable[0].msgtype})')
    if not readable:
        raise DatasetError(f'{name} in bag {path} is {found[0].msgtype}, an unsupported '
                           f'message type (supported: {", ".join(SAMPLE_TYPES)})')
    return readable[0]


def bag_topic(path: PathLike, topic: Optional[str] = None) -> BagTopic:
    """Return the topic of ``path`` that ``topic`` names (default: the only sample topic)."""
    return _choose(path, bag_topics(path), topic)


@functools.lru_cache(maxsize=1)
def live_typestore() -> object:
    """
    Return a typestore of the messages a node reads from their bytes, and the types they use.

    ``event_camera_msgs/EventPacket`` and ``sensor_msgs/Image``
    (:mod:`topspark_ros.conversions.cdr`). Made in milliseconds, where Jazzy's whole
    typestore takes over a second (too long a pause for a node that reads its first packet
    with it); made once, never changed.
    """
    from rosbags.typesys import get_types_from_msg, get_typestore, Stores

    store = get_typestore(Stores.EMPTY)
    store.register(get_types_from_msg('int32 sec\nuint32 nanosec\n',
                                      'builtin_interfaces/msg/Time'))
    store.register(get_types_from_msg('builtin_interfaces/Time stamp\nstring frame_id\n',
                                      'std_msgs/msg/Header'))
    store.register(get_types_from_msg(EVENT_PACKET_MSG, EVENTS_TYPE))
    store.register(get_types_from_msg(IMAGE_MSG, IMAGE_TYPE))
    return store


def _typestore(connections) -> object:
    """Return a typestore knowing every type of ``connections`` (Jazzy's, the bag's own)."""
    from rosbags.interfaces import MessageDefinitionFormat
    from rosbags.typesys import get_types_from_msg, get_typestore, Stores

    store = get_typestore(Stores.ROS2_JAZZY)
    for connection in connections:
        if connection.msgtype in store.fielddefs:
            continue
        definition = connection.msgdef
        if definition.format == MessageDefinitionFormat.MSG and definition.data:
            store.register(get_types_from_msg(definition.data, connection.msgtype))
        elif connection.msgtype == EVENTS_TYPE:  # a bag without message definitions
            store.register(get_types_from_msg(EVENT_PACKET_MSG, EVENTS_TYPE))
        else:
            raise DatasetError(f'{connection.topic}: the bag does not define its message type '
                               f'{connection.msgtype}')
    return store


# ---------------------------------------------------------------------------------- labels


@dataclass(frozen=True)
class _LabelTable:
    """Labels parsed from a CSV file: ranges ``[start, end)`` or stamps, in nanoseconds."""

    kind: str  # 'ranges' or 'stamps'
    starts: np.ndarray
    ends: np.ndarray  # ranges only
    names: Tuple[str, ...]  # one per row
    source: str


def _seconds_ns(text: str, where: str) -> int:
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        raise DatasetError(f'{where}: {text!r} is not a time in seconds') from None
    if not value.is_finite():
        raise DatasetError(f'{where}: {text!r} is not a time in seconds')
    if abs(value) >= MAX_LABEL_SECONDS:  # it overflowed int64 as nanoseconds (a review)
        unit = next((f' (in {name}?)' for name, low in LABEL_UNITS if abs(value) >= low), '')
        raise DatasetError(f'{where}: {text} is no time in seconds{unit}; header stamps are '
                           'written in seconds since 1970, e.g. 1712345678.25')
    return int(value * 1_000_000_000)


MAX_LABEL_SECONDS = Decimal(9 * 10 ** 9)
"""A label time at or beyond this (year 2255 in seconds since 1970; int64 nanoseconds end at
9.22e9 s) is taken for another unit: milli-, micro- or nanoseconds since 1970."""
LABEL_UNITS = (('nanoseconds', Decimal(10) ** 17), ('microseconds', Decimal(10) ** 14),
               ('milliseconds', Decimal(10) ** 11))
"""The unit a label time beyond :data:`MAX_LABEL_SECONDS` looks like (from its size)."""


def read_label_csv(path: PathLike) -> _LabelTable:
    """Parse a label CSV file (module docstring); DatasetError names the file and row."""
    path = Path(path)
    try:
        text = path.read_text(encoding='utf-8-sig')
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f'cannot read the label file {path} ({exc})') from None
    rows = [(n, [c.strip() for c in row]) for n, row in
            enumerate(csv.reader(text.splitlines()), start=1)
            if row and any(c.strip() for c in row) and not row[0].lstrip().startswith('#')]
    if not rows or tuple(c.lower() for c in rows[0][1]) not in CSV_HEADERS:
        got = ','.join(rows[0][1]) if rows else 'an empty file'
        raise DatasetError(f'{path}: the first row must be the header start,end,label (time '
                           f'ranges) or stamp,label (stamps), got {got!r}')
    ranges = len(rows[0][1]) == 3
    starts, ends, names = [], [], []
    for number, row in rows[1:]:
        where = f'{path} row {number}'
        if len(row) != len(rows[0][1]) or not row[-1]:
            raise DatasetError(f'{where}: expected {",".join(rows[0][1])} with a non-empty '
                               f'label, got {",".join(row)!r}')
        starts.append(_seconds_ns(row[0], where))
        if ranges:
            ends.append(_seconds_ns(row[1], where))
            if ends[-1] <= starts[-1]:
                raise DatasetError(f'{where}: the range ends ({row[1]}) at or before it '
                                   f'starts ({row[0]})')
        names.append(row[-1])
    if not names:
        raise DatasetError(f'{path}: no label row after the header')
    order = np.argsort(starts, kind='stable')
    starts_a = np.asarray(starts, np.int64)[order]
    names_t = tuple(names[i] for i in order)
    ends_a = np.asarray(ends, np.int64)[order] if ranges else np.zeros(0, np.int64)
    if ranges and np.any(starts_a[1:] < ends_a[:-1]):
        k = int(np.flatnonzero(starts_a[1:] < ends_a[:-1])[0])
        raise DatasetError(f'{path}: the ranges of {names_t[k]!r} and {names_t[k + 1]!r} '
                           f'overlap (at {starts_a[k + 1] / 1e9:.9f} s)')
    if not ranges:
        same = np.flatnonzero(starts_a[1:] == starts_a[:-1])
        if same.size:
            raise DatasetError(f'{path}: the stamp {starts_a[same[0]] / 1e9:.9f} s has more '
                               'than one row')
    return _LabelTable('ranges' if ranges else 'stamps', starts_a, ends_a, names_t, str(path))


def _csv_labels(table: _LabelTable, stamps: np.ndarray,
                tolerance_ns: int) -> Tuple[List[Optional[str]], Tuple[str, ...]]:
    """Return the label name (or None) of each stamp, and every name the table uses."""
    if table.kind == 'ranges':
        at = np.searchsorted(table.starts, stamps, side='right') - 1
        inside = (at >= 0) & (stamps < table.ends[np.maximum(at, 0)])
    else:
        right = np.clip(np.searchsorted(table.starts, stamps), 0, len(table.starts) - 1)
        left = np.clip(right - 1, 0, len(table.starts) - 1)
        nearer = np.abs(table.starts[left] - stamps) <= np.abs(table.starts[right] - stamps)
        at = np.where(nearer, left, right)
        inside = np.abs(table.starts[at] - stamps) <= tolerance_ns
    return ([table.names[a] if ok else None for a, ok in zip(at, inside)],
            tuple(sorted(set(table.names))))


def _not_straddling(last: List[Optional[str]],
                    first: List[Optional[str]]) -> List[Optional[str]]:
    """
    Return the labels of event windows whose first and last events have the same one.

    A window whose two ends differ gets :data:`STRADDLING` (dropped, counted apart from the
    windows no label covers); one with no label at either end keeps None.

    A window across two ranges, or from a gap into a range, took the label of its end: two of
    fifteen windows had 33 and 67 % of their events outside their range, where a team left
    gaps to keep the transitions out of training (a review of own event bags).
    """
    return [a if a == b else (STRADDLING if a is not None or b is not None else None)
            for a, b in zip(last, first)]


STRADDLING = object()
"""The label of an event window across a label boundary (:func:`_not_straddling`): dropped."""


def _topic_labels(marks: Sequence[Tuple[int, str]],
                  times: np.ndarray) -> Tuple[List[Optional[str]], Tuple[str, ...]]:
    """Labels from a label topic: ``marks`` ``(bag time ns, text)`` in bag order."""
    marks = sorted(marks, key=lambda m: m[0])
    mark_times = [t for t, _ in marks]
    out: List[Optional[str]] = []
    for t in times:
        at = bisect.bisect_right(mark_times, int(t)) - 1
        out.append((marks[at][1] or None) if at >= 0 else None)
    return out, tuple(sorted({text for _, text in marks if text}))


# ------------------------------------------------------------------------------ reading


def _image_array(msg, spec) -> Tuple[np.ndarray, str]:
    """
    Return ``(frame [H, W, C], layout)`` of an Image or CompressedImage message.

    The one place this module decodes image messages: with the node's own conversions
    (:func:`~topspark_ros.conversions.image.frame_to_array`, for the model input ``spec`` as
    the node calls it: a grey model's YUV frame gives its luma, a JPEG is decoded at its
    size's scale), imported here only.
    """
    from topspark_ros.conversions.image import frame_to_array

    return frame_to_array(msg, spec.channels == 1, (spec.height, spec.width))


def _stamp_ns(msg) -> int:
    return int(msg.header.stamp.sec) * 1_000_000_000 + int(msg.header.stamp.nanosec)


class _Samples:
    """Samples read from a topic, in bag order, with their times."""

    def __init__(self) -> None:
        self.items: list = []
        self.stamps: List[int] = []
        self.times: List[int] = []
        self.first_stamps: List[int] = []  # event windows: of the packet of the first event
        self.first_times: List[int] = []


def _read_frames(messages, store, msgtype: str, preprocess: Preprocessor, skip) -> _Samples:
    out = _Samples()
    for index, (time_ns, raw) in enumerate(messages):
        try:
            msg = store.deserialize_cdr(raw, msgtype)
            frame, layout = _image_array(msg, preprocess.spec)
            image = preprocess(frame, layout)
        except _UNREADABLE as exc:
            skip(index, time_ns, exc)
            continue
        out.items.append(image)
        out.stamps.append(_stamp_ns(msg))
        out.times.append(time_ns)
    return out


def _read_windows(messages, store, options: BagOptions, skip,
                  spool: WindowSpool) -> Tuple[_Samples, tuple]:
    """
    Decode packets, cut windows (module docstring); return their times and the sensor size.

    The windows go to ``spool``, in order (``items`` stays empty).
    """
    from topspark_ros.core.events.codecs import make_decoder
    from topspark_ros.core.events.windows import CountWindower, TimeWindower

    def windower():
        if options.window_events is not None:
            return CountWindower(options.window_events, min_events=options.window_min_events)
        return TimeWindower(max(1, round(options.window_ms * 1000)),
                            min_events=options.window_min_events)

    out = _Samples()
    history: List[Tuple[int, int]] = []  # (stamp, bag time) of each packet of the stream
    starts: List[int] = []  # time of the first event of each packet
    state = {'key': None, 'decoder': None, 'windower': None, 'last_t': None}
    sensor = None

    def emit(windows) -> None:
        for window in windows:
            at = max(bisect.bisect_right(starts, int(window['t'].max())) - 1, 0)
            first = max(bisect.bisect_right(starts, int(window['t'].min())) - 1, 0)
            spool.append(window)
            out.stamps.append(history[at][0])
            out.times.append(history[at][1])
            out.first_stamps.append(history[first][0])
            out.first_times.append(history[first][1])

    def restart() -> None:
        if state['windower'] is not None:
            emit(state['windower'].flush())
        state['windower'] = windower()
        history.clear()
        starts.clear()
        state['last_t'] = None

    for index, (time_ns, raw) in enumerate(messages):
        try:
            msg = store.deserialize_cdr(raw, EVENTS_TYPE)
            key = (str(msg.encoding), int(msg.width), int(msg.height))
            if sensor is not None and key[1:] != sensor:
                raise ValueError(f'sensor size {key[1]}x{key[2]} differs from the first '
                                 f"packets' {sensor[0]}x{sensor[1]}")
            decoder = state['decoder']
            if key != state['key']:
                decoder = make_decoder(*key)  # raises for an unknown encoding
            events = decoder.decode(msg.events, seq=int(msg.seq), time_base=int(msg.time_base),
                                    is_bigendian=bool(msg.is_bigendian),
                                    stamp_ns=_stamp_ns(msg))
        except _UNREADABLE as exc:
            skip(index, time_ns, exc)
            continue
        if key != state['key']:
            restart()
            state['key'], state['decoder'], sensor = key, decoder, key[1:]
        if len(events) == 0:
            continue
        first = int(events['t'][0])
        if state['last_t'] is not None and first < state['last_t']:
            restart()  # the decoder started the stream afresh (a driver restart)
        state['last_t'] = int(events['t'][-1])
        history.append((_stamp_ns(msg), time_ns))
        starts.append(first)
        emit(state['windower'].push(events))
    if state['windower'] is not None:
        emit(state['windower'].flush())
    return out, sensor or (0, 0)


class _TopicRead(NamedTuple):
    """What reading a bag's topic gave, before labels and splits: what :func:`load_bag` keeps."""

    topic: BagTopic
    samples: _Samples
    sensor: Optional[Tuple[int, int]]
    skipped: List[Tuple[int, int, str]]
    marks: List[Tuple[int, str]]
    spool: Optional[WindowSpool]
    n_messages: int


_LAST_READ: list = [None, None]
"""``[key, _TopicRead]`` of the last topic read: the next split of the same bag, read alike,
takes it (a training run read and decoded a bag, and spooled its events, once per split)."""


def _read_key(path: PathLike, *settings) -> tuple:
    """Return what a topic's read depends on: the bag's files (names, sizes, times), settings."""
    root = Path(path).resolve()
    files = tuple(sorted((f.name, s.st_size, s.st_mtime_ns) for f in root.iterdir()
                         if f.is_file() for s in (f.stat(),))) if root.is_dir() else ()
    return (str(root), files) + settings


def _read_topic(path: PathLike, options: BagOptions, spec: FrameSpec, crop: str, invert: bool,
                strict: bool, progress: Callable[[int], None]) -> _TopicRead:
    """
    Read a bag's topic (and its label topic) as :func:`load_bag` needs it, once per bag.

    The last read is kept: another split of the same bag with the same options and
    preparation takes it (``progress`` then gets its message count at once).
    """
    options_read = dataclasses.replace(options, labels=None)  # labels come after reading
    key = _read_key(path, options_read, spec, crop, invert, strict)
    if _LAST_READ[0] == key:
        progress(_LAST_READ[1].n_messages)
        return _LAST_READ[1]
    _LAST_READ[:] = [None, None]  # its spool or frames go before the next is read
    reader = _open(path)
    try:
        topics = _topics(reader)
        topic = _choose(path, topics, options.topic)
        connections = [c for c in reader.connections
                       if c.topic == topic.name and c.msgtype == topic.msgtype]
        label_connections = []
        if options.label_topic is not None:
            label_connections = [c for c in reader.connections
                                 if same_topic(c.topic, options.label_topic)]
            if not label_connections:
                raise DatasetError(f'bag {path} has no label topic {options.label_topic} (its '
                                   f'topics: {_describe(topics)})')
            if any(c.msgtype != LABEL_TYPE for c in label_connections):
                raise DatasetError(f'label topic {options.label_topic} is '
                                   f'{label_connections[0].msgtype}, not {LABEL_TYPE}')
        store = _typestore(connections + label_connections)
        skipped: List[Tuple[int, int, str]] = []
        read = [0]  # messages of the topic read

        def skip(index: int, time_ns: int, exc: Exception) -> None:
            reason = f'{type(exc).__name__}: {exc}'
            if strict:
                raise DatasetError(f'{path} {topic.name}: message {index} (bag time '
                                   f'{time_ns / 1e9:.9f} s) cannot be read ({reason})')
            skipped.append((index, time_ns, reason))

        def messages():
            for _, time_ns, raw in reader.messages(connections=connections):
                yield time_ns, raw
                read[0] += 1
                progress(1)

        spool, sensor = None, None
        if topic.kind == 'events':
            spool = WindowSpool()  # closed with its last view (or with it, on an error)
            samples, sensor = _read_windows(messages(), store, options, skip, spool)
        else:
            samples = _read_frames(messages(), store, topic.msgtype,
                                   Preprocessor(spec, crop=crop, invert=invert), skip)
        marks = []
        for _, time_ns, raw in reader.messages(connections=label_connections) \
                if label_connections else ():
            try:
                marks.append((time_ns, str(store.deserialize_cdr(raw, LABEL_TYPE).data).strip()))
            except _UNREADABLE as exc:
                raise DatasetError(f'{path} {options.label_topic}: a label message (bag time '
                                   f'{time_ns / 1e9:.9f} s) cannot be read ({exc})') from None
    finally:
        reader.close()
    result = _TopicRead(topic, samples, sensor, skipped, marks, spool, read[0])
    _LAST_READ[:] = [key, result]
    return result


SPLIT_BLOCK_S = 10.0
"""Samples of one class recorded within this many seconds go to one split (module doc)."""
BAG_SPLITS = ('sample', 'time')
"""A bag's ``split_by``: sample by sample, or by stretches of time (module docstring)."""


def load_bag(path: PathLike, split: str, *, options: BagOptions = BagOptions(),
             spec: FrameSpec = FrameSpec(), crop: str = 'center', invert: bool = False,
             val_fraction: float = 0.1, test_fraction: float = 0.2, seed: int = 0,
             strict: bool = False, progress: Callable[[int], None] = lambda n: None,
             split_by: str = 'sample'):
    """
    Read ``split`` of a bag's topic (module docstring; ``split_by``: :data:`BAG_SPLITS`).

    Returns a :class:`BagDataset` (frames brought to ``spec`` with ``crop`` and ``invert``)
    or, for an event topic, a :class:`BagEventSamples`. ``progress(1)`` is called per message
    of the topic. Raises DatasetError as the module docstring says.
    """
    if split_by not in BAG_SPLITS:
        raise ValueError(f"a bag's split_by must be one of {', '.join(BAG_SPLITS)}, not "
                         f'{split_by!r}')
    labels_file = read_label_csv(options.labels) if options.labels else None
    read = _read_topic(path, options, spec, crop, invert, strict, progress)
    topic, samples, sensor, skipped, marks = (read.topic, read.samples, read.sensor,
                                              read.skipped, read.marks)
    stamps = np.asarray(samples.stamps, np.int64)
    times = np.asarray(samples.times, np.int64)
    if not len(stamps) and skipped:  # say why, before any label is blamed
        raise DatasetError(f'{path} {topic.name}: none of its {len(skipped)} messages could '
                           f'be read (the first: {skipped[0][2]})')
    tolerance_ns = round(options.stamp_tolerance_s * 1e9)
    if labels_file is not None:
        names, class_names = _csv_labels(labels_file, stamps, tolerance_ns)
        what = f'the labels of {labels_file.source}'
        if topic.kind == 'events' and labels_file.kind == 'ranges':
            names = _not_straddling(names, _csv_labels(labels_file, np.asarray(
                samples.first_stamps, np.int64), tolerance_ns)[0])
    elif options.label_topic is not None:
        names, class_names = _topic_labels(marks, times)
        what = f'the label topic {options.label_topic}'
        if topic.kind == 'events':
            names = _not_straddling(names, _topic_labels(marks, samples.first_times)[0])
    else:
        names, class_names = [None] * len(stamps), ()
    if labels_file is not None or options.label_topic is not None:
        if not class_names:
            raise DatasetError(f'{what} name no class')
        index = {name: k for k, name in enumerate(class_names)}
        labels = np.array([index.get(n, -1) if n is not None else -1 for n in names], np.int64)
        straddling = sum(1 for n in names if n is STRADDLING)
        kept = np.flatnonzero(labels >= 0)
        if not kept.size:
            span = (f'its {len(stamps)} samples span {stamps.min() / 1e9:.3f} to '
                    f'{stamps.max() / 1e9:.3f} s of header.stamp' if len(stamps)
                    else 'it has no readable sample')
            raise DatasetError(f'{what} match no message of {topic.name} in {path} ({span})')
        counts = np.bincount(labels[kept], minlength=len(class_names))
        if not counts.all():
            empty = class_names[int(np.flatnonzero(counts == 0)[0])]
            across = (f' ({straddling} event windows across a label boundary were dropped: '
                      'shorter windows, or ranges that hold whole windows)' if straddling
                      else '')
            raise DatasetError(f'class {empty!r} has no sample: {what} cover no readable '
                               f'message of {topic.name} with it{across}')
    else:  # no labels: nothing is trained on it, so every split is all of it
        labels = np.full(len(stamps), -1, np.int64)
        kept = np.arange(len(stamps))
        straddling = 0
    unlabelled = len(stamps) - len(kept) - straddling
    if not class_names:
        chosen = kept
    elif split_by == 'sample':
        chosen = np.sort(kept[stratified_split(labels[kept], split, val_fraction=val_fraction,
                                               test_fraction=test_fraction, seed=seed)])
    else:  # by stretches of time (the bag's record times: every message has one)
        # The blocks are split, not their samples: a class with no block in train gives it
        # its block of the highest draw whole (one sample of it left the others in test).
        block_ns = round(SPLIT_BLOCK_S * 1e9)
        blocks, inverse = np.unique([f'{labels[i]}/{times[i] // block_ns}' for i in kept],
                                    return_inverse=True)
        block_labels = np.array([int(name.split('/')[0]) for name in blocks], np.int64)
        taken = name_split(list(blocks), block_labels, split, val_fraction=val_fraction,
                           test_fraction=test_fraction, seed=seed)
        chosen = np.sort(kept[np.isin(inverse.ravel(), taken)])
    common = {'labels': labels[chosen], 'class_names': tuple(class_names),
              'topic': topic.name, 'stamps_ns': stamps[chosen], 'times_ns': times[chosen],
              'skipped': tuple(skipped), 'unlabelled': int(unlabelled)}
    if topic.kind == 'events':
        common['straddling'] = int(straddling)
    if topic.kind == 'events':
        return BagEventSamples(images=read.spool.windows(chosen), sensor_size=sensor,
                               source=str(path), **common)
    images = (np.stack([samples.items[i] for i in chosen]) if len(chosen)
              else np.zeros((0,) + spec.shape, np.uint8))
    return BagDataset(images=images, source=Path(path), **common)
