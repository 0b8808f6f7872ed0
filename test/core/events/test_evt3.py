"""
Tests of the evt3 codec and of the stream logic every decoder shares, shown on evt3 words.

:mod:`topspark_ros.core.events.codecs.evt3`: golden streams word by word, the state across
packets, the 24-bit time, the two kernels, errors, the encoder; then
:class:`~topspark_ros.core.events.codecs.base.StreamDecoder`'s part (truncated packets, byte
order and buffer types, reset, ``max_packet_bytes``, sequence numbers).
"""

import array
import struct

import numpy as np
import pytest

from topspark_ros.core.events import EVENT_DTYPE
from topspark_ros.core.events.codecs import (base, DecoderStats, EventDecodeError, evt3,
                                             make_decoder, make_encoder, MalformedPacketError,
                                             MAX_SEQUENCE_GAP, PacketTooLargeError, stats)
from topspark_ros.core.events.codecs.evt3 import encode_evt3

W, H = 64, 8


def words(*ws: int) -> bytes:
    """Pack 16-bit evt3 words little-endian."""
    return struct.pack(f'<{len(ws)}H', *ws)


def wd(code: int, payload: int) -> int:
    """Return the evt3 word of type ``code`` with a 12-bit ``payload``."""
    assert 0 <= payload < 4096
    return (code << 12) | payload


def TH(v):  # noqa: N802 - word names as in the EVT 3.0 specification
    return wd(0x8, v)


def TH3(v):  # noqa: N802
    """Return a time high jump the decoder takes: the EVT_TIME_HIGH word 3 times."""
    return (TH(v),) * 3


def TL(v):  # noqa: N802
    return wd(0x6, v)


def AY(y, system=0):  # noqa: N802
    return wd(0x0, (system << 11) | y)


def AX(x, p):  # noqa: N802
    return wd(0x2, (p << 11) | x)


def VB(x, p):  # noqa: N802
    return wd(0x3, (p << 11) | x)


def V12(mask):  # noqa: N802
    return wd(0x4, mask)


def V8(payload):  # noqa: N802
    return wd(0x5, payload)


def ev(*rows) -> np.ndarray:
    """Return an EVENT_DTYPE array of ``(x, y, p, t)`` rows."""
    return np.array(list(rows), dtype=EVENT_DTYPE)


def as_tuples(events: np.ndarray) -> list:
    """Return events as a list of ``(x, y, p, t)`` int tuples."""
    return [(int(e['x']), int(e['y']), int(e['p']), int(e['t'])) for e in events]


# Every evt3 word type in one stream, with the events computed by hand.

# Every evt3 word type in one stream, with the events computed by hand.
GOLDEN = words(
    TH(0x001), TL(0x005),           # t = 1 * 4096 + 5 = 4101 us
    AY(3, system=1),                # y = 3 (system-type bit ignored)
    AX(7, 1),                       # (7, 3, ON, 4101)
    VB(10, 0),                      # vector base x = 10, OFF
    V12(0b1000_0000_0101),          # x = 10, 12, 21; base -> 22
    V8(0xF81),                      # bits 0 and 7 (bits 8-11 unused): x = 22, 29; base -> 30
    wd(0xA, 0x201),                 # EXT_TRIGGER, channel 2, rising: counted, no event
    wd(0xE, 0x018), wd(0x7, 0x005), wd(0xF, 0xABC), wd(0x9, 0x000),  # OTHERS, CONTINUED, pad
    TL(0x010),                      # t = 4096 + 16 = 4112
    AX(0, 0),                       # (0, 3, OFF, 4112)
    TH(0x002),                      # t = 2 * 4096 + 16 = 8208 (time low kept)
    AY(5), AX(1, 1),                # (1, 5, ON, 8208)
)
GOLDEN_EVENTS = [(7, 3, 1, 4101), (10, 3, 0, 4101), (12, 3, 0, 4101), (21, 3, 0, 4101),
                 (22, 3, 0, 4101), (29, 3, 0, 4101), (0, 3, 0, 4112), (1, 5, 1, 8208)]


