"""
Event files (:mod:`topspark_ros.core.events.files`), also as drivers record them (issue 14).

N-MNIST ``.bin`` and ``.npz`` files; EVT 3.0 ``.raw`` files with their ``%`` header
(Metavision, metavision_driver), and bags of EventPacket messages, through
:mod:`topspark_ros.core.events.files` and ``topspark events info / convert``.
"""

import json
from pathlib import Path
import struct

from event_arrays import events_from_rows
import numpy as np
import pytest
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import get_types_from_msg, get_typestore, Stores

from topspark_ros.cli.main import main
from topspark_ros.core.data.bag import EVENTS_TYPE
from topspark_ros.core.events import EVENT_DTYPE, files
from topspark_ros.core.events.codecs import make_encoder

ROOT = Path(__file__).resolve().parents[3]
EVENT_MSG_FILE = ROOT / 'test' / 'interfaces' / 'event_camera_msgs' / 'msg' / 'EventPacket.msg'

# A Metavision-style header, then EVT 3.0 words computed by hand: TH(1) = 0x8001, TL(5) =
# 0x6005 (t = 4096 + 5 = 4101 us), AY(3) = 0x0003, AX(7, ON) = 0x2807 (0x800 | 7), a padding
# word 0x9999, AX(8, OFF) = 0x2008.
GOLDEN_RAW = (b'% camera_integrator_name Prophesee\n% date 2026-12-04 10:00:00\n% evt 3.0\n'
              b'% format EVT3;height=8;width=64\n% geometry 64x8\n% end\n'
              + struct.pack('<6H', 0x8001, 0x6005, 0x0003, 0x2807, 0x9999, 0x2008))
GOLDEN_EVENTS = [(7, 3, 1, 4101), (8, 3, 0, 4101)]


def as_tuples(events):
    return [(int(e['x']), int(e['y']), int(e['p']), int(e['t'])) for e in events]


