"""
Windowers: cut a time-ordered event stream into the windows a model classifies one by one.

:class:`TimeWindower` cuts a stream into windows of ``window_us`` microseconds,
:class:`CountWindower` into windows of ``n_events`` events. Both are streaming: ``push`` the
events of each packet as they come and get the windows that are complete; ``flush`` returns
the last, partial window at the end of a stream. Bad arguments and arrays that are not events
raise :class:`~topspark_ros.core.events.EventEncodingError`.
"""

import sys
from typing import List, Optional

import numpy as np

from topspark_ros.core.events import as_events, empty_events, EVENT_DTYPE, EventEncodingError


def _copy_events(to: np.ndarray, events: np.ndarray) -> None:
    """
    Copy ``events`` into ``to`` (same length, :data:`EVENT_DTYPE`).

    Contiguous arrays are copied as bytes: numpy copies the packed 13-byte records field by
    field otherwise, 4 times slower (44 against 11 ms for a 78 MB window, measured).
    """
    if to.flags.c_contiguous and events.flags.c_contiguous:
        to.view(np.uint8)[:] = events.view(np.uint8)
    else:
        to[:] = events


class _OpenWindow:
    """
    The events of the window being filled, copied once into a buffer that grows.

    :meth:`take` hands the filled part over without a copy (a 6-million-event window of a
    20 Mev/s sensor is 78 MB: the old list of packet copies cost a second copy of all of it
    when the window closed); the next buffer starts at the last window's size. The buffers of
    the last :data:`SPARES` windows handed over are kept, and a new window fills one of them
    again once nobody holds it (or any view of it) any more: a fresh 78 MB buffer costs its
    page faults again at every window, about a third of the cost of filling it (measured at
    20 Mev/s). Two, because the next window starts filling before the consumer has even
    received the last one.
    """

    MIN_CAPACITY = 4096
    SPARES = 2

    def __init__(self, fixed: Optional[int] = None) -> None:
        """
        Start empty.

        ``fixed``: every window has exactly this many events at most (count windows): each
        buffer holds exactly that many, so a window kept by the consumer pins no more memory
        than its events. Otherwise buffers start at :data:`MIN_CAPACITY` events and grow.
        """
        self._data: Optional[np.ndarray] = None
        self._spares: List[np.ndarray] = []
        self.size = 0
        self._last_size = 0
        self._fixed = None if fixed is None else int(fixed)

    @property
    def _capacity_hint(self) -> int:
        """Return the size of a new buffer: ``fixed``, else the last window's and an eighth."""
        if self._fixed is not None:
            return self._fixed
        return max(self.MIN_CAPACITY, self._last_size + self._last_size // 8)

    def _free_spare(self, capacity: int) -> Optional[np.ndarray]:
        """Return (and forget) a kept buffer of ``capacity`` events that nothing refers to."""
        for k in range(len(self._spares)):
            # CPython: every view of a buffer (the window handed over, slices, memoryviews,
            # torch.from_numpy) holds a reference to it; 2 = the list and the argument.
            if len(self._spares[k]) >= capacity and sys.getrefcount(self._spares[k]) == 2:
                return self._spares.pop(k)
        return None

    @property
    def capacity(self) -> int:
        """Return how many events the current buffer holds (0 before the window's first)."""
        return 0 if self._data is None else len(self._data)

    def append(self, events: np.ndarray, expected: int = 0) -> None:
        """
        Copy ``events`` (:data:`EVENT_DTYPE`) to the end of the window.

        ``expected``: how many events the window will likely hold, when known (a buffer that
        grows takes that size at once).
        """
        end = self.size + len(events)
        capacity = self.capacity
        if end > capacity:
            grown = None
            if self._data is None:  # a new window: a buffer that holds one like the last
                grown = self._free_spare(max(end, self._last_size))
            if grown is None:
                grown = np.empty(max(end, self._capacity_hint, 2 * capacity, int(expected)),
                                 EVENT_DTYPE)
            if self.size:
                _copy_events(grown[:self.size], self._data[:self.size])
            self._data = grown
        _copy_events(self._data[self.size:end], events)
        self.size = end

    def take(self) -> np.ndarray:
        """Return the window's events (a view no other window shares) and start an empty one."""
        if self._data is None:
            return empty_events(0)
        window = self._data[:self.size]
        self._last_size = self.size
        self._spares = (self._spares + [self._data])[-self.SPARES:]
        self._data, self.size = None, 0
        return window


class TimeWindower:
    """
    Cut a time-ordered event stream into windows of ``window_us`` microseconds.

    Window ``k`` holds the events with ``origin + k * window_us <= t < origin + (k + 1) *
    window_us``; ``origin`` is ``start_us`` or the time of the first event pushed. A window is
    complete (returned by :meth:`push`) once an event at or after its end has arrived. Windows
    without events are skipped (a gap in the stream produces no empty windows). Events older
    than the window being filled (time went backwards across windows) are dropped and counted
    in :attr:`dropped_late`; inside the open window their order does not matter.

    Parameters
    ----------
    window_us
        window length (microseconds, > 0).
    start_us
        time of the first window's start (default: the first event's time).
    min_events
        windows with fewer events are dropped (counted in :attr:`dropped_small`) (>= 1).

    """

    MAX_EXPECTED = 1 << 26
    """Largest buffer (events, 870 MB) a window's rate so far makes it take at once."""

    def __init__(self, window_us: int, *, start_us: Optional[int] = None,
                 min_events: int = 1) -> None:
        """Create an empty windower."""
        if int(window_us) < 1:
            raise EventEncodingError(f'window_us must be >= 1 microsecond, got {window_us}')
        if int(min_events) < 1:
            raise EventEncodingError(f'min_events must be >= 1, got {min_events}')
        self.window_us = int(window_us)
        self.min_events = int(min_events)
        self._start = None if start_us is None else int(start_us)
        self._origin = self._start
        self._index = None
        self._open = _OpenWindow()
        self.dropped_late = 0
        self.dropped_small = 0

    @property
    def open_window_start_us(self) -> Optional[int]:
        """Return the start time (us) of the window being filled (None before any event)."""
        if self._index is None:
            return None
        return self._origin + self._index * self.window_us

    def _emit(self, out: List[np.ndarray]) -> None:
        window = self._open.take()
        if len(window) >= self.min_events:
            out.append(window)
        elif len(window):
            self.dropped_small += 1

    def push(self, events: np.ndarray, *, ordered: bool = False) -> List[np.ndarray]:
        """
        Add the events of one packet; return the windows completed by them, oldest first.

        ``ordered``: the caller vouches that the packet's times do not decrease (as decoders
        return them), so its first and last times bound it: a packet inside the open window
        then costs its copy only (the minimum and maximum of a 20 000-event packet's times
        cost about as much as copying it).
        """
        events = as_events(events)
        out: List[np.ndarray] = []
        if len(events) == 0:
            return out
        if self._origin is None:
            self._origin = int(events['t'][0])
        if self._index is not None:  # fast path: the packet lies in the open window
            start = self._origin + self._index * self.window_us
            t = events['t']
            low, high = (t[0], t[-1]) if ordered else (t.min(), t.max())
            if int(low) >= start and int(high) < start + self.window_us:
                expected = 0
                if self._open.size + len(events) > self._open.capacity:
                    expected = self._expected_events(len(events), int(high) - start + 1)
                self._open.append(events, expected)
                return out
        index = (events['t'] - self._origin) // self.window_us
        if self._index is not None:
            late = index < self._index
            if late.any():
                self.dropped_late += int(late.sum())
                events, index = events[~late], index[~late]
        elif (index < 0).any():
            late = index < 0
            self.dropped_late += int(late.sum())
            events, index = events[~late], index[~late]
        if len(events) == 0:
            return out
        order = np.argsort(index, kind='stable')
        events, index = events[order], index[order]
        keys, starts = np.unique(index, return_index=True)
        bounds = list(starts) + [len(events)]
        for j, key in enumerate(keys):
            part = events[bounds[j]:bounds[j + 1]]
            if self._index is not None and key != self._index:
                self._emit(out)
            self._index = int(key)
            self._open.append(part)
        return out

    def _expected_events(self, adding: int, elapsed_us: int) -> int:
        """
        Return the open window's likely size: its rate so far over the whole window.

        Its buffer grows to that at once. Doubling alone copied the window at every growth:
        the first 300 ms window of a 20 Mev/s stream ended with a 55 MB copy into a fresh
        110 MB buffer, which held the reader up for about 190 ms (packets were lost behind
        it). The rate counts from at least 1/64 of the window, and the size is bounded by
        :attr:`MAX_EXPECTED`; an estimate too high costs address space only, as the pages
        of a buffer are used when filled.
        """
        elapsed = max(elapsed_us, self.window_us // 64, 1)
        estimate = (self._open.size + adding) * self.window_us // elapsed
        return min(estimate + estimate // 8, self.MAX_EXPECTED)

    def flush(self) -> List[np.ndarray]:
        """Return the open, partial window (if it has ``min_events``) and start afresh."""
        out: List[np.ndarray] = []
        if self._open.size:
            self._emit(out)
        self._index = None
        self._origin = self._start
        return out


class CountWindower:
    """
    Cut an event stream into windows of exactly ``n_events`` consecutive events.

    The open window is filled like :class:`TimeWindower`'s: each packet is copied once into
    a buffer of exactly ``n_events`` (a push costs the packet's size, not the open window's: a
    window of a million events filled by 1 ms packets used to be copied again at every
    packet); a window kept by the caller pins no more than its own events.

    Parameters
    ----------
    n_events
        events per window (>= 1).
    min_events
        :meth:`flush` returns the remainder only when it has at least this many events
        (default: 1).

    """

    def __init__(self, n_events: int, *, min_events: int = 1) -> None:
        """Create an empty windower."""
        if int(n_events) < 1:
            raise EventEncodingError(f'n_events must be >= 1, got {n_events}')
        if int(min_events) < 1:
            raise EventEncodingError(f'min_events must be >= 1, got {min_events}')
        self.n_events = int(n_events)
        self.min_events = int(min_events)
        self._open = _OpenWindow(fixed=self.n_events)

    @property
    def pending(self) -> int:
        """Return the number of events waiting for the next window."""
        return self._open.size

    def push(self, events: np.ndarray, *, ordered: bool = False) -> List[np.ndarray]:
        """
        Add the events of one packet; return the windows completed by them, oldest first.

        ``ordered`` is taken for the interface of :meth:`TimeWindower.push`; windows by count
        do not depend on the times.
        """
        events = as_events(events)
        out: List[np.ndarray] = []
        start = 0
        while start < len(events):
            part = events[start:start + self.n_events - self._open.size]
            self._open.append(part)
            start += len(part)
            if self._open.size == self.n_events:
                out.append(self._open.take())
        return out

    def flush(self) -> List[np.ndarray]:
        """Return the remaining partial window (if it has ``min_events``) and start afresh."""
        rest = self._open.take()
        return [rest] if len(rest) >= self.min_events else []
