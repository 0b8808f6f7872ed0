"""
Writing recorded samples: labelled image files and rosbag2 bags, atomically, never overwriting.

What ``topspark record`` writes (:mod:`topspark_ros.nodes.recorder`), without ROS:

:class:`FolderWriter`
    one file per sample in ``ROOT/<label>/<name><suffix>``, the layout
    :mod:`topspark_ros.core.data.folder` reads. Each file is written to a hidden temporary
    name in the same folder (``.<name>.<random>.tmp``; the folder reader ignores hidden files),
    flushed to disk and then linked to its final name, which fails rather than replace an
    existing file (the sample then gets the next free name, ``<name>-1``, ``<name>-2``, ...).
    A reader of the folder sees a whole file or none.
:class:`BagWriter`
    a rosbag2 bag (sqlite3 or MCAP) written with the pure-Python ``rosbags`` library from
    already serialised (CDR) messages. The bag is built in ``BAG.partial/<name>/`` and moved
    to ``BAG`` when it is closed (:meth:`BagWriter.close`, also on an exception), so ``BAG``
    exists only as a finished bag with its ``metadata.yaml``. An existing ``BAG`` or
    ``BAG.partial`` is refused.

:func:`png_bytes` turns an image array (``[H, W, C]`` and its channel layout, as
:func:`topspark_ros.conversions.image.image_to_array` returns them) into a PNG file;
:func:`compressed_suffix` names the file format of compressed image bytes.
"""

import io
import os
from pathlib import Path
import tempfile
import time
from typing import Callable, Optional, Tuple, Union

import numpy as np

from topspark_ros.core.data.folder import IMAGE_SUFFIXES, SPLIT_FOLDERS
from topspark_ros.core.files import umask

PathLike = Union[str, os.PathLike]
STORAGES = ('sqlite3', 'mcap')
"""rosbag2 storage formats :class:`BagWriter` writes."""
PARTIAL_SUFFIX = '.partial'
"""Suffix of the directory a bag is built in until it is closed."""
COMMIT_EVERY_S = 1.0
"""A sqlite3 bag's messages are committed at least this often (s) while it is written."""


def png_bytes(array: np.ndarray, layout: str) -> bytes:
    """
    Return ``array`` ``[H, W, C]`` (``uint8`` or ``uint16``) encoded as a PNG file.

    ``layout``: ``'mono'``, ``'rgb'``, ``'bgr'``, ``'rgba'`` or ``'bgra'``. Mono images keep
    their depth (8 or 16 bits); colour images are stored as 8-bit RGB(A) (16-bit colour scaled
    down by 256: Pillow writes no 16-bit colour PNG). BGR(A) is reordered to RGB(A).
    """
    from PIL import Image

    if array.ndim != 3 or array.dtype not in (np.uint8, np.uint16):
        raise ValueError(f'png_bytes takes a uint8 or uint16 array [H, W, C], got '
                         f'{array.dtype.name} {list(array.shape)}')
    if layout == 'mono':
        image = Image.fromarray(np.ascontiguousarray(array[:, :, 0]))
    elif layout in ('rgb', 'bgr', 'rgba', 'bgra'):
        if array.dtype == np.uint16:
            array = (array >> 8).astype(np.uint8)
        if layout.startswith('bgr'):
            array = array[:, :, [2, 1, 0, 3][:array.shape[2]]]
        image = Image.fromarray(np.ascontiguousarray(array), 'RGBA' if 'a' in layout else 'RGB')
    else:
        raise ValueError(f'unknown channel layout {layout!r}')
    buffer = io.BytesIO()
    image.save(buffer, format='PNG')
    return buffer.getvalue()


