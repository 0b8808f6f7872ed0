"""
Image folders: one subfolder per class (torchvision's ``ImageFolder`` convention).

Two layouts are read::

    objects/                      objects/
      mug/  a.png b.jpg ...         train/ mug/ ...  bottle/ ...
      bottle/ ...                   val/   mug/ ...  bottle/ ...   (optional)
                                    test/  mug/ ...  bottle/ ...

On the left the split is made here, per class, so every class is in every split in about
its own proportion (stratified) and the same files land in the same split on every machine
(``split_by``):

- ``'name'`` (what ``topspark train`` uses): each file by its own name. A number drawn from its
  path within the folder and ``seed`` (SHA-256) puts it in test below ``test_fraction``, in val
  below ``test_fraction + val_fraction``, else in train; a file never changes split when other
  files are added or removed (photos recorded into a class later never move a file the model
  trained on into its test split). The splits' sizes are then only about the fractions (a
  class of 40 photos gets 8 test photos on average, from 3 to 13); a class none of whose files
  falls in train gives its file of the highest number to train.
- ``'order'`` (models trained before the name split, which record no ``split_by``): the
  files (sorted by name) are shuffled with ``seed`` and cut into ``test_fraction`` (rounded),
  ``val_fraction`` (rounded) and the rest: exact sizes, but a file added to a class moves many
  others between the splits.

On the right the split is given by the subfolders.

Class names are the subfolder names, sorted; a class's images are the files in its folder and
in every folder below it (``mug/day2/*.jpg``; linked folders followed, hidden ones left out).
A class folder that holds no image is an error (naming it). Files are read with Pillow (PNG,
JPEG, BMP, GIF, TIFF, WebP, PPM/PGM: any size and mode), and go through
:class:`~topspark_ros.core.preprocess.Preprocessor`, the frame path the classifier node uses:
what is trained is what the robot sees. A file Pillow cannot read (unreadable, truncated, not
an image) is skipped and counted in ``skipped``, or refused with ``strict=True``; a class none
of whose train files can be read is an error. Other files (``.txt``, hidden files) are
ignored.
"""

from dataclasses import dataclass, field
import os
from pathlib import Path
from typing import Callable, List, Optional, Sequence, Tuple, Union

import numpy as np

from topspark_ros.core.data.dataset import class_name_problem, DatasetError
from topspark_ros.core.files import walk_followed
from topspark_ros.core.preprocess import FrameSpec, Preprocessor

IMAGE_SUFFIXES = ('.png', '.jpg', '.jpeg', '.bmp', '.gif', '.tif', '.tiff', '.webp', '.ppm',
                  '.pgm')
"""File suffixes (any case) read as images (a GIF: its first frame); other files are ignored."""

SPLIT_FOLDERS = ('train', 'val', 'test')
"""Subfolder names that give the split (the right-hand layout of the module docstring)."""


@dataclass(frozen=True)
class FolderDataset:
    """
    Images and labels of one split of an image folder.

    Attributes
    ----------
    images
        ``uint8 [N, h, w]`` (grayscale spec) or ``[N, 3, h, w]`` (RGB spec): model inputs.
    labels
        ``int64 [N]`` class indices into ``class_names``.
    class_names
        the class subfolder names, sorted.
    source
        the folder (the root, not the split subfolder).
    files
        the image file of each sample, in order.
    skipped
        ``(file, reason)`` of every file that could not be read (``strict=False``).

    """

    images: np.ndarray
    labels: np.ndarray
    class_names: Sequence[str]
    source: Path
    files: Tuple[Path, ...] = ()
    skipped: Tuple[Tuple[Path, str], ...] = field(default=())

    def __len__(self) -> int:
        """Return the number of samples."""
        return int(self.labels.shape[0])


SPLIT_BY = ('name', 'order')
"""How a folder without split subfolders is split (module doc): by each file's name, or by
its place in the class (the layout of models trained before the name split)."""


