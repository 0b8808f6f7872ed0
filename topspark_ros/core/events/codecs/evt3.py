"""
Prophesee EVT 3.0 (``evt3``, metavision_driver): decoder and encoder.

A stream of 16-bit little-endian words whose 4 most significant bits give the word type. The
decoder keeps a state (row, vector base, polarity, time) that continues across the packets of
one stream:

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
below); backward steps are corrupt data. A stream that writes EVT_TIME_HIGH only when it changes
writes none while no event occurs, so its clock jumps forward after a quiet spell: a packet
takes at once a forward step as large as its header stamp advanced since the packet before
(``decode(stamp_ns=...)``, :meth:`Evt3Decoder._note_stamp`), and a file
(:attr:`Evt3Decoder.trust_time_jumps`) any forward step below half the wrap-around.
Decoded times are sensor times:
the first EVT_TIME_HIGH of a stream fixes them modulo 2^24 (a stream starts in epoch 0).
An EVT_TIME_HIGH keeps the current EVT_TIME_LOW until the next one arrives (as Prophesee's
and event_camera_codecs' decoders do). The packet's ``time_base`` is not used by evt3.

Events that cannot be placed because the decoder does not know the state they depend on
(events before the first EVT_ADDR_Y / VECT_BASE_X / complete time of a stream, as when a
subscriber joins a running camera, and after a lost packet: the decoder then forgets its row,
vector base and time, since the lost packet may have changed them) are counted in
``stats.no_state_events`` and skipped in both modes: they are not malformed. The next
EVT_TIME_HIGH after a sequence gap is read as the nearest time high at or after the last
known one, which keeps the wrap-around count right for losses of up to 16.8 s of sensor time.

Corrupt data
------------
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
stream (``test/core/events/test_evt3_resync.py``): one random 4 KB or 64 KB packet (20 each), a
wrong ``is_bigendian`` or a burst of 50 random packets in place of a true packet cost 8.8 to
9.1 ms of events after them (before: never back within the 10 s that followed); an
EVT_TIME_HIGH with a flipped bit costs the events up to the next EVT_TIME_HIGH (before: 4.2
s). The encoders write every jump beyond the window :data:`EVT3_RESYNC_WORDS` times, so their
streams decode unchanged.

Speed
-----
The decoder first runs a kernel that assumes a clean packet and branches once per word on its
type, each type doing only its own work (:func:`_evt3_fast`, 2 to 4 ns a word); if the packet
holds anything to sort out, it changes nothing and the packet is decoded again by the exact
kernel (:func:`_evt3_decode`).
Both give the same result on clean packets (tested). ``benchmarks/bench_event_decode.py``
measures the throughput; the figures are in ``docs/benchmarks-events.md``.

Encoding
--------
:func:`encode_evt3` and :class:`Evt3Encoder` turn events back into packet bytes, so that
``decode(encode(x)) == x``. The encoder vectorises runs of same-time, same-row,
same-polarity events as a sensor does and bridges gaps longer than 8.4 s with extra
EVT_TIME_HIGH words.
"""

from typing import Optional, Tuple

import numba
from numba.cpython.unsafe.numbers import leading_zeros, trailing_zeros
import numpy as np

from topspark_ros.core.events import EVENT_DTYPE
from topspark_ros.core.events.codecs.base import (check_events, check_size, E_NONE,
                                                  E_OUT_OF_SENSOR, E_TIME_BACKWARDS,
                                                  E_UNKNOWN_WORD, event_bound, fresh_state, JIT,
                                                  N_STATE, S_BASE, S_CAND, S_HAVE_HIGH, S_HAVE_LOW,
                                                  S_HIGH, S_LAST_T, S_LOW, S_POL, S_STEP, S_VOTES,
                                                  S_Y, StreamDecoder, StreamEncoder)
from topspark_ros.core.events.codecs.stats import (C_EVENTS, C_NO_STATE, C_OTHER_WORDS,
                                                   C_OUT_OF_SENSOR, C_PADDING, C_TIME_BACKWARDS,
                                                   C_TIME_REFUSED, C_TIME_RESETS, C_TIME_RESYNCS,
                                                   C_TIME_WRAPS, C_TRIGGERS, C_UNKNOWN_WORDS,
                                                   C_WORDS)

