"""What ``topspark record`` writes, without ROS: image files and bags, atomic, not overwritten."""

import io
import os
from pathlib import Path

import numpy as np
from PIL import Image
import pytest

from topspark_ros.core.data.folder import folder_split, load_image_folder
from topspark_ros.core.data.recording import (BagWriter, check_label, compressed_suffix,
                                              FolderWriter, png_bytes, stamp_name)


def _read(data: bytes) -> Image.Image:
    return Image.open(io.BytesIO(data))


def _random(shape, dtype=np.uint8, seed: int = 0) -> np.ndarray:
    high = np.iinfo(dtype).max + 1
    return np.random.default_rng(seed).integers(0, high, shape).astype(dtype)


def test_png_keeps_mono_depth_and_reorders_bgr() -> None:
    """mono8/mono16 keep their values; bgr(a) comes back as rgb(a); 16-bit colour -> 8 bit."""
    mono8, mono16 = _random((5, 7, 1)), _random((5, 7, 1), np.uint16)
    assert np.array_equal(np.asarray(_read(png_bytes(mono8, 'mono'))), mono8[:, :, 0])
    assert np.array_equal(np.asarray(_read(png_bytes(mono16, 'mono'))), mono16[:, :, 0])
    rgb = _random((4, 6, 3), seed=1)
    assert np.array_equal(np.asarray(_read(png_bytes(rgb, 'rgb'))), rgb)
    assert np.array_equal(np.asarray(_read(png_bytes(rgb[:, :, ::-1], 'bgr'))), rgb)
    bgra = _random((4, 6, 4), seed=2)
    back = np.asarray(_read(png_bytes(bgra, 'bgra')))
    assert np.array_equal(back, bgra[:, :, [2, 1, 0, 3]])
    rgb16 = _random((3, 3, 3), np.uint16, seed=3)
    assert np.array_equal(np.asarray(_read(png_bytes(rgb16, 'rgb'))), rgb16 >> 8)
    with pytest.raises(ValueError, match='layout'):
        png_bytes(rgb, 'yuv')


def test_compressed_suffix_from_the_bytes() -> None:
    """JPEG and PNG are told by their signatures; anything else is refused."""
    image = Image.fromarray(_random((8, 8, 3)))
    for fmt, suffix in (('JPEG', '.jpg'), ('PNG', '.png')):
        buffer = io.BytesIO()
        image.save(buffer, format=fmt)
        assert compressed_suffix(buffer.getvalue()) == suffix
    with pytest.raises(ValueError, match='neither JPEG nor PNG'):
        compressed_suffix(b'\x00\x01junk')


@pytest.mark.parametrize('label', ['', '.hidden', 'a/b', 'train', 'val', 'test', ' mug'])
def test_bad_labels_are_refused(label: str) -> None:
    """A label must be one visible class-folder name, not a split folder."""
    with pytest.raises(ValueError, match='label'):
        check_label(label)


def test_folder_writer_makes_a_readable_folder_and_never_overwrites(tmp_path: Path) -> None:
    """Files land in root/label/<stamp>.png; a taken name gets -1; no temporary is left."""
    writer = FolderWriter(tmp_path, 'mug')
    images = [_random((10, 12, 1), seed=k) for k in range(3)]
    name = stamp_name(12, 5)
    assert name == '12_000000005'
    first = writer.write(name, png_bytes(images[0], 'mono'), '.png')
    second = writer.write(name, png_bytes(images[1], 'mono'), '.png')  # the same stamp
    writer.write(stamp_name(13, 0), png_bytes(images[2], 'mono'), '.png')
    assert first.name == '12_000000005.png' and second.name == '12_000000005-1.png'
    assert np.array_equal(np.asarray(Image.open(first)), images[0][:, :, 0])  # kept
    assert np.array_equal(np.asarray(Image.open(second)), images[1][:, :, 0])
    assert sorted(p.name for p in (tmp_path / 'mug').iterdir()) == [
        '12_000000005-1.png', '12_000000005.png', '13_000000000.png']
    assert oct(first.stat().st_mode & 0o777) == oct(0o666 & ~_umask())
    FolderWriter(tmp_path, 'cup').write('1_0', png_bytes(images[0], 'mono'), '.png')
    classes, files = folder_split(tmp_path, 'train', val_fraction=0.0, test_fraction=0.0)
    assert classes == ['cup', 'mug'] and len(files) == 4
    data = load_image_folder(tmp_path, 'train', val_fraction=0.0, test_fraction=0.0)
    assert len(data) == 4 and not data.skipped


