"""
EventPacket <-> arrays (:mod:`topspark_ros.conversions.events`) with the real message class.

The packets are ``event_camera_msgs/EventPacket`` messages of the test stand-in package that
dev/build.sh builds from the public definition (skipped where it is not importable).
"""

import importlib.util
import sys

from event_arrays import random_events
import numpy as np
import pytest

from topspark_ros.conversions.cdr import header_msg
from topspark_ros.conversions.events import (cdr_to_packet, encoded_to_fields,
                                             event_packet_type, fields_to_packet,
                                             packet_to_fields, PacketHeader)
from topspark_ros.core.events.codecs import make_decoder, make_encoder
from topspark_ros.core.events.stream import EventStream


SENSOR = (34, 34)
needs_msgs = pytest.mark.skipif(importlib.util.find_spec('event_camera_msgs') is None,
                                reason='event_camera_msgs is missing (dev/build.sh builds the '
                                'test stand-in)')


def _events(n: int = 200, duration_us: int = 5000, seed: int = 0) -> np.ndarray:
    return random_events(n, duration_us, size=SENSOR, seed=seed, start_us=1_000_000)


@needs_msgs
def test_packet_to_fields_to_packet_round_trips():
    packet_type = event_packet_type()
    msg = packet_type(width=640, height=480, seq=2 ** 64 - 1, time_base=123_456_789_000,
                      encoding='libcaer_cmp', is_bigendian=True)
    msg.events = bytes(range(256)) * 3
    msg.header.stamp.sec, msg.header.stamp.nanosec = 1_700_000_000, 999_999_999
    msg.header.frame_id = 'event_camera_optical_frame'
    fields = packet_to_fields(msg)
    assert fields['data'] is msg.events  # not copied
    assert (fields['encoding'], fields['width'], fields['height'], fields['seq'],
            fields['time_base'], fields['is_bigendian']) == (
        'libcaer_cmp', 640, 480, 2 ** 64 - 1, 123_456_789_000, True)
    stamp_ns = msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
    again = fields_to_packet(fields, stamp_ns=stamp_ns, frame_id=msg.header.frame_id)
    assert isinstance(again, packet_type)
    assert again == msg


@needs_msgs
@pytest.mark.parametrize('size', [0, 1, 5, 80_828])
def test_serialized_packets_read_as_the_message_class_reads_them(size):
    """cdr_to_packet on the bytes rclpy serializes gives packet_to_fields and the header."""
    from rclpy.serialization import serialize_message
    from std_msgs.msg import Header
    msg = event_packet_type()(width=640, height=480, seq=2 ** 64 - 1,
                              time_base=123_456_789_000, encoding='libcaer_cmp',
                              is_bigendian=True)
    msg.events = bytes(np.random.default_rng(size).integers(0, 256, size, np.uint8))
    msg.header.stamp.sec, msg.header.stamp.nanosec = 1_700_000_000, 999_999_999
    msg.header.frame_id = 'event_camera_optical_frame'
    raw = serialize_message(msg)
    fields, header = cdr_to_packet(raw)
    expected = packet_to_fields(msg)
    assert fields['data'].dtype == np.uint8 and bytes(fields['data']) == bytes(msg.events)
    assert not fields['data'].flags.writeable  # a view of the bytes, not a copy
    assert size == 0 or np.shares_memory(fields['data'], np.frombuffer(raw, np.uint8))
    assert {k: v for k, v in fields.items() if k != 'data'} == {
        k: v for k, v in expected.items() if k != 'data'}
    assert header == PacketHeader(1_700_000_000, 999_999_999, 'event_camera_optical_frame')
    assert header_msg(header) == msg.header and isinstance(header_msg(header), Header)
    assert header_msg(msg.header) is msg.header
    again = fields_to_packet(fields, stamp_ns=1_700_000_000_999_999_999,
                             frame_id=header.frame_id)
    assert again == msg


def test_packets_are_read_with_a_typestore_of_their_own_types_only():
    """Jazzy's whole typestore takes 60 ms to 1.4 s to make: a pause that lost packets."""
    from topspark_ros.core.data.bag import EVENTS_TYPE, IMAGE_TYPE, live_typestore
    store = live_typestore()
    assert set(store.fielddefs) <= {EVENTS_TYPE, IMAGE_TYPE, 'std_msgs/msg/Header',
                                    'builtin_interfaces/msg/Time',
                                    'builtin_interfaces/msg/Duration'}  # rosbags' own


