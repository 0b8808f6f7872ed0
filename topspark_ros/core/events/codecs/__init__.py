# noqa: A005  (topspark_ros.core.events.codecs is only imported by its full name)
"""
Decoders and encoders of the event encodings ROS 2 event-camera drivers publish.

``event_camera_msgs/EventPacket`` carries a header, the sensor ``width`` and ``height``, a
sequence number ``seq``, a ``time_base``, an ``encoding`` string and the raw ``events`` bytes.
This package turns those bytes into :data:`~topspark_ros.core.events.EVENT_DTYPE` arrays (and
back), with no rclpy: the node layer hands it the message fields
(:mod:`topspark_ros.conversions.events`). Callers use the factory: :func:`make_decoder`,
:func:`make_encoder`, :func:`encode_packet`.

Encodings (one module each)
---------------------------
``evt3`` (:mod:`.evt3`)
    Prophesee EVT 3.0 (metavision_driver): 16-bit words with a state (row, vector base,
    time) that continues across packets; a 24-bit time that wraps around, protected against
    corrupt data.
``mono`` (:mod:`.mono`)
    event_camera_codecs' ``mono`` codec: one 64-bit word per event, times from the packet's
    ``time_base``.
``libcaer_cmp``, ``libcaer`` (:mod:`.libcaer`)
    libcaer_driver's compressed (default) and uncompressed encodings, times from the packet's
    ``time_base``.

What every format shares is in :mod:`.base` (the stream decoder and encoder, the decoder
state, errors) and :mod:`.stats` (the counters). **A new format** is one new module that
subclasses :class:`~.base.StreamDecoder` (word size and type, sensor limits, a kernel) and
:class:`~.base.StreamEncoder` (or :class:`~.base.TimeBaseEncoder`), plus one line in
``_FORMATS`` below.

Malformed data, strict and lenient mode
---------------------------------------
Every problem is counted in :class:`DecoderStats` and the affected events are never returned.
``make_decoder(..., strict=False)`` (lenient, the default) skips them and goes on; with
``strict=True`` the first problem raises :class:`MalformedPacketError` and the packet changes
nothing (neither the decoder state nor the counters). The problems are:

* a byte count that is not a whole number of words (2 bytes evt3 and libcaer_cmp, 8 bytes
  mono and libcaer): lenient drops the trailing bytes (``stats.truncated_bytes``);
* an event outside the sensor (``x >= width`` or ``y >= height``): ``stats.out_of_sensor``;
* an event earlier than the last event returned (time going backwards, also across
  packets): ``stats.time_backwards``. The decoder never returns events out of time order
  (but for a re-anchored evt3 time base, see "Corrupt data" in :mod:`.evt3`);
* a word of a reserved type (evt3, libcaer_cmp) or a libcaer event with a negative
  timestamp: ``stats.unknown_words``.

A packet larger than the decoder's ``max_packet_bytes`` is refused unread in both modes
(:class:`PacketTooLargeError`, ``stats.packets_refused``); the stream goes on as after a lost
packet.

Events that cannot be placed because the decoder does not know the state they depend on (the
start of a stream joined mid-way, and after a lost packet) are counted in
``stats.no_state_events`` and skipped in both modes: they are not malformed.

Sequence numbers
----------------
Pass the packet's ``seq`` to :meth:`StreamDecoder.decode`. It is a uint64 that wraps around
(``2^64 - 1`` is followed by 0). A jump forward by 2 to :data:`MAX_SEQUENCE_GAP` + 1 is a
sequence gap (``stats.sequence_gaps`` += 1, ``stats.packets_lost`` += the number missing);
the decoder then forgets the state the lost packets may have changed (evt3: row, vector base
and time; libcaer_cmp: column, vector base row and polarity) and skips events until the
stream restores it (never returns events with a stale row or time). A sequence number
below the last one is a restart of the stream (driver restart): counted in
``stats.stream_restarts``, and the decoder starts afresh (all state, including the last
returned time, is reset); so is a forward jump larger than :data:`MAX_SEQUENCE_GAP` (no
transport loses that many: a driver restarted, or a corrupt ``seq``). A number equal to the
last one is neither (``stats.unnumbered_packets``): a publisher that leaves ``seq`` at 0 does
not number its packets, and each taken for a restart lost most of an evt3 stream's events.
Neither raises, in either mode: lost packets are a transport fact, not malformed data.

Encoding
--------
:func:`encode_packet` (one packet of any encoding) and :class:`StreamEncoder`
(:func:`make_encoder`) turn events back into packet bytes, so that ``decode(encode(x)) ==
x``; the replay tool publishes with them.
"""