def test_the_same_frame_twice_is_not_written_twice(tmp_path: Path) -> None:
    """
    A bag replayed twice into a folder wrote each frame again as <stamp>-1.png.

    The name split put 39 of 100 such twins in test beside the same image in train (a
    review). The same stamp and bytes is refused (the recorder counts it skipped); another
    image of that stamp still gets -1.
    """
    writer = FolderWriter(tmp_path, 'mug')
    frame = png_bytes(_random((10, 12, 1), seed=0), 'mono')
    first = writer.write('12_000000005', frame, '.png')
    with pytest.raises(ValueError, match=f'the same image as {first} .*not written twice'):
        writer.write('12_000000005', frame, '.png')
    other = writer.write('12_000000005', png_bytes(_random((10, 12, 1), seed=1), 'mono'), '.png')
    assert other.name == '12_000000005-1.png' and writer.written == 2
    assert sorted(p.name for p in (tmp_path / 'mug').iterdir()) == [
        '12_000000005-1.png', '12_000000005.png']


def test_a_folder_on_a_file_system_without_hard_links_is_written(tmp_path: Path,
                                                                 monkeypatch) -> None:
    """
    FAT and exFAT (a USB stick) have no hard links: the first sample failed with EPERM.

    The file is moved to its name instead, still never over one that exists.
    """
    import errno

    def no_links(*args):
        raise OSError(errno.EPERM, 'Operation not permitted')
    monkeypatch.setattr(os, 'link', no_links)
    writer = FolderWriter(tmp_path, 'mug')
    first = writer.write('1_0', b'\x89PNG\r\n\x1a\n1', '.png')
    second = writer.write('1_0', b'\x89PNG\r\n\x1a\n2', '.png')
    assert (first.name, second.name) == ('1_0.png', '1_0-1.png')
    assert first.read_bytes().endswith(b'1') and second.read_bytes().endswith(b'2')
    assert sorted(p.name for p in (tmp_path / 'mug').iterdir()) == ['1_0-1.png', '1_0.png']


def test_folder_writer_leaves_nothing_when_a_write_fails(tmp_path: Path, monkeypatch) -> None:
    """An error while writing (disk full) leaves neither the file nor its temporary."""
    writer = FolderWriter(tmp_path, 'mug')

    def full(*args):
        raise OSError(28, 'No space left on device')
    monkeypatch.setattr(os, 'link', full)
    with pytest.raises(OSError, match='No space'):
        writer.write('1_0', b'\x89PNG\r\n\x1a\n', '.png')
    assert list((tmp_path / 'mug').iterdir()) == []


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@pytest.mark.parametrize('storage', ['sqlite3', 'mcap'])
def test_bag_appears_only_when_closed_and_reads_back(tmp_path: Path, storage: str) -> None:
    """While open only BAG.partial exists; closed, BAG holds every message as written."""
    from rosbags.highlevel import AnyReader
    from rosbags.typesys import get_typestore, Stores
    store = get_typestore(Stores.ROS2_JAZZY)
    String = store.types['std_msgs/msg/String']
    path = tmp_path / 'run1'
    writer = BagWriter(path, storage)
    connection = writer.add_topic('/chatter', 'std_msgs/msg/String')
    texts = [f'message {k}' for k in range(5)]
    for k, text in enumerate(texts):
        raw = store.serialize_cdr(String(data=text), 'std_msgs/msg/String')
        writer.write(connection, 1_000 + k, raw)
    assert not path.exists() and (tmp_path / 'run1.partial').is_dir()
    assert writer.close() == path
    assert not (tmp_path / 'run1.partial').exists()
    assert (path / 'metadata.yaml').is_file()
    with AnyReader([path]) as reader:
        got = [(t, reader.deserialize(raw, c.msgtype).data) for c, t, raw in reader.messages()]
    assert got == [(1_000 + k, text) for k, text in enumerate(texts)]


