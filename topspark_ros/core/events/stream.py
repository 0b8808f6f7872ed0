"""
The event stream of the classifier's event mode: packets in, complete windows out.

:class:`EventStream` decodes the packets of one stream
(:func:`~topspark_ros.core.events.codecs.make_decoder`), cuts their events into windows
(:mod:`topspark_ros.core.events.windows`) and keeps the complete ones, as :class:`EventWindow`,
in a bounded backlog for a consumer (:meth:`ClassifierSession.classify_events
<topspark_ros.core.session.ClassifierSession.classify_events>`) that may run in another thread.
"""

import bisect
import collections
from dataclasses import dataclass
import threading
from typing import Callable, List, Optional, Tuple
import zlib

import numba
import numpy as np

from topspark_ros.core.events.codecs import make_decoder
from topspark_ros.core.events.codecs.base import JIT
from topspark_ros.core.events.windows import CountWindower, TimeWindower

_WINDOWER_COUNTERS = ('dropped_late', 'dropped_small')
"""Counters of the windowers (:class:`TimeWindower`, :class:`CountWindower`) reported."""


@dataclass(frozen=True)
class EventWindow:
    """
    One complete window of an event stream, ready for ``ClassifierSession.classify_events``.

    Attributes
    ----------
    events
        :data:`~topspark_ros.core.events.EVENT_DTYPE` array (``t`` in microseconds).
    sensor_size
        ``(width, height)`` of the sensor (pixels).
    tag
        what the caller passed with the packet that holds the window's last event (the node
        passes the packet's header, so the classification carries its stamp and frame).

    """

    events: np.ndarray
    sensor_size: Tuple[int, int]
    tag: object


def _crc(data) -> int:
    """Return the CRC-32 of a packet's bytes (any buffer, or a sequence of byte values)."""
    try:
        return zlib.crc32(data)
    except TypeError:  # not a buffer: a list of ints
        return zlib.crc32(bytes(data))


