"""
Checkpoints: safetensors tensors plus a JSON metadata file, written atomically.

A checkpoint is named by its metadata file ``<name>.json``; the tensors live next to it in
``<name>.<sha256[:16]>.safetensors``, a name derived from their content, and the metadata
records that file name and its full SHA-256. Saving writes the new tensor file (temporary
file, fsync, ``os.replace``), then the metadata the same way, then deletes the previous tensor
file. A crash at any point leaves the previous checkpoint loadable (its metadata still names
its own, untouched tensor file); a tensor file that does not match its metadata (a torn or
corrupted pair) is refused at load. Loading never executes code: JSON and safetensors only.

The metadata::

    {"format_version": 1, "family": "stdp", "package_version": "...",
     "tensors": {"file": "...", "sha256": "...", "shapes": {...}, "dtypes": {...}},
     "model": {...family-specific...}, "info": {...free: dataset, T, accuracy...}}

Families (model kinds) register here by name, as a constant mapping to the class that
rebuilds them; the class provides ``checkpoint_family``, ``checkpoint_payload() ->
(model_meta, tensors)``, ``checkpoint_shapes(model_meta) -> {name: shape}`` (the shapes of
the tensors its metadata implies, computed without allocating them) and
``from_checkpoint(model_meta, tensors, device)``.

Hostile or damaged files
------------------------
Loading checks kinds, sizes and values before use, and refuses with :class:`CheckpointError`
(a ``ValueError``) and a one-line reason:

* kinds: both files must be regular files (a symlink to one is fine); a FIFO, a device such
  as ``/dev/zero`` or a directory is refused without reading from it (opened non-blocking);
* sizes: the metadata file is at most :data:`MAX_METADATA_BYTES`; its fields must have the
  types above (shapes: lists of non-negative ints; dtypes: names safetensors stores); the
  shapes must be the ones the family derives from ``model`` (:meth:`checkpoint_shapes`,
  nothing allocated), and the tensor file's size must equal its safetensors header plus
  the bytes those shapes and dtypes need. All of this happens before the tensor file is
  read, so nothing larger than the files the metadata truly describes is ever allocated;
* values: floating-point tensors must be finite (no NaN or infinity: weights, thresholds,
  rates); the family checks the rest (STDP class assignments within ``[-1, n_classes)``).

Temporaries
-----------
Saves write ``.<name>.json<8 random>.tmp`` and ``.<name>.<digest>.safetensors<8 random>.tmp``
next to the checkpoint and hold an exclusive ``flock`` on them until they are renamed. A
process killed mid-save leaves such a file behind; every later save and load of that
checkpoint removes the ones of this naming scheme that no process holds locked and that are
older than :data:`STALE_TEMPORARY_S` (so never a save in progress, nor any file another
naming scheme made). A process killed between its two renames leaves a whole tensor file that
no metadata names (``<name>.<digest>.safetensors``); the next save of that checkpoint deletes
such a file once it is as old, no ``.json`` beside it names it and its content's SHA-256
begins with the digest in its name (so it is one a save wrote, not a user's file).
"""

import hashlib
import importlib
import json
import math
import os
from pathlib import Path
import re
import stat
import time
from types import MappingProxyType
from typing import Optional, Union

import numpy as np

import topspark_ros
from topspark_ros.core.files import (atomic_write, fsync_dir, open_regular, read_at_most,
                                     read_regular, remove_stale_temporaries,
                                     STALE_TEMPORARY_S)

FORMAT_VERSION = 1
"""Version of the checkpoint layout written by :func:`save_checkpoint`."""

FAMILIES = MappingProxyType({
    'stdp': 'topspark_ros.core.stdp:DiehlCookNetwork',
    'converted': 'topspark_ros.core.converted:ConvertedNetwork',
})
"""Model family name -> ``module:Class`` that rebuilds it (imported on first use)."""

MODEL_KEYS = frozenset({'config', 'params', 'event_encoding'})
"""
The settings a family's ``model`` section may hold. Another one is a newer version's, which
this one would drop: ``event_encoding``, added with the format version left at 1, made an
event model a 28 x 28 frame model in the code before it, silently (a review). Those inside
``config`` and ``params`` are checked by the families.
"""


