"""
Writing recorded samples: labelled image files and rosbag2 bags, atomically, never overwriting.

What ``topspark record`` writes (:mod:`topspark_ros.nodes.recorder`), without ROS:

:class:`FolderWriter`
    one file per sample in ``ROOT/<label>/<name><suffix>``, the layout
    :mod:`topspark_ros.core.data.folder` reads. Each file is written to a hidden temporary
    name in the same folder (``.<name>.<random>.tmp``; the folder reader ignores hidden files),
    flushed to disk and then linked to its final name, which fails rather than replace an
    existing file (the sample then gets the next free name, ``<name>-1``, ``<name>-2``, ...;
    the same bytes as a file of its name are refused: the same frame again). Without hard
    links (FAT, exFAT) the file is moved to its name. A reader of the folder sees a whole
    file or none.
:class:`BagWriter`
    a rosbag2 bag (sqlite3 or MCAP) written with the pure-Python ``rosbags`` library from
    already serialised (CDR) messages. The bag is built in ``BAG.partial/<name>/`` and moved
    to ``BAG`` when it is closed (:meth:`BagWriter.close`, also on an exception), so ``BAG``
    exists only as a finished bag with its ``metadata.yaml``. An existing ``BAG`` or
    ``BAG.partial`` is refused. A storage error (a full disk) is an ``OSError`` naming the
    bag; a sqlite3 bag whose writing failed is still closed, its ``metadata.yaml`` counting
    the messages its database holds (SQLite rolls back what it could not write), while one
    that cannot be closed stays in ``BAG.partial`` (:attr:`BagWriter.left_in`).

:func:`png_bytes` turns an image array (``[H, W, C]`` and its channel layout, as
:func:`topspark_ros.conversions.image.image_to_array` returns them) into a PNG file;
:func:`compressed_suffix` names the file format of compressed image bytes.
"""

import contextlib
import errno
import io
import os
from pathlib import Path
import sqlite3
import tempfile
import time
from typing import Callable, List, Optional, Tuple, Union

import numpy as np

try:
    import fcntl
except ImportError:  # (not on Windows: nothing is held there)
    fcntl = None

from topspark_ros.core.data.folder import IMAGE_SUFFIXES, SPLIT_FOLDERS
from topspark_ros.core.files import place_new, umask

PathLike = Union[str, os.PathLike]
STORAGES = ('sqlite3', 'mcap')
"""rosbag2 storage formats :class:`BagWriter` writes."""
PARTIAL_SUFFIX = '.partial'
"""Suffix of the directory a bag is built in until it is closed."""
COMMIT_EVERY_S = 1.0
"""A sqlite3 bag's messages are committed at least this often (s) while it is written."""

URI_CHARACTERS = '#?%'
"""Characters rosbags cannot have in a sqlite3 bag's path (see :func:`sqlite_path_problem`)."""


def uri_characters(path: PathLike) -> List[str]:
    """Return the characters of :data:`URI_CHARACTERS` in ``path`` made absolute, sorted."""
    return sorted({c for c in str(Path(path).absolute()) if c in URI_CHARACTERS})


def sqlite_path_problem(path: PathLike) -> Optional[str]:
    """
    Return why rosbags cannot write or read a sqlite3 bag at ``path``, or None.

    rosbags opens the database as a ``file:`` URI built from the path as it is: a ``#``, ``?``
    or ``%`` in it cuts or changes the file's name (a recording into ``run#2`` wrote its
    messages into a file ``run`` beside the bag, which held none; a review).
    """
    text = str(Path(path).absolute())
    found = uri_characters(text)
    if not found:
        return None
    return (f"a sqlite3 bag's path cannot hold {' or '.join(repr(c) for c in found)} "
            f'({text}): rosbags opens the file as a URI, which cuts it there (rename or move '
            'it; or record it with storage mcap)')


SQLITE_FULL = 13
"""SQLite's primary result code of a full disk or database."""


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


