"""
Messages read from their serialized (CDR) bytes, as a raw subscription hands them over.

rclpy builds a Python message for every message it takes, which for large ones costs more
than the reading a node does with them (the 80 kB event packets of a 20 Mev/s camera, VGA
frames). The classifier's reader thread therefore takes them serialized
(:class:`~topspark_ros.nodes.intake.SubscriptionReader` with ``raw=True``) and reads their
fields here with ``rosbags``; byte and ``uint8[]`` fields come back as read-only views of the
bytes, not copies.

* :func:`cdr_reader`: the parser of one type, made once from a typestore of the few types a
  node reads live (:func:`~topspark_ros.core.data.bag.live_typestore`: milliseconds, where
  Jazzy's whole typestore takes over a second);
* :func:`reads_like`: whether an installed message class has the fields read here (another
  version of a message package: take messages instead);
* :class:`CdrHeader`: a header read so, which :func:`header_msg` turns into a
  ``std_msgs/Header`` when a result is published (:func:`cdr_header`: the other way).
"""

import functools
from typing import Callable, NamedTuple


class CdrHeader(NamedTuple):
    """The header of a message read from its serialized bytes."""

    sec: int
    nanosec: int
    frame_id: str

    @classmethod
    def of(cls, header) -> 'CdrHeader':
        """Return the :class:`CdrHeader` of a header ``rosbags`` read."""
        return cls(header.stamp.sec, header.stamp.nanosec, header.frame_id)


def cdr_header(header) -> CdrHeader:
    """Return ``header`` as a :class:`CdrHeader` (from a ``std_msgs/Header``, or itself)."""
    return header if isinstance(header, CdrHeader) else CdrHeader.of(header)


def header_msg(header):
    """Return ``header`` as a ``std_msgs/Header`` (a :class:`CdrHeader`, or a Header)."""
    if not isinstance(header, CdrHeader):
        return header
    from builtin_interfaces.msg import Time
    from std_msgs.msg import Header
    return Header(stamp=Time(sec=header.sec, nanosec=header.nanosec),
                  frame_id=header.frame_id)


class CdrReader(NamedTuple):
    """The parser of one message type (:func:`cdr_reader`)."""

    deserialize: Callable  # rosbags Typestore.deserialize_cdr
    msgtype: str
    errors: tuple  # what it raises on bytes that are not such a message

    def read(self, data: bytes, what: str):
        """
        Return the message serialized in ``data`` (a ``rosbags`` message object).

        Raises ValueError naming ``what`` for bytes that do not hold one.
        """
        try:
            return self.deserialize(memoryview(data), self.msgtype)
        except self.errors as exc:
            raise ValueError(f'not a serialized {what} ({len(data)} bytes): '
                             f'{type(exc).__name__}: {exc}') from None


@functools.lru_cache(maxsize=None)
def cdr_reader(msgtype: str) -> CdrReader:
    """Return the reader of ``msgtype`` (e.g. ``sensor_msgs/msg/Image``; made once)."""
    import struct

    from rosbags.serde import SerdeError

    from topspark_ros.core.data.bag import live_typestore
    # rosbags 0.11.9 raises SerdeError; older ones let the parser's errors out.
    errors = (SerdeError, ValueError, TypeError, IndexError, OverflowError, struct.error,
              AssertionError)
    return CdrReader(live_typestore().deserialize_cdr, msgtype, errors)


def _spelled(desc) -> str:
    """Return a ``rosbags`` field type as rosidl spells it (``sequence<uint8>``, ...)."""
    from rosbags.interfaces import Nodetype
    kind, rest = desc
    if kind == Nodetype.BASE:
        return {'bool': 'boolean'}.get(rest[0], rest[0])
    if kind == Nodetype.NAME:
        return rest.replace('/msg/', '/')
    if kind == Nodetype.SEQUENCE:
        return f'sequence<{_spelled(rest[0])}>'
    return repr(desc)


def reads_like(msg_class, msgtype: str) -> bool:
    """
    Say whether the installed ``msg_class`` has the fields :func:`cdr_reader` reads.

    Field names and types, in order, as ``msg_class.get_fields_and_field_types()`` gives
    them, against the definition of ``msgtype`` in the live typestore.
    """
    from topspark_ros.core.data.bag import live_typestore
    _, fields = live_typestore().fielddefs[msgtype]
    return list(msg_class.get_fields_and_field_types().items()) == \
        [(name, _spelled(desc)) for name, desc in fields]