EVT3_MAX_SIZE = 2048
"""Largest sensor width and height EVT 3.0 can address (11-bit coordinates)."""
EVT3_TIME_HIGH_STEP = 2
"""Largest forward step of EVT_TIME_HIGH (units of 4096 us) taken at once (see "Corrupt data")."""
EVT3_TIME_HIGH_BACK = 1
"""Largest backward step of EVT_TIME_HIGH taken at once (its events then count as backwards)."""
EVT3_RESYNC_WORDS = 3
"""EVT_TIME_HIGH words that must agree before the decoder re-anchors on a larger jump."""

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
_EVT3_TABLES = np.zeros((2, 16), np.int64)
"""By word type: valid mask, vector span."""
_EVT3_TABLES[0, EVT3_VECT_12] = 0xFFF
_EVT3_TABLES[0, EVT3_VECT_8] = 0xFF
_EVT3_TABLES[1, EVT3_VECT_12] = 12
_EVT3_TABLES[1, EVT3_VECT_8] = 8


@numba.njit(**JIT)
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
                counts[C_NO_STATE] += 1
            elif t < last_t:
                counts[C_TIME_BACKWARDS] += 1
                if strict:
                    return n, last_t, E_TIME_BACKWARDS
            elif y >= height or x0 + k >= width:
                counts[C_OUT_OF_SENSOR] += 1
                if strict:
                    return n, last_t, E_OUT_OF_SENSOR
            else:
                e = out[n]
                e.x = x0 + k
                e.y = y
                e.p = p
                e.t = t
                n += 1
                last_t = t
    return n, last_t, E_NONE


@numba.njit(**JIT)
def _put_vector(out, n, x0, bits, y, p, t):
    """Write an event at ``x0 + k`` for each set bit ``k`` of ``bits`` from row ``n``; return n."""
    while bits != 0:
        e = out[np.uint64(n)]  # unsigned: no negative-index wrap-around code
        e.x = x0 + trailing_zeros(bits)
        e.y = y
        e.p = p
        e.t = t
        n += 1
        bits &= bits - 1
    return n


_UNKNOWN = 1 << 40
"""Stand-in of an unknown row or vector base in :func:`_evt3_fast` (fails every bound)."""
_NO_TIME = -(1 << 50)
"""Stand-in of an unknown time high or low in :func:`_evt3_fast` (time before any event)."""


@numba.njit(**JIT)
def _evt3_fast(words, width, height, tables, state, counts, out):
    """
    Decode a packet of valid evt3 words into ``out`` (EVENT_DTYPE), the common case first.

    Returns ``(n_events, clean)``. ``clean`` is ``False`` when the packet holds anything
    that needs sorting out (an event without state, outside the sensor or back in time, a
    reserved word): then ``state`` and ``counts`` are left untouched and the caller decodes
    the packet again with :func:`_evt3_decode`, which handles every case. Real streams are
    clean apart from the start of a stream and the packet after a lost one.

    One branch per word type, the most common first (EVT_ADDR_X, EVT_ADDR_Y, EVT_TIME_LOW,
    then vectors), each doing only its own work; the checks of every event (inside the
    sensor, not back in time, state known: an unknown row, vector base or time is a value
    that fails them, :data:`_UNKNOWN`, :data:`_NO_TIME`) are accumulated, not branched on.
    The word types of real streams follow each other predictably enough (a row, its events,
    a time every microsecond) that this ran 1.7 to 3 times faster than a kernel without
    data-dependent branches that did every type's work for every word (4.8 to 6.6 ns a word
    against 1.6 to 4.0 on the lone-event, sensor-mix and bursts streams of
    ``benchmarks/bench_event_decode.py``; docs/benchmarks-events.md).
    """
    mask_of = tables[0]
    span_of = tables[1]
    y = state[S_Y] if state[S_Y] >= 0 else _UNKNOWN
    base = state[S_BASE] if state[S_BASE] >= 0 else _UNKNOWN
    pol = state[S_POL]
    have_high = state[S_HAVE_HIGH] == 1
    hint = state[S_HAVE_HIGH] == 2
    high = state[S_HIGH]
    low = state[S_LOW] if state[S_HAVE_LOW] != 0 else _NO_TIME
    last_t = state[S_LAST_T]
    step = max(state[S_STEP], EVT3_TIME_HIGH_STEP)
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
        if code == EVT3_ADDR_X:  # one event at (x, y, t)
            x = w & 0x7FF
            bad |= np.int64((x >= width) | (y >= height) | (t < last_t))
            e = out[np.uint64(n)]  # unsigned: no negative-index wrap-around code
            e.x = x
            e.y = y
            e.p = (w >> 11) & 1
            e.t = t
            n += 1
            last_t = t
        elif code == EVT3_ADDR_Y:
            y = w & 0x7FF
        elif code == EVT3_TIME_LOW:
            low = w & 0xFFF
            t = tbase + low
        elif code == EVT3_VECT_12 or code == EVT3_VECT_8:
            m = w & mask_of[code]
            if m != 0:  # the last event (highest set bit) must lie inside the sensor
                bad |= np.int64((base + 63 - leading_zeros(m) >= width) | (y >= height)
                                | (t < last_t))
                last_t = t
                n = _put_vector(out, n, base, m, y, pol, t)
            base += span_of[code]
        elif code == EVT3_VECT_BASE_X:
            base = w & 0x7FF
            pol = (w >> 11) & 1
        elif code == EVT3_TIME_HIGH:
            d = (w - high) & 0xFFF
            if have_high:
                if d <= step:
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
    if bad != 0:
        return n, False
    state[S_Y] = y if y < _UNKNOWN else -1
    state[S_BASE] = base if base < _UNKNOWN else -1
    state[S_POL] = pol
    state[S_HAVE_HIGH] = 1 if have_high else (2 if hint else 0)
    state[S_HIGH] = high
    state[S_HAVE_LOW] = 1 if low >= 0 else 0
    state[S_LOW] = low if low >= 0 else 0
    state[S_LAST_T] = last_t
    counts[C_TIME_WRAPS] += wraps
    counts[C_TRIGGERS] += triggers
    counts[C_OTHER_WORDS] += others
    counts[C_PADDING] += padding
    counts[C_EVENTS] += n
    counts[C_WORDS] += nw
    return n, True