def _check_folder_path(folder: Path) -> None:
    """
    Raise ValueError when ``folder`` cannot be made: a file on its way, or no right to write.

    ``[Errno 17] File exists`` and ``[Errno 20] Not a directory`` said it less plainly (a
    review of recording).
    """
    from topspark_ros.core.files import output_folder_problem

    if folder.exists() and not folder.is_dir():
        raise ValueError(f'{folder} is a file, not a folder')
    problem = output_folder_problem(folder / 'x')
    if problem is not None:
        raise ValueError(problem.split(': ', 1)[1] if ': ' in problem else problem)


class FolderWriter:
    """Writes samples into ``root/label/`` as image files (see the module docstring)."""

    def __init__(self, root: PathLike, label: str, fsync: bool = True) -> None:
        """
        Create ``root/label`` (and ``root``) if needed; ``fsync``: flush each file to disk.

        Made at once, so that a folder that cannot be written fails before any message comes;
        :meth:`close` takes back the folders it made that stayed empty.
        """
        self.directory = Path(root) / check_label(label)
        _check_folder_path(self.directory)
        self._made = [p for p in (self.directory, *self.directory.parents) if not p.exists()]
        self.directory.mkdir(parents=True, exist_ok=True)
        self._fsync = fsync
        self.written = 0

    def close(self) -> List[Path]:
        """
        Remove the folders :meth:`__init__` made that are still empty; return them.

        A recording that wrote nothing left an empty class folder, which the folder reader
        then refused (a class without images; a review). A folder holding anything stays.
        """
        removed = []
        for path in self._made:  # the class folder first, then the folders above it
            try:
                path.rmdir()  # only ever an empty one
            except OSError:
                break
            removed.append(path)
        self._made = []
        return removed

    def write(self, name: str, data: bytes, suffix: str) -> Path:
        """
        Write ``data`` as ``<name><suffix>`` (or ``<name>-<k><suffix>``); return the path.

        Never replaces an existing file; a failure leaves no file behind.
        """
        if suffix.lower() not in IMAGE_SUFFIXES:
            raise ValueError(f'{suffix!r} is not an image suffix the folder reader reads '
                             f'({", ".join(IMAGE_SUFFIXES)})')
        try:
            fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=f'.{name}.', suffix='.tmp')
        except FileNotFoundError:  # another recorder of this label closed with none written
            self.directory.mkdir(parents=True, exist_ok=True)
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
                if place_new(tmp, target):  # never over a file there (no hard links: FAT)
                    break
                if _same_bytes(target, data):  # the same frame again (a bag replayed twice):
                    # as <name>-1 it split into test beside its twin in train (a review)
                    raise ValueError(f'the same image as {target} (stamp and bytes): not '
                                     'written twice')
            else:
                raise OSError(f'{self.directory}: no free name for {name}{suffix}')
        finally:
            try:
                os.unlink(tmp)
            except OSError:
                pass
        self.written += 1
        return target