def folder_split(root: Union[str, os.PathLike], split: str, *, val_fraction: float = 0.1,
                 test_fraction: float = 0.2, seed: int = 0,
                 split_by: str = 'name') -> Tuple[List[str], List[Tuple[Path, int]]]:
    """
    Return ``(class_names, [(file, label), ...])`` of ``split`` of the folder ``root``.

    ``split`` is ``'train'``, ``'val'`` or ``'test'``. Fractions apply per class when the
    folder has no split subfolders, each file by its name or the class's files by their order
    (``split_by``, module doc); with ``'order'`` a class too small to give every split one
    image keeps its images in train first, then test, then val. Raises DatasetError for a
    missing folder, no class, or an empty class.
    """
    _check_split(split, val_fraction, test_fraction)
    if split_by not in SPLIT_BY:
        raise DatasetError(f"split_by must be one of {', '.join(SPLIT_BY)}, got {split_by!r}")
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f'image folder {root} does not exist or is not a directory')
    given = [d for d in SPLIT_FOLDERS if (root / d).is_dir()]
    if not given:  # Train/ Test/ (capitals, as Windows and Kaggle name them) read as classes
        names = [c.name for c in _class_dirs(root)]
        if 'train' in {n.lower() for n in names} and all(
                n.lower() in SPLIT_FOLDERS for n in names):
            raise DatasetError(
                f'{root} holds {", ".join(names)}: split folders are named train/ (val/, '
                'test/) in lower case; rename them to use them as splits (as they are they '
                'would be the classes, every photo labelled with its split; a review)')
    if given:
        others = [c.name for c in _class_dirs(root) if c.name not in SPLIT_FOLDERS]
        if others:  # a class named like a split beside real classes: say so, never guess
            raise DatasetError(
                f'{root} mixes split folders {given} with class folders {others[:5]}: use '
                'either one folder per class, or train/ (val/, test/) each holding the '
                'class folders; train, val and test cannot be class names')
        if 'train' not in given:
            raise DatasetError(f'{root} has split folders {given} but no train/')
        _refuse_one_folder_twice({d: root / d for d in given}, 'a photo cannot be in two '
                                 'splits: give each split folder its own photos, or only one '
                                 'folder per class and let the fractions split them')
        class_names = sorted({c.name for d in given for c in _class_dirs(root / d)})
        _check_class_names(root, class_names)
        if not (root / split).is_dir():
            return class_names, []  # e.g. no val/: an empty validation split
        foreign = [root / d / name for d in given if d != split for name in class_names]
        files = _files_by_class(root / split, class_names, must_have=split == 'train',
                                foreign=foreign)
        return class_names, [(f, label) for label, fs in enumerate(files) for f in fs]
    class_names = [c.name for c in _class_dirs(root)]
    _check_class_names(root, class_names)
    _refuse_one_folder_twice({name: root / name for name in class_names},
                             'a photo cannot have two labels')
    if not class_names:
        raise DatasetError(f'{root} holds no class folder (expected one subfolder of images '
                           'per class, or train/ val/ test/ subfolders)')
    by_class = _files_by_class(root, class_names, must_have=True)
    files = [(f, label) for label, fs in enumerate(by_class) for f in fs]
    labels = np.array([label for _, label in files], np.int64)
    if split_by == 'name':
        chosen = name_split([f.relative_to(root).as_posix() for f, _ in files], labels, split,
                            val_fraction=val_fraction, test_fraction=test_fraction, seed=seed)
    else:
        chosen = stratified_split(labels, split, val_fraction=val_fraction,
                                  test_fraction=test_fraction, seed=seed)
    return class_names, [files[i] for i in chosen]


def name_split(names: Sequence[str], labels: np.ndarray, split: str, *,
               val_fraction: float = 0.1, test_fraction: float = 0.2,
               seed: int = 0) -> np.ndarray:
    """
    Return the indices ``int64`` of the samples of ``split``, each placed by its ``names[i]``.

    ``u = SHA-256(f'{seed}/{name}')`` read as a fraction in [0, 1): test when ``u <
    test_fraction``, val when ``u < test_fraction + val_fraction``, else train, so a sample's
    split depends on its name and ``seed`` only. A class (each value of ``labels``) none of
    whose samples falls in train gives its sample of the highest ``u`` to train. Ascending
    indices.
    """
    import hashlib

    _check_split(split, val_fraction, test_fraction)
    labels = np.asarray(labels)
    if len(names) != len(labels):
        raise ValueError(f'{len(names)} names for {len(labels)} labels')
    # (surrogateescape: a name of bytes that are not UTF-8, as unzipping a Windows archive
    # leaves, stopped every command on the folder; a review. UTF-8 names hash as before.)
    u = np.array([int.from_bytes(hashlib.sha256(f'{seed}/{name}'.encode(
        'utf-8', 'surrogateescape')).digest()[:8], 'big') / 2.0 ** 64 for name in names],
        np.float64)
    part = np.where(u < test_fraction, 0, np.where(u < test_fraction + val_fraction, 1, 2))
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        if not np.any(part[members] == 2):
            part[members[np.argmax(u[members])]] = 2
    return np.flatnonzero(part == {'test': 0, 'val': 1, 'train': 2}[split]).astype(np.int64)


