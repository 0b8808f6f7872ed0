"""
A recording killed before it closed, read back into a whole bag (``topspark recover``).

A rosbag2 bag gets its ``metadata.yaml`` (and an MCAP file its index and footer) only when it
is closed. A recorder killed by SIGKILL or a power loss leaves ``DIR.partial/`` (``topspark
record``) or a bag folder without ``metadata.yaml`` (``ros2 bag record``), which rosbags,
``topspark play`` and ``ros2 bag play`` refuse; ``ros2 bag reindex`` of a full ROS install
rebuilds the metadata, a pip install has no ``ros2 bag``. :func:`recover_bag` reads what the
storage files hold and writes a new, closed bag of it; the files it reads are never written
(they are the user's).

- **sqlite3** (``.db3``): a file left with its rollback journal or write-ahead log is copied
  with it and SQLite opens the copy, which undoes the transaction that was in progress (or
  replays the log); one without is read in place, read-only. ``topspark record`` commits
  every second: all but about the last second is there. rosbags reads the topics, their
  definitions and QoS; the messages are read in blocks of rows, and a block in damaged pages
  row by row, so a damaged page costs its own messages only (``PRAGMA quick_check`` says
  whether the file is damaged: ``ros2 bag record``'s default preset writes without a
  journal, and a crash can leave it so).
- **MCAP** (``.mcap``): the records are read in place, chunk by chunk, up to the last whole
  one; a chunk that cannot be read (damaged, or its records cut short) is skipped and
  counted, and the chunks after it are read. The chunk that was being written when the
  recorder died was still in its memory (rosbags writes one per megabyte of messages).

The new bag is built in ``.<bag>.recovering`` beside it and moved into place when closed (an
interrupted recovery leaves nothing else; a recovery killed by SIGKILL leaves that folder,
which the next one asks to remove). Split bags (``name_0.db3``, ``name_1.db3``, ...) are read
in order into one bag; a file of them that cannot be read (an empty last split) is counted
and the others are kept.
"""

import contextlib
from dataclasses import dataclass, field
from pathlib import Path
import re
import shutil
import sqlite3
import struct
import tempfile
from typing import Dict, Iterator, List, Optional, Tuple

from topspark_ros.core.data.recording import (BagWriter, installed_definition,
                                              PARTIAL_SUFFIX, recording_now, uri_characters)

MCAP_MAGIC = b'\x89MCAP0\r\n'
_OP_HEADER, _OP_FOOTER, _OP_SCHEMA, _OP_CHANNEL, _OP_MESSAGE, _OP_CHUNK, _OP_DATA_END = (
    0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x0F)