def _same_bytes(path: Path, data: bytes) -> bool:
    """Return whether the file ``path`` holds exactly ``data``."""
    try:
        return path.stat().st_size == len(data) and path.read_bytes() == data
    except OSError:
        return False


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

    def __init__(self, path: PathLike, storage: str = 'sqlite3', *,
                 building: Optional[PathLike] = None) -> None:
        """
        Start the bag ``path`` (built in ``path.partial/``); refuse an existing one.

        ``building``: the folder to build it in instead of ``path.partial`` (the recovery of a
        killed recording reads that one).
        """
        from rosbags.rosbag2 import StoragePlugin, Writer
        from rosbags.typesys import get_typestore, Stores

        if storage not in STORAGES:
            raise ValueError(f'storage must be one of {", ".join(STORAGES)}, not {storage!r}')
        self.path = Path(path)
        if self.path.name in ('', '.', '..'):
            raise ValueError(f'bag path {str(path)!r} must name a new directory')
        self.partial = Path(building) if building is not None \
            else self.path.with_name(self.path.name + PARTIAL_SUFFIX)
        problem = sqlite_path_problem(self.partial / self.path.name) \
            if storage == 'sqlite3' else None
        if problem is not None:
            raise ValueError(problem)
        if self.path.exists():
            raise FileExistsError(f'{self.path} exists already; not overwriting it')
        if self.partial.exists():
            raise FileExistsError(f'{self.partial} exists (a recording killed before it '
                                  f'closed?): `topspark recover {self.partial}` makes a bag of '
                                  'it; or choose another bag name')
        _check_folder_path(self.partial)
        # The folders above it made here go again when no bag comes of it (a review).
        self._made = [p for p in self.path.parents if not p.exists()]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.partial.mkdir()
        # Held while the bag is written: `topspark recover` refuses a recording in progress
        # (run beside a live recorder, it made a bag of half of it and the recorder's own was
        # left inside its .partial; a review). The kernel lets go of a killed process's.
        self._hold = _hold_folder(self.partial)
        self._typestore = get_typestore(Stores.ROS2_JAZZY)
        plugin = StoragePlugin.MCAP if storage == 'mcap' else StoragePlugin.SQLITE3
        self.storage = storage
        self._writer = Writer(self.partial / self.path.name, version=9, storage_plugin=plugin)
        try:
            self._writer.open()
        except (sqlite3.Error, OSError) as exc:  # a full disk: nothing of it is left
            import shutil

            shutil.rmtree(self.partial, ignore_errors=True)
            self._let_go()
            raise self._error(exc) from exc
        self.data_file = Path(self._writer.storage.path)
        """The storage file being written (in ``path.partial/`` until closed)."""
        self.closed = False
        self.written = 0
        """Messages written; after a failed write, those the bag holds (see :meth:`close`)."""
        self.failure: Optional[str] = None
        """Why writing or closing the bag failed (None: it did not)."""
        self.left_in: Optional[Path] = None
        """Where the messages lie when the bag could not be closed (else None)."""
        self.kept_in: Optional[Path] = None
        """Where the closed bag is when ``path`` appeared while it was written (else None)."""
        self._committed = time.monotonic()

    def _error(self, exc: BaseException) -> OSError:
        """Return the ``OSError`` naming the bag of a storage error ``exc`` (sqlite3 or OS)."""
        number = exc.errno if isinstance(exc, OSError) and exc.errno else errno.EIO
        if isinstance(exc, sqlite3.Error):
            code = getattr(exc, 'sqlite_errorcode', None)  # Python 3.11+
            if code is not None and code & 0xFF == SQLITE_FULL:
                number = errno.ENOSPC
        return OSError(number, f'cannot write the bag {self.path}: {_reason(exc)}')

    def add_topic(self, topic: str, msgtype: str,
                  definition: Callable[[str], Optional[str]] = lambda name: None, *,
                  serialization_format: str = 'cdr', offered_qos_profiles=()):
        """
        Add ``topic`` of ``msgtype`` (``pkg/msg/Name``); return its connection for :meth:`write`.

        Types of ROS 2 Jazzy's standard packages are known; any other needs its ``.msg``
        definition text, ``definition(name)`` (None: not found), and so does every type it
        nests that is not standard (vision_msgs/Classification nests ObjectHypothesis: a
        traceback before; a review). ``serialization_format`` and ``offered_qos_profiles``
        (rosbags ``Qos``) are recorded with the topic.
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
        return self._writer.add_connection(topic, msgtype, typestore=self._typestore,
                                           serialization_format=serialization_format,
                                           offered_qos_profiles=offered_qos_profiles)

    def add_recorded(self, connection,
                     definition: Callable[[str], Optional[str]] = lambda name: None):
        """
        Add a topic as another bag's ``connection`` (rosbags) has it; return its connection.

        Its type, the definition recorded with it, serialization format and offered QoS are
        kept. A connection recorded without a definition (``ros2 bag record`` before Iron)
        takes the standard type's or ``definition(name)``'s, as :meth:`add_topic` (ValueError
        where there is none); without a type hash, the one of its definition.
        """
        from rosbags.typesys import get_typestore, get_types_from_msg, Stores

        ext = connection.ext
        text = connection.msgdef.data if connection.msgdef is not None else ''
        if not connection.msgtype:
            raise ValueError('no message type was recorded with it')
        if not text:
            return self.add_topic(connection.topic, connection.msgtype, definition,
                                  serialization_format=ext.serialization_format,
                                  offered_qos_profiles=ext.offered_qos_profiles)
        digest = connection.digest
        if not digest:
            store = get_typestore(Stores.EMPTY)
            try:
                store.register(get_types_from_msg(text, connection.msgtype))
                digest = store.hash_rihs01(connection.msgtype)
            except Exception:  # noqa: B902 - an IDL definition: the standard type's hash
                if connection.msgtype not in self._typestore.fielddefs:
                    raise ValueError(f'the definition recorded for {connection.msgtype} '
                                     'cannot be read') from None
                digest = self._typestore.hash_rihs01(connection.msgtype)
        return self._writer.add_connection(
            connection.topic, connection.msgtype, msgdef=text, rihs01=digest,
            serialization_format=ext.serialization_format,
            offered_qos_profiles=ext.offered_qos_profiles)

    def write(self, connection, timestamp_ns: int, data: bytes) -> None:
        """
        Write one serialised (CDR) message received at ``timestamp_ns``.

        sqlite3: the messages are committed at least every :data:`COMMIT_EVERY_S` (rosbags
        commits only when the bag is closed: a recording killed by SIGKILL or a power loss
        kept none of them; a user review), so a killed recording's ``.db3`` in
        ``path.partial/`` holds all but the last second of it (``topspark recover`` makes a
        closed bag of it: :mod:`topspark_ros.core.data.recover`).

        A storage error (a full disk: ``sqlite3.OperationalError``, or the ``OSError`` of an
        MCAP file) raises ``OSError`` naming the bag, and so does every later write. A sqlite3
        bag then keeps the messages it could commit (:meth:`close` counts them); an MCAP file
        broken off within a chunk cannot be closed.
        """
        if self.failure is not None:
            raise OSError(errno.EIO, f'the bag {self.path} takes no more messages: writing '
                          f'it failed ({self.failure})')
        try:
            self._writer.write(connection, int(timestamp_ns), data)
            self.written += 1
            self._commit_if_due()
        except (sqlite3.Error, OSError) as exc:
            self._failed(exc)

    def commit_due(self) -> None:
        """
        Commit what is written if the last commit is :data:`COMMIT_EVERY_S` old.

        For the recorder's timer: committed only in :meth:`write`, the messages of a burst
        stayed uncommitted until a next message, which a camera that stopped or a sparse
        topic never sent, and a recording killed 7 s after a burst lost 11 of its 20 frames
        (a review). A storage error raises as :meth:`write`'s does.
        """
        if self.failure is not None or self.closed:
            return
        try:
            self._commit_if_due()
        except (sqlite3.Error, OSError) as exc:
            self._failed(exc)

    def _commit_if_due(self) -> None:
        now = time.monotonic()
        if now - self._committed >= COMMIT_EVERY_S:
            connection_db = self._database()
            if connection_db is not None and connection_db.in_transaction:
                connection_db.commit()
            self._committed = now

    def _failed(self, exc: BaseException) -> None:
        """Note a storage error; keep what SQLite can; raise it as OSError naming the bag."""
        error = self._error(exc)
        self.failure = _reason(exc)
        connection_db = self._database()
        if connection_db is not None:  # keep what SQLite still holds, if it can
            with contextlib.suppress(sqlite3.Error):
                if connection_db.in_transaction:
                    connection_db.commit()
            with contextlib.suppress(sqlite3.Error):
                connection_db.rollback()
        raise error from exc

    def _database(self) -> Optional[sqlite3.Connection]:
        """Return the open sqlite3 connection of the bag (None: MCAP, or closed)."""
        return getattr(self._writer.storage, 'conn', None)

    def _recount(self) -> None:
        """
        Make the counts and times the bag's metadata gives those of the messages it holds.

        rosbags counts every message handed to it; SQLite rolls back those it could not write
        (a full disk), and a ``metadata.yaml`` saying 113 messages of a database holding 57
        misleads every reader of the bag (a review of storage faults).
        """
        rows = self._database().execute(
            'SELECT topic_id, COUNT(*), MIN(timestamp), MAX(timestamp) FROM messages '
            'GROUP BY topic_id').fetchall()
        writer = self._writer
        writer.counts = dict.fromkeys(writer.counts, 0)
        writer.min_timestamp, writer.max_timestamp = 2 ** 63 - 1, 0
        for topic_id, count, first, last in rows:
            writer.counts[topic_id] = count
            writer.min_timestamp = min(writer.min_timestamp, first)
            writer.max_timestamp = max(writer.max_timestamp, last)
        self.written = sum(count for _, count, _, _ in rows)

    def _held(self) -> Optional[int]:
        """Return how many messages the closed sqlite3 file holds (None: not known)."""
        if self.storage != 'sqlite3':
            return None
        try:
            with contextlib.closing(sqlite3.connect(self.data_file.resolve().as_uri() + '?mode=ro',
                                                    uri=True)) as db:
                return db.execute('SELECT COUNT(*) FROM messages').fetchone()[0]
        except sqlite3.Error:
            return None

    def close(self) -> Optional[Path]:
        """
        Finish the bag (index and ``metadata.yaml``), move it to ``path``; return ``path``.

        A bag without messages is discarded instead (returns None). After a failed write a
        sqlite3 bag holds the messages SQLite committed, and its metadata counts those
        (:attr:`written` too). A bag that cannot be closed (a full disk, or an MCAP file
        broken off by a failed write) raises ``OSError`` saying why and where its messages
        are, and stays in ``path.partial`` (:attr:`left_in`; ``topspark recover`` makes a
        closed bag of it).
        """
        if self.closed:
            return self.path if self.path.exists() else None
        try:
            return self._close()
        finally:
            self._let_go()

    def _close(self) -> Optional[Path]:
        try:
            if self.failure is not None and self.storage == 'sqlite3':
                self._recount()
            if self.written == 0:
                self.discard()
                return None
            self.closed = True
            if self.failure is not None and self.storage == 'mcap':  # broken off in a chunk
                raise OSError(errno.EIO, f'writing it failed: {self.failure}')
            self._writer.close()
        except (sqlite3.Error, OSError) as exc:
            self.closed = True
            with contextlib.suppress(Exception):
                self._writer.abort()
            self.failure = _reason(exc)
            self.left_in = self.data_file
            held = self._held()
            if held == 0:  # nothing to recover: no empty bag left behind
                self.discard()
                self.written = 0
                raise OSError(self._error(exc).errno,
                              f'cannot write the bag {self.path}: {self.failure}: none of its '
                              'messages could be kept') from exc
            self.written = self.written if held is None else held
            what = (f'its {held} messages are in' if held is not None else
                    f'what was written of its {self.written} messages is in')
            hint = f'topspark recover {self.partial} makes a closed bag of it'
            if self.storage == 'mcap':  # (a review: the hint promised what recover could not)
                hint = (f'topspark recover {self.partial} makes a closed bag of the chunks '
                        'written whole; an MCAP writer holds about 1 MB of messages before it '
                        'writes a chunk, so a shorter recording may have none: record with '
                        '--storage sqlite3 where the disk may fill')
            raise OSError(self._error(exc).errno,
                          f'the bag {self.path} was not closed ({self.failure}): {what} '
                          f'{self.data_file} ({hint})') from exc
        if self.path.exists():  # appeared while recording: keep ours where it is
            self.kept_in = self.partial / self.path.name
            raise FileExistsError(f'{self.path} appeared while recording; the bag is in '
                                  f'{self.kept_in}')
        os.rename(self.partial / self.path.name, self.path)
        self.partial.rmdir()
        return self.path

    def discard(self) -> None:
        """Abandon the bag: nothing of it is left (``path.partial`` removed, also unclosed)."""
        import shutil

        if self.closed and self.left_in is None and not self.partial.exists():
            return
        self.closed = True
        self.left_in = None
        try:
            self._writer.abort()
        except (sqlite3.Error, OSError):  # a failed write's storage: removed all the same
            pass
        shutil.rmtree(self.partial, ignore_errors=True)
        self._let_go()
        for folder in self._made:  # the nearest first; only ever an empty one
            try:
                folder.rmdir()
            except OSError:
                break
        self._made = []

    def _let_go(self) -> None:
        """Let go of the hold on ``path.partial`` (the bag is no longer written)."""
        if self._hold is not None:
            os.close(self._hold)
            self._hold = None

    def __enter__(self) -> 'BagWriter':
        """Return the writer."""
        return self

    def __exit__(self, *exc_info) -> None:
        """Close the bag, also after an exception (the messages written so far are kept)."""
        self.close()


def _hold_folder(folder: Path) -> Optional[int]:
    """Return a descriptor of ``folder`` under an exclusive ``flock`` (None: no locks here)."""
    if fcntl is None:
        return None
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # (not held: a recording in progress is then not refused)
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:  # a file system without locks (a new folder: nobody else holds it)
        os.close(fd)
        return None
    return fd


def recording_now(path: PathLike) -> Optional[Path]:
    """
    Return the ``.partial`` folder of ``path`` (it, or a folder above it) a recorder writes now.

    None when no process writes it: a recording whose process was killed (the kernel let go
    of its hold), one closed, or not one of :class:`BagWriter`'s.
    """
    if fcntl is None:
        return None
    try:  # (`recover .` in it, or through a link to it, was not seen: a review)
        path = Path(path).resolve()
    except OSError:
        return None
    for folder in (path, *list(path.parents)[:2]):
        if not folder.name.endswith(PARTIAL_SUFFIX) or not folder.is_dir():
            continue
        try:
            fd = os.open(folder, os.O_RDONLY)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return folder
        except OSError:  # no locks here
            pass
        finally:
            os.close(fd)
    return None


def installed_definition(type_name: str) -> Optional[str]:
    """
    Return the installed ``.msg`` text of ``pkg/msg/Name``, or None where none is found.

    Read from the package's ``share/<pkg>/msg/`` through the ament index (no rclpy); None
    without ROS (a core install), or for a package or message not installed.
    """
    try:
        from ament_index_python.packages import (get_package_share_directory,
                                                 PackageNotFoundError)
    except ImportError:
        return None
    package, _, name = type_name.split('/') if type_name.count('/') == 2 else ('', '', '')
    if not package or not name:
        return None
    try:
        path = f'{get_package_share_directory(package)}/msg/{name}.msg'
        with open(path, encoding='utf-8') as handle:
            return handle.read()
    except (PackageNotFoundError, OSError, ValueError):
        return None


def _reason(exc: BaseException) -> str:
    """Return what a storage error says, without the number: ``File too large``."""
    if isinstance(exc, sqlite3.Error):
        return f'{exc} (sqlite3)'
    return (exc.strerror if isinstance(exc, OSError) and exc.strerror else None) or str(exc)


def stamp_name(sec: int, nanosec: int) -> str:
    """Return the file name (no suffix) of a sample stamped ``sec.nanosec``: ``<sec>_<ns9>``."""
    return f'{int(sec)}_{int(nanosec):09d}'


def split_ns(stamp_ns: int) -> Tuple[int, int]:
    """Return ``(sec, nanosec)`` of a time in nanoseconds."""
    return divmod(int(stamp_ns), 1_000_000_000)