from typing import Optional

import numpy as np

from topspark_ros.core.events.codecs.base import (  # noqa: F401 (the package's public names)
    EncodedPacket, EventDecodeError, EventEncodeError, MalformedPacketError, MAX_SEQUENCE_GAP,
    PacketTooLargeError, SEQ_MODULUS, StreamDecoder, StreamEncoder, UnknownEncodingError,
)
from topspark_ros.core.events.codecs.evt3 import Evt3Decoder, Evt3Encoder
from topspark_ros.core.events.codecs.libcaer import (LibcaerCmpDecoder, LibcaerCmpEncoder,
                                                     LibcaerDecoder, LibcaerEncoder)
from topspark_ros.core.events.codecs.mono import MonoDecoder, MonoEncoder
from topspark_ros.core.events.codecs.stats import DecoderStats  # noqa: F401

_FORMATS = {
    'evt3': (Evt3Decoder, Evt3Encoder),
    'mono': (MonoDecoder, MonoEncoder),
    'libcaer_cmp': (LibcaerCmpDecoder, LibcaerCmpEncoder),
    'libcaer': (LibcaerDecoder, LibcaerEncoder),
}
"""The registry: ``EventPacket.encoding`` -> (decoder class, encoder class)."""

SUPPORTED_ENCODINGS = tuple(_FORMATS)
"""The ``EventPacket.encoding`` values this package decodes and encodes."""


def _format(encoding) -> tuple:
    """Return the registry entry of ``encoding``; raise :class:`UnknownEncodingError`."""
    if not isinstance(encoding, str) or encoding not in _FORMATS:
        raise UnknownEncodingError(f'unknown event encoding {encoding!r}; supported: '
                                   f'{", ".join(SUPPORTED_ENCODINGS)}')
    return _FORMATS[encoding]


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
        skipping it (see the package docstring). ``max_packet_bytes`` (int or None, default
        None): refuse larger packets (see :class:`StreamDecoder`).

    Raises
    ------
    UnknownEncodingError
        If ``encoding`` is not supported (the message names the supported ones).
    ValueError
        If the sensor size is outside what the encoding can address, or an option is unknown.

    """
    decoder_class, _ = _format(encoding)
    unknown = set(options) - {'strict', 'max_packet_bytes'}
    if unknown:
        raise ValueError(f'unknown decoder option(s) {sorted(unknown)}; known: '
                         'max_packet_bytes, strict')
    return decoder_class(width, height, **options)


def make_encoder(encoding: str, width: int, height: int, **options) -> StreamEncoder:
    """
    Return a :class:`StreamEncoder` that turns event chunks into packets of ``encoding``.

    ``options``: ``self_contained`` (bool, default ``True``), see :class:`StreamEncoder`.
    Raises :class:`UnknownEncodingError` for an unsupported encoding.
    """
    _, encoder_class = _format(encoding)
    unknown = set(options) - {'self_contained'}
    if unknown:
        raise ValueError(f'unknown encoder option(s) {sorted(unknown)}; known: self_contained')
    return encoder_class(width, height, **options)


def encode_packet(encoding: str, events: np.ndarray, *, width: int, height: int,
                  time_base: Optional[int] = None) -> bytes:
    """
    Encode events as one packet of ``encoding`` (the ``events`` bytes of an EventPacket).

    ``evt3``: see :func:`~.evt3.encode_evt3` (``time_base`` unused). The others count time
    from ``time_base`` (ns; default the first event's time: put it into the message).

    Raises
    ------
    UnknownEncodingError, EventEncodeError
        For an unsupported encoding, or events the encoding cannot hold.

    """
    _, encoder_class = _format(encoding)
    return encoder_class.encode_one(events, width=width, height=height, time_base=time_base)