def stratified_split(labels: np.ndarray, split: str, *, val_fraction: float = 0.1,
                     test_fraction: float = 0.2, seed: int = 0) -> np.ndarray:
    """
    Return the indices ``int64`` of the samples of ``split`` in a stratified, seeded split.

    Per class (each distinct value of ``labels``, a negative one, e.g. -1 for unlabelled
    samples, being one group too), the class's sample indices in order are permuted by
    ``numpy.random.default_rng([seed, label])`` (``[seed, 2**32 - 1]`` for a negative label)
    and cut into ``test_fraction`` (rounded), ``val_fraction`` (rounded) and the rest (train);
    a class too small to give every split one sample keeps its samples in train first, then
    test, then val. Indices come class by class (ascending label), ascending within a class.
    Image folders split by ``'order'`` (:func:`folder_split`) and bags
    (:mod:`topspark_ros.core.data.bag`) split this way. Raises DatasetError for an unknown
    split or fractions leaving nothing to train.
    """
    _check_split(split, val_fraction, test_fraction)
    labels = np.asarray(labels)
    chosen = []
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        key = int(label) if label >= 0 else (1 << 32) - 1
        order = np.random.default_rng([seed, key]).permutation(len(members))
        n_test, n_val = _split_counts(len(members), val_fraction, test_fraction)
        parts = {'test': order[:n_test], 'val': order[n_test:n_test + n_val],
                 'train': order[n_test + n_val:]}
        chosen.append(members[np.sort(parts[split])])
    return np.concatenate(chosen).astype(np.int64) if chosen else np.zeros(0, np.int64)


def _check_split(split: str, val_fraction: float, test_fraction: float) -> None:
    """Raise DatasetError for an unknown split name or fractions that leave no training."""
    if split not in SPLIT_FOLDERS:
        raise DatasetError(f"split must be one of {', '.join(SPLIT_FOLDERS)}, got {split!r}")
    if not 0.0 <= val_fraction < 1.0 or not 0.0 <= test_fraction < 1.0 \
            or val_fraction + test_fraction >= 1.0:
        raise DatasetError(f'val_fraction ({val_fraction}) and test_fraction '
                           f'({test_fraction}) must be >= 0 and leave images to train on')


def load_image_folder(root: Union[str, os.PathLike], split: str, *,
                      spec: FrameSpec = FrameSpec(), crop: str = 'center', invert: bool = False,
                      val_fraction: float = 0.1, test_fraction: float = 0.2, seed: int = 0,
                      split_by: str = 'name', strict: bool = False,
                      progress: Callable[[int], None] = lambda n: None) -> FolderDataset:
    """
    Read ``split`` of an image folder into model inputs of ``spec``.

    ``crop`` and ``invert`` are the preprocessing options of the classifier node (see
    :mod:`topspark_ros.core.preprocess`); ``progress(1)`` is called per file. Raises
    DatasetError for the folder errors of :func:`folder_split`, and with ``strict`` for the
    first file that cannot be read.
    """
    class_names, chosen = folder_split(root, split, val_fraction=val_fraction,
                                       test_fraction=test_fraction, seed=seed,
                                       split_by=split_by)
    preprocess = Preprocessor(spec, crop=crop, invert=invert)
    images = np.empty((len(chosen),) + spec.shape, np.uint8)
    labels, files, skipped = [], [], []
    for path, label in chosen:
        try:
            frame, layout = read_image(path, (spec.height, spec.width))
        except DatasetError as exc:
            if strict:
                raise
            skipped.append((path, str(exc)))
        else:
            images[len(labels)] = preprocess(frame, layout)
            labels.append(label)
            files.append(path)
        progress(1)
    if split == 'train' and skipped:  # a class of unreadable files: say so, never train on
        chosen_classes = {label for _, label in chosen}  # the other classes alone
        unread = sorted(chosen_classes - set(labels))
        if unread:
            raise DatasetError(
                f'class {class_names[unread[0]]!r} has no readable image in the train split '
                f'of {root} (first of the {len(skipped)} skipped: {skipped[0][1]})')
    return FolderDataset(images[:len(labels)], np.asarray(labels, np.int64), class_names,
                         Path(root), tuple(files), tuple(skipped))


