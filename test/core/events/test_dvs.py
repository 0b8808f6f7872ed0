"""Tests of the DVS emulator (:mod:`topspark_ros.core.events.dvs`)."""

import numpy as np
import pytest

from topspark_ros.core.events import dvs

NO_NOISE = {'threshold_sigma': 0.0, 'refractory_us': 0.0, 'noise_rate_hz': 0.0}


def _per_pixel_times(events: np.ndarray) -> dict:
    """Return {(x, y): sorted times} of ``events``."""
    out = {}
    for e in events:
        out.setdefault((int(e['x']), int(e['y'])), []).append(int(e['t']))
    return {k: sorted(v) for k, v in out.items()}


def test_static_scene_gives_no_events_without_noise():
    frames = np.full((50, 8, 10), 0.3)
    frames[:, 2:5, 3:7] = 0.9
    events = dvs.emulate(frames, np.arange(50) * 1000.0, dvs.DVSParams(noise_rate_hz=0.0))
    assert events.size == 0


def test_static_scene_gives_only_noise_at_the_rate():
    params = dvs.DVSParams(noise_rate_hz=20.0, noise_on_fraction=0.25)
    frames = np.full((101, 20, 20), 0.5)
    events = dvs.emulate(frames, np.arange(101) * 10_000.0, params, seed=3)
    expected = 20.0 * 400 * 1.0  # rate x pixels x 1 s
    assert abs(events.size - expected) < 5 * np.sqrt(expected)
    assert abs(events['p'].mean() - 0.25) < 0.03
    assert events['t'].min() >= 0 and events['t'].max() < 1_000_000
    assert np.all(np.diff(events['t']) >= 0)


@pytest.mark.parametrize('before, after', [(0.1, 0.5), (0.2, 0.9), (0.8, 0.1), (0.5, 0.52)])
def test_brightness_step_gives_one_event_per_threshold(before, after):
    params = dvs.DVSParams(threshold_on=0.2, threshold_off=0.3, **NO_NOISE)
    frames = np.full((4, 3, 4), before)
    frames[2:, 1, 2] = after
    events = dvs.emulate(frames, [0.0, 1000.0, 2000.0, 3000.0], params)
    change = np.log(after + params.log_eps) - np.log(before + params.log_eps)
    threshold = params.threshold_on if change > 0 else params.threshold_off
    assert events.size == int(np.floor(abs(change) / threshold))
    assert np.all(events['x'] == 2) and np.all(events['y'] == 1)
    assert np.all(events['p'] == (1 if change > 0 else 0))
    # Interpolated inside the frame interval where the step happened, evenly spaced.
    assert np.all((events['t'] >= 1000) & (events['t'] < 2000))
    if events.size > 2:
        gaps = np.diff(events['t'])
        assert gaps.max() - gaps.min() <= 1


def test_large_change_gives_several_events_in_one_interval_at_their_times():
    params = dvs.DVSParams(threshold_on=0.25, **NO_NOISE)
    frames = np.array([[[0.1]], [[1.0]]])
    events = dvs.emulate(frames, [0.0, 1000.0], params)
    change = np.log(1.0 + 1e-3) - np.log(0.1 + 1e-3)
    assert events.size == int(change / 0.25) == 9
    expected = np.floor(np.arange(1, 10) * 0.25 / change * 1000.0)
    np.testing.assert_allclose(events['t'], expected, atol=1)


def test_refractory_period_is_respected_and_drops_events():
    base = {'threshold_on': 0.1, 'threshold_off': 0.1, 'threshold_sigma': 0.0,
            'noise_rate_hz': 0.0}
    t = np.arange(21) * 1000.0
    frames = 0.2 + 0.7 * (0.5 + 0.5 * np.sin(t / 3000.0))[:, None, None] * np.ones((1, 3, 3))
    free = dvs.emulate(frames, t, dvs.DVSParams(refractory_us=0.0, **base))
    held = dvs.emulate(frames, t, dvs.DVSParams(refractory_us=800.0, **base))
    assert held.size < free.size
    gaps_free = [np.diff(v) for v in _per_pixel_times(free).values()]
    assert min(g.min() for g in gaps_free) < 800  # the test would catch a violation
    for times in _per_pixel_times(held).values():
        # Times are rounded down to whole microseconds.
        assert np.all(np.diff(times) >= 799)


