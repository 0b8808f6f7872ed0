# noqa: A005  (topspark_ros.core.events.codecs is only imported by its full name)
"""
Decoders and encoders of the event encodings ROS 2 event-camera drivers publish.

``event_camera_msgs/EventPacket`` carries a header, the sensor ``width`` and ``height``, a
sequence number ``seq``, a ``time_base``, an ``encoding`` string and the raw ``events`` bytes.
This module turns those bytes into :data:`~topspark_ros.core.events.EVENT_DTYPE` arrays (and
back), with no rclpy: the node layer hands it the message fields.

Encodings
---------
``evt3``
    Prophesee EVT 3.0 (metavision_driver): a stream of 16-bit little-endian words whose 4 most
    significant bits give the word type. The decoder keeps a state (row, vector base, polarity,
    time) that continues across the packets of one stream:

    ======  ==============  ============================================================
    type    word            payload (bits)
    ======  ==============  ============================================================
    0x0     EVT_ADDR_Y      y [10:0], system type [11] (ignored)
    0x2     EVT_ADDR_X      x [10:0], polarity [11]: one event at (x, y, t)
    0x3     VECT_BASE_X     base x [10:0], polarity [11] of the vector words that follow
    0x4     VECT_12         valid mask [11:0]: events at base + i for set bits i; base += 12
    0x5     VECT_8          valid mask [7:0]: events at base + i for set bits i; base += 8
    0x6     EVT_TIME_LOW    bits [11:0] of the 24-bit time in microseconds
    0x7     CONTINUED_4     extra data of an OTHERS word (counted, ignored)
    0x8     EVT_TIME_HIGH   bits [23:12] of the 24-bit time in microseconds
    0x9     (padding)       padding some cameras emit, e.g. 0x9999 (``padding_words``)
    0xA     EXT_TRIGGER     edge [0], channel id [11:8]: counted in ``stats.triggers``
    0xE     OTHERS          12-bit subtype (monitoring; counted, ignored); the subtypes
                            DUMMY (0xE0FF) and MIPI padding (0xE01A) are padding
    0xF     CONTINUED_12    extra data of an OTHERS word (counted, ignored)
    other   reserved        unknown word: counted and skipped (lenient) or an error (strict)
    ======  ==============  ============================================================

    The 24-bit time wraps around every 2^24 us (16.8 s). The decoder extends it to int64
    microseconds: a new EVT_TIME_HIGH whose 12-bit value ``h`` differs from the current one
    ``h0`` by ``d = (h - h0) mod 4096`` moves time forward by ``d`` steps of 4096 us when
    ``d < 2048`` (crossing the wrap-around when ``h < h0``) and backwards by ``4096 - d``
    steps otherwise. Sensors emit EVT_TIME_HIGH at least every 4096 us, so real streams move
    forward by one step at a time: a step of more than :data:`EVT3_TIME_HIGH_STEP` forward
    or :data:`EVT3_TIME_HIGH_BACK` back is taken only once confirmed (see "Corrupt data"
    below); backward steps are corrupt data. Decoded times are sensor times:
    the first EVT_TIME_HIGH of a stream fixes them modulo 2^24 (a stream starts in epoch 0).
    An EVT_TIME_HIGH keeps the current EVT_TIME_LOW until the next one arrives (as Prophesee's
    and event_camera_codecs' decoders do). The packet's ``time_base`` is not used by evt3.

``mono``
    The encoding of event_camera_codecs' ``mono`` codec (libcaer_driver): one 64-bit
    little-endian word per event, ``dt`` in bits [31:0], ``x`` in [47:32], ``y`` in [62:48],
    polarity in bit 63. The event time is ``time_base + dt`` with the packet's
    ``time_base``, in nanoseconds (event_camera_codecs' mono decoder adds the two with a time
    multiplier of 1, and its decoders report nanoseconds); this decoder returns it in
    microseconds, rounded down (``(time_base + dt) // 1000``). One packet spans at most
    2^32 ns (4.29 s) after its ``time_base``.

``libcaer_cmp``
    The default encoding of libcaer_driver (DAVIS / DVXplorer cameras), decoded in
    event_camera_codecs (``libcaer_cmp_decoder.h``): 16-bit little-endian words, the type in
    bits [15:12], a column-wise compression of libcaer's polarity events:

    ======  ==============  ============================================================
    type    word            payload (bits)
    ======  ==============  ============================================================
    0x0     TIME_HIGH       bits [23:12] of the time offset in microseconds
    0x1     TIME_LOW        bits [11:0] of the time offset
    0x2     ADDR_X          column x [10:0] of the events that follow
    0x3     ADDR_Y          row y [10:0], polarity [11]: one event at (x, y, t)
    0x4     VECT_BASE_Y     base row [10:0], polarity [11] of the VECT_8 words that follow
    0x5     VECT_8          valid mask [7:0]: events at (x, base + i); base += 8
    other   reserved        counted in ``unknown_words`` and skipped (strict: an error)
    ======  ==============  ============================================================

    The time of an event is ``time_base + offset * 1000`` ns with the packet's ``time_base``
    (libcaer_driver writes the sensor time of the packet's first event there, in
    nanoseconds, plus its ROS start time) and the offset starting at 0 in every packet; this
    decoder returns it in microseconds, rounded down. The column, vector base row and
    polarity carry over from packet to packet (forgotten after a sequence gap; events
    without them count in ``no_state_events``). A packet spans at most 2^24 us (16.8 s).

``libcaer``
    libcaer_driver's uncompressed encoding: libcaer's polarity events as the library stores
    them, 8 bytes each: a little-endian uint32 with the valid mark in bit 0, polarity in bit
    1, y in bits [16:2] and x in bits [31:17], then an int32 timestamp in microseconds. The
    event time is ``time_base + timestamp * 1000`` ns (returned in microseconds, rounded
    down); a timestamp smaller than the one before wrapped around its 31 bits within the
    packet (2^31 us, counted in ``time_wraps``); the driver moves ``time_base`` by the wraps
    before the packet. Events whose valid mark is clear are skipped (``invalid_events``), a
    negative timestamp is malformed (``unknown_words``).

Both libcaer decoders give the same events as event_camera_codecs on its test recordings
(sums of t, x, y and polarity over a real DAVIS346 libcaer recording with a timestamp wrap,
see ``docs/benchmarks-events.md``). With ``is_bigendian`` the words (libcaer: each 32-bit
field) are byte-swapped first (``bigendian_packets``).

Malformed data, strict and lenient mode
---------------------------------------
Every problem is counted in :class:`DecoderStats` and the affected events are never returned.
``make_decoder(..., strict=False)`` (lenient, the default) skips them and goes on; with
``strict=True`` the first problem raises :class:`MalformedPacketError` and the packet changes
nothing (neither the decoder state nor the counters). The problems are:

* a byte count that is not a whole number of words (2 bytes evt3, 8 bytes mono): lenient
  drops the trailing bytes (``stats.truncated_bytes``);
* an event outside the sensor (``x >= width`` or ``y >= height``): ``stats.out_of_sensor``;
* an event earlier than the last event returned (time going backwards, also across
  packets): ``stats.time_backwards``. The decoder never returns events out of time order
  (but for a re-anchored evt3 time base, see "Corrupt data");
* an evt3 word of a reserved type: ``stats.unknown_words``.

A packet larger than the decoder's ``max_packet_bytes`` is refused unread in both modes
(:class:`PacketTooLargeError`, ``stats.packets_refused``); the stream goes on as after a lost
packet.

Events that cannot be placed because the decoder does not know the state they depend on
(evt3 events before the first EVT_ADDR_Y / VECT_BASE_X / complete time of a stream, as when a
subscriber joins a running camera, and after a lost packet, see below) are counted in
``stats.no_state_events`` and skipped in both modes: they are not malformed.

Corrupt data (evt3)
-------------------
A corrupt packet (random bytes, a wrong ``is_bigendian``, a flipped bit in an EVT_TIME_HIGH
word) must not move the stream's time base: once events were returned at a time far ahead,
every true event after them would be "back in time" and skipped for as long as the false
time was ahead (seconds to minutes), and a false time far back would return true events
with wrong times. So an EVT_TIME_HIGH step beyond ``-EVT3_TIME_HIGH_BACK ..
+EVT3_TIME_HIGH_STEP`` is held back: the time base stays, and the events that follow are
skipped (counted in ``no_state_events``, their time is not known) until either

* an EVT_TIME_HIGH within that window of the old time base arrives: the jump was corrupt
  data (``stats.time_jumps_refused``), decoding goes on from the old time base; or
* :data:`EVT3_RESYNC_WORDS` EVT_TIME_HIGH words in a row agree with the jump (each within
  the window of the previous): the decoder re-anchors on it (``stats.time_resyncs``). If
  the new time base lies before the last returned event (a sensor reset: its clock
  started again and stays back; or the old time base was corrupt, as when a stream starts
  with a corrupt packet), it is counted in ``stats.time_resets``, the events the packet
  returned before that point are dropped (``no_state_events``), and the next events are
  earlier than the ones before: the only case in which the output goes back in time, and
  only between packets (consumers treat it like a restart; the classifier's event stream
  starts its windows afresh). A reset more than 8.4 s into the 24-bit epoch reads as a jump
  forward to the next epoch instead (the words cannot tell the two apart): time stays
  monotonic, counted in ``time_resyncs``.

The loss is bounded: a corrupt stretch costs the events it replaces, plus at most the events
of ``EVT3_RESYNC_WORDS`` periods of EVT_TIME_HIGH (3 x 4096 us = 12.3 ms of sensor time)
after it, plus the events until the row and vector base are restated (words of the next
events). Corrupt EVT_TIME_LOW words cost at most 4096 us (the events of the true stream
before the corrupt time). A corrupt EVT_TIME_HIGH inside the window (a random one is, with
a chance of 4 in 4096) moves the time base by at most 2 steps. Measured on a 20 kev/s
stream (``test/core/test_event_resync.py``): one random 4 KB or 64 KB packet (20 each), a
wrong ``is_bigendian`` or a burst of 50 random packets in place of a true packet cost 8.8 to
9.1 ms of events after them (before: never back within the 10 s that followed); an
EVT_TIME_HIGH with a flipped bit costs the events up to the next EVT_TIME_HIGH (before: 4.2
s). The encoders write every jump beyond the window :data:`EVT3_RESYNC_WORDS` times, so their
streams decode unchanged.

Sequence numbers
----------------
Pass the packet's ``seq`` to :meth:`StreamDecoder.decode`. It is a uint64 that wraps around
(``2^64 - 1`` is followed by 0). A jump forward by 2 to :data:`MAX_SEQUENCE_GAP` + 1 is a
sequence gap (``stats.sequence_gaps`` += 1, ``stats.packets_lost`` += the number missing);
the evt3 decoder then forgets its row, vector base and time, since the lost packet may have
changed them, and skips events until the stream restores them (never returns events with a
stale row or time). The next EVT_TIME_HIGH is read as the nearest time high at or after the
last known one, which keeps the wrap-around count right for losses of up to 16.8 s of sensor
time. A sequence number at or below the last one is a restart of the stream
(driver restart): counted in ``stats.stream_restarts``, and the decoder starts afresh (all
state, including the last returned time, is reset); so is a forward jump larger than
:data:`MAX_SEQUENCE_GAP` (no transport loses that many: a driver restarted, or a corrupt
``seq``). Neither raises, in either mode: lost
packets are a transport fact, not malformed data.

Speed
-----
The evt3 decoder first runs a kernel with almost no data-dependent branches
(:func:`_evt3_fast`; the time of the last event, carried from word to word, goes through a
select, about a cycle of latency per word) that assumes a clean packet; if the packet holds
anything to sort out, it changes nothing and the packet is decoded again by the exact kernel
(:func:`_evt3_decode`).
Both give the same result on clean packets (tested). ``benchmarks/bench_event_decode.py``
measures the throughput; the figures are in ``docs/benchmarks-events.md``.

Encoding
--------
:func:`encode_evt3`, :func:`encode_mono`, :func:`encode_packet` (any encoding) and
:class:`StreamEncoder` (:func:`make_encoder`) turn events back into packet bytes, so that
``decode(encode(x)) == x``; the replay tool publishes with them. The evt3 encoder
vectorises runs of same-time, same-row, same-polarity events as a sensor does and bridges
gaps longer than 8.4 s with extra EVT_TIME_HIGH words; the libcaer_cmp one writes what
libcaer_driver writes (VECT_8 for rows of one time, column and polarity).

"""

