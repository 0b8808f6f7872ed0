"""
EventPacket <-> arrays: the packet fields the event decoders take, packets from the encoders.

``event_camera_msgs/EventPacket`` carries a header, ``width``, ``height``, ``seq``,
``time_base`` (ns), ``encoding``, ``is_bigendian`` and the raw ``events`` bytes. The core
decodes the bytes (:mod:`topspark_ros.core.events.codecs`,
:class:`~topspark_ros.core.events.stream.EventStream`) and encodes events back
(:class:`~topspark_ros.core.events.codecs.EncodedPacket`); this module is the only place that
reads or fills the message's fields:

* :func:`packet_to_fields`: a received packet -> :class:`PacketFields`, the keyword arguments of
  :meth:`EventStream.push <topspark_ros.core.events.stream.EventStream.push>` (the header stays
  with the caller, which copies it onto what it publishes);
* :func:`cdr_to_packet`: a packet's serialized bytes (a subscription taken raw) ->
  :class:`PacketFields` and a :class:`PacketHeader`, which :func:`header_msg` turns into a
  ``std_msgs/Header`` when a result is published;
* :func:`encoded_to_fields`: an encoder's packet -> :class:`PacketFields`;
* :func:`fields_to_packet`: :class:`PacketFields`, a stamp and a frame -> an EventPacket.

event_camera_msgs is imported on first use (:func:`event_packet_type`): the package works
without it where nothing asks for events.
"""

import array
import functools
from typing import NamedTuple, Tuple, TYPE_CHECKING, TypedDict

import numpy as np

if TYPE_CHECKING:  # the codecs (numba) load when a packet is decoded, not with this module
    from topspark_ros.core.events.codecs import EncodedPacket


class PacketFields(TypedDict):
    """
    The fields of an EventPacket but its header, named as ``EventStream.push`` takes them.

    ``data`` is the packet's ``events`` field as the message holds it (an ``array('B')`` or
    bytes, not copied); ``time_base`` is in nanoseconds.
    """

    data: object
    encoding: str
    width: int
    height: int
    seq: int
    time_base: int
    is_bigendian: bool


def event_packet_type(needed_for: str = 'publishing event packets', otherwise: str = ''):
    """
    Return the ``event_camera_msgs/EventPacket`` message class (imported on first use).

    Raises ImportError saying what ``needed_for`` needs, how to install it (and ``otherwise``,
    an alternative, when given) when the package is missing. The event player publishes and
    the classifier's event mode subscribes with it.
    """
    try:
        from event_camera_msgs.msg import EventPacket
    except ImportError as exc:
        raise ImportError(
            f'{needed_for} needs the event_camera_msgs message package, which is not '
            f'importable ({exc}): install it (apt: ros-$ROS_DISTRO-event-camera-msgs, or '
            'build github.com/ros-event-camera/event_camera_msgs in your workspace) and '
            'source the workspace' + (f', or {otherwise}' if otherwise else '')) from None
    return EventPacket


def packet_to_fields(msg) -> PacketFields:
    """Return the fields of the EventPacket ``msg`` but its header (``events`` not copied)."""
    return PacketFields(data=msg.events, encoding=msg.encoding, width=msg.width,
                        height=msg.height, seq=msg.seq, time_base=msg.time_base,
                        is_bigendian=msg.is_bigendian)


class PacketHeader(NamedTuple):
    """The header of a packet read from its serialized bytes (:func:`cdr_to_packet`)."""

    sec: int
    nanosec: int
    frame_id: str


@functools.lru_cache(maxsize=1)
def _packet_store():
    """Return the ``rosbags`` typestore that reads EventPackets (made once)."""
    from topspark_ros.core.data.bag import event_typestore
    return event_typestore()


def prepare_cdr_reading() -> None:
    """
    Make :func:`cdr_to_packet` ready: its typestore, and its reader of EventPackets.

    The first call otherwise spends milliseconds building them, a pause a reader thread at
    1 000 packets per second should not take with its first packet (the classifier calls this
    when it configures).
    """
    from topspark_ros.core.data.bag import EVENTS_TYPE
    store = _packet_store()
    empty = store.types[EVENTS_TYPE](
        header=store.types['std_msgs/msg/Header'](
            stamp=store.types['builtin_interfaces/msg/Time'](sec=0, nanosec=0), frame_id=''),
        height=0, width=0, seq=0, time_base=0, encoding='', is_bigendian=False,
        events=np.zeros(0, np.uint8))
    cdr_to_packet(store.serialize_cdr(empty, EVENTS_TYPE))


def cdr_to_packet(data: bytes) -> Tuple[PacketFields, PacketHeader]:
    """
    Return the fields and the header of the EventPacket serialized (CDR) in ``data``.

    What a subscription taken raw hands over (``SubscriptionReader(raw=True)``): rclpy then
    builds no Python message, which for the 80 kB packets of a 20 Mev/s camera cost more than
    reading the bytes here (``rosbags``, about 6 us). ``data`` of the fields is a read-only
    ``uint8`` array over ``data`` (not copied). Raises ValueError for bytes that do not hold
    an EventPacket.
    """
    from rosbags.serde import SerdeError

    from topspark_ros.core.data.bag import EVENTS_TYPE
    try:
        msg = _packet_store().deserialize_cdr(data, EVENTS_TYPE)
    except SerdeError as exc:
        raise ValueError(f'not a serialized EventPacket ({len(data)} bytes): {exc}') from None
    events = msg.events
    if not isinstance(events, np.ndarray):  # bytes-like, as some rosbags versions give
        events = np.frombuffer(events, np.uint8)
    fields = PacketFields(data=events, encoding=msg.encoding, width=msg.width,
                          height=msg.height, seq=msg.seq, time_base=msg.time_base,
                          is_bigendian=msg.is_bigendian)
    stamp = msg.header.stamp
    return fields, PacketHeader(stamp.sec, stamp.nanosec, msg.header.frame_id)


def header_msg(header):
    """Return ``header`` as a ``std_msgs/Header`` (a :class:`PacketHeader`, or a Header)."""
    if not isinstance(header, PacketHeader):
        return header
    from builtin_interfaces.msg import Time
    from std_msgs.msg import Header
    return Header(stamp=Time(sec=header.sec, nanosec=header.nanosec),
                  frame_id=header.frame_id)


def encoded_to_fields(packet: 'EncodedPacket') -> PacketFields:
    """Return the fields of an encoder's packet (little-endian words, as encoders write)."""
    return PacketFields(data=packet.data, encoding=packet.encoding, width=packet.width,
                        height=packet.height, seq=packet.seq, time_base=packet.time_base,
                        is_bigendian=False)


def fields_to_packet(fields: PacketFields, *, stamp_ns: int, frame_id: str, msg_type=None):
    """
    Return an EventPacket of ``fields`` stamped ``stamp_ns`` (ns) in ``frame_id``.

    ``msg_type``: the EventPacket class (default :func:`event_packet_type`). The ``events``
    bytes are copied once into the ``array('B')`` a ``uint8[]`` field stores (no per-byte
    loop).
    """
    msg = (msg_type if msg_type is not None else event_packet_type())()
    msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(int(stamp_ns), 1_000_000_000)
    msg.header.frame_id = frame_id
    msg.width, msg.height = fields['width'], fields['height']
    msg.seq = fields['seq']
    msg.time_base = fields['time_base']
    msg.encoding = fields['encoding']
    msg.is_bigendian = bool(fields['is_bigendian'])
    msg.events = array.array('B', fields['data'])
    return msg
