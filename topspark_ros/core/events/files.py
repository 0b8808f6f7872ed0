"""
Event files: one recording (events + sensor size + optional label) per file.

Three formats, chosen by the file name's suffix:

``.bin``
    the N-MNIST binary format (:mod:`topspark_ros.core.events.nmnist`): 5 bytes per event,
    a 34 x 34 sensor, 23-bit timestamps, no header. The label is not stored in the file; on
    reading it is taken from the parent directory when that is named after a digit (the
    N-MNIST layout ``Test/<digit>/<id>.bin``).
``.npz``
    ours: a numpy archive with the arrays ``x`` (``uint16``), ``y`` (``uint16``), ``p``
    (``uint8``), ``t`` (``int64``, microseconds) and the scalars ``width``, ``height``,
    ``label`` (-1: none) and ``format_version`` (1). Any sensor size, any time range.
``.raw``
    what Prophesee's Metavision tools and metavision_driver record: text header lines that
    start with ``%`` (``% evt 3.0``, ``% format EVT3;height=720;width=1280``, ``% geometry
    1280x720``, ..., ``% end``), then the EVT 3.0 word stream (little-endian, see
    :mod:`topspark_ros.core.events.codecs`). The sensor size comes from the ``format``,
    ``geometry`` or ``Width`` / ``Height`` lines. Reading decodes the words (lenient: what
    the decoder counts, padding and all, is in ``metadata['decoder']``); evt3 carries time
    modulo 2^24 us, so a recording written from times at or after 2^24 us comes back shifted
    by a multiple of 2^24 us. A sensor reset in the recording (its clock started again) is
    stitched as a bag's is: the events after it follow the last one before it, 1 us later
    (``metadata['sensor_resets']``), so the recording stays one stream in time order. Only
    EVT 3.0 files are read (EVT 2.x files are refused).

:func:`read_bag_events` reads the ``event_camera_msgs/EventPacket`` topic of a ROS 2 bag
(any encoding the codecs decode) into one recording, so a bag converts to any of the files.
"""

import contextlib
import copy
from dataclasses import dataclass, field
import io
import os
from pathlib import Path
import re
import tempfile
from typing import Callable, Iterator, Optional, Tuple, Union
import zipfile
import zlib

import numpy as np

from topspark_ros.core.events import EVENT_DTYPE
from topspark_ros.core.events import nmnist
from topspark_ros.core.files import atomic_write, fsync_dir, written_atomically

NPZ_FORMAT_VERSION = 1
"""Version written into (and accepted from) ``.npz`` event files."""

SUFFIXES = ('.bin', '.npz', '.raw')
"""File name suffixes :func:`read_event_file` and :func:`write_event_file` understand."""

PathLike = Union[str, os.PathLike]


class EventFileError(ValueError):
    """An event file that cannot be read or written (format, content, suffix)."""


@dataclass
class EventRecording:
    """
    One event recording.

    Attributes
    ----------
    events
        :data:`~topspark_ros.core.events.EVENT_DTYPE` array ordered by time, ``t`` in
        microseconds.
    width, height
        sensor size in pixels; every event lies inside it.
    label
        class index, or ``None`` when unknown.
    metadata
        free-form notes (not stored in ``.bin`` files).

    """

    events: np.ndarray
    width: int
    height: int
    label: Optional[int] = None
    metadata: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        """Check the dtype and that the events lie inside the sensor."""
        self.events = np.asarray(self.events)
        if self.events.dtype != EVENT_DTYPE:
            raise EventFileError(f'events must have EVENT_DTYPE {EVENT_DTYPE}, got '
                                 f'{self.events.dtype}')
        self.width, self.height = int(self.width), int(self.height)
        if self.width < 1 or self.height < 1:
            raise EventFileError(f'sensor size must be positive, got {self.width} x '
                                 f'{self.height}')
        if self.events.size and (int(self.events['x'].max()) >= self.width
                                 or int(self.events['y'].max()) >= self.height):
            raise EventFileError(
                f'events outside the {self.width} x {self.height} sensor (max x '
                f'{int(self.events["x"].max())}, max y {int(self.events["y"].max())})')
        if self.label is not None:
            self.label = int(self.label)

    @property
    def duration_us(self) -> int:
        """Time from the first to the last event in microseconds (0 when empty)."""
        if not self.events.size:
            return 0
        return int(self.events['t'][-1] - self.events['t'][0])


class EventChunks:
    """
    An event recording read a piece at a time, for work that need not hold all of it.

    Iterate it once for its :data:`~topspark_ros.core.events.EVENT_DTYPE` pieces, in time
    order; :meth:`read` gathers them into an :class:`EventRecording`. ``metadata`` is
    complete once the pieces are all read (a decoder's counters, a bag's skipped messages
    and sensor resets). ``width``, ``height``, ``label``: as the recording's. ``size``: how
    much there is to read (the words of a ``.raw`` file or a ``.npz`` file's event arrays in
    bytes, a bag's messages; 0: one piece), what the reader's ``progress`` counts.

    An ``events info`` or a conversion to ``.raw`` of a 220 MB evt3 recording held 1.6 to 2.1
    GB (the events decoded whole, about 7 times the words; a user review); a piece at a time
    they hold one piece.
    """

    def __init__(self, width: int, height: int, pieces, *, label: Optional[int] = None,
                 metadata: Optional[dict] = None, size: int = 0) -> None:
        """Wrap the iterable ``pieces``."""
        self.width, self.height, self.label = int(width), int(height), label
        self.metadata = {} if metadata is None else metadata
        self.size = int(size)
        self._pieces = iter(pieces)

    def __iter__(self) -> Iterator[np.ndarray]:
        """Yield the pieces (once)."""
        return self._pieces

    def read(self) -> EventRecording:
        """Return all the pieces as one :class:`EventRecording`."""
        chunks = list(self)
        events = np.concatenate(chunks) if chunks else np.zeros(0, EVENT_DTYPE)
        return EventRecording(events, self.width, self.height, self.label, self.metadata)

    @classmethod
    def of(cls, recording: EventRecording) -> 'EventChunks':
        """Return ``recording`` as one piece."""
        return cls(recording.width, recording.height, [recording.events],
                   label=recording.label, metadata=recording.metadata)


