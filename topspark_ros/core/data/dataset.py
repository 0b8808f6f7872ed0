"""
What every data set reader shares: its error, the image set type, splits, the search path.

:class:`ImageDataset` is what the image readers return (:mod:`.idx`, :mod:`.cifar`,
:mod:`.folder`, :mod:`.digits`); :class:`DatasetError` is what every reader raises for a
missing, truncated or malformed file. :func:`dataset_search_path` lists the directories a
data set named ``<name>`` is looked for in; :func:`split_indices` and :func:`check_split`
are the deterministic splits and the split names the readers share.
"""

from dataclasses import dataclass
import os
from pathlib import Path
from typing import Optional, Sequence, Union

import numpy as np

DATA_DIR_ENV = 'TOPSPARK_DATA_DIR'
"""Environment variable naming a directory that holds ``<name>/`` data set directories."""

SYSTEM_DATA_DIR = Path('/usr/share/datasets')
"""Where the system packages (``apt-get install dataset-<name>``) install data sets."""

SPLITS = ('train', 'test')
"""The split names of the data sets that come in a training and a test split."""


class DatasetError(ValueError):
    """A data set file or directory is missing, truncated or malformed."""


def class_name_problem(name: str) -> Optional[str]:
    """
    Return why ``name`` cannot name a class on ROS topics (a string must be UTF-8), or None.

    A folder whose name is bytes of another encoding (unzipped from a Windows archive) reads
    as a name with lone surrogates: a model trained on it failed the classifier's configure
    without a reason, or skipped every frame of that class (a review).
    """
    try:
        name.encode('utf-8')
    except UnicodeEncodeError:
        shown = name.encode('utf-8', 'surrogateescape').decode('utf-8', 'replace')
        return (f'class name {shown!r} is not UTF-8 text (a name in another encoding, '
                'as an archive from another system may leave): ROS strings are UTF-8')
    return None


@dataclass(frozen=True)
class ImageDataset:
    """
    Images and labels of one split.

    Attributes
    ----------
    images
        ``uint8 [N, H, W]`` pixel intensities 0..255.
    labels
        ``uint8 [N]`` class indices.
    class_names
        name of each class, indexed by label.
    source
        directory the files came from.

    """

    images: np.ndarray
    labels: np.ndarray
    class_names: Sequence[str]
    source: Path

    def __len__(self) -> int:
        """Return the number of samples."""
        return int(self.labels.shape[0])


def check_split(split: str) -> None:
    """Raise :class:`DatasetError` unless ``split`` is one of :data:`SPLITS`."""
    if split not in SPLITS:
        raise DatasetError(f"unknown split {split!r} (expected 'train' or 'test')")


def dataset_search_path(name: str = 'fashion-mnist',
                        start: Optional[Union[str, os.PathLike]] = None) -> list:
    """
    Return the directories a data set ``name`` is looked for in, in order.

    1. ``$TOPSPARK_DATA_DIR/<name>``;
    2. ``<root>/.cache/datasets/<name>`` for the repository root holding this package (when
       run from a checkout) and for ``start`` (default: the current directory) and its parents;
    3. ``~/.cache/topspark_ros/datasets/<name>``;
    4. ``/usr/share/datasets/<name>``.
    """
    candidates = []
    env = os.environ.get(DATA_DIR_ENV)
    if env:
        candidates.append(Path(env).expanduser() / name)
    roots = [Path(__file__).resolve().parents[3]]  # <root>/topspark_ros/core/data/dataset.py
    here = Path(start if start is not None else Path.cwd()).resolve()
    roots.extend([here, *here.parents])
    for root in roots:
        candidate = root / '.cache' / 'datasets' / name
        if candidate not in candidates:
            candidates.append(candidate)
    candidates.append(Path.home() / '.cache' / 'topspark_ros' / 'datasets' / name)
    candidates.append(SYSTEM_DATA_DIR / name)
    return candidates


def split_indices(n: int, sizes: Sequence[Union[int, float]], seed: int = 0) -> list:
    """
    Split ``range(n)`` into disjoint random index arrays, reproducibly.

    Parameters
    ----------
    n
        number of samples.
    sizes
        one entry per part: an ``int`` count or a ``float`` fraction of ``n`` (rounded
        down). Parts are taken in order from one permutation; their total must not exceed
        ``n``.
    seed
        seed of the ``numpy.random.Generator`` (PCG64) that draws the permutation.

    Returns
    -------
        One ``int64`` array per part.

    """
    counts = []
    for size in sizes:
        count = int(size) if isinstance(size, (int, np.integer)) else int(float(size) * n)
        if count < 0:
            raise ValueError(f'split size must be non-negative, got {size!r}')
        counts.append(count)
    if sum(counts) > n:
        raise ValueError(f'split sizes {list(sizes)} need {sum(counts)} samples, only {n} exist')
    order = np.random.default_rng(seed).permutation(n)
    bounds = np.cumsum([0, *counts])
    return [order[bounds[i]:bounds[i + 1]] for i in range(len(counts))]
