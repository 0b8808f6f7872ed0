"""
Readers for the MNIST family of image data sets (MNIST, Fashion-MNIST).

The files are the IDX files of LeCun's distribution, gzip-compressed or raw (told apart by
their first bytes, never by their names): ``train-images-idx3-ubyte``,
``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``, each
optionally with ``.gz``. Images come back as ``uint8`` arrays of shape ``[N, 28, 28]``, labels
as ``uint8`` arrays of shape ``[N]`` (an :class:`~topspark_ros.core.data.dataset.ImageDataset`).
Only numpy is needed.
"""

import gzip
import os
from pathlib import Path
from typing import Optional, Sequence, Union

import numpy as np

from topspark_ros.core.data.dataset import (check_split, DATA_DIR_ENV, dataset_search_path,
                                            DatasetError, ImageDataset)

FASHION_MNIST_CLASSES = (
    'T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat',
    'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot',
)
"""Class names of Fashion-MNIST, indexed by label."""

MNIST_CLASSES = tuple(str(d) for d in range(10))
"""Class names of MNIST (the digits), indexed by label."""

CLASS_NAMES = {'fashion-mnist': FASHION_MNIST_CLASSES, 'mnist': MNIST_CLASSES}
"""Class names per data set name."""

_FILE_STEMS = {
    'train': ('train-images-idx3-ubyte', 'train-labels-idx1-ubyte'),
    'test': ('t10k-images-idx3-ubyte', 't10k-labels-idx1-ubyte'),
}
_GZIP_MAGIC = b'\x1f\x8b'
_UBYTE_TYPE = 0x08


def _read_bytes(path: Path) -> bytes:
    """Return the decompressed content of ``path`` (gzip detected by its magic bytes)."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DatasetError(f'cannot read {path}: {exc.strerror or exc}') from None
    if raw[:2] != _GZIP_MAGIC:
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise DatasetError(f'{path}: corrupt or truncated gzip data ({exc})') from None


def read_idx(path: Union[str, os.PathLike]) -> np.ndarray:
    """
    Read one IDX file of unsigned bytes (gzip or raw) into a ``uint8`` array.

    The header is two zero bytes, the element type (0x08 = ubyte), the number of dimensions
    ``d`` and ``d`` big-endian 32-bit sizes; the data follow in C order.

    Raises
    ------
        DatasetError: on a missing file, bad magic, unsupported type or truncated data.

    """
    path = Path(path)
    data = _read_bytes(path)
    if len(data) < 4:
        raise DatasetError(f'{path}: truncated IDX header ({len(data)} bytes)')
    if data[0] != 0 or data[1] != 0:
        raise DatasetError(f'{path}: bad IDX magic {data[:4].hex()} (not an IDX file)')
    if data[2] != _UBYTE_TYPE:
        raise DatasetError(f'{path}: unsupported IDX element type 0x{data[2]:02x} '
                           '(only unsigned bytes, 0x08)')
    ndim = data[3]
    header_len = 4 + 4 * ndim
    if ndim == 0 or len(data) < header_len:
        raise DatasetError(f'{path}: truncated IDX header (ndim={ndim}, {len(data)} bytes)')
    shape = tuple(int(s) for s in np.frombuffer(data, dtype='>u4', count=ndim, offset=4))
    expected = int(np.prod(shape, dtype=np.int64))
    available = len(data) - header_len
    if available < expected:
        raise DatasetError(f'{path}: truncated data: header says shape {shape} '
                           f'({expected} bytes) but only {available} bytes follow')
    if available > expected:
        raise DatasetError(f'{path}: {available - expected} unexpected trailing bytes '
                           f'after shape {shape}')
    return np.frombuffer(data, dtype=np.uint8, count=expected, offset=header_len).reshape(shape)


def _find_file(directory: Path, stem: str) -> Path:
    """Return ``directory/stem`` or ``directory/stem.gz``, whichever exists."""
    for name in (stem + '.gz', stem):
        candidate = directory / name
        if candidate.is_file():
            return candidate
    raise DatasetError(f'{directory}: missing {stem}(.gz)')


def load_mnist_family(directory: Union[str, os.PathLike], split: str = 'train',
                      class_names: Optional[Sequence[str]] = None) -> ImageDataset:
    """
    Load one split of an MNIST-family data set from ``directory``.

    Parameters
    ----------
    directory
        directory holding the standard IDX file names (``.gz`` or raw).
    split
        ``'train'`` (60000 samples for (Fashion-)MNIST) or ``'test'`` (10000).
    class_names
        class names; default: Fashion-MNIST's when the directory is named
        ``fashion-mnist``, otherwise the digits.

    Raises
    ------
        DatasetError: missing files, malformed files, images that are not ``[N, H, W]``,
            labels that are not ``[N]`` or image/label counts that differ.

    """
    check_split(split)
    directory = Path(directory)
    if not directory.is_dir():
        raise DatasetError(f'data set directory {directory} does not exist')
    image_stem, label_stem = _FILE_STEMS[split]
    images = read_idx(_find_file(directory, image_stem))
    labels = read_idx(_find_file(directory, label_stem))
    if images.ndim != 3:
        raise DatasetError(f'{directory}: images have {images.ndim} dimensions, expected 3 '
                           '([N, H, W])')
    if labels.ndim != 1:
        raise DatasetError(f'{directory}: labels have {labels.ndim} dimensions, expected 1')
    if images.shape[0] != labels.shape[0]:
        raise DatasetError(f'{directory}: {images.shape[0]} images but {labels.shape[0]} '
                           f'labels in the {split} split')
    if class_names is None:
        class_names = CLASS_NAMES.get(directory.name, MNIST_CLASSES)
    if labels.size and int(labels.max()) >= len(class_names):
        raise DatasetError(f'{directory}: label {int(labels.max())} out of range for '
                           f'{len(class_names)} classes')
    return ImageDataset(images=images, labels=labels, class_names=tuple(class_names),
                        source=directory)


def find_dataset_dir(name: str = 'fashion-mnist',
                     start: Optional[Union[str, os.PathLike]] = None) -> Path:
    """
    Return the first directory of the data set search path that holds the training images.

    The search path is :func:`~topspark_ros.core.data.dataset.dataset_search_path`.

    Raises
    ------
        DatasetError: nothing found; the message lists every place searched and how to
            install the data.

    """
    candidates = dataset_search_path(name, start)
    stem = _FILE_STEMS['train'][0]
    for candidate in candidates:
        if (candidate / (stem + '.gz')).is_file() or (candidate / stem).is_file():
            return candidate
    looked = ', '.join(str(c) for c in candidates)
    raise DatasetError(f'data set {name!r} not found (looked in: {looked}); install it with '
                       f"'apt-get install dataset-{name}' or 'make data', or set "
                       f'{DATA_DIR_ENV} to a directory that holds {name}/')
