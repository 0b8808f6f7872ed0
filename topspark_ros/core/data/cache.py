"""
A cache of preprocessed model inputs, so image folders and bags are decoded once.

Decoding camera frames costs far more than using them: 640 x 480 frames read at 140 to 250
images/s here, several times slower than STDP training at T=64 (docs/benchmarks.md). The first
read of a split of a folder or a bag therefore stores its model inputs (``uint8`` arrays, a
few hundred bytes to a few KB per sample) in one ``.npz`` file; every later command that asks
for the same split with the same options loads it at memory speed.

The key of a cache entry is a SHA-256 of everything the result depends on: the source kind,
its absolute path, the size and modification time (ns) of every file under it, the split and
its options (fractions, seed), the model input (``FrameSpec``), crop, invert, strictness, the
bag options, and the source code of the modules that decode and prepare frames
(:data:`DECODERS`). Any change of a file, an option or the decoding code (an upgrade) makes a
new key, so a stale entry is never used. Entries live in ``$TOPSPARK_DATA_CACHE`` (``off``
disables the cache) or ``~/.cache/topspark_ros/data``; they are written atomically (a
temporary file renamed into place) and can be deleted at any time. Event windows are not
cached (reading them is cheap).
"""

import dataclasses
import functools
import hashlib
import importlib.util
import json
import os
from pathlib import Path
import tempfile
from typing import Callable, Optional, Tuple

import numpy as np

from topspark_ros.core.files import walk_followed

CACHE_ENV = 'TOPSPARK_DATA_CACHE'
"""Environment variable naming the cache directory (``off``: no cache)."""
FORMAT = 6
"""
Version of the entries (part of the key): raised whenever what an entry holds changes, the
layout or how the readers decode (2: image files decoded as camera frames are, EXIF
orientation and alpha included; 3: a class folder's subfolders read too, and GIF files; 4:
JPEGs decoded at a reduced scale for the model input; 5: other large images averaged down
once decoded; 6: the decoders' source in the key, :data:`DECODERS`; entries of earlier
versions are never read again).
"""
DECODERS = ('topspark_ros.conversions.image', 'topspark_ros.core.data.folder',
            'topspark_ros.core.data.bag', 'topspark_ros.core.preprocess')
"""
Modules whose source code is part of the key: they decode files and messages into frames and
prepare the model inputs. Version 5 reduced large images differently from 9bfe0dc on (only
above 16.8 Mpixel, the alpha dropped first) with the version left at 5: entries of the code
before served RGBA images up to 230 grey levels off, without a word (a review). A change of
these files can no longer be missed.
"""
_ARRAYS = ('images', 'labels', 'stamps_ns', 'times_ns')


def cache_dir() -> Optional[Path]:
    """Return the cache directory, or None when ``$TOPSPARK_DATA_CACHE`` is ``off``."""
    value = os.environ.get(CACHE_ENV)
    if value is not None and value.strip().lower() in ('off', '0', 'no', 'none', ''):
        return None
    if value:
        return Path(value).expanduser()
    base = os.environ.get('XDG_CACHE_HOME') or Path.home() / '.cache'
    return Path(base) / 'topspark_ros' / 'data'


def fingerprint(path) -> list:
    """
    Return ``[[relative path, size, mtime_ns], ...]`` of every file under ``path``.

    Symbolic links to folders are followed, as the readers follow them (a class folder may
    be a link; a change behind it must change the key), each real folder once (a link loop
    ends there).
    """
    root = Path(path)
    if root.is_file():
        stat = root.stat()
        return [[root.name, stat.st_size, stat.st_mtime_ns]]
    entries = []
    for folder, files in walk_followed(root):
        for name in files:
            file = Path(folder) / name
            try:
                stat = file.stat()
            except OSError:
                continue  # vanished meanwhile: the read will say so
            entries.append([str(file.relative_to(root)), stat.st_size, stat.st_mtime_ns])
    return entries


