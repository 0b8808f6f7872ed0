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
  :class:`PacketFields` and a :class:`PacketHeader`, which
  :func:`~topspark_ros.conversions.cdr.header_msg` turns into a ``std_msgs/Header`` when a
  result is published (:mod:`topspark_ros.conversions.cdr`);
* :func:`encoded_to_fields`: an encoder's packet -> :class:`PacketFields`;
* :func:`fields_to_packet`: :class:`PacketFields`, a stamp and a frame -> an EventPacket.

event_camera_msgs is imported on first use (:func:`event_packet_type`): the package works
without it where nothing asks for events.
"""

import array
from typing import Tuple, TYPE_CHECKING, TypedDict

import numpy as np

from topspark_ros.conversions.cdr import cdr_reader, CdrHeader, reads_like

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


PacketHeader = CdrHeader
"""The header of a packet read from its serialized bytes (:func:`cdr_to_packet`)."""


def prepare_cdr_reading(msg_type=None) -> bool:
    """
    Make :func:`cdr_to_packet` ready, and say whether it reads ``msg_type``'s packets.

    The first call otherwise spends milliseconds building its reader, a pause a reader thread
    at 1 000 packets per second should not take with its first packet (the classifier calls
    this when it configures). False when ``msg_type`` (default :func:`event_packet_type`),
    the EventPacket installed, has other fields than the definition read here (another
    version of event_camera_msgs): then take messages, not their bytes.
    """
    from topspark_ros.core.data.bag import EVENTS_TYPE
    msg_type = event_packet_type() if msg_type is None else msg_type
    if not reads_like(msg_type, EVENTS_TYPE):
        return False
    from rclpy.serialization import serialize_message
    cdr_to_packet(serialize_message(msg_type()))  # builds the rosbags parser
    return True


def cdr_to_packet(data: bytes) -> Tuple[PacketFields, PacketHeader]:
    """
    Return the fields and the header of the EventPacket serialized (CDR) in ``data``.

    What a subscription taken raw hands over (``SubscriptionReader(raw=True)``): rclpy then
    builds no Python message, which for the 80 kB packets of a 20 Mev/s camera cost more than
    reading the bytes here (``rosbags``, about 5 us). ``data`` of the fields is a read-only
    ``uint8`` array over ``data``, not a copy (a copy for big-endian CDR, which is swapped).
    Raises ValueError for bytes that do not hold an EventPacket.
    """
    from topspark_ros.core.data.bag import EVENTS_TYPE
    msg = cdr_reader(EVENTS_TYPE).read(data, 'EventPacket')
    events = msg.events
    if not isinstance(events, np.ndarray):  # bytes-like, as some rosbags versions give
        events = np.frombuffer(events, np.uint8)
    fields = PacketFields(data=events, encoding=msg.encoding, width=msg.width,
                          height=msg.height, seq=msg.seq, time_base=msg.time_base,
                          is_bigendian=msg.is_bigendian)
    return fields, CdrHeader.of(msg.header)


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
