"""
What every format shares: the stream decoder and encoder, the decoder state, the errors.

:class:`StreamDecoder` does everything a packet needs before and after the format's numba
kernel: it takes the bytes (any buffer), refuses packets over ``max_packet_bytes``, drops (or,
strict, refuses) a truncated word, checks the ``time_base``, follows the sequence numbers
(gaps and restarts, see :mod:`topspark_ros.core.events.codecs`), byte-swaps big-endian words,
and commits the state and counters only when the packet decoded (strict mode: a packet that
raises changes nothing). A format subclasses it with its word size, word type, the sensor size
it can address and :meth:`StreamDecoder._decode_words`, which runs its kernel
(:class:`TimeBaseDecoder` for the formats whose times count from the packet's ``time_base``).
:class:`StreamEncoder` is the same for the other direction (:class:`TimeBaseEncoder`).

The decoder state is one ``int64 [N_STATE]`` vector (indices ``S_*``), the same layout for
every format (each uses the entries it needs), so that the stream logic here can forget or
reset it without knowing the format. The kernels count into the vector of
:mod:`~topspark_ros.core.events.codecs.stats` and report a strict-mode problem as one of the
codes ``E_*``.
"""

from dataclasses import dataclass
from typing import ClassVar, Optional, Tuple, Union

import numba
import numpy as np

from topspark_ros.core.events import empty_events, EVENT_DTYPE
from topspark_ros.core.events.codecs.stats import (C_EVENTS, C_INVALID, C_NO_STATE, C_OTHER_WORDS,
                                                   C_OUT_OF_SENSOR, C_PADDING, C_TIME_BACKWARDS,
                                                   C_TIME_REFUSED, C_TIME_RESETS, C_TIME_RESYNCS,
                                                   C_TIME_WRAPS, C_TRIGGERS, C_UNKNOWN_WORDS,
                                                   C_WORDS, DecoderStats, N_COUNTS)

JIT = {'cache': True, 'nogil': True}
"""Options of every codec kernel (``numba.njit``)."""

SEQ_MODULUS = 1 << 64
"""``EventPacket.seq`` is a uint64: it wraps around to 0 after ``2^64 - 1``."""
MAX_SEQUENCE_GAP = 1 << 24
"""Largest forward jump of ``seq`` read as lost packets (4.7 h at 1 kHz); larger is a restart."""


def sequence_step(last: Optional[int], seq: int) -> Tuple[int, int, int]:
    """
    Return ``(gaps, lost, restarts)`` of a packet numbered ``seq`` after one numbered ``last``.

    The next number (``2^64 - 1`` to 0 included) is none of them; a jump forward of up to
    :data:`MAX_SEQUENCE_GAP` is one gap of that many lost packets; a step back or a longer
    jump is a restart (the driver started again). A repeat is none of them: a publisher that
    leaves ``seq`` as it is (0) does not number its packets (each was a restart, and an evt3
    stream so lost 87 % of its events; a review). Nothing before the first packet.
    """
    if last is None:
        return 0, 0, 0
    step = (int(seq) - int(last)) % SEQ_MODULUS
    if step in (0, 1):
        return 0, 0, 0
    if 1 < step <= MAX_SEQUENCE_GAP + 1:
        return 1, step - 1, 0
    return 0, 0, 1


# Decoder state (int64 vector) indices.
S_Y = 0            # current row, -1 unknown
S_BASE = 1         # current vector base x, -1 unknown
S_POL = 2          # polarity of the vector words
S_HAVE_HIGH = 3    # 0 unknown, 1 known, 2 a hint after a sequence gap (read forward from it)
S_HIGH = 4         # absolute time high (units of 4096 us; may go below 0 on corrupt data)
S_HAVE_LOW = 5
S_LOW = 6
S_LAST_T = 7       # time of the last returned event (0 before any)
S_CAND = 8         # candidate time high of an implausible jump (absolute, like S_HIGH)
S_VOTES = 9        # EVT_TIME_HIGH words agreeing with the candidate (0: none pending)
S_STEP = 10        # evt3: the largest forward EVT_TIME_HIGH step this packet takes at once
#                    (0: the default; set per packet from its stamp, see Evt3Decoder)
N_STATE = 11

