"""
Readers for CIFAR-10 and CIFAR-100 in their standard "python version" pickle batch format.

The distribution (``cifar-10-python.tar.gz`` / ``cifar-100-python.tar.gz``, unpacked) holds
pickled dicts with byte-string keys:

* CIFAR-10 (``cifar-10-batches-py/``): ``data_batch_1`` .. ``data_batch_5`` (train) and
  ``test_batch``, each ``{b'data': uint8 [N, 3072], b'labels': [N ints], ...}``;
  ``batches.meta`` has ``b'label_names'``.
* CIFAR-100 (``cifar-100-python/``): ``train`` and ``test`` with ``b'fine_labels'`` and
  ``b'coarse_labels'``; ``meta`` has ``b'fine_label_names'`` and ``b'coarse_label_names'``.

A row of ``data`` is the 1024 red, then 1024 green, then 1024 blue values of a 32 x 32 image
in row-major order; images come back as ``uint8 [N, 3, 32, 32]`` (the layout of an RGB model's
input, see :class:`topspark_ros.core.preprocess.FrameSpec`), labels as ``uint8 [N]``.

Pickle can run code while loading; these files are read with an unpickler that only builds
plain containers, byte strings and numpy arrays, and refuses anything else.
"""

import io
import os
from pathlib import Path
import pickle
from typing import Union

import numpy as np

from topspark_ros.core.data.dataset import check_split, DatasetError, ImageDataset

CIFAR10_FILES = {'train': tuple(f'data_batch_{i}' for i in range(1, 6)),
                 'test': ('test_batch',)}
CIFAR100_FILES = {'train': ('train',), 'test': ('test',)}
IMAGE_SHAPE = (3, 32, 32)

_ALLOWED_GLOBALS = {
    ('numpy.core.multiarray', '_reconstruct'), ('numpy._core.multiarray', '_reconstruct'),
    ('numpy', 'ndarray'), ('numpy', 'dtype'), ('numpy.core.multiarray', 'scalar'),
    ('numpy._core.multiarray', 'scalar'), ('_codecs', 'encode'),
}


class _SafeUnpickler(pickle.Unpickler):
    """Unpickler that resolves only numpy array reconstruction (no other code)."""

    def find_class(self, module: str, name: str):
        if (module, name) in _ALLOWED_GLOBALS:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f'refusing to load {module}.{name}')


def read_batch(path: Union[str, os.PathLike]) -> dict:
    """
    Read one pickled batch file; return its dict with ``str`` keys.

    Raises
    ------
    DatasetError
        missing, unreadable, truncated or not a pickled dict, or asks for code.

    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DatasetError(f'cannot read {path}: {exc.strerror or exc}') from None
    try:
        obj = _SafeUnpickler(io.BytesIO(raw), encoding='bytes').load()
    except Exception as exc:  # pickle raises many kinds on malformed input
        raise DatasetError(f'{path}: not a readable CIFAR batch ({type(exc).__name__}: '
                           f'{exc})') from None
    if not isinstance(obj, dict):
        raise DatasetError(f'{path}: a CIFAR batch is a dict, got {type(obj).__name__}')
    return {(k.decode('latin1') if isinstance(k, bytes) else str(k)): v for k, v in obj.items()}


def _names(values) -> tuple:
    return tuple(v.decode('utf-8') if isinstance(v, bytes) else str(v) for v in values)


def _batch_arrays(path: Path, label_key: str) -> tuple:
    """Return ``(images uint8 [N, 3, 32, 32], labels int64 [N])`` of one batch file."""
    batch = read_batch(path)
    if 'data' not in batch or label_key not in batch:
        raise DatasetError(f'{path}: missing {"data" if "data" not in batch else label_key!r}'
                           f' (keys: {sorted(batch)})')
    data = np.asarray(batch['data'])
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != int(np.prod(IMAGE_SHAPE)):
        raise DatasetError(f'{path}: data must be uint8 [N, 3072], got {data.dtype} '
                           f'{list(data.shape)}')
    try:
        labels = np.asarray(batch[label_key], dtype=np.int64)
    except (TypeError, ValueError):
        raise DatasetError(f'{path}: {label_key} are not integers') from None
    if labels.shape != (data.shape[0],):
        raise DatasetError(f'{path}: {data.shape[0]} images but labels of shape '
                           f'{list(labels.shape)}')
    return data.reshape((-1,) + IMAGE_SHAPE), labels


def load_cifar(directory: Union[str, os.PathLike], split: str = 'train',
               label: str = 'fine') -> ImageDataset:
    """
    Load one split of CIFAR-10 or CIFAR-100 from an unpacked "python version" directory.

    Parameters
    ----------
    directory
        ``cifar-10-batches-py`` or ``cifar-100-python`` (told apart by their files).
    split
        ``'train'`` or ``'test'``.
    label
        CIFAR-100 only: ``'fine'`` (100 classes) or ``'coarse'`` (20 superclasses).

    Raises
    ------
    DatasetError
        unknown split, missing or malformed files, labels out of range.

    """
    directory = Path(directory)
    check_split(split)
    if label not in ('fine', 'coarse'):
        raise DatasetError(f"label must be 'fine' or 'coarse', got {label!r}")
    if not directory.is_dir():
        raise DatasetError(f'data set directory {directory} does not exist')
    if (directory / 'batches.meta').is_file() or (directory / 'test_batch').is_file():
        files, label_key, meta_file, names_key = CIFAR10_FILES[split], 'labels', \
            'batches.meta', 'label_names'
    elif (directory / 'meta').is_file() or (directory / 'test').is_file():
        files, label_key, meta_file, names_key = CIFAR100_FILES[split], f'{label}_labels', \
            'meta', f'{label}_label_names'
    else:
        raise DatasetError(f'{directory}: neither a CIFAR-10 (batches.meta, data_batch_*, '
                           'test_batch) nor a CIFAR-100 (meta, train, test) directory')
    parts = [_batch_arrays(directory / name, label_key) for name in files]
    images = np.concatenate([p[0] for p in parts])
    labels = np.concatenate([p[1] for p in parts])
    if (directory / meta_file).is_file():
        meta = read_batch(directory / meta_file)
        if names_key not in meta:
            raise DatasetError(f'{directory / meta_file}: missing {names_key!r}')
        class_names = _names(meta[names_key])
    else:
        class_names = tuple(str(i) for i in range(int(labels.max(initial=0)) + 1))
    if labels.size and (labels.min() < 0 or labels.max() >= len(class_names)):
        raise DatasetError(f'{directory}: labels outside 0..{len(class_names) - 1}')
    return ImageDataset(images=np.ascontiguousarray(images), labels=labels.astype(np.uint8),
                        class_names=class_names, source=directory)