def open_events(name: PathLike, topic: Optional[str] = None,
                progress: Callable[[int], None] = lambda n: None,
                bag: Optional[bool] = None, piece_bytes: int = 0,
                sensor_size: Optional[Tuple[int, int]] = None) -> EventChunks:
    """
    Return an event file, or a bag's event topic, as :class:`EventChunks`.

    ``name``: a bag directory (``topic``: its EventPacket topic, default the only one) or an
    event file; a ``.raw`` or ``.npz`` file and a bag are read a piece at a time, a ``.bin``
    file whole (one piece). ``progress(n)``: called as ``n`` more of ``size`` are read.
    ``bag``: True when ``name`` is meant as a bag (``bag:DIR``), whatever is there, so a wrong
    path gets the bag reader's error; None: a bag when it is a directory. ``piece_bytes``:
    the bytes of a ``.raw`` file's words, or of a ``.npz`` file's arrays, read at a time (0:
    :data:`RAW_CHUNK_BYTES`). ``sensor_size``: ``(width, height)`` of a ``.raw`` file whose
    header gives none (older recordings); one that gives another is refused.
    """
    path = Path(name)
    if bag or (bag is None and path.is_dir()):
        return open_bag_events(path, topic, progress)
    if not os.path.lexists(path):  # (read: "unknown event file type '(no suffix)'")
        raise EventFileError(f'{path} does not exist')
    reader = {'.raw': _raw_chunks, '.npz': _npz_chunks}.get(_suffix(path))
    if reader is None:
        return EventChunks.of(read_event_file(path))
    try:
        if reader is _raw_chunks:
            return _raw_chunks(path, progress, piece_bytes or RAW_CHUNK_BYTES, sensor_size)
        return reader(path, progress, piece_bytes or RAW_CHUNK_BYTES)
    except OSError as exc:
        raise EventFileError(f'cannot read {path}: {exc}') from None


class Summary:
    """What ``events info`` says of a recording, added up a piece at a time (:meth:`add`)."""

    def __init__(self) -> None:
        """Start from nothing."""
        self.count = self.on = 0
        self.first = self.last = None
        self.in_order = True

    def add(self, chunk: np.ndarray) -> None:
        """Count the events of ``chunk``, the next piece."""
        if not chunk.size:
            return
        t = chunk['t']
        self.in_order = self.in_order and (self.last is None or int(t[0]) >= self.last) \
            and bool(np.all(np.diff(t) >= 0))
        self.first = int(t[0]) if self.first is None else self.first
        self.last = int(t[-1])
        self.count += int(chunk.size)
        self.on += int(np.count_nonzero(chunk['p']))

    def as_dict(self) -> dict:
        """
        Return the figures as a dict.

        ``events``, ``duration_us``, ``first_t_us`` (None when empty), ``on_fraction``,
        ``rate_ev_per_s``, ``sorted_by_time``.
        """
        duration = 0 if self.first is None else self.last - self.first
        return {'events': self.count, 'duration_us': duration, 'first_t_us': self.first,
                'on_fraction': self.on / self.count if self.count else 0.0,
                'rate_ev_per_s': self.count / (duration * 1e-6) if duration else 0.0,
                'sorted_by_time': self.in_order}


def summarize(chunks: EventChunks) -> dict:
    """Read ``chunks`` and return their :class:`Summary`, holding one piece at a time."""
    summary = Summary()
    for chunk in chunks:
        summary.add(chunk)
    return summary.as_dict()


def write_event_chunks(path: PathLike, chunks: EventChunks, *, overwrite: bool = False,
                       start_at_zero: bool = False,
                       written: Callable[[np.ndarray], None] = lambda chunk: None) -> None:
    """
    Write ``chunks`` to ``path`` as :func:`write_event_file` does, a piece at a time.

    ``.raw`` and ``.npz`` files hold one piece in memory at a time; a ``.bin`` file is written
    from the whole recording (a 34 x 34 sensor and 8.4 s at most). ``start_at_zero``: shift
    the times so that the first event is at 0. ``written(piece)`` sees each piece as written
    (for a summary).
    """
    path = Path(path)
    if not overwrite and os.path.lexists(path):  # before the work of reading
        raise FileExistsError(f'{path} exists; not replacing it')

    def shifted() -> Iterator[np.ndarray]:
        shift = None
        for chunk in chunks:
            if start_at_zero and chunk.size:
                shift = int(chunk['t'][0]) if shift is None else shift
                chunk = chunk.copy()
                chunk['t'] -= shift
            written(chunk)
            yield chunk

    suffix = _suffix(path)
    if suffix == '.npz':
        _write_npz_pieces(path, chunks, shifted(), overwrite)
        return
    if suffix == '.bin':
        _check_bin_sensor(path, chunks.width, chunks.height)  # before reading it all
        pieces = list(shifted())
        events = np.concatenate(pieces) if pieces else np.zeros(0, EVENT_DTYPE)
        write_event_file(path, EventRecording(events, chunks.width, chunks.height,
                                              chunks.label, chunks.metadata),
                         overwrite=overwrite)
        return
    from topspark_ros.core.events.codecs import EventEncodeError, make_encoder
    try:
        encoder = make_encoder('evt3', chunks.width, chunks.height, self_contained=False)
    except ValueError as exc:
        raise EventFileError(f'{path}: {exc}') from None
    directory = path.parent if str(path.parent) else Path('.')
    directory.mkdir(parents=True, exist_ok=True)
    with written_atomically(path, replace=overwrite) as tmp, open(tmp, 'wb') as out:
        out.write(_raw_header(chunks.width, chunks.height, chunks.metadata.get('header')))
        for chunk in shifted():
            try:
                out.write(encoder.encode(chunk).data)
            except (EventEncodeError, ValueError) as exc:
                raise EventFileError(f'{path}: {exc}') from None
    fsync_dir(directory)