# Kernel error codes (strict mode).
E_NONE = 0
E_UNKNOWN_WORD = 1
E_OUT_OF_SENSOR = 2
E_TIME_BACKWARDS = 3


class EventDecodeError(ValueError):
    """An event packet cannot be decoded (base class of the codecs' decoding errors)."""


class UnknownEncodingError(EventDecodeError):
    """The packet's ``encoding`` is not one of the supported encodings."""


class MalformedPacketError(EventDecodeError):
    """A packet's bytes break the encoding's rules (raised in strict mode)."""


class PacketTooLargeError(EventDecodeError):
    """A packet is larger than the decoder's ``max_packet_bytes`` (refused in both modes)."""


class EventEncodeError(ValueError):
    """Events cannot be encoded (unsorted times, coordinates outside the sensor, ...)."""


BytesLike = Union[bytes, bytearray, memoryview, np.ndarray]


def as_uint8(data) -> np.ndarray:
    """Return ``data`` (bytes-like or uint8 array) as a 1-D uint8 array without copying."""
    if type(data) is bytes or type(data) is bytearray:
        return np.frombuffer(data, dtype=np.uint8)
    if isinstance(data, np.ndarray):
        if data.dtype != np.uint8:
            raise TypeError(f'event data must be uint8, got an array of {data.dtype}')
        return np.ascontiguousarray(data.reshape(-1))
    try:
        view = memoryview(data)
    except TypeError:
        raise TypeError('event data must be bytes, bytearray, memoryview or a uint8 array, '
                        f'got {type(data).__name__}') from None
    return np.frombuffer(view.cast('B') if view.format != 'B' or view.ndim != 1 else view,
                         dtype=np.uint8)


def check_size(encoding: str, width: int, height: int, max_width: int,
               max_height: int) -> Tuple[int, int]:
    """Validate the sensor size for ``encoding`` (at most ``max_width x max_height``)."""
    width, height = int(width), int(height)
    if not (1 <= width <= max_width and 1 <= height <= max_height):
        raise ValueError(f'sensor size {width}x{height} is outside what {encoding} can address '
                         f'(1..{max_width} x 1..{max_height}); check the packet width/height')
    return width, height


def fresh_state(state: np.ndarray) -> None:
    """Put ``state`` (``int64 [N_STATE]``) in the start-of-stream state."""
    state[:] = 0
    state[S_Y] = -1
    state[S_BASE] = -1


def forget_stream_state(state: np.ndarray) -> None:
    """
    Forget what a lost packet may have changed (keep the last returned time).

    The time high becomes a hint (state 2): the next EVT_TIME_HIGH is read as the nearest
    time high at or after it (up to 16.8 s later), since lost packets only move time
    forward; this keeps the wrap-around count.
    """
    state[S_Y] = -1
    state[S_BASE] = -1
    if state[S_HAVE_HIGH] != 0:
        state[S_HAVE_HIGH] = 2
    state[S_HAVE_LOW] = 0
    state[S_VOTES] = 0


@numba.njit(**JIT)
def event_bound(words, events_per_word):
    """Return the number of events ``words`` hold (``events_per_word``: by 16-bit word)."""
    n = 0
    for i in range(words.size):
        n += events_per_word[words[i]]
    return n