from dataclasses import dataclass, fields
from typing import Optional, Union

import numba
from numba.cpython.unsafe.numbers import leading_zeros, trailing_zeros
import numpy as np

from topspark_ros.core.events import empty_events, EVENT_DTYPE

SUPPORTED_ENCODINGS = ('evt3', 'mono', 'libcaer_cmp', 'libcaer')
"""The ``EventPacket.encoding`` values this module decodes and encodes."""
WORD_BYTES = {'evt3': 2, 'mono': 8, 'libcaer_cmp': 2, 'libcaer': 8}
"""Size of one word of each encoding in bytes."""
TIME_BASE_ENCODINGS = ('mono', 'libcaer_cmp', 'libcaer')
"""Encodings whose event times count from the packet's ``time_base`` (ns), which they need."""

EVT3_MAX_SIZE = 2048
"""Largest sensor width and height EVT 3.0 can address (11-bit coordinates)."""
MONO_MAX_WIDTH = 1 << 16
"""Largest sensor width the mono encoding can address (16-bit x)."""
MONO_MAX_HEIGHT = 1 << 15
"""Largest sensor height the mono encoding can address (15-bit y)."""
MONO_MAX_DT_NS = (1 << 32) - 1
"""Largest time offset from ``time_base`` a mono word holds (nanoseconds, about 4.29 s)."""
LIBCAER_CMP_MAX_DT_US = (1 << 24) - 1
"""Largest time offset from ``time_base`` a libcaer_cmp packet holds (microseconds, 16.8 s)."""
LIBCAER_MAX_SIZE = 1 << 15
"""Largest sensor width and height libcaer words can address (15-bit coordinates)."""
LIBCAER_TS_WRAP_US = 1 << 31
"""libcaer's 32-bit signed microsecond timestamps wrap around after 2^31 us (35.8 min)."""
EVT3_TIME_HIGH_STEP = 2
"""Largest forward step of EVT_TIME_HIGH (units of 4096 us) taken at once (see Corruption)."""
EVT3_TIME_HIGH_BACK = 1
"""Largest backward step of EVT_TIME_HIGH taken at once (its events then count as backwards)."""
EVT3_RESYNC_WORDS = 3
"""EVT_TIME_HIGH words that must agree before the decoder re-anchors on a larger jump."""
SEQ_MODULUS = 1 << 64
"""``EventPacket.seq`` is a uint64: it wraps around to 0 after ``2^64 - 1``."""
MAX_SEQUENCE_GAP = 1 << 24
"""Largest forward jump of ``seq`` read as lost packets (4.7 h at 1 kHz); larger is a restart."""

# EVT 3.0 word types (the 4 most significant bits of a word).
EVT3_ADDR_Y = 0x0
EVT3_ADDR_X = 0x2
EVT3_VECT_BASE_X = 0x3
EVT3_VECT_12 = 0x4
EVT3_VECT_8 = 0x5
EVT3_TIME_LOW = 0x6
EVT3_CONTINUED_4 = 0x7
EVT3_TIME_HIGH = 0x8
EVT3_PADDING = 0x9
EVT3_EXT_TRIGGER = 0xA
EVT3_OTHERS = 0xE
EVT3_CONTINUED_12 = 0xF
EVT3_DUMMY = 0xE0FF
"""OTHERS word of subtype 0x0FF (DUMMY): padding, like the type 0x9 words."""
EVT3_MIPI_PADDING = 0xE01A
"""OTHERS word of subtype 0x01A (MASTER_MIPI_PADDING): padding."""

# libcaer_cmp word types (the 4 most significant bits of a 16-bit word).
CMP_TIME_HIGH = 0x0
CMP_TIME_LOW = 0x1
CMP_ADDR_X = 0x2
CMP_ADDR_Y = 0x3
CMP_VECT_BASE_Y = 0x4
CMP_VECT_8 = 0x5

_JIT = {'cache': True, 'nogil': True}

# Decoder state (int64 vector) indices.
_S_Y = 0            # current row, -1 unknown
_S_BASE = 1         # current vector base x, -1 unknown
_S_POL = 2          # polarity of the vector words
_S_HAVE_HIGH = 3    # 0 unknown, 1 known, 2 a hint after a sequence gap (read forward from it)
_S_HIGH = 4         # absolute time high (units of 4096 us; may go below 0 on corrupt data)
_S_HAVE_LOW = 5
_S_LOW = 6
_S_LAST_T = 7       # time of the last returned event (0 before any)
_S_CAND = 8         # candidate time high of an implausible jump (absolute, like _S_HIGH)
_S_VOTES = 9        # EVT_TIME_HIGH words agreeing with the candidate (0: none pending)
_N_STATE = 10

# Counter (int64 vector) indices, filled by the kernels.
_C_EVENTS = 0
_C_WORDS = 1
_C_TRIGGERS = 2
_C_OTHER_WORDS = 3
_C_UNKNOWN_WORDS = 4
_C_NO_STATE = 5
_C_OUT_OF_SENSOR = 6
_C_TIME_BACKWARDS = 7
_C_TIME_WRAPS = 8
_C_TIME_REFUSED = 9
_C_TIME_RESYNCS = 10
_C_PADDING = 11
_C_TIME_RESETS = 12
_C_INVALID = 13
_N_COUNTS = 14

# Kernel error codes (strict mode).
_E_NONE = 0
_E_UNKNOWN_WORD = 1
_E_OUT_OF_SENSOR = 2
_E_TIME_BACKWARDS = 3


class EventDecodeError(ValueError):
    """An event packet cannot be decoded (base class of this module's decoding errors)."""


class UnknownEncodingError(EventDecodeError):
    """The packet's ``encoding`` is not one of :data:`SUPPORTED_ENCODINGS`."""


class MalformedPacketError(EventDecodeError):
    """A packet's bytes break the encoding's rules (raised in strict mode)."""


class PacketTooLargeError(EventDecodeError):
    """A packet is larger than the decoder's ``max_packet_bytes`` (refused in both modes)."""


class EventEncodeError(ValueError):
    """Events cannot be encoded (unsorted times, coordinates outside the sensor, ...)."""


