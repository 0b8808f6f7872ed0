"""Tests of what the data set readers share (:mod:`topspark_ros.core.data.dataset`)."""

from pathlib import Path

import numpy as np
import pytest

from topspark_ros.core.data import dataset
from topspark_ros.core.data.dataset import (check_split, dataset_search_path, DatasetError,
                                            split_indices)

ROOT = Path(__file__).resolve().parents[3]


def test_split_indices_is_deterministic_and_disjoint():
    first = split_indices(100, [10, 0.5, 5], seed=3)
    again = split_indices(100, [10, 0.5, 5], seed=3)
    other = split_indices(100, [10, 0.5, 5], seed=4)
    assert [len(p) for p in first] == [10, 50, 5]
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    assert not np.array_equal(first[0], other[0])
    assert len(np.unique(np.concatenate(first))) == 65
    with pytest.raises(ValueError, match='only 100 exist'):
        split_indices(100, [60, 41])


def test_check_split_names_the_splits():
    for split in dataset.SPLITS:
        check_split(split)
    with pytest.raises(DatasetError, match="unknown split 'valid' .expected 'train' or 'test'."):
        check_split('valid')


def test_search_path_order(tmp_path, monkeypatch):
    """$TOPSPARK_DATA_DIR, the checkout's .cache, the start and its parents, ~/.cache, system."""
    monkeypatch.setenv(dataset.DATA_DIR_ENV, str(tmp_path / 'env'))
    start = tmp_path / 'a' / 'b'
    start.mkdir(parents=True)
    path = dataset_search_path('some-set', start=start)
    assert path[0] == tmp_path / 'env' / 'some-set'
    assert path[1] == ROOT / '.cache' / 'datasets' / 'some-set'  # the repository root
    assert path.index(start / '.cache' / 'datasets' / 'some-set') \
        < path.index(tmp_path / '.cache' / 'datasets' / 'some-set')
    assert path[-2:] == [Path.home() / '.cache' / 'topspark_ros' / 'datasets' / 'some-set',
                         dataset.SYSTEM_DATA_DIR / 'some-set']
    assert len(path) == len(set(path))
    monkeypatch.delenv(dataset.DATA_DIR_ENV)
    assert dataset_search_path('some-set', start=start)[0] == ROOT / '.cache' / 'datasets' \
        / 'some-set'