class StreamDecoder:
    """
    Stateful decoder of the packets of one event stream (one topic of one camera).

    Make it with :func:`~topspark_ros.core.events.codecs.make_decoder`. Feed it the packets in
    the order they arrive; it keeps what the encoding carries from packet to packet (evt3: row,
    vector base, time and its wrap-arounds; libcaer_cmp: column, vector base row, polarity;
    all: the last returned time, the last sequence number).

    Parameters
    ----------
    width, height : int
        Sensor size in pixels; events outside it are skipped (or raise in strict mode).
    strict : bool
        ``False`` (default): count and skip malformed data. ``True``: raise
        :class:`MalformedPacketError` at the first problem; the packet then changes nothing.
    max_packet_bytes : int, optional
        Largest packet decoded (bytes; None: any). A larger one is refused before anything
        is allocated for it: :class:`PacketTooLargeError` (in both modes), counted in
        ``stats.packets_refused`` and ``stats.bytes_refused``, and the evt3 stream state is
        forgotten as after a lost packet. Decoding one packet allocates at most
        ``13 x (events in it) + 16`` bytes, and a packet holds at most 6 events per byte
        (evt3 VECT_12 words), 4 (libcaer_cmp VECT_8 words) or 1/8 (mono, libcaer): the bound
        also bounds the memory per packet.

    A format's subclass sets the class attributes below and implements
    :meth:`_decode_words`.

    """

    encoding: ClassVar[str]
    """The ``EventPacket.encoding`` decoded."""
    word_bytes: ClassVar[int]
    """Size of one word in bytes; the trailing bytes of a packet that are not a word are cut."""
    word_dtype: ClassVar[np.dtype]
    """Little-endian dtype the kernel reads (each of its items byte-swapped for big-endian)."""
    max_width: ClassVar[int]
    """Largest sensor width the encoding can address."""
    max_height: ClassVar[int]
    """Largest sensor height the encoding can address."""
    needs_time_base: ClassVar[bool] = False
    """Whether event times count from the packet's ``time_base`` (ns), which is then needed."""

    def __init__(self, width: int, height: int, *, strict: bool = False,
                 max_packet_bytes: Optional[int] = None):
        self.width, self.height = check_size(self.encoding, width, height, self.max_width,
                                             self.max_height)
        self.strict = bool(strict)
        if max_packet_bytes is not None and int(max_packet_bytes) < 1:
            raise ValueError(f'max_packet_bytes must be >= 1 or None, got {max_packet_bytes}')
        self.max_packet_bytes = None if max_packet_bytes is None else int(max_packet_bytes)
        self._big_dtype = self.word_dtype.newbyteorder('>')
        self._state = np.zeros(N_STATE, np.int64)
        self._counts = np.zeros(N_COUNTS, np.int64)
        self._packets = self._bytes = self._truncated = self._swapped = 0
        self._gaps = self._lost = self._restarts = self._unnumbered = 0
        self._refused = self._refused_bytes = 0
        self._last_seq: Optional[int] = None
        fresh_state(self._state)

    def reset(self) -> None:
        """Start a new stream: forget all state and zero the counters."""
        fresh_state(self._state)
        self._counts = np.zeros(N_COUNTS, np.int64)
        self._packets = self._bytes = self._truncated = self._swapped = 0
        self._gaps = self._lost = self._restarts = self._unnumbered = 0
        self._refused = self._refused_bytes = 0
        self._last_seq = None

    @property
    def stats(self) -> DecoderStats:
        """Return a snapshot of the counters (:class:`DecoderStats`)."""
        c = self._counts
        return DecoderStats(
            packets=self._packets, bytes=self._bytes, words=int(c[C_WORDS]),
            events=int(c[C_EVENTS]), triggers=int(c[C_TRIGGERS]),
            other_words=int(c[C_OTHER_WORDS]), unknown_words=int(c[C_UNKNOWN_WORDS]),
            truncated_bytes=self._truncated, no_state_events=int(c[C_NO_STATE]),
            out_of_sensor=int(c[C_OUT_OF_SENSOR]), time_backwards=int(c[C_TIME_BACKWARDS]),
            time_wraps=int(c[C_TIME_WRAPS]), time_jumps_refused=int(c[C_TIME_REFUSED]),
            time_resyncs=int(c[C_TIME_RESYNCS]), time_resets=int(c[C_TIME_RESETS]),
            padding_words=int(c[C_PADDING]), bigendian_packets=self._swapped,
            invalid_events=int(c[C_INVALID]),
            packets_refused=self._refused,
            bytes_refused=self._refused_bytes, sequence_gaps=self._gaps,
            packets_lost=self._lost, stream_restarts=self._restarts,
            unnumbered_packets=self._unnumbered)

    def decode(self, data: BytesLike, *, seq: Optional[int] = None,
               time_base: Optional[int] = None, is_bigendian: bool = False,
               stamp_ns: Optional[int] = None) -> np.ndarray:
        """
        Decode the ``events`` bytes of one packet of this stream.

        Parameters
        ----------
        data : bytes, bytearray, memoryview or uint8 array
            The packet's ``events`` field.
        seq : int, optional
            The packet's ``seq``; gaps and restarts are detected when given (see
            :mod:`topspark_ros.core.events.codecs`).
        time_base : int, optional
            The packet's ``time_base`` (nanoseconds); required for ``mono``, ``libcaer`` and
            ``libcaer_cmp``, unused by evt3.
        is_bigendian : bool
            The packet's ``is_bigendian`` (words in big-endian byte order).
        stamp_ns : int, optional
            The packet's header stamp (nanoseconds): how far an evt3 stream's clock may have
            gone on since the packet before (:class:`~topspark_ros.core.events.codecs.evt3.
            Evt3Decoder`); unused by the other formats.

        Returns
        -------
        numpy.ndarray
            ``EVENT_DTYPE [n]``, ``t`` in microseconds, non-decreasing across the stream.

        Raises
        ------
        MalformedPacketError
            In strict mode, for the problems listed in :mod:`topspark_ros.core.events.codecs`;
            also, in both modes, for a packet without the ``time_base`` its encoding needs,
            or a negative one.
        PacketTooLargeError
            In both modes, for a packet larger than ``max_packet_bytes`` (counted).
        TypeError
            If ``data`` is not bytes-like.

        """
        buf = as_uint8(data)
        word_size = self.word_bytes
        n_bytes = buf.size
        if self.max_packet_bytes is not None and n_bytes > self.max_packet_bytes:
            self._refuse(n_bytes, seq)
            raise PacketTooLargeError(
                f'{self.encoding} packet of {n_bytes} bytes refused: larger than '
                f'max_packet_bytes ({self.max_packet_bytes})')
        extra = n_bytes % word_size
        if extra and self.strict:
            raise MalformedPacketError(
                f'{self.encoding} packet of {n_bytes} bytes is not a whole number of '
                f'{word_size}-byte words (truncated packet?)')
        if self.needs_time_base:
            if time_base is None:
                raise MalformedPacketError(f'{self.encoding} packets need the message '
                                           'time_base (pass time_base=msg.time_base)')
            time_base = int(time_base)
            if not 0 <= time_base < (1 << 62):
                raise MalformedPacketError(f'{self.encoding} time_base {time_base} ns is out '
                                           'of range')
        state = self._state
        gaps, lost, restarts = 0, 0, 0
        if seq is not None:
            seq = int(seq) % SEQ_MODULUS
            gaps, lost, restarts = sequence_step(self._last_seq, seq)
            self._unnumbered += seq == self._last_seq
            if gaps:
                state = state.copy()
                forget_stream_state(state)
            elif restarts:
                state = state.copy()
                fresh_state(state)
        words_u8 = buf[:n_bytes - extra]
        dtype = self._big_dtype if is_bigendian else self.word_dtype
        words = words_u8.view(dtype) if words_u8.size else np.zeros(0, dtype)
        if is_bigendian or not words.flags.aligned:
            words = words.astype(dtype.newbyteorder('='))
        if words.flags.writeable:  # one compiled signature: read-only words (as from bytes)
            words = words.view()
            words.flags.writeable = False
        self._note_stamp(stamp_ns, state)
        out, n, state, counts, err, err_at = self._decode_words(words, time_base, state)
        if err != E_NONE:
            raise MalformedPacketError(self._error_message(err, int(err_at), words, state))
        self._counts = counts
        self._state = state
        self._packets += 1
        self._bytes += n_bytes
        self._gaps += gaps
        self._lost += lost
        self._restarts += restarts
        self._truncated += extra
        self._swapped += bool(is_bigendian)
        if seq is not None:
            self._last_seq = seq
        return out[:n] if n + 1 == out.size else out[:n].copy()

    def _note_stamp(self, stamp_ns: Optional[int], state: np.ndarray) -> None:
        """Take note of a packet's header stamp before its words are decoded (no-op here)."""

    def _decode_words(self, words: np.ndarray, time_base: Optional[int],
                      state: np.ndarray) -> tuple:
        """
        Decode the packet's ``words`` (native byte order, read-only) from ``state``.

        Returns ``(out, n, state, counts, error_code, word_index)``: ``out`` (EVENT_DTYPE,
        one spare row past the events) holds the ``n`` events; ``state`` and ``counts`` are
        what the decoder keeps if ``error_code`` is ``E_NONE`` (``word_index``: where a strict
        decoder stopped). Neither the decoder's state nor its counters may change otherwise.
        """
        raise NotImplementedError

    def _refuse(self, n_bytes: int, seq: Optional[int]) -> None:
        """Count a refused packet; forget what it may have changed, as for a lost packet."""
        self._refused += 1
        self._refused_bytes += n_bytes
        state = self._state.copy()
        forget_stream_state(state)
        self._state = state
        if seq is not None:
            self._last_seq = int(seq) % SEQ_MODULUS

    def _word_at(self, words: np.ndarray, at: int) -> int:
        """Return word ``at`` of a packet as an unsigned int (for error messages)."""
        return int(words[at]) % (1 << 64)

    def _unknown_word(self, word: int) -> str:
        """Say what makes ``word`` an unknown word (``E_UNKNOWN_WORD``)."""
        return f'has the reserved type 0x{word >> 12:x}'

    def _error_message(self, err: int, at: int, words: np.ndarray, state: np.ndarray) -> str:
        """Describe a strict-mode error at word ``at``."""
        word = self._word_at(words, at)
        digits = 2 * self.word_bytes
        where = f'{self.encoding} word {at} (0x{word:0{digits}x})'
        if err == E_UNKNOWN_WORD:
            return f'{where} {self._unknown_word(word)}'
        if err == E_OUT_OF_SENSOR:
            return (f'{where} holds an event outside the {self.width}x{self.height} sensor; '
                    'check the packet width/height')
        return (f'{where}: time went backwards to before the last event '
                f'(t={int(state[S_LAST_T])} us)')


