"""
Subscription QoS from parameters, and a warning when a publisher cannot match.

DDS silently drops the connection between a publisher and a subscription whose QoS policies
are incompatible (a reliable subscription and a best-effort publisher, the usual case with
camera and battery drivers): no message arrives and nothing says why. The callbacks of
:func:`warn_on_incompatible_qos` log it, naming the policy and the parameter to change.
"""

import time
from typing import Callable, Optional

from rclpy.event_handler import QoSRequestedIncompatibleQoSInfo, SubscriptionEventCallbacks
from rclpy.qos import QoSPolicyKind, ReliabilityPolicy

from topspark_ros.core.counters import Reasons

RELIABILITIES = ('best_effort', 'reliable')
QOS_WARNING_PERIOD_S = 5.0
"""A subscription's incompatible-QoS warning is logged at most this often (s)."""


def reliability(name: str) -> ReliabilityPolicy:
    """
    Return the policy of a reliability parameter value (one of :data:`RELIABILITIES`).

    A ``best_effort`` subscription matches reliable and best-effort publishers; a ``reliable``
    one only reliable publishers.
    """
    return ReliabilityPolicy.BEST_EFFORT if name == 'best_effort' else ReliabilityPolicy.RELIABLE


def warn_on_incompatible_qos(node, topic: str, hint: str,
                             on_event: Optional[Callable[[str], None]] = None
                             ) -> SubscriptionEventCallbacks:
    """
    Return event callbacks that warn when a publisher of ``topic`` cannot match.

    The warning names the incompatible policy and adds ``hint`` (what to change), at most
    once every :data:`QOS_WARNING_PERIOD_S` for this subscription: rclpy's own throttle is per
    call site, shared by all of a node's subscriptions, and one topic's warning hid another's
    (a review). ``on_event(policy_name)`` is called on every event, e.g. to count it.
    """
    said = Reasons(QOS_WARNING_PERIOD_S)

    def incompatible(info: QoSRequestedIncompatibleQoSInfo) -> None:
        try:
            policy = QoSPolicyKind(info.last_policy_kind).name
        except ValueError:
            policy = str(info.last_policy_kind)
        if said.due(topic, time.monotonic()):
            node.get_logger().warn(
                f'{topic}: a publisher with incompatible QoS ({policy}) is ignored, its '
                f'messages are not received ({info.total_count} so far): {hint}')
        if on_event is not None:
            on_event(policy)

    return SubscriptionEventCallbacks(incompatible_qos=incompatible)


def bag_qos(profile):
    """
    Return rclpy's QoS ``profile`` as rosbags' ``Qos``: a bag topic's offered QoS.

    ``ros2 bag play`` offers a topic's messages with the QoS recorded for it: recorded
    without, a latched topic (``label_info``, ``timestep``) was replayed volatile, and a
    consumer that started after its one message never got it (a review). The policies'
    values are rmw's in both.
    """
    from rosbags.interfaces import (Qos, QosDurability, QosHistory, QosLiveliness,
                                    QosReliability, QosTime)

    def time(duration) -> 'QosTime':
        sec, nsec = divmod(int(duration.nanoseconds), 1_000_000_000)
        return QosTime(sec=sec, nsec=nsec)
    return Qos(history=QosHistory(int(profile.history)), depth=int(profile.depth),
               reliability=QosReliability(int(profile.reliability)),
               durability=QosDurability(int(profile.durability)),
               deadline=time(profile.deadline), lifespan=time(profile.lifespan),
               liveliness=QosLiveliness(int(profile.liveliness)),
               liveliness_lease_duration=time(profile.liveliness_lease_duration),
               avoid_ros_namespace_conventions=bool(profile.avoid_ros_namespace_conventions))
