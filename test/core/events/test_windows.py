"""
The windowers: hand cases, windows that partition any stream, and 1 ms packets (issue 14).

:class:`TimeWindower` fed small packets gives the same windows as one push, whatever the cut.
"""

import tracemalloc
import weakref

from event_arrays import HAND, make_events, random_events, streams
from hypothesis import given, settings
from hypothesis import strategies as st
import numpy as np
import pytest

from topspark_ros.core.events import empty_events, EventEncodingError
from topspark_ros.core.events.windows import CountWindower, TimeWindower


def packets(events, cuts):
    """Split ``events`` at ``cuts``."""
    return np.split(events, cuts)


def packets_of(events, span_us: int, step_us: int) -> list:
    """Split time-sorted ``events`` of ``[0, span_us]`` into packets of ``step_us``."""
    cuts = np.searchsorted(events['t'], np.arange(step_us, span_us + 1, step_us))
    return packets(events, cuts)


def test_small_packets_give_the_windows_of_one_push() -> None:
    """Packets inside the open window are kept as they come; windows equal a single push."""
    events = random_events(20000, 1_000_000)
    whole = TimeWindower(100_000).push(events)
    windower = TimeWindower(100_000)
    parts = []
    for packet in packets_of(events, 1_000_000, 1000):
        parts += windower.push(packet)
        packet['x'] = 0  # a caller reusing its buffer does not change the open window
    assert len(parts) == len(whole) == 9
    for a, b in zip(parts, whole):
        np.testing.assert_array_equal(a, b)


def test_windows_larger_than_the_open_buffer() -> None:
    """The open window grows past its buffer; strided packets and consecutive windows too."""
    events = random_events(60000, 300_000, seed=3)
    whole = TimeWindower(100_000).push(events)
    windower = TimeWindower(100_000)
    parts = []
    for packet in packets_of(events, 300_000, 1000):
        parts += windower.push(np.repeat(packet, 2)[::2])  # not contiguous
    parts += windower.flush()
    assert len(parts) == len(whole) + 1 and len(whole[0]) > 4 * 4096
    for a, b in zip(parts, whole):
        np.testing.assert_array_equal(a, b)
    assert not np.shares_memory(parts[0], parts[1])


def test_ordered_packets_give_the_windows_of_one_push() -> None:
    """With ``ordered`` (decoders' packets) the fast path reads the ends: same windows."""
    events = random_events(20000, 1_000_000, seed=5)
    whole = TimeWindower(100_000).push(events)
    windower = TimeWindower(100_000)
    parts = []
    for packet in packets_of(events, 1_000_000, 700):
        parts += windower.push(packet, ordered=True)
    assert len(parts) == len(whole) == 9
    for a, b in zip(parts, whole):
        np.testing.assert_array_equal(a, b)


def test_a_window_buffer_is_filled_again_only_once_nobody_holds_it() -> None:
    """A dropped window's buffer is filled again; a window still held is never touched."""
    events = random_events(60000, 600_000, seed=4)
    windower = TimeWindower(100_000)
    held, copies, bases = [], [], []
    for packet in packets_of(events, 600_000, 1000):
        for window in windower.push(packet, ordered=True):
            bases.append(weakref.ref(window.base))  # not a reference: it may be freed
            if len(bases) % 2:  # the consumer keeps windows 0, 2, 4 and drops 1 and 3
                held.append(window)
                copies.append(window.copy())
            del window
    assert len(bases) == 5
    # Window 2 started filling before window 1 reached the consumer; window 3 reuses the
    # buffer of window 1, dropped by then. The held windows keep their buffers and events.
    assert bases[3]() is bases[1]() is not None
    assert len({id(w.base) for w in held} | {id(bases[1]())}) == 4
    for window, copy in zip(held, copies):
        np.testing.assert_array_equal(window, copy)


def test_an_unsorted_packet_inside_the_open_window() -> None:
    """Order inside the open window is kept as pushed; late events are still dropped."""
    windower = TimeWindower(10)
    windower.push(empty_events(0))
    first = empty_events(2)
    first['t'] = [10, 12]
    assert windower.push(first) == []
    inside = empty_events(3)
    inside['t'] = [19, 10, 15]
    assert windower.push(inside) == []
    late = empty_events(1)
    late['t'] = [3]
    assert windower.push(late) == [] and windower.dropped_late == 1
    closing = empty_events(1)
    closing['t'] = [20]
    out = windower.push(closing)
    assert [list(w['t']) for w in out] == [[10, 12, 19, 10, 15]]


# ------------------------------------------------------------------- hand cases and properties


def test_time_windower_hand_case() -> None:
    """Windows of 25 us: complete when a later event arrives, gaps skipped, flush the rest."""
    windower = TimeWindower(25)
    assert windower.push(empty_events(0)) == []
    assert windower.push(HAND[:3]) == []  # 0, 10, 20: window [0, 25) still open
    out = windower.push(HAND[3:])  # 30, 40 complete [0, 25) and [25, 50); 99 opens [75, 100)
    assert [list(w['t']) for w in out] == [[0, 10, 20], [30, 40]]
    assert windower.open_window_start_us == 75
    assert [list(w['t']) for w in windower.flush()] == [[99]]
    assert windower.flush() == []


