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
(model_meta, tensors)`` and ``from_checkpoint(model_meta, tensors, device)``.
"""

import hashlib
import importlib
import json
import os
from pathlib import Path
import tempfile
from types import MappingProxyType
from typing import Optional, Union

import numpy as np

import topspark_ros

FORMAT_VERSION = 1
"""Version of the checkpoint layout written by :func:`save_checkpoint`."""

FAMILIES = MappingProxyType({
    'stdp': 'topspark_ros.core.stdp:DiehlCookNetwork',
    'converted': 'topspark_ros.core.converted:ConvertedNetwork',
})
"""Model family name -> ``module:Class`` that rebuilds it (imported on first use)."""


class CheckpointError(ValueError):
    """A checkpoint is missing, corrupted, torn, of an unknown format or inconsistent."""


def _umask() -> int:
    """Return the process umask without changing it (os.umask would, racing other threads)."""
    try:
        with open('/proc/self/status') as status:
            for line in status:
                if line.startswith('Umask:'):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    return 0o022


def _fsync_write(directory: Path, prefix: str, data: bytes, target: Path) -> None:
    """Write ``data`` to ``target`` atomically: temp file in ``directory``, fsync, replace."""
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=prefix, suffix='.tmp')
    try:
        # mkstemp creates 0600 files; a checkpoint gets the usual permissions (umask applies).
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, 'wb') as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _fsync_dir(directory: Path) -> None:
    """Flush a directory entry change to disk (no-op where directories cannot be opened)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _metadata_path(path: Union[str, os.PathLike]) -> Path:
    """Return the metadata path of a checkpoint (``.json`` appended when missing)."""
    path = Path(path)
    return path if path.suffix == '.json' else path.with_name(path.name + '.json')


def save_checkpoint(path: Union[str, os.PathLike], model, info: Optional[dict] = None) -> Path:
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

    Returns
    -------
        The metadata path.

    """
    from safetensors.numpy import save as save_tensors

    meta_path = _metadata_path(path)
    directory = meta_path.parent
    directory.mkdir(parents=True, exist_ok=True)
    family = model.checkpoint_family
    if family not in FAMILIES:
        raise CheckpointError(f'unknown model family {family!r}')
    model_meta, tensors = model.checkpoint_payload()
    tensors = {name: np.ascontiguousarray(value) for name, value in tensors.items()}
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
    text = json.dumps(meta, indent=2, sort_keys=True, allow_nan=False) + '\n'
    _fsync_write(directory, '.' + tensor_path.name, blob, tensor_path)
    _fsync_write(directory, '.' + meta_path.name, text.encode('utf-8'), meta_path)
    _fsync_dir(directory)
    if previous is not None and previous != tensor_path:
        try:
            previous.unlink()
        except OSError:
            pass
    return meta_path


def _previous_tensor_file(meta_path: Path) -> Optional[Path]:
    """Return the tensor file an existing metadata file names, if it is readable."""
    try:
        name = json.loads(meta_path.read_text(encoding='utf-8'))['tensors']['file']
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not isinstance(name, str) or Path(name).name != name:
        return None
    return meta_path.parent / name


def read_checkpoint(path: Union[str, os.PathLike]) -> tuple:
    """
    Read and verify a checkpoint; return ``(metadata dict, tensors dict of numpy arrays)``.

    Raises
    ------
        CheckpointError: missing files, invalid JSON, unknown format version or family, a
            tensor file whose SHA-256 differs from the metadata's (torn or corrupted), or
            tensors whose names/shapes/dtypes differ from the metadata's.

    """
    from safetensors.numpy import load as load_tensors

    meta_path = _metadata_path(path)
    try:
        meta = json.loads(meta_path.read_text(encoding='utf-8'))
    except FileNotFoundError:
        raise CheckpointError(f'checkpoint {meta_path} not found') from None
    except OSError as exc:
        raise CheckpointError(f'cannot read {meta_path}: {exc.strerror or exc}') from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise CheckpointError(f'{meta_path}: not valid checkpoint JSON ({exc})') from None
    try:
        version = meta['format_version']
        family = meta['family']
        tensor_meta = meta['tensors']
        file_name = tensor_meta['file']
        digest = tensor_meta['sha256']
        if not isinstance(meta['model'], dict):
            raise TypeError('model metadata is not an object')
    except (KeyError, TypeError) as exc:
        raise CheckpointError(f'{meta_path}: incomplete checkpoint metadata ({exc})') from None
    if version != FORMAT_VERSION:
        raise CheckpointError(f'{meta_path}: checkpoint format version {version!r} is not '
                              f'supported (this is version {FORMAT_VERSION})')
    if family not in FAMILIES:
        raise CheckpointError(f'{meta_path}: unknown model family {family!r} '
                              f'(known: {sorted(FAMILIES)})')
    if not isinstance(file_name, str) or Path(file_name).name != file_name:
        raise CheckpointError(f'{meta_path}: bad tensor file name {file_name!r}')
    tensor_path = meta_path.parent / file_name
    try:
        blob = tensor_path.read_bytes()
    except OSError as exc:
        raise CheckpointError(f'{meta_path}: tensor file {tensor_path.name} unreadable '
                              f'({exc.strerror or exc})') from None
    if hashlib.sha256(blob).hexdigest() != digest:
        raise CheckpointError(f'{tensor_path}: content does not match the SHA-256 in '
                              f'{meta_path.name} (corrupted, truncated or torn save)')
    try:
        tensors = load_tensors(blob)
    except Exception as exc:  # safetensors raises its own error types
        raise CheckpointError(f'{tensor_path}: not a valid safetensors file ({exc})') from None
    shapes = {k: list(v.shape) for k, v in tensors.items()}
    dtypes = {k: str(v.dtype) for k, v in tensors.items()}
    if shapes != tensor_meta.get('shapes') or dtypes != tensor_meta.get('dtypes'):
        raise CheckpointError(f'{meta_path}: tensors {shapes} {dtypes} differ from the '
                              'metadata')
    return meta, tensors


def load_checkpoint(path: Union[str, os.PathLike], device: str = 'cpu',
                    family: Optional[str] = None):
    """
    Load a checkpoint and rebuild its model on ``device``.

    Parameters
    ----------
    path
        metadata file (``.json``; appended when missing).
    device
        ``'cpu'`` or a torch device.
    family
        when given, the family the caller expects (``CheckpointError`` otherwise).

    Returns
    -------
        ``(model, metadata dict)``.

    """
    meta, tensors = read_checkpoint(path)
    if family is not None and meta['family'] != family:
        raise CheckpointError(f'{path}: a {meta["family"]!r} checkpoint, expected {family!r}')
    module_name, class_name = FAMILIES[meta['family']].split(':')
    cls = getattr(importlib.import_module(module_name), class_name)
    try:
        model = cls.from_checkpoint(meta['model'], tensors, device=device)
    except (ValueError, TypeError, KeyError) as exc:
        raise CheckpointError(f'{path}: inconsistent checkpoint: {exc}') from None
    return model, meta
