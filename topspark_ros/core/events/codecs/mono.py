"""
The ``mono`` encoding of event_camera_codecs (libcaer_driver): decoder and encoder.

One 64-bit little-endian word per event, ``dt`` in bits [31:0], ``x`` in [47:32], ``y`` in
[62:48], polarity in bit 63. The event time is ``time_base + dt`` with the packet's
``time_base``, in nanoseconds (event_camera_codecs' mono decoder adds the two with a time
multiplier of 1, and its decoders report nanoseconds); this decoder returns it in
microseconds, rounded down (``(time_base + dt) // 1000``). One packet spans at most 2^32 ns
(4.29 s) after its ``time_base``: :data:`MONO_MAX_DT_NS`. Packets carry no state from one to
the next.
"""

from typing import Optional

import numba
import numpy as np

from topspark_ros.core.events.codecs.base import (
    E_NONE, E_OUT_OF_SENSOR, E_TIME_BACKWARDS, EventEncodeError, JIT, S_LAST_T, TimeBaseDecoder,
    TimeBaseEncoder,
)
from topspark_ros.core.events.codecs.stats import (C_EVENTS, C_OUT_OF_SENSOR, C_TIME_BACKWARDS,
                                                   C_WORDS)

MONO_MAX_WIDTH = 1 << 16
"""Largest sensor width the mono encoding can address (16-bit x)."""
MONO_MAX_HEIGHT = 1 << 15
"""Largest sensor height the mono encoding can address (15-bit y)."""
MONO_MAX_DT_NS = (1 << 32) - 1
"""Largest time offset from ``time_base`` a mono word holds (nanoseconds, about 4.29 s)."""


@numba.njit(**JIT)
def _mono_decode(words, time_base_ns, width, height, strict, state, counts, out):
    """
    Decode mono ``words`` (int64 views of the 64-bit words) into ``out`` (EVENT_DTYPE).

    Returns ``(n_events, error_code, word_index)``; ``word_index`` is where a strict decoder
    stopped.
    """
    last_t = state[S_LAST_T]
    n = 0
    err = E_NONE
    err_at = -1
    nw = words.size
    for i in range(nw):
        w = words[i]
        t = (time_base_ns + (w & 0xFFFFFFFF)) // 1000
        x = (w >> 32) & 0xFFFF
        yy = (w >> 48) & 0x7FFF
        if t < last_t:
            counts[C_TIME_BACKWARDS] += 1
            if strict:
                err = E_TIME_BACKWARDS
                err_at = i
                break
        elif x >= width or yy >= height:
            counts[C_OUT_OF_SENSOR] += 1
            if strict:
                err = E_OUT_OF_SENSOR
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
    state[S_LAST_T] = last_t
    counts[C_EVENTS] += n
    counts[C_WORDS] += nw if err == E_NONE else err_at
    return n, err, err_at


class MonoDecoder(TimeBaseDecoder):
    """Decoder of a mono stream (see the module docstring)."""

    encoding = 'mono'
    word_bytes = 8
    word_dtype = np.dtype('<i8')
    max_width = MONO_MAX_WIDTH
    max_height = MONO_MAX_HEIGHT
    kernel = staticmethod(_mono_decode)

    def _max_events(self, words: np.ndarray) -> int:
        return words.size


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


class MonoEncoder(TimeBaseEncoder):
    """Encoder of mono packets (each counts time from its first event)."""

    encoding = 'mono'
    max_width = MONO_MAX_WIDTH
    max_height = MONO_MAX_HEIGHT
    packet_bytes = staticmethod(_encode_mono_words)


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
        The packet's ``time_base`` in nanoseconds; default the first event's time
        (:func:`~topspark_ros.core.events.codecs.base.default_time_base`). Put the same
        value into the message.

    Raises
    ------
    EventEncodeError
        For unsorted or negative times, events outside the sensor, or events more than
        :data:`MONO_MAX_DT_NS` after (or before) ``time_base``.

    """
    return MonoEncoder.encode_one(events, width=width, height=height, time_base=time_base)