MAX_METADATA_BYTES = 16 << 20
"""Largest metadata file read (bytes); real ones are a few kB."""
MAX_HEADER_BYTES = 16 << 20
"""Largest safetensors header accepted (bytes): names, dtypes, shapes and offsets."""
DTYPE_BYTES = MappingProxyType({
    'bool': 1, 'uint8': 1, 'int8': 1, 'uint16': 2, 'int16': 2, 'float16': 2, 'uint32': 4,
    'int32': 4, 'float32': 4, 'uint64': 8, 'int64': 8, 'float64': 8,
})
"""Tensor dtypes a checkpoint may hold (numpy names) -> bytes per element."""


class CheckpointError(ValueError):
    """A checkpoint is missing, corrupted, torn, of an unknown format or inconsistent."""


def _temporary_pattern(meta_path: Path) -> 're.Pattern':
    """Return the names :func:`save_checkpoint` gives the temporaries of ``meta_path``."""
    return re.compile(r'\.' + re.escape(meta_path.stem)
                      + r'\.(?:json|[0-9a-f]{16}\.safetensors)[a-z0-9_]{8}\.tmp')


def metadata_path(path: Union[str, os.PathLike]) -> Path:
    """Return the metadata path of a checkpoint (``.json`` appended when missing)."""
    path = Path(path)
    return path if path.suffix == '.json' else path.with_name(path.name + '.json')


def save_checkpoint(path: Union[str, os.PathLike], model, info: Optional[dict] = None, *,
                    replace: bool = True) -> Path:
    """
    Save ``model`` as a checkpoint named ``path`` (the metadata file, ``.json``).

    Parameters
    ----------
    path
        metadata file path; ``.json`` is appended when it has another suffix.
    model
        an object of a registered family (see :data:`FAMILIES`).
    info
        free JSON-serialisable facts to keep (dataset, T used in training, accuracy).
    replace
        False: an existing checkpoint at ``path``, also one another process saved while this
        one trained, is kept (``FileExistsError``; a training run replaced one so, both runs
        saying they had saved; a user review).

    Returns
    -------
        The metadata path.

    """
    from safetensors.numpy import save as save_tensors

    meta_path = metadata_path(path)
    if not replace and os.path.lexists(meta_path):
        raise FileExistsError(f'{meta_path} exists; not replacing it')
    directory = meta_path.parent
    directory.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(directory, _temporary_pattern(meta_path))
    family = model.checkpoint_family
    if family not in FAMILIES:
        raise CheckpointError(f'unknown model family {family!r}')
    model_meta, tensors = model.checkpoint_payload()
    tensors = {name: np.ascontiguousarray(value) for name, value in tensors.items()}
    for name, value in tensors.items():  # (every load refuses them: nothing is written)
        if value.dtype.kind == 'f' and not np.isfinite(value).all():
            raise CheckpointError(f'{meta_path}: not saved: tensor {name!r} holds NaN or '
                                  'infinite values')
    blob = save_tensors(tensors)
    digest = hashlib.sha256(blob).hexdigest()
    tensor_path = directory / f'{meta_path.stem}.{digest[:16]}.safetensors'
    previous = _previous_tensor_file(meta_path)
    meta = {
        'format_version': FORMAT_VERSION,
        'family': family,
        'package_version': topspark_ros.__version__,
        'tensors': {
            'file': tensor_path.name,
            'sha256': digest,
            'shapes': {k: list(v.shape) for k, v in tensors.items()},
            'dtypes': {k: str(v.dtype) for k, v in tensors.items()},
        },
        'model': model_meta,
        'info': dict(info or {}),
    }
    try:  # numpy numbers in ``info`` are written as numbers (a TypeError before; a review)
        text = json.dumps(meta, indent=2, sort_keys=True, allow_nan=False,
                          default=_json_number) + '\n'
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f'info cannot be saved as JSON: {exc}') from None
    atomic_write(directory, '.' + tensor_path.name, blob, tensor_path)
    try:
        atomic_write(directory, '.' + meta_path.name, text.encode('utf-8'), meta_path,
                     replace=replace)
    except OSError:  # made meanwhile (kept), or the disk full: the tensors written for it
        # go (a full disk kept them, 1.3 MB of the little room left; a review), unless a
        # metadata file names them (the one made, or the one there before, may)
        if not _named_by_another(tensor_path, None):
            try:
                tensor_path.unlink(missing_ok=True)
            except OSError:  # (the error that matters is the one raised below)
                pass
        raise
    fsync_dir(directory)
    if previous is not None and previous != tensor_path \
            and not _named_by_another(previous, meta_path):
        try:
            previous.unlink()
        except OSError:
            pass
    _remove_orphaned_tensor_files(meta_path, tensor_path)
    return meta_path