def test_golden_stream_covers_every_word_type():
    dec = make_decoder('evt3', W, H, strict=True)
    out = dec.decode(GOLDEN)
    assert out.dtype == EVENT_DTYPE
    assert as_tuples(out) == GOLDEN_EVENTS
    s = dec.stats
    assert (s.packets, s.bytes, s.words, s.events) == (1, len(GOLDEN), len(GOLDEN) // 2, 8)
    assert (s.triggers, s.other_words, s.unknown_words, s.skipped_events) == (1, 3, 0, 0)
    assert s.padding_words == 1  # the type 0x9 word
    assert s.as_dict()['triggers'] == 1 and s.malformed == 0


@pytest.mark.parametrize('cut', range(0, len(GOLDEN) + 1, 2))
def test_state_continues_across_packets(cut):
    dec = make_decoder('evt3', W, H, strict=True)
    out = np.concatenate([dec.decode(GOLDEN[:cut], seq=0), dec.decode(GOLDEN[cut:], seq=1)])
    assert as_tuples(out) == GOLDEN_EVENTS
    assert dec.stats.packets == 2 and dec.stats.sequence_gaps == 0


def test_time_high_wraps_around_24_bits_also_across_packets():
    first = words(TH(0xFFF), TL(0xFFE), AY(0), AX(1, 0))
    second = words(TH(0x000), TL(0x001), AX(2, 1))
    # A jump of more than 2 time highs is taken once 3 EVT_TIME_HIGH words agree on it.
    third = words(*TH3(0x7FF), *TH3(0xFFE), *TH3(0x003), TL(0x000), AX(3, 0))
    dec = make_decoder('evt3', W, H, strict=True)
    out = np.concatenate([dec.decode(first, seq=7), dec.decode(second, seq=8),
                          dec.decode(third, seq=9)])
    assert as_tuples(out) == [(1, 0, 0, 0xFFF * 4096 + 0xFFE), (2, 0, 1, (1 << 24) + 1),
                              (3, 0, 0, (2 << 24) + 3 * 4096)]
    assert dec.stats.time_wraps == 2


def test_events_before_the_stream_state_is_known_are_skipped_and_counted():
    # A subscriber joining a running camera: no time, no row, no vector base yet.
    data = words(AX(1, 0), AY(2), AX(1, 0), TH(1), V12(0xFFF), TL(0), AX(4, 1),
                 VB(8, 1), V12(0b11))
    for strict in (False, True):
        dec = make_decoder('evt3', W, H, strict=strict)
        assert as_tuples(dec.decode(data)) == [(4, 2, 1, 4096), (8, 2, 1, 4096),
                                               (9, 2, 1, 4096)]
        assert dec.stats.no_state_events == 2 + 12


def test_sequence_gap_forgets_the_state_a_lost_packet_may_have_changed():
    head = words(TH(1), TL(0), AY(2), AX(1, 0), VB(0, 1))
    tail = words(AX(3, 0), V12(1), TH(1), TL(9), AY(4), AX(5, 1))
    dec = make_decoder('evt3', W, H, strict=True)
    dec.decode(head, seq=10)
    assert as_tuples(dec.decode(tail, seq=13)) == [(5, 4, 1, 4105)]
    s = dec.stats
    assert (s.sequence_gaps, s.packets_lost, s.no_state_events) == (1, 2, 2)
    # Without the gap the same words continue the state.
    dec = make_decoder('evt3', W, H, strict=True)
    dec.decode(head, seq=10)
    assert as_tuples(dec.decode(tail, seq=11)) == [(3, 2, 0, 4096), (0, 2, 1, 4096),
                                                   (5, 4, 1, 4105)]
    assert dec.stats.sequence_gaps == 0


def test_time_after_a_gap_continues_in_the_same_epoch():
    # Two wrap-arounds, then a lost packet: the next time high is read forward from the last.
    dec = make_decoder('evt3', W, H, strict=True)
    dec.decode(words(TH(0x000), TL(0), AY(0), AX(0, 0), *TH3(0x7FF), *TH3(0xFFE), TH(0x000),
                     TH(0x001), *TH3(0x7FF), *TH3(0xFFE), TH(0x000), TH(0x002), TL(0),
                     AX(1, 0)), seq=0)
    out = dec.decode(words(AX(2, 0), TH(0xF00), TL(7), AY(1), AX(3, 1)), seq=2)
    assert as_tuples(out) == [(3, 1, 1, (2 << 24) + 0xF00 * 4096 + 7)]
    s = dec.stats
    assert (s.time_wraps, s.sequence_gaps, s.no_state_events) == (2, 1, 1)


def test_fast_and_exact_kernels_agree_on_clean_streams():
    # decode() tries a low-branch kernel first and falls back to the exact one on any problem;
    # on clean data both must give the same events, state and counters.
    rng = np.random.default_rng(5)
    n = 200_000  # dense (as a sensor's stream): time high steps of 0 or 1, two wrap-arounds
    events = np.zeros(n, EVENT_DTYPE)
    events['t'] = np.sort(rng.integers(0, 3 << 24, n))
    events['y'] = rng.integers(0, H, n)
    events['x'] = np.where(rng.random(n) < 0.5, np.arange(n) % W, rng.integers(0, W, n))
    events['p'] = rng.integers(0, 2, n)
    wide = W  # vector words reach the sensor's edge (a clean packet for both kernels)
    data = np.frombuffer(encode_evt3(events, width=wide, height=H), '<u2')
    results = []
    for kernel in ('fast', 'exact'):
        state = np.zeros(base.N_STATE, np.int64)
        base.fresh_state(state)
        counts = np.zeros(stats.N_COUNTS, np.int64)
        out = np.empty(n + 1, EVENT_DTYPE)
        if kernel == 'fast':
            got, clean = evt3._evt3_fast(data, wide, H, evt3._EVT3_TABLES, state, counts, out)
            assert clean
        else:
            got, err, _ = evt3._evt3_decode(data, wide, H, True, state, counts,
                                            evt3._EVT3_TABLES, out)
            assert err == 0
        results.append((out[:got].copy(), state, counts))
    np.testing.assert_array_equal(results[0][0], events)
    np.testing.assert_array_equal(results[1][0], events)
    np.testing.assert_array_equal(results[0][1], results[1][1])
    np.testing.assert_array_equal(results[0][2], results[1][2])


def test_self_contained_packets_bridge_long_gaps():
    enc = make_encoder('evt3', W, H)
    dec = make_decoder('evt3', W, H, strict=True)
    # Gaps of 10 s and 90 s: longer than the 8.4 s a lone EVT_TIME_HIGH step can tell apart.
    chunks = [ev((1, 1, 0, 5)), ev((2, 2, 1, 10_000_000)), ev((3, 3, 0, 10_000_001)),
              ev((4, 4, 1, 100_000_000))]
    for chunk in chunks:
        packet = enc.encode(chunk)
        np.testing.assert_array_equal(dec.decode(packet.data, seq=packet.seq), chunk)
    # Each packet also decodes after a lost one (it restates time and row; a loss may span
    # up to 16.8 s of sensor time).
    lost = make_decoder('evt3', W, H, strict=True)
    enc = make_encoder('evt3', W, H)
    packets = [enc.encode(c) for c in chunks]
    lost.decode(packets[0].data, seq=0)
    np.testing.assert_array_equal(lost.decode(packets[2].data, seq=2), chunks[2])


def test_time_going_backwards_is_skipped_or_raises():
    data = words(TH(2), TL(5), AY(1), AX(1, 0),
                 TL(3), AX(2, 0), VB(0, 0), V12(0b111),  # low goes back: 4 events skipped
                 TH(1), TL(9), AX(3, 0),                 # high goes back one step: skipped
                 TH(2), TL(5), AX(4, 1))                 # caught up: returned
    dec = make_decoder('evt3', W, H)
    assert as_tuples(dec.decode(data)) == [(1, 1, 0, 8197), (4, 1, 1, 8197)]
    assert dec.stats.time_backwards == 5
    # Backwards across packets too.
    assert as_tuples(dec.decode(words(TL(4), AX(5, 0), TL(6), AX(6, 0)))) == [(6, 1, 0, 8198)]
    assert dec.stats.time_backwards == 6
    strict = make_decoder('evt3', W, H, strict=True)
    with pytest.raises(MalformedPacketError, match='backwards'):
        strict.decode(data)


def test_out_of_sensor_events_are_skipped_or_raise():
    data = words(TH(0), TL(0), AY(2), AX(W, 1), AX(W - 1, 1),
                 VB(W - 4, 0), V12(0xFFF),   # 4 inside, 8 outside
                 AY(H), AX(0, 0))            # row outside the sensor
    dec = make_decoder('evt3', W, H)
    out = dec.decode(data)
    assert as_tuples(out) == [(W - 1, 2, 1, 0)] + [(x, 2, 0, 0) for x in range(W - 4, W)]
    assert dec.stats.out_of_sensor == 1 + 8 + 1
    with pytest.raises(MalformedPacketError, match='outside the 64x8 sensor'):
        make_decoder('evt3', W, H, strict=True).decode(data)


@pytest.mark.parametrize('code', [0x1, 0xB, 0xC, 0xD])
def test_reserved_word_types_are_counted_or_raise(code):
    data = words(TH(0), TL(0), AY(0), wd(code, 0x123), AX(1, 0))
    dec = make_decoder('evt3', W, H)
    assert as_tuples(dec.decode(data)) == [(1, 0, 0, 0)]
    assert dec.stats.unknown_words == 1 and dec.stats.malformed == 1
    with pytest.raises(MalformedPacketError, match=f'reserved type 0x{code:x}'):
        make_decoder('evt3', W, H, strict=True).decode(data)


def test_evt3_encoder_vectorises_runs_and_bridges_long_gaps():
    burst = ev(*[(x, 2, 1, 100) for x in (5, 6, 8, 16, 17, 30)])
    data = encode_evt3(burst, width=W, height=H)
    codes = list(np.frombuffer(data, '<u2') >> 12)
    assert codes == [0x8, 0x6, 0x0, 0x3, 0x4, 0x5, 0x5]  # base 5: V12 {5,6,8,16}, V8 {17}, V8 {30}
    np.testing.assert_array_equal(make_decoder('evt3', W, H).decode(data), burst)
    far = ev((1, 1, 0, 0), (2, 1, 0, 20_000_000), (3, 1, 1, 90_000_000))
    data = encode_evt3(far, width=W, height=H)
    dec = make_decoder('evt3', W, H, strict=True)
    np.testing.assert_array_equal(dec.decode(data), far)
    assert dec.stats.time_wraps == 5


# ------------------------------------------- the stream logic of every decoder (base)

def test_sequence_going_back_restarts_the_stream():
    dec = make_decoder('evt3', W, H, strict=True)
    dec.decode(words(TH(5), TL(0), AY(0), AX(0, 0)), seq=4)
    out = dec.decode(words(TH(1), TL(0), AY(0), AX(1, 0)), seq=0)
    assert as_tuples(out) == [(1, 0, 0, 4096)]
    assert dec.stats.stream_restarts == 1 and dec.stats.time_backwards == 0


def test_truncated_packet_lenient_drops_the_tail_strict_raises_and_changes_nothing():
    dec = make_decoder('evt3', W, H)
    assert as_tuples(dec.decode(GOLDEN + b'\x12')) == GOLDEN_EVENTS
    assert dec.stats.truncated_bytes == 1
    strict = make_decoder('evt3', W, H, strict=True)
    strict.decode(GOLDEN[:4], seq=0)
    before = strict.stats
    with pytest.raises(MalformedPacketError, match='not a whole number'):
        strict.decode(GOLDEN[4:] + b'\x00', seq=1)
    with pytest.raises(MalformedPacketError):
        strict.decode(words(AY(0), wd(0xC, 0), AX(0, 0)), seq=1)
    assert strict.stats == before
    assert as_tuples(strict.decode(GOLDEN[4:], seq=1)) == GOLDEN_EVENTS
    assert strict.stats.sequence_gaps == 0


def test_big_endian_and_every_buffer_type_decode_alike():
    swapped = np.frombuffer(GOLDEN, '<u2').astype('>u2').tobytes()
    assert as_tuples(make_decoder('evt3', W, H).decode(swapped, is_bigendian=True)) == \
        GOLDEN_EVENTS
    for data in (bytearray(GOLDEN), memoryview(GOLDEN), np.frombuffer(GOLDEN, np.uint8),
                 array.array('B', GOLDEN), np.frombuffer(b'\x00' + GOLDEN, np.uint8)[1:]):
        assert as_tuples(make_decoder('evt3', W, H).decode(data)) == GOLDEN_EVENTS
    with pytest.raises(TypeError):
        make_decoder('evt3', W, H).decode('not bytes')
    assert make_decoder('evt3', W, H).decode(b'').size == 0


def test_reset_forgets_state_and_counters():
    dec = make_decoder('evt3', W, H)
    dec.decode(GOLDEN[:6], seq=3)
    dec.reset()
    assert dec.stats == DecoderStats()
    # The first 7 events need the row and time of the forgotten head; the last restates both.
    assert as_tuples(dec.decode(GOLDEN[6:], seq=0)) == GOLDEN_EVENTS[-1:]
    assert dec.stats.no_state_events == 7


def test_a_packet_over_max_packet_bytes_is_refused_unread_and_counted():
    head = words(TH(1), TL(0), AY(2), AX(1, 0))
    body = words(V12(0xFFF)) * 40  # 480 events in 80 bytes: 78 bytes of output per byte
    for strict in (False, True):
        dec = make_decoder('evt3', W, H, strict=strict, max_packet_bytes=64)
        assert as_tuples(dec.decode(head, seq=0)) == [(1, 2, 0, 4096)]
        with pytest.raises(PacketTooLargeError, match='80 bytes refused: larger than '
                           r'max_packet_bytes \(64\)'):
            dec.decode(body, seq=1)
        s = dec.stats
        assert (s.packets, s.packets_refused, s.bytes_refused, s.events) == (1, 1, 80, 1)
        # The stream goes on as after a lost packet: no stale row or vector base is used.
        assert as_tuples(dec.decode(words(AX(3, 1), TH(1), TL(7), AY(4), AX(5, 1)),
                                    seq=2)) == [(5, 4, 1, 4103)]
        assert dec.stats.sequence_gaps == 0 and dec.stats.no_state_events == 1
    with pytest.raises(ValueError, match='max_packet_bytes'):
        make_decoder('mono', W, H, max_packet_bytes=0)


def test_memory_per_packet_is_bounded_by_max_packet_bytes():
    import tracemalloc
    dec = make_decoder('evt3', 2048, 2048, max_packet_bytes=1 << 20)
    dec.decode(words(TH(0), TL(0), AY(0)))
    row = np.array([VB(0, 1)] + [V12(0xFFF)] * 170, '<u2')  # 2040 events in 342 bytes
    groups = (1 << 20) // row.nbytes
    vectors = np.tile(row, groups).tobytes()  # just under 1 MiB: 6.25 M events
    huge = vectors * 50  # 50 MiB, as the packet that took 4 GB and 12.5 s
    tracemalloc.start()
    try:
        assert len(dec.decode(vectors)) == 2040 * groups  # at the bound
        peak_at_bound = tracemalloc.get_traced_memory()[1]
        tracemalloc.reset_peak()
        with pytest.raises(EventDecodeError):
            dec.decode(huge)  # refused before anything is allocated
        peak_refused = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak_at_bound <= 80 * (1 << 20)
    assert peak_refused < 1 << 20


def test_sequence_numbers_wrap_around_at_2_64():
    top = 2 ** 64 - 2
    dec = make_decoder('evt3', W, H)
    for seq in (top, top + 1, 0, 1):  # 2^64 - 1 is followed by 0
        dec.decode(GOLDEN, seq=seq % 2 ** 64)
    s = dec.stats
    assert (s.sequence_gaps, s.packets_lost, s.stream_restarts) == (0, 0, 0)
    dec.decode(GOLDEN, seq=top)
    dec.decode(GOLDEN, seq=2)  # 3 packets lost across the wrap-around: top + 1, 0, 1
    assert (dec.stats.sequence_gaps, dec.stats.packets_lost) == (1, 3)


def test_a_sequence_jump_no_loss_explains_is_a_restart_not_a_loss():
    dec = make_decoder('evt3', W, H)
    for seq in (0, 2 ** 64 - 100, 2 ** 63, 7):  # seq near 2^64 or 2^63: not 1.8e19 lost
        dec.decode(GOLDEN, seq=seq)
    s = dec.stats
    assert (s.stream_restarts, s.sequence_gaps, s.packets_lost) == (3, 0, 0)
    dec.decode(GOLDEN, seq=8 + MAX_SEQUENCE_GAP)  # the largest gap counted as losses
    s = dec.stats
    assert (s.stream_restarts, s.sequence_gaps, s.packets_lost) == (3, 1, MAX_SEQUENCE_GAP)


def test_a_publisher_that_leaves_seq_at_0_loses_no_event():
    """
    A sensor's word stream cut into packets all numbered 0 (a bridge or converter).

    Each repeat was taken for a restart: the row and time forgotten at every packet, 87 %
    of the events of such a stream skipped, and the windows restarted (a review).
    """
    from topspark_ros.core.events.codecs import make_encoder
    rng = np.random.default_rng(3)
    n = 4000
    events = np.zeros(n, EVENT_DTYPE)
    events['t'] = np.sort(rng.integers(0, 2_000_000, n))
    events['x'] = rng.integers(0, W, n)
    events['y'] = rng.integers(0, H, n)
    events['p'] = rng.integers(0, 2, n)
    encoder = make_encoder('evt3', W, H, self_contained=False)
    edges = np.searchsorted(events['t'], np.arange(0, 2_000_001, 1000))
    packets = [encoder.encode(events[a:b]).data for a, b in zip(edges[:-1], edges[1:])]
    decoder = make_decoder('evt3', W, H)
    out = np.concatenate([decoder.decode(data, seq=0) for data in packets])
    s = decoder.stats
    assert (s.events, s.no_state_events, s.stream_restarts) == (n, 0, 0)
    assert s.unnumbered_packets == len(packets) - 1
    assert np.array_equal(out['t'], events['t'])
    decoder.decode(packets[0], seq=5)  # numbered from here: 5 then 3 is a restart
    decoder.decode(packets[0], seq=3)
    assert decoder.stats.stream_restarts == 1