def test_bag_with_a_custom_type_needs_its_definition(tmp_path: Path) -> None:
    """A type outside the standard packages is registered from its .msg text."""
    from rosbags.highlevel import AnyReader
    writer = BagWriter(tmp_path / 'bag')
    with pytest.raises(ValueError, match='definition'):
        writer.add_topic('/x', 'my_msgs/msg/Thing')
    connection = writer.add_topic('/x', 'my_msgs/msg/Thing',
                                  lambda name: 'uint32 count\nstring name\n')
    writer.write(connection, 5, bytes([0, 1, 0, 0, 7, 0, 0, 0, 2, 0, 0, 0, 97, 0]))
    writer.close()
    with AnyReader([tmp_path / 'bag']) as reader:
        (_, _, raw), = list(reader.messages())
        msg = reader.deserialize(raw, 'my_msgs/msg/Thing')
    assert (msg.count, msg.name) == (7, 'a')


def test_existing_bags_are_never_overwritten_and_empty_ones_not_kept(tmp_path: Path) -> None:
    """An existing BAG or BAG.partial is refused; a bag closed without messages is dropped."""
    (tmp_path / 'old').mkdir()
    with pytest.raises(FileExistsError, match='not overwriting'):
        BagWriter(tmp_path / 'old')
    (tmp_path / 'cut.partial').mkdir()
    with pytest.raises(FileExistsError, match='killed before it closed.*topspark recover'):
        BagWriter(tmp_path / 'cut')
    writer = BagWriter(tmp_path / 'empty')
    writer.add_topic('/chatter', 'std_msgs/msg/String')
    assert writer.close() is None
    assert not (tmp_path / 'empty').exists() and not (tmp_path / 'empty.partial').exists()
    # The folders it made above the bag go too (they stayed; a review of recording).
    writer = BagWriter(tmp_path / 'new' / 'deep' / 'bag')
    assert writer.close() is None and not (tmp_path / 'new').exists()


def test_a_file_on_the_way_to_a_recording_says_so(tmp_path: Path) -> None:
    """'[Errno 17] File exists' and '[Errno 20] Not a directory' said it less plainly."""
    (tmp_path / 'notadir').write_text('mine')
    with pytest.raises(ValueError, match=f'{tmp_path}/notadir is a file, not a directory'):
        BagWriter(tmp_path / 'notadir' / 'bag')
    with pytest.raises(ValueError, match=f'{tmp_path}/notadir is a file, not a directory'):
        FolderWriter(tmp_path / 'notadir', 'mug')
    assert (tmp_path / 'notadir').read_text() == 'mine'