def read_image(path: Union[str, os.PathLike],
               size: Optional[Tuple[int, int]] = None) -> Tuple[np.ndarray, str]:
    """
    Return ``(frame, layout)`` of an image file, as :class:`Preprocessor` takes them.

    Decoded as a camera's compressed frame is
    (:func:`~topspark_ros.conversions.image.pil_to_array`): grey gives ``uint8`` (``uint16``
    for 16-bit) ``[H, W]`` ``'mono'``, colour ``uint8 [H, W, 3 or 4]`` ``'rgb'`` or
    ``'rgba'`` (alpha dropped by the preprocessing, as on the robot), the EXIF orientation
    applied; a JPEG at a reduced scale for the model input ``size`` (``(height, width)``,
    :func:`~topspark_ros.conversions.image.draft_for`: a phone's 12 Mpixel photo in 45
    instead of 300 ms; other formats averaged down once decoded,
    :func:`~topspark_ros.conversions.image.reduce_for`). Raises DatasetError when Pillow
    cannot read the whole file, or for a floating-point image.
    """
    from PIL import Image, UnidentifiedImageError

    from topspark_ros.conversions.image import draft_for, pil_to_array

    try:
        with Image.open(path) as image:
            draft_for(image, size)
            image.load()  # decode now: a truncated file fails here, not later
            return pil_to_array(image, size)
    except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError) as exc:
        raise DatasetError(f'{path}: cannot read the image ({exc})') from None


def _class_dirs(directory: Path) -> List[Path]:
    """
    Return the class folders of ``directory``, by name (hidden ones left out).

    A link whose target is not there (a drive not mounted) is an error naming it: its class
    was left out without a word, the model trained on the others (a review).
    """
    folders = []
    for d in directory.iterdir():
        if d.name.startswith('.'):
            continue
        if d.is_symlink() and not d.exists():
            raise DatasetError(f'{d} is a link to {os.readlink(d)}, which is not there (a '
                               'drive not mounted?): its class cannot be read; make it '
                               'reachable, or remove the link')
        if d.is_dir():
            folders.append(d)
    return sorted(folders, key=lambda d: d.name)


def _files_by_class(directory: Path, class_names: Sequence[str], must_have: bool,
                    foreign: Sequence[Path] = ()) -> List[List[Path]]:
    """
    Return the image files of each class folder of ``directory``, in ``class_names`` order.

    A file whose real path lies in another class's folder, or in a folder of ``foreign`` (the
    class folders of the other split folders), is not the class's: a link in a class folder
    to the data folder above it (``trouser/loop -> ..``) read every other class's images as
    this class's too, the same photo under two labels and in two splits (a CLI review).
    """
    real = {name: os.path.realpath(directory / name) for name in class_names}
    files = []
    taken = {}  # real path -> the file that read it first
    for name in class_names:
        folder = directory / name
        found = _image_files(folder) if folder.is_dir() else []
        others = [r for other, r in real.items() if other != name] + [
            os.path.realpath(f) for f in foreign]
        found = [f for f in found if not _within_any(os.path.realpath(f), others)]
        for f in found:  # one photo through two links (from outside the data folder)
            first = taken.setdefault(os.path.realpath(f), f)
            if first is not f:
                raise DatasetError(
                    f'{first} and {f} are one photo ({os.path.realpath(f)}, reached through '
                    'links): it would be read twice, with two labels or in two splits; keep '
                    'one of them')
        if must_have and not found:
            raise DatasetError(f'class {name!r} has no image in {folder} (expected '
                               f"{', '.join(IMAGE_SUFFIXES)} files)")
        files.append(found)
    return files


