"""
The libcaer_driver encodings (issue 14): ``libcaer_cmp`` (its default) and ``libcaer``.

Golden packets are built word by word with the values computed by hand (see each comment);
round trips go through the module's own encoders; fuzzing checks that any bytes decode
without a crash, a hang or unbounded output. The layouts are those of event_camera_codecs'
``libcaer_cmp_decoder.h`` / ``libcaer_decoder.h`` and libcaer_driver's ``message_converter.cpp``
(see the codecs module docstring).
"""

import struct

from hypothesis import given, HealthCheck, settings, strategies as st
import numpy as np
import pytest

from topspark_ros.core.events import EVENT_DTYPE
from topspark_ros.core.events.codecs import (encode_packet, EventEncodeError, make_decoder,
                                             make_encoder, MalformedPacketError,
                                             SUPPORTED_ENCODINGS)
from topspark_ros.core.events.stream import EventStream

W, H = 64, 32
LIBCAER = ('libcaer_cmp', 'libcaer')
FUZZ = settings(max_examples=150, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def as_tuples(events: np.ndarray) -> list:
    return [(int(e['x']), int(e['y']), int(e['p']), int(e['t'])) for e in events]


# ----------------------------------------------------------------------------- libcaer_cmp

# 16-bit little-endian words, type in bits [15:12]: 0 TIME_HIGH, 1 TIME_LOW, 2 ADDR_X (x in
# [10:0]), 3 ADDR_Y (y in [10:0], polarity [11]: one event), 4 VECT_BASE_Y (y, polarity),
# 5 VECT_8 (valid mask [7:0] over rows base + i; base += 8). Time = time_base + (high << 12 |
# low) us, starting at time_base (high = low = 0) in every packet.
CMP_TIME_BASE = 1_000_000_000  # ns: 1 s, so t = 1 000 000 us + offset
CMP_GOLDEN = struct.pack(
    '<10H',
    0x2005,   # ADDR_X: x = 5
    0x3803,   # ADDR_Y: 0x800 (ON) | y 3: event (5, 3, ON, 1 000 000)
    0x1010,   # TIME_LOW: low = 0x010 = 16 -> t = 1 000 016
    0x4008,   # VECT_BASE_Y: y = 8, OFF
    0x5005,   # VECT_8: bits 0, 2 -> y = 8, 10; base -> 16
    0x5080,   # VECT_8: bit 7 -> y = 16 + 7 = 23; base -> 24
    0x0002,   # TIME_HIGH: high = 2 -> t = 1 000 000 + 2 * 4096 + 16 = 1 008 208
    0x2007,   # ADDR_X: x = 7
    0x3001,   # ADDR_Y: y = 1, OFF: event (7, 1, OFF, 1 008 208)
    0x6123,   # type 6: reserved (no decoder reads it): counted, skipped
)
CMP_EVENTS = [(5, 3, 1, 1_000_000), (5, 8, 0, 1_000_016), (5, 10, 0, 1_000_016),
              (5, 23, 0, 1_000_016), (7, 1, 0, 1_008_208)]


def test_libcaer_cmp_golden_words():
    dec = make_decoder('libcaer_cmp', W, H)
    assert as_tuples(dec.decode(CMP_GOLDEN, seq=0, time_base=CMP_TIME_BASE)) == CMP_EVENTS
    s = dec.stats
    assert (s.events, s.words, s.unknown_words, s.skipped_events) == (5, 10, 1, 0)
    with pytest.raises(MalformedPacketError, match=r'word 9 \(0x6123\) has the reserved type'):
        make_decoder('libcaer_cmp', W, H, strict=True).decode(CMP_GOLDEN, seq=0,
                                                              time_base=CMP_TIME_BASE)


def test_libcaer_cmp_time_restarts_per_packet_and_x_carries_over():
    dec = make_decoder('libcaer_cmp', W, H, strict=True)
    dec.decode(CMP_GOLDEN[:-2], seq=0, time_base=CMP_TIME_BASE)
    # Next packet, time_base 1.5 s: no ADDR_X (x = 7 from the last packet), ADDR_Y y = 4 ON
    # (0x3804) at t = 1 500 000; TIME_LOW 1 (0x1001); VECT_BASE_Y 0 ON (0x4800), VECT_8 bit
    # 1 (0x5002): (7, 1, ON, 1 500 001).
    out = dec.decode(struct.pack('<4H', 0x3804, 0x1001, 0x4800, 0x5002), seq=1,
                     time_base=1_500_000_000)
    assert as_tuples(out) == [(7, 4, 1, 1_500_000), (7, 1, 1, 1_500_001)]
    # After a lost packet the column is unknown until the next ADDR_X.
    out = dec.decode(struct.pack('<3H', 0x3804, 0x2009, 0x3002), seq=3,
                     time_base=1_600_000_000)
    assert as_tuples(out) == [(9, 2, 0, 1_600_000)]
    assert (dec.stats.no_state_events, dec.stats.sequence_gaps) == (1, 1)


def test_libcaer_cmp_outside_the_sensor_and_backwards_are_skipped_or_raise():
    # ADDR_X 5, ADDR_Y y = 40 (>= H = 32), then time_base earlier than the last event's.
    data = struct.pack('<2H', 0x2005, 0x3028)
    dec = make_decoder('libcaer_cmp', W, H)
    assert dec.decode(data, seq=0, time_base=CMP_TIME_BASE).size == 0
    assert dec.stats.out_of_sensor == 1
    dec.decode(CMP_GOLDEN, seq=1, time_base=CMP_TIME_BASE)
    assert dec.decode(CMP_GOLDEN, seq=2, time_base=CMP_TIME_BASE - 1000).size == 0
    assert dec.stats.time_backwards == 5
    with pytest.raises(MalformedPacketError, match='outside the 64x32 sensor'):
        make_decoder('libcaer_cmp', W, H, strict=True).decode(data, time_base=0)
    with pytest.raises(MalformedPacketError, match='need the message time_base'):
        make_decoder('libcaer_cmp', W, H).decode(data)


# --------------------------------------------------------------------------------- libcaer

def caer_event(x: int, y: int, p: int, ts: int, valid: int = 1) -> bytes:
    """One libcaer polarity event: uint32 data (valid | p << 1 | y << 2 | x << 17), int32 ts."""
    return struct.pack('<Ii', valid | (p << 1) | (y << 2) | (x << 17), ts)


CAER_TIME_BASE = 2_000_000_123  # ns; t = (time_base + ts * 1000) // 1000 = 2 000 000 + ts
CAER_GOLDEN = (
    struct.pack('<Ii', 0x000A000F, 10)           # 1 | ON << 1 | 3 << 2 | 5 << 17: (5, 3, ON)
    + struct.pack('<Ii', 0x000E0008, 20)         # valid mark clear: (7, 2, OFF) skipped
    + struct.pack('<Ii', 0x000C0011, 2147483600)  # 1 | 4 << 2 | 6 << 17: (6, 4, OFF)
    + struct.pack('<Ii', 0x00020003, 5)          # ts went back: a 2^31 us wrap; (1, 0, ON)
)
CAER_EVENTS = [(5, 3, 1, 2_000_010), (6, 4, 0, 2_000_000 + 2147483600),
               (1, 0, 1, 2_000_000 + (1 << 31) + 5)]


def test_libcaer_golden_words():
    assert caer_event(5, 3, 1, 10) == CAER_GOLDEN[:8]
    dec = make_decoder('libcaer', W, H, strict=True)
    assert as_tuples(dec.decode(CAER_GOLDEN, seq=0, time_base=CAER_TIME_BASE)) == CAER_EVENTS
    s = dec.stats
    assert (s.events, s.words, s.invalid_events, s.time_wraps) == (3, 4, 1, 1)
    # Big-endian: each 32-bit field byte-swapped.
    swapped = np.frombuffer(CAER_GOLDEN, '<u4').astype('>u4').tobytes()
    dec = make_decoder('libcaer', W, H, strict=True)
    assert as_tuples(dec.decode(swapped, time_base=CAER_TIME_BASE, is_bigendian=True)) == \
        CAER_EVENTS
    assert dec.stats.bigendian_packets == 1


def test_libcaer_negative_timestamps_and_coordinates():
    data = caer_event(1, 1, 0, -5) + caer_event(70, 1, 0, 6) + caer_event(2, 2, 1, 7)
    dec = make_decoder('libcaer', W, H)
    assert as_tuples(dec.decode(data, time_base=0)) == [(2, 2, 1, 7)]
    assert (dec.stats.unknown_words, dec.stats.out_of_sensor) == (1, 1)
    with pytest.raises(MalformedPacketError, match='negative timestamp'):
        make_decoder('libcaer', W, H, strict=True).decode(data, time_base=0)
    # libcaer addresses 15-bit coordinates, evt3 11-bit ones.
    make_decoder('libcaer', 32768, 32768)
    with pytest.raises(ValueError, match='outside what libcaer_cmp can address'):
        make_decoder('libcaer_cmp', 4096, 32)


# ----------------------------------------------------------------------- encoders, streams

def random_events(n: int, duration_us: int, seed: int, start_us: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    events = np.zeros(n, EVENT_DTYPE)
    events['t'] = start_us + np.sort(rng.integers(0, duration_us, n))
    # Neighbouring rows at one time and column as well as lone events (both word kinds).
    events['x'] = np.where(rng.random(n) < 0.5, 3, rng.integers(0, W, n))
    events['y'] = rng.integers(0, H, n)
    events['p'] = rng.integers(0, 2, n)
    order = np.lexsort((events['y'], events['p'], events['x'], events['t']))
    return events[order]


@pytest.mark.parametrize('encoding', LIBCAER)
def test_round_trip_through_packets_like_the_driver_publishes(encoding):
    events = random_events(20_000, 50_000_000, seed=1, start_us=1_700_000_000_000_000)
    enc = make_encoder(encoding, W, H)
    dec = make_decoder(encoding, W, H, strict=True)
    out = []
    for chunk in np.array_split(events, 200):
        packet = enc.encode(chunk)
        out.append(dec.decode(packet.data, seq=packet.seq, time_base=packet.time_base))
    np.testing.assert_array_equal(np.concatenate(out), events)
    assert dec.stats.events == events.size


def test_libcaer_cmp_encoder_writes_vectors_like_the_driver():
    # Rows 8, 10, 11 at one time, column and polarity: VECT_BASE_Y 8 + VECT_8 0b1101; then a
    # lone event: ADDR_Y. The packet starts with ADDR_X (time 0 = time_base).
    events = np.array([(3, 8, 1, 7), (3, 10, 1, 7), (3, 11, 1, 7), (3, 20, 0, 7)], EVENT_DTYPE)
    data = encode_packet('libcaer_cmp', events, width=W, height=H, time_base=7000)
    # 0x2003: ADDR_X 3; 0x4808: VECT_BASE_Y (4 << 12) | ON << 11 | 8; 0x500D: VECT_8 bits
    # 0, 2, 3; 0x3014: ADDR_Y (3 << 12) | OFF | 20. No time word: t - time_base = 0.
    assert struct.unpack(f'<{len(data) // 2}H', data) == (0x2003, 0x4808, 0x500D, 0x3014)
    with pytest.raises(EventEncodeError, match='spans at most'):
        encode_packet('libcaer_cmp', np.array([(0, 0, 0, 0), (0, 0, 0, 1 << 24)], EVENT_DTYPE),
                      width=W, height=H)


@pytest.mark.parametrize('encoding', LIBCAER)
def test_event_stream_accepts_the_libcaer_encodings(encoding):
    assert encoding in SUPPORTED_ENCODINGS
    events = random_events(3000, 400_000, seed=2)
    stream = EventStream(window_us=100_000)
    enc = make_encoder(encoding, W, H)
    windows = 0
    for chunk in np.array_split(events, 40):
        packet = enc.encode(chunk)
        windows += stream.push(packet.data, encoding=encoding, width=W, height=H,
                               seq=packet.seq, time_base=packet.time_base)
    assert windows == 3
    stats = stream.stats()
    assert stats['encoding'] == encoding and stats['events'] == events.size


# ---------------------------------------------------------------------------------- fuzzing

@FUZZ
@given(packets=st.lists(st.binary(max_size=2048), max_size=6), encoding=st.sampled_from(LIBCAER),
       strict=st.booleans(), seqs=st.lists(st.integers(0, 2 ** 64 - 1), min_size=6,
                                           max_size=6),
       time_bases=st.lists(st.integers(0, 2 ** 62 - 1), min_size=6, max_size=6))
def test_fuzz_random_packets(packets, encoding, strict, seqs, time_bases):
    dec = make_decoder(encoding, W, H, strict=strict)
    last_t = None
    for data, seq, time_base in zip(packets, seqs, time_bases):
        try:
            out = dec.decode(data, seq=seq, time_base=time_base)
        except MalformedPacketError:
            continue
        assert out.dtype == EVENT_DTYPE
        assert out.size <= len(data) * 4  # bounded: at most 8 events per 2-byte word
        if out.size:
            assert int(out['x'].max()) < W and int(out['y'].max()) < H
            assert bool(np.all(np.diff(out['t']) >= 0))
            if last_t is not None and dec.stats.stream_restarts == 0:
                assert int(out['t'][0]) >= last_t
            last_t = int(out['t'][-1])
    s = dec.stats
    assert s.events + s.skipped_events <= s.words * 8


@FUZZ
@given(seed=st.integers(0, 2 ** 32 - 1), encoding=st.sampled_from(LIBCAER),
       flips=st.integers(1, 40))
def test_fuzz_mutated_packets(seed, encoding, flips):
    rng = np.random.default_rng(seed)
    events = random_events(300, 100_000, seed=seed % 1000)
    packet = make_encoder(encoding, W, H).encode(events)
    data = bytearray(packet.data)
    for at in rng.integers(0, len(data), flips):
        data[at] ^= 1 << int(rng.integers(0, 8))
    dec = make_decoder(encoding, W, H)
    out = dec.decode(bytes(data), seq=0, time_base=packet.time_base)
    assert out.size <= 8 * len(data) // 2
    assert bool(np.all(np.diff(out['t']) >= 0))


def _corrupt_time(encoding: str, data: bytes) -> bytes:
    """Return ``data`` with one event time far ahead, as a flipped bit makes it."""
    if encoding == 'mono':  # dt in bits [31:0] of the first 64-bit word: +2^31 ns
        words = np.frombuffer(data, '<u8').copy()
        words[0] |= np.uint64(1 << 31)
    elif encoding == 'libcaer':  # the first event's int32 timestamp: +2^30 us
        words = np.frombuffer(data, '<u4').copy()
        words[1] |= np.uint32(1 << 30)
    else:  # libcaer_cmp: the first TIME_HIGH word gets all its 12 bits: +16.7 s
        words = np.frombuffer(data, '<u2').copy()
        first = int(np.flatnonzero((words >> 12) == 0)[0])
        words[first] = 0x0FFF
    return words.tobytes()


@pytest.mark.parametrize('encoding', LIBCAER + ('mono',))
def test_one_corrupt_time_costs_at_most_its_packet(encoding):
    """
    A time far ahead in one packet must not stall the stream.

    The next packet's time_base re-anchors it (time_resets), where every later event was
    dropped as 'back in time' (for 35.8 min of libcaer time, 16.8 s of libcaer_cmp, 4.3 s of
    mono).
    """
    events = random_events(40_000, 2_000_000, seed=3, start_us=1_700_000_000_000_000)
    enc = make_encoder(encoding, W, H)
    dec = make_decoder(encoding, W, H)
    chunks = np.array_split(events, 200)
    out = []
    for k, chunk in enumerate(chunks):
        packet = enc.encode(chunk)
        data = _corrupt_time(encoding, packet.data) if k == 50 else packet.data
        out.append(dec.decode(data, seq=packet.seq, time_base=packet.time_base))
    np.testing.assert_array_equal(np.concatenate(out[51:]), np.concatenate(chunks[51:]))
    np.testing.assert_array_equal(np.concatenate(out[:50]), np.concatenate(chunks[:50]))
    assert dec.stats.time_resets == 1
    assert dec.stats.events >= events.size - chunks[50].size


def test_libcaer_a_timestamp_slightly_out_of_order_is_no_wrap():
    """Only a fall of more than half the 31-bit range is a wrap; 1 us back is one bad event."""
    data = caer_event(1, 1, 1, 100) + caer_event(2, 1, 1, 99) + caer_event(3, 1, 1, 101)
    dec = make_decoder('libcaer', W, H)
    assert as_tuples(dec.decode(data, time_base=0)) == [(1, 1, 1, 100), (3, 1, 1, 101)]
    assert (dec.stats.time_wraps, dec.stats.time_backwards) == (0, 1)
    later = caer_event(4, 2, 0, 5_000)
    assert as_tuples(dec.decode(later, time_base=1_000_000)) == [(4, 2, 0, 6_000)]
    with pytest.raises(MalformedPacketError):
        make_decoder('libcaer', W, H, strict=True).decode(data, time_base=0)
    wrapped = caer_event(1, 1, 1, (1 << 31) - 10) + caer_event(2, 1, 1, 5)
    dec = make_decoder('libcaer', W, H)
    assert [t for *_, t in as_tuples(dec.decode(wrapped, time_base=0))] == \
        [(1 << 31) - 10, (1 << 31) + 5]
    assert dec.stats.time_wraps == 1


def test_libcaer_packets_as_the_driver_stamps_them_are_no_resets():
    """libcaer_driver's libcaer time_base is the 31-bit epoch's start, not the first event."""
    time_base = 1_700_000_000_000_000_000  # ns: the epoch's start, the same in every packet
    dec = make_decoder('libcaer', W, H)
    times = []
    for k in range(20):  # 10 ms packets from 5 s into the epoch
        ts = [5_000_000 + 10_000 * k + 100 * i for i in range(50)]
        data = b''.join(caer_event(i % W, i % H, i % 2, t) for i, t in enumerate(ts))
        times += [int(t) for t in dec.decode(data, seq=k, time_base=time_base)['t']]
    assert len(times) == 1000 and times == sorted(times)
    assert (dec.stats.time_resets, dec.stats.time_backwards) == (0, 0)


def test_a_packet_a_little_back_in_time_is_skipped_not_re_anchored():
    """Back by less than REANCHOR_US: the packet's events are dropped, the stream kept."""
    dec = make_decoder('mono', W, H)
    first = random_events(50, 200_000, seed=1, start_us=1_000_000)
    data = encode_packet('mono', first, width=W, height=H)
    assert dec.decode(data, time_base=int(first['t'][0]) * 1000).size == 50
    back = random_events(20, 50_000, seed=2, start_us=1_120_000)  # before the last (~1.2 s)
    data = encode_packet('mono', back, width=W, height=H)
    out = dec.decode(data, time_base=int(back['t'][0]) * 1000)
    assert out.size == 0 and dec.stats.time_backwards == 20 and dec.stats.time_resets == 0
