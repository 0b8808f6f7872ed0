"""
Check that this installation works end to end on this host, and say what is wrong if not.

``ros2 run topspark_ros doctor`` (or ``python -m topspark_ros.nodes.doctor``) checks, in order:
the Python libraries the core needs (numpy, torch, numba, safetensors, Pillow, PyYAML), rclpy
and the RMW implementation, the generated ``topspark_ros.msg`` types, that the shipped model
loads and classifies a frame, the message packages some features import (vision_msgs for
``publish_vision_msgs``, event_camera_msgs for event input: a warning, not a failure, where
one is missing), then a real DDS round trip of every topspark_ros message type
between this process and a child process it starts (``--echo``), with the round-trip time.
It prints one line per check and exits non-zero if any failed.
"""

import argparse
import importlib
import os
import subprocess
import sys
import time
from typing import Callable

MESSAGE_NAMES = ('Classification', 'TimestepCommand', 'EnergyEstimate')
ECHO_NODE_NAME = 'topspark_doctor_echo'


def _echo(topic_prefix: str) -> int:
    """Relay ``<prefix>/ping/<Type>`` to ``<prefix>/pong/<Type>`` until stopped."""
    import rclpy
    from rclpy.executors import ExternalShutdownException
    from rclpy.node import Node
    import topspark_ros.msg as msgs

    rclpy.init()
    node = Node(ECHO_NODE_NAME)
    keep = []
    for name in MESSAGE_NAMES:
        msg_type = getattr(msgs, name)
        pub = node.create_publisher(msg_type, f'{topic_prefix}/pong/{name}', 10)
        keep.append(node.create_subscription(
            msg_type, f'{topic_prefix}/ping/{name}', pub.publish, 10))
    print('ready', flush=True)
    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


def _check_import(module: str) -> str:
    mod = importlib.import_module(module)
    return getattr(mod, '__version__', 'ok')


def _check_rclpy() -> str:
    # In a child process: rcl ends the whole process (exit 102) on some setup errors, such as
    # an RMW implementation that is not installed, and the doctor must live to report them.
    probe = ('import rclpy\n'
             'from rclpy.utilities import get_rmw_implementation_identifier as rmw\n'
             'print(rmw())')
    result = subprocess.run([sys.executable, '-c', probe], capture_output=True, text=True,
                            timeout=60)
    if result.returncode != 0:
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        raise RuntimeError(f'exit code {result.returncode}: ' + (lines[-1] if lines else ''))
    domain = os.environ.get('ROS_DOMAIN_ID', '0')
    scope = os.environ.get('ROS_AUTOMATIC_DISCOVERY_RANGE', 'SUBNET (default)')
    return f'{result.stdout.strip()}, domain {domain}, discovery {scope}'


def _check_message_package(module: str, names: tuple) -> str:
    mod = importlib.import_module(module)
    for name in names:
        getattr(mod, name)
    return ', '.join(names)


def _check_model() -> str:
    import numpy as np

    from topspark_ros.core.checkpoint import load_checkpoint
    from topspark_ros.nodes.resources import resolve, SHIPPED_MODEL
    path = resolve(SHIPPED_MODEL)
    model, _ = load_checkpoint(path)
    start = time.monotonic()
    model.infer(np.zeros((1,) + model.input_spec.shape, np.uint8), timesteps=8, seed=0)
    return f'{path}: one frame at T=8 in {(time.monotonic() - start) * 1e3:.0f} ms'


def _check_messages() -> str:
    import topspark_ros.msg as msgs
    counts = [f'{name} ({len(getattr(msgs, name).get_fields_and_field_types())} fields)'
              for name in MESSAGE_NAMES]
    return ', '.join(counts)