def _remove_orphaned_tensor_files(meta_path: Path, current: Path) -> int:
    """
    Delete the tensor files of ``meta_path`` that a save killed mid-way left unnamed.

    A candidate is named as a save names them (``<stem>.<16 hex>.safetensors``), is not
    ``current``, was written at least :data:`STALE_TEMPORARY_S` ago (a save in progress renames
    its tensor file a moment before its metadata), is named by no ``.json`` beside it, and its
    content's SHA-256 begins with the digest of its name. Errors are passed over (the file is
    kept). Returns the number of files deleted.
    """
    pattern = re.compile(re.escape(meta_path.stem) + r'\.([0-9a-f]{16})\.safetensors')
    try:
        names = os.listdir(meta_path.parent)
    except OSError:
        return 0
    removed = 0
    for name in names:
        match = pattern.fullmatch(name)
        path = meta_path.parent / name
        if match is None or path == current:
            continue
        try:
            info = path.lstat()
            if not stat.S_ISREG(info.st_mode) \
                    or time.time() - info.st_mtime < STALE_TEMPORARY_S \
                    or _named_by_another(path, None):
                continue
            digest = hashlib.sha256()
            with open_regular(path, CheckpointError) as (handle, _):
                for block in iter(lambda: handle.read(1 << 20), b''):
                    digest.update(block)
            if digest.hexdigest()[:16] == match.group(1):
                path.unlink()
                removed += 1
        except (OSError, CheckpointError):
            continue
    return removed


def _json_number(value):
    """Return a numpy number or array as JSON can write it; refuse anything else."""
    if isinstance(value, (np.generic, np.ndarray)):
        return value.tolist()
    raise TypeError(f'{type(value).__name__} is not JSON serializable')


def _named_by_another(tensor_path: Path, meta_path: Optional[Path]) -> bool:
    """
    Return whether a metadata file beside ``meta_path`` names ``tensor_path`` (keep it then).

    ``meta_path`` None: whether any ``.json`` in ``tensor_path``'s folder names it.

    A copy of a checkpoint's ``.json`` (a backup made without its tensors) points to the same
    tensor file; replacing the original must not break the copy. Unreadable files are passed
    over; the name is looked for as text, so any doubt keeps the file.
    """
    name = tensor_path.name.encode('utf-8')
    for other in tensor_path.parent.glob('*.json'):
        if other == meta_path:
            continue
        try:
            if name in read_regular(other, MAX_METADATA_BYTES, CheckpointError):
                return True
        except (OSError, CheckpointError):
            continue
    return False


def _previous_tensor_file(meta_path: Path) -> Optional[Path]:
    """Return the tensor file an existing metadata file names, if it is readable."""
    try:
        meta = json.loads(
            read_regular(meta_path, MAX_METADATA_BYTES, CheckpointError).decode('utf-8'))
        name = meta['tensors']['file']
    except (OSError, ValueError, KeyError, TypeError, IndexError, RecursionError):
        return None
    if not isinstance(name, str) or Path(name).name != name:
        return None
    return meta_path.parent / name