def compressed_suffix(data: bytes) -> str:
    """
    Return the file suffix (``'.jpg'`` or ``'.png'``) of compressed image bytes.

    Decided by the bytes themselves (JPEG and PNG signatures), not by the ``format`` string of
    a ``sensor_msgs/CompressedImage``, which drivers fill inconsistently. Raises ValueError for
    anything else (e.g. ``compressedDepth`` images, which carry a header before the PNG).
    """
    head = bytes(data[:8])
    if head.startswith(b'\xff\xd8\xff'):
        return '.jpg'
    if head == b'\x89PNG\r\n\x1a\n':
        return '.png'
    raise ValueError(f'compressed image is neither JPEG nor PNG (starts with {head.hex()})')


def check_label(label: str) -> str:
    """
    Return ``label`` if it can name a class folder, else raise ValueError saying why.

    A label is one path component: not empty, no ``/``, not hidden (leading ``.``: the folder
    reader ignores it), and not a split folder name (``train``, ``val``, ``test``).
    """
    if not label or label.strip() != label:
        raise ValueError(f'label {label!r} must be a non-empty name without surrounding spaces')
    if '/' in label or '\\' in label or label.startswith('.'):
        raise ValueError(f'label {label!r} must be one folder name (no "/", not starting '
                         'with ".")')
    if label in SPLIT_FOLDERS:
        raise ValueError(f'label {label!r} is a split folder name ({", ".join(SPLIT_FOLDERS)}); '
                         'choose a class name')
    return label


class FolderWriter:
    """Writes samples into ``root/label/`` as image files (see the module docstring)."""

    def __init__(self, root: PathLike, label: str, fsync: bool = True) -> None:
        """Create ``root/label`` (and ``root``) if needed; ``fsync``: flush each file to disk."""
        self.directory = Path(root) / check_label(label)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._fsync = fsync
        self.written = 0

    def write(self, name: str, data: bytes, suffix: str) -> Path:
        """
        Write ``data`` as ``<name><suffix>`` (or ``<name>-<k><suffix>``); return the path.

        Never replaces an existing file; a failure leaves no file behind.
        """
        if suffix.lower() not in IMAGE_SUFFIXES:
            raise ValueError(f'{suffix!r} is not an image suffix the folder reader reads '
                             f'({", ".join(IMAGE_SUFFIXES)})')
        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=f'.{name}.', suffix='.tmp')
        try:
            with os.fdopen(fd, 'wb') as handle:
                handle.write(data)
                handle.flush()
                if self._fsync:
                    os.fsync(handle.fileno())
            os.chmod(tmp, 0o666 & ~umask())
            for k in range(10000):
                target = self.directory / (f'{name}{suffix}' if k == 0 else f'{name}-{k}{suffix}')
                try:
                    os.link(tmp, target)  # atomic, and fails where the name is taken
                except FileExistsError:
                    continue
                break
            else:
                raise OSError(f'{self.directory}: no free name for {name}{suffix}')
        finally:
            try:
                os.unlink(tmp)
            except OSError:
                pass
        self.written += 1
        return target


def _named_types(fields) -> list:
    """Return the message type names the ``fields`` of a rosbags type definition refer to."""
    names = []
    for _, desc in fields:
        while desc[0].name in ('ARRAY', 'SEQUENCE'):  # (kind, (element, count))
            desc = desc[1][0]
        if desc[0].name == 'NAME':
            names.append(desc[1])
    return names