@functools.lru_cache(maxsize=None)
def decoders_digest(modules: Tuple[str, ...] = DECODERS) -> str:
    """Return a SHA-256 of the source files of ``modules`` (found, not imported)."""
    digest = hashlib.sha256()
    for name in modules:
        spec = importlib.util.find_spec(name)
        if spec is None or not spec.origin:
            raise ImportError(f'no source for {name}')
        digest.update(name.encode('utf-8') + b'\0' + Path(spec.origin).read_bytes())
    return digest.hexdigest()


def cache_key(path, options: dict) -> str:
    """Return the entry key of the source at ``path`` read with ``options`` (JSON-able)."""
    text = json.dumps({'format': FORMAT, 'decoders': decoders_digest(DECODERS),
                       'path': str(Path(path).resolve()), 'files': fingerprint(path),
                       'options': options}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode('utf-8')).hexdigest()


def cached(path, options: dict, load: Callable[[], object],
           directory: Optional[Path] = None) -> object:
    """
    Return ``load()``'s data set, from the cache when an entry for ``path`` + ``options`` exists.

    Only frame data sets (a dataclass with a ``uint8`` ``images`` array: image folders and
    image bags) are stored; anything else is returned as ``load()`` gave it. ``directory``
    defaults to :func:`cache_dir`; a cache that cannot be written is skipped silently (the
    data is still returned).
    """
    directory = cache_dir() if directory is None else directory
    if directory is None:
        return load()
    key = cache_key(path, options)
    entry = Path(directory) / f'{key}.npz'
    if entry.is_file():
        try:
            return _read(entry)
        except (OSError, ValueError, KeyError, TypeError):
            pass  # a damaged entry: read the source again and replace it
    data = load()
    images = getattr(data, 'images', None)
    if dataclasses.is_dataclass(data) and isinstance(images, np.ndarray) \
            and images.dtype == np.uint8:
        try:
            _write(entry, data)
        except OSError:
            pass
    return data


def _write(entry: Path, data) -> None:
    arrays, meta = {}, {'type': type(data).__name__}
    for f in dataclasses.fields(data):
        value = getattr(data, f.name)
        if f.name in _ARRAYS:
            arrays[f.name] = np.asarray(value)
        elif f.name == 'source':
            meta[f.name] = str(value)
        elif f.name == 'files':
            meta[f.name] = [str(p) for p in value]
        elif f.name == 'skipped':
            meta[f.name] = [[str(x) if isinstance(x, Path) else x for x in item]
                            for item in value]
        else:
            meta[f.name] = list(value) if isinstance(value, tuple) else value
    arrays['meta'] = np.array(json.dumps(meta))
    entry.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(prefix=f'.{entry.stem}.', suffix='.tmp', dir=entry.parent)
    try:
        with os.fdopen(handle, 'wb') as out:
            np.savez(out, **arrays)
        os.replace(tmp, entry)
    except BaseException:
        os.unlink(tmp)
        raise


def _read(entry: Path):
    from topspark_ros.core.data.bag import BagDataset
    from topspark_ros.core.data.folder import FolderDataset

    with np.load(entry, allow_pickle=False) as archive:
        meta = json.loads(str(archive['meta']))
        arrays = {name: archive[name] for name in _ARRAYS if name in archive.files}
    kind = {'FolderDataset': FolderDataset, 'BagDataset': BagDataset}[meta.pop('type')]
    values = dict(meta, **arrays)
    values['source'] = Path(values['source'])
    names = values['class_names']  # folders give a list, bags a tuple: as they were
    values['class_names'] = list(names) if kind is FolderDataset else tuple(names)
    if 'files' in values:
        values['files'] = tuple(Path(p) for p in values['files'])
    if 'skipped' in values:
        values['skipped'] = tuple(
            (Path(item[0]),) + tuple(item[1:]) if kind is FolderDataset else tuple(item)
            for item in values['skipped'])
    return kind(**values)