@needs_msgs
def test_big_endian_cdr_reads_the_same_fields():
    from rclpy.serialization import serialize_message

    from topspark_ros.conversions import cdr
    from topspark_ros.core.data.bag import EVENTS_TYPE
    msg = event_packet_type()(width=64, height=48, seq=77, time_base=5, encoding='evt3')
    msg.events = bytes(range(200))
    msg.header.frame_id = 'cam'
    little = serialize_message(msg)
    reader = cdr.cdr_reader(EVENTS_TYPE)
    store_msg = reader.deserialize(little, reader.msgtype)
    from topspark_ros.core.data.bag import live_typestore
    big = live_typestore().serialize_cdr(store_msg, EVENTS_TYPE, little_endian=False)
    assert big[:2] == b'\x00\x00' and big != little  # CDR_BE
    (a, header_a), (b, header_b) = cdr_to_packet(little), cdr_to_packet(big)
    assert bytes(a.pop('data')) == bytes(b.pop('data')) == bytes(range(200))
    assert a == b and header_a == header_b


@needs_msgs
def test_the_bytes_reader_knows_the_installed_eventpacket_and_refuses_another():
    from topspark_ros.conversions.events import prepare_cdr_reading

    class Other:  # what another version of event_camera_msgs could define
        @staticmethod
        def get_fields_and_field_types():
            fields = dict(event_packet_type().get_fields_and_field_types())
            fields['seq'] = 'uint32'
            return fields

    assert prepare_cdr_reading(event_packet_type())
    assert not prepare_cdr_reading(Other)


@needs_msgs
def test_bytes_that_are_not_a_serialized_packet_are_refused():
    from rclpy.serialization import serialize_message
    msg = event_packet_type()(width=34, height=34, encoding='evt3')
    msg.events = bytes(100)
    raw = serialize_message(msg)
    for data in (b'', b'\x00\x01', raw[:len(raw) // 2], raw[:-1], b'\x00\x01\x00\x00' * 20):
        with pytest.raises(ValueError, match='not a serialized EventPacket'):
            cdr_to_packet(data)


@needs_msgs
@pytest.mark.parametrize('encoding', ['evt3', 'mono', 'libcaer_cmp', 'libcaer'])
def test_encoded_packets_become_messages_that_decode_to_the_events(encoding):
    events = _events()
    encoder = make_encoder(encoding, *SENSOR)
    decoder = make_decoder(encoding, *SENSOR, strict=True)
    stream = EventStream(window_events=len(events))
    decoded = []
    for k, chunk in enumerate(np.array_split(events, 4)):
        fields = encoded_to_fields(encoder.encode(chunk))
        msg = fields_to_packet(fields, stamp_ns=5_000_000_000 + k, frame_id='cam')
        assert (msg.header.stamp.sec, msg.header.stamp.nanosec, msg.header.frame_id) == \
            (5, k, 'cam')
        assert (msg.encoding, msg.seq, msg.is_bigendian) == (encoding, k, False)
        received = packet_to_fields(msg)
        decoded.append(decoder.decode(received['data'], seq=received['seq'],
                                      time_base=received['time_base'],
                                      is_bigendian=received['is_bigendian']))
        stream.push(**received, tag=msg.header)
    np.testing.assert_array_equal(np.concatenate(decoded), events)
    [window] = stream.pop()
    np.testing.assert_array_equal(window.events, events)
    assert window.sensor_size == SENSOR and window.tag.frame_id == 'cam'


def test_a_missing_message_package_says_what_needs_it_and_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, 'event_camera_msgs.msg', None)  # import raises
    with pytest.raises(ImportError, match="input_mode 'events' needs the event_camera_msgs") \
            as info:
        event_packet_type("input_mode 'events'", "set input_mode to 'frames'")
    message = str(info.value)
    assert 'ros-$ROS_DISTRO-event-camera-msgs' in message
    assert message.endswith("or set input_mode to 'frames'")