def _round_trip(timeout_s: float) -> list[tuple[str, bool, str]]:
    """Send each message type to a child process and back; return (check, ok, detail) rows."""
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.node import Node
    import topspark_ros.msg as msgs

    prefix = f'topspark_doctor_{os.getpid()}'
    child = subprocess.Popen(
        [sys.executable, '-m', 'topspark_ros.nodes.doctor', '--echo', prefix],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    rows = []
    context = rclpy.Context()
    try:
        if child.stdout.readline().strip() != 'ready':
            child.kill()
            return [('echo process', False, child.communicate()[1].strip()[-300:])]
        rows.append(('echo process', True, f'pid {child.pid}'))
        rclpy.init(context=context)
        node = Node('topspark_doctor', context=context)
        executor = SingleThreadedExecutor(context=context)
        executor.add_node(node)
        for name in MESSAGE_NAMES:
            msg_type = getattr(msgs, name)
            got = []
            pub = node.create_publisher(msg_type, f'{prefix}/ping/{name}', 10)
            node.create_subscription(msg_type, f'{prefix}/pong/{name}', got.append, 10)
            sent = msg_type()
            sent.header.frame_id = f'doctor-{name}'
            start = time.monotonic()
            while not got and time.monotonic() - start < timeout_s:
                sent.header.stamp = node.get_clock().now().to_msg()
                pub.publish(sent)
                executor.spin_once(timeout_sec=0.05)
            if got and got[-1].header.frame_id == sent.header.frame_id:
                rows.append((f'round trip {name}', True,
                             f'{(time.monotonic() - start) * 1e3:.0f} ms incl. discovery'))
            else:
                rows.append((f'round trip {name}', False, f'nothing back in {timeout_s:.0f} s'))
        node.destroy_node()
    finally:
        child.terminate()
        try:
            child.wait(timeout=5)
        except subprocess.TimeoutExpired:
            child.kill()
        rclpy.try_shutdown(context=context)
    return rows


def run_checks(timeout_s: float = 10.0, out: Callable[[str], None] = print) -> bool:
    """Run every check, print one line each, and return True when all passed."""
    checks = [
        ('numpy', lambda: _check_import('numpy')),
        ('torch', lambda: _check_import('torch')),
        ('numba', lambda: _check_import('numba')),
        ('safetensors', lambda: _check_import('safetensors')),
        ('Pillow', lambda: _check_import('PIL')),
        ('PyYAML', lambda: _check_import('yaml')),
        ('rclpy', _check_rclpy),
        ('messages', _check_messages),
        ('shipped model', _check_model),
    ]
    optional = [  # (name, check, what needs it): a warning where missing
        ('vision_msgs', lambda: _check_message_package(
            'vision_msgs.msg', ('Classification', 'LabelInfo', 'VisionInfo')),
         'publish_vision_msgs (default true; set it false without vision_msgs)'),
        ('event_camera_msgs', lambda: _check_message_package(
            'event_camera_msgs.msg', ('EventPacket',)), 'input_mode events'),
    ]
    ok_all = True
    for name, check, needed_by in [(n, c, None) for n, c in checks] + optional:
        try:
            detail, ok = check(), True
        except Exception as exc:  # a doctor reports every failure instead of stopping
            detail, ok = f'{type(exc).__name__}: {exc}', False
        if not ok and needed_by:
            out(f'[warn] {name:<28} {detail} (needed by {needed_by})')
            continue
        ok_all &= ok
        out(f'[{"ok" if ok else "FAIL":>4}] {name:<28} {detail}')
    if not ok_all:
        out('Skipping the DDS round trip: fix the failures above first.')
        return False
    for name, ok, detail in _round_trip(timeout_s):
        ok_all &= ok
        out(f'[{"ok" if ok else "FAIL":>4}] {name:<28} {detail}')
    out('All checks passed.' if ok_all else 'Some checks FAILED.')
    return ok_all


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(prog='topspark doctor',
                                     description=__doc__.strip().splitlines()[0])
    parser.add_argument('--timeout-s', type=float, default=10.0,
                        help='how long to wait for each message to come back (default 10 s)')
    parser.add_argument('--echo', metavar='PREFIX', help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.echo:
        return _echo(args.echo)
    return 0 if run_checks(args.timeout_s) else 1


if __name__ == '__main__':
    sys.exit(main())