REANCHOR_US = 100_000
"""How far back (us) a whole packet must lie to re-anchor the stream (see TimeBaseDecoder)."""


class TimeBaseDecoder(StreamDecoder):
    """
    A decoder of a format whose event times count from the packet's ``time_base`` (ns).

    A format sets :attr:`kernel` and :meth:`_max_events`. The kernel is called as
    ``kernel(words, time_base_ns, width, height, strict, state, counts, out)`` on copies of the
    state and counters and returns ``(n_events, error_code, word_index)``.

    Events that go back in time are skipped (``time_backwards``), so one event time far ahead
    (a flipped bit) would make every later event "back in time" until the stream caught up:
    35.8 min of libcaer time. A packet none of whose events could be returned, because all of
    them lie back in time, the first more than :data:`REANCHOR_US` before the last event
    returned, is decoded again from no time limit: the stream re-anchors on it
    (``time_resets``; the output goes back in time between packets, as after a sensor reset:
    consumers treat it as a restart). A corrupt time then costs at most the rest of its
    packet. (Not on ``time_base``: libcaer_driver's uncompressed encoding puts the start of
    the 31-bit timestamp epoch there, not the packet's first event.) DDS does not reorder
    the packets of one publisher, so a packet that late is not an old one arriving late.
    """

    needs_time_base = True
    kernel: ClassVar  # a numba kernel (a staticmethod)

    def _max_events(self, words: np.ndarray) -> int:
        """Return an upper bound of the events in ``words``."""
        raise NotImplementedError

    def _decode_words(self, words: np.ndarray, time_base: Optional[int],
                      state: np.ndarray) -> tuple:
        out = np.empty(self._max_events(words) + 1, EVENT_DTYPE)
        before = state
        state, counts = before.copy(), self._counts.copy()
        n, err, err_at = self.kernel(words, time_base, self.width, self.height, self.strict,
                                     state, counts, out)
        went_back = counts[C_TIME_BACKWARDS] > self._counts[C_TIME_BACKWARDS]
        if n == 0 and err == E_NONE and went_back:
            # Every event lay back in time: the stream's time may be the wrong one.
            again, again_counts = before.copy(), self._counts.copy()
            again[S_LAST_T] = 0  # no limit (times are >= 0)
            m, err, err_at = self.kernel(words, time_base, self.width, self.height,
                                         self.strict, again, again_counts, out)
            if m and int(out['t'][0]) < int(before[S_LAST_T]) - REANCHOR_US:
                again_counts[C_TIME_RESETS] += 1
                return out, m, again, again_counts, err, err_at
            n, err, err_at = 0, E_NONE, -1  # a little back only: skipped, as decoded first
        return out, n, state, counts, err, err_at


