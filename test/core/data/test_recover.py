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
                                            storage_files)

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
    recovered = recover_bag(partial)
    assert recovered.bag == bag == default_target(partial) and (bag / 'metadata.yaml').is_file()
    assert _digest(partial) == before  # the user's files, untouched
    assert not list(tmp_path.glob('.*'))  # no scratch copy or build folder left
    types, texts, counts = _read(bag)
    assert types['/thing'] == ('my_msgs/msg/Thing', THING)  # the recorded definition kept
    assert types['/text'][0] == 'std_msgs/msg/String'
    n = len(texts)
    if storage == 'sqlite3':
        assert n == 601 and len(counts) == 600 and recovered.lost_bytes == 0
    else:
        assert 300 < n < 600 and len(counts) in (n - 1, n)
    assert texts == [(1_000_000 * k, f'{k:06d}') for k in range(n)]  # in order, none missing
    assert counts == [(1_000_000 * k + 1, k) for k in range(len(counts))]
    assert recovered.messages == {'/text': n, '/thing': len(counts)}
    assert recovered.total == n + len(counts) and not recovered.unreadable
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


def test_an_mcap_file_cut_within_a_chunk_keeps_the_chunks_before(tmp_path: Path,
                                                                 python_executable) -> None:
    """A file cut anywhere (a torn write): the whole records before the cut, the rest counted."""
    _killed(python_executable, tmp_path / 'run', 'mcap', 600, 5000)
    (data,) = (tmp_path / 'run.partial').rglob('*.mcap')
    whole = recover_bag(data, tmp_path / 'whole').total
    cut = tmp_path / 'cut.mcap'
    cut.write_bytes(data.read_bytes()[:data.stat().st_size - 300_000])
    recovered = recover_bag(cut, tmp_path / 'less')
    assert 0 < recovered.total < whole and recovered.lost_bytes > 0
    _, texts, _ = _read(tmp_path / 'less')
    assert texts == [(1_000_000 * k, f'{k:06d}') for k in range(len(texts))]
    header_only = tmp_path / 'empty.mcap'
    header_only.write_bytes(data.read_bytes()[:40])
    with pytest.raises(RecoveryError, match='no whole record|no message'):
        recover_bag(header_only, tmp_path / 'none')
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