_ROWS = 2000  # messages read per SQLite query
Record = Tuple[object, int, Optional[bytes]]
"""``(connection, time, data)`` read from a storage file: a message, or a topic (data None)."""


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
    first_ns, last_ns
        the earliest and latest message time written (ns; None without message).
    unread_bytes
        bytes at the end of MCAP files that held no whole record (a record cut short when
        the recorder died; the chunk it had in memory is not in the file at all).
    problems
        what could not be read, per file: damaged pages or chunks, a file that is not a
        recording (an empty split), topics whose type has no definition.

    """

    bag: Path
    storage: str
    files: List[Path]
    messages: Dict[str, int] = field(default_factory=dict)
    first_ns: Optional[int] = None
    last_ns: Optional[int] = None
    unread_bytes: int = 0
    problems: Dict[str, List[str]] = field(default_factory=dict)
    left_out: Dict[str, int] = field(default_factory=dict)
    """Messages of topics left out (no definition), per file."""

    @property
    def total(self) -> int:
        """Return the messages written, all topics."""
        return sum(self.messages.values())

    def problem(self, path: Path, what: str) -> None:
        """Note ``what`` could not be read of ``path``."""
        self.problems.setdefault(str(path), []).append(what)


def _partial_root(path: Path) -> Optional[Path]:
    """Return the outermost ``X.partial`` folder ``path`` is or lies in, or None."""
    for candidate in reversed([path, *path.parents]):
        if candidate.name.endswith(PARTIAL_SUFFIX) and len(candidate.name) > len(PARTIAL_SUFFIX):
            return candidate
    return None


def default_target(source: Path) -> Path:
    """
    Return where the bag of ``source`` goes by default, never inside a ``.partial`` folder.

    ``X`` beside ``X.partial`` for ``X.partial`` and anything in it; else ``NAME_recovered``
    beside the folder ``NAME`` (the folder given, or the one holding the file given).
    """
    source = Path(source).resolve()
    partial = _partial_root(source)
    if partial is not None:
        return partial.with_name(partial.name[:-len(PARTIAL_SUFFIX)])
    folder = source if source.is_dir() else source.parent
    return folder.with_name(folder.name + '_recovered')


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
                                'is (--data bag:DIR, topspark play); if it cannot be read (a '
                                'file cut short), give that file: topspark recover '
                                f'{folder}/NAME.mcap (or .db3) -o NEW_BAG')
        found = [p for p in folder.iterdir() if p.is_file() and p.suffix in ('.db3', '.mcap')]
        if found:
            if len({p.suffix for p in found}) > 1:
                raise RecoveryError(f'{folder} holds both .db3 and .mcap files: give one')
            return sorted(found, key=_split_order)
    raise RecoveryError(f'{source} holds no .db3 or .mcap file (nor does a folder in it)')


def recovery_hint(folder: Path) -> str:
    """
    Return, for a folder a bag reader refused, what it is when :func:`storage_files` can tell.

    A folder of closed bags: give one of them; a recording never closed (what
    :func:`storage_files` takes): ``topspark recover`` makes a bag of it; a closed bag (its
    ``metadata.yaml``) that cannot be read: its last file may be cut short, which ``topspark
    recover FILE`` reads; else ''. Looks two
    levels deep, as :func:`storage_files` does (a search of every level read all of /usr, 3.3
    s, and took a folder of closed bags for an unclosed recording; a review).
    """
    folder = Path(folder)
    if not folder.is_dir():
        return ''
    if (folder / 'metadata.yaml').exists():  # a closed bag that cannot be read
        files = sorted((p for p in folder.iterdir() if p.suffix in ('.db3', '.mcap')),
                       key=_split_order)  # (the last of a split bag: _10 after _9)
        return (f'; a file cut short (a copy interrupted, power lost)? `topspark recover '
                f'{files[-1]} -o NEW_BAG` makes a bag of what it holds' if files else '')
    bags = sorted(d.name for d in folder.iterdir() if (d / 'metadata.yaml').exists())
    if bags:
        return f'; it is a folder of bags: give one of them ({", ".join(bags[:5])})'
    try:
        storage_files(folder)
    except (RecoveryError, OSError):
        return ''
    return (f'; it is a recording that was not closed: `topspark recover {folder}` makes a '
            'bag of it')


def _split_order(path: Path) -> tuple:
    match = re.search(r'_(\d+)$', path.stem)
    return (path.stem[:match.start()] if match else path.stem,
            int(match.group(1)) if match else -1)


def building_folder(target: Path) -> Path:
    """Return the folder the bag ``target`` is built in: ``.<name>.recovering`` beside it."""
    return target.with_name(f'.{target.name}.recovering')


def recover_bag(source: Path, target: Optional[Path] = None, *,
                progress=lambda n: None) -> Recovered:
    """
    Write the messages of the killed recording ``source`` into the new bag ``target``.

    ``target`` (default: :func:`default_target`) must not exist; it is built in
    :func:`building_folder` and moved into place when closed. A file of a split recording
    that cannot be read is noted in ``problems`` and the others are kept; a recording of
    which no message can be read gives no bag (RecoveryError, saying why for each file).
    ``progress(n)``: ``n`` more bytes of the recording's files read (of their sizes'
    sum, :func:`source_bytes`; a sqlite3 file's bytes counted by its message ids read).
    """
    busy = recording_now(source)
    if busy is not None:  # (a bag of half of it, and the recorder's left in .partial)
        raise RecoveryError(f'{busy} is being recorded now: its recorder holds it. Stop the '
                            'recorder (Ctrl-C or SIGTERM) and it closes the bag itself; '
                            'recover is for a recording whose process was killed')
    files = storage_files(Path(source))
    target = Path(target) if target is not None else default_target(Path(source))
    if not target.name or target.name in ('.', '..'):
        raise RecoveryError(f'{str(target)!r} names no new folder for the bag')
    building = building_folder(target)
    if building.exists():
        raise RecoveryError(f'{building} was left by an interrupted recovery of this bag: '
                            'remove it, then run the recovery again')
    storage = 'sqlite3' if files[0].suffix == '.db3' else 'mcap'
    found = uri_characters(target)
    if storage == 'sqlite3' and found:  # (the error named the folder it is built in, and
        # said to record with mcap; a review)
        raise RecoveryError(f"the new bag {target}: a sqlite3 bag's path cannot hold "
                            f"{' or '.join(repr(c) for c in found)} (rosbags opens it as a "
                            'URI, which cuts it there): give -o NEW_BAG, a path without them')
    result = Recovered(bag=target, storage=storage, files=files)
    writer = scratch = None
    try:
        writer = BagWriter(target, storage, building=building)  # refuses an existing target
        added: Dict[tuple, object] = {}
        for path in files:
            reading = _Read(path, progress)
            try:
                if storage == 'sqlite3':
                    if scratch is None and (_logs(path) or _cut_short(path)):
                        scratch = Path(tempfile.mkdtemp(prefix='.recover-', dir=target.parent))
                    records = _sqlite_records(path, scratch, result, reading)
                else:
                    records = _mcap_records(path, result, reading)
                with contextlib.closing(records):
                    for connection, timestamp, data in records:
                        _write(writer, added, result, path, connection, timestamp, data)
            except RecoveryError as exc:  # this file: noted, the others are kept
                result.problem(path, str(exc))
            finally:
                reading.to(reading.size)
                if scratch is not None:  # one file's copy at a time
                    for copy in scratch.iterdir():
                        copy.unlink()
            if result.left_out.get(str(path)):
                result.problem(path, f'{result.left_out[str(path)]} messages of the topics '
                               'left out are lost')
        try:
            closed = writer.close()
        except OSError as exc:  # the new bag cannot be finished: nothing of it is kept
            raise OSError(exc.errno, f'the recovered bag {target} could not be written: '
                          f'{exc.strerror or exc}') from exc
        if not closed:
            why = '; '.join(f'{path}: {", ".join(what)}' for path, what in
                            result.problems.items()) or 'no message in it'
            raise RecoveryError(f'{source} holds no message that could be read ({why})')
        return result
    except BaseException:  # (Ctrl-C included) no half-made bag: run it again
        if writer is not None:
            writer.discard()
        raise
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)


def source_bytes(files: List[Path]) -> int:
    """Return the sizes of a recording's ``files`` summed (what :func:`recover_bag` reads)."""
    return sum(path.stat().st_size for path in files)


