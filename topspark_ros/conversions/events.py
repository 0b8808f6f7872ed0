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
* :func:`encoded_to_fields`: an encoder's packet -> :class:`PacketFields`;
* :func:`fields_to_packet`: :class:`PacketFields`, a stamp and a frame -> an EventPacket.

event_camera_msgs is imported on first use (:func:`event_packet_type`): the package works
without it where nothing asks for events.
"""

import array
from typing import TYPE_CHECKING, TypedDict

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
