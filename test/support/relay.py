"""
Relay every topspark_ros message type from ``in/<type>`` to ``out/<type>``.

A separate process for the message round-trip tests: a message published by the test goes over
DDS to this process and comes back over DDS, unchanged. Prints ``ready`` once its publishers and
subscriptions exist, and exits cleanly on SIGTERM or SIGINT.

The signals are its own, not rclpy's: a handler notes them and the spin loop, which wakes every
0.1 s, stops. With rclpy's handlers it spun on in ``_wait_for_ready_callbacks`` after SIGTERM in
a few full runs, until killed.
"""

import faulthandler
import signal
import sys

import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy
from rclpy.signals import SignalHandlerOptions
from topspark_ros.msg import Classification, EnergyEstimate, TimestepCommand

MESSAGE_TYPES = (Classification, EnergyEstimate, TimestepCommand)


def main() -> int:
    """Run the relay until it is stopped."""
    faulthandler.register(signal.SIGUSR1, all_threads=True)  # stacks, if it hangs at exit
    stop = []
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda received, frame: stop.append(received))
    rclpy.init(signal_handler_options=SignalHandlerOptions.NO)
    node = Node('topspark_test_relay')
    qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
    keep = []
    for msg_type in MESSAGE_TYPES:
        name = msg_type.__name__
        pub = node.create_publisher(msg_type, f'out/{name}', qos)
        keep.append(node.create_subscription(msg_type, f'in/{name}', pub.publish, qos))
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    print('ready', flush=True)
    try:
        while not stop:
            executor.spin_once(timeout_sec=0.1)
    finally:
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == '__main__':
    sys.exit(main())
