"""
The encodings of libcaer_driver (DAVIS / DVXplorer cameras): ``libcaer_cmp`` and ``libcaer``.

``libcaer_cmp``
    The default encoding of libcaer_driver, decoded in event_camera_codecs
    (``libcaer_cmp_decoder.h``): 16-bit little-endian words, the type in bits [15:12], a
    column-wise compression of libcaer's polarity events:

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
    The encoder writes what libcaer_driver writes (VECT_8 for rows of one time, column and
    polarity).

``libcaer``
    libcaer_driver's uncompressed encoding: libcaer's polarity events as the library stores
    them, 8 bytes each: a little-endian uint32 with the valid mark in bit 0, polarity in bit
    1, y in bits [16:2] and x in bits [31:17], then an int32 timestamp in microseconds. The
    event time is ``time_base + timestamp * 1000`` ns (returned in microseconds, rounded
    down); a timestamp more than 2^30 us smaller than the one before wrapped around its 31
    bits within the packet (2^31 us, counted in ``time_wraps``; the driver moves
    ``time_base`` by the wraps before the packet), one a little smaller is an event out of
    order, skipped (``time_backwards``; event_camera_codecs takes any fall for a wrap, which
    put the rest of the packet 35.8 min ahead). Events whose valid mark is clear are
    skipped (``invalid_events``), a negative timestamp is malformed (``unknown_words``).

Both decoders give the same events as event_camera_codecs on its test recordings (sums of t,
x, y and polarity over a real DAVIS346 libcaer recording with a timestamp wrap, see
``docs/benchmarks-events.md``). With ``is_bigendian`` the words (libcaer: each 32-bit field)
are byte-swapped first (``bigendian_packets``).
"""

import numba
import numpy as np

from topspark_ros.core.events.codecs.base import (
    E_NONE, E_OUT_OF_SENSOR, E_TIME_BACKWARDS, E_UNKNOWN_WORD, event_bound, EventEncodeError,
    JIT, S_BASE, S_LAST_T, S_POL, S_Y, TimeBaseDecoder, TimeBaseEncoder,
)
from topspark_ros.core.events.codecs.stats import (C_EVENTS, C_INVALID, C_NO_STATE,
                                                   C_OUT_OF_SENSOR, C_TIME_BACKWARDS, C_TIME_WRAPS,
                                                   C_UNKNOWN_WORDS, C_WORDS)

LIBCAER_CMP_MAX_DT_US = (1 << 24) - 1
"""Largest time offset from ``time_base`` a libcaer_cmp packet holds (microseconds, 16.8 s)."""
LIBCAER_CMP_MAX_SIZE = 1 << 11
"""Largest sensor width and height libcaer_cmp words can address (11-bit coordinates)."""
LIBCAER_MAX_SIZE = 1 << 15
"""Largest sensor width and height libcaer words can address (15-bit coordinates)."""
LIBCAER_TS_WRAP_US = 1 << 31
"""libcaer's 32-bit signed microsecond timestamps wrap around after 2^31 us (35.8 min)."""

# libcaer_cmp word types (the 4 most significant bits of a 16-bit word).
CMP_TIME_HIGH = 0x0
CMP_TIME_LOW = 0x1
CMP_ADDR_X = 0x2
CMP_ADDR_Y = 0x3
CMP_VECT_BASE_Y = 0x4
CMP_VECT_8 = 0x5


def _cmp_events_per_word() -> np.ndarray:
    """Return ``uint8 [65536]``: the events each libcaer_cmp word holds (ADDR_Y, VECT_8)."""
    per_word = np.zeros(65536, np.uint8)
    per_word[CMP_ADDR_Y << 12:(CMP_ADDR_Y + 1) << 12] = 1
    vect = np.arange(4096) & 0xFF
    per_word[CMP_VECT_8 << 12:(CMP_VECT_8 + 1) << 12] = [bin(v).count('1') for v in vect]
    return per_word


_CMP_EVENTS_PER_WORD = _cmp_events_per_word()


@numba.njit(**JIT)
def _emit(out, n, x, y, p, t, last_t, width, height, strict, counts):
    """
    Write one event at row ``n`` unless it goes back in time or lies outside the sensor.

    Returns ``(n, last_t, error_code)`` (the libcaer kernels' per-event check).
    """
    if t < last_t:
        counts[C_TIME_BACKWARDS] += 1
        return n, last_t, E_TIME_BACKWARDS if strict else E_NONE
    if x >= width or y >= height:
        counts[C_OUT_OF_SENSOR] += 1
        return n, last_t, E_OUT_OF_SENSOR if strict else E_NONE
    e = out[n]
    e.x = x
    e.y = y
    e.p = p
    e.t = t
    return n + 1, t, E_NONE


