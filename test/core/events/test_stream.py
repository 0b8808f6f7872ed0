"""EventStream (core of the classifier's event mode): hostile packets (issue 11)."""

from event_arrays import random_events
import pytest

from topspark_ros.core.events.codecs import PacketTooLargeError
from topspark_ros.core.events.codecs.base import default_time_base
from topspark_ros.core.events.codecs.evt3 import encode_evt3
from topspark_ros.core.events.codecs.mono import encode_mono
from topspark_ros.core.events.stream import EventStream


def test_counters_never_go_back_when_the_encoding_or_sensor_changes():
    stream = EventStream(window_us=1000)
    events = random_events(300, 20_000)
    evt3 = encode_evt3(events, width=34, height=34)
    stream.push(evt3, encoding='evt3', width=34, height=34, seq=0)
    stream.push(evt3, encoding='evt3', width=34, height=34, seq=5)  # 4 packets lost
    history = [stream.stats()]
    # Another encoding, then another sensor size: each makes a new decoder.
    mono = encode_mono(events, width=34, height=34)
    stream.push(mono, encoding='mono', width=34, height=34, seq=0,
                time_base=default_time_base(events))
    history.append(stream.stats())
    stream.push(evt3, encoding='evt3', width=64, height=48, seq=0)
    history.append(stream.stats())
    numbers = [name for name, value in history[0].items() if isinstance(value, int)]
    assert {'packets', 'events', 'packets_lost', 'sequence_gaps', 'words'} <= set(numbers)
    for before, after in zip(history, history[1:]):
        assert all(after[name] >= before[name] for name in numbers), (before, after)
    last = history[-1]
    assert (last['packets'], last['packets_lost'], last['sequence_gaps']) == (4, 4, 1)
    assert last['events'] == 4 * 300 and last['decoder_restarts'] == 2
    assert (last['encoding'], last['sensor']) == ('evt3', '64x48')


def test_packets_over_max_packet_bytes_are_refused_and_counted():
    stream = EventStream(window_us=1000, max_packet_bytes=4096)
    small = encode_evt3(random_events(100, 5000), width=34, height=34)
    big = encode_evt3(random_events(3000, 5000, seed=1), width=34, height=34)
    assert len(small) <= 4096 < len(big)
    stream.push(small, encoding='evt3', width=34, height=34, seq=0)
    with pytest.raises(PacketTooLargeError, match='max_packet_bytes'):
        stream.push(big, encoding='evt3', width=34, height=34, seq=1)
    with pytest.raises(ValueError, match='max_packet_bytes'):
        EventStream(window_us=1000, max_packet_bytes=0)
    stats = stream.stats()
    assert (stats['packets_received'], stats['packets'], stats['packets_refused'],
            stats['bytes_refused']) == (2, 1, 1, len(big))
    assert EventStream(window_us=1000).max_packet_bytes is None  # bounded by its user


def test_duplicate_packets_are_dropped_and_counted():
    """
    Every packet twice (a bridge that repeats messages): the windows of a clean stream.

    Decoded again, a duplicate's events went back in time, which restarted the windows: with
    every packet repeated no window was ever completed, and nothing said so (a user review).
    """
    events = random_events(3000, 100_000, seed=4)
    packets = [encode_evt3(events[k:k + 300], width=34, height=34)
               for k in range(0, 3000, 300)]
    clean, doubled = (EventStream(window_us=10_000, min_events=1) for _ in range(2))
    made, got = [], []
    for seq, data in enumerate(packets):
        clean.push(data, encoding='evt3', width=34, height=34, seq=seq, tag=seq)
        made += [(w.events.tobytes(), w.tag) for w in clean.pop(100)]
        for _ in range(2):
            doubled.push(data, encoding='evt3', width=34, height=34, seq=seq, tag=seq)
            got += [(w.events.tobytes(), w.tag) for w in doubled.pop(100)]
    assert len(made) >= 8 and got == made
    stats = doubled.stats()
    assert (stats['packets_received'], stats['packets_duplicate'], stats['packets']) == (
        20, 10, 10)
    assert stats['windower_restarts'] == 0 and stats['packets_lost'] == 0
    # A driver that restarts (seq from 0 again, another packet) is no duplicate.
    doubled.push(packets[0], encoding='evt3', width=34, height=34, seq=0)
    assert doubled.stats()['packets_duplicate'] == 10
    # Nor are packets of a driver that leaves seq at 0, of one size (a review of this change
    # found every packet after the first dropped): mono, 8 bytes an event, 300 a packet.
    zeros = EventStream(window_us=10_000, min_events=1)
    for k in range(0, 3000, 300):
        chunk = events[k:k + 300]
        zeros.push(encode_mono(chunk, width=34, height=34), encoding='mono', width=34,
                   height=34, seq=0, time_base=default_time_base(chunk))
    assert zeros.stats()['packets_duplicate'] == 0 and zeros.stats()['events'] == 3000