class _Read:
    """How far into one file of the recording the recovery is, told to ``progress`` in bytes."""

    def __init__(self, path: Path, progress) -> None:
        """Start at byte 0 of ``path``."""
        self.size = path.stat().st_size
        self._done = 0
        self._progress = progress

    def to(self, position: float) -> None:
        """Say the recovery is at byte ``position`` (at most the size; never back)."""
        position = int(min(position, self.size))
        if position > self._done:
            self._progress(position - self._done)
            self._done = position


def _write(writer: BagWriter, added: dict, result: Recovered, path: Path, connection,
           timestamp: int, data: Optional[bytes]) -> None:
    """Add ``connection``'s topic once; write a message (``data`` None: the topic only)."""
    key = (connection.topic, connection.msgtype, repr(connection.ext.offered_qos_profiles))
    if key not in added:
        try:
            added[key] = writer.add_recorded(connection, installed_definition)
        except ValueError as exc:  # no definition anywhere: the topic is left out, said
            added[key] = None
            result.problem(path, f'{connection.topic} left out: {exc}')
    if data is None:
        return
    if added[key] is None:  # its topic is left out: counted, said once per file at the end
        result.left_out[str(path)] = result.left_out.get(str(path), 0) + 1
        return
    writer.write(added[key], timestamp, data)
    result.messages[connection.topic] = result.messages.get(connection.topic, 0) + 1
    result.first_ns = timestamp if result.first_ns is None else min(result.first_ns, timestamp)
    result.last_ns = timestamp if result.last_ns is None else max(result.last_ns, timestamp)


# sqlite3 ------------------------------------------------------------------------------------
def _logs(path: Path) -> List[Path]:
    """Return the rollback journal and write-ahead log files SQLite left beside ``path``."""
    logs = (path.with_name(path.name + suffix) for suffix in ('-journal', '-wal', '-shm'))
    return [log for log in logs if log.exists()]


