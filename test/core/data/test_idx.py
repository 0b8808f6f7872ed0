"""Tests of the IDX readers (:mod:`topspark_ros.core.data.idx`) and finding IDX data sets."""

import gzip
import struct

import numpy as np
import pytest

from topspark_ros.core.data.dataset import DatasetError
from topspark_ros.core.data.idx import (FASHION_MNIST_CLASSES, find_dataset_dir,
                                        load_mnist_family, read_idx)


def _idx(array: np.ndarray) -> bytes:
    """Return ``array`` (uint8) in IDX form."""
    header = struct.pack('>BBBB', 0, 0, 8, array.ndim) + struct.pack(f'>{array.ndim}I',
                                                                     *array.shape)
    return header + array.astype(np.uint8).tobytes()


def _write_split(directory, images, labels, compress=False):
    """Write a training split of ``images`` and ``labels`` into ``directory``."""
    for stem, data in (('train-images-idx3-ubyte', _idx(images)),
                       ('train-labels-idx1-ubyte', _idx(labels))):
        if compress:
            (directory / (stem + '.gz')).write_bytes(gzip.compress(data))
        else:
            (directory / stem).write_bytes(data)


def test_real_fashion_mnist(fashion_train, fashion_test):
    assert fashion_train.images.shape == (60000, 28, 28)
    assert fashion_test.images.shape == (10000, 28, 28)
    assert fashion_train.images.dtype == np.uint8 and fashion_train.labels.dtype == np.uint8
    assert fashion_train.labels.shape == (60000,) and fashion_test.labels.shape == (10000,)
    # First labels of the published files: Ankle boot, T-shirt/top, T-shirt/top, Dress.
    assert list(fashion_train.labels[:4]) == [9, 0, 0, 3]
    assert list(fashion_test.labels[:3]) == [9, 2, 1]
    assert fashion_train.class_names == FASHION_MNIST_CLASSES
    assert np.bincount(fashion_train.labels).tolist() == [6000] * 10


def test_raw_and_gzip_read_the_same(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (5, 28, 28)).astype(np.uint8)
    labels = np.array([0, 1, 2, 3, 4], np.uint8)
    raw, packed = tmp_path / 'raw', tmp_path / 'packed'
    raw.mkdir()
    packed.mkdir()
    _write_split(raw, images, labels)
    _write_split(packed, images, labels, compress=True)
    # A gzip file without .gz (detected by its magic bytes) reads too.
    (tmp_path / 'mislabelled').write_bytes(gzip.compress(_idx(images)))
    for directory in (raw, packed):
        data = load_mnist_family(directory, 'train')
        assert np.array_equal(data.images, images) and np.array_equal(data.labels, labels)
    assert np.array_equal(read_idx(tmp_path / 'mislabelled'), images)


@pytest.mark.parametrize('damage, message', [
    (lambda b: b[:-10], 'truncated data'),
    (lambda b: b[:6], 'truncated IDX header'),
    (lambda b: b'\x01\x02' + b[2:], 'bad IDX magic'),
    (lambda b: b[:2] + b'\x0d' + b[3:], 'unsupported IDX element type'),
    (lambda b: b + b'xx', 'trailing bytes'),
])
def test_broken_idx_files(tmp_path, damage, message):
    path = tmp_path / 'broken'
    path.write_bytes(damage(_idx(np.zeros((3, 4, 4), np.uint8))))
    with pytest.raises(DatasetError, match=message):
        read_idx(path)


def test_truncated_gzip(tmp_path):
    path = tmp_path / 'broken.gz'
    path.write_bytes(gzip.compress(_idx(np.zeros((30, 28, 28), np.uint8)))[:-20])
    with pytest.raises(DatasetError, match='gzip'):
        read_idx(path)


def test_count_and_dimension_mismatch(tmp_path):
    _write_split(tmp_path, np.zeros((4, 28, 28), np.uint8), np.zeros(3, np.uint8))
    with pytest.raises(DatasetError, match='4 images but 3 labels'):
        load_mnist_family(tmp_path, 'train')
    _write_split(tmp_path, np.zeros((3, 784), np.uint8), np.zeros(3, np.uint8))
    with pytest.raises(DatasetError, match='expected 3'):
        load_mnist_family(tmp_path, 'train')


def test_missing_files_and_directory(tmp_path):
    with pytest.raises(DatasetError, match='missing t10k-images-idx3-ubyte'):
        load_mnist_family(tmp_path, 'test')
    with pytest.raises(DatasetError, match='does not exist'):
        load_mnist_family(tmp_path / 'nowhere', 'train')
    with pytest.raises(DatasetError, match='unknown split'):
        load_mnist_family(tmp_path, 'validation')


def test_find_dataset_dir(tmp_path, monkeypatch):
    target = tmp_path / 'data' / 'tiny-set'
    target.mkdir(parents=True)
    _write_split(target, np.zeros((2, 28, 28), np.uint8), np.zeros(2, np.uint8))
    monkeypatch.setenv('TOPSPARK_DATA_DIR', str(tmp_path / 'data'))
    assert find_dataset_dir('tiny-set', start=tmp_path) == target
    monkeypatch.delenv('TOPSPARK_DATA_DIR')
    with pytest.raises(DatasetError) as info:
        find_dataset_dir('no-such-set', start=tmp_path)
    text = str(info.value)
    assert '/usr/share/datasets/no-such-set' in text and 'apt-get install' in text
    assert 'make data' in text and str(tmp_path / '.cache' / 'datasets') in text