class EventStream:
    """
    Packets of one event stream in, complete windows out, with a bounded backlog.

    Each packet is decoded by a :class:`~topspark_ros.core.events.codecs.StreamDecoder` (one
    per stream: re-made, and the windower restarted, when the packets' encoding or sensor size
    changes; the decoder counters in :meth:`stats` add up over all the decoders, so they never
    go back) and cut into windows by time (``window_us``) or by event count (``window_events``)
    (:mod:`topspark_ros.core.events.windows`). Complete windows wait in a backlog of at most
    ``max_backlog`` windows for :meth:`pop`; when a new window finds it full, the oldest is
    dropped and counted (a consumer that cannot keep up sees the newest windows, never a
    growing queue). :meth:`push` and :meth:`pop` may be called from different threads; each
    of them from one thread at a time.

    Parameters
    ----------
    window_us
        window length in microseconds (windows by time), or None.
    window_events
        events per window (windows by count), or None; exactly one of the two is given.
    max_backlog
        complete windows kept for :meth:`pop` (>= 1).
    min_events
        windows with fewer events are not classified (>= 1).
    history
        packets remembered to find the tag of a window's last event.
    region
        ``region((width, height))``: the region of interest ``(x0, y0, w, h)`` of a sensor of
        that size, whose events alone are windowed (counted in ``events_outside_roi``
        otherwise), or None for all of them. Windowed on the whole sensor, a window with
        ``window_min_events`` outside the region and none in it was classified from an empty
        input, and windows by count held as few as 56 % of their events in it (a review).
    max_packet_bytes
        larger packets are refused unread (``PacketTooLargeError``, a ValueError, and
        counted in ``packets_refused`` / ``bytes_refused``); this bounds the memory one
        packet takes, to about 79 times the bound (see
        :class:`~topspark_ros.core.events.codecs.StreamDecoder`). None: no bound (the
        classifier node always sets one, its ``max_packet_bytes`` parameter).

    """

    def __init__(self, *, window_us: Optional[int] = None, window_events: Optional[int] = None,
                 max_backlog: int = 2, min_events: int = 1, history: int = 4096,
                 max_packet_bytes: Optional[int] = None,
                 region: Optional[Callable[[Tuple[int, int]], Optional[tuple]]] = None
                 ) -> None:
        """Check the settings; the decoder is made by the first packet."""
        if (window_us is None) == (window_events is None):
            raise ValueError('give exactly one of window_us (windows by time) and '
                             'window_events (windows by count)')
        if int(max_backlog) < 1:
            raise ValueError(f'max_backlog must be >= 1, got {max_backlog}')
        if max_packet_bytes is not None and int(max_packet_bytes) < 1:
            raise ValueError(f'max_packet_bytes must be >= 1 or None, got {max_packet_bytes}')
        self.max_packet_bytes = None if max_packet_bytes is None else int(max_packet_bytes)
        self.window_us = None if window_us is None else int(window_us)
        self.window_events = None if window_events is None else int(window_events)
        self.min_events = int(min_events)
        self._region = region
        self._retired = {}  # counters of the decoders and windowers of earlier streams, summed
        self._windower = self._new_windower()  # checks window_us / window_events / min_events
        self._backlog = collections.deque()
        self._max_backlog = int(max_backlog)
        self._history = collections.deque(maxlen=int(history))
        self._lock = threading.Lock()
        self._windowing = threading.Lock()  # push (reader) and close_open_window (a timer)
        self._decoder = None
        self._key = None
        self._last_t = None
        self._last_packet = None  # (seq, time_base, size, CRC-32) of the last packet decoded
        self.packets_with_events = 0
        """Packets decoded that held at least one event in the region of interest (time
        words alone, or events outside the region, do not count)."""
        self.counts = {'packets_received': 0, 'packets_duplicate': 0, 'windows': 0,
                       'windows_dropped': 0, 'decoder_restarts': 0, 'windower_restarts': 0,
                       'events_outside_roi': 0}

    def _restart_windows(self) -> None:
        """Start windowing afresh (a new stream): the open window and the history go."""
        with self._windowing:
            for name in _WINDOWER_COUNTERS:  # kept, so that stats() never goes back
                self._retired[name] = (self._retired.get(name, 0)
                                       + getattr(self._windower, name, 0))
            self._windower = self._new_windower()
            self._history.clear()
        self._last_t = None

    def _new_windower(self):
        if self.window_us is not None:
            return TimeWindower(self.window_us, min_events=self.min_events)
        return CountWindower(self.window_events, min_events=self.min_events)

    @property
    def decoder(self):
        """Return the decoder of the current stream (None before the first packet)."""
        return self._decoder

    def push(self, data, *, encoding: str, width: int, height: int, seq: Optional[int] = None,
             time_base: Optional[int] = None, is_bigendian: bool = False,
             tag: object = None) -> int:
        """
        Decode one packet (the fields of an EventPacket) and window its events.

        The node passes the fields of a message as
        :func:`~topspark_ros.conversions.events.packet_to_fields` gives them
        (``push(**fields, tag=msg.header)``).

        Returns the number of windows it completed (now waiting for :meth:`pop`). Raises
        :class:`~topspark_ros.core.events.codecs.EventDecodeError` (a ValueError) for an
        unknown encoding or a packet the decoder refuses; the stream stays usable.

        A packet equal to the one before (its ``seq``, ``time_base`` and bytes, by CRC-32; of
        the same sensor) is a duplicate (a bridge or router that repeats messages): counted
        (``packets_duplicate``) and dropped. Decoded, its events went back in time, which
        restarted the windows, and every window was lost while packets came twice (a user
        review). Packets of a driver that leaves ``seq`` at 0 differ in their bytes.
        """
        key = (encoding, int(width), int(height))
        packet = None if seq is None else (int(seq), time_base, len(data), _crc(data))
        if packet is not None and packet == self._last_packet and key == self._key:
            self.counts['packets_received'] += 1
            self.counts['packets_duplicate'] += 1
            return 0
        if key != self._key:
            decoder = make_decoder(encoding, int(width), int(height),  # raises if unknown
                                   max_packet_bytes=self.max_packet_bytes)
            if self._key is not None:
                self.counts['decoder_restarts'] += 1
            if self._decoder is not None:
                for name, value in self._decoder.stats.as_dict().items():
                    self._retired[name] = self._retired.get(name, 0) + value
            self._decoder, self._key = decoder, key
            self._restart_windows()
            with self._lock:
                self._backlog.clear()  # windows of another sensor or encoding
        self.counts['packets_received'] += 1
        self._last_packet = packet
        events = self._decoder.decode(data, seq=seq, time_base=time_base,
                                      is_bigendian=bool(is_bigendian), stamp_ns=_stamp_ns(tag))
        if len(events) == 0:
            return 0
        roi = None if self._region is None else self._region(key[1:])
        if roi is not None and tuple(roi) != (0, 0, key[1], key[2]):
            kept = events_in_region(events, roi)
            self.counts['events_outside_roi'] += len(events) - len(kept)
            events = kept
            if len(events) == 0:
                return 0
        self.packets_with_events += 1
        first = int(events['t'][0])
        if self._last_t is not None and first < self._last_t:
            # The decoder started the stream afresh (its seq went back: a driver restart).
            self.counts['windower_restarts'] += 1
            self._restart_windows()
        self._last_t = int(events['t'][-1])
        # Decoders return times that do not decrease within a packet (a reset of the
        # sensor's clock shows between packets, above), so windows are in time order too.
        with self._windowing:
            self._history.append((first, tag))
            return self._queue(self._windower.push(events, ordered=True))

    def close_open_window(self) -> int:
        """
        Close the open time window now (the stream went quiet); return the windows made (0, 1).

        A time window closes when an event at or after its end arrives: the last window of a
        stream that stops (a camera covered, a recording played to its end) waited for ever
        (a user review: one replayed digit gave no result). The caller closes it once no
        packet has come for the window's length: it is queued as :meth:`push` queues windows
        when it holds ``min_events``, and the next events start a window of their own. Windows
        by count are left open (fewer events than asked would be no such window).
        """
        if self.window_us is None:
            return 0
        with self._windowing:
            return self._queue(self._windower.flush())

    @property
    def sensor_size(self) -> Optional[Tuple[int, int]]:
        """Return ``(width, height)`` of the sensor the packets declare (None before one)."""
        key = self._key
        return None if key is None else (key[1], key[2])

    def _queue(self, windows: list) -> int:
        """Queue complete ``windows`` with their tags; return how many (``_windowing`` held)."""
        size = self.sensor_size
        if not windows or size is None:
            return 0
        starts = [t for t, _ in self._history]
        made = []
        for window in windows:
            at = bisect.bisect_right(starts, int(window['t'][-1])) - 1
            made.append(EventWindow(window, size, self._history[max(at, 0)][1]))
        with self._lock:
            for window in made:
                if len(self._backlog) >= self._max_backlog:
                    self._backlog.popleft()
                    self.counts['windows_dropped'] += 1
                self._backlog.append(window)
            self.counts['windows'] += len(made)
        return len(made)

    def pop(self, n: int = 1) -> List[EventWindow]:
        """Remove and return up to ``n`` waiting windows, oldest first."""
        with self._lock:
            return [self._backlog.popleft() for _ in range(min(int(n), len(self._backlog)))]

    @property
    def pending(self) -> int:
        """Complete windows waiting for :meth:`pop`."""
        with self._lock:
            return len(self._backlog)

    def stats(self) -> dict:
        """
        Return the counters: packets, windows (made, dropped), the decoders' and windower's.

        Every counter is monotonic: the decoder counters are summed over the decoders of
        all the streams seen (a new encoding or sensor size makes a new decoder).
        """
        with self._lock:
            values = dict(self.counts, windows_pending=len(self._backlog))
        if self._decoder is not None:
            decoded = self._decoder.stats.as_dict()
            values.update({name: value + self._retired.get(name, 0)
                           for name, value in decoded.items()},
                          encoding=self._key[0], sensor=f'{self._key[1]}x{self._key[2]}')
        for name in _WINDOWER_COUNTERS:
            if hasattr(self._windower, name):
                values[f'window_{name}'] = (getattr(self._windower, name)
                                            + self._retired.get(name, 0))
        return values


def events_in_region(events: np.ndarray, roi: Tuple[int, int, int, int]) -> np.ndarray:
    """
    Return the events of ``events`` inside ``roi = (x0, y0, w, h)``, in order.

    A compiled loop (2 ns an event here; numpy's mask and selection of the structured array
    took 16: more than the decoding of a 1280x720 sensor's packet).
    """
    x0, y0, w, h = (int(v) for v in roi)
    out, n = _in_region(events, x0, y0, x0 + w, y0 + h)
    return out[:n]


@numba.njit(**JIT)
def _in_region(events, x0, y0, x1, y1):
    out = np.empty_like(events)
    n = 0
    for i in range(events.size):
        event = events[i]
        out[n] = event  # written whatever; kept (n moves on) when inside: no branch
        n += (x0 <= event.x) & (event.x < x1) & (y0 <= event.y) & (event.y < y1)
    return out, n


def _stamp_ns(tag) -> Optional[int]:
    """Return the stamp (ns) of a packet's header ``tag``, or None for a tag without one."""
    stamp = getattr(tag, 'stamp', tag)
    try:
        return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)
    except (AttributeError, TypeError, ValueError):
        return None
