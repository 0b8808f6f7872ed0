"""The executors the nodes run on (nodes/runner.py): messages at a camera's rate, no spinning."""

import subprocess
import sys

import pytest

SCRIPT = """
import os, sys, threading, time
import rclpy
from std_msgs.msg import String
from topspark_ros.nodes.runner import make_executor
rclpy.init()
node = rclpy.create_node('hears')
heard = []
node.create_subscription(String, 'chatter', lambda m: heard.append(1), 10)
talker = rclpy.create_node('talks')
publisher = talker.create_publisher(String, 'chatter', 10)
executor = make_executor(sys.argv[1])
executor.add_node(node)
passes = [0]
def spin():
    while True:
        executor.spin_once(timeout_sec=30.0)
        passes[0] += 1
threading.Thread(target=spin, daemon=True).start()
def busy():  # another Python thread at work, as in a node: the GIL is contended
    while True:
        sum(range(1000))
threading.Thread(target=busy, daemon=True).start()
time.sleep(0.5)  # discovery
sent, cpu, end = 0, time.process_time(), time.monotonic() + 3.0
while time.monotonic() < end:
    publisher.publish(String(data='x'))
    sent += 1
    time.sleep(1 / 30)
time.sleep(0.5)
print(sent, len(heard), passes[0], round(100 * (time.process_time() - cpu) / 3.5, 1))
os._exit(0)
"""


@pytest.mark.parametrize('kind', ['multi', 'single'])
def test_messages_at_30_hz_are_heard_without_the_executor_spinning(kind) -> None:
    """
    The multi-threaded executor of rclpy 7.1 spun between a task handed to its pool and its start.

    Its next wait yielded the task again, at once, until a pool thread began it; the main
    thread held the GIL meanwhile: a node hearing 30 messages a second took 97 % of a core and
    a publisher in its process sent 14 of 150 messages in 5 s (the controller and the monitor
    on ``multi``). Now the main thread passes about once per message.
    """
    out = subprocess.run([sys.executable, '-c', SCRIPT, kind], capture_output=True, text=True,
                         timeout=120)  # (this run's ROS_DOMAIN_ID: conftest.py)
    sent, heard, passes, cpu = out.stdout.split()
    assert int(sent) >= 60, out.stdout  # the publisher was not starved (about 90 in 3 s)
    assert int(heard) >= int(sent) - 2, out.stdout  # (the last may be on the way)
    assert int(passes) <= 5 * int(heard) + 10, out.stdout
