"""TimeWindower fed 1 ms packets (issue 14): the same windows as one push, whatever the cut."""

import numpy as np

from topspark_ros.core.events import empty_events
from topspark_ros.core.events.encode import TimeWindower


def _stream(n: int, duration_us: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    events = empty_events(n)
    events['x'] = rng.integers(0, 34, n)
    events['y'] = rng.integers(0, 34, n)
    events['p'] = rng.integers(0, 2, n)
    events['t'] = np.sort(rng.integers(0, duration_us, n))
    return events


def test_small_packets_give_the_windows_of_one_push() -> None:
    """Packets inside the open window are kept as they come; windows equal a single push."""
    events = _stream(20000, 1_000_000)
    whole = TimeWindower(100_000).push(events)
    windower = TimeWindower(100_000)
    bounds = np.searchsorted(events['t'], np.arange(0, 1_000_001, 1000))
    parts = []
    for start, stop in zip(bounds[:-1], bounds[1:]):
        packet = events[start:stop]
        parts += windower.push(packet)
        packet['x'] = 0  # a caller reusing its buffer does not change the open window
    assert len(parts) == len(whole) == 9
    for a, b in zip(parts, whole):
        np.testing.assert_array_equal(a, b)


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