def test_a_killed_recording_keeps_all_but_its_last_second(tmp_path: Path,
                                                          python_executable) -> None:
    """
    Commit the messages at least every second.

    A recorder killed by SIGKILL kept none of its 200 messages: rosbags commits at close only
    (a user review).
    """
    import sqlite3
    import subprocess
    import textwrap
    code = textwrap.dedent(f"""
        import os, signal, time
        from topspark_ros.core.data.recording import BagWriter
        writer = BagWriter({str(tmp_path / 'field')!r})
        connection = writer.add_topic('/label', 'std_msgs/msg/String')
        for k in range(20):
            writer.write(connection, k, bytes([0, 1, 0, 0, 2, 0, 0, 0, 97, 0]))
        time.sleep(1.1)
        writer.write(connection, 20, bytes([0, 1, 0, 0, 2, 0, 0, 0, 97, 0]))
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    run = subprocess.run([python_executable, '-c', code], timeout=60)
    assert run.returncode == -9
    (db3,) = (tmp_path / 'field.partial').rglob('*.db3')
    with sqlite3.connect(db3) as db:
        assert db.execute('SELECT COUNT(*) FROM messages').fetchone()[0] == 21


def _write_until_full(python_executable: str, bag: Path, storage: str, limit: int,
                      count: int) -> dict:
    """
    Write up to ``count`` 2 kB messages into ``bag`` in a process whose files end at ``limit``.

    A file size limit stands for a full disk (writes past it fail with EFBIG). The sqlite3
    bag commits every 10 messages (its clock advances 0.1 s a message). Returns what the
    writer did: ``error`` (of the failed write), ``written``, ``close`` (the path closed, or
    the error of the close), ``left_in``.
    """
    import json
    import subprocess
    import textwrap
    code = textwrap.dedent(f"""
        import itertools, json, resource, signal, types
        from topspark_ros.core.data import recording
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        clock = itertools.count()
        recording.time = types.SimpleNamespace(monotonic=lambda: next(clock) / 10)
        writer = recording.BagWriter({str(bag)!r}, {storage!r})
        connection = writer.add_topic('/chatter', 'std_msgs/msg/String')
        resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, {limit}))
        out = {{'error': None}}
        for k in range({count}):
            try:
                writer.write(connection, k, bytes([0, 1, 0, 0, 209, 7, 0, 0]) + bytes(2001))
            except OSError as exc:
                out['error'] = [exc.errno, str(exc)]
                break
        try:
            out['close'] = str(writer.close())
        except OSError as exc:
            out['close'] = [exc.errno, str(exc)]
        out.update(written=writer.written, left_in=str(getattr(writer, 'left_in', None)))
        print(json.dumps(out))
    """)
    run = subprocess.run([python_executable, '-c', code], capture_output=True, text=True,
                         timeout=60)
    assert run.returncode == 0 and 'Traceback' not in run.stderr, run.stderr[-3000:]
    return json.loads(run.stdout)


def test_a_full_disk_keeps_a_sqlite3_bag_of_the_messages_it_holds(tmp_path: Path,
                                                                  python_executable) -> None:
    """
    A full disk: an OSError naming the bag; closed, the bag counts what SQLite kept.

    It raised sqlite3.OperationalError ('database or disk is full'), which the recorder did
    not catch, and the closed bag's metadata counted the messages SQLite had rolled back
    (113 in metadata.yaml, 57 read; a review of storage faults).
    """
    import sqlite3

    import yaml
    from rosbags.rosbag2 import Reader
    bag = tmp_path / 'run'
    out = _write_until_full(python_executable, bag, 'sqlite3', 100_000, 400)
    number, message = out['error']
    assert f'cannot write the bag {bag}' in message and 'sqlite3' in message, message
    assert out['close'] == str(bag) and not (tmp_path / 'run.partial').exists()
    assert 10 <= out['written'] < 50 and out['written'] % 10 == 0  # the commits that made it
    with sqlite3.connect(bag / 'run.db3') as db:
        held = db.execute('SELECT COUNT(*) FROM messages').fetchone()[0]
    info = yaml.safe_load((bag / 'metadata.yaml').read_text())['rosbag2_bagfile_information']
    assert held == out['written'] == info['message_count']
    assert info['topics_with_message_count'][0]['message_count'] == held
    with Reader(bag) as reader:
        stamps = [t for _, t, _ in reader.messages()]
        assert stamps == list(range(held)) and reader.duration == held  # last + 1 - first


def test_a_bag_that_cannot_be_closed_says_where_its_messages_are(tmp_path: Path,
                                                                 python_executable) -> None:
    """
    An MCAP file the disk has no room to finish stays in BAG.partial, and the error says so.

    The close failed after the bag was marked closed, and the recorder went on to say it had
    written its 64 samples to a bag that did not exist (a review of storage faults).
    """
    bag = tmp_path / 'run'
    data_file = tmp_path / 'run.partial' / 'run' / 'run.mcap'
    out = _write_until_full(python_executable, bag, 'mcap', 50_000, 64)
    assert out['error'] is None and out['written'] == 64  # held in memory until the close
    number, message = out['close']
    assert number == 27 and f'the bag {bag} was not closed (File too large)' in message
    assert f'of its 64 messages is in {data_file}' in message, message
    assert 'a closed bag of the chunks written whole' in message  # (not a promise of all)
    assert out['left_in'] == str(data_file) and data_file.is_file() and not bag.exists()
    # Written past its first chunk: a failed write is an OSError too, and the file is left.
    out = _write_until_full(python_executable, tmp_path / 'long', 'mcap', 50_000, 1000)
    assert out['error'][0] == 27 and 'cannot write the bag' in out['error'][1]
    assert 'was not closed' in out['close'][1] and (tmp_path / 'long.partial').is_dir()
    # A sqlite3 bag of which nothing could be committed is no bag at all.
    out = _write_until_full(python_executable, tmp_path / 'none', 'sqlite3', 40_000, 9)
    assert 'none of its messages could be kept' in out['close'][1] and out['written'] == 0
    assert not list(tmp_path.glob('none*'))


def test_discarding_a_bag_that_was_not_closed_leaves_nothing(tmp_path: Path,
                                                             monkeypatch) -> None:
    """A conversion removes a bag it could not close (``events convert``: convert again)."""
    writer = BagWriter(tmp_path / 'run', 'mcap')
    connection = writer.add_topic('/chatter', 'std_msgs/msg/String')
    writer.write(connection, 1, bytes([0, 1, 0, 0, 2, 0, 0, 0, 97, 0]))

    def full(*args) -> None:
        raise OSError(28, 'No space left on device')
    monkeypatch.setattr(writer._writer.storage, 'close', full)
    with pytest.raises(OSError, match='was not closed .No space left on device.'):
        writer.close()
    assert writer.left_in is not None and writer.left_in.is_file()
    writer.discard()
    assert writer.left_in is None and list(tmp_path.iterdir()) == []


def test_a_sqlite3_bag_whose_path_rosbags_takes_for_a_uri_is_refused(tmp_path: Path) -> None:
    """
    A sqlite3 bag is opened by rosbags as a ``file:`` URI: a ``#`` cut the path there.

    A recording into ``run#2`` wrote its messages into a file ``run`` beside the bag, which
    held none, and a reader of such a bag reads another file (a review). Writing and reading
    are refused, saying why; MCAP bags take any name.
    """
    from rosbags.typesys import get_typestore, Stores

    from topspark_ros.core.data.bag import bag_topics
    from topspark_ros.core.data.dataset import DatasetError
    for name in ('run#2', 'what?', '100%'):
        with pytest.raises(ValueError, match="a sqlite3 bag's path cannot hold '[#?%]'"):
            BagWriter(tmp_path / name, 'sqlite3')
    assert list(tmp_path.iterdir()) == []  # nothing made: no folder, no stray file
    store = get_typestore(Stores.ROS2_JAZZY)
    raw = store.serialize_cdr(store.types['std_msgs/msg/String'](data='x'), 'std_msgs/msg/String')
    for storage in ('mcap', 'sqlite3'):
        writer = BagWriter(tmp_path / f'bag_{storage}', storage)
        writer.write(writer.add_topic('/chatter', 'std_msgs/msg/String'), 1, raw)
        moved = writer.close().rename(tmp_path / f'bag#{storage}')
        if storage == 'mcap':
            assert [t.name for t in bag_topics(moved)] == ['/chatter']
        else:
            with pytest.raises(DatasetError, match='cannot read the bag .*bag#sqlite3: a '
                               "sqlite3 bag's path cannot hold '#'"):
                bag_topics(moved)
