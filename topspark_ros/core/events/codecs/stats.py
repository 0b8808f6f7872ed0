"""
The counters every decoder keeps: what it decoded, and every quirk and problem it met.

The numba kernels of the format modules count into one ``int64 [N_COUNTS]`` vector at the
indices ``C_*`` below; :class:`~topspark_ros.core.events.codecs.base.StreamDecoder` adds what it
counts in Python (packets, bytes, sequence gaps, ...) and hands out a :class:`DecoderStats`. A
new counter is one index here, one field of :class:`DecoderStats` and one line of
``StreamDecoder.stats``.
"""

from dataclasses import dataclass, fields

# Counter (int64 vector) indices, filled by the kernels.
C_EVENTS = 0
C_WORDS = 1
C_TRIGGERS = 2
C_OTHER_WORDS = 3
C_UNKNOWN_WORDS = 4
C_NO_STATE = 5
C_OUT_OF_SENSOR = 6
C_TIME_BACKWARDS = 7
C_TIME_WRAPS = 8
C_TIME_REFUSED = 9
C_TIME_RESYNCS = 10
C_PADDING = 11
C_TIME_RESETS = 12
C_INVALID = 13
N_COUNTS = 14


@dataclass
class DecoderStats:
    """
    Counters of one stream decoder since it was made or reset.

    Attributes
    ----------
    packets : int
        Packets decoded (a packet that raised in strict mode is not counted).
    bytes : int
        Bytes received in those packets.
    words : int
        Whole words decoded (16-bit evt3 and libcaer_cmp words, 64-bit mono and libcaer
        words).
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
        Words of a reserved type (evt3, libcaer_cmp) or libcaer events with a negative
        timestamp, skipped.
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
        Wrap-arounds of the 24-bit evt3 time (every 16.8 s of sensor time) or of libcaer's
        31-bit timestamps within a packet.
    time_jumps_refused : int
        evt3 EVT_TIME_HIGH jumps held back and then refused as corrupt data (the stream went
        on from the previous time base; see "Corrupt data" in
        :mod:`topspark_ros.core.events.codecs.evt3`).
    time_resyncs : int
        evt3 jumps of the time base confirmed by
        :data:`~topspark_ros.core.events.codecs.evt3.EVT3_RESYNC_WORDS` agreeing
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
        Times ``seq`` went back: the decoder started afresh.
    unnumbered_packets : int
        Packets whose ``seq`` repeated the one before (a publisher that leaves it at 0):
        neither a gap nor a restart.

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
    unnumbered_packets: int = 0

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