def _check_class_names(root: Path, names: Sequence[str]) -> None:
    """
    Raise DatasetError for a class folder name a model cannot carry, or two that are one.

    A name that is not UTF-8 (see :func:`class_name_problem`); two names equal once
    normalised to NFC (a folder copied from a Mac holds decomposed names, ``topspark record``
    writes composed ones: one class became two, identical on screen; a review).
    """
    import unicodedata

    composed = {}
    for name in names:
        problem = class_name_problem(name)
        if problem is not None:
            raise DatasetError(f'{root}: {problem}; rename the folder')
        same = composed.setdefault(unicodedata.normalize('NFC', name), name)
        if same != name:
            raise DatasetError(
                f'{root}: class folders {same!r} and {name!r} are one name written two ways '
                '(Unicode composed and decomposed, as copies between systems leave them): '
                'move the photos of one into the other')


def _refuse_one_folder_twice(folders: dict, why: str) -> None:
    """
    Raise DatasetError when two of ``folders`` (name -> path) are one folder (a link).

    ``ln -s train test`` then read as a class with no image: its photos lay in another split
    folder's class folder, so each side left them out (a review).
    """
    seen = {}
    for name, path in folders.items():
        real = os.path.realpath(path)
        if real in seen:
            raise DatasetError(f'{seen[real]}/ and {name}/ of {path.parent} are the same '
                               f'folder ({real}; a link): {why}')
        seen[real] = name


def _within_any(path: str, folders: Sequence[str]) -> bool:
    """Return whether the real ``path`` lies in one of the real ``folders``."""
    return any(path.startswith(folder.rstrip(os.sep) + os.sep) for folder in folders)


def ignored_files(root: Union[str, os.PathLike]) -> List[Path]:
    """
    Return the files of an image folder's classes that are not read: of other suffixes.

    Hidden files are left out, as everywhere. HEIC photos (an iPhone's default), ``.jfif``
    and the like were ignored without a word (a review of own data): this lists them for a
    note. ``root``: the folder ``--data folder:`` names (its split folders too).
    """
    root = Path(root)
    tops = [root / d for d in SPLIT_FOLDERS if (root / d).is_dir()] or [root]
    found = []
    for top in tops:
        for folder in _class_dirs(top):
            found += [Path(at, name) for at, names in walk_followed(folder) for name in names
                      if not name.startswith('.')
                      and Path(name).suffix.lower() not in IMAGE_SUFFIXES
                      and Path(at, name).is_file()]
    return found


def _image_files(folder: Path) -> List[Path]:
    """
    Return the image files in ``folder`` and its subfolders, in sorted order.

    As torchvision's ``ImageFolder`` reads a class: every level below it, linked folders
    followed (each real folder once); hidden files and folders (``.*``) and files of other
    suffixes left out.
    """
    return sorted((Path(top, name) for top, names in walk_followed(folder) for name in names
                   if not name.startswith('.') and Path(name).suffix.lower() in IMAGE_SUFFIXES
                   and Path(top, name).is_file()),
                  key=lambda p: p.relative_to(folder).parts)


def _split_counts(n: int, val_fraction: float, test_fraction: float) -> Tuple[int, int]:
    """Return ``(n_test, n_val)`` of a class of ``n`` images; train keeps at least one."""
    n_test = int(round(n * test_fraction))
    n_val = int(round(n * val_fraction))
    n_test = min(n_test, max(0, n - 1))
    n_val = min(n_val, max(0, n - 1 - n_test))
    return n_test, n_val


def image_size(text: str) -> Tuple[int, int]:
    """Parse ``'32'`` or ``'48x64'`` (height x width) into ``(height, width)``."""
    parts = text.lower().split('x')
    try:
        height, width = (int(parts[0]), int(parts[0])) if len(parts) == 1 else \
            (int(parts[0]), int(parts[1]))
    except (ValueError, IndexError):
        raise ValueError(f"expected a size such as '32' or '48x64', got {text!r}") from None
    if len(parts) > 2 or height < 1 or width < 1:
        raise ValueError(f"expected a size such as '32' or '48x64', got {text!r}")
    return height, width