# ---------------------------------------------------------------------------------------------
# Encoders

def check_events(events: np.ndarray, width: int, height: int) -> np.ndarray:
    """Validate events for encoding (dtype, sensor bounds, sorted non-negative times)."""
    events = np.asarray(events)
    if events.dtype != EVENT_DTYPE:
        if events.dtype.names is None or not {'x', 'y', 'p', 't'} <= set(events.dtype.names):
            raise EventEncodeError(f'events must be an EVENT_DTYPE array, got {events.dtype}')
        converted = empty_events(events.size)
        for name in ('x', 'y', 'p', 't'):
            converted[name] = events[name]
        events = converted
    events = events.reshape(-1)
    if events.size:
        if int(events['x'].max()) >= width or int(events['y'].max()) >= height:
            raise EventEncodeError(f'events lie outside the {width}x{height} sensor')
        if int(events['p'].max()) > 1:
            raise EventEncodeError('event polarity must be 0 (OFF) or 1 (ON)')
        t = events['t']
        if int(t[0]) < 0:
            raise EventEncodeError('event times must be >= 0 us')
        if events.size > 1 and bool(np.any(t[1:] < t[:-1])):
            raise EventEncodeError('event times must be non-decreasing (sort the events by t)')
    return events


def default_time_base(events: np.ndarray) -> int:
    """Return the ``time_base`` (ns) a packet of ``events`` gets by default: the first event's."""
    return int(events['t'][0]) * 1000 if len(events) else 0