class BagWriter:
    """Writes serialised messages into a new rosbag2 bag (see the module docstring)."""

    def __init__(self, path: PathLike, storage: str = 'sqlite3') -> None:
        """Start the bag ``path`` (built in ``path.partial/``); refuse an existing one."""
        from rosbags.rosbag2 import StoragePlugin, Writer
        from rosbags.typesys import get_typestore, Stores

        if storage not in STORAGES:
            raise ValueError(f'storage must be one of {", ".join(STORAGES)}, not {storage!r}')
        self.path = Path(path)
        if self.path.name in ('', '.', '..'):
            raise ValueError(f'bag path {str(path)!r} must name a new directory')
        self.partial = self.path.with_name(self.path.name + PARTIAL_SUFFIX)
        if self.path.exists():
            raise FileExistsError(f'{self.path} exists already; not overwriting it')
        if self.partial.exists():
            raise FileExistsError(f'{self.partial} exists (an interrupted recording?); remove '
                                  'it or choose another bag name')
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.partial.mkdir()
        self._typestore = get_typestore(Stores.ROS2_JAZZY)
        plugin = StoragePlugin.MCAP if storage == 'mcap' else StoragePlugin.SQLITE3
        self._writer = Writer(self.partial / self.path.name, version=9, storage_plugin=plugin)
        self._writer.open()
        self.closed = False
        self.written = 0
        self._committed = time.monotonic()

    def add_topic(self, topic: str, msgtype: str,
                  definition: Callable[[str], Optional[str]] = lambda name: None):
        """
        Add ``topic`` of ``msgtype`` (``pkg/msg/Name``); return its connection for :meth:`write`.

        Types of ROS 2 Jazzy's standard packages are known; any other needs its ``.msg``
        definition text, ``definition(name)`` (None: not found), and so does every type it
        nests that is not standard (vision_msgs/Classification nests ObjectHypothesis: a
        traceback before; a review).
        """
        from rosbags.typesys import get_types_from_msg

        wanted = [msgtype]
        while wanted:
            name = wanted.pop()
            if name in self._typestore.fielddefs:
                continue
            text = definition(name)
            if text is None:
                raise ValueError(f'{name} is not a standard message type: its .msg definition '
                                 f'is needed to record {msgtype} (install its package)')
            types = get_types_from_msg(text, name)
            self._typestore.register(types)
            wanted += [nested for _, fields in types.values()
                       for nested in _named_types(fields)]
        return self._writer.add_connection(topic, msgtype, typestore=self._typestore)

    def write(self, connection, timestamp_ns: int, data: bytes) -> None:
        """
        Write one serialised (CDR) message received at ``timestamp_ns``.

        sqlite3: the messages are committed at least every :data:`COMMIT_EVERY_S` (rosbags
        commits only when the bag is closed: a recording killed by SIGKILL or a power loss
        kept none of them; a user review), so a killed recording's ``.db3`` in
        ``path.partial/`` holds all but the last second of it (``ros2 bag reindex`` makes its
        ``metadata.yaml``).
        """
        self._writer.write(connection, int(timestamp_ns), data)
        self.written += 1
        now = time.monotonic()
        if now - self._committed >= COMMIT_EVERY_S:
            connection_db = getattr(self._writer.storage, 'conn', None)  # sqlite3 only
            if connection_db is not None:
                connection_db.commit()
            self._committed = now

    def close(self) -> Optional[Path]:
        """
        Finish the bag (index and ``metadata.yaml``), move it to ``path``; return ``path``.

        A bag without messages is discarded instead (returns None).
        """
        if self.closed:
            return self.path if self.path.exists() else None
        if self.written == 0:
            self.discard()
            return None
        self.closed = True
        self._writer.close()
        if self.path.exists():  # appeared while recording: keep ours where it is
            raise FileExistsError(f'{self.path} appeared while recording; the bag is in '
                                  f'{self.partial / self.path.name}')
        os.rename(self.partial / self.path.name, self.path)
        self.partial.rmdir()
        return self.path

    def discard(self) -> None:
        """Abandon the bag: nothing of it is left (``path.partial`` removed)."""
        import shutil

        if self.closed:
            return
        self.closed = True
        self._writer.abort()
        shutil.rmtree(self.partial, ignore_errors=True)

    def __enter__(self) -> 'BagWriter':
        """Return the writer."""
        return self

    def __exit__(self, *exc_info) -> None:
        """Close the bag, also after an exception (the messages written so far are kept)."""
        self.close()


def stamp_name(sec: int, nanosec: int) -> str:
    """Return the file name (no suffix) of a sample stamped ``sec.nanosec``: ``<sec>_<ns9>``."""
    return f'{int(sec)}_{int(nanosec):09d}'


def split_ns(stamp_ns: int) -> Tuple[int, int]:
    """Return ``(sec, nanosec)`` of a time in nanoseconds."""
    return divmod(int(stamp_ns), 1_000_000_000)
