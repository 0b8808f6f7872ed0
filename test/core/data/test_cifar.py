"""Tests of the CIFAR-10/100 readers (python pickle batches)."""

import pickle

import numpy as np
import pytest

from topspark_ros.core.data.cifar import load_cifar
from topspark_ros.core.data.dataset import DatasetError


def _write(path, obj):
    with open(path, 'wb') as handle:
        pickle.dump(obj, handle, protocol=2)


def test_cifar10_and_cifar100_readers(tmp_path):
    rng = np.random.default_rng(0)
    c10 = tmp_path / 'cifar-10-batches-py'
    c10.mkdir()
    batches = []
    for i in range(1, 6):
        data = rng.integers(0, 256, (2, 3072), dtype=np.uint8)
        batches.append(data)
        _write(c10 / f'data_batch_{i}', {b'data': data, b'labels': [i % 10, (i + 1) % 10],
                                         b'batch_label': b'training batch'})
    _write(c10 / 'test_batch', {b'data': batches[0][:1], b'labels': [9]})
    _write(c10 / 'batches.meta', {b'label_names': [f'c{i}'.encode() for i in range(10)]})
    train = load_cifar(c10, 'train')
    assert train.images.shape == (10, 3, 32, 32) and train.images.dtype == np.uint8
    assert train.labels.tolist() == [1, 2, 2, 3, 3, 4, 4, 5, 5, 6]
    # Row layout: 1024 red, 1024 green, 1024 blue values, each row-major.
    assert train.images[0, :, 0, 1].tolist() == batches[0][0, [1, 1025, 2049]].tolist()
    assert train.images[0, 2, 31, 31] == batches[0][0, 3071]
    assert train.class_names[3] == 'c3' and len(load_cifar(c10, 'test')) == 1

    c100 = tmp_path / 'cifar-100-python'
    c100.mkdir()
    data = rng.integers(0, 256, (3, 3072), dtype=np.uint8)
    for split in ('train', 'test'):
        _write(c100 / split, {b'data': data, b'fine_labels': [0, 99, 5],
                              b'coarse_labels': [0, 19, 3]})
    _write(c100 / 'meta', {b'fine_label_names': [b'f%d' % i for i in range(100)],
                           b'coarse_label_names': [b'k%d' % i for i in range(20)]})
    fine = load_cifar(c100, 'train')
    assert fine.labels.tolist() == [0, 99, 5] and len(fine.class_names) == 100
    coarse = load_cifar(c100, 'test', label='coarse')
    assert coarse.labels.tolist() == [0, 19, 3] and coarse.class_names[19] == 'k19'


def test_cifar_reader_refuses_broken_files(tmp_path):
    c10 = tmp_path / 'c10'
    c10.mkdir()
    good = {b'data': np.zeros((2, 3072), np.uint8), b'labels': [0, 1]}
    for i in range(1, 6):
        _write(c10 / f'data_batch_{i}', good)
    _write(c10 / 'batches.meta', {b'label_names': [b'a', b'b']})
    _write(c10 / 'test_batch', good)
    assert len(load_cifar(c10, 'train')) == 10
    blob = (c10 / 'data_batch_3').read_bytes()
    (c10 / 'data_batch_3').write_bytes(blob[:len(blob) // 2])
    with pytest.raises(DatasetError, match='data_batch_3'):
        load_cifar(c10, 'train')
    (c10 / 'data_batch_3').write_bytes(pickle.dumps(print))  # a global: refused, never run
    with pytest.raises(DatasetError, match='refusing'):
        load_cifar(c10, 'train')
    _write(c10 / 'data_batch_3', {b'data': np.zeros((2, 100), np.uint8), b'labels': [0, 1]})
    with pytest.raises(DatasetError, match='3072'):
        load_cifar(c10, 'train')
    _write(c10 / 'data_batch_3', {b'data': np.zeros((2, 3072), np.uint8), b'labels': [0]})
    with pytest.raises(DatasetError, match='labels'):
        load_cifar(c10, 'train')
    _write(c10 / 'test_batch', {b'data': np.zeros((1, 3072), np.uint8), b'labels': [7]})
    with pytest.raises(DatasetError, match='outside'):
        load_cifar(c10, 'test')
    _write(c10 / 'data_batch_3', good)
    (c10 / 'data_batch_5').unlink()
    with pytest.raises(DatasetError, match='data_batch_5'):
        load_cifar(c10, 'train')
    with pytest.raises(DatasetError, match='neither'):
        load_cifar(tmp_path, 'train')
    with pytest.raises(DatasetError, match='does not exist'):
        load_cifar(tmp_path / 'missing', 'train')