def test_refractory_event_fires_when_the_period_ends():
    params = dvs.DVSParams(threshold_on=0.2, threshold_sigma=0.0, refractory_us=600.0,
                           noise_rate_hz=0.0)
    frames = np.array([[[0.1]], [[0.5]], [[0.5]]])
    events = dvs.emulate(frames, [0.0, 1000.0, 2000.0], params)
    # One threshold takes 1000 us * 0.2 / ln(0.501 / 0.101) = 124.9 us: the first event fires
    # at the crossing, the next ones when the period ends (the excess forgotten at each
    # reset), the last in the following interval; 3 events instead of the 8 crossings.
    step = 1000.0 * 0.2 / np.log(0.501 / 0.101)
    np.testing.assert_array_equal(events['t'], np.floor([step, step + 600, step + 1200]))
    assert np.all(events['p'] == 1)


def test_emulator_is_seeded():
    rng = np.random.default_rng(0)
    frames = rng.uniform(0, 1, size=(10, 6, 7))
    times = np.arange(10) * 500.0
    params = dvs.DVSParams(threshold_sigma=0.1, noise_rate_hz=50.0)
    a = dvs.emulate(frames, times, params, seed=5)
    b = dvs.emulate(frames, times, params, seed=5)
    c = dvs.emulate(frames, times, params, seed=6)
    assert a.size > 0
    np.testing.assert_array_equal(a, b)
    assert a.size != c.size or not np.array_equal(a, c)


def test_threshold_mismatch_has_the_given_spread():
    params = dvs.DVSParams(threshold_on=0.3, threshold_off=0.5, threshold_sigma=0.05)
    emulator = dvs.DVSEmulator(100, 100, params, seed=1)
    assert abs(emulator.threshold_on.mean() - 0.3) < 0.003
    assert abs(emulator.threshold_on.std() / 0.3 - 0.05) < 0.005
    assert abs(emulator.threshold_off.std() / 0.5 - 0.05) < 0.005


def test_batched_emulation_equals_one_sequence_at_a_time():
    rng = np.random.default_rng(2)
    frames = rng.uniform(0, 1, size=(6, 3, 5, 4))  # [F, B, H, W]
    times = np.arange(6) * 1000.0
    params = dvs.DVSParams(noise_rate_hz=0.0, refractory_us=300.0)
    batched = dvs.DVSEmulator(5, 4, params, seed=9, batch=3)
    samples, chunks = [], []
    for frame, t in zip(frames, times):
        sample, events = batched.step(frame, t)
        samples.append(sample)
        chunks.append(events)
    sample, events = np.concatenate(samples), np.concatenate(chunks)
    for b in range(3):
        alone = dvs.emulate(frames[:, b], times, params, seed=9)
        mine = events[sample == b]
        assert mine.size > 0
        order = np.lexsort((mine['x'], mine['y'], mine['t']))
        order_alone = np.lexsort((alone['x'], alone['y'], alone['t']))
        np.testing.assert_array_equal(mine[order], alone[order_alone])


def test_emulator_refuses_bad_input():
    with pytest.raises(ValueError, match='thresholds'):
        dvs.DVSParams(threshold_on=0.0)
    with pytest.raises(ValueError, match='refractory_us'):
        dvs.DVSParams(refractory_us=-1.0)
    emulator = dvs.DVSEmulator(2, 2)
    emulator.step(np.zeros((2, 2)), 0.0)
    with pytest.raises(ValueError, match='not after'):
        emulator.step(np.zeros((2, 2)), 0.0)
    with pytest.raises(ValueError, match='shape'):
        emulator.step(np.zeros((3, 2)), 10.0)
    with pytest.raises(ValueError, match='finite'):
        emulator.step(np.full((2, 2), np.nan), 10.0)
    with pytest.raises(ValueError, match='>= 0'):
        emulator.step(np.full((2, 2), -0.5), 10.0)