def test_time_windower_start_late_and_small() -> None:
    """start_us fixes the grid; late events are dropped and counted; min_events filters."""
    windower = TimeWindower(10, start_us=5, min_events=2)
    out = windower.push(make_events([0] * 4, [0] * 4, [1] * 4, [5, 6, 16, 27]))
    assert [list(w['t']) for w in out] == [[5, 6]]  # [15, 25) has one event: dropped
    assert windower.dropped_small == 1
    out = windower.push(make_events([0, 0, 0], [0] * 3, [1] * 3, [8, 26, 40]))
    assert windower.dropped_late == 1  # t = 8 belongs to a finished window
    assert [list(w['t']) for w in out] == [[27, 26]]
    assert windower.flush() == []  # [35, 45) holds one event
    assert windower.push(make_events([0], [0], [1], [2])) == []
    assert windower.dropped_late == 2  # before start_us after a flush


def test_count_windower_hand_case() -> None:
    """Exact windows of n events across packets, the remainder on flush."""
    windower = CountWindower(4)
    assert windower.push(HAND[:3]) == []
    assert windower.pending == 3
    out = windower.push(HAND[3:])
    assert [list(w['t']) for w in out] == [[0, 10, 20, 30]]
    assert [list(w['t']) for w in windower.flush()] == [[40, 99]]
    assert CountWindower(4, min_events=3).push(HAND[:2]) == []


def test_a_count_window_push_costs_the_packet_not_the_open_window() -> None:
    """A small packet added to a large open count window allocates nothing of its size."""
    windower = CountWindower(1_000_000)
    events = random_events(501_000, 1_000_000, seed=6)
    assert windower.push(events[:500_000]) == []
    tracemalloc.start()
    try:
        assert windower.push(events[500_000:]) == []
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert windower.pending == 501_000
    assert peak < 100_000  # the open window is 6.5 MB; copying it again would show here
    window, = windower.push(random_events(499_000, 1_000_000, seed=7))
    np.testing.assert_array_equal(window[:501_000], events)
    # Windows kept by the caller pin only their own events (a recording keeps them all).
    small = CountWindower(10).push(random_events(2000, 1000, seed=8))
    assert len(small) == 200 and all(len(w.base) == 10 for w in small)


def test_windower_arguments_are_checked() -> None:
    """Non-positive sizes and non-event arrays raise EventEncodingError."""
    for bad in (lambda: TimeWindower(0), lambda: CountWindower(0),
                lambda: TimeWindower(5, min_events=0)):
        with pytest.raises(EventEncodingError):
            bad()
    with pytest.raises(EventEncodingError, match='EVENT_DTYPE'):
        TimeWindower(5).push(np.zeros(3))


@settings(max_examples=60, deadline=None)
@given(streams(), st.integers(1, 50))
def test_time_windows_partition_the_stream(stream, window_us) -> None:
    """Pushing packets then flushing returns every event once, each window in its interval."""
    events, cuts = stream
    windower = TimeWindower(window_us)
    windows = []
    for packet in packets(events, cuts):
        windows += windower.push(packet)
    windows += windower.flush()
    joined = np.concatenate(windows) if windows else empty_events(0)
    assert np.array_equal(joined, events)
    if len(events):
        origin = events['t'][0]
        index = [set((w['t'] - origin) // window_us) for w in windows]
        assert all(len(i) == 1 for i in index)
        expected = sorted({int(k) for k in (events['t'] - origin) // window_us})
        assert [i.pop() for i in index] == expected


@settings(max_examples=60, deadline=None)
@given(streams(), st.integers(1, 20))
def test_count_windows_partition_the_stream(stream, n_events) -> None:
    """Count windows hold exactly n events, in order; the flush holds the rest."""
    events, cuts = stream
    windower = CountWindower(n_events)
    windows = []
    for packet in packets(events, cuts):
        windows += windower.push(packet)
    assert all(len(w) == n_events for w in windows)
    assert len(windows) == len(events) // n_events
    windows += windower.flush()
    joined = np.concatenate(windows) if windows else empty_events(0)
    assert np.array_equal(joined, events)


def test_a_window_buffer_grows_to_the_rate_so_far_not_by_doubling() -> None:
    """
    The first window of a steady stream grows its buffer twice, not a dozen times.

    Doubling from 4 096 events copied the window at every growth; at 20 Mev/s the last copy
    (55 MB into a fresh 110 MB buffer) held the classifier's reader up for about 190 ms.
    """
    rate_per_ms, window_us = 2000, 300_000
    windower = TimeWindower(window_us)
    capacities, made = [], []
    for k in range(window_us // 1000 + 1):  # 1 ms packets, to just past the first window
        packet = empty_events(rate_per_ms)
        packet['x'] = np.arange(rate_per_ms) % 34
        packet['t'] = k * 1000 + np.arange(rate_per_ms) * 1000 // rate_per_ms
        made += windower.push(packet, ordered=True)
        if not made and windower._open.capacity not in capacities:
            capacities.append(windower._open.capacity)
    assert len(made) == 1 and len(made[0]) == rate_per_ms * window_us // 1000
    assert len(capacities) <= 3, capacities  # 4 096, then two estimates (was 9 sizes)
    assert len(made[0]) <= capacities[-1] <= 2 * len(made[0])


def test_a_burst_at_a_window_start_reserves_address_space_only_within_bounds() -> None:
    """A burst in the first microseconds extrapolates to at most MAX_EXPECTED events."""
    windower = TimeWindower(10_000_000)
    burst = empty_events(200_000)  # all at t = 0: a rate of 200 000 events per microsecond
    windower.push(burst[:1000], ordered=True)
    windower.push(burst[1000:], ordered=True)
    assert 200_000 <= windower._open.capacity <= TimeWindower.MAX_EXPECTED
