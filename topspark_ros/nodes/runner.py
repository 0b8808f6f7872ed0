"""
Run nodes in one process on a multi-threaded executor, optionally driving their lifecycles.

The ``ros2 run`` executables and ``topspark bringup`` use :func:`run_nodes`. With
``autostart``, every lifecycle node is configured and activated in-process (what the launch
file does through launch events on a robot); on exit (Ctrl-C, SIGTERM) each lifecycle node is
shut down through its transition, so learnt weights are saved.
"""

import argparse
import contextlib
import signal
import sys
from typing import Callable, Optional, Sequence

import rclpy
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor
from rclpy.lifecycle import LifecycleNode, TransitionCallbackReturn
from rclpy.signals import SignalHandlerOptions


def bring_up(node: LifecycleNode) -> None:
    """Configure and activate ``node`` in-process; raise RuntimeError if either fails."""
    for name in ('configure', 'activate'):
        result = getattr(node, f'trigger_{name}')()
        if result != TransitionCallbackReturn.SUCCESS:
            raise RuntimeError(f'{node.get_name()}: {name} failed ({result.name})')


@contextlib.contextmanager
def node_group(factories: Sequence[Callable], *, autostart: bool, threads: int = 4):
    """
    Create nodes on a multi-threaded executor; yield ``(executor, nodes)``; tear them down.

    Each factory is called with the nodes created before it (a list), so a node can refer
    to an earlier one.

    ``rclpy`` must be initialised. With ``autostart`` lifecycle nodes are configured and
    activated; on exit each lifecycle node runs its shutdown transition (which saves learnt
    weights), then every node is destroyed.
    """
    nodes = []
    executor = MultiThreadedExecutor(num_threads=threads)
    try:
        for factory in factories:
            nodes.append(factory() if isinstance(factory, type) else factory(list(nodes)))
            executor.add_node(nodes[-1])
        if autostart:
            for node in nodes:
                if isinstance(node, LifecycleNode):
                    bring_up(node)
        yield executor, nodes
    finally:
        for node in nodes:
            if isinstance(node, LifecycleNode):
                try:
                    node.trigger_shutdown()
                except Exception:  # a node already finalised, or mid-transition
                    pass
        executor.shutdown()
        for node in nodes:
            node.destroy_node()


def init(argv: Sequence[str]) -> None:
    """
    Initialise rclpy with ``argv`` and our signal handling.

    SIGINT and SIGTERM raise KeyboardInterrupt in the main thread, ending ``spin()`` while the
    context is still valid, so lifecycle nodes can still run their shutdown transition.
    """
    rclpy.init(args=list(argv), signal_handler_options=SignalHandlerOptions.NO)
    signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)


def run_nodes(factories: Sequence[Callable], args: Optional[list] = None, *,
              autostart: Optional[bool] = None, threads: int = 4) -> int:
    """
    Create the nodes (``factories`` are called with no argument) and spin until stopped.

    ``args`` are the process arguments (``sys.argv`` by default), ROS arguments included;
    ``--autostart`` among them (or ``autostart=True``) brings lifecycle nodes up at once.
    Returns the exit status.
    """
    argv = list(sys.argv if args is None else args)
    init(argv)
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument('--autostart', action='store_true')
    own, _ = parser.parse_known_args(rclpy.utilities.remove_ros_args(argv)[1:])
    autostart = own.autostart if autostart is None else autostart
    try:
        with node_group(factories, autostart=autostart, threads=threads) as (executor, _):
            # Wake at least every 0.25 s: Python runs signal handlers only between waits, so
            # a node with nothing to do (no timer yet) must not block SIGTERM indefinitely.
            while executor.context.ok():
                executor.spin_once(timeout_sec=0.25)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except RuntimeError as exc:
        print(f'error: {exc}', file=sys.stderr)
        return 1
    finally:
        rclpy.try_shutdown()
    return 0


def _raise_keyboard_interrupt(signum, frame) -> None:
    raise KeyboardInterrupt