def test_the_open_window_of_a_quiet_stream_is_closed_and_queued_with_its_tag():
    """
    The last window of a stream that stops: closed on request (a user review).

    It waited for an event at or after its end, which never came: one replayed digit gave no
    result. Windows by count stay open; a window under min_events is not queued.
    """
    import numpy as np

    events = random_events(2000, 250_000, seed=2)  # 250 ms of events: under one window
    stream = EventStream(window_us=300_000, min_events=50)
    for k, part in enumerate(np.array_split(events, 10)):
        stream.push(encode_evt3(part, width=34, height=34), encoding='evt3', width=34,
                    height=34, seq=k, tag=f'packet {k}')
    assert stream.pending == 0
    assert stream.close_open_window() == 1
    (window,) = stream.pop()
    assert np.array_equal(window.events, events) and window.tag == 'packet 9'
    assert stream.close_open_window() == 0  # nothing open any more
    few = EventStream(window_us=300_000, min_events=50)
    few.push(encode_evt3(events[:10], width=34, height=34), encoding='evt3', width=34,
             height=34, seq=0)
    assert few.close_open_window() == 0 and few.pending == 0
    counted = EventStream(window_events=5000)
    counted.push(encode_evt3(events, width=34, height=34), encoding='evt3', width=34,
                 height=34, seq=0)
    assert counted.close_open_window() == 0


def test_only_the_events_of_the_region_of_interest_are_windowed():
    """
    Only the events of the region of interest are windowed; the others are counted.

    Windowed on the whole sensor, a window of events all outside the region was classified
    from an empty input, and windows by count held events the model never sees (a review).
    """
    import numpy as np

    events = random_events(4000, 400_000, seed=3)
    left = events['x'] < 17
    sizes = []
    region = (0, 0, 17, 34)  # the left half of the 34 x 34 sensor

    def roi_of(sensor):
        sizes.append(sensor)
        return region
    stream = EventStream(window_events=500, region=roi_of, max_backlog=100)
    for k, part in enumerate(np.array_split(events, 8)):
        stream.push(encode_evt3(part, width=34, height=34), encoding='evt3', width=34,
                    height=34, seq=k)
    windows = stream.pop(100)
    assert sizes[0] == (34, 34)
    assert len(windows) == int(left.sum()) // 500
    assert all(len(w.events) == 500 and (w.events['x'] < 17).all() for w in windows)
    assert stream.counts['events_outside_roi'] == int((~left).sum())
    right = EventStream(window_us=100_000, min_events=1, region=roi_of)
    right.push(encode_evt3(events[~left], width=34, height=34), encoding='evt3', width=34,
               height=34, seq=0)
    assert right.close_open_window() == 0 and right.pending == 0  # nothing in the region
    assert right.packets_with_events == 0  # (so the stream reads as quiet; a review)
    whole = EventStream(window_events=500, region=lambda sensor: None)  # no region: all
    whole.push(encode_evt3(events, width=34, height=34), encoding='evt3', width=34,
               height=34, seq=0)
    assert whole.pending == 2 and whole.counts['events_outside_roi'] == 0
