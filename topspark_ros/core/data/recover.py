"""
A recording killed before it closed, read back into a whole bag (``topspark recover``).

A rosbag2 bag gets its ``metadata.yaml`` (and an MCAP file its index and footer) only when it
is closed. A recorder killed by SIGKILL or a power loss leaves ``DIR.partial/`` (``topspark
record``) or a bag folder without ``metadata.yaml`` (``ros2 bag record``), which rosbags,
``topspark play`` and ``ros2 bag play`` refuse; ``ros2 bag reindex`` of a full ROS install
rebuilds the metadata, a pip install has no ``ros2 bag``. :func:`recover_bag` reads what the
storage files hold and writes a new, closed bag of it; the files it reads are left as they
are (they are the user's).

- **sqlite3** (``.db3``): SQLite opens a copy of the file and its rollback journal, which
  undoes the transaction that was in progress (``topspark record`` commits every second:
  all but about the last second is there); rosbags reads the topics, their definitions and
  QoS and the messages from the copy.
- **MCAP** (``.mcap``): the records up to the last whole one are copied and given a footer;
  rosbags reads the copy by scanning it. The chunk that was being written is lost (rosbags
  writes one per megabyte of messages); a chunk that cannot be read (a torn write) ends the
  recovery there, and what it held is counted as lost.

The copies go to a hidden folder beside the new bag (the same file system; a recording can be
larger than ``/tmp``) and are removed afterwards. Split bags (``name_0.db3``, ``name_1.db3``,
...) are read in order into one bag.
"""

import contextlib
from dataclasses import dataclass, field
from pathlib import Path
import re
import shutil
import sqlite3
import struct
import tempfile
from typing import Callable, Dict, List, Optional

from topspark_ros.core.data.recording import BagWriter, PARTIAL_SUFFIX

MCAP_MAGIC = b'\x89MCAP0\r\n'
_FOOTER = b'\x02' + struct.pack('<Q', 20) + struct.pack('<QQI', 0, 0, 0) + MCAP_MAGIC
_DATA_END = 0x0F
_HEADER = 0x01


class RecoveryError(ValueError):
    """Raised when a folder or file holds no recording that can be read back."""


@dataclass
class Recovered:
    """
    What :func:`recover_bag` wrote.

    Attributes
    ----------
    bag
        the new bag's folder.
    storage
        its storage format (that of the files read).
    files
        the storage files read, in order.
    messages
        messages written, per topic.
    lost_bytes
        bytes at the end of MCAP files that held no whole record (the chunk being written).
    unreadable
        why reading stopped early, per file (a torn record or chunk), else empty.

    """

    bag: Path
    storage: str
    files: List[Path]
    messages: Dict[str, int] = field(default_factory=dict)
    lost_bytes: int = 0
    unreadable: Dict[str, str] = field(default_factory=dict)

    @property
    def total(self) -> int:
        """Return the messages written, all topics."""
        return sum(self.messages.values())


def default_target(source: Path) -> Path:
    """Return where the bag of ``source`` goes by default: ``DIR`` for ``DIR.partial``."""
    source = Path(source)
    if source.is_dir() and source.name.endswith(PARTIAL_SUFFIX):
        return source.with_name(source.name[:-len(PARTIAL_SUFFIX)])
    return source.with_name(source.name.split('.')[0] + '_recovered')


def storage_files(source: Path) -> List[Path]:
    """
    Return the storage files of the recording ``source`` (a file, or a folder), in order.

    A folder's ``.db3`` or ``.mcap`` files, or those of its one subfolder (``DIR.partial/DIR/``),
    split files in the order of their number. RecoveryError when there is none, when they are
    of both formats, or when ``source`` is a closed bag (its ``metadata.yaml`` is there: it
    reads as it is).
    """
    source = Path(source)
    if not source.exists():
        raise RecoveryError(f'{source} does not exist')
    if source.is_file():
        if source.suffix not in ('.db3', '.mcap'):
            raise RecoveryError(f'{source} is no .db3 or .mcap file')
        return [source]
    folders = [source] + sorted(p for p in source.iterdir() if p.is_dir())
    for folder in folders:
        if (folder / 'metadata.yaml').exists():
            raise RecoveryError(f'{folder} has its metadata.yaml: a closed bag, read it as it '
                                'is (--data bag:DIR, topspark play)')
        found = [p for p in folder.iterdir() if p.is_file() and p.suffix in ('.db3', '.mcap')]
        if found:
            if len({p.suffix for p in found}) > 1:
                raise RecoveryError(f'{folder} holds both .db3 and .mcap files: give one')
            return sorted(found, key=_split_order)
    raise RecoveryError(f'{source} holds no .db3 or .mcap file (nor does a folder in it)')


def _split_order(path: Path) -> tuple:
    match = re.search(r'_(\d+)$', path.stem)
    return (path.stem[:match.start()] if match else path.stem,
            int(match.group(1)) if match else -1)