@dataclass
class EncodedPacket:
    """
    The fields of one ``EventPacket`` made by :class:`StreamEncoder`.

    Attributes
    ----------
    encoding : str
        ``EventPacket.encoding``.
    width, height : int
        Sensor size in pixels.
    seq : int
        ``EventPacket.seq`` (0, 1, 2, ... per encoder).
    time_base : int
        ``EventPacket.time_base`` in nanoseconds (mono, libcaer, libcaer_cmp: the time of the
        packet's first event; evt3: 0, unused).
    data : bytes
        ``EventPacket.events`` (little-endian words).
    n_events : int
        Events encoded.

    """

    encoding: str
    width: int
    height: int
    seq: int
    time_base: int
    data: bytes
    n_events: int


class StreamEncoder:
    """
    Encoder of consecutive event chunks into the packets of one stream.

    Make it with :func:`~topspark_ros.core.events.codecs.make_encoder`. With
    ``self_contained=True`` (default) every evt3 packet restates the time and row it starts
    from, so it decodes even after a lost packet or for a subscriber that joins late;
    ``False`` continues the word stream across packets like a sensor does (smaller, but a lost
    packet costs events until the state is restated). Mono, libcaer and libcaer_cmp packets
    are always self-contained (their time counts from the packet's ``time_base``, the first
    event's time).

    A format's subclass sets the class attributes below and implements :meth:`_packet` and
    :meth:`encode_one`.
    """

    encoding: ClassVar[str]
    """The ``EventPacket.encoding`` written."""
    max_width: ClassVar[int]
    """Largest sensor width the encoding can address."""
    max_height: ClassVar[int]
    """Largest sensor height the encoding can address."""

    def __init__(self, width: int, height: int, *, self_contained: bool = True):
        self.width, self.height = check_size(self.encoding, width, height, self.max_width,
                                             self.max_height)
        self.self_contained = bool(self_contained)
        self._seq = 0
        self._last_t = 0
        self._state = np.zeros(N_STATE, np.int64)
        fresh_state(self._state)

    def encode(self, events: np.ndarray) -> EncodedPacket:
        """
        Encode one chunk of events (``EVENT_DTYPE``, sorted by ``t``) as the next packet.

        Raises
        ------
        EventEncodeError
            If the events are not sorted, start before the previous chunk ended, lie outside
            the sensor, or span more than the encoding's packet can (mono: ``MONO_MAX_DT_NS``).

        """
        events = check_events(events, self.width, self.height)
        if events.size and int(events['t'][0]) < self._last_t:
            raise EventEncodeError(f'chunk starts at t={int(events["t"][0])} us, before the '
                                   f'end of the previous chunk ({self._last_t} us)')
        time_base, data = self._packet(events)
        if events.size:
            self._last_t = int(events['t'][-1])
        packet = EncodedPacket(self.encoding, self.width, self.height, self._seq, time_base,
                               data, int(events.size))
        self._seq += 1
        return packet

    def _packet(self, events: np.ndarray) -> Tuple[int, bytes]:
        """Return the ``(time_base, bytes)`` of the next packet of validated ``events``."""
        raise NotImplementedError

    @classmethod
    def encode_one(cls, events: np.ndarray, *, width: int, height: int,
                   time_base: Optional[int] = None) -> bytes:
        """Encode ``events`` as one self-contained packet (see ``codecs.encode_packet``)."""
        raise NotImplementedError


class TimeBaseEncoder(StreamEncoder):
    """
    An encoder whose packets count time from their ``time_base`` (ns).

    A format sets :meth:`packet_bytes`. The stream's packets get the time of their first
    event (:func:`default_time_base`; an empty packet the end of the previous one).
    """

    @staticmethod
    def packet_bytes(events: np.ndarray, time_base_ns: int) -> bytes:
        """Return validated ``events`` as the bytes of a packet with ``time_base_ns``."""
        raise NotImplementedError

    def _packet(self, events: np.ndarray) -> Tuple[int, bytes]:
        time_base = int(events['t'][0]) * 1000 if events.size else self._last_t * 1000
        return time_base, self.packet_bytes(events, time_base)

    @classmethod
    def encode_one(cls, events: np.ndarray, *, width: int, height: int,
                   time_base: Optional[int] = None) -> bytes:
        """
        Encode ``events`` as one packet relative to ``time_base``.

        ``time_base``: nanoseconds, default :func:`default_time_base` of the events (put it
        into the message).
        """
        width, height = check_size(cls.encoding, width, height, cls.max_width, cls.max_height)
        events = check_events(events, width, height)
        if time_base is None:
            time_base = default_time_base(events)
        return cls.packet_bytes(events, int(time_base))