@numba.njit(**JIT)
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
        n = _put_vector(out, n, x0, m & (m - 1), y, p, t)
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


@numba.njit(**JIT)
def _evt3_decode(words, width, height, strict, state, counts, tables, out):
    """
    Decode evt3 ``words`` (uint16) into ``out`` (EVENT_DTYPE) from row 0, handling every case.

    ``state`` (int64 [N_STATE]) and ``counts`` (int64 [N_COUNTS]) are updated in place.
    ``out`` needs one spare row past the events. Returns ``(n_events, error_code,
    word_index)``; in strict mode decoding stops at the first problem with its code and index.
    The common words go through :func:`_evt3_run`; this loop handles the others.
    ``tables`` is :data:`_EVT3_TABLES`.
    """
    y = state[S_Y]
    base = state[S_BASE]
    pol = state[S_POL]
    have_high = state[S_HAVE_HIGH] == 1
    hint = state[S_HAVE_HIGH] == 2
    high = state[S_HIGH]
    have_low = state[S_HAVE_LOW] != 0
    low = state[S_LOW]
    last_t = state[S_LAST_T]
    cand = state[S_CAND]
    votes = state[S_VOTES]
    step = max(state[S_STEP], EVT3_TIME_HIGH_STEP)
    n = 0
    err = E_NONE
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
                if d <= step or 4096 - d <= EVT3_TIME_HIGH_BACK:
                    # Plausible: take it; a pending jump was corrupt data.
                    if d <= step:
                        if (high & 0xFFF) + d >= 4096:
                            counts[C_TIME_WRAPS] += 1
                        high += d
                    else:
                        high -= 4096 - d
                    if votes != 0:
                        counts[C_TIME_REFUSED] += 1
                        votes = 0
                elif votes != 0:
                    dc = (w - cand) & 0xFFF
                    if dc <= EVT3_TIME_HIGH_STEP:  # agrees with the pending jump
                        cand += dc
                        votes += 1
                    else:  # neither: the pending jump was corrupt, this is a new one
                        counts[C_TIME_REFUSED] += 1
                        cand = high + (d if d < 2048 else d - 4096)
                        votes = 1
                    if votes >= EVT3_RESYNC_WORDS:  # confirmed: re-anchor on it
                        if cand < 0:  # before the stream began: the same word an epoch on
                            cand %= 4096
                        if cand > high:
                            counts[C_TIME_WRAPS] += (cand >> 12) - (high >> 12)
                        high = cand
                        votes = 0
                        counts[C_TIME_RESYNCS] += 1
                        if high * 4096 < last_t:  # time went back and stayed: a reset
                            last_t = high * 4096
                            counts[C_TIME_RESETS] += 1
                            # The packet's events before the reset are dropped, so that the
                            # output goes back in time between packets only.
                            counts[C_NO_STATE] += n
                            n = 0
                else:  # an implausible jump: hold it back until confirmed
                    cand = high + (d if d < 2048 else d - 4096)
                    votes = 1
            elif hint:
                if (high & 0xFFF) + d >= 4096:
                    counts[C_TIME_WRAPS] += 1
                high += d
            else:
                high = w & 0xFFF
            have_high = True
        elif code == EVT3_EXT_TRIGGER:
            counts[C_TRIGGERS] += 1
        elif code == EVT3_PADDING or w == EVT3_DUMMY or w == EVT3_MIPI_PADDING:
            counts[C_PADDING] += 1
        elif code == EVT3_OTHERS or code == EVT3_CONTINUED_4 or code == EVT3_CONTINUED_12:
            counts[C_OTHER_WORDS] += 1
        elif code == 1 or code > EVT3_TIME_LOW:
            counts[C_UNKNOWN_WORDS] += 1
            if strict:
                err = E_UNKNOWN_WORD
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
            if err != E_NONE:
                err_at = i
                break
            if code != EVT3_ADDR_X and base >= 0:
                base += 12 if code == EVT3_VECT_12 else 8
        i += 1
    state[S_Y] = y
    state[S_BASE] = base
    state[S_POL] = pol
    state[S_HAVE_HIGH] = 1 if have_high else (2 if hint else 0)
    state[S_HIGH] = high
    state[S_HAVE_LOW] = 1 if have_low else 0
    state[S_LOW] = low
    state[S_LAST_T] = last_t
    state[S_CAND] = cand
    state[S_VOTES] = votes
    counts[C_EVENTS] += n
    counts[C_WORDS] += nw if err == E_NONE else err_at
    return n, err, err_at