def sample(n: int = 2000, width: int = 1280, height: int = 720, span_us: int = 3_000_000,
           seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    events = np.zeros(n, EVENT_DTYPE)
    events['t'] = np.sort(rng.integers(0, span_us, n))
    events['x'] = rng.integers(0, width, n)
    events['y'] = rng.integers(0, height, n)
    events['p'] = rng.integers(0, 2, n)
    return events


def cli(argv, capsys) -> dict:
    code = main(argv + ['--json', '--quiet'])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return json.loads(captured.out.strip().splitlines()[-1])


@pytest.mark.parametrize('suffix', ['.bin', '.npz'])
def test_event_file_round_trip(tmp_path, suffix):
    events = events_from_rows([(0, 0, 1, 0), (33, 12, 0, 15), (4, 33, 1, 299_999)])
    folder = tmp_path / '4'
    folder.mkdir()
    path = folder / f'sample{suffix}'
    files.write_event_file(path, files.EventRecording(events, 34, 34, label=4))
    back = files.read_event_file(path)
    np.testing.assert_array_equal(back.events, events)
    assert (back.width, back.height, back.label) == (34, 34, 4)
    assert back.duration_us == 299_999


def test_npz_event_file_keeps_large_sensors_and_times(tmp_path):
    events = events_from_rows([(639, 479, 1, 10), (0, 0, 0, 10**12)])
    path = tmp_path / 'big.npz'
    files.write_event_file(path, files.EventRecording(events, 640, 480))
    back = files.read_event_file(path)
    np.testing.assert_array_equal(back.events, events)
    assert (back.width, back.height, back.label) == (640, 480, None)
    with pytest.raises(files.EventFileError, match='34 x 34'):
        files.write_event_file(tmp_path / 'big.bin', back)


def test_event_file_errors(tmp_path):
    events = events_from_rows([(5, 5, 1, 0)])
    with pytest.raises(files.EventFileError, match='unknown event file type'):
        files.write_event_file(tmp_path / 'x.txt', files.EventRecording(events, 34, 34))
    with pytest.raises(files.EventFileError, match='outside'):
        files.EventRecording(events, 5, 5)
    (tmp_path / 'bad.bin').write_bytes(bytes(4))
    with pytest.raises(files.EventFileError, match='multiple of 5'):
        files.read_event_file(tmp_path / 'bad.bin')
    (tmp_path / 'bad.npz').write_bytes(b'not a zip')
    with pytest.raises(files.EventFileError, match='cannot read') as refused:
        files.read_event_file(tmp_path / 'bad.npz')
    assert 'not a numpy archive' in str(refused.value)  # not numpy's allow_pickle advice
    assert 'allow_pickle' not in str(refused.value)
    np.savez(tmp_path / 'other.npz', a=np.zeros(3))
    with pytest.raises(files.EventFileError, match='missing'):
        files.read_event_file(tmp_path / 'other.npz')
    with pytest.raises(files.EventFileError, match='negative'):
        files.write_event_file(tmp_path / 'neg.bin',
                               files.EventRecording(events_from_rows([(1, 1, 1, -5)]), 34, 34))


def test_raw_golden_file_reads_with_its_header(tmp_path):
    path = tmp_path / 'golden.raw'
    path.write_bytes(GOLDEN_RAW)
    recording = files.read_event_file(path)
    assert (recording.width, recording.height) == (64, 8)
    assert as_tuples(recording.events) == GOLDEN_EVENTS
    assert recording.metadata['header']['camera_integrator_name'] == 'Prophesee'
    assert recording.metadata['decoder']['padding_words'] == 1
    # Older headers: no format line, no "% end"; the size from "% Width" / "% Height".
    path.write_bytes(b'% Width 64\n% Height 8\n% evt 3.0\n' + GOLDEN_RAW.split(b'% end\n')[1])
    assert as_tuples(files.read_event_file(path).events) == GOLDEN_EVENTS


def test_raw_files_refuse_other_formats_and_missing_sizes(tmp_path):
    path = tmp_path / 'evt2.raw'
    path.write_bytes(b'% evt 2.0\n% format EVT2;height=480;width=640\n% end\n\x00\x00\x00\x00')
    with pytest.raises(files.EventFileError, match='only EVT 3.0'):
        files.read_event_file(path)
    path.write_bytes(b'% evt 3.0\n% end\n\x01\x80')
    with pytest.raises(files.EventFileError, match='no sensor size'):
        files.read_event_file(path)
    big = files.EventRecording(sample(10, 4000, 10), 4000, 10)
    with pytest.raises(files.EventFileError, match='outside what evt3 can address'):
        files.write_event_file(tmp_path / 'big.raw', big)


def test_raw_round_trip_and_a_header_other_tools_read(tmp_path):
    events = sample()
    path = tmp_path / 'rec.raw'
    files.write_event_file(path, files.EventRecording(events, 1280, 720))
    header, offset = files.parse_raw_header(path.read_bytes())
    assert header['evt'] == '3.0' and header['format'] == 'EVT3;height=720;width=1280'
    assert path.read_bytes()[:offset].endswith(b'% end\n')
    back = files.read_event_file(path)
    np.testing.assert_array_equal(back.events, events)
    assert (back.width, back.height) == (1280, 720)


def test_cli_converts_between_raw_npz_and_bin(tmp_path, capsys):
    events = sample(500, 34, 34, 200_000, seed=1)
    events['t'] += 10_000_000  # beyond the 23-bit times of .bin
    first = tmp_path / 'a.npz'
    files.write_event_file(first, files.EventRecording(events, 34, 34, label=3))
    out = cli(['events', 'convert', str(first), str(tmp_path / 'b.raw')], capsys)
    assert (out['events'], out['output']) == (500, str(tmp_path / 'b.raw'))
    info = cli(['events', 'info', str(tmp_path / 'b.raw')], capsys)
    assert (info['format'], info['events'], info['width']) == ('evt3 raw', 500, 34)
    cli(['events', 'convert', str(tmp_path / 'b.raw'), str(tmp_path / 'c.bin'),
         '--start-at-zero'], capsys)
    cli(['events', 'convert', str(tmp_path / 'c.bin'), str(tmp_path / 'd.npz')], capsys)
    back = files.read_event_file(tmp_path / 'd.npz').events
    shifted = events.copy()
    shifted['t'] -= events['t'][0]
    np.testing.assert_array_equal(back, shifted)
    # Without --start-at-zero the .bin format cannot hold these times: one clear line.
    assert main(['events', 'convert', str(tmp_path / 'b.raw'), str(tmp_path / 'e.bin')]) == 1
    err = capsys.readouterr().err  # no Python-only advice ('pass wrap=True'; a review)
    assert '2**23 us' in err and '--start-at-zero' in err and 'wrap=True' not in err


def test_a_sensor_too_large_for_bin_is_refused_before_the_recording_is_read(tmp_path):
    """A 104 MB .raw took 1.8 GB and 4.7 s before this error (a 641 MB one: a traceback)."""
    def pieces():
        raise AssertionError('read')
        yield

    with pytest.raises(files.EventFileError, match='34 x 34 sensor'):
        files.write_event_chunks(tmp_path / 'x.bin', files.EventChunks(1280, 720, pieces()))


def write_event_bag(path: Path, encoding: str, events: np.ndarray, width: int, height: int,
                    packets: int = 30) -> Path:
    """Write ``events`` as ``packets`` EventPackets of ``encoding`` to /events of a new bag."""
    store = get_typestore(Stores.ROS2_JAZZY)
    store.register(get_types_from_msg(EVENT_MSG_FILE.read_text(), EVENTS_TYPE))
    encoder = make_encoder(encoding, width, height)
    with Writer(path, version=9, storage_plugin=StoragePlugin.SQLITE3) as writer:
        connection = writer.add_connection('/events', EVENTS_TYPE, typestore=store)
        for chunk in np.array_split(events, packets):
            packet = encoder.encode(chunk)
            stamp = 1_700_000_000 * 10**9 + int(chunk['t'][-1]) * 1000
            header = store.types['std_msgs/msg/Header'](
                stamp=store.types['builtin_interfaces/msg/Time'](sec=stamp // 10**9,
                                                                 nanosec=stamp % 10**9),
                frame_id='camera')
            msg = store.types[EVENTS_TYPE](
                header=header, height=height, width=width, seq=packet.seq,
                time_base=packet.time_base, encoding=encoding, is_bigendian=False,
                events=np.frombuffer(packet.data, np.uint8))
            writer.write(connection, stamp, store.serialize_cdr(msg, EVENTS_TYPE))
    return path


@pytest.mark.parametrize('encoding', ['libcaer_cmp', 'evt3'])
def test_cli_converts_a_bags_event_topic_to_a_file(tmp_path, capsys, encoding):
    events = sample(3000, 346, 260, 2_000_000, seed=2)
    bag = write_event_bag(tmp_path / 'bag', encoding, events, 346, 260)
    info = cli(['events', 'info', f'bag:{bag}'], capsys)
    assert (info['format'], info['events'], info['width'], info['height']) == \
        (f'bag {encoding}', 3000, 346, 260)
    out = cli(['events', 'convert', str(bag), str(tmp_path / 'rec.raw'), '--topic', '/events'],
              capsys)
    assert out['events'] == 3000
    np.testing.assert_array_equal(files.read_event_file(tmp_path / 'rec.raw').events, events)
    assert main(['events', 'convert', str(bag), str(tmp_path / 'x.npz'), '--topic', '/no']) == 1
    assert 'no topic /no' in capsys.readouterr().err


def test_convert_and_export_never_replace_a_file_unless_told(tmp_path, capsys):
    """An existing output is refused (the user's recording stays); --overwrite replaces it."""
    source = tmp_path / 'in.npz'
    files.write_event_file(source, files.EventRecording(sample(300), 1280, 720))
    mine = tmp_path / 'mine.raw'
    mine.write_bytes(GOLDEN_RAW)
    assert main(['events', 'convert', str(source), str(mine), '--quiet']) == 2  # usage
    capsys.readouterr()
    assert mine.read_bytes() == GOLDEN_RAW
    out = cli(['events', 'convert', str(source), str(mine), '--overwrite'], capsys)
    assert out['output'] == str(mine)
    assert files.read_event_file(mine).events.size == 300
    # Converting a file onto itself is refused even with --overwrite (a lossy rewrite).
    before = mine.read_bytes()
    assert main(['events', 'convert', str(mine), str(mine), '--overwrite', '--quiet']) == 2
    assert 'same file' in capsys.readouterr().err
    assert mine.read_bytes() == before
    # The library call: a new file only unless overwrite=True; nothing half-written is left.
    with pytest.raises(FileExistsError, match='exists'):
        files.write_event_file(source, files.EventRecording(sample(5), 1280, 720))
    assert files.read_event_file(source).events.size == 300
    files.write_event_file(source, files.EventRecording(sample(5), 1280, 720), overwrite=True)
    assert files.read_event_file(source).events.size == 5
    assert sorted(p.name for p in tmp_path.iterdir()) == ['in.npz', 'mine.raw']


def test_convert_refuses_an_existing_output_with_a_clear_error(tmp_path, capsys):
    source = tmp_path / 'in.npz'
    files.write_event_file(source, files.EventRecording(sample(10), 1280, 720))
    target = tmp_path / 'out.npz'
    target.write_bytes(b'a user file')
    assert main(['events', 'convert', str(source), str(target), '--quiet']) == 2
    err = capsys.readouterr().err
    assert 'exists' in err and '--overwrite' in err and 'Traceback' not in err
    assert target.read_bytes() == b'a user file'


@pytest.mark.parametrize('content', ['truncated', 'empty', 'npy', 'text', 'damaged'])
def test_info_and_convert_of_a_broken_npz_say_why(tmp_path, capsys, content):
    """Truncated, empty, a plain .npy, text, damaged: one error line naming the file."""
    good = tmp_path / 'good.npz'
    files.write_event_file(good, files.EventRecording(sample(5000), 1280, 720))
    bad = tmp_path / 'bad.npz'
    if content == 'truncated':
        bad.write_bytes(good.read_bytes()[:300])
    elif content == 'damaged':  # bytes of the compressed events changed
        data = bytearray(good.read_bytes())
        data[2000:2016] = bytes(16)
        bad.write_bytes(bytes(data))
    elif content == 'empty':
        bad.write_bytes(b'')
    elif content == 'npy':
        with open(bad, 'wb') as handle:
            np.save(handle, np.arange(5))
    else:
        bad.write_text('not an archive')
    for argv in (['events', 'info', str(bad)],
                 ['events', 'convert', str(bad), str(tmp_path / 'out.raw')]):
        assert main(argv + ['--quiet']) == 1
        err = capsys.readouterr().err
        assert 'bad.npz' in err and 'Traceback' not in err, err
    with pytest.raises(files.EventFileError, match='bad.npz'):
        files.read_event_file(bad)


@pytest.mark.parametrize('newline', [b'\n', b'\r\n'])
def test_a_raw_header_without_end_stops_at_the_first_line_that_is_not_text(newline):
    """Data whose first byte is '%' (0x25, e.g. EVT_TIME_HIGH 0x8025) is not header."""
    header = newline.join([b'% evt 3.0', b'% format EVT3;height=480;width=640']) + newline
    words = struct.pack('<8H', 0x8025, 0x6010, 0x0005, 0x2803, 0x2804, 0x8026, 0x6020, 0x2805)
    fields, offset = files.parse_raw_header(header + words)
    assert offset == len(header)
    assert fields == {'evt': '3.0', 'format': 'EVT3;height=480;width=640'}
    with_end = header + b'% end' + newline
    assert files.parse_raw_header(with_end + words) == (fields, len(with_end))


def _sensor_words(t_start: int, t_end: int, x: int, step: int = 1000) -> list:
    """Return sensor-like evt3 words: TIME_HIGH every 4096 us, an event every ``step`` us."""
    words, high = [], None
    for t in range(t_start, t_end, step):
        h = (t >> 12) & 0xFFF
        while high is None or high != h:
            high = h if high is None else (high + 1) & 0xFFF
            words.append(0x8000 | high)
        words += [0x6000 | (t & 0xFFF), 0x0000 | 7, 0x2000 | x]
    return words


def test_a_raw_file_with_a_sensor_reset_keeps_the_events_before_it(tmp_path, monkeypatch):
    """A reset inside a read piece dropped the piece's earlier events (all 5 000 here)."""
    before, after = _sensor_words(0, 5_000_000, x=5), _sensor_words(0, 2_000_000, x=9)
    path = tmp_path / 'reset.raw'
    path.write_bytes(b'% evt 3.0\n% format EVT3;height=480;width=640\n% end\n'
                     + struct.pack(f'<{len(before) + len(after)}H', *before, *after))
    for piece in (files.RAW_CHUNK_BYTES, 4096):  # one piece holds it all, or many
        monkeypatch.setattr(files, 'RAW_CHUNK_BYTES', piece)
        recording = files.read_event_file(path)
        x = recording.events['x']
        assert int((x == 5).sum()) >= 4990 and int((x == 9).sum()) >= 1990, piece
        assert recording.metadata['decoder']['time_resets'] == 1
        first_nine = int(np.flatnonzero(x == 9)[0])
        assert not np.any(x[first_nine:] == 5)  # in file order: before, then after the reset


def test_a_raw_file_with_a_sensor_reset_reads_as_one_stream_in_time_order(tmp_path, capsys):
    """
    Its second session followed the first in time, as a bag's does: every tool agrees.

    `events info` gave the duration of one session (5 s for 7), `convert` to .raw failed
    ("chunk starts at t=... before the end of the previous chunk"), to .npz wrote the
    sessions overlaid and unsorted (a user review).
    """
    before, after = _sensor_words(0, 5_000_000, x=5), _sensor_words(0, 2_000_000, x=9)
    path = tmp_path / 'reset.raw'
    path.write_bytes(b'% evt 3.0\n% format EVT3;height=480;width=640\n% end\n'
                     + struct.pack(f'<{len(before) + len(after)}H', *before, *after))
    recording = files.read_event_file(path)
    t = recording.events['t']
    assert np.all(np.diff(t) >= 0) and recording.metadata['sensor_resets'] == 1
    assert int(t[-1] - t[0]) > 6_900_000
    info = cli(['events', 'info', str(path)], capsys)
    assert info['sorted_by_time'] and info['duration_us'] > 6_900_000
    assert info['sensor_resets'] == 1
    for out in ('again.raw', 'again.npz'):
        converted = cli(['events', 'convert', str(path), str(tmp_path / out)], capsys)
        assert converted['events'] == len(t)
        back = files.read_event_file(tmp_path / out).events
        assert np.all(np.diff(back['t']) >= 0)
        np.testing.assert_array_equal(back['x'], recording.events['x'])


def test_a_truncated_raw_file_ending_on_a_reset_is_read(tmp_path):
    """The word that confirms a reset, then a stray byte: the halving recursed for ever."""
    before, after = _sensor_words(0, 5_000_000, x=5), _sensor_words(0, 2_000_000, x=9)
    highs = [i for i, w in enumerate(after) if w >> 12 == 0x8]
    cut = after[:highs[2] + 1]  # up to the third TIME_HIGH: the one that confirms the reset
    path = tmp_path / 'cut.raw'
    path.write_bytes(b'% evt 3.0\n% format EVT3;height=480;width=640\n% end\n'
                     + struct.pack(f'<{len(before) + len(cut)}H', *before, *cut) + b'\x00')
    recording = files.read_event_file(path)
    assert recording.metadata['decoder']['time_resets'] == 1
    assert int((recording.events['x'] == 5).sum()) >= 4990
    assert recording.metadata['decoder']['truncated_bytes'] == 1


def test_convert_makes_the_output_folder(tmp_path, capsys):
    source = tmp_path / 'in.npz'
    files.write_event_file(source, files.EventRecording(sample(20), 1280, 720))
    out = cli(['events', 'convert', str(source), str(tmp_path / 'new' / 'deeper' / 'o.raw')],
              capsys)
    assert files.read_event_file(out['output']).events.size == 20


def test_a_message_that_does_not_deserialize_is_skipped_and_counted(tmp_path, capsys):
    """It ended `events info` and `convert` with a Python traceback (a user review)."""
    import sqlite3
    events = sample(3000, 346, 260, 2_000_000, seed=2)
    bag = write_event_bag(tmp_path / 'bag', 'evt3', events, 346, 260)
    (db3,) = bag.glob('*.db3')
    with sqlite3.connect(db3) as db:
        db.execute('INSERT INTO messages (topic_id, timestamp, data) VALUES (1, 1, ?)',
                   (b'\x00\x01\x00\x00cut',))
    info = cli(['events', 'info', f'bag:{bag}'], capsys)
    assert (info['events'], info['skipped_messages']) == (3000, 1)
    assert 'Error' in info['first_skipped']
    out = cli(['events', 'convert', str(bag), str(tmp_path / 'rec.raw')], capsys)
    assert out['events'] == 3000


def test_a_sensor_reset_in_a_bag_is_stitched_into_one_stream(tmp_path, capsys):
    """
    Stitch a driver restart (the sensor clock starts again) into one stream in time order.

    The two sessions were overlaid: a 12 s stream read as 6 s, `.raw` refused it with the
    advice to sort the events, event-player played them on top of each other (a user review).
    """
    first = sample(2000, 346, 260, 2_000_000, seed=1)
    second = sample(2000, 346, 260, 2_000_000, seed=2)
    store = get_typestore(Stores.ROS2_JAZZY)
    store.register(get_types_from_msg(EVENT_MSG_FILE.read_text(), EVENTS_TYPE))
    with Writer(tmp_path / 'bag', version=9, storage_plugin=StoragePlugin.SQLITE3) as writer:
        connection = writer.add_connection('/events', EVENTS_TYPE, typestore=store)
        for session, events in enumerate((first, second)):
            encoder = make_encoder('evt3', 346, 260)  # the restarted driver's
            for chunk in np.array_split(events, 10):
                packet = encoder.encode(chunk)
                stamp = 1_700_000_000 * 10**9 + (session * 3_000_000 + int(chunk['t'][-1])) \
                    * 1000
                header = store.types['std_msgs/msg/Header'](
                    stamp=store.types['builtin_interfaces/msg/Time'](
                        sec=stamp // 10**9, nanosec=stamp % 10**9), frame_id='camera')
                msg = store.types[EVENTS_TYPE](
                    header=header, height=260, width=346, seq=packet.seq,
                    time_base=packet.time_base, encoding='evt3', is_bigendian=False,
                    events=np.frombuffer(packet.data, np.uint8))
                writer.write(connection, stamp, store.serialize_cdr(msg, EVENTS_TYPE))
    recording = files.read_bag_events(tmp_path / 'bag')
    t = recording.events['t']
    assert recording.metadata['sensor_resets'] == 1 and np.all(np.diff(t) >= 0)
    assert recording.events.size == 4000
    # 2 s, the pause between the sessions' packets (1 s here, from their stamps), 2 s.
    assert 4_900_000 < recording.duration_us < 5_100_000
    np.testing.assert_array_equal(recording.events[2000:]['t'] - recording.events[2000]['t'],
                                  second['t'] - second['t'][0])
    info = cli(['events', 'info', f'bag:{tmp_path / "bag"}'], capsys)
    assert info['sensor_resets'] == 1 and info['sorted_by_time']
    out = cli(['events', 'convert', str(tmp_path / 'bag'), str(tmp_path / 'all.raw')], capsys)
    assert out['events'] == 4000


def test_info_and_conversion_to_raw_hold_one_piece_at_a_time(tmp_path, capsys, monkeypatch):
    """
    Read a .raw file a piece at a time for `events info` and a conversion to .raw.

    A 220 MB evt3 recording took 1.6 GB for `events info` and 2.1 GB to convert (a user
    review): the events were decoded whole, about 7 times the words.
    """
    import tracemalloc
    events = sample(400_000, 640, 480, 20_000_000, seed=4)
    source = tmp_path / 'long.raw'
    files.write_event_file(source, files.EventRecording(events, 640, 480))
    monkeypatch.setattr(files, 'RAW_CHUNK_BYTES', 1 << 16)
    whole = events.nbytes  # 5.2 MB decoded
    tracemalloc.start()
    try:
        summary = files.summarize(files.open_events(source))
        _, info_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        files.write_event_chunks(tmp_path / 'copy.raw', files.open_events(source))
        _, convert_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert info_peak < whole / 4 and convert_peak < whole / 4, (info_peak, convert_peak)
    assert summary['events'] == 400_000 and summary['sorted_by_time']
    assert summary['duration_us'] == int(events['t'][-1] - events['t'][0])
    np.testing.assert_array_equal(files.read_event_file(tmp_path / 'copy.raw').events, events)
    out = cli(['events', 'convert', str(source), str(tmp_path / 'zero.raw'), '--start-at-zero'],
              capsys)
    assert out['events'] == 400_000 and out['first_t_us'] == 0
    back = files.read_event_file(tmp_path / 'zero.raw').events
    np.testing.assert_array_equal(back['t'], events['t'] - events['t'][0])


def test_a_bag_named_as_one_gets_the_bag_readers_error(tmp_path, capsys):
    """bag:PATH that is no bag said 'unknown event file type' (a review of this stop)."""
    for name in (f'bag:{tmp_path / "missing"}', f'bag:{tmp_path / "x.db3"}'):
        assert main(['events', 'info', name]) == 1
        err = capsys.readouterr().err
        assert 'unknown event file type' not in err and 'bag' in err, err


def test_npz_written_a_piece_at_a_time_reads_as_the_whole(tmp_path):
    """The pieces of a recording make the archive np.savez_compressed makes of the whole."""
    events = sample(5000, 640, 480, 3_000_000, seed=7)
    chunks = files.EventChunks(640, 480, np.array_split(events, 7), label=3)
    files.write_event_chunks(tmp_path / 'pieces.npz', chunks)
    files.write_event_file(tmp_path / 'whole.npz', files.EventRecording(events, 640, 480, 3))
    with np.load(tmp_path / 'pieces.npz') as a, np.load(tmp_path / 'whole.npz') as b:
        pieces, whole = dict(a), dict(b)
    assert list(pieces) == list(whole)
    for key in whole:
        assert pieces[key].dtype == whole[key].dtype and pieces[key].shape == whole[key].shape
        np.testing.assert_array_equal(pieces[key], whole[key])
    back = files.read_event_file(tmp_path / 'pieces.npz')
    np.testing.assert_array_equal(back.events, events)
    assert (back.width, back.height, back.label) == (640, 480, 3)
    files.write_event_chunks(tmp_path / 'empty.npz', files.EventChunks(64, 48, []))
    assert files.read_event_file(tmp_path / 'empty.npz').events.size == 0
    with pytest.raises(files.EventFileError, match='outside'):
        files.write_event_chunks(tmp_path / 'out.npz', files.EventChunks(64, 48, [events]))
    assert sorted(p.name for p in tmp_path.iterdir()) == ['empty.npz', 'pieces.npz',
                                                          'whole.npz']


def test_npz_is_read_a_piece_at_a_time(tmp_path):
    """
    The player, `events info` and conversions held a whole .npz recording, twice.

    (`events info` of 40 M events: 1.24 GB; an item of the last note.) The pieces, of any size,
    make the whole; arrays of other integer types and byte orders read as numpy casts them.
    """
    import tracemalloc

    path = tmp_path / 'long.npz'
    events = sample(1_500_000, 640, 480, 60_000_000, seed=3)
    np.savez(path, x=events['x'].astype('>i4'), y=events['y'].astype(np.int64),
             p=events['p'].astype(bool), t=events['t'].astype('>i8'), width=640, height=480,
             label=np.array([7]))
    tracemalloc.start()
    try:
        summary = files.summarize(files.open_events(path))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert summary['events'] == len(events)
    assert peak < 6e6, peak  # the whole is 19.5 MB as events
    for piece_bytes in (2100, 100_000, 1 << 20):
        chunks = files.open_events(path, piece_bytes=piece_bytes)
        assert (chunks.width, chunks.height, chunks.label) == (640, 480, 7)
        got = list(chunks)
        assert len(got) == -(-len(events) // (piece_bytes // 21))
        np.testing.assert_array_equal(np.concatenate(got), events)
    read = []
    chunks = files.open_events(path, progress=read.append)
    assert sum(len(piece) for piece in chunks) == len(events)
    assert chunks.size == sum(read) == len(events) * 21  # bytes of the arrays: 4 + 8 + 1 + 8
    np.testing.assert_array_equal(files.read_event_file(path).events, events)


def test_a_npz_out_of_time_order_is_read_as_one_piece_and_cut_into_packets(tmp_path):
    """
    Two takes in one file, a writer's jitter: the packets of the whole, as when read whole.

    Read a piece at a time, the packet cutter refused a piece that started before the one
    before ended: the event player stopped after the first take and a conversion to a bag
    failed (a review of the piece-wise reader).
    """
    from topspark_ros.core.events.packets import PacketCutter

    first, second = sample(3000, 64, 48, 300_000, seed=1), sample(2000, 64, 48, 200_000, seed=2)
    events = np.concatenate([first, second])  # the second take's clock starts again
    path = tmp_path / 'two_takes.npz'
    np.savez(path, x=events['x'], y=events['y'], p=events['p'], t=events['t'], width=64,
             height=48)
    pieces = list(files.open_events(path, piece_bytes=2000))
    assert len(pieces) == 1 and np.array_equal(pieces[0], events)
    cutter = PacketCutter(10_000)
    packets = list(cutter.packets_of(files.open_events(path, piece_bytes=2000)))
    assert sum(len(p) for _, p in packets) == len(events) and cutter.sorted_pieces == 1
    in_order = tmp_path / 'in_order.npz'
    np.savez(in_order, **{k: events[k] for k in 'xyp'}, t=np.sort(events['t']), width=64.0,
             height=48.0)  # a sensor size written as floats reads as it did
    chunks = files.open_events(in_order, piece_bytes=2000)
    assert (chunks.width, chunks.height) == (64, 48) and len(list(chunks)) > 1


@pytest.mark.parametrize('case', ['float times', 'no events', 'lengths', 'outside'])
def test_a_npz_that_is_no_event_recording_is_refused_clearly(tmp_path, capsys, case):
    """Float times, missing arrays, arrays of two lengths, events off the sensor: one line."""
    events = sample(100, 64, 48)
    arrays = {k: events[k] for k in 'xypt'}
    arrays.update(width=64, height=48)
    if case == 'float times':
        arrays['t'] = events['t'] / 1e6
    elif case == 'no events':
        del arrays['p']
    elif case == 'lengths':
        arrays['x'] = arrays['x'][:-1]
    else:
        arrays['width'] = 32
    path = tmp_path / 'mine.npz'
    np.savez(path, **arrays)
    want = {'float times': 't must hold integers', 'no events': 'missing p',
            'lengths': 'one length', 'outside': 'outside'}[case]
    with pytest.raises(files.EventFileError, match=want):
        files.read_event_file(path)
    assert main(['events', 'info', str(path), '--quiet']) == 1
    err = capsys.readouterr().err
    assert want in err and 'mine.npz' in err and 'Traceback' not in err, err


def test_converting_to_npz_holds_one_piece_at_a_time(tmp_path):
    """A conversion to .npz held the whole recording (a 583 MB .raw: 3 GB; a user review)."""
    import tracemalloc

    def pieces():
        for k in range(40):  # 4 M events, 52 MB as decoded events
            piece = sample(100_000, 640, 480, 100_000, seed=k)
            piece['t'] += 100_000 * k
            yield piece

    tracemalloc.start()
    try:
        files.write_event_chunks(tmp_path / 'long.npz', files.EventChunks(640, 480, pieces()))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16e6, peak
    assert files.read_event_file(tmp_path / 'long.npz').events.size == 4_000_000


def test_raw_to_raw_keeps_the_header_and_says_triggers_are_not_written(tmp_path, capsys):
    """A conversion dropped the serial number, date, ... and the trigger events silently."""
    trigger = 0xA000 | (2 << 8) | 1  # EXT_TRIGGER: channel 2, rising edge
    source = tmp_path / 'in.raw'
    source.write_bytes(GOLDEN_RAW.replace(b'% end\n', b'% serial_number 00ca0009\n% end\n')
                       + struct.pack('<H', trigger))
    out = cli(['events', 'convert', str(source), str(tmp_path / 'out.raw')], capsys)
    assert out['triggers_not_written'] == 1
    header, _ = files.parse_raw_header((tmp_path / 'out.raw').read_bytes())
    assert header['serial_number'] == '00ca0009' and header['date'] == '2026-12-04 10:00:00'
    assert header['camera_integrator_name'] == 'Prophesee' and header['geometry'] == '64x8'
    assert as_tuples(files.read_event_file(tmp_path / 'out.raw').events) == GOLDEN_EVENTS


def test_a_raw_recording_becomes_a_bag_that_every_command_reads(tmp_path, capsys):
    """
    ``events convert REC.raw bag:DIR``: EventPacket messages as a driver records them.

    A .raw recording was no --data source, and no conversion wrote a bag (the last notes'
    'not done'): now its packets (1 ms, evt3, seq counting) are stamped from the header's
    date or --stamp-origin, so a labels CSV of ranges in those stamps labels its windows.
    """
    from topspark_ros.core.data.bag import BagOptions, load_bag

    rng = np.random.default_rng(9)
    events = np.zeros(30_000, EVENT_DTYPE)
    events['x'], events['y'] = rng.integers(0, 64, 30_000), rng.integers(0, 48, 30_000)
    events['p'] = rng.integers(0, 2, 30_000)
    events['t'] = np.sort(rng.integers(5_000, 605_000, 30_000))  # 0.6 s from t = 5 ms
    raw = tmp_path / 'rec.raw'
    files.write_event_file(raw, files.EventRecording(events, 64, 48))
    out = cli(['events', 'convert', str(raw), f'bag:{tmp_path / "bag"}', '--stamp-origin',
               '1700000000', '--packet-ms', '1'], capsys)
    t0 = int(events['t'][0])
    slots = (events['t'] - t0) // 1000  # 1 ms packets from the first event
    assert out['packets'] == len(np.unique(slots))
    assert out['first_stamp_ns'] == 1_700_000_000 * 10**9
    assert out['last_stamp_ns'] == 1_700_000_000 * 10**9 + 1000 * (
        int(events['t'][slots == slots.max()][0]) - t0)
    csv = tmp_path / 'labels.csv'
    csv.write_text('start,end,label\n1700000000.0,1700000000.3,a\n1700000000.3,1700000000.6,b\n')
    data = load_bag(tmp_path / 'bag', 'train', options=BagOptions(labels=str(csv),
                                                                  window_ms=100.0),
                    val_fraction=0, test_fraction=0)
    assert len(data) == 6 and data.sensor_size == (64, 48)
    assert [data.class_names[c] for c in data.labels] == ['a'] * 3 + ['b'] * 3
    np.testing.assert_array_equal(np.concatenate(list(data.images)), events)
    assert main(['events', 'convert', str(raw), f'bag:{tmp_path / "bag"}']) == 2  # no replace
    assert 'name a new bag directory' in capsys.readouterr().err
    # A bag's own stamps go on (they were replaced by now: a review).
    again = cli(['events', 'convert', f'bag:{tmp_path / "bag"}', f'bag:{tmp_path / "again"}',
                 '--out-topic', 'dvs/events'], capsys)
    assert again['first_stamp_ns'] == out['first_stamp_ns']
    assert again['topic'] == '/dvs/events'  # a full name, as ros2 bag writes (was dvs/events)
    # Stamps a header cannot hold are refused: at once for the origin, and where a packet
    # would pass 2038, leaving no part of a bag (a truncated one was left, under its name).
    assert main(['events', 'convert', str(raw), f'bag:{tmp_path / "x"}', '--stamp-origin',
                 '-5']) == 2
    assert 'expected Unix seconds from 0 to 2147483647' in capsys.readouterr().err
    assert main(['events', 'convert', str(raw), f'bag:{tmp_path / "late"}', '--stamp-origin',
                 '2147483647.5']) == 1
    assert 'outside the int32 seconds of a header stamp' in capsys.readouterr().err
    assert not (tmp_path / 'late').exists() and not list(tmp_path.glob('late*'))


@pytest.mark.parametrize('storage', ['sqlite3', 'mcap'])
def test_a_conversion_to_a_bag_on_a_full_disk_is_one_error_and_leaves_nothing(
        tmp_path, python_executable, storage):
    """
    ``events convert big.raw bag:DIR`` on a full disk: an error naming the bag, no traceback.

    sqlite3 ended in a traceback of sqlite3.OperationalError ('database or disk is full'),
    which the CLI did not catch (a review of storage faults). A file size limit stands for
    the full disk.
    """
    import subprocess
    import textwrap

    rng = np.random.default_rng(4)
    events = np.zeros(60_000, EVENT_DTYPE)
    events['x'], events['y'] = rng.integers(0, 64, 60_000), rng.integers(0, 48, 60_000)
    events['p'] = rng.integers(0, 2, 60_000)
    events['t'] = np.sort(rng.integers(0, 600_000, 60_000))
    raw = tmp_path / 'big.raw'
    files.write_event_file(raw, files.EventRecording(events, 64, 48))
    bag = tmp_path / 'bag'
    code = textwrap.dedent(f"""
        import resource, signal, sys
        from topspark_ros.cli.main import main
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, 100_000))
        sys.exit(main(['events', 'convert', {str(raw)!r}, 'bag:{bag}', '--storage',
                       {storage!r}, '--stamp-origin', '1700000000', '-q']))
    """)
    run = subprocess.run([python_executable, '-c', code], capture_output=True, text=True,
                         timeout=60)
    assert run.returncode == 1 and 'Traceback' not in run.stderr, run.stderr[-3000:]
    (line,) = run.stderr.strip().splitlines()
    assert line.startswith('topspark: error: ') and f'cannot write the bag {bag}' in line, line
    assert sorted(p.name for p in tmp_path.iterdir()) == ['big.raw']


def test_an_older_raw_header_takes_the_sensor_size_given_and_an_empty_file_says_so(
        tmp_path, capsys):
    """
    A header without the sensor size was refused with no way to give it (a review).

    ``--sensor WxH`` (``sensor_size``) gives it; one that contradicts the header is refused.
    An empty file was said to give no sensor size; a header alone converted into an empty file
    without a word.
    """
    words = GOLDEN_RAW.split(b'% end\n')[1]
    old = tmp_path / 'old.raw'
    old.write_bytes(b'% evt 3.0\n% end\n' + words)
    with pytest.raises(files.EventFileError, match='no sensor size .*--sensor WxH'):
        files.open_events(old)
    chunks = files.open_events(old, sensor_size=(64, 8))
    assert (chunks.width, chunks.height) == (64, 8)
    assert as_tuples(chunks.read().events) == GOLDEN_EVENTS
    info = cli(['events', 'info', str(old), '--sensor', '64x8'], capsys)
    assert (info['width'], info['height'], info['events']) == (64, 8, len(GOLDEN_EVENTS))
    golden = tmp_path / 'golden.raw'
    golden.write_bytes(GOLDEN_RAW)
    with pytest.raises(files.EventFileError, match='header gives a 64x8 sensor, not 640x480'):
        files.open_events(golden, sensor_size=(640, 480))
    assert main(['events', 'info', str(old), '--sensor', '64']) == 2  # not WxH: a usage error
    assert "expected WIDTHxHEIGHT in pixels (1280x720), got '64'" in capsys.readouterr().err
    empty = tmp_path / 'empty.raw'
    empty.write_bytes(b'')
    assert main(['events', 'info', str(empty), '-q']) == 1
    assert 'empty.raw is empty (0 bytes)' in capsys.readouterr().err
    header_only = tmp_path / 'header.raw'
    header_only.write_bytes(GOLDEN_RAW.split(b'% end\n')[0] + b'% end\n')
    assert main(['events', 'convert', str(header_only), str(tmp_path / 'none.npz'), '-q']) == 0
    assert (f'note: {header_only} holds no events: {tmp_path / "none.npz"} holds none either'
            in capsys.readouterr().err)