def _sqlite_records(path: Path, scratch: Optional[Path], result: Recovered,
                    reading: _Read) -> Iterator[Record]:
    """
    Yield ``(connection, time, data)`` of every message ``path`` holds (data None: a topic).

    ``reading`` is told the share of the message ids read, as bytes of the file.

    A file with a journal or log is read from a copy (SQLite undoes or replays it there), and so
    is one cut short (padded to the size its header gives, which SQLite needs to open it); one
    without either, in place and read-only. Damaged pages cost their own rows (noted in
    ``result``).
    """
    if path.stat().st_size == 0:
        raise RecoveryError('empty: nothing was written before the recording stopped')
    logs, missing = _logs(path), _cut_short(path)
    if logs or missing:
        database = scratch / 'recovering.db3'
        shutil.copyfile(path, database)
        for log in logs:
            shutil.copyfile(log, database.with_name(database.name + log.name[len(path.name):]))
        if missing:  # SQLite refuses a file shorter than its header says: zeros in their place
            with open(database, 'ab') as copy:
                copy.truncate(path.stat().st_size + missing)
            result.problem(path, f'cut short: {missing} bytes of it are missing (the messages '
                           'they held are lost)')
        uri = database.resolve().as_uri()
    else:  # (as_uri: a '#' or '?' in a path is not read as the URI's fragment or query)
        uri = path.resolve().as_uri() + '?mode=ro&immutable=1'
    with contextlib.closing(sqlite3.connect(uri, uri=True)) as db:
        try:
            db.execute('SELECT count(*) FROM sqlite_master').fetchone()  # (rolls a journal back)
        except sqlite3.DatabaseError as exc:
            raise RecoveryError(f'not a readable SQLite database ({exc})') from None
        _note_damage(db, path, result)
        try:
            connections = _sqlite_connections(db)
        except sqlite3.DatabaseError as exc:
            raise RecoveryError(f'its topics cannot be read ({exc})') from None
        by_id = {connection.id: connection for connection in connections}
        for connection in connections:
            yield connection, 0, None
        ids = _id_range(db)
        if ids is None:
            return
        lost = [0]
        first, last = ids
        span = None if last is None else max(last - first + 1, 1)
        for row_id, topic_id, timestamp, data in _message_rows(db, *ids, lost):
            if span is not None:
                reading.to(reading.size * (row_id - first + 1) / span)
            if topic_id not in by_id or timestamp is None or data is None:
                lost[0] += 1  # a damaged row (no topic, time or data)
                continue
            yield by_id[topic_id], int(timestamp), bytes(data)
    if lost[0]:
        result.problem(path, f'{lost[0]} message rows in damaged pages could not be read')
    if ids[1] is None:
        result.problem(path, 'the end of its messages could not be found (the file is cut '
                       'short or damaged there): read until three blocks of rows in a row '
                       'gave nothing')


def _note_damage(db: sqlite3.Connection, path: Path, result: Recovered) -> None:
    """Note in ``result`` what ``PRAGMA quick_check`` finds wrong with ``path``, if anything."""
    try:
        check = [row[0] for row in db.execute('PRAGMA quick_check(5)')]
    except sqlite3.DatabaseError as exc:
        check = [str(exc)]
    if check != ['ok']:
        result.problem(path, f'damaged ({"; ".join(check[:3])}): messages in damaged pages '
                       'may be missing')


def _message_rows(db: sqlite3.Connection, first: int, last: Optional[int],
                  lost: list) -> Iterator[tuple]:
    """
    Yield the ``(id, topic_id, timestamp, data)`` rows of ``messages`` from id ``first`` on.

    In blocks of :data:`_ROWS` ids; a block in damaged pages row by row, the rows that cannot
    be read counted in ``lost[0]``. Up to ``last``, or (None: the table's end is damaged) until
    three blocks in a row give nothing.
    """
    empty, start = 0, first
    failed, read_up_to = [], first - 1  # ids whose lookup failed; the last id read
    while (last is None and empty < 3) or (last is not None and start <= last):
        end = start + _ROWS if last is None else min(start + _ROWS, last + 1)
        try:
            rows = db.execute('SELECT id, topic_id, timestamp, data FROM messages '
                              'WHERE id >= ? AND id < ? ORDER BY id', (start, end)).fetchall()
        except sqlite3.DatabaseError:  # a damaged page: row by row, what can be read
            rows = []
            for row_id in range(start, end):
                try:
                    rows += db.execute('SELECT id, topic_id, timestamp, data FROM messages '
                                       'WHERE id = ?', (row_id,)).fetchall()
                except sqlite3.DatabaseError:
                    failed.append(row_id)
        empty = 0 if rows else empty + 1
        read_up_to = max([read_up_to] + [row[0] for row in rows])
        yield from rows
        start += _ROWS
    # Past the last id read, with the table's end lost, a failed lookup cannot be told from
    # an id that never was: only those before it are counted (36 messages gave "7977 could
    # not be read", every id of the blocks tried past the end; a review).
    lost[0] += len(failed) if last is not None else sum(i < read_up_to for i in failed)