@numba.njit(**JIT)
def _evt3_encode(xs, ys, ps, ts, state, restate, out):
    """
    Encode sorted events as evt3 words into ``out`` (uint16, large enough); return the count.

    ``state`` (int64 [N_STATE], the decoder's layout) is the stream state the words continue
    from and is updated. Runs of events with equal (t, y, p) and increasing x become
    VECT_BASE_X + VECT_12 / VECT_8 words, as a sensor emits them; lone events EVT_ADDR_X.
    A time high step beyond what the decoder takes at once (:data:`EVT3_TIME_HIGH_STEP`),
    and each step of 2047 that bridges a pause longer than 8.4 s, is written
    :data:`EVT3_RESYNC_WORDS` times, which confirms it to the decoder. Returns -1 (having
    written nothing past ``out``) if ``out`` is too small.
    """
    y = state[S_Y]
    base = state[S_BASE]
    pol = state[S_POL]
    have_high = state[S_HAVE_HIGH]
    high = state[S_HIGH]
    have_low = state[S_HAVE_LOW]
    low = state[S_LOW]
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
    state[S_Y] = y
    state[S_BASE] = base
    state[S_POL] = pol
    state[S_HAVE_HIGH] = have_high
    state[S_HIGH] = high
    state[S_HAVE_LOW] = have_low
    state[S_LOW] = low
    return nw


# ---------------------------------------------------------------------------------------------
# Decoder and encoder

