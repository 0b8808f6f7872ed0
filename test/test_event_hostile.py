"""
The classifier's event mode against hostile packets (issue 11), in-process with real rclpy.

A packet larger than ``max_packet_bytes`` is refused and counted; corrupt evt3 data raises a
WARN and leaves the later windows classified; a ``seq`` near 2^64 and a change of encoding or
sensor size leave the /diagnostics counters sane and never going back.
"""

import array
import pathlib

from event_arrays import random_events
import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
MODEL = ROOT / 'models' / 'stdp_fmnist_n400.json'
SENSOR = (34, 34)

try:
    import event_camera_msgs.msg  # noqa: F401
    HAVE_MSGS = True
except ImportError:
    HAVE_MSGS = False
pytestmark = [pytest.mark.ros, pytest.mark.skipif(
    not HAVE_MSGS, reason='event_camera_msgs is not importable (dev/build.sh builds a stand-in)')]


def _events(n: int, start_us: int, duration_us: int, seed: int = 0) -> np.ndarray:
    return random_events(n, duration_us, size=SENSOR, seed=seed, start_us=start_us)


def _packet(data: bytes, seq: int, encoding: str = 'evt3', size=SENSOR, time_base: int = 0):
    from event_camera_msgs.msg import EventPacket
    msg = EventPacket(width=size[0], height=size[1], seq=seq, time_base=time_base,
                      encoding=encoding)
    msg.events = array.array('B', data)
    return msg


def _stream(n_packets: int, packet_us: int = 10_000, per_packet: int = 100) -> list:
    """Return the evt3 bytes of consecutive packets of one sensor stream."""
    from topspark_ros.core.events.codecs import make_encoder
    encoder = make_encoder('evt3', *SENSOR, self_contained=False)
    return [encoder.encode(_events(per_packet, i * packet_us, packet_us, seed=i)).data
            for i in range(n_packets)]


def _classifier(context, executor, **overrides):
    from rclpy.parameter import Parameter

    from topspark_ros.nodes.classifier import ClassifierNode
    params = {'input_mode': 'events', 'model_path': str(MODEL), 'profile_path': '',
              'default_timesteps': 8, 'window_ms': 50.0, 'window_min_events': 1,
              'diagnostics_period_s': 100.0, **overrides}
    node = ClassifierNode(context=context, parameter_overrides=[
        Parameter(k, value=v) for k, v in params.items()])
    executor.add_node(node)
    node.trigger_configure()
    node.trigger_activate()
    return node


def test_a_packet_over_max_packet_bytes_is_refused_and_counted(ros) -> None:
    context, executor, _ = ros
    node = _classifier(context, executor, max_packet_bytes=4096)
    packets = _stream(3)
    node._on_packet(_packet(packets[0], seq=0))
    node._on_packet(_packet(bytes(50 << 20), seq=1))  # 50 MB: refused unread
    assert node._pipeline.counts['errors'] == 1 and 'max_packet_bytes' in node._pipeline.last_error
    node._on_packet(_packet(packets[2], seq=2))
    level, message, values = node._diagnostic_status()
    assert (values['packets_refused'], values['bytes_refused']) == (1, 50 << 20)
    assert values['packets'] == 2 and values['packets_received'] == 3
    assert '1 errors' in message


def test_serialized_packets_are_read_and_bytes_that_are_not_one_are_counted(ros) -> None:
    """The reader hands over packets serialized: read as messages are; garbage is an error."""
    from rclpy.serialization import serialize_message

    from topspark_ros.conversions import cdr
    cdr.cdr_reader.cache_clear()
    context, executor, _ = ros
    node = _classifier(context, executor)
    # made when the node configured, not at the first packet (the reader would pause)
    assert cdr.cdr_reader.cache_info().currsize == 1
    assert node._intake.reader._raw
    packets = _stream(3)
    node._on_packet(serialize_message(_packet(packets[0], seq=0)))
    node._on_packet(b'\x00\x01\x00\x00' + bytes(range(40)))  # CDR, but not an EventPacket
    assert node._pipeline.counts['errors'] == 1
    assert 'not a serialized EventPacket' in node._pipeline.last_error
    node._on_packet(serialize_message(_packet(packets[1], seq=1)))
    node._on_packet(_packet(packets[2], seq=2))  # a message object still works (tests)
    values = node._diagnostic_status()[2]
    assert values['packets_received'] == 3 and values['packets_lost'] == 0
    assert values['events'] == 3 * 100


def test_another_eventpacket_definition_is_taken_as_messages(ros, monkeypatch) -> None:
    """An installed EventPacket that the bytes reader does not know: messages, as before."""
    from topspark_ros.nodes import classifier
    monkeypatch.setattr(classifier, 'prepare_cdr_reading', lambda msg_type: False)
    context, executor, _ = ros
    node = _classifier(context, executor)
    assert not node._intake.reader._raw
    for seq, data in enumerate(_stream(2)):
        node._on_packet(_packet(data, seq))
    assert node._diagnostic_status()[2]['events'] == 2 * 100


def test_corrupt_data_warns_and_later_packets_keep_their_times(ros) -> None:
    from diagnostic_msgs.msg import DiagnosticStatus
    context, executor, _ = ros
    node = _classifier(context, executor)
    packets = _stream(30)
    words = np.frombuffer(packets[5], '<u2').copy()
    words[np.nonzero(words >> 12 == 0x8)[0][0]] ^= 0x400  # a corrupt EVT_TIME_HIGH: +4.2 s
    packets[5] = words.tobytes()
    for seq, data in enumerate(packets[:10]):
        node._on_packet(_packet(data, seq))
    level, message, values = node._diagnostic_status()
    assert level == DiagnosticStatus.WARN and '1 corrupt event time stamps' in message
    for seq, data in enumerate(packets[10:], start=10):
        node._on_packet(_packet(data, seq))
    level, message, values = node._diagnostic_status()
    assert values['time_backwards'] == 0 and values['time_jumps_refused'] == 1
    assert values['events'] >= 30 * 100 - 100  # at most the rest of that packet lost
    assert 'corrupt' not in message  # the WARN clears once the corruption stops


def test_sequence_near_2_64_and_sensor_changes_keep_the_counters_sane(ros) -> None:
    context, executor, _ = ros
    node = _classifier(context, executor)
    packets = _stream(6)
    top = 2 ** 64 - 2
    for i, seq in enumerate((top, top + 1, 0)):  # wraps around: nothing lost
        node._on_packet(_packet(packets[i], seq % 2 ** 64))
    before = node._diagnostic_status()[2]
    assert (before['packets_lost'], before['sequence_gaps']) == (0, 0)
    node._on_packet(_packet(packets[3], seq=7, size=(64, 48)))  # another sensor size
    node._on_packet(_packet(packets[4], seq=8, encoding='mono', time_base=0))
    after = node._diagnostic_status()[2]
    for name in ('packets', 'bytes', 'words', 'events', 'packets_lost', 'sequence_gaps',
                 'no_state_events', 'stream_restarts'):
        assert after[name] >= before[name], name
    assert after['packets'] == 5 and after['decoder_restarts'] == 2
