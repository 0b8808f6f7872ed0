"""
Tests of the codecs package: the factory and registry, and properties every format keeps.

Round trips through packets and fuzzing (random and mutated packets) for every encoding of
:data:`~topspark_ros.core.events.codecs.SUPPORTED_ENCODINGS`; the encoders' refusals. Each
format's own tests are in ``test_evt3.py``, ``test_mono.py`` and ``test_libcaer.py``.
"""

from hypothesis import given, HealthCheck, settings, strategies as st
import numpy as np
import pytest

from topspark_ros.core.events import EVENT_DTYPE
from topspark_ros.core.events.codecs import (EventDecodeError, EventEncodeError, make_decoder,
                                             make_encoder, MalformedPacketError,
                                             SUPPORTED_ENCODINGS, UnknownEncodingError)
from topspark_ros.core.events.codecs.base import default_time_base
from topspark_ros.core.events.codecs.evt3 import encode_evt3
from topspark_ros.core.events.codecs.mono import encode_mono

W, H = 64, 8

FUZZ = settings(max_examples=150, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def ev(*rows) -> np.ndarray:
    """Return an EVENT_DTYPE array of ``(x, y, p, t)`` rows."""
    return np.array(list(rows), dtype=EVENT_DTYPE)


def test_unknown_encoding_and_bad_options_give_defined_errors():
    for make in (make_decoder, make_encoder):
        with pytest.raises(UnknownEncodingError, match='evt3, mono, libcaer_cmp, libcaer') \
                as info:
            make('evt2', W, H)
        assert isinstance(info.value, EventDecodeError) and isinstance(info.value, ValueError)
    assert SUPPORTED_ENCODINGS == ('evt3', 'mono', 'libcaer_cmp', 'libcaer')
    with pytest.raises(ValueError, match='unknown decoder option'):
        make_decoder('evt3', W, H, strickt=True)
    with pytest.raises(ValueError, match='outside what evt3 can address'):
        make_decoder('evt3', 4096, 10)


def test_every_registered_encoding_has_a_decoder_and_an_encoder():
    for encoding in SUPPORTED_ENCODINGS:
        assert make_decoder(encoding, W, H).encoding == encoding
        assert make_encoder(encoding, W, H).encoding == encoding


# ---------------------------------------------------------------------------- encoders

@st.composite
def event_streams(draw, max_t=1 << 26):
    """Draw (events sorted by t, width, height) with runs that evt3 vectorises."""
    width = draw(st.integers(1, 300))
    height = draw(st.integers(1, 40))
    n = draw(st.integers(0, 300))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    events = np.zeros(n, EVENT_DTYPE)
    events['t'] = np.sort(rng.integers(0, draw(st.sampled_from([5, 5000, max_t])), n))
    events['y'] = rng.integers(0, height, n)
    events['p'] = rng.integers(0, 2, n)
    # Runs of neighbouring x (bursts) mixed with scattered x.
    runs = np.minimum(np.cumsum(rng.integers(0, 3, n)) % width, width - 1)
    events['x'] = np.where(rng.random(n) < 0.5, runs, rng.integers(0, width, n))
    if n and draw(st.booleans()):  # whole bursts at one (t, y, p)
        k = min(n, 40)
        events['t'][:k] = events['t'][0]
        events['y'][:k] = events['y'][0]
        events['p'][:k] = events['p'][0]
        events['x'][:k] = np.sort(rng.choice(width, size=min(k, width), replace=False)
                                  if width >= k else rng.integers(0, width, k))
    return events, width, height


@FUZZ
@given(event_streams(), st.integers(0, 2**32 - 1), st.booleans())
def test_round_trip_through_packets(stream, seed, self_contained):
    events, width, height = stream
    rng = np.random.default_rng(seed)
    cuts = np.unique(np.concatenate([[0, events.size],
                                     rng.integers(0, events.size + 1, 4)]))
    for encoding in SUPPORTED_ENCODINGS:
        enc = make_encoder(encoding, width, height, self_contained=self_contained)
        dec = make_decoder(encoding, width, height, strict=True)
        out = []
        for a, b in zip(cuts[:-1], cuts[1:]):
            limit = {'mono': 4e6, 'libcaer_cmp': (1 << 24) - 1}.get(encoding)  # packet span
            if limit and b > a and events['t'][b - 1] - events['t'][a] > limit:
                continue
            packet = enc.encode(events[a:b])
            assert (packet.encoding, packet.n_events) == (encoding, b - a)
            out.append(dec.decode(packet.data, seq=packet.seq, time_base=packet.time_base))
            out[-1] = (out[-1], events[a:b])
        # evt3 carries time modulo 2^24 us: a stream comes back in the epoch of its start.
        shift = (int(events['t'][0]) >> 24) << 24 if encoding == 'evt3' and events.size else 0
        for got, want in out:
            want = want.copy()
            want['t'] -= shift
            np.testing.assert_array_equal(got, want)
        assert dec.stats.skipped_events == 0 and dec.stats.sequence_gaps == 0


@FUZZ
@given(event_streams(), st.integers(0, 2**32 - 1))
def test_evt3_stream_cut_at_any_word_boundary_round_trips(stream, seed):
    events, width, height = stream
    data = encode_evt3(events, width=width, height=height)
    rng = np.random.default_rng(seed)
    cuts = np.unique(np.concatenate([[0, len(data)], 2 * rng.integers(0, len(data) // 2 + 1, 5)]))
    dec = make_decoder('evt3', width, height, strict=True)
    out = [dec.decode(data[a:b], seq=i) for i, (a, b) in enumerate(zip(cuts[:-1], cuts[1:]))]
    want = events.copy()
    if want.size:
        want['t'] -= (int(want['t'][0]) >> 24) << 24
    np.testing.assert_array_equal(np.concatenate(out) if out else events[:0], want)


def test_encoders_refuse_what_they_cannot_encode():
    ok = ev((1, 1, 0, 10), (2, 1, 1, 20))
    with pytest.raises(EventEncodeError, match='non-decreasing'):
        encode_evt3(ok[::-1], width=W, height=H)
    with pytest.raises(EventEncodeError, match='outside'):
        encode_evt3(ok, width=2, height=H)
    with pytest.raises(EventEncodeError, match='split them'):
        encode_mono(ev((0, 0, 0, 0), (0, 0, 0, 5_000_000)), width=W, height=H)
    enc = make_encoder('evt3', W, H)
    enc.encode(ok)
    with pytest.raises(EventEncodeError, match='before the end of the previous chunk'):
        enc.encode(ok[:1])
    assert default_time_base(ok) == 10_000
    data = encode_mono(ok, width=W, height=H)
    np.testing.assert_array_equal(
        make_decoder('mono', W, H).decode(data, time_base=default_time_base(ok)), ok)


# ------------------------------------------------------------------------------ fuzzing

def check_output(dec, out: np.ndarray, last_t: int, resets=None) -> int:
    """
    Assert decoder output invariants; return the new last time.

    ``resets``: ``time_resets`` before the packet; a reset since lets the packet start back in
    time (the one case the decoders allow, between packets).
    """
    if resets is not None and dec.stats.time_resets > resets:
        last_t = 0
    assert out.dtype == EVENT_DTYPE
    if out.size:
        assert int(out['x'].max()) < dec.width and int(out['y'].max()) < dec.height
        assert int(out['p'].max()) <= 1
        t = out['t'].astype(np.int64)
        assert int(t[0]) >= last_t and bool(np.all(np.diff(t) >= 0))
        return int(t[-1])
    return last_t


@FUZZ
@given(st.sampled_from(SUPPORTED_ENCODINGS), st.lists(st.binary(max_size=300), max_size=6),
       st.booleans(), st.lists(st.integers(0, 50), min_size=6, max_size=6))
def test_fuzz_random_packets(encoding, packets, strict, seqs):
    dec = make_decoder(encoding, W, H, strict=strict)
    last_t, total = 0, 0
    for i, data in enumerate(packets):
        resets = dec.stats.time_resets
        try:
            out = dec.decode(data, seq=seqs[i], time_base=seqs[i] * 10**6)
        except MalformedPacketError:
            assert strict
            continue
        last_t = check_output(dec, out, last_t, resets) if dec.stats.stream_restarts == 0 \
            else 0
        total += out.size
    assert dec.stats.events == total


@FUZZ
@given(event_streams(max_t=1 << 22), st.sampled_from(SUPPORTED_ENCODINGS),
       st.integers(0, 2**32 - 1), st.booleans())
def test_fuzz_mutated_packets(stream, encoding, seed, strict):
    events, width, height = stream
    rng = np.random.default_rng(seed)
    enc = make_encoder(encoding, width, height, self_contained=bool(rng.integers(2)))
    dec = make_decoder(encoding, width, height, strict=strict)
    last_t = 0
    for i, chunk in enumerate(np.array_split(events, 3)):
        packet = enc.encode(chunk)
        data = bytearray(packet.data)
        for _ in range(int(rng.integers(0, 4))):
            kind = int(rng.integers(3))
            if kind == 0 and data:
                data[int(rng.integers(len(data)))] ^= 1 << int(rng.integers(8))
            elif kind == 1 and data:
                del data[int(rng.integers(len(data))):]
            else:
                at = int(rng.integers(len(data) + 1))
                data[at:at] = rng.integers(0, 256, int(rng.integers(1, 9)), np.uint8).tobytes()
        resets = dec.stats.time_resets
        try:
            out = dec.decode(bytes(data), seq=packet.seq + int(rng.integers(2)),
                             time_base=packet.time_base)
        except MalformedPacketError:
            assert strict
            continue
        if dec.stats.stream_restarts == 0:
            last_t = check_output(dec, out, last_t, resets)
