"""
Relay every topspark_ros message type from ``in/<type>`` to ``out/<type>``.

A separate process for the message round-trip tests: a message published by the test goes over
DDS to this process and comes back over DDS, unchanged. Prints ``ready`` once its publishers and
subscriptions exist, and exits cleanly on SIGTERM or SIGINT.
"""

import faulthandler
import signal
import sys

import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy
from topspark_ros.msg import Classification, EnergyEstimate, TimestepCommand

MESSAGE_TYPES = (Classification, EnergyEstimate, TimestepCommand)


def main() -> int:
    """Run the relay until it is stopped."""
    faulthandler.register(signal.SIGUSR1, all_threads=True)  # stacks, if it hangs at exit
    rclpy.init()
    node = Node('topspark_test_relay')
    qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
    keep = []
    for msg_type in MESSAGE_TYPES:
        name = msg_type.__name__
        pub = node.create_publisher(msg_type, f'out/{name}', qos)
        keep.append(node.create_subscription(msg_type, f'in/{name}', pub.publish, qos))
    print('ready', flush=True)
    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == '__main__':
    sys.exit(main())