@dataclass
class DecoderStats:
    """
    Counters of one :class:`StreamDecoder` since it was made or reset.

    Attributes
    ----------
    packets : int
        Packets decoded (a packet that raised in strict mode is not counted).
    bytes : int
        Bytes received in those packets.
    words : int
        Whole words decoded (16-bit evt3 words, 64-bit mono words).
    events : int
        Events returned.
    triggers : int
        External-trigger words (evt3 EXT_TRIGGER); not returned as events.
    other_words : int
        evt3 OTHERS and CONTINUED_4/12 words (monitoring data, ignored).
    padding_words : int
        evt3 padding some cameras emit to fill their buffers, ignored: words of type 0x9
        (such as 0x9999) and the OTHERS subtypes DUMMY (0xE0FF) and MIPI padding (0xE01A).
    unknown_words : int
        evt3 words of a reserved type, skipped.
    truncated_bytes : int
        Trailing bytes that did not make a whole word, dropped.
    no_state_events : int
        Events skipped because the row, vector base or time they need was not known yet
        (stream joined mid-way, or state forgotten after a sequence gap).
    out_of_sensor : int
        Events with ``x >= width`` or ``y >= height``, skipped.
    time_backwards : int
        Events earlier than the last returned event, skipped.
    time_wraps : int
        Wrap-arounds of the 24-bit evt3 time (every 16.8 s of sensor time).
    time_jumps_refused : int
        evt3 EVT_TIME_HIGH jumps held back and then refused as corrupt data (the stream went
        on from the previous time base; see "Corrupt data" in the module docstring).
    time_resyncs : int
        evt3 jumps of the time base confirmed by :data:`EVT3_RESYNC_WORDS` agreeing
        EVT_TIME_HIGH words (a long pause, or recovery from corrupt data).
    time_resets : int
        Those of ``time_resyncs`` that moved the time base back before the last returned
        event: a sensor reset (its clock starts again; the output then goes back in time
        once, see "Corrupt data"), or a stream that began with corrupt data.
    bigendian_packets : int
        Packets decoded with ``is_bigendian`` set (words byte-swapped before decoding).
    invalid_events : int
        libcaer events whose valid mark (bit 0) is clear (libcaer invalidated them), skipped.
    packets_refused : int
        Packets larger than ``max_packet_bytes``, refused unread (not in ``packets``).
    bytes_refused : int
        Bytes in those packets.
    sequence_gaps : int
        Jumps of ``seq`` by more than one.
    packets_lost : int
        Packets missing in those jumps.
    stream_restarts : int
        Times ``seq`` went back (or repeated): the decoder started afresh.

    """

    packets: int = 0
    bytes: int = 0  # noqa: A003 (the field name reads best)
    words: int = 0
    events: int = 0
    triggers: int = 0
    other_words: int = 0
    unknown_words: int = 0
    truncated_bytes: int = 0
    no_state_events: int = 0
    out_of_sensor: int = 0
    time_backwards: int = 0
    time_wraps: int = 0
    time_jumps_refused: int = 0
    time_resyncs: int = 0
    time_resets: int = 0
    padding_words: int = 0
    bigendian_packets: int = 0
    invalid_events: int = 0
    packets_refused: int = 0
    bytes_refused: int = 0
    sequence_gaps: int = 0
    packets_lost: int = 0
    stream_restarts: int = 0

    @property
    def skipped_events(self) -> int:
        """Events in the data that were not returned (no state, outside, backwards)."""
        return self.no_state_events + self.out_of_sensor + self.time_backwards

    @property
    def malformed(self) -> int:
        """Problems that strict mode raises for (words, bytes and events)."""
        return (self.unknown_words + self.truncated_bytes + self.out_of_sensor
                + self.time_backwards)

    def as_dict(self) -> dict:
        """Return the counters as a plain ``dict`` (for logs and diagnostics)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


# ---------------------------------------------------------------------------------------------
# Kernels

def _events_per_word() -> np.ndarray:
    """
    Return ``uint8 [65536]``: the events each evt3 word holds.

    1 for EVT_ADDR_X, the set bits of the valid mask for VECT_12 / VECT_8, else 0.
    """
    values = np.arange(4096)
    popcount = np.zeros(4096, np.uint8)
    for v in range(1, 4096):
        popcount[v] = popcount[v >> 1] + (v & 1)
    per_word = np.zeros(65536, np.uint8)
    per_word[EVT3_ADDR_X << 12:(EVT3_ADDR_X + 1) << 12] = 1
    per_word[EVT3_VECT_12 << 12:(EVT3_VECT_12 + 1) << 12] = popcount[values]
    per_word[EVT3_VECT_8 << 12:(EVT3_VECT_8 + 1) << 12] = popcount[values & 0xFF]
    return per_word


_EVENTS_PER_WORD = _events_per_word()


def _cmp_events_per_word() -> np.ndarray:
    """Return ``uint8 [65536]``: the events each libcaer_cmp word holds (ADDR_Y, VECT_8)."""
    per_word = np.zeros(65536, np.uint8)
    per_word[CMP_ADDR_Y << 12:(CMP_ADDR_Y + 1) << 12] = 1
    vect = np.arange(4096) & 0xFF
    per_word[CMP_VECT_8 << 12:(CMP_VECT_8 + 1) << 12] = [bin(v).count('1') for v in vect]
    return per_word


_CMP_EVENTS_PER_WORD = _cmp_events_per_word()
_EVT3_TABLES = np.zeros((2, 16), np.int64)
"""By word type: valid mask, vector span."""
_EVT3_TABLES[0, EVT3_VECT_12] = 0xFFF
_EVT3_TABLES[0, EVT3_VECT_8] = 0xFF
_EVT3_TABLES[1, EVT3_VECT_12] = 12
_EVT3_TABLES[1, EVT3_VECT_8] = 8


@numba.njit(**_JIT)
def _evt3_event_bound(words, events_per_word):
    """Return the number of events the evt3 ``words`` hold (before any is skipped)."""
    n = 0
    for i in range(words.size):
        n += events_per_word[words[i]]
    return n


@numba.njit(**_JIT)
def _evt3_skipped(m, x0, y, t, last_t, have_t, width, height, strict, counts, n, out, p):
    """
    Sort the events of mask ``m`` at ``x0 + bit`` that the fast path refused (slow path).

    Events without state, going back in time or outside the sensor are counted; the others
    (a vector word partly outside the sensor) are written from row ``n``. Returns
    ``(n, last_t, error_code)``; in strict mode it stops at the first problem.
    """
    for k in range(12):
        if (m >> k) & 1:
            if not have_t or y < 0 or x0 < 0:
                counts[_C_NO_STATE] += 1
            elif t < last_t:
                counts[_C_TIME_BACKWARDS] += 1
                if strict:
                    return n, last_t, _E_TIME_BACKWARDS
            elif y >= height or x0 + k >= width:
                counts[_C_OUT_OF_SENSOR] += 1
                if strict:
                    return n, last_t, _E_OUT_OF_SENSOR
            else:
                e = out[n]
                e.x = x0 + k
                e.y = y
                e.p = p
                e.t = t
                n += 1
                last_t = t
    return n, last_t, _E_NONE


_UNKNOWN = 1 << 40
"""Stand-in of an unknown row or vector base in :func:`_evt3_fast` (fails every bound)."""
_NO_TIME = -(1 << 50)
"""Stand-in of an unknown time high or low in :func:`_evt3_fast` (time before any event)."""


@numba.njit(**_JIT)
def _evt3_fast(words, width, height, tables, state, counts, out):
    """
    Decode a packet of valid evt3 words into ``out`` (EVENT_DTYPE) with few branches.

    Returns ``(n_events, clean)``. ``clean`` is ``False`` when the packet holds anything
    that needs sorting out (an event without state, outside the sensor or back in time, a
    reserved word): then ``state`` and ``counts`` are left untouched and the caller decodes
    the packet again with :func:`_evt3_decode`, which handles every case. Real streams are
    clean apart from the start of a stream and the packet after a lost one.

    A word's events form a mask ``m`` at ``x0 + bit`` (EVT_ADDR_X: ``m = 1`` at its x;
    VECT_12 / VECT_8: the valid mask at the vector base; other words: ``m = 0``). The lowest
    event is stored unconditionally and counted only if there is one; validity is accumulated,
    not branched on; the state fields are selected with bit masks; unknown state is a value
    that fails the bound checks (:data:`_UNKNOWN`, :data:`_NO_TIME`). So the random sequence
    of word types costs no mispredicted branches: only vectors of two or more events loop,
    and the rare words (time high, triggers, monitoring) branch. ``out`` needs one spare row
    past the events.
    """
    mask_of = tables[0]
    span_of = tables[1]
    y = state[_S_Y] if state[_S_Y] >= 0 else _UNKNOWN
    base = state[_S_BASE] if state[_S_BASE] >= 0 else _UNKNOWN
    pol = state[_S_POL]
    have_high = state[_S_HAVE_HIGH] == 1
    hint = state[_S_HAVE_HIGH] == 2
    high = state[_S_HIGH]
    low = state[_S_LOW] if state[_S_HAVE_LOW] != 0 else _NO_TIME
    last_t = state[_S_LAST_T]
    wraps = 0
    triggers = 0
    others = 0
    padding = 0
    bad = 0
    tbase = high * 4096 if have_high else _NO_TIME
    t = tbase + low
    n = 0
    nw = words.size
    for i in range(nw):
        w = np.int64(words[i])
        code = w >> 12
        if code > EVT3_TIME_LOW or code == 1:
            if code == EVT3_TIME_HIGH:
                d = (w - high) & 0xFFF
                if have_high:
                    if d <= EVT3_TIME_HIGH_STEP:
                        wraps += np.int64((high & 0xFFF) + d >= 4096)
                        high += d
                    elif 4096 - d <= EVT3_TIME_HIGH_BACK:
                        high -= 4096 - d
                    else:  # an implausible jump: the exact kernel holds it back
                        bad = 1
                elif hint:
                    wraps += np.int64((high & 0xFFF) + d >= 4096)
                    high += d
                else:
                    high = w & 0xFFF
                have_high = True
                tbase = high * 4096
                t = tbase + low
            elif code == EVT3_EXT_TRIGGER:
                triggers += 1
            elif code == EVT3_PADDING or w == EVT3_DUMMY or w == EVT3_MIPI_PADDING:
                padding += 1
            elif code == EVT3_OTHERS or code == EVT3_CONTINUED_4 or code == EVT3_CONTINUED_12:
                others += 1
            else:
                bad = 1
                break
            continue
        low11 = w & 0x7FF
        bit11 = (w >> 11) & 1
        is_ax = np.int64(code == EVT3_ADDR_X)
        m = (w & mask_of[code]) | is_ax
        sel = -is_ax
        x0 = (low11 & sel) | (base & ~sel)
        has = np.int64(m != 0)
        # The last event of the word must lie inside the sensor (its highest set bit).
        ok = np.int64((t >= last_t) & (y < height) & (x0 + 63 - leading_zeros(m | 1) < width))
        bad |= has & (ok ^ 1)
        p = (bit11 & sel) | (pol & ~sel)
        e = out[np.uint64(n)]  # unsigned: no negative-index wrap-around code
        e.x = x0 + trailing_zeros(m | 0x1000)
        e.y = y
        e.p = p
        e.t = t
        n += has
        last_t = t if has != 0 else last_t  # a select: one cycle of latency per word
        rest = m & (m - 1)
        while rest != 0:
            e = out[np.uint64(n)]
            e.x = x0 + trailing_zeros(rest)
            e.y = y
            e.p = p
            e.t = t
            n += 1
            rest &= rest - 1
        # State words.
        sy = -np.int64(code == EVT3_ADDR_Y)
        y = (low11 & sy) | (y & ~sy)
        sb = -np.int64(code == EVT3_VECT_BASE_X)
        base = (low11 & sb) | ((base + span_of[code]) & ~sb)
        pol = (bit11 & sb) | (pol & ~sb)
        sl = -np.int64(code == EVT3_TIME_LOW)
        low = (w & 0xFFF & sl) | (low & ~sl)
        t = tbase + low
    if bad != 0:
        return n, False
    state[_S_Y] = y if y < _UNKNOWN else -1
    state[_S_BASE] = base if base < _UNKNOWN else -1
    state[_S_POL] = pol
    state[_S_HAVE_HIGH] = 1 if have_high else (2 if hint else 0)
    state[_S_HIGH] = high
    state[_S_HAVE_LOW] = 1 if low >= 0 else 0
    state[_S_LOW] = low if low >= 0 else 0
    state[_S_LAST_T] = last_t
    counts[_C_TIME_WRAPS] += wraps
    counts[_C_TRIGGERS] += triggers
    counts[_C_OTHER_WORDS] += others
    counts[_C_PADDING] += padding
    counts[_C_EVENTS] += n
    counts[_C_WORDS] += nw
    return n, True


@numba.njit(**_JIT)
def _evt3_run(words, i, width, height, tables, out, n, y, base, pol, tbase, low, have_high,
              have_low, last_t):
    """
    Decode the common evt3 words from word ``i`` on, for :func:`_evt3_decode`.

    Stops at the first word it leaves to :func:`_evt3_decode` (time high, triggers,
    monitoring, reserved words, invalid events). Returns the word index it stopped at, the
    number of events written and the state.

    Words are read as in :func:`_evt3_fast`. ``out`` needs one spare row past the events.
    """
    mask_of = tables[0]
    span_of = tables[1]
    nw = words.size
    t = tbase + low
    have_t = have_high & have_low
    while i < nw:
        w = np.int64(words[i])
        code = w >> 12
        if code > EVT3_TIME_LOW or code == 1:
            break
        low11 = w & 0x7FF
        bit11 = (w >> 11) & 1
        is_ax = np.int64(code == EVT3_ADDR_X)
        m = (w & mask_of[code]) | is_ax
        sel = -is_ax
        x0 = (low11 & sel) | (base & ~sel)
        p = (bit11 & sel) | (pol & ~sel)
        ok = np.int64((have_t != 0) & (t >= last_t) & (y >= 0) & (y < height) & (x0 >= 0)
                      & (x0 + 63 - leading_zeros(m | 1) < width))
        has = np.int64(m != 0)
        if has > ok:
            break
        e = out[n]
        e.x = x0 + trailing_zeros(m | 0x1000)
        e.y = y
        e.p = p
        e.t = t
        n += has
        last_t += (t - last_t) * has
        rest = m & (m - 1)
        while rest != 0:
            e = out[n]
            e.x = x0 + trailing_zeros(rest)
            e.y = y
            e.p = p
            e.t = t
            n += 1
            rest &= rest - 1
        # State words.
        sy = -np.int64(code == EVT3_ADDR_Y)
        y = (low11 & sy) | (y & ~sy)
        sb = -np.int64(code == EVT3_VECT_BASE_X)
        advanced = base + span_of[code] * np.int64(base >= 0)
        base = (low11 & sb) | (advanced & ~sb)
        pol = (bit11 & sb) | (pol & ~sb)
        is_low = np.int64(code == EVT3_TIME_LOW)
        sl = -is_low
        low = (w & 0xFFF & sl) | (low & ~sl)
        have_low |= is_low
        have_t = have_high & have_low
        t = tbase + low
        i += 1
    return i, n, y, base, pol, low, have_low, last_t


@numba.njit(**_JIT)
def _evt3_decode(words, width, height, strict, state, counts, tables, out):
    """
    Decode evt3 ``words`` (uint16) into ``out`` (EVENT_DTYPE) from row 0, handling every case.

    ``state`` (int64 [_N_STATE]) and ``counts`` (int64 [_N_COUNTS]) are updated in place.
    ``out`` needs one spare row past the events. Returns ``(n_events, error_code,
    word_index)``; in strict mode decoding stops at the first problem with its code and index.
    The common words go through :func:`_evt3_run`; this loop handles the others.
    ``tables`` is :data:`_EVT3_TABLES`.
    """
    y = state[_S_Y]
    base = state[_S_BASE]
    pol = state[_S_POL]
    have_high = state[_S_HAVE_HIGH] == 1
    hint = state[_S_HAVE_HIGH] == 2
    high = state[_S_HIGH]
    have_low = state[_S_HAVE_LOW] != 0
    low = state[_S_LOW]
    last_t = state[_S_LAST_T]
    cand = state[_S_CAND]
    votes = state[_S_VOTES]
    n = 0
    err = _E_NONE
    err_at = -1
    nw = words.size
    i = 0
    while i < nw:
        # While a time jump awaits confirmation, events have no known time (skipped).
        timed = have_high and votes == 0
        i, n, y, base, pol, low, have_low_i, last_t = _evt3_run(
            words, i, width, height, tables, out, n, y, base, pol, high * 4096, low,
            np.int64(timed), np.int64(have_low), last_t)
        have_low = have_low_i != 0
        if i >= nw:
            break
        w = np.int64(words[i])
        code = w >> 12
        if code == EVT3_TIME_HIGH:
            d = (w - high) & 0xFFF
            if have_high:
                if d <= EVT3_TIME_HIGH_STEP or 4096 - d <= EVT3_TIME_HIGH_BACK:
                    # Plausible: take it; a pending jump was corrupt data.
                    if d <= EVT3_TIME_HIGH_STEP:
                        if (high & 0xFFF) + d >= 4096:
                            counts[_C_TIME_WRAPS] += 1
                        high += d
                    else:
                        high -= 4096 - d
                    if votes != 0:
                        counts[_C_TIME_REFUSED] += 1
                        votes = 0
                elif votes != 0:
                    dc = (w - cand) & 0xFFF
                    if dc <= EVT3_TIME_HIGH_STEP:  # agrees with the pending jump
                        cand += dc
                        votes += 1
                    else:  # neither: the pending jump was corrupt, this is a new one
                        counts[_C_TIME_REFUSED] += 1
                        cand = high + (d if d < 2048 else d - 4096)
                        votes = 1
                    if votes >= EVT3_RESYNC_WORDS:  # confirmed: re-anchor on it
                        if cand > high:
                            counts[_C_TIME_WRAPS] += (cand >> 12) - (high >> 12)
                        high = cand
                        votes = 0
                        counts[_C_TIME_RESYNCS] += 1
                        if high * 4096 < last_t:  # time went back and stayed: a reset
                            last_t = high * 4096
                            counts[_C_TIME_RESETS] += 1
                            # The packet's events before the reset are dropped, so that the
                            # output goes back in time between packets only.
                            counts[_C_NO_STATE] += n
                            n = 0
                else:  # an implausible jump: hold it back until confirmed
                    cand = high + (d if d < 2048 else d - 4096)
                    votes = 1
            elif hint:
                if (high & 0xFFF) + d >= 4096:
                    counts[_C_TIME_WRAPS] += 1
                high += d
            else:
                high = w & 0xFFF
            have_high = True
        elif code == EVT3_EXT_TRIGGER:
            counts[_C_TRIGGERS] += 1
        elif code == EVT3_PADDING or w == EVT3_DUMMY or w == EVT3_MIPI_PADDING:
            counts[_C_PADDING] += 1
        elif code == EVT3_OTHERS or code == EVT3_CONTINUED_4 or code == EVT3_CONTINUED_12:
            counts[_C_OTHER_WORDS] += 1
        elif code == 1 or code > EVT3_TIME_LOW:
            counts[_C_UNKNOWN_WORDS] += 1
            if strict:
                err = _E_UNKNOWN_WORD
                err_at = i
                break
        else:
            # An event word the run refused: sort its events one by one.
            if code == EVT3_ADDR_X:
                m, x0, p = 1, w & 0x7FF, (w >> 11) & 1
            else:
                m, x0, p = (w & 0xFFF) if code == EVT3_VECT_12 else (w & 0xFF), base, pol
            t = high * 4096 + low
            n, last_t, err = _evt3_skipped(m, x0, y, t, last_t,
                                           have_high & have_low & (votes == 0), width,
                                           height, strict, counts, n, out, p)
            if err != _E_NONE:
                err_at = i
                break
            if code != EVT3_ADDR_X and base >= 0:
                base += 12 if code == EVT3_VECT_12 else 8
        i += 1
    state[_S_Y] = y
    state[_S_BASE] = base
    state[_S_POL] = pol
    state[_S_HAVE_HIGH] = 1 if have_high else (2 if hint else 0)
    state[_S_HIGH] = high
    state[_S_HAVE_LOW] = 1 if have_low else 0
    state[_S_LOW] = low
    state[_S_LAST_T] = last_t
    state[_S_CAND] = cand
    state[_S_VOTES] = votes
    counts[_C_EVENTS] += n
    counts[_C_WORDS] += nw if err == _E_NONE else err_at
    return n, err, err_at


@numba.njit(**_JIT)
def _mono_decode(words, time_base_ns, width, height, strict, state, counts, out):
    """
    Decode mono ``words`` (int64 views of the 64-bit words) into ``out`` (EVENT_DTYPE).

    Returns ``(n_events, error_code, word_index)`` like :func:`_evt3_decode`.
    """
    last_t = state[_S_LAST_T]
    n = 0
    err = _E_NONE
    err_at = -1
    nw = words.size
    for i in range(nw):
        w = words[i]
        t = (time_base_ns + (w & 0xFFFFFFFF)) // 1000
        x = (w >> 32) & 0xFFFF
        yy = (w >> 48) & 0x7FFF
        if t < last_t:
            counts[_C_TIME_BACKWARDS] += 1
            if strict:
                err = _E_TIME_BACKWARDS
                err_at = i
                break
        elif x >= width or yy >= height:
            counts[_C_OUT_OF_SENSOR] += 1
            if strict:
                err = _E_OUT_OF_SENSOR
                err_at = i
                break
        else:
            e = out[n]
            e.x = x
            e.y = yy
            e.p = (w >> 63) & 1
            e.t = t
            n += 1
            last_t = t
    state[_S_LAST_T] = last_t
    counts[_C_EVENTS] += n
    counts[_C_WORDS] += nw if err == _E_NONE else err_at
    return n, err, err_at


@numba.njit(**_JIT)
def _emit(out, n, x, y, p, t, last_t, width, height, strict, counts):
    """
    Write one event at row ``n`` unless it goes back in time or lies outside the sensor.

    Returns ``(n, last_t, error_code)`` (the libcaer kernels' per-event check).
    """
    if t < last_t:
        counts[_C_TIME_BACKWARDS] += 1
        return n, last_t, _E_TIME_BACKWARDS if strict else _E_NONE
    if x >= width or y >= height:
        counts[_C_OUT_OF_SENSOR] += 1
        return n, last_t, _E_OUT_OF_SENSOR if strict else _E_NONE
    e = out[n]
    e.x = x
    e.y = y
    e.p = p
    e.t = t
    return n + 1, t, _E_NONE


@numba.njit(**_JIT)
def _cmp_decode(words, time_base_ns, width, height, strict, state, counts, out):
    """
    Decode libcaer_cmp ``words`` (uint16) into ``out`` (EVENT_DTYPE); see the module docstring.

    The column x (``_S_BASE``), the vector base row (``_S_Y``) and polarity carry over from
    packet to packet; the time starts at ``time_base`` in every packet. Returns
    ``(n_events, error_code, word_index)`` like :func:`_evt3_decode`.
    """
    x = state[_S_BASE]
    ybase = state[_S_Y]
    pol = state[_S_POL]
    last_t = state[_S_LAST_T]
    base_us = time_base_ns // 1000
    high = 0
    low = 0
    n = 0
    err = _E_NONE
    err_at = -1
    nw = words.size
    for i in range(nw):
        w = np.int64(words[i])
        code = w >> 12
        payload = w & 0xFFF
        if code == CMP_ADDR_Y or code == CMP_VECT_8:
            t = base_us + ((high << 12) | low)  # (time_base + dt * 1000) // 1000
            if code == CMP_ADDR_Y:
                if x < 0:
                    counts[_C_NO_STATE] += 1
                else:
                    n, last_t, err = _emit(out, n, x, w & 0x7FF, (w >> 11) & 1, t, last_t,
                                           width, height, strict, counts)
            else:
                for k in range(8):
                    if (payload >> k) & 1:
                        if x < 0 or ybase < 0:
                            counts[_C_NO_STATE] += 1
                        else:
                            n, last_t, err = _emit(out, n, x, ybase + k, pol, t, last_t,
                                                   width, height, strict, counts)
                            if err != _E_NONE:
                                break
                if ybase >= 0:
                    ybase += 8
            if err != _E_NONE:
                err_at = i
                break
        elif code == CMP_ADDR_X:
            x = w & 0x7FF
        elif code == CMP_TIME_LOW:
            low = payload
        elif code == CMP_TIME_HIGH:
            high = payload
        elif code == CMP_VECT_BASE_Y:
            ybase = w & 0x7FF
            pol = (w >> 11) & 1
        else:
            counts[_C_UNKNOWN_WORDS] += 1
            if strict:
                err = _E_UNKNOWN_WORD
                err_at = i
                break
    state[_S_BASE] = x
    state[_S_Y] = ybase
    state[_S_POL] = pol
    state[_S_LAST_T] = last_t
    counts[_C_EVENTS] += n
    counts[_C_WORDS] += nw if err == _E_NONE else err_at
    return n, err, err_at


@numba.njit(**_JIT)
def _libcaer_decode(words, time_base_ns, width, height, strict, state, counts, out):
    """
    Decode libcaer ``words`` (uint32 pairs: data, timestamp) into ``out`` (EVENT_DTYPE).

    See the module docstring. Returns ``(n_events, error_code, word_index)`` like
    :func:`_evt3_decode` (``word_index`` counts 8-byte events).
    """
    last_t = state[_S_LAST_T]
    base_us = time_base_ns // 1000
    wraps = 0
    ts_last = 0
    n = 0
    err = _E_NONE
    err_at = -1
    nw = words.size // 2
    for i in range(nw):
        data = np.int64(words[2 * i])
        ts = np.int64(words[2 * i + 1])
        if ts >= LIBCAER_TS_WRAP_US:  # a negative int32: no libcaer timestamp
            counts[_C_UNKNOWN_WORDS] += 1
            if strict:
                err = _E_UNKNOWN_WORD
                err_at = i
                break
            continue
        if ts < ts_last:  # the 31-bit timestamp wrapped around within the packet
            wraps += 1
            counts[_C_TIME_WRAPS] += 1
        ts_last = ts
        if (data & 1) == 0:
            counts[_C_INVALID] += 1
            continue
        t = base_us + ts + wraps * LIBCAER_TS_WRAP_US  # (time_base + ts * 1000) // 1000
        n, last_t, err = _emit(out, n, (data >> 17) & 0x7FFF, (data >> 2) & 0x7FFF,
                               (data >> 1) & 1, t, last_t, width, height, strict, counts)
        if err != _E_NONE:
            err_at = i
            break
    state[_S_LAST_T] = last_t
    counts[_C_EVENTS] += n
    counts[_C_WORDS] += nw if err == _E_NONE else err_at
    return n, err, err_at


@numba.njit(**_JIT)
def _cmp_encode(xs, ys, ps, ts, t0, out):
    """
    Encode sorted events as libcaer_cmp words relative to ``t0`` (us) into ``out``.

    As libcaer_driver's encoder: a new TIME_HIGH / TIME_LOW / ADDR_X word when that part of
    the event changes; events of one time, column and polarity whose rows share the 8-row
    block ``y & ~7`` (in increasing y) become VECT_BASE_Y + VECT_8, a lone one ADDR_Y. The
    packet starts with ADDR_X (the decoder's time starts at ``time_base``). Returns the
    number of words written (``out`` holds 5 words per event + 2).
    """
    nw = 0
    n = xs.size
    high = 0
    low = 0
    x = -1
    mask = 0
    block = -1
    pol = -1
    last_y = -1
    for i in range(n + 1):
        if i < n:
            dt = ts[i] - t0
            h = dt >> 12
            lo = dt & 0xFFF
            xi = np.int64(xs[i])
            yi = np.int64(ys[i])
            pi = np.int64(ps[i])
            same = (h == high and lo == low and xi == x and pi == pol and (yi & ~7) == block
                    and yi > last_y)
        else:
            same = False
        if not same and mask != 0:  # flush the group
            if (mask & (mask - 1)) == 0:
                out[nw] = (CMP_ADDR_Y << 12) | (pol << 11) | last_y
                nw += 1
            else:
                out[nw] = (CMP_VECT_BASE_Y << 12) | (pol << 11) | block
                out[nw + 1] = (CMP_VECT_8 << 12) | mask
                nw += 2
            mask = 0
        if i == n:
            break
        if h != high:
            out[nw] = (CMP_TIME_HIGH << 12) | h
            nw += 1
            high = h
        if lo != low:
            out[nw] = (CMP_TIME_LOW << 12) | lo
            nw += 1
            low = lo
        if xi != x:
            out[nw] = (CMP_ADDR_X << 12) | xi
            nw += 1
            x = xi
        pol = pi
        block = yi & ~7
        mask |= 1 << (yi & 7)
        last_y = yi
    return nw


@numba.njit(**_JIT)
def _evt3_encode(xs, ys, ps, ts, state, restate, out):
    """
    Encode sorted events as evt3 words into ``out`` (uint16, large enough); return the count.

    ``state`` (int64 [_N_STATE], the decoder's layout) is the stream state the words continue
    from and is updated. Runs of events with equal (t, y, p) and increasing x become
    VECT_BASE_X + VECT_12 / VECT_8 words, as a sensor emits them; lone events EVT_ADDR_X.
    A time high step beyond what the decoder takes at once (:data:`EVT3_TIME_HIGH_STEP`),
    and each step of 2047 that bridges a pause longer than 8.4 s, is written
    :data:`EVT3_RESYNC_WORDS` times, which confirms it to the decoder. Returns -1 (having
    written nothing past ``out``) if ``out`` is too small.
    """
    y = state[_S_Y]
    base = state[_S_BASE]
    pol = state[_S_POL]
    have_high = state[_S_HAVE_HIGH]
    high = state[_S_HIGH]
    have_low = state[_S_HAVE_LOW]
    low = state[_S_LOW]
    nw = 0
    n = xs.size
    i = 0
    while i < n:
        if nw + 5 > out.size:
            return -1
        t = ts[i]
        h = t >> 12
        lo = t & 0xFFF
        if have_high == 0 or h != high or restate:
            restate = False
            repeats = 0
            if have_high != 0:
                if h - high > EVT3_TIME_HIGH_STEP:
                    repeats = EVT3_RESYNC_WORDS - 1
                while h - high > 2047:
                    if nw + 5 + EVT3_RESYNC_WORDS > out.size:
                        return -1
                    high += 2047
                    for _ in range(EVT3_RESYNC_WORDS):
                        out[nw] = (EVT3_TIME_HIGH << 12) | (high & 0xFFF)
                        nw += 1
            if nw + 5 + repeats > out.size:
                return -1
            for _ in range(repeats + 1):
                out[nw] = (EVT3_TIME_HIGH << 12) | (h & 0xFFF)
                nw += 1
            high = h
            have_high = 1
            have_low = 0
        if have_low == 0 or lo != low:
            out[nw] = (EVT3_TIME_LOW << 12) | lo
            nw += 1
            low = lo
            have_low = 1
        yi = np.int64(ys[i])
        if yi != y:
            out[nw] = (EVT3_ADDR_Y << 12) | yi
            nw += 1
            y = yi
        p = np.int64(ps[i])
        # The run of events sharing (t, y, p) with increasing x, starting at i.
        j = i + 1
        while (j < n and ts[j] == t and np.int64(ys[j]) == yi and np.int64(ps[j]) == p
               and xs[j] > xs[j - 1]):
            j += 1
        k = i
        while k < j:
            if nw + 2 > out.size:
                return -1
            xk = np.int64(xs[k])
            if not (base >= 0 and pol == p and xk >= base and xk < base + 12):
                # A new vector base is worth a word only when the next 12 pixels hold
                # at least two events; a lone event is one EVT_ADDR_X word.
                if k + 1 < j and np.int64(xs[k + 1]) < xk + 12:
                    out[nw] = (EVT3_VECT_BASE_X << 12) | (p << 11) | xk
                    nw += 1
                    base = xk
                    pol = p
                else:
                    out[nw] = (EVT3_ADDR_X << 12) | (p << 11) | xk
                    nw += 1
                    k += 1
                    continue
            mask = 0
            last_off = 0
            while k < j and np.int64(xs[k]) < base + 12:
                last_off = np.int64(xs[k]) - base
                mask |= 1 << last_off
                k += 1
            if last_off < 8:
                out[nw] = (EVT3_VECT_8 << 12) | mask
                base += 8
            else:
                out[nw] = (EVT3_VECT_12 << 12) | mask
                base += 12
            nw += 1
        i = j
    state[_S_Y] = y
    state[_S_BASE] = base
    state[_S_POL] = pol
    state[_S_HAVE_HIGH] = have_high
    state[_S_HIGH] = high
    state[_S_HAVE_LOW] = have_low
    state[_S_LOW] = low
    return nw


# ---------------------------------------------------------------------------------------------
# Decoders

BytesLike = Union[bytes, bytearray, memoryview, np.ndarray]
_LE16, _BE16, _LE32, _BE32, _LE64, _BE64 = (
    np.dtype(c) for c in ('<u2', '>u2', '<u4', '>u4', '<i8', '>i8'))


def _as_uint8(data) -> np.ndarray:
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


def _check_size(encoding: str, width: int, height: int) -> tuple[int, int]:
    """Validate the sensor size for ``encoding``; return it as ints."""
    width, height = int(width), int(height)
    max_w, max_h = {'mono': (MONO_MAX_WIDTH, MONO_MAX_HEIGHT),
                    'libcaer': (LIBCAER_MAX_SIZE, LIBCAER_MAX_SIZE)}.get(
                        encoding, (EVT3_MAX_SIZE, EVT3_MAX_SIZE))
    if not (1 <= width <= max_w and 1 <= height <= max_h):
        raise ValueError(f'sensor size {width}x{height} is outside what {encoding} can address '
                         f'(1..{max_w} x 1..{max_h}); check the packet width/height')
    return width, height


class StreamDecoder:
    """
    Stateful decoder of the packets of one event stream (one topic of one camera).

    Make it with :func:`make_decoder`. Feed it the packets in the order they arrive; it keeps
    what the encoding carries from packet to packet (evt3: row, vector base, time and its
    wrap-arounds; both: the last returned time, the last sequence number).

    Parameters
    ----------
    encoding : str
        One of :data:`SUPPORTED_ENCODINGS`.
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

    """

    def __init__(self, encoding: str, width: int, height: int, *, strict: bool = False,
                 max_packet_bytes: Optional[int] = None):
        if encoding not in SUPPORTED_ENCODINGS:
            raise UnknownEncodingError(_unknown_message(encoding))
        self.encoding = encoding
        self.width, self.height = _check_size(encoding, width, height)
        self.strict = bool(strict)
        if max_packet_bytes is not None and int(max_packet_bytes) < 1:
            raise ValueError(f'max_packet_bytes must be >= 1 or None, got {max_packet_bytes}')
        self.max_packet_bytes = None if max_packet_bytes is None else int(max_packet_bytes)
        self._state = np.zeros(_N_STATE, np.int64)
        self._counts = np.zeros(_N_COUNTS, np.int64)
        self._packets = self._bytes = self._truncated = self._swapped = 0
        self._gaps = self._lost = self._restarts = 0
        self._refused = self._refused_bytes = 0
        self._last_seq: Optional[int] = None
        self._fresh_state(self._state)

    @staticmethod
    def _fresh_state(state: np.ndarray) -> None:
        """Put ``state`` in the start-of-stream state."""
        state[:] = 0
        state[_S_Y] = -1
        state[_S_BASE] = -1

    @staticmethod
    def _forget_stream_state(state: np.ndarray) -> None:
        """
        Forget what a lost packet may have changed (keep the last returned time).

        The time high becomes a hint (state 2): the next EVT_TIME_HIGH is read as the nearest
        time high at or after it (up to 16.8 s later), since lost packets only move time
        forward; this keeps the wrap-around count.
        """
        state[_S_Y] = -1
        state[_S_BASE] = -1
        if state[_S_HAVE_HIGH] != 0:
            state[_S_HAVE_HIGH] = 2
        state[_S_HAVE_LOW] = 0
        state[_S_VOTES] = 0

    def reset(self) -> None:
        """Start a new stream: forget all state and zero the counters."""
        self._fresh_state(self._state)
        self._counts = np.zeros(_N_COUNTS, np.int64)
        self._packets = self._bytes = self._truncated = self._swapped = 0
        self._gaps = self._lost = self._restarts = 0
        self._refused = self._refused_bytes = 0
        self._last_seq = None

    @property
    def stats(self) -> DecoderStats:
        """Return a snapshot of the counters (:class:`DecoderStats`)."""
        c = self._counts
        return DecoderStats(
            packets=self._packets, bytes=self._bytes, words=int(c[_C_WORDS]),
            events=int(c[_C_EVENTS]), triggers=int(c[_C_TRIGGERS]),
            other_words=int(c[_C_OTHER_WORDS]), unknown_words=int(c[_C_UNKNOWN_WORDS]),
            truncated_bytes=self._truncated, no_state_events=int(c[_C_NO_STATE]),
            out_of_sensor=int(c[_C_OUT_OF_SENSOR]), time_backwards=int(c[_C_TIME_BACKWARDS]),
            time_wraps=int(c[_C_TIME_WRAPS]), time_jumps_refused=int(c[_C_TIME_REFUSED]),
            time_resyncs=int(c[_C_TIME_RESYNCS]), time_resets=int(c[_C_TIME_RESETS]),
            padding_words=int(c[_C_PADDING]), bigendian_packets=self._swapped,
            invalid_events=int(c[_C_INVALID]),
            packets_refused=self._refused,
            bytes_refused=self._refused_bytes, sequence_gaps=self._gaps,
            packets_lost=self._lost, stream_restarts=self._restarts)

    def decode(self, data: BytesLike, *, seq: Optional[int] = None,
               time_base: Optional[int] = None, is_bigendian: bool = False) -> np.ndarray:
        """
        Decode the ``events`` bytes of one packet of this stream.

        Parameters
        ----------
        data : bytes, bytearray, memoryview or uint8 array
            The packet's ``events`` field.
        seq : int, optional
            The packet's ``seq``; gaps and restarts are detected when given (see the module
            docstring).
        time_base : int, optional
            The packet's ``time_base`` (nanoseconds); required for ``mono``, unused by evt3.
        is_bigendian : bool
            The packet's ``is_bigendian`` (words in big-endian byte order).

        Returns
        -------
        numpy.ndarray
            ``EVENT_DTYPE [n]``, ``t`` in microseconds, non-decreasing across the stream.

        Raises
        ------
        MalformedPacketError
            In strict mode, for the problems listed in the module docstring; also, in both
            modes, for a mono packet without ``time_base`` or a negative one.
        PacketTooLargeError
            In both modes, for a packet larger than ``max_packet_bytes`` (counted).
        TypeError
            If ``data`` is not bytes-like.

        """
        buf = _as_uint8(data)
        word_size = WORD_BYTES[self.encoding]
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
        if self.encoding in TIME_BASE_ENCODINGS:
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
            if self._last_seq is not None:
                step = (seq - self._last_seq) % SEQ_MODULUS  # 2^64 - 1 -> 0 is a step of 1
                if 1 < step <= MAX_SEQUENCE_GAP + 1:
                    gaps, lost = 1, step - 1
                    state = state.copy()
                    self._forget_stream_state(state)
                elif step != 1:  # back, repeated, or a jump no loss explains
                    restarts = 1
                    state = state.copy()
                    self._fresh_state(state)
        words_u8 = buf[:n_bytes - extra]
        if word_size == 2:
            dtype = _BE16 if is_bigendian else _LE16
        elif self.encoding == 'libcaer':  # two 32-bit fields: data, timestamp
            dtype = _BE32 if is_bigendian else _LE32
        else:
            dtype = _BE64 if is_bigendian else _LE64
        words = words_u8.view(dtype) if words_u8.size else np.zeros(0, dtype)
        if is_bigendian or not words.flags.aligned:
            words = words.astype(dtype.newbyteorder('='))
        if words.flags.writeable:  # one compiled signature: read-only words (as from bytes)
            words = words.view()
            words.flags.writeable = False
        err, err_at = _E_NONE, -1
        if self.encoding == 'evt3':
            out = np.empty(int(_evt3_event_bound(words, _EVENTS_PER_WORD)) + 1, EVENT_DTYPE)
            # The fast kernel changes state and counts only when the packet is clean; it
            # leaves a time jump that awaits confirmation to the exact kernel.
            n, clean = 0, False
            if state[_S_VOTES] == 0:
                n, clean = _evt3_fast(words, self.width, self.height, _EVT3_TABLES, state,
                                      self._counts, out)
            if not clean:
                state, counts = state.copy(), self._counts.copy()
                n, err, err_at = _evt3_decode(words, self.width, self.height, self.strict,
                                              state, counts, _EVT3_TABLES, out)
                if err == _E_NONE:
                    self._counts = counts
        else:
            if self.encoding == 'libcaer_cmp':
                out = np.empty(int(_evt3_event_bound(words, _CMP_EVENTS_PER_WORD)) + 1,
                               EVENT_DTYPE)
                kernel = _cmp_decode
            else:
                out = np.empty(words.size // (word_size // words.itemsize) + 1, EVENT_DTYPE)
                kernel = _mono_decode if self.encoding == 'mono' else _libcaer_decode
            state, counts = state.copy(), self._counts.copy()
            n, err, err_at = kernel(words, time_base, self.width, self.height, self.strict,
                                    state, counts, out)
            if err == _E_NONE:
                self._counts = counts
        if err != _E_NONE:
            raise MalformedPacketError(self._error_message(err, int(err_at), words, state))
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

    def _refuse(self, n_bytes: int, seq: Optional[int]) -> None:
        """Count a refused packet; forget what it may have changed, as for a lost packet."""
        self._refused += 1
        self._refused_bytes += n_bytes
        state = self._state.copy()
        self._forget_stream_state(state)
        self._state = state
        if seq is not None:
            self._last_seq = int(seq) % SEQ_MODULUS

    def _error_message(self, err: int, at: int, words: np.ndarray, state: np.ndarray) -> str:
        """Describe a strict-mode error at word ``at``."""
        if self.encoding == 'libcaer':  # data, timestamp
            word = (int(words[2 * at + 1]) << 32) | int(words[2 * at])
        else:
            word = int(words[at]) % (1 << 64)
        digits = 2 * WORD_BYTES[self.encoding]
        where = f'{self.encoding} word {at} (0x{word:0{digits}x})'
        if err == _E_UNKNOWN_WORD:
            if self.encoding == 'libcaer':
                return f'{where} has a negative timestamp'
            return f'{where} has the reserved type 0x{word >> 12:x}'
        if err == _E_OUT_OF_SENSOR:
            return (f'{where} holds an event outside the {self.width}x{self.height} sensor; '
                    'check the packet width/height')
        return (f'{where}: time went backwards to before the last event '
                f'(t={int(state[_S_LAST_T])} us)')


def _unknown_message(encoding) -> str:
    """Return the message of :class:`UnknownEncodingError` for ``encoding``."""
    return (f'unknown event encoding {encoding!r}; supported: '
            f'{", ".join(SUPPORTED_ENCODINGS)}')


def make_decoder(encoding: str, width: int, height: int, **options) -> StreamDecoder:
    """
    Return a :class:`StreamDecoder` for one stream of ``encoding`` packets.

    Parameters
    ----------
    encoding : str
        The packets' ``encoding`` field: one of :data:`SUPPORTED_ENCODINGS`.
    width, height : int
        Sensor size in pixels (the packets' ``width`` and ``height``).
    **options
        ``strict`` (bool, default ``False``): raise on malformed data instead of counting and
        skipping it (see the module docstring). ``max_packet_bytes`` (int or None, default
        None): refuse larger packets (see :class:`StreamDecoder`).

    Raises
    ------
    UnknownEncodingError
        If ``encoding`` is not supported (the message names the supported ones).
    ValueError
        If the sensor size is outside what the encoding can address, or an option is unknown.

    """
    if not isinstance(encoding, str) or encoding not in SUPPORTED_ENCODINGS:
        raise UnknownEncodingError(_unknown_message(encoding))
    unknown = set(options) - {'strict', 'max_packet_bytes'}
    if unknown:
        raise ValueError(f'unknown decoder option(s) {sorted(unknown)}; known: '
                         'max_packet_bytes, strict')
    return StreamDecoder(encoding, width, height, **options)


# ---------------------------------------------------------------------------------------------
# Encoders

def _check_events(events: np.ndarray, width: int, height: int) -> np.ndarray:
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
        ``EventPacket.time_base`` in nanoseconds (mono: the time of the packet's first
        event; evt3: 0, unused).
    data : bytes
        ``EventPacket.events``.
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

    Make it with :func:`make_encoder`. With ``self_contained=True`` (default) every evt3
    packet restates the time and row it starts from, so it decodes even after a lost packet
    or for a subscriber that joins late; ``False`` continues the word stream across packets
    like a sensor does (smaller, but a lost packet costs events until the state is restated).
    Mono, libcaer and libcaer_cmp packets are always self-contained (their time counts from
    the packet's ``time_base``, the first event's time).
    """

    def __init__(self, encoding: str, width: int, height: int, *, self_contained: bool = True):
        if encoding not in SUPPORTED_ENCODINGS:
            raise UnknownEncodingError(_unknown_message(encoding))
        self.encoding = encoding
        self.width, self.height = _check_size(encoding, width, height)
        self.self_contained = bool(self_contained)
        self._seq = 0
        self._last_t = 0
        self._state = np.zeros(_N_STATE, np.int64)
        StreamDecoder._fresh_state(self._state)

    def encode(self, events: np.ndarray) -> EncodedPacket:
        """
        Encode one chunk of events (``EVENT_DTYPE``, sorted by ``t``) as the next packet.

        Raises
        ------
        EventEncodeError
            If the events are not sorted, start before the previous chunk ended, lie outside
            the sensor, or (mono) span more than :data:`MONO_MAX_DT_NS`.

        """
        events = _check_events(events, self.width, self.height)
        if events.size and int(events['t'][0]) < self._last_t:
            raise EventEncodeError(f'chunk starts at t={int(events["t"][0])} us, before the '
                                   f'end of the previous chunk ({self._last_t} us)')
        if self.encoding == 'evt3':
            if self.self_contained:
                # Restate everything, but bridge from the last time high (gaps > 8.4 s).
                have_high, high = int(self._state[_S_HAVE_HIGH]), int(self._state[_S_HIGH])
                StreamDecoder._fresh_state(self._state)
                self._state[_S_HAVE_HIGH], self._state[_S_HIGH] = have_high, high
            data = _encode_evt3_words(events, self._state, restate=self.self_contained)
            time_base = 0
        else:
            time_base = int(events['t'][0]) * 1000 if events.size else self._last_t * 1000
            data = _TIME_BASE_ENCODERS[self.encoding](events, time_base)
        if events.size:
            self._last_t = int(events['t'][-1])
        packet = EncodedPacket(self.encoding, self.width, self.height, self._seq, time_base,
                               data, int(events.size))
        self._seq += 1
        return packet


def make_encoder(encoding: str, width: int, height: int, **options) -> StreamEncoder:
    """
    Return a :class:`StreamEncoder` that turns event chunks into packets of ``encoding``.

    ``options``: ``self_contained`` (bool, default ``True``), see :class:`StreamEncoder`.
    Raises :class:`UnknownEncodingError` for an unsupported encoding.
    """
    if not isinstance(encoding, str) or encoding not in SUPPORTED_ENCODINGS:
        raise UnknownEncodingError(_unknown_message(encoding))
    unknown = set(options) - {'self_contained'}
    if unknown:
        raise ValueError(f'unknown encoder option(s) {sorted(unknown)}; known: self_contained')
    return StreamEncoder(encoding, width, height, **options)


def _encode_evt3_words(events: np.ndarray, state: np.ndarray, restate: bool = False) -> bytes:
    """
    Encode validated events as evt3 bytes, continuing from ``state`` (updated).

    ``restate``: begin with an EVT_TIME_HIGH even if the state already has that time high.
    """
    n = events.size
    if n == 0:
        return b''
    t = np.ascontiguousarray(events['t'])
    first_high = int(state[_S_HIGH]) if state[_S_HAVE_HIGH] else int(t[0]) >> 12
    span_high = (int(t[-1]) >> 12) - min(first_high, int(t[0]) >> 12)
    bound = (4 + EVT3_RESYNC_WORDS) * n + 4 + EVT3_RESYNC_WORDS * (span_high // 2047 + 2)
    out = np.empty(bound, np.uint16)
    nw = _evt3_encode(np.ascontiguousarray(events['x']), np.ascontiguousarray(events['y']),
                      np.ascontiguousarray(events['p']), t, state, restate, out)
    if nw < 0:  # cannot happen: the bound above holds at most 4 + 3 words per event
        raise RuntimeError(f'evt3 encoder output bound {bound} too small for {n} events')
    return out[:nw].astype('<u2').tobytes()


def _encode_mono_words(events: np.ndarray, time_base_ns: int) -> bytes:
    """Encode validated events as mono bytes relative to ``time_base_ns``."""
    if events.size == 0:
        return b''
    dt = events['t'].astype(np.int64) * 1000 - time_base_ns
    if int(dt.min()) < 0 or int(dt.max()) > MONO_MAX_DT_NS:
        raise EventEncodeError(
            f'a mono packet spans at most {MONO_MAX_DT_NS} ns after its time_base; these '
            f'events span {int(dt.max())} ns: split them into shorter packets')
    words = (dt.astype(np.uint64)
             | (events['x'].astype(np.uint64) << np.uint64(32))
             | (events['y'].astype(np.uint64) << np.uint64(48))
             | (events['p'].astype(np.uint64) << np.uint64(63)))
    return words.astype('<u8').tobytes()


def _encode_libcaer_words(events: np.ndarray, time_base_ns: int) -> bytes:
    """
    Encode validated events as libcaer bytes relative to ``time_base_ns``.

    Each event is 8 bytes, little-endian: a uint32 ``1 | p << 1 | y << 2 | x << 17`` (bit 0
    is libcaer's valid mark) and an int32 timestamp ``t - time_base`` in microseconds (the
    time base must be a whole number of microseconds; at most 2^31 - 1 us after it).
    """
    if events.size == 0:
        return b''
    if time_base_ns % 1000:
        raise EventEncodeError(f'libcaer time_base {time_base_ns} ns is not a whole number of '
                               'microseconds')
    dt = events['t'].astype(np.int64) - time_base_ns // 1000
    if int(dt.min()) < 0 or int(dt.max()) >= LIBCAER_TS_WRAP_US:
        raise EventEncodeError(f'a libcaer packet spans at most {LIBCAER_TS_WRAP_US - 1} us '
                               f'after its time_base; these events span {int(dt.max())} us')
    words = np.empty((events.size, 2), '<u4')
    words[:, 0] = (1 | (events['p'].astype(np.uint32) << 1)
                   | (events['y'].astype(np.uint32) << 2)
                   | (events['x'].astype(np.uint32) << 17))
    words[:, 1] = dt
    return words.tobytes()


def _encode_cmp_words(events: np.ndarray, time_base_ns: int) -> bytes:
    """Encode validated events as libcaer_cmp bytes relative to ``time_base_ns``."""
    if events.size == 0:
        return b''
    if time_base_ns % 1000:
        raise EventEncodeError(f'libcaer_cmp time_base {time_base_ns} ns is not a whole number '
                               'of microseconds')
    t0 = time_base_ns // 1000
    t = np.ascontiguousarray(events['t'])
    if int(t[0]) < t0 or int(t[-1]) - t0 > LIBCAER_CMP_MAX_DT_US:
        raise EventEncodeError(f'a libcaer_cmp packet spans at most {LIBCAER_CMP_MAX_DT_US} us '
                               f'after its time_base; these events span {int(t[-1]) - t0} us')
    out = np.empty(5 * events.size + 2, np.uint16)  # per event: a flush, TH, TL, AX
    nw = _cmp_encode(np.ascontiguousarray(events['x']), np.ascontiguousarray(events['y']),
                     np.ascontiguousarray(events['p']), t, t0, out)
    return out[:nw].astype('<u2').tobytes()


_TIME_BASE_ENCODERS = {'mono': _encode_mono_words, 'libcaer': _encode_libcaer_words,
                       'libcaer_cmp': _encode_cmp_words}


def encode_packet(encoding: str, events: np.ndarray, *, width: int, height: int,
                  time_base: Optional[int] = None) -> bytes:
    """
    Encode events as one packet of ``encoding`` (the ``events`` bytes of an EventPacket).

    ``evt3``: see :func:`encode_evt3` (``time_base`` unused). The others count time from
    ``time_base`` (ns; default :func:`mono_time_base` of the events: put it into the message).

    Raises
    ------
    UnknownEncodingError, EventEncodeError
        For an unsupported encoding, or events the encoding cannot hold.

    """
    if not isinstance(encoding, str) or encoding not in SUPPORTED_ENCODINGS:
        raise UnknownEncodingError(_unknown_message(encoding))
    if encoding == 'evt3':
        return encode_evt3(events, width=width, height=height)
    width, height = _check_size(encoding, width, height)
    events = _check_events(events, width, height)
    if time_base is None:
        time_base = mono_time_base(events)
    return _TIME_BASE_ENCODERS[encoding](events, int(time_base))


def encode_evt3(events: np.ndarray, *, width: int, height: int) -> bytes:
    """
    Encode events as one self-contained evt3 packet (the ``events`` bytes of an EventPacket).

    Parameters
    ----------
    events : numpy.ndarray
        ``EVENT_DTYPE [n]`` sorted by ``t`` (microseconds, >= 0), inside the sensor.
    width, height : int
        Sensor size in pixels (at most 2048 each).

    Returns
    -------
    bytes
        Little-endian EVT 3.0 words: the time (EVT_TIME_HIGH/LOW, with extra EVT_TIME_HIGH
        words across gaps longer than 8 s), rows (EVT_ADDR_Y), lone events (EVT_ADDR_X) and
        runs of same-time, same-row, same-polarity events as VECT_BASE_X + VECT_12 / VECT_8.
        A fresh decoder returns the events unchanged when their first time is below 2^24 us;
        later streams come back shifted by a multiple of 2^24 us (the format only carries
        time modulo 2^24; see the module docstring).

    Raises
    ------
    EventEncodeError
        For unsorted or negative times, events outside the sensor, polarity above 1.

    """
    width, height = _check_size('evt3', width, height)
    events = _check_events(events, width, height)
    state = np.zeros(_N_STATE, np.int64)
    StreamDecoder._fresh_state(state)
    return _encode_evt3_words(events, state)


def encode_mono(events: np.ndarray, *, width: int, height: int,
                time_base: Optional[int] = None) -> bytes:
    """
    Encode events as one mono packet (the ``events`` bytes of an EventPacket).

    Parameters
    ----------
    events : numpy.ndarray
        ``EVENT_DTYPE [n]`` sorted by ``t`` (microseconds, >= 0), inside the sensor.
    width, height : int
        Sensor size in pixels.
    time_base : int, optional
        The packet's ``time_base`` in nanoseconds; default :func:`mono_time_base` of the
        events. Put the same value into the message.

    Raises
    ------
    EventEncodeError
        For unsorted or negative times, events outside the sensor, or events more than
        :data:`MONO_MAX_DT_NS` after (or before) ``time_base``.

    """
    width, height = _check_size('mono', width, height)
    events = _check_events(events, width, height)
    if time_base is None:
        time_base = mono_time_base(events)
    return _encode_mono_words(events, int(time_base))


def mono_time_base(events: np.ndarray) -> int:
    """Return the ``time_base`` (ns) :func:`encode_mono` uses: the first event's time."""
    return int(events['t'][0]) * 1000 if len(events) else 0