def _id_range(db: sqlite3.Connection) -> Optional[Tuple[int, Optional[int]]]:
    """
    Return the first and last message row ids; None when the table holds none.

    The last is None where the table's end cannot be read (a file cut short or damaged there).
    """
    ends, failed = [], False
    for order in ('', ' DESC'):
        try:
            row = db.execute(f'SELECT id FROM messages ORDER BY id{order} LIMIT 1').fetchone()
            ends.append(None if row is None else row[0])
        except sqlite3.DatabaseError:
            ends.append(None)
            failed = True
    first, last = ends
    if first is None and not failed:
        return None
    return (1 if first is None else first), last


def _cut_short(path: Path) -> int:
    """Return how many bytes ``path`` lacks of the size its SQLite header gives (0: none)."""
    with open(path, 'rb') as handle:
        header = handle.read(100)
    if len(header) < 100 or not header.startswith(b'SQLite format 3\0'):
        return 0
    page = int.from_bytes(header[16:18], 'big')
    page = 65536 if page == 1 else page
    pages = int.from_bytes(header[28:32], 'big')
    return max(0, page * pages - path.stat().st_size)


def _sqlite_connections(db: sqlite3.Connection) -> list:
    """
    Return the topics of a rosbag2 database as rosbags connections, without its messages.

    rosbags' reader counts every topic's messages as it opens, which a damaged page of the
    messages table fails; this reads the ``topics`` (and ``message_definitions``) tables
    alone, of every schema rosbag2 wrote (QoS since schema 2, definitions since 4).
    """
    from rosbags.interfaces import (Connection, ConnectionExtRosbag2, MessageDefinition,
                                    MessageDefinitionFormat)
    from rosbags.rosbag2.metadata import parse_qos

    tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    if not {'topics', 'messages'} <= tables:
        raise RecoveryError('not a rosbag2 database (no topics and messages tables)')
    columns = {row[1] for row in db.execute('PRAGMA table_info(topics)')}
    definitions = {}
    if 'message_definitions' in tables:
        formats = {'ros2msg': MessageDefinitionFormat.MSG, 'ros2idl': MessageDefinitionFormat.IDL}
        for name, encoding, text in db.execute(
                'SELECT topic_type, encoding, encoded_message_definition '
                'FROM message_definitions'):
            if text and encoding in formats:
                definitions[name] = MessageDefinition(formats[encoding], text)
    qos = 'offered_qos_profiles' if 'offered_qos_profiles' in columns else "''"
    digest = 'type_description_hash' if 'type_description_hash' in columns else "''"
    none = MessageDefinition(MessageDefinitionFormat.NONE, '')
    return [Connection(key, topic, msgtype, definitions.get(msgtype, none), digest_value or '',
                       0, ConnectionExtRosbag2(fmt, parse_qos(profiles) if profiles else []),
                       None)
            for key, topic, msgtype, fmt, profiles, digest_value in db.execute(
                f'SELECT id, name, type, serialization_format, {qos}, {digest} FROM topics '
                'ORDER BY id')]


# MCAP ---------------------------------------------------------------------------------------
class _Torn(Exception):
    """A record runs past the end of what holds it."""


def _records(data, start: int, end: int) -> Iterator[Tuple[int, memoryview]]:
    """Yield ``(opcode, body)`` of the records in ``data[start:end]``; _Torn at a cut one."""
    view = memoryview(data)
    position = start
    while position < end:
        if position + 9 > end:
            raise _Torn(position)
        opcode, length = struct.unpack_from('<BQ', view, position)
        if position + 9 + length > end:
            raise _Torn(position)
        yield opcode, view[position + 9:position + 9 + length]
        position += 9 + length


def _string(body: memoryview, offset: int) -> Tuple[str, int]:
    (length,) = struct.unpack_from('<I', body, offset)
    if offset + 4 + length > len(body):
        raise _Torn(offset)
    return bytes(body[offset + 4:offset + 4 + length]).decode('utf-8'), offset + 4 + length