def recover_bag(source: Path, target: Optional[Path] = None, *,
                progress: Callable[[int], None] = lambda n: None) -> Recovered:
    """
    Write the messages of the killed recording ``source`` into the new bag ``target``.

    ``target`` (default: :func:`default_target`) must not exist; it is built in
    ``.<target>.recovering`` beside it and moved into place when closed. A
    recording whose files hold no message gives no bag (RecoveryError). ``progress(n)``: ``n``
    more messages written.
    """
    files = storage_files(Path(source))
    target = Path(target) if target is not None else default_target(Path(source))
    storage = 'sqlite3' if files[0].suffix == '.db3' else 'mcap'
    # built beside it (DIR.partial is what it reads), refused where the target exists
    writer = BagWriter(target, storage, building=target.with_name(f'.{target.name}.recovering'))
    result = Recovered(bag=target, storage=storage, files=files)
    scratch = Path(tempfile.mkdtemp(prefix='.recover-', dir=target.parent))
    try:
        added = {}
        for number, path in enumerate(files):
            copy = scratch / f'{number}{path.suffix}'
            if storage == 'sqlite3':
                reader = _sqlite_reader(path, copy)
            else:
                reader, lost = _mcap_reader(path, copy)
                result.lost_bytes += lost
            try:
                connections = list(reader.connections)
                for connection in connections:
                    key = (connection.topic, connection.msgtype)
                    if key not in added:
                        added[key] = writer.add_recorded(connection)
                messages = reader.messages(connections) if storage == 'sqlite3' \
                    else reader.messages_scan(connections)
                try:
                    for connection, timestamp, data in messages:
                        writer.write(added[(connection.topic, connection.msgtype)],
                                     timestamp, data)
                        result.messages[connection.topic] = \
                            result.messages.get(connection.topic, 0) + 1
                        progress(1)
                except Exception as exc:  # noqa: B902 - a torn chunk: keep what came before
                    if isinstance(exc, OSError):
                        raise  # writing the new bag failed: not the recording's fault
                    result.unreadable[str(path)] = f'{type(exc).__name__}: {exc}'
            finally:
                reader.close()
                with contextlib.suppress(OSError):
                    copy.unlink()
        if not writer.close():
            raise RecoveryError(f'{source} holds no message that could be read')
        return result
    except BaseException:  # (Ctrl-C included) no half-made bag: run it again
        writer.discard()
        raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _sqlite_reader(path: Path, copy: Path):
    """Return a rosbags reader of a copy of ``path`` whose transaction in progress is undone."""
    from rosbags.rosbag2.storage_sqlite3 import Sqlite3Reader

    shutil.copyfile(path, copy)
    for suffix in ('-journal', '-wal'):  # the undo (or redo) log of the transaction in hand
        log = path.with_name(path.name + suffix)
        if log.exists():
            shutil.copyfile(log, copy.with_name(copy.name + suffix))
    try:
        with contextlib.closing(sqlite3.connect(copy)) as db:  # rolls a hot journal back
            db.execute('SELECT count(*) FROM sqlite_master').fetchone()
            db.execute('PRAGMA journal_mode=DELETE').fetchone()  # a WAL folded in
    except sqlite3.Error as exc:
        raise RecoveryError(f'{path}: not a readable SQLite database ({exc})') from None
    reader = Sqlite3Reader(copy)
    try:
        reader.open()
    except Exception as exc:  # noqa: B902 - rosbags' ReaderError and what it wraps
        raise RecoveryError(f'{path}: not a rosbag2 database ({exc})') from None
    return reader


def _mcap_reader(path: Path, copy: Path):
    """
    Return ``(rosbags reader, bytes lost)`` of a copy of ``path`` cut to its whole records.

    The copy ends after the last whole record before any summary section, with a footer
    saying there is no summary, so that rosbags reads it by scanning.
    """
    from rosbags.rosbag2.storage_mcap import McapReader

    size = path.stat().st_size
    with open(path, 'rb') as source:
        if source.read(8) != MCAP_MAGIC:
            raise RecoveryError(f'{path}: not an MCAP file (its first bytes are not the magic)')
        end = 8
        while end + 9 <= size:
            source.seek(end)
            opcode, length = struct.unpack('<BQ', source.read(9))
            if opcode == _DATA_END or (opcode == 0x02 and end + 9 + length + 8 == size):
                break  # the summary, or the footer, follows: the data ends here
            if end + 9 + length > size or (end == 8 and opcode != _HEADER):
                break
            end += 9 + length
        if end == 8:
            raise RecoveryError(f'{path}: no whole record (its header was not written)')
        source.seek(0)
        with open(copy, 'wb') as out:
            remaining = end
            while remaining:
                block = source.read(min(remaining, 1 << 24))
                if not block:
                    break
                out.write(block)
                remaining -= len(block)
            out.write(_FOOTER)
    reader = McapReader(copy)
    try:
        reader.open()
    except Exception as exc:  # noqa: B902 - rosbags' ReaderError and what it wraps
        raise RecoveryError(f'{path}: not a rosbag2 MCAP file ({exc})') from None
    return reader, size - end
