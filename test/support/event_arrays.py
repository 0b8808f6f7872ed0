"""
Event arrays for the tests: from columns or rows, random streams, hypothesis streams, bars.

``test/conftest.py`` puts this folder on ``sys.path``, so test modules import it as
``event_arrays``.
"""

from hypothesis import strategies as st
import numpy as np

from topspark_ros.core.data.synthetic_events import EventDataset, save_event_split
from topspark_ros.core.events import empty_events, EVENT_DTYPE


def make_events(x, y, p, t) -> np.ndarray:
    """Return an event array from four equal-length sequences."""
    events = empty_events(len(t))
    events['x'], events['y'], events['p'], events['t'] = x, y, p, t
    return events


def events_from_rows(rows) -> np.ndarray:
    """Return an event array from ``(x, y, p, t)`` rows."""
    out = np.zeros(len(rows), dtype=EVENT_DTYPE)
    for i, row in enumerate(rows):
        out[i] = row
    return out


def random_events(n: int, duration_us: int, *, size=(34, 34), seed: int = 0,
                  start_us: int = 0) -> np.ndarray:
    """Return ``n`` events at uniform pixels of a ``size = (w, h)`` sensor, time-ordered."""
    rng = np.random.default_rng(seed)
    events = empty_events(n)
    events['x'] = rng.integers(0, size[0], n)
    events['y'] = rng.integers(0, size[1], n)
    events['p'] = rng.integers(0, 2, n)
    events['t'] = np.sort(rng.integers(0, duration_us, n)) + start_us
    return events


# Six events on a 34 x 34 sensor over 100 us (t = 0 .. 99): at T = 4, bins of 25 us.
HAND = make_events(x=[0, 33, 33, 10, 10, 5], y=[0, 33, 0, 10, 10, 6], p=[1, 0, 1, 0, 1, 1],
                   t=[0, 10, 20, 30, 40, 99])


@st.composite
def streams(draw, max_events: int = 60):
    """Draw a time-ordered event stream on a 16 x 12 sensor and packet boundaries."""
    n = draw(st.integers(0, max_events))
    gaps = draw(st.lists(st.integers(0, 40), min_size=n, max_size=n))
    t = np.cumsum(np.array(gaps, np.int64)) + draw(st.integers(0, 1000))
    x = draw(st.lists(st.integers(0, 15), min_size=n, max_size=n))
    y = draw(st.lists(st.integers(0, 11), min_size=n, max_size=n))
    p = draw(st.lists(st.integers(0, 1), min_size=n, max_size=n))
    cuts = sorted(draw(st.lists(st.integers(0, n), max_size=6)))
    return make_events(x, y, p, t), cuts


def bar_window(label: int, rng: np.random.Generator, n: int = 500) -> np.ndarray:
    """Return the events of a bar on a 34 x 34 sensor: 0 vertical, 1 horizontal (+ noise)."""
    events = empty_events(n)
    along = rng.integers(5, 29, n)
    across = rng.integers(14, 19, n)
    x, y = (across, along) if label == 0 else (along, across)
    noise = rng.random(n) < 0.05
    x[noise], y[noise] = rng.integers(0, 34, (2, int(noise.sum())))
    events['x'], events['y'] = x, y
    events['p'] = rng.integers(0, 2, n)
    events['t'] = np.sort(rng.integers(0, 100_000, n))
    return events


def bars(n: int, seed: int) -> tuple:
    """Return ``(windows list, labels uint8 [n])`` of alternating bar classes."""
    rng = np.random.default_rng(seed)
    labels = (np.arange(n) % 2).astype(np.uint8)
    return [bar_window(int(c), rng) for c in labels], labels


def write_bars_dataset(directory, n_train: int, n_test: int) -> None:
    """Write a bars event data set in the nmnist-synth file layout."""
    for split, n, seed in (('train', n_train, 10), ('test', n_test, 11)):
        windows, labels = bars(n, seed)
        offsets = np.concatenate([[0], np.cumsum([len(w) for w in windows])]).astype(np.int64)
        save_event_split(directory / f'{split}.npz', EventDataset(
            events=np.concatenate(windows), offsets=offsets, labels=labels, width=34,
            height=34, class_names=('vertical', 'horizontal')))