def _mcap_records(path: Path, result: Recovered, reading: _Read) -> Iterator[Record]:
    """
    Yield ``(connection, time, data)`` of every message of the MCAP file ``path``.

    ``reading`` is told the position of each record read.

    Read in place, chunk by chunk (rosbags' MCAP reader needs the footer a killed recorder
    never wrote, and stops silently at a record cut short inside a chunk): a chunk that cannot
    be read is noted in ``result`` and the next one is read.
    """
    from rosbags.interfaces import Connection, ConnectionExtRosbag2
    from rosbags.rosbag2.storage_mcap import decompress, get_msgdef, get_qos, Schema

    size = path.stat().st_size
    if size == 0:
        raise RecoveryError('empty: nothing was written before the recording stopped (an '
                            'MCAP recorder keeps its first chunk, about 1 MB of messages, in '
                            'memory)')
    schemas: Dict[int, object] = {}
    channels: Dict[int, object] = {}

    def handle(opcode: int, body: memoryview):
        if opcode == _OP_SCHEMA:
            (key,) = struct.unpack_from('<H', body, 0)
            name, offset = _string(body, 2)
            encoding, offset = _string(body, offset)
            text, _ = _string(body, offset)
            schemas[key] = Schema(key, name, encoding, text)
        elif opcode == _OP_CHANNEL:
            key, schema_id = struct.unpack_from('<HH', body, 0)
            topic, offset = _string(body, 4)
            encoding, offset = _string(body, offset)
            (length,) = struct.unpack_from('<I', body, offset)
            schema = schemas.get(schema_id)
            metadata = bytes(body[offset + 4:offset + 4 + length])
            connection = Connection(
                key, topic, schema.name if schema is not None else '', get_msgdef(schema), '',
                0, ConnectionExtRosbag2(encoding, get_qos(metadata)), None)
            channels[key] = connection
            return connection, 0, None
        elif opcode == _OP_MESSAGE:
            channel, _, log_time, _ = struct.unpack_from('<HIQQ', body, 0)
            if channel in channels:
                return channels[channel], log_time, bytes(body[22:])
            orphans.append(channel)  # its channel's record was in a chunk that was damaged
        return None

    bad_records, orphans = [], []

    def read(opcode: int, body):
        try:
            return handle(opcode, body)
        except (struct.error, _Torn, UnicodeDecodeError, KeyError):  # damaged: the next one
            bad_records.append(opcode)
            return None

    bad_chunks = 0
    with open(path, 'rb') as source:
        if source.read(8) != MCAP_MAGIC:
            raise RecoveryError('not an MCAP file (its first bytes are not the magic)')
        position = 8
        while True:
            head = source.read(9)
            if len(head) < 9:
                torn = len(head) > 0
                break
            opcode, length = struct.unpack('<BQ', head)
            if opcode in (_OP_DATA_END, _OP_FOOTER):
                torn = False
                break  # the summary follows: every record is read
            if position + 9 + length > size:
                torn = True
                break
            body = source.read(length)
            position += 9 + length
            reading.to(position)
            if opcode == _OP_CHUNK:
                try:
                    chunk = _chunk_records(memoryview(body), decompress)
                except Exception:  # noqa: B902 - damaged: the next chunk is read
                    bad_chunks += 1
                    continue
                for inner_opcode, inner in chunk:
                    item = read(inner_opcode, inner)
                    if item is not None:
                        yield item
                continue
            item = read(opcode, memoryview(body))
            if item is not None:
                yield item
        if torn:
            result.unread_bytes += size - position
            source.seek(position)
            if size - position > (1 << 16) and source.read(size - position).strip(b'\0'):
                result.problem(path, f'{size - position} bytes from offset {position} could '
                               'not be read as records (damaged, or a record cut short)')
    if bad_chunks:
        result.problem(path, f'{bad_chunks} chunks could not be read (damaged)')
    if bad_records:
        result.problem(path, f'{len(bad_records)} records could not be read (damaged)')
    if orphans:
        result.problem(path, f'{len(orphans)} messages of {len(set(orphans))} channels whose '
                       'topic and type were recorded in a damaged chunk or record are lost '
                       '(MCAP records them once)')


def _chunk_records(body: memoryview, decompress) -> list:
    """Return the records of a chunk record ``body``, all of them or an exception."""
    _, _, uncompressed_size, crc = struct.unpack_from('<QQQI', body, 0)
    compression, offset = _string(body, 28)
    (length,) = struct.unpack_from('<Q', body, offset)
    if offset + 8 + length > len(body):
        raise _Torn(offset)
    raw = decompress(bytes(body[offset + 8:offset + 8 + length]), compression,
                     uncompressed_size, crc)
    return [(opcode, bytes(inner)) for opcode, inner in _records(raw, 0, len(raw))]