def write_event_bag(path: PathLike, chunks: EventChunks, *, stamp_origin_ns: int,
                    topic: str = '/event_camera/events', packet_us: int = 1000,
                    encoding: str = 'evt3', frame_id: str = 'event_camera',
                    storage: str = 'mcap',
                    written: Callable[[np.ndarray], None] = lambda chunk: None) -> dict:
    """
    Write ``chunks`` as a ROS 2 bag of ``event_camera_msgs/EventPacket`` on ``topic``.

    As a driver publishes it (metavision_driver: about a packet a millisecond): packets of
    ``packet_us`` of sensor time (:class:`~topspark_ros.core.events.packets.PacketCutter`),
    ``encoding`` (a stream: ``seq`` counts them), each stamped, and recorded at,
    ``stamp_origin_ns + 1000 (t_first - t0)`` (``t_first`` its first event, ``t0`` the
    recording's first). A piece at a time: a recording of any length in bounded memory.
    The bag is built beside ``path`` and moved there when complete
    (:class:`~topspark_ros.core.data.recording.BagWriter`; interrupted or failed, nothing is
    left); ``path`` must not exist. Stamps must lie from 0 to 2038 (:data:`MAX_STAMP_NS`). Returns
    ``{'packets': n, 'first_stamp_ns': ..., 'last_stamp_ns': ...}``. So a ``.raw`` recording
    becomes ``--data bag:DIR`` for every command, with labels by header stamp.
    """
    from topspark_ros.core.data.bag import EVENT_PACKET_MSG, EVENTS_TYPE, live_typestore
    from topspark_ros.core.data.recording import BagWriter
    from topspark_ros.core.events.codecs import make_encoder
    from topspark_ros.core.events.packets import PacketCutter

    encoder = make_encoder(encoding, chunks.width, chunks.height, self_contained=False)
    store = live_typestore()
    packet_type, header_type, time_type = (store.types[EVENTS_TYPE],
                                           store.types['std_msgs/msg/Header'],
                                           store.types['builtin_interfaces/msg/Time'])
    cutter = PacketCutter(packet_us)
    figures = {'packets': 0, 'first_stamp_ns': None, 'last_stamp_ns': None}

    def pieces() -> Iterator[np.ndarray]:
        for chunk in chunks:
            written(chunk)
            yield chunk

    bag = BagWriter(path, storage=storage)
    try:
        connection = bag.add_topic(topic, EVENTS_TYPE, lambda name: EVENT_PACKET_MSG)
        for _, events in cutter.packets_of(pieces()):
            packet = encoder.encode(events)
            stamp = int(stamp_origin_ns) + 1000 * (int(events['t'][0]) - cutter.t0)
            if not 0 <= stamp < MAX_STAMP_NS:
                raise EventFileError(f'{path}: a packet would be stamped {stamp / 1e9:.3f} s, '
                                     'outside the int32 seconds of a header stamp (0 to '
                                     '2038-01-19); give another --stamp-origin')
            msg = packet_type(
                header=header_type(stamp=time_type(sec=stamp // 10**9, nanosec=stamp % 10**9),
                                   frame_id=frame_id),
                height=chunks.height, width=chunks.width, seq=packet.seq,
                time_base=packet.time_base, encoding=packet.encoding, is_bigendian=False,
                events=np.frombuffer(packet.data, np.uint8))
            bag.write(connection, stamp, store.serialize_cdr(msg, EVENTS_TYPE))
            figures['packets'] += 1
            if figures['first_stamp_ns'] is None:
                figures['first_stamp_ns'] = stamp
            figures['last_stamp_ns'] = stamp
    except BaseException:  # interrupted or failed: no part of a bag under its name (a review)
        bag.discard()
        raise
    try:
        bag.close()
    except OSError as exc:
        if bag.failure is None:  # not a storage error (the bag appeared meanwhile)
            raise
        bag.discard()  # not closed (a full disk): nothing left either; convert again
        raise OSError(exc.errno, f'cannot write the bag {path}: {bag.failure}') from exc
    return figures


MAX_STAMP_NS = (2 ** 31) * 10 ** 9
"""A header stamp's ``sec`` is an int32: stamps from 0 up to 2038-01-19."""


NPZ_COPY_BYTES = 1 << 22
"""Bytes copied at a time from a spooled field into a ``.npz`` archive."""


def _write_npz_pieces(path: Path, chunks: EventChunks, pieces: Iterator[np.ndarray],
                      overwrite: bool) -> None:
    """
    Write ``pieces`` (of ``chunks``) to the ``.npz`` file ``path``, holding one at a time.

    Each field is spooled to an unnamed temporary file in ``path``'s folder (nothing is left
    behind if the process is killed) until the number of events, which the arrays' headers
    give, is known; then the archive is written atomically as ``np.savez_compressed`` would.
    """
    directory = path.parent if str(path.parent) else Path('.')
    directory.mkdir(parents=True, exist_ok=True)
    names = ('x', 'y', 'p', 't')
    with contextlib.ExitStack() as stack:
        spools = {k: stack.enter_context(tempfile.TemporaryFile(dir=directory)) for k in names}
        n = 0
        for piece in pieces:
            try:  # each event inside the sensor
                EventRecording(piece, chunks.width, chunks.height)
            except EventFileError as exc:
                raise EventFileError(f'{path}: {exc}') from None
            for k in names:
                spools[k].write(np.ascontiguousarray(piece[k]).tobytes())
            n += len(piece)
        scalars = {'width': chunks.width, 'height': chunks.height,
                   'label': -1 if chunks.label is None else chunks.label,
                   'format_version': NPZ_FORMAT_VERSION}
        with written_atomically(path, replace=overwrite) as tmp, \
                zipfile.ZipFile(tmp, 'w', zipfile.ZIP_DEFLATED, allowZip64=True) as archive:
            for k in names:
                spool = spools[k]
                spool.seek(0)
                with archive.open(f'{k}.npy', 'w', force_zip64=True) as member:
                    np.lib.format.write_array_header_1_0(member, {
                        'descr': np.lib.format.dtype_to_descr(EVENT_DTYPE[k]),
                        'fortran_order': False, 'shape': (n,)})
                    while True:
                        block = spool.read(NPZ_COPY_BYTES)
                        if not block:
                            break
                        member.write(block)
            for k, value in scalars.items():
                buffer = io.BytesIO()
                np.lib.format.write_array(buffer, np.asarray(np.int64(value)))
                archive.writestr(f'{k}.npy', buffer.getvalue())
    fsync_dir(directory)


def _check_bin_sensor(path: Path, width: int, height: int) -> None:
    """Refuse a sensor the N-MNIST ``.bin`` format cannot hold."""
    if width > nmnist.NMNIST_WIDTH or height > nmnist.NMNIST_HEIGHT:
        raise EventFileError(f'{path}: the N-MNIST format holds a 34 x 34 sensor, the '
                             f'recording is {width} x {height}; write a .npz file instead')


def _suffix(path: Path) -> str:
    """Return the lower-case suffix of ``path`` or raise for an unknown one."""
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise EventFileError(f'{path}: unknown event file type {suffix or "(no suffix)"!r} '
                             f'(expected one of {", ".join(SUFFIXES)})')
    return suffix


RAW_CHUNK_BYTES = 1 << 20
"""Bytes of evt3 words decoded, or of a ``.npz`` file's arrays read, at a time."""
RAW_HEADER_BYTES = 1 << 20
"""Longest ``%`` header of a ``.raw`` file read (real ones are a few hundred bytes)."""


_HEADER_TEXT = re.compile(rb'[\t\r\x20-\x7e\x80-\xff]*')
"""What a header line may hold: printable text (latin-1 and UTF-8 bytes), tabs, a CR."""


def parse_raw_header(data: bytes) -> Tuple[dict, int]:
    """
    Return the ``%`` header of a ``.raw`` file as ``{key: value}`` and the offset of the words.

    Each header line is ``% key value`` (``% end`` closes the header; files without it end
    their header at the first line that does not start with ``%`` or is not printable text:
    the words may begin with a ``%`` byte, an EVT_TIME_HIGH ``0x80 0x25`` for one). Keys keep
    their case.
    """
    fields, offset = {}, 0
    while offset < len(data) and data[offset:offset + 1] == b'%':
        end = data.find(b'\n', offset)
        end = len(data) if end < 0 else end
        raw = data[offset + 1:end]
        if not _HEADER_TEXT.fullmatch(raw):
            break  # binary: the words start here
        line = raw.decode('latin-1').strip()
        offset = end + 1
        if line == 'end':
            break
        key, _, value = line.partition(' ')
        if key:
            fields[key] = value.strip()
    return fields, min(offset, len(data))


def parse_sensor_size(text: str) -> Tuple[int, int]:
    """Return ``WxH`` (a sensor's size as a ``.raw`` header writes it) as ``(width, height)``."""
    width, _, height = text.lower().partition('x')
    try:
        size = (int(width), int(height))
    except ValueError:
        size = (0, 0)
    if min(size) < 1:
        raise EventFileError(f'expected WIDTHxHEIGHT in pixels (1280x720), got {text!r}')
    return size


def _raw_geometry(fields: dict, path: Path,
                  sensor_size: Optional[Tuple[int, int]] = None) -> Tuple[int, int]:
    """
    Return the sensor ``(width, height)`` a ``.raw`` header gives, else ``sensor_size``.

    ``sensor_size`` other than the header's is refused (EventFileError).
    """
    given = _header_size(fields, path)
    if sensor_size is not None:
        sensor_size = tuple(int(v) for v in sensor_size)
        if given is not None and given != sensor_size:
            raise EventFileError(f'{path}: its header gives a {given[0]}x{given[1]} sensor, '
                                 f'not {sensor_size[0]}x{sensor_size[1]}')
        return sensor_size
    if given is None:
        raise EventFileError(f'{path}: the .raw header gives no sensor size (expected '
                             'a "% format EVT3;height=H;width=W" or "% geometry WxH" '
                             'line, which older recordings lack): give it (--sensor WxH, the '
                             "event player's sensor parameter; e.g. 640x480 for a Gen3 VGA "
                             'sensor, 1280x720 for an IMX636)')
    return given


def _header_size(fields: dict, path: Path) -> Optional[Tuple[int, int]]:
    """Return the sensor ``(width, height)`` a ``.raw`` header gives, or None."""
    fmt = fields.get('format', '')
    name, _, options = fmt.partition(';')
    evt = fields.get('evt', '')
    if (name and name.strip().upper() != 'EVT3') or (not name and evt and evt != '3.0'):
        raise EventFileError(f'{path}: {fmt or "evt " + evt} data; only EVT 3.0 .raw files '
                             'are read')
    values = dict(item.partition('=')[::2] for item in options.split(';') if '=' in item)
    try:
        if 'width' in values and 'height' in values:
            return int(values['width']), int(values['height'])
        if 'geometry' in fields:
            width, _, height = fields['geometry'].partition('x')
            return int(width), int(height)
        if 'Width' in fields and 'Height' in fields:
            return int(fields['Width']), int(fields['Height'])
    except ValueError:
        raise EventFileError(f'{path}: the sensor size of the .raw header is not numbers '
                             f'({fields})') from None
    return None


def _raw_chunks(path: Path, progress: Callable[[int], None], piece_bytes: int = 0,
                sensor_size: Optional[Tuple[int, int]] = None) -> 'EventChunks':
    """
    Return the pieces of an EVT 3.0 ``.raw`` file (module docstring), read as they go.

    ``sensor_size``: where the header gives none (:func:`_raw_geometry`). An empty file is
    refused (it was said to give no sensor size).
    """
    from topspark_ros.core.events.codecs import make_decoder

    size = path.stat().st_size
    if size == 0:
        raise EventFileError(f'{path} is empty (0 bytes): no .raw recording (a recording '
                             'that never started, a copy that failed?)')
    with path.open('rb') as handle:
        head = handle.read(RAW_HEADER_BYTES)
    fields, offset = parse_raw_header(head)
    width, height = _raw_geometry(fields, path, sensor_size)
    try:
        decoder = make_decoder('evt3', width, height)
        decoder.trust_time_jumps = True  # one recorded stream: its quiet spells are true
    except ValueError as exc:
        raise EventFileError(f'{path}: {exc}') from None
    metadata = {'format': 'evt3 raw', 'header': fields}

    def pieces() -> Iterator[np.ndarray]:
        stitch = _ResetStitcher()
        with path.open('rb') as handle:
            handle.seek(offset)
            while True:
                words = handle.read(piece_bytes or RAW_CHUNK_BYTES)
                if not words:
                    break
                decoded = []
                _decode_keeping_resets(decoder, memoryview(words), decoded)
                progress(len(words))
                for chunk in decoded:
                    chunk = stitch(chunk, None)
                    if stitch.resets:  # as they are met: a player says so as it plays
                        metadata['sensor_resets'] = stitch.resets
                    yield chunk
        metadata['decoder'] = decoder.stats.as_dict()

    return EventChunks(width, height, pieces(), metadata=metadata, size=size - offset)


def _decode_keeping_resets(decoder, piece: memoryview, chunks: list) -> None:
    """
    Decode ``piece`` of a ``.raw`` file's words into ``chunks``, losing nothing to a reset.

    On a sensor reset the evt3 decoder drops the events its packet returned before it, so
    that a live stream goes back in time only between packets. A file is one stream read in
    pieces: a piece in which the clock was reset is decoded again in halves (from the state
    before it), down to the word that confirms the reset, so the events before it are kept
    and the recording goes back in time there (stitched by the reader, :class:`_ResetStitcher`).
    """
    before = copy.deepcopy(decoder.__dict__)
    resets = decoder.stats.time_resets
    out = decoder.decode(piece)
    if decoder.stats.time_resets == resets or len(piece) < 2 * decoder.word_bytes:
        chunks.append(out)
        return
    decoder.__dict__.update(before)
    half = len(piece) // 2 // decoder.word_bytes * decoder.word_bytes
    _decode_keeping_resets(decoder, piece[:half], chunks)
    _decode_keeping_resets(decoder, piece[half:], chunks)


def _raw_bytes(recording: EventRecording) -> bytes:
    """Return ``recording`` as the bytes of an EVT 3.0 ``.raw`` file."""
    from topspark_ros.core.events.codecs.evt3 import encode_evt3

    words = encode_evt3(recording.events, width=recording.width, height=recording.height)
    return _raw_header(recording.width, recording.height,
                       recording.metadata.get('header')) + words


def _raw_header(width: int, height: int, kept: Optional[dict] = None) -> bytes:
    """
    Return the ``%`` header of a ``.raw`` file of a ``width`` x ``height`` sensor.

    ``kept``: the header fields of the ``.raw`` recording it was read from (serial number,
    plugin, date, ...), written after ours (a conversion dropped them; a user review); the
    format and size are ours.
    """
    ours = {'evt': '3.0', 'format': f'EVT3;height={height};width={width}',
            'geometry': f'{width}x{height}'}
    kept = {k: v for k, v in (kept or {}).items()
            if k not in ours and k.lower() not in ('width', 'height')}
    kept.setdefault('integrator_name', 'topspark_ros')
    lines = [f'% {k} {v}'.rstrip() for k, v in {**ours, **kept}.items()] + ['% end']
    return ('\n'.join(lines) + '\n').encode('latin-1', errors='replace')  # as read


def read_bag_events(path: PathLike, topic: Optional[str] = None) -> EventRecording:
    """
    Read the EventPacket topic ``topic`` of a ROS 2 bag into one recording.

    ``topic`` may be left out when the bag has one image or event topic. Every packet is
    decoded in bag order by one decoder (lenient; its counters are in
    ``metadata['decoder']``). A sensor reset (a driver restarted: its clock starts again) is
    stitched: the events after it are shifted to follow the last one before it by the pause
    between the packets' stamps, so the recording stays one stream in time order
    (``metadata['sensor_resets']``; times are sensor times up to the first reset). Before, the
    sessions were overlaid, the duration was one session's and ``.raw`` refused it. A packet
    that does not deserialize is skipped and counted (``metadata['skipped_messages']``).
    Raises :class:`~topspark_ros.core.data.dataset.DatasetError` for an unreadable bag or
    topic, :class:`EventFileError` when it is not an event topic or the encoding or sensor size
    changes within it.
    """
    return open_bag_events(path, topic).read()


def open_bag_events(path: PathLike, topic: Optional[str] = None,
                    progress: Callable[[int], None] = lambda n: None) -> 'EventChunks':
    """
    Return the EventPacket topic ``topic`` of a bag as :class:`EventChunks` (one per packet).

    As :func:`read_bag_events`, a packet at a time: ``progress(1)`` per message read.
    """
    from topspark_ros.core.data import bag
    from topspark_ros.core.events.codecs import make_decoder

    reader = bag._open(path)
    try:
        chosen = bag._choose(path, bag._topics(reader), topic)
        if chosen.kind != 'events':
            raise EventFileError(f'{chosen.name} in bag {path} is {chosen.msgtype}, not '
                                 f'{bag.EVENTS_TYPE}')
        connections = [c for c in reader.connections if c.topic == chosen.name
                       and c.msgtype == chosen.msgtype]
        store = bag._typestore(connections)
        first = _first_packet(reader, connections, store, bag.EVENTS_TYPE)
    except BaseException:
        reader.close()
        raise
    if first is None:
        reader.close()
        unread = f' that can be read (all {chosen.count} fail)' if chosen.count else ''
        raise EventFileError(f'{chosen.name} in bag {path} holds no message{unread}')
    key = (str(first.encoding), int(first.width), int(first.height))
    metadata = {'format': f'bag {key[0]}', 'topic': chosen.name,
                'first_stamp_ns': first.header.stamp.sec * 10**9 + first.header.stamp.nanosec}

    def pieces() -> Iterator[np.ndarray]:
        decoder, stitch = make_decoder(*key), _ResetStitcher()
        skipped, first_skip = 0, ''
        try:
            for _, _, raw in reader.messages(connections=connections):
                progress(1)
                try:
                    msg = store.deserialize_cdr(raw, bag.EVENTS_TYPE)
                except Exception as exc:  # noqa: B902 - rosbags' SerdeError and more: one
                    skipped += 1  # message is skipped and counted, as eval and sweep do
                    first_skip = first_skip or f'{type(exc).__name__}: {exc}'
                    continue
                now = (str(msg.encoding), int(msg.width), int(msg.height))
                if now != key:
                    raise EventFileError(f'{chosen.name} in bag {path} changes from {key} to '
                                         f'{now} (encoding, width, height): one recording per '
                                         'stream')
                stamp = msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec
                chunk = decoder.decode(msg.events, seq=int(msg.seq),
                                       time_base=int(msg.time_base),
                                       is_bigendian=bool(msg.is_bigendian), stamp_ns=stamp)
                yield stitch(chunk, stamp)
        finally:
            reader.close()
        metadata['decoder'] = decoder.stats.as_dict()
        if skipped:
            metadata.update(skipped_messages=skipped, first_skipped=first_skip)
        if stitch.resets:
            metadata['sensor_resets'] = stitch.resets

    return EventChunks(key[1], key[2], pieces(), metadata=metadata, size=chosen.count)


class _ResetStitcher:
    """
    Shift the packets after a sensor reset to follow the last event before it.

    The decoder keeps a stream in time order, so a packet that starts before the last event
    is one after a reset (``time_resets``, or ``stream_restarts``: seq from 0 again). Packet
    stamps are the packets' ends: the pause is their interval less the new packet's span. A
    ``.raw`` file's pieces have no stamps (None): the events after a reset follow the last
    one before it 1 us later.
    """

    def __init__(self) -> None:
        """Start with no shift."""
        self.offset_us, self.last_t, self.last_stamp, self.resets = 0, None, None, 0

    def __call__(self, chunk: np.ndarray, stamp_ns: Optional[int]) -> np.ndarray:
        """Return ``chunk`` (a packet's events, stamped ``stamp_ns``) in the stream's time."""
        if self.last_t is not None and chunk.size \
                and int(chunk['t'][0]) + self.offset_us < self.last_t:
            span_us = int(chunk['t'][-1]) - int(chunk['t'][0])
            gap_us = max(1, (stamp_ns - self.last_stamp) // 1000 - span_us) \
                if self.last_stamp and stamp_ns is not None else 1
            self.offset_us = self.last_t + gap_us - int(chunk['t'][0])
            self.resets += 1
        if chunk.size:
            if self.offset_us:
                chunk = chunk.copy()
                chunk['t'] += self.offset_us
            self.last_t = int(chunk['t'][-1])
        self.last_stamp = stamp_ns
        return chunk


def _first_packet(reader, connections, store, msgtype: str):
    """Return the first packet of ``connections`` that deserializes, or None."""
    for _, _, raw in reader.messages(connections=connections):
        try:
            return store.deserialize_cdr(raw, msgtype)
        except Exception:  # noqa: B902 - skipped here as when the stream is read
            continue
    return None


def read_event_file(path: PathLike) -> EventRecording:
    """
    Read an event file (``.bin`` N-MNIST, ``.npz`` or ``.raw``, see the module docstring).

    Raises
    ------
        EventFileError: unknown suffix, unreadable or malformed file.

    """
    path = Path(path)
    if _suffix(path) == '.raw':
        try:
            return _raw_chunks(path, lambda n: None).read()
        except OSError as exc:
            raise EventFileError(f'cannot read {path}: {exc}') from None
    if _suffix(path) == '.bin':
        try:
            events = nmnist.read_nmnist(path)
        except nmnist.NMNISTFormatError as exc:
            raise EventFileError(str(exc)) from None
        name = path.parent.name
        label = int(name) if name.isdigit() and len(name) == 1 else None
        return EventRecording(events, nmnist.NMNIST_WIDTH, nmnist.NMNIST_HEIGHT, label,
                              {'format': 'nmnist'})
    try:  # .npz
        return _npz_chunks(path, lambda n: None).read()
    except OSError as exc:
        raise EventFileError(f'cannot read {path}: {exc}') from None


NPZ_FIELDS = ('x', 'y', 'p', 't')
"""The event arrays of a ``.npz`` event file, one element per event."""


def _npz_chunks(path: Path, progress: Callable[[int], None],
                piece_bytes: int = 0) -> EventChunks:
    """
    Return the events of a ``.npz`` event file as pieces read as they go (module docstring).

    The four arrays are read side by side from their members of the archive, ``piece_bytes``
    of them at a time, so an ``events info``, a conversion or a player holds one piece of a
    recording of any length (it held the whole recording twice: 1.24 GB for an ``events
    info`` of 40 M events, 20 s at 2 Mev/s). Arrays of other integer types are cast as numpy
    assigns them; each piece is checked against the sensor as it is read.
    """
    with _open_npz(path) as archive:
        scalars, layout = _npz_layout(path, archive)
    width, height, label = scalars['width'], scalars['height'], scalars.get('label', -1)
    n = layout['t'][1][0]
    try:  # the sensor size, up front
        EventRecording(np.zeros(0, EVENT_DTYPE), width, height)
    except EventFileError as exc:
        raise EventFileError(f'{path}: {exc}') from None
    per_event = sum(layout[k][2].itemsize for k in NPZ_FIELDS)
    step = max(1, (piece_bytes or RAW_CHUNK_BYTES) // per_event)
    if not _npz_in_time_order(path, layout['t'], n, step):
        # One piece, which the packet cutter sorts as it did any file read whole: out of
        # order across pieces, the player stopped and a conversion to a bag failed (two takes
        # in one file, a writer's jitter; a review of this change).
        step = max(n, 1)
    metadata = {'format': 'npz', 'events': n}

    def pieces() -> Iterator[np.ndarray]:
        with _open_npz(path) as archive, contextlib.ExitStack() as stack:
            blocks = [_blocks(stack.enter_context(archive.open(layout[k][0])), layout[k][2],
                              n, step, path, k) for k in NPZ_FIELDS]
            for arrays in zip(*blocks):
                count = len(arrays[0])
                piece = np.empty(count, EVENT_DTYPE)
                for k, array in zip(NPZ_FIELDS, arrays):
                    piece[k] = array
                try:
                    EventRecording(piece, width, height)
                except EventFileError as exc:
                    raise EventFileError(f'{path}: {exc}') from None
                progress(count * per_event)
                yield piece

    return EventChunks(width, height, pieces(), label=None if label < 0 else label,
                       metadata=metadata, size=n * per_event)


def _npz_in_time_order(path: Path, field: tuple, n: int, step: int) -> bool:
    """Return whether the ``t`` array (``field``: its layout) never goes back, read in steps."""
    name, _, dtype = field
    last = None
    with _open_npz(path) as archive, archive.open(name) as member:
        for t in _blocks(member, dtype, n, step, path, 't'):
            if np.any(t[1:] < t[:-1]) or (last is not None and t[0] < last):
                return False
            last = t[-1]
    return True


def _blocks(member, dtype: np.dtype, n: int, step: int, path: Path,
            name: str) -> Iterator[np.ndarray]:
    """Yield the ``n`` elements of the ``.npy`` ``member`` of ``dtype``, ``step`` at a time."""
    _npy_header(member, path, name)
    for start in range(0, n, step):
        size = min(step, n - start) * dtype.itemsize
        with _member_errors(path, name):
            data = member.read(size)
        if len(data) != size:
            raise EventFileError(f'{path}: {name} ends early (the archive is truncated)')
        yield np.frombuffer(data, dtype)


@contextlib.contextmanager
def _open_npz(path: Path) -> Iterator[zipfile.ZipFile]:
    """Open the ``.npz`` archive ``path``; what is no archive is an :class:`EventFileError`."""
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, EOFError, ValueError) as exc:
        why = 'not a numpy archive'
        with contextlib.suppress(OSError):
            with path.open('rb') as handle:
                if handle.read(6) == b'\x93NUMPY':
                    why = 'a single array (.npy), not an archive of arrays'
        raise EventFileError(f'cannot read {path} as a .npz event file: {why} ({exc})') \
            from None
    with archive:
        yield archive


def _npz_layout(path: Path, archive: zipfile.ZipFile) -> Tuple[dict, dict]:
    """
    Return the scalars of an event archive and ``{field: (member, shape, dtype)}``.

    Raises
    ------
        EventFileError: fields missing, of other shapes, or of types that are not numbers.

    """
    names = _array_names(archive)
    missing = [k for k in NPZ_FIELDS + ('width', 'height') if k not in names]
    if missing:
        raise EventFileError(f'{path}: not an event file (missing {", ".join(missing)})')
    scalars = {}
    for k in ('width', 'height', 'label', 'format_version'):
        if k in names:
            with archive.open(names[k]) as member:
                value = _read_npy(member, path, k)
            whole = value.dtype.kind in 'iub' or (value.dtype.kind == 'f' and value.size == 1
                                                  and float(value.reshape(())).is_integer())
            if value.shape not in ((), (1,)) or not whole:  # 64.0 is 64, as it was read
                raise EventFileError(f'{path}: {k} must be an integer, got {value!r}')
            scalars[k] = int(value.reshape(()))
    version = scalars.get('format_version', NPZ_FORMAT_VERSION)
    if version != NPZ_FORMAT_VERSION:
        raise EventFileError(f'{path}: event file format version {version}, this reader '
                             f'knows {NPZ_FORMAT_VERSION}')
    layout = {}
    for k in NPZ_FIELDS:
        with archive.open(names[k]) as member:
            shape, dtype = _npy_header(member, path, k)
        layout[k] = (names[k], shape, dtype)
    n = layout['t'][1][0] if len(layout['t'][1]) == 1 else None
    if n is None or any(layout[k][1] != (n,) for k in NPZ_FIELDS):
        raise EventFileError(f'{path}: x, y, p, t must be 1-D arrays of one length, got '
                             + ', '.join(f'{k} {layout[k][1]}' for k in NPZ_FIELDS))
    return scalars, layout


@contextlib.contextmanager
def _member_errors(path: Path, name: str) -> Iterator[None]:
    """Turn what reading the member ``name`` of a damaged archive raises into EventFileError."""
    try:
        yield
    except (ValueError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        raise EventFileError(f'cannot read {path} as a .npz event file: {name}: {exc}') \
            from None


def _npy_header(member, path: Path, name: str) -> Tuple[tuple, np.dtype]:
    """Read the ``.npy`` header of ``member``; return the array's shape and dtype."""
    with _member_errors(path, name):
        version = np.lib.format.read_magic(member)
        read = {(1, 0): np.lib.format.read_array_header_1_0,
                (2, 0): np.lib.format.read_array_header_2_0}.get(version)
        if read is None:
            raise ValueError(f'.npy format version {version[0]}.{version[1]}')
        shape, _, dtype = read(member)
    if dtype.hasobject or dtype.kind not in 'iub':
        raise EventFileError(f'{path}: {name} must hold integers, got {dtype}')
    return tuple(shape), dtype


def _read_npy(member, path: Path, name: str) -> np.ndarray:
    """Read a small array from ``member`` (no pickles)."""
    with _member_errors(path, name):
        return np.lib.format.read_array(member, allow_pickle=False)


def npz_names(path: PathLike) -> set:
    """
    Return the names of the arrays in the ``.npz`` archive ``path``, reading none of them.

    Raises
    ------
        EventFileError: not a readable ``.npz`` archive (empty, a plain ``.npy`` array,
        another kind of file).

    """
    with _open_npz(Path(path)) as archive:
        return set(_array_names(archive))


def _array_names(archive: zipfile.ZipFile) -> dict:
    """Return ``{array name: member name}`` of a numpy archive."""
    return {Path(n).stem: n for n in archive.namelist() if n.endswith('.npy')}


def write_event_file(path: PathLike, recording: EventRecording, *,
                     overwrite: bool = False) -> None:
    """
    Write ``recording`` to ``path`` in the format its suffix names, atomically.

    ``.bin`` needs a sensor of at most 34 x 34 and ``0 <= t < 2**23`` us (shift the events
    to start at 0); the label and metadata are not stored there. ``.raw`` needs a sensor of
    at most 2048 x 2048 and events sorted by time; it stores no label either. An existing
    ``path`` is replaced only with ``overwrite`` (a user's recording is never lost to a
    mistyped name); the file appears whole or not at all.

    Raises
    ------
        EventFileError: unknown suffix or a recording the format cannot hold.
        FileExistsError: ``path`` exists and ``overwrite`` is False.

    """
    path = Path(path)
    suffix = _suffix(path)
    if not overwrite and os.path.lexists(path):  # before the work of encoding
        raise FileExistsError(f'{path} exists; not replacing it')
    if suffix == '.raw':
        from topspark_ros.core.events.codecs import EventEncodeError
        try:
            data = _raw_bytes(recording)
        except (EventEncodeError, ValueError) as exc:
            raise EventFileError(f'{path}: {exc}') from None
    elif suffix == '.bin':
        _check_bin_sensor(path, recording.width, recording.height)
        t = recording.events['t']
        if t.size and int(t.max()) >= nmnist.TIMESTAMP_WRAP_US:  # said for the CLI's user
            first, last = int(t.min()), int(t.max())
            raise EventFileError(
                f'{path}: a .bin file holds times below 2**23 us (8.39 s); this recording '
                + (f'lasts {(last - first) / 1e6:.2f} s: write a .npz file instead'
                   if last - first >= nmnist.TIMESTAMP_WRAP_US or first == 0 else
                   f'runs from {first} to {last} us: shift it to start at 0 (convert '
                   '--start-at-zero)'))
        try:
            data = nmnist.encode_nmnist(recording.events)
        except nmnist.NMNISTFormatError as exc:
            raise EventFileError(f'{path}: {exc}') from None
    else:
        events, buffer = recording.events, io.BytesIO()
        np.savez_compressed(
            buffer, x=events['x'], y=events['y'], p=events['p'], t=events['t'],
            width=np.int64(recording.width), height=np.int64(recording.height),
            label=np.int64(-1 if recording.label is None else recording.label),
            format_version=np.int64(NPZ_FORMAT_VERSION))
        data = buffer.getvalue()
    directory = path.parent if str(path.parent) else Path('.')
    directory.mkdir(parents=True, exist_ok=True)
    atomic_write(directory, f'.{path.name}.', data, path, replace=overwrite)
    fsync_dir(directory)