@numba.njit(**JIT)
def _cmp_decode(words, time_base_ns, width, height, strict, state, counts, out):
    """
    Decode libcaer_cmp ``words`` (uint16) into ``out`` (EVENT_DTYPE); see the module docstring.

    The column x (``S_BASE``), the vector base row (``S_Y``) and polarity carry over from
    packet to packet; the time starts at ``time_base`` in every packet. Returns
    ``(n_events, error_code, word_index)``; ``word_index`` is where a strict decoder stopped.
    """
    x = state[S_BASE]
    ybase = state[S_Y]
    pol = state[S_POL]
    last_t = state[S_LAST_T]
    base_us = time_base_ns // 1000
    high = 0
    low = 0
    n = 0
    err = E_NONE
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
                    counts[C_NO_STATE] += 1
                else:
                    n, last_t, err = _emit(out, n, x, w & 0x7FF, (w >> 11) & 1, t, last_t,
                                           width, height, strict, counts)
            else:
                for k in range(8):
                    if (payload >> k) & 1:
                        if x < 0 or ybase < 0:
                            counts[C_NO_STATE] += 1
                        else:
                            n, last_t, err = _emit(out, n, x, ybase + k, pol, t, last_t,
                                                   width, height, strict, counts)
                            if err != E_NONE:
                                break
                if ybase >= 0:
                    ybase += 8
            if err != E_NONE:
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
            counts[C_UNKNOWN_WORDS] += 1
            if strict:
                err = E_UNKNOWN_WORD
                err_at = i
                break
    state[S_BASE] = x
    state[S_Y] = ybase
    state[S_POL] = pol
    state[S_LAST_T] = last_t
    counts[C_EVENTS] += n
    counts[C_WORDS] += nw if err == E_NONE else err_at
    return n, err, err_at


@numba.njit(**JIT)
def _libcaer_decode(words, time_base_ns, width, height, strict, state, counts, out):
    """
    Decode libcaer ``words`` (uint32 pairs: data, timestamp) into ``out`` (EVENT_DTYPE).

    See the module docstring. Returns ``(n_events, error_code, word_index)``; ``word_index``
    (where a strict decoder stopped) counts 8-byte events.
    """
    last_t = state[S_LAST_T]
    base_us = time_base_ns // 1000
    wraps = 0
    ts_last = 0
    n = 0
    err = E_NONE
    err_at = -1
    nw = words.size // 2
    for i in range(nw):
        data = np.int64(words[2 * i])
        ts = np.int64(words[2 * i + 1])
        if ts >= LIBCAER_TS_WRAP_US:  # a negative int32: no libcaer timestamp
            counts[C_UNKNOWN_WORDS] += 1
            if strict:
                err = E_UNKNOWN_WORD
                err_at = i
                break
            continue
        if ts < ts_last:
            if ts_last - ts > LIBCAER_TS_WRAP_US // 2:  # wrapped around its 31 bits
                wraps += 1
                counts[C_TIME_WRAPS] += 1
            else:  # a little back: one event out of order (or corrupt), not a wrap
                counts[C_TIME_BACKWARDS] += 1
                if strict:
                    err = E_TIME_BACKWARDS
                    err_at = i
                    break
                continue
        ts_last = ts
        if (data & 1) == 0:
            counts[C_INVALID] += 1
            continue
        t = base_us + ts + wraps * LIBCAER_TS_WRAP_US  # (time_base + ts * 1000) // 1000
        n, last_t, err = _emit(out, n, (data >> 17) & 0x7FFF, (data >> 2) & 0x7FFF,
                               (data >> 1) & 1, t, last_t, width, height, strict, counts)
        if err != E_NONE:
            err_at = i
            break
    state[S_LAST_T] = last_t
    counts[C_EVENTS] += n
    counts[C_WORDS] += nw if err == E_NONE else err_at
    return n, err, err_at


@numba.njit(**JIT)
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


class LibcaerCmpDecoder(TimeBaseDecoder):
    """Decoder of a libcaer_cmp stream (see the module docstring)."""

    encoding = 'libcaer_cmp'
    word_bytes = 2
    word_dtype = np.dtype('<u2')
    max_width = LIBCAER_CMP_MAX_SIZE
    max_height = LIBCAER_CMP_MAX_SIZE
    kernel = staticmethod(_cmp_decode)

    def _max_events(self, words: np.ndarray) -> int:
        return int(event_bound(words, _CMP_EVENTS_PER_WORD))


class LibcaerDecoder(TimeBaseDecoder):
    """Decoder of a libcaer stream (see the module docstring)."""

    encoding = 'libcaer'
    word_bytes = 8
    word_dtype = np.dtype('<u4')  # two 32-bit fields: data, timestamp
    max_width = LIBCAER_MAX_SIZE
    max_height = LIBCAER_MAX_SIZE
    kernel = staticmethod(_libcaer_decode)

    def _max_events(self, words: np.ndarray) -> int:
        return words.size // 2

    def _word_at(self, words: np.ndarray, at: int) -> int:
        return (int(words[2 * at + 1]) << 32) | int(words[2 * at])  # data, timestamp

    def _unknown_word(self, word: int) -> str:
        return 'has a negative timestamp'


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


class LibcaerCmpEncoder(TimeBaseEncoder):
    """Encoder of libcaer_cmp packets (each counts time from its first event)."""

    encoding = 'libcaer_cmp'
    max_width = LIBCAER_CMP_MAX_SIZE
    max_height = LIBCAER_CMP_MAX_SIZE
    packet_bytes = staticmethod(_encode_cmp_words)


class LibcaerEncoder(TimeBaseEncoder):
    """Encoder of libcaer packets (each counts time from its first event)."""

    encoding = 'libcaer'
    max_width = LIBCAER_MAX_SIZE
    max_height = LIBCAER_MAX_SIZE
    packet_bytes = staticmethod(_encode_libcaer_words)