def read_metadata(path: Union[str, os.PathLike]) -> tuple:
    """
    Read a checkpoint's metadata file only; return ``(metadata dict, its path)``.

    The checks of :func:`read_checkpoint` that need no tensor: a regular file within
    :data:`MAX_METADATA_BYTES`, valid JSON, the fields the loader uses (CheckpointError).
    For a caller that needs what a checkpoint is, not its weights (a save deciding whether
    it may replace one).
    """
    meta, meta_path = _read_metadata_json(path)
    _checked_metadata(meta, meta_path)
    return meta, meta_path


def _tensor_file_hint(path: Path) -> str:
    """
    Return what to give instead of ``path`` when it is not a checkpoint's metadata, or ''.

    For a checkpoint's tensor file, a NIR graph or a timestep profile.

    A checkpoint is named by its metadata file (``.json``); given the ``.safetensors`` file
    beside it, the loader looked for ``<name>.safetensors.json`` and said only that it was not
    there (a review). The metadata files beside it that name it are found.
    """
    if path.suffix in ('.nir', '.h5', '.hdf5') and path.is_file():  # (a review)
        return (f': {path.name} is a NIR graph, not a checkpoint; `topspark import '
                f'{path}` makes a checkpoint of it')
    if path.suffix in ('.yaml', '.yml') and path.is_file():
        return f': {path.name} is not a checkpoint (a timestep profile? give the model .json)'
    if path.is_dir():  # ('/work/main/models.json not found', a review of the parameters)
        return f': {path} is a folder; give the .json file of a checkpoint in it'
    if path.suffix != '.safetensors' and path.is_file():
        return f': {path} is not a checkpoint; give the .json file `topspark train` wrote'
    if path.suffix != '.safetensors' or not path.is_file():
        return ''
    naming = []
    for candidate in sorted(path.parent.glob('*.json')):
        try:
            if candidate.stat().st_size <= MAX_METADATA_BYTES and json.loads(
                    candidate.read_text(encoding='utf-8'))['tensors']['file'] == path.name:
                naming.append(str(candidate))
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return (f': {path.name} is the tensor file of a checkpoint; give its metadata file, '
            + (' or '.join(naming) if naming else 'the .json that names it'))


def _read_metadata_json(path: Union[str, os.PathLike]) -> tuple:
    """Return ``(metadata dict, its path)``, read as JSON (fields unchecked)."""
    meta_path = metadata_path(path)
    remove_stale_temporaries(meta_path.parent, _temporary_pattern(meta_path))
    try:
        meta = json.loads(
            read_regular(meta_path, MAX_METADATA_BYTES, CheckpointError).decode('utf-8'))
    except FileNotFoundError:
        raise CheckpointError(f'checkpoint {meta_path} not found'
                              + _tensor_file_hint(Path(path))) from None
    except OSError as exc:
        raise CheckpointError(f'cannot read {meta_path}: {exc.strerror or exc}') from None
    except RecursionError:
        raise CheckpointError(f'{meta_path}: not valid checkpoint JSON (nested too '
                              'deeply)') from None
    except (ValueError, UnicodeDecodeError) as exc:
        if isinstance(exc, CheckpointError):
            raise
        raise CheckpointError(f'{meta_path}: not valid checkpoint JSON ({exc})') from None
    return meta, meta_path


READ_ATTEMPTS = 3
"""Reads of a checkpoint that another process saves anew meanwhile (see read_checkpoint)."""


