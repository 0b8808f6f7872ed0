"""
Recordings killed before they closed, read back into closed bags (core/data/recover.py).

The recordings are made by a real process that writes with BagWriter and kills itself with
SIGKILL, as a power loss or the OOM killer ends a recorder.
"""

import hashlib
import json
from pathlib import Path
import shutil
import subprocess
import textwrap

import pytest

from topspark_ros.core.data.recording import BagWriter
from topspark_ros.core.data.recover import (default_target, recover_bag, RecoveryError,
                                            source_bytes, storage_files)

THING = 'uint32 count\nstring name\n'


def _killed(python_executable: str, bag: Path, storage: str, n: int, size: int,
            commit_wait_s: float = 0.0, pause_s: float = 0.0) -> None:
    """
    Record ``n`` String and ``n`` custom messages of ``size`` bytes, then SIGKILL.

    With ``commit_wait_s``, one more String that long after the others, which commits them;
    ``pause_s`` after each pair.
    """
    code = textwrap.dedent(f"""
        import os, signal, time
        from rosbags.typesys import get_typestore, Stores
        from topspark_ros.core.data.recording import BagWriter
        store = get_typestore(Stores.ROS2_JAZZY)
        String = store.types['std_msgs/msg/String']
        writer = BagWriter({str(bag)!r}, {storage!r})
        text = writer.add_topic('/text', 'std_msgs/msg/String')
        thing = writer.add_topic('/thing', 'my_msgs/msg/Thing', lambda name: {THING!r})
        for k in range({n}):
            raw = store.serialize_cdr(String(data=f'{{k:06d}}' + 'x' * {size}),
                                      'std_msgs/msg/String')
            writer.write(text, 1_000_000 * k, bytes(raw))
            writer.write(thing, 1_000_000 * k + 1,
                         bytes([0, 1, 0, 0]) + k.to_bytes(4, 'little') + bytes([1, 0, 0, 0, 0]))
            time.sleep({pause_s})
        if {commit_wait_s}:  # a write a second after the last commit commits
            time.sleep({commit_wait_s})
            writer.write(text, 1_000_000 * {n}, bytes(store.serialize_cdr(
                String(data=f'{n:06d}'), 'std_msgs/msg/String')))
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    run = subprocess.run([python_executable, '-c', code], timeout=120)
    assert run.returncode == -9


def _digest(folder: Path) -> dict:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob('*')) if p.is_file()}


def _read(bag: Path) -> tuple:
    from rosbags.highlevel import AnyReader
    with AnyReader([bag]) as reader:
        types = {c.topic: (c.msgtype, c.msgdef.data) for c in reader.connections}
        texts, counts = [], []
        for connection, stamp, raw in reader.messages():
            msg = reader.deserialize(raw, connection.msgtype)
            if connection.topic == '/text':
                texts.append((stamp, msg.data[:6]))
            else:
                counts.append((stamp, msg.count))
    return types, texts, counts


@pytest.mark.parametrize('storage', ['sqlite3', 'mcap'])
def test_a_killed_recording_becomes_a_closed_bag_of_what_it_held(
        tmp_path: Path, storage: str, python_executable) -> None:
    """
    Every message the files held, in a bag rosbags reads; the files read are left as they are.

    sqlite3: the committed messages (the recorder commits every second: waited for here, so
    all of them); MCAP: the whole chunks (rosbags writes one per megabyte: 600 messages of 5
    kB make two, the rest was in memory).
    """
    bag = tmp_path / 'run'
    _killed(python_executable, bag, storage, 600, 5000, commit_wait_s=1.1)
    partial = tmp_path / 'run.partial'
    before = _digest(partial)
    assert not (partial / 'run' / 'metadata.yaml').exists()
    steps = []
    recovered = recover_bag(partial, progress=steps.append)
    assert recovered.bag == bag == default_target(partial) and (bag / 'metadata.yaml').is_file()
    # Progress in the bytes of the files read (it counted messages, of no known total).
    assert sum(steps) == source_bytes(storage_files(partial)) and min(steps) > 0
    assert len(steps) >= 3
    assert _digest(partial) == before  # the user's files, untouched
    assert not list(tmp_path.glob('.*'))  # no scratch copy or build folder left
    types, texts, counts = _read(bag)
    assert types['/thing'] == ('my_msgs/msg/Thing', THING)  # the recorded definition kept
    assert types['/text'][0] == 'std_msgs/msg/String'
    n = len(texts)
    if storage == 'sqlite3':
        assert n == 601 and len(counts) == 600 and recovered.unread_bytes == 0
    else:
        assert 300 < n < 600 and len(counts) in (n - 1, n)
    assert texts == [(1_000_000 * k, f'{k:06d}') for k in range(n)]  # in order, none missing
    assert counts == [(1_000_000 * k + 1, k) for k in range(len(counts))]
    assert recovered.messages == {'/text': n, '/thing': len(counts)}
    assert recovered.total == n + len(counts) and not recovered.problems
    last = max([stamp for stamp, _ in texts] + [stamp for stamp, _ in counts])
    assert (recovered.first_ns, recovered.last_ns) == (0, last)
    with pytest.raises(FileExistsError, match='not overwriting'):  # never over a bag
        recover_bag(partial, bag)


def test_a_transaction_in_progress_is_undone_and_the_rest_kept(tmp_path: Path,
                                                               python_executable) -> None:
    """Killed within a second of its last commit: SQLite's journal undoes only that second."""
    _killed(python_executable, tmp_path / 'cut', 'sqlite3', 500, 2000, pause_s=0.005)
    partial = tmp_path / 'cut.partial'
    assert list(partial.rglob('*.db3-journal'))  # a transaction was in progress
    recovered = recover_bag(partial, tmp_path / 'out')
    _, texts, counts = _read(tmp_path / 'out')
    assert 0 < len(texts) < 500  # the committed ones (a commit a second, 2.5 s of writes)
    assert texts == [(1_000_000 * k, f'{k:06d}') for k in range(len(texts))]
    assert abs(len(counts) - len(texts)) <= 1 and recovered.total == len(texts) + len(counts)


def _chunks(data: bytes) -> list:
    """Return the offsets of the top-level chunk records of an MCAP file's bytes."""
    import struct
    offsets, position = [], 8
    while position + 9 <= len(data):
        opcode, length = struct.unpack_from('<BQ', data, position)
        if opcode == 0x06:
            offsets.append(position)
        position += 9 + length
    return offsets


def test_an_mcap_file_cut_or_damaged_keeps_every_chunk_it_can_read(tmp_path: Path,
                                                                   python_executable) -> None:
    """
    A file cut anywhere keeps the whole records before the cut; a damaged chunk costs itself.

    A chunk whose first record was overwritten (a length past the chunk's end) lost every
    chunk after it, silently, and a chunk that did not decompress lost the whole file (a
    review).
    """
    _killed(python_executable, tmp_path / 'run', 'mcap', 1200, 5000)
    (data,) = (tmp_path / 'run.partial').rglob('*.mcap')
    raw = data.read_bytes()
    whole = recover_bag(data, tmp_path / 'whole').total
    cut = tmp_path / 'cut.mcap'
    cut.write_bytes(raw[:len(raw) - 300_000])
    recovered = recover_bag(cut, tmp_path / 'less')
    assert 0 < recovered.total < whole and recovered.unread_bytes > 0
    _, texts, _ = _read(tmp_path / 'less')
    assert texts == [(1_000_000 * k, f'{k:06d}') for k in range(len(texts))]
    chunks = _chunks(raw)
    assert len(chunks) >= 4
    damaged = bytearray(raw)  # chunk 2's first record: opcode 8, 16 MiB long
    records = chunks[1] + 9 + 8 + 8 + 8 + 4 + 4 + 0 + 8  # past the chunk header (no compression)
    damaged[records:records + 9] = b'\x08' + (16 << 20).to_bytes(8, 'little')
    (tmp_path / 'damaged.mcap').write_bytes(bytes(damaged))
    recovered = recover_bag(tmp_path / 'damaged.mcap', tmp_path / 'most')
    problems = recovered.problems[str(tmp_path / 'damaged.mcap')]
    assert '1 chunks could not be read' in ' '.join(problems)
    _, all_texts, _ = _read(tmp_path / 'whole')
    _, texts, _ = _read(tmp_path / 'most')
    missing = sorted(int(text) for _, text in set(all_texts) - set(texts))
    assert set(texts) < set(all_texts) and len(texts) > len(all_texts) // 2
    assert missing == list(range(missing[0], missing[0] + len(missing)))  # that chunk's only
    # MCAP records a topic's type once, in the chunk open when it was added: that chunk
    # damaged, the later chunks' messages have no topic; lost, and said so (a review).
    first = bytearray(raw)
    length_at = chunks[0] + 9 + 8 + 8 + 8 + 4 + 4  # the chunk's records length
    first[length_at:length_at + 8] = (1 << 40).to_bytes(8, 'little')
    (tmp_path / 'first.mcap').write_bytes(bytes(first))
    with pytest.raises(RecoveryError, match='1 chunks could not be read.*messages of 2 '
                       'channels whose topic and type were recorded in a damaged chunk'):
        recover_bag(tmp_path / 'first.mcap', tmp_path / 'orphans')
    header_only = tmp_path / 'empty.mcap'
    header_only.write_bytes(raw[:40])
    with pytest.raises(RecoveryError, match='no message'):
        recover_bag(header_only, tmp_path / 'none')
    (tmp_path / 'zero.mcap').write_bytes(b'')
    with pytest.raises(RecoveryError, match='empty: nothing was written'):
        recover_bag(tmp_path / 'zero.mcap', tmp_path / 'none')
    assert not (tmp_path / 'none').exists() and not list(tmp_path.glob('.*'))


def test_split_files_of_a_ros2_bag_folder_are_read_in_order(tmp_path: Path) -> None:
    """``ros2 bag record`` killed: NAME_0.db3, NAME_1.db3, ... NAME_10.db3, no metadata.yaml."""
    from rosbags.typesys import get_typestore, Stores
    store = get_typestore(Stores.ROS2_JAZZY)
    String = store.types['std_msgs/msg/String']
    folder = tmp_path / 'rosbag2_2026'
    folder.mkdir()
    for part in range(11):
        writer = BagWriter(tmp_path / f'p{part}')
        connection = writer.add_topic('/text', 'std_msgs/msg/String')
        for k in range(3):
            raw = store.serialize_cdr(String(data=f'{part:03d}{k:03d}'), 'std_msgs/msg/String')
            writer.write(connection, 100 * part + k, bytes(raw))
        writer.close()
        shutil.move(tmp_path / f'p{part}' / f'p{part}.db3', folder / f'rosbag2_2026_{part}.db3')
    assert [p.name for p in storage_files(folder)][:3] == [
        'rosbag2_2026_0.db3', 'rosbag2_2026_1.db3', 'rosbag2_2026_2.db3']
    assert default_target(folder) == tmp_path / 'rosbag2_2026_recovered'
    recover_bag(folder)
    _, texts, _ = _read(tmp_path / 'rosbag2_2026_recovered')
    assert texts == [(100 * p + k, f'{p:03d}{k:03d}') for p in range(11) for k in range(3)]


def _string_bag(path: Path, texts: list, storage: str = 'sqlite3', **topic) -> Path:
    """Write a closed bag of ``/text`` Strings; return its storage file."""
    from rosbags.typesys import get_typestore, Stores
    store = get_typestore(Stores.ROS2_JAZZY)
    String = store.types['std_msgs/msg/String']
    writer = BagWriter(path, storage)
    connection = writer.add_topic('/text', 'std_msgs/msg/String', **topic)
    for k, text in enumerate(texts):
        writer.write(connection, 100 + k, bytes(store.serialize_cdr(String(data=text),
                                                                    'std_msgs/msg/String')))
    writer.close()
    (data,) = [p for p in path.iterdir() if p.suffix in ('.db3', '.mcap')]
    return data


def test_an_empty_last_split_and_a_damaged_page_cost_only_their_own(tmp_path: Path) -> None:
    """
    An empty split file and damaged pages are noted; the rest is kept.

    A recorder killed as it opened a new split left an empty file, which failed the whole
    recovery; damaged pages of a database stopped the reading at the first (a review).
    """
    folder = tmp_path / 'rb'
    folder.mkdir()
    for part in range(2):
        db3 = _string_bag(tmp_path / f'p{part}', [f'{part}-{k:04d}' for k in range(50)])
        shutil.move(db3, folder / f'rb_{part}.db3')
    (folder / 'rb_2.db3').write_bytes(b'')
    recovered = recover_bag(folder, tmp_path / 'out')
    assert recovered.total == 100
    assert recovered.problems == {str(folder / 'rb_2.db3'): [
        'empty: nothing was written before the recording stopped']}
    # 4 000 messages of 300 bytes (about 300 pages); two leaf pages of rows overwritten.
    big = _string_bag(tmp_path / 'big', [f'{k:06d}' + 'y' * 300 for k in range(4000)])
    damaged = bytearray(big.read_bytes())
    page = int.from_bytes(damaged[16:18], 'big')
    leaves = [offset for offset in range(page, len(damaged), page)
              if damaged[offset] == 0x0D and b'yyyy' in damaged[offset:offset + page]]
    for offset in leaves[len(leaves) // 2:len(leaves) // 2 + 2]:
        damaged[offset:offset + page] = bytes(range(256)) * (page // 256)
    (tmp_path / 'damaged.db3').write_bytes(bytes(damaged))
    recovered = recover_bag(tmp_path / 'damaged.db3', tmp_path / 'kept')
    problems = ' '.join(recovered.problems[str(tmp_path / 'damaged.db3')])
    assert 'damaged' in problems and 3000 < recovered.total < 4000
    _, texts, _ = _read(tmp_path / 'kept')
    numbers = [int(text) for _, text in texts]
    assert numbers == sorted(numbers) and numbers[0] == 0 and numbers[-1] == 3999  # both ends
    # Cut short (a file system that lost its tail): what is before the cut.
    raw = big.read_bytes()
    (tmp_path / 'cut.db3').write_bytes(raw[:len(raw) * 2 // 3 // page * page])
    recovered = recover_bag(tmp_path / 'cut.db3', tmp_path / 'front')
    assert 1000 < recovered.total < 3000
    assert 'could not be found' in ' '.join(recovered.problems[str(tmp_path / 'cut.db3')])
    _, texts, _ = _read(tmp_path / 'front')
    assert [text for _, text in texts][:100] == [f'{k:06d}' for k in range(100)]
    # The rows said lost are at most the messages that were there (a review: a bag of 36
    # cut short said "7977 message rows ... could not be read", every id tried past the end).
    said = [p for p in recovered.problems[str(tmp_path / 'cut.db3')] if 'could not be read' in p]
    lost = int(said[0].split()[0]) if said else 0
    assert lost <= 4000 - recovered.total, (said, recovered.total)


def test_an_interrupted_recovery_leaves_nothing_and_a_killed_one_is_named(
        tmp_path: Path, monkeypatch) -> None:
    """Ctrl-C while the bag closed left its build folder, and the next run was misled."""
    from rosbags.rosbag2 import Writer
    source = _string_bag(tmp_path / 'src', ['a', 'b'])

    def interrupted(self, *args, **kwargs):
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(Writer, 'close', interrupted)
        with pytest.raises(KeyboardInterrupt):
            recover_bag(source, tmp_path / 'out')
    assert sorted(p.name for p in tmp_path.iterdir()) == ['src']  # nothing else left
    (tmp_path / '.out.recovering').mkdir()  # as SIGKILL leaves it
    with pytest.raises(RecoveryError, match='left by an interrupted recovery of this bag: '
                       'remove it'):
        recover_bag(source, tmp_path / 'out')


def test_a_bag_recorded_without_definitions_keeps_its_types_and_qos(tmp_path: Path) -> None:
    """
    ``ros2 bag record`` before Iron kept no definitions: installed types are looked up.

    A type outside rosbags' standard set failed the whole recovery, and the recorded QoS
    (transient local: a latched topic) was dropped (a review).
    """
    import sqlite3

    from rosbags.highlevel import AnyReader
    from rosbags.rosbag2.metadata import (Qos, QosDurability, QosHistory, QosLiveliness,
                                          QosReliability, QosTime)
    never = QosTime(0, 0)
    latched = Qos(QosHistory.KEEP_LAST, 1, QosReliability.RELIABLE,
                  QosDurability.TRANSIENT_LOCAL, never, never, QosLiveliness.AUTOMATIC, never,
                  False)
    db3 = _string_bag(tmp_path / 'old', ['x', 'y'], offered_qos_profiles=[latched])
    with sqlite3.connect(db3) as db:
        db.execute("UPDATE message_definitions SET encoded_message_definition = ''")
    recovered = recover_bag(db3, tmp_path / 'new')
    assert recovered.total == 2 and not recovered.problems
    with AnyReader([tmp_path / 'new']) as reader:
        (connection,) = reader.connections
        assert connection.msgdef.data.strip() == 'string data'  # the standard type's
        assert connection.ext.offered_qos_profiles == [latched]
    # A type nobody knows is left out, said; the other topics are kept.
    writer = BagWriter(tmp_path / 'two')
    for topic in ('/text', '/other'):
        writer.write(writer.add_topic(topic, 'std_msgs/msg/String'), 5,
                     bytes([0, 1, 0, 0, 2, 0, 0, 0, 97, 0]))
    writer.close()
    (two,) = (tmp_path / 'two').glob('*.db3')
    with sqlite3.connect(two) as db:
        db.execute("UPDATE message_definitions SET encoded_message_definition = ''")
        db.execute("UPDATE topics SET type = 'nobody_msgs/msg/Thing' WHERE name = '/other'")
    recovered = recover_bag(two, tmp_path / 'unknown')
    assert recovered.messages == {'/text': 1}
    assert recovered.problems[str(two)] == [
        '/other left out: nobody_msgs/msg/Thing is not a standard message type: its .msg '
        'definition is needed to record nobody_msgs/msg/Thing (install its package)',
        '1 messages of the topics left out are lost']


def test_a_path_with_uri_characters_is_read_where_it_is(tmp_path: Path) -> None:
    """A '#' in the path cut SQLite's URI short: another file was opened, an empty one made."""
    folder = tmp_path / 'run#2?x=1%'
    folder.mkdir()
    db3 = _string_bag(tmp_path / 'plain', ['a', 'b', 'c'])
    shutil.move(db3, folder / 'r.db3')
    assert recover_bag(folder / 'r.db3', tmp_path / 'out').total == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ['out', 'plain', 'run#2?x=1%']


def test_the_default_bag_is_never_inside_the_partial_folder(tmp_path: Path) -> None:
    partial = tmp_path / 'field.run.partial'
    (partial / 'field.run').mkdir(parents=True)
    (partial / 'field.run' / 'field.run.db3').write_bytes(b'x')
    for given in (partial, partial / 'field.run', partial / 'field.run' / 'field.run.db3'):
        assert default_target(given) == tmp_path / 'field.run'
    folder = tmp_path / 'rosbag2_x'
    folder.mkdir()
    (folder / 'rosbag2_x_0.db3').write_bytes(b'x')
    assert default_target(folder / 'rosbag2_x_0.db3') == tmp_path / 'rosbag2_x_recovered'
    assert default_target(folder) == tmp_path / 'rosbag2_x_recovered'


def test_what_is_no_killed_recording_is_refused_saying_why(tmp_path: Path) -> None:
    closed = tmp_path / 'closed'
    writer = BagWriter(closed)
    empty_string = bytes([0, 1, 0, 0, 1, 0, 0, 0, 0, 0])
    writer.write(writer.add_topic('/t', 'std_msgs/msg/String'), 1, empty_string)
    writer.close()
    with pytest.raises(RecoveryError, match='metadata.yaml: a closed bag'):
        storage_files(closed)
    (tmp_path / 'nothing').mkdir()
    with pytest.raises(RecoveryError, match='holds no .db3 or .mcap'):
        storage_files(tmp_path / 'nothing')
    with pytest.raises(RecoveryError, match='does not exist'):
        storage_files(tmp_path / 'absent')
    both = tmp_path / 'both'
    both.mkdir()
    (both / 'a.db3').write_bytes(b'')
    (both / 'a.mcap').write_bytes(b'')
    with pytest.raises(RecoveryError, match='both'):
        storage_files(both)
    (tmp_path / 'junk.db3').write_bytes(b'not a database at all' * 100)
    with pytest.raises(RecoveryError, match='not a readable SQLite database'):
        recover_bag(tmp_path / 'junk.db3', tmp_path / 'j')
    (tmp_path / 'junk.mcap').write_bytes(b'not mcap')
    with pytest.raises(RecoveryError, match='not an MCAP file'):
        recover_bag(tmp_path / 'junk.mcap', tmp_path / 'k')
    assert not (tmp_path / 'j').exists() and not (tmp_path / 'k').exists()
    assert not list(tmp_path.glob('.*'))
    # A recording of ros2 bag record into r#2: its default new bag cannot be a sqlite3 one
    # there. Said of the new bag, with what to do (it named the folder the bag is built in,
    # and said to record with mcap; a review).
    (tmp_path / 'r#2').mkdir()
    (tmp_path / 'r#2' / 'r#2_0.db3').write_bytes(b'')
    with pytest.raises(RecoveryError, match=r"the new bag .*r#2_recovered: a sqlite3 bag's "
                       r"path cannot hold '#' .*give -o NEW_BAG, a path without them"):
        recover_bag(tmp_path / 'r#2')
    assert not list(tmp_path.glob('.*')) and not (tmp_path / 'r#2_recovered').exists()


def test_the_command_line_recovers_and_refuses_an_existing_output(
        tmp_path: Path, python_executable) -> None:
    """`topspark recover DIR.partial`: DIR by default, JSON summary; exit 2 with the reason."""
    _killed(python_executable, tmp_path / 'field', 'sqlite3', 50, 100, commit_wait_s=1.1)
    command = [python_executable, '-m', 'topspark_ros.cli', 'recover']
    run = subprocess.run(command + [str(tmp_path / 'field.partial'), '--json', '-q'],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result['bag'] == str(tmp_path / 'field') and result['messages'] == 101
    assert result['topics'] == {'/text': 51, '/thing': 50} and result['storage'] == 'sqlite3'
    again = subprocess.run(command + [str(tmp_path / 'field.partial')], capture_output=True,
                           text=True, timeout=120)
    assert again.returncode == 2 and 'exists; give another --output' in again.stderr