class Evt3Decoder(StreamDecoder):
    """Decoder of an evt3 stream (see the module docstring)."""

    encoding = 'evt3'
    word_bytes = 2
    word_dtype = np.dtype('<u2')
    max_width = EVT3_MAX_SIZE
    max_height = EVT3_MAX_SIZE

    _last_stamp = None  # the header stamp (ns) of the last packet that had one

    trust_time_jumps = False
    """Take every forward EVT_TIME_HIGH step below half the 24-bit wrap at once (a file: one
    recorded stream, no transport to corrupt it), not only those the stamps allow."""

    def _note_stamp(self, stamp_ns: Optional[int], state: np.ndarray) -> None:
        """
        Let this packet's clock jump forward as far as the stamps went on since the last one.

        A stream that writes EVT_TIME_HIGH only when it changes (Prophesee: "transmitted only
        if they change"; event_camera_codecs' encoder) writes none while no event occurs: after
        a quiet spell its clock jumps forward by as long, which the decoder held back as
        corrupt data and lost the events of up to 3 time-high periods after each quiet spell
        of more than 8 ms (a user review: 717 of 2 000 events of a 200 ev/s stream). The
        packets' header stamps bound how far a true jump can go: the step the decoder takes
        at once is :data:`EVT3_TIME_HIGH_STEP` plus the stamps' advance (with a quarter more
        for the clocks' drift), at most 2047 steps (8.4 s).
        """
        if self.trust_time_jumps:
            state[S_STEP] = 2047
            return
        step = 0
        if stamp_ns is not None:
            stamp = int(stamp_ns)
            last = self._last_stamp
            if last is not None and stamp > last:
                advance_us = (stamp - last) / 1000.0
                step = min(2047, EVT3_TIME_HIGH_STEP + int(np.ceil(1.25 * advance_us / 4096)))
            self._last_stamp = stamp
        state[S_STEP] = step

    def _decode_words(self, words: np.ndarray, time_base: Optional[int],
                      state: np.ndarray) -> tuple:
        out = np.empty(int(event_bound(words, _EVENTS_PER_WORD)) + 1, EVENT_DTYPE)
        # The fast kernel changes state and counts only when the packet is clean; it
        # leaves a time jump that awaits confirmation to the exact kernel.
        if state[S_VOTES] == 0:
            n, clean = _evt3_fast(words, self.width, self.height, _EVT3_TABLES, state,
                                  self._counts, out)
            if clean:
                return out, n, state, self._counts, E_NONE, -1
        state, counts = state.copy(), self._counts.copy()
        n, err, err_at = _evt3_decode(words, self.width, self.height, self.strict, state,
                                      counts, _EVT3_TABLES, out)
        return out, n, state, counts, err, err_at


class Evt3Encoder(StreamEncoder):
    """Encoder of an evt3 stream (self-contained packets or a continuous word stream)."""

    encoding = 'evt3'
    max_width = EVT3_MAX_SIZE
    max_height = EVT3_MAX_SIZE

    def _packet(self, events: np.ndarray) -> Tuple[int, bytes]:
        if self.self_contained:
            # Restate everything, but bridge from the last time high (gaps > 8.4 s).
            have_high, high = int(self._state[S_HAVE_HIGH]), int(self._state[S_HIGH])
            fresh_state(self._state)
            self._state[S_HAVE_HIGH], self._state[S_HIGH] = have_high, high
        return 0, _encode_evt3_words(events, self._state, restate=self.self_contained)

    @classmethod
    def encode_one(cls, events: np.ndarray, *, width: int, height: int,
                   time_base: Optional[int] = None) -> bytes:
        """Return :func:`encode_evt3` of ``events`` (``time_base`` is unused by evt3)."""
        return encode_evt3(events, width=width, height=height)


def _encode_evt3_words(events: np.ndarray, state: np.ndarray, restate: bool = False) -> bytes:
    """
    Encode validated events as evt3 bytes, continuing from ``state`` (updated).

    ``restate``: begin with an EVT_TIME_HIGH even if the state already has that time high.
    """
    n = events.size
    if n == 0:
        return b''
    t = np.ascontiguousarray(events['t'])
    first_high = int(state[S_HIGH]) if state[S_HAVE_HIGH] else int(t[0]) >> 12
    span_high = (int(t[-1]) >> 12) - min(first_high, int(t[0]) >> 12)
    bound = (4 + EVT3_RESYNC_WORDS) * n + 4 + EVT3_RESYNC_WORDS * (span_high // 2047 + 2)
    out = np.empty(bound, np.uint16)
    nw = _evt3_encode(np.ascontiguousarray(events['x']), np.ascontiguousarray(events['y']),
                      np.ascontiguousarray(events['p']), t, state, restate, out)
    if nw < 0:  # cannot happen: the bound above holds at most 4 + 3 words per event
        raise RuntimeError(f'evt3 encoder output bound {bound} too small for {n} events')
    return out[:nw].astype('<u2').tobytes()


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
    width, height = check_size('evt3', width, height, EVT3_MAX_SIZE, EVT3_MAX_SIZE)
    events = check_events(events, width, height)
    state = np.zeros(N_STATE, np.int64)
    fresh_state(state)
    return _encode_evt3_words(events, state)
