"""
Run nodes in one process on an executor, optionally driving their lifecycles.

The ``ros2 run`` executables and ``topspark bringup`` use :func:`run_nodes`. With
``autostart``, every lifecycle node is configured and activated in-process (what the launch
file does through launch events on a robot); on exit (Ctrl-C, SIGTERM) each lifecycle node is
shut down through its transition, so learnt weights are saved.

Executors (``--executor`` on the command line, ``executor=`` here):

``multi`` (default)
    rclpy's ``MultiThreadedExecutor`` with 4 threads: a frame being classified does not hold
    up parameter, lifecycle and command callbacks, and frames arriving meanwhile are counted
    as dropped by the classifier.
``single``
    rclpy's ``SingleThreadedExecutor``: callbacks run one after another in the main thread.
    Frames arriving during a classification wait in their subscription's queue (depth 1: only
    the newest is kept, by the middleware, uncounted).
``events``
    rclpy's experimental C++ ``EventsExecutor`` (single-threaded, least per-callback cost).
"""

import argparse
import contextlib
import signal
import sys
from typing import Callable, Optional, Sequence

import rclpy
from rclpy.executors import (ExternalShutdownException, MultiThreadedExecutor,
                             SingleThreadedExecutor)
from rclpy.lifecycle import LifecycleNode, TransitionCallbackReturn
from rclpy.signals import SignalHandlerOptions


def bring_up(node: LifecycleNode) -> None:
    """Configure and activate ``node`` in-process; raise RuntimeError if either fails."""
    for name in ('configure', 'activate'):
        result = getattr(node, f'trigger_{name}')()
        if result != TransitionCallbackReturn.SUCCESS:
            raise RuntimeError(f'{node.get_name()}: {name} failed ({result.name})')


EXECUTORS = ('multi', 'single', 'events')
"""Executor kinds of :func:`make_executor` (see the module docstring)."""


def make_executor(kind: str = 'multi', threads: int = 4, context=None):
    """Return a new executor of ``kind`` (one of :data:`EXECUTORS`) on ``context``."""
    if kind == 'multi':
        return MultiThreadedExecutor(num_threads=threads, context=context)
    if kind == 'single':
        return SingleThreadedExecutor(context=context)
    if kind == 'events':
        from rclpy.experimental import EventsExecutor
        return EventsExecutor(context=context)
    raise ValueError(f'unknown executor {kind!r}; expected one of {", ".join(EXECUTORS)}')


@contextlib.contextmanager
def node_group(factories: Sequence[Callable], *, autostart: bool, threads: int = 4,
               executor: str = 'multi'):
    """
    Create nodes on an executor; yield ``(executor, nodes)``; tear them down.

    Each factory is called with the nodes created before it (a list), so a node can refer
    to an earlier one.

    ``rclpy`` must be initialised. With ``autostart`` lifecycle nodes are configured and
    activated; on exit each lifecycle node runs its shutdown transition (which saves learnt
    weights), then every node is destroyed.
    """
    nodes = []
    executor = make_executor(executor, threads)
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
              autostart: Optional[bool] = None, threads: int = 4,
              executor: Optional[str] = None) -> int:
    """
    Create the nodes (``factories`` are called with no argument) and spin until stopped.

    ``args`` are the process arguments (``sys.argv`` by default), ROS arguments included;
    ``--autostart`` among them (or ``autostart=True``) brings lifecycle nodes up at once;
    ``--executor KIND`` (or ``executor=``) picks the executor (default ``multi``).
    Returns the exit status.
    """
    argv = list(sys.argv if args is None else args)
    init(argv)
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument('--autostart', action='store_true')
    parser.add_argument('--executor', choices=EXECUTORS, default='multi')
    own, _ = parser.parse_known_args(rclpy.utilities.remove_ros_args(argv)[1:])
    autostart = own.autostart if autostart is None else autostart
    kind = own.executor if executor is None else executor
    try:
        with node_group(factories, autostart=autostart, threads=threads,
                        executor=kind) as (executor, _):
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
