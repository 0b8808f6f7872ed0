"""Tests of the mono codec (:mod:`topspark_ros.core.events.codecs.mono`): golden words, errors."""

import struct

import numpy as np
import pytest

from topspark_ros.core.events.codecs import make_decoder, MalformedPacketError

W, H = 64, 8


def as_tuples(events: np.ndarray) -> list:
    """Return events as a list of ``(x, y, p, t)`` int tuples."""
    return [(int(e['x']), int(e['y']), int(e['p']), int(e['t'])) for e in events]


# Every evt3 word type in one stream, with the events computed by hand.


def mono_word(dt_ns, x, y, p) -> bytes:
    """Pack one mono word."""
    return struct.pack('<Q', (p << 63) | (y << 48) | (x << 32) | dt_ns)


def test_mono_golden_words_and_time_base():
    base = 1_000_000_000_123  # ns
    data = (mono_word(0, 3, 4, 1) + mono_word(1500, 63, 7, 0)
            + mono_word(0xFFFFFFFF, 0, 0, 1))
    dec = make_decoder('mono', W, H, strict=True)
    out = dec.decode(data, seq=0, time_base=base)
    assert as_tuples(out) == [(3, 4, 1, 1_000_000_000), (63, 7, 0, 1_000_000_001),
                              (0, 0, 1, (base + 0xFFFFFFFF) // 1000)]
    # The next packet continues from its own time base; gaps in seq are counted.
    out = dec.decode(mono_word(0, 1, 1, 0), seq=3, time_base=base + 10**10)
    assert as_tuples(out) == [(1, 1, 0, (base + 10**10) // 1000)]
    assert (dec.stats.sequence_gaps, dec.stats.packets_lost) == (1, 2)


def test_mono_malformed_data():
    bad = mono_word(10, W, 0, 1) + mono_word(20, 0, H, 1) + mono_word(5, 1, 1, 0) + b'\x01'
    dec = make_decoder('mono', W, H)
    assert as_tuples(dec.decode(mono_word(30, 2, 2, 1), time_base=0)) == [(2, 2, 1, 0)]
    assert as_tuples(dec.decode(bad, time_base=2000)) == [(1, 1, 0, 2)]
    assert (dec.stats.out_of_sensor, dec.stats.truncated_bytes) == (2, 1)
    assert as_tuples(dec.decode(mono_word(0, 5, 5, 0), time_base=1000)) == []
    assert dec.stats.time_backwards == 1
    strict = make_decoder('mono', W, H, strict=True)
    for data in (bad, bad[:-1], mono_word(0, 0, H, 0)):
        with pytest.raises(MalformedPacketError):
            strict.decode(data, time_base=0)
    with pytest.raises(MalformedPacketError, match='time_base'):
        dec.decode(mono_word(0, 0, 0, 0))
    with pytest.raises(MalformedPacketError, match='out of range'):
        dec.decode(mono_word(0, 0, 0, 0), time_base=-1)