def read_checkpoint(path: Union[str, os.PathLike]) -> tuple:
    """
    Read and verify a checkpoint; return ``(metadata dict, tensors dict of numpy arrays)``.

    A checkpoint another process saves anew while it is read (its tensor file gone, its
    metadata another) is read again, up to :data:`READ_ATTEMPTS` times.

    Raises
    ------
        CheckpointError: missing files, files that are not regular or too large, invalid
            JSON, unknown format version or family, metadata of the wrong types, tensor
            shapes other than the model metadata implies, a tensor file whose size or
            SHA-256 differs from the metadata's (torn or corrupted), tensors whose
            names/shapes/dtypes differ from the metadata's, or non-finite float tensors.

    """
    from safetensors.numpy import load as load_tensors

    meta, meta_path = _read_metadata_json(path)
    for attempt in range(READ_ATTEMPTS):
        _, file_name, digest, shapes, dtypes = _checked_metadata(meta, meta_path)
        _check_family_shapes(meta, shapes, meta_path)
        tensor_path = meta_path.parent / file_name
        try:
            blob = _read_tensor_file(tensor_path, shapes, dtypes)
            break
        except OSError as exc:
            if isinstance(exc, FileNotFoundError) and attempt + 1 < READ_ATTEMPTS:
                # A save replaced the checkpoint between the two reads (a classifier saving
                # learnt weights), and removed the tensor file the old metadata named.
                again, _ = _read_metadata_json(path)
                if again != meta:
                    meta = again
                    continue
            raise CheckpointError(f'{meta_path}: tensor file {tensor_path.name} unreadable '
                                  f'({exc.strerror or exc})') from None
    if hashlib.sha256(blob).hexdigest() != digest:
        raise CheckpointError(f'{tensor_path}: content does not match the SHA-256 in '
                              f'{meta_path.name} (corrupted, truncated or torn save)')
    try:
        tensors = load_tensors(blob)
    except Exception as exc:  # safetensors raises its own error types
        raise CheckpointError(f'{tensor_path}: not a valid safetensors file '
                              f'({_one_line(exc)})') from None
    found_shapes = {k: list(v.shape) for k, v in tensors.items()}
    found_dtypes = {k: str(v.dtype) for k, v in tensors.items()}
    if found_shapes != shapes or found_dtypes != dtypes:
        raise CheckpointError(f'{meta_path}: tensors {found_shapes} {found_dtypes} differ from '
                              'the metadata')
    for name, value in tensors.items():
        if value.dtype.kind == 'f' and not np.isfinite(value).all():
            raise CheckpointError(f'{meta_path}: tensor {name!r} holds NaN or infinite values')
    return meta, tensors


def _one_line(exc: BaseException) -> str:
    """Return the message of ``exc`` on one line."""
    return ' '.join(str(exc).split())


def _checked_metadata(meta, meta_path: Path) -> tuple:
    """
    Check the types and ranges of the metadata fields the loader uses.

    Returns ``(family, tensor file name, sha256, shapes, dtypes)``; raises
    :class:`CheckpointError` with the first problem.
    """
    def bad(reason: str) -> CheckpointError:
        return CheckpointError(f'{meta_path}: incomplete checkpoint metadata ({reason})')

    if not isinstance(meta, dict):
        raise bad('not a JSON object')
    missing = [key for key in ('format_version', 'family', 'tensors', 'model')
               if key not in meta]
    if missing:
        raise bad(f'missing {missing}')
    version = meta['format_version']
    if type(version) is not int or version != FORMAT_VERSION:
        raise CheckpointError(f'{meta_path}: checkpoint format version {version!r:.40} is not '
                              f'supported (this is version {FORMAT_VERSION})')
    family = meta['family']
    if not isinstance(family, str) or family not in FAMILIES:
        raise CheckpointError(f'{meta_path}: unknown model family {family!r:.40} '
                              f'(known: {sorted(FAMILIES)})')
    if not isinstance(meta['model'], dict):
        raise bad('model metadata is not an object')
    unknown = sorted(set(meta['model']) - MODEL_KEYS)
    if unknown:
        raise CheckpointError(f'{meta_path}: model settings {unknown!r:.80} that this version '
                              'does not know (written by a newer topspark_ros? upgrade to read '
                              'it)')
    tensor_meta = meta['tensors']
    if not isinstance(tensor_meta, dict):
        raise bad('tensors is not an object')
    file_name, digest = tensor_meta.get('file'), tensor_meta.get('sha256')
    if not isinstance(file_name, str) or not file_name or Path(file_name).name != file_name \
            or file_name in ('.', '..'):
        raise CheckpointError(f'{meta_path}: bad tensor file name {file_name!r:.80}')
    if not isinstance(digest, str) or not re.fullmatch('[0-9a-f]{64}', digest):
        raise bad('sha256 is not 64 hex digits')
    shapes, dtypes = tensor_meta.get('shapes'), tensor_meta.get('dtypes')
    if not isinstance(shapes, dict) or not isinstance(dtypes, dict) \
            or set(shapes) != set(dtypes):
        raise bad('shapes and dtypes must be objects naming the same tensors')
    for name, shape in shapes.items():
        if not isinstance(shape, list) or len(shape) > 8 or not all(
                type(n) is int and 0 <= n < 2 ** 40 for n in shape):
            raise bad(f'shape of {name!r:.40} is not a list of at most 8 sizes')
        if dtypes[name] not in DTYPE_BYTES:
            raise bad(f'dtype of {name!r:.40} is not one of {sorted(DTYPE_BYTES)}')
    return family, file_name, digest, shapes, dtypes


