"""Tests of the N-MNIST binary format (:mod:`topspark_ros.core.events.nmnist`)."""

from event_arrays import events_from_rows
from hypothesis import given, settings, strategies as st
import numpy as np
import pytest

from topspark_ros.core.data import synthetic_events as synthetic
from topspark_ros.core.data.dataset import DatasetError
from topspark_ros.core.events import EVENT_DTYPE, nmnist


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
    assert nmnist.encode_nmnist(events_from_rows([(5, 7, 1, 0x010203)])) == data[:5]


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
    events = events_from_rows(sorted(rows, key=lambda r: r[3]))
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
        nmnist.encode_nmnist(events_from_rows([(34, 0, 1, 0)]))
    with pytest.raises(nmnist.NMNISTFormatError, match='negative'):
        nmnist.encode_nmnist(events_from_rows([(1, 0, 1, -1)]))
    assert nmnist.decode_nmnist(b'').size == 0


def test_nmnist_tree_reader(tmp_path):
    for split, digit, name, t in (('Test', 3, '00002.bin', 500), ('Test', 3, '00001.bin', 900),
                                  ('Test', 7, '00001.bin', 100), ('Train', 1, '0.bin', 0)):
        folder = tmp_path / split / str(digit)
        folder.mkdir(parents=True, exist_ok=True)
        nmnist.write_nmnist(folder / name, events_from_rows([(digit, 1, 1, t), (0, 0, 0, t + 40)]))
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
