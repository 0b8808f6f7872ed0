"""Region of interest, downscale and the spike-train / frame encoders of event windows."""

import tracemalloc

from event_arrays import HAND, make_events, random_events, streams
from hypothesis import given, settings
from hypothesis import strategies as st
import numpy as np
import pytest

from topspark_ros.core.events import empty_events, EVENT_DTYPE, EventEncodingError
from topspark_ros.core.events.encode import (centred_roi, EventEncoding, EventGeometry,
                                             events_to_frames, events_to_spike_trains, time_bins)
from topspark_ros.core.inputs import SpikeEvents


# ------------------------------------------------------------------------------- geometry


def test_centred_roi_and_downscale() -> None:
    """A 640 x 480 camera is cropped to 480 x 480 and downscaled by integer bins."""
    assert centred_roi((640, 480), (28, 28)) == (80, 0, 480, 480)
    assert centred_roi((34, 34), (28, 28)) == (0, 0, 34, 34)
    assert centred_roi((100, 200), (20, 10)) == (0, 0, 100, 200)  # (width, height), (h, w)
    assert centred_roi((100, 200), (10, 20)) == (0, 75, 100, 50)
    geometry = EventGeometry(640, 480, 28, 28)
    events = make_events(x=[79, 80, 559, 560, 320], y=[0, 0, 479, 0, 240], p=[1] * 5,
                         t=range(5))
    keep, x, y = geometry.locate(events)
    assert list(keep) == [False, True, True, False, True]
    assert list(x) == [0, 27, 240 * 28 // 480] and list(y) == [0, 27, 14]
    # 34 -> 28: sensor column x lands in x * 28 // 34 (exact integer arithmetic).
    row = make_events(range(34), [0] * 34, [0] * 34, range(34))
    keep, x, _ = EventGeometry(34, 34).locate(row)
    assert keep.all() and list(x) == [k * 28 // 34 for k in range(34)]


def test_roi_outside_the_sensor_is_refused() -> None:
    """A region that does not fit raises EventEncodingError naming the sensor."""
    with pytest.raises(EventEncodingError, match='34x34'):
        EventGeometry(34, 34, roi=(10, 10, 30, 5))
    with pytest.raises(EventEncodingError, match='sensor_size'):
        EventGeometry(0, 34)


def test_explicit_roi_crops_and_scales() -> None:
    """Only events inside the region count; they are scaled from its size."""
    frames = events_to_frames([HAND], sensor_size=(34, 34), timesteps=1, input_size=(2, 2),
                              roi=(10, 10, 4, 4))
    assert frames.sum() == 2  # the two events at (10, 10)
    assert frames[0, 0, 0, 0, 0] == 1 and frames[0, 0, 1, 0, 0] == 1


# ------------------------------------------------------------------------------- encoders


def test_time_bins_hand_case() -> None:
    """Bins split each sample's own span [t0, t1] into T equal parts."""
    assert list(time_bins(HAND, 4)) == [0, 0, 0, 1, 1, 3]
    shifted = HAND.copy()
    shifted['t'] += 10 ** 12
    assert list(time_bins(shifted, 4)) == [0, 0, 0, 1, 1, 3]
    assert list(time_bins(HAND, 1)) == [0] * 6
    # Out of time order (a sensor reset): the same bins, event by event.
    order = [5, 2, 0, 4, 1, 3]
    assert list(time_bins(HAND[order], 4)) == [3, 0, 0, 1, 0, 1]
    # A window shorter than T microseconds leaves bins empty: t = 0, 1, 2 at T = 8.
    short = make_events(x=[0] * 3, y=[0] * 3, p=[0] * 3, t=[0, 1, 2])
    assert list(time_bins(short, 8)) == [0, 2, 5]
    assert time_bins(empty_events(0), 4).size == 0


def test_spike_trains_hand_case() -> None:
    """Merged polarities, one spike per input and step, an empty window gives none."""
    spikes = events_to_spike_trains([HAND, empty_events(0)], sensor_size=(34, 34), timesteps=4)
    assert spikes.n_inputs == 784 and spikes.timesteps == 4 and spikes.batch_size == 2
    dense = spikes.to_dense()
    expected = np.zeros((4, 2, 784), bool)
    # bin 0: (0, 0) -> 0, (33, 33) -> (27, 27), (33, 0) -> (27, 0); bin 1: (10, 10) twice ->
    # (8, 8) once; bin 3: (5, 6) -> (4, 4).
    expected[0, 0, [0, 27 * 28 + 27, 27]] = True
    expected[1, 0, 8 * 28 + 8] = True
    expected[3, 0, 4 * 28 + 4] = True
    assert np.array_equal(dense, expected)


def test_spike_trains_polarity_mappings() -> None:
    """Split puts OFF at [0, HW) and ON at [HW, 2HW); on/off keep one polarity."""
    split = events_to_spike_trains([HAND], sensor_size=(34, 34), timesteps=4,
                                   polarity='split').to_dense()
    assert split.shape == (4, 1, 1568)
    assert sorted(np.flatnonzero(split[1, 0])) == [8 * 28 + 8, 784 + 8 * 28 + 8]
    assert sorted(np.flatnonzero(split[0, 0])) == [27 * 28 + 27, 784 + 0, 784 + 27]
    on = events_to_spike_trains([HAND], sensor_size=(34, 34), timesteps=4,
                                polarity='on').to_dense()
    off = events_to_spike_trains([HAND], sensor_size=(34, 34), timesteps=4,
                                 polarity='off').to_dense()
    assert on.sum() == 4 and off.sum() == 2
    with pytest.raises(EventEncodingError, match='polarity'):
        events_to_spike_trains([HAND], sensor_size=(34, 34), timesteps=4, polarity='both')


def test_frames_hand_case() -> None:
    """Per-bin counts by polarity channel (0 = OFF, 1 = ON)."""
    frames = events_to_frames([HAND], sensor_size=(34, 34), timesteps=4)
    assert frames.shape == (1, 4, 2, 28, 28) and frames.dtype == np.float32
    nonzero = {tuple(i): frames[tuple(i)] for i in np.argwhere(frames)}
    assert nonzero == {(0, 0, 1, 0, 0): 1, (0, 0, 0, 27, 27): 1, (0, 0, 1, 0, 27): 1,
                       (0, 1, 0, 8, 8): 1, (0, 1, 1, 8, 8): 1, (0, 3, 1, 4, 4): 1}


def test_encoder_arguments_are_checked() -> None:
    """Bad T: ValueError (check_timesteps); a bare event array, bad dtypes: EventEncodingError."""
    for bad in (0, True, 2.0):
        with pytest.raises(ValueError, match='timesteps must be a positive int'):
            events_to_frames([HAND], sensor_size=(34, 34), timesteps=bad)
    with pytest.raises(EventEncodingError, match='sequence of windows'):
        events_to_spike_trains(HAND, sensor_size=(34, 34), timesteps=2)
    with pytest.raises(EventEncodingError, match='window 1'):
        events_to_frames([HAND, np.zeros(3)], sensor_size=(34, 34), timesteps=2)
    assert events_to_frames([], sensor_size=(34, 34), timesteps=2).shape == (0, 2, 2, 28, 28)


def naive_encoding(events, size, timesteps, roi, polarity='merge'):
    """Return reference (spike set, count dict) of one window, computed event by event."""
    x0, y0, w, h = roi
    spikes, counts = set(), {}
    if polarity in ('on', 'off'):
        events = events[events['p'] == (1 if polarity == 'on' else 0)]
    if len(events) == 0:
        return spikes, counts
    n_pixels = size[0] * size[1]
    t0, t1 = int(events['t'].min()), int(events['t'].max())
    for e in events:
        x, y = int(e['x']) - x0, int(e['y']) - y0
        if not (0 <= x < w and 0 <= y < h):
            continue
        k = (int(e['t']) - t0) * timesteps // (t1 - t0 + 1)
        xs, ys = x * size[1] // w, y * size[0] // h
        pixel = ys * size[1] + xs
        if polarity == 'split' and e['p'] != 0:
            pixel += n_pixels
        spikes.add((k, pixel))
        key = (k, int(e['p'] != 0), ys, xs)
        counts[key] = counts.get(key, 0) + 1
    return spikes, counts


@st.composite
def windows(draw):
    """
    Draw a batch of windows.

    Time order shuffled or not, polarities beyond 0 / 1, pixels past the 16 x 12 sensor
    (dropped like those outside the region).
    """
    batch = []
    for _ in range(draw(st.integers(0, 3))):
        events, _ = draw(streams())
        if len(events) and draw(st.booleans()):
            events = events[draw(st.permutations(range(len(events))))]
        if len(events) and draw(st.booleans()):
            events['p'][::3] = 2
            events['x'][::4] = 20
        batch.append(events)
    return batch


@settings(max_examples=80, deadline=None)
@given(windows(), st.integers(1, 12), st.sampled_from([(12, 16), (6, 8), (5, 5)]),
       st.sampled_from([None, (2, 1, 10, 9)]),
       st.sampled_from(['merge', 'split', 'on', 'off']))
def test_encoders_match_a_naive_reference(batch, timesteps, size, roi, polarity) -> None:
    """Spike trains and frames of a batch equal an event-by-event computation per window."""
    sensor = (16, 12)
    region = EventGeometry(*sensor, *size, roi).roi
    trains = events_to_spike_trains(batch, sensor_size=sensor, timesteps=timesteps,
                                    input_size=size, roi=roi, polarity=polarity)
    assert trains.batch_size == len(batch) and trains.timesteps == timesteps
    dense = trains.to_dense()
    frames = events_to_frames(batch, sensor_size=sensor, timesteps=timesteps,
                              input_size=size, roi=roi)
    assert frames.shape == (len(batch), timesteps, 2) + size and frames.dtype == np.float32
    for b, events in enumerate(batch):
        spikes, _ = naive_encoding(events, size, timesteps, region, polarity)
        assert {(int(k), int(i)) for k, i in np.argwhere(dense[:, b])} == spikes
        _, counts = naive_encoding(events, size, timesteps, region)
        got = {tuple(int(v) for v in i): frames[b][tuple(i)] for i in np.argwhere(frames[b])}
        assert got == counts
        bins = time_bins(events, timesteps)
        assert bins.size == 0 or (bins.min() == 0 and bins.max() < timesteps)
    # Built without the checks (SpikeEvents.unchecked): they would pass, dtypes and layout too.
    assert trains.pixels.dtype == np.int32 and trains.pixels.flags.c_contiguous
    assert trains.row_ptr.dtype == np.int64 and trains.row_ptr.flags.c_contiguous
    checked = SpikeEvents(pixels=trains.pixels, row_ptr=trains.row_ptr,
                          n_inputs=trains.n_inputs)
    assert np.array_equal(checked.to_dense(), dense)
    # Within each step the inputs are in ascending order, as the sort-based encoder gave.
    for b in range(len(batch)):
        for k in range(timesteps):
            row = trains.pixels[trains.row_ptr[b, k]:trains.row_ptr[b, k + 1]]
            assert np.all(np.diff(row) > 0)


def test_dense_window_spike_trains() -> None:
    """A window that lights most of its (bin, input) cells reads them in order too."""
    rng = np.random.default_rng(0)
    n = 20000
    events = make_events(x=rng.integers(0, 34, n), y=rng.integers(0, 34, n),
                         p=rng.integers(0, 2, n), t=rng.permutation(n))
    trains = events_to_spike_trains([events], sensor_size=(34, 34), timesteps=2)
    spikes, _ = naive_encoding(events, (28, 28), 2, (0, 0, 34, 34))
    assert len(spikes) > 784 and {(int(k), int(i)) for k, _, i in
                                  np.argwhere(trains.to_dense())} == spikes


def test_event_encoding_round_trip_and_checks() -> None:
    """to_dict/from_dict round trip; bad kinds, polarities and keys are refused."""
    encoding = EventEncoding('spike_trains', 34, 34, 28, 28, 'split', (1, 2, 30, 30))
    assert EventEncoding.from_dict(encoding.to_dict()) == encoding
    assert encoding.n_inputs == 1568
    assert encoding.geometry().roi == (1, 2, 30, 30)
    assert encoding.geometry((640, 480)).roi == (80, 0, 480, 480)
    assert EventEncoding('frames', 34, 34, polarity='channels').n_inputs == 1568
    with pytest.raises(EventEncodingError, match='kind'):
        EventEncoding('images', 34, 34)
    with pytest.raises(EventEncodingError, match='polarity'):
        EventEncoding('frames', 34, 34, polarity='merge')
    with pytest.raises(EventEncodingError, match='unknown'):
        EventEncoding.from_dict({**encoding.to_dict(), 'gain': 2})
    assert EVENT_DTYPE.names == ('x', 'y', 'p', 't')


def test_per_bin_frames_take_no_more_memory_than_the_result():
    """
    Frames are counted in the float32 array returned, not in int64 converted after.

    A window at T=1e5 (a TimestepCommand clamped only to max_timesteps) took 3.5 GB in a
    classifier; the int64 counts and their copy were three times the result.
    """
    events = random_events(30_000, 100_000, seed=2)
    events_to_frames([events], sensor_size=(34, 34), timesteps=10)  # compiled
    tracemalloc.start()
    try:
        frames = events_to_frames([events], sensor_size=(34, 34), timesteps=5000)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert frames.dtype == np.float32 and frames.sum() == 30_000
    assert peak < 1.2 * frames.nbytes, (peak, frames.nbytes)