def _family_class(family: str):
    """Return the class that rebuilds models of ``family`` (imported on first use)."""
    module_name, class_name = FAMILIES[family].split(':')
    return getattr(importlib.import_module(module_name), class_name)


def _check_family_shapes(meta: dict, shapes: dict, meta_path: Path) -> None:
    """Refuse tensors whose shapes differ from those the family derives from the metadata."""
    try:
        expected = _family_class(meta['family']).checkpoint_shapes(meta['model'])
    except (ValueError, TypeError, KeyError, AttributeError, OverflowError, IndexError,
            RecursionError) as exc:
        raise CheckpointError(f'{meta_path}: inconsistent checkpoint: {_one_line(exc)}') \
            from None
    for name, shape in shapes.items():
        if name not in expected:
            raise CheckpointError(f'{meta_path}: inconsistent checkpoint: tensor {name!r:.40} '
                                  f'is not part of this {meta["family"]} model')
        if tuple(shape) != tuple(expected[name]):
            raise CheckpointError(f'{meta_path}: inconsistent checkpoint: tensor {name!r} has '
                                  f'shape {shape}, the model metadata implies '
                                  f'{list(expected[name])}')


def _read_tensor_file(tensor_path: Path, shapes: dict, dtypes: dict) -> bytes:
    """
    Return the bytes of a safetensors file, after checking its size against the metadata.

    The file must be regular and exactly 8 bytes (header length) + header + the bytes the
    ``shapes`` and ``dtypes`` need; only then is it read.
    """
    data_bytes = sum(math.prod(shape) * DTYPE_BYTES[dtypes[name]]
                     for name, shape in shapes.items())
    with open_regular(tensor_path, CheckpointError) as (handle, info):
        head = handle.read(8)
        header = int.from_bytes(head, 'little') if len(head) == 8 else -1
        if not 0 <= header <= MAX_HEADER_BYTES or info.st_size != 8 + header + data_bytes:
            raise CheckpointError(f'{tensor_path}: {info.st_size} bytes, not the safetensors '
                                  f'header plus the {data_bytes} bytes of tensor data the '
                                  'metadata describes (corrupted, truncated or torn save)')
        return read_at_most(handle, tensor_path, info.st_size, CheckpointError, head)


def load_checkpoint(path: Union[str, os.PathLike], device: str = 'cpu',
                    family: Optional[str] = None):
    """
    Load a checkpoint and rebuild its model on ``device``.

    Parameters
    ----------
    path
        metadata file (``.json``; appended when missing).
    device
        ``'cpu'`` or a torch device (a ValueError for one a model cannot run on here,
        :func:`~topspark_ros.core.model.check_device`, before the files are read).
    family
        when given, the family the caller expects (``CheckpointError`` otherwise).

    Returns
    -------
        ``(model, metadata dict)``.

    """
    from topspark_ros.core.model import check_device

    check_device(device)
    meta, tensors = read_checkpoint(path)
    if family is not None and meta['family'] != family:
        raise CheckpointError(f'{path}: a {meta["family"]!r} checkpoint, expected {family!r}')
    cls = _family_class(meta['family'])
    try:
        model = cls.from_checkpoint(meta['model'], tensors, device=device)
    except (ValueError, TypeError, KeyError, AttributeError, OverflowError, IndexError,
            RecursionError) as exc:
        raise CheckpointError(f'{path}: inconsistent checkpoint: {_one_line(exc)}') from None
    return model, meta
