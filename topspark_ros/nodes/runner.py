"""
Run nodes in one process on an executor, optionally driving their lifecycles.

The ``ros2 run`` executables and ``topspark bringup`` use :func:`run_nodes`. With
``autostart``, every lifecycle node is configured and activated in-process (what the launch
file does through launch events on a robot); on exit (Ctrl-C, SIGTERM) each lifecycle node is
shut down through its transition, so learnt weights are saved.

Executors (``--executor`` on the command line, ``executor=`` here):

``multi`` (default)
    rclpy's ``MultiThreadedExecutor`` with 4 threads: a long callback (a parameter change, a
    model save) does not hold up the others.
``single``
    rclpy's ``SingleThreadedExecutor``: callbacks run one after another in the main thread.
``events``
    rclpy's experimental C++ ``EventsExecutor`` (single-threaded, least per-callback cost;
    it cannot wait on guard conditions, so no node of ours creates one).

The classifier's input does not go through the executor: its frames or event packets are
read by a thread of their own and classified in another
(:mod:`topspark_ros.nodes.intake`), so it takes 1 ms event packets at 1 000 per second, and
drops and counts frames that find the model busy, the same way on every executor.

Stopping (SIGINT, SIGTERM) is noted and acted on between steps, never raised in the middle of
one (:func:`stop_at_checks`): while nodes are created, brought up and spun, the first signal
ends the process at the next check, a callback or transition in progress finishing first.

A process keeps running whatever its callbacks do: an exception raised by a callback of one
node (a subscription, timer or service callback) is logged through that node's logger (so it
reaches ``/rosout`` and the log files) with its traceback, and spinning goes on. Fatal errors
are logged through the ROS logger too, and the process exits with status 1: an
``--autostart`` configure or activate that fails through that node's logger, a node that cannot
be created through :data:`PROCESS_LOGGER` (console and log file; no node, no ``/rosout``).

The Python executors (``multi``, ``single``) also survive a race of rclpy 7.1 (rclpy#1142):
a transition running in a worker thread (``on_cleanup``, ``on_deactivate``) that destroys a
subscription while the executor's thread builds its wait set makes
``EventHandler.add_to_wait_set`` (the subscription's QoS event handler) raise ``InvalidHandle:
cannot use Destroyable because destruction was requested`` out of ``spin_once``; about one
configure/cleanup cycle in a hundred ended the process that way. Our executors build the wait
set again, which no longer holds the destroyed entity.
"""

import argparse
import contextlib
import math
import os
import re
import signal
import sys
import threading
import time
import traceback
from typing import Callable, Optional, Sequence, Tuple

import rclpy
from rclpy.exceptions import InvalidHandle
from rclpy.executors import (ConditionReachedException, ExternalShutdownException,
                             MultiThreadedExecutor, ShutdownException, SingleThreadedExecutor,
                             TimeoutException)
from rclpy.impl.implementation_singleton import rclpy_implementation as _rclpy
from rclpy.lifecycle import LifecycleNode, TransitionCallbackReturn
from rclpy.logging import get_logger
from rclpy.signals import SignalHandlerOptions

from topspark_ros.core.signals import handle_unless_ignored, STOP_SIGNALS
from topspark_ros.nodes.parameters import (layered_value_misses, params_file_misses,
                                           undeclared_overrides)

PROCESS_LOGGER = 'topspark_ros'
"""Logger of what no node of the process can say (a node that could not be created)."""
STOP_WAIT_S = 5.0
"""Longest wait for the callbacks in progress when an executor stops (s), see stop_executor."""
ACK_WAIT_S = 5.0
"""Longest wait of a finished player for its reliable subscribers' acknowledgements (s)."""
MATCH_SETTLE_S = 0.5
"""
How long a player that waits for subscribers waits more once they are matched (s).

A publisher counts a subscription as matched as soon as its own side of the discovery is done;
the subscriber's side can finish later, and a volatile reader drops what a writer it does not
know yet sends: the first messages of a clean clone's CI run were lost that way.
"""


DISCOVERY_S = (0.5, 2.0)
"""A player that waits for no subscriber (``wait_for_subscribers`` 0) starts at least the first
(s) after it was made, once one subscription or more and every one the graph knows on its
topics are matched (and :data:`MATCH_SETTLE_S` more), at most the second: a recorder or
classifier that ran before the player lost the first 280 ms of an event stream while discovery
matched them (a review of record and replay), and a recorder started before the event player
(``topspark record`` subscribes once it sees the publisher's type) got 0 to 219 of 266
packets, saying none was lost (a review of the players)."""


class SubscriberWait:
    """
    Whether a player that waits for ``count`` matched subscriptions may start.

    :meth:`ready` is true once ``count`` or more have been matched for :data:`MATCH_SETTLE_S`
    without interruption; with ``count`` 0, once the subscriptions the graph knows, one at
    least, are so, or at the latest :data:`DISCOVERY_S` after it was made.
    """

    def __init__(self, count: int, settle_s: float = MATCH_SETTLE_S,
                 discovery_s: tuple = DISCOVERY_S) -> None:
        """Wait for ``count`` subscriptions, then ``settle_s`` seconds more."""
        self.count = int(count)
        self.settle_s = float(settle_s)
        self.discovery_s = discovery_s
        self._made = time.monotonic()
        self._since: Optional[float] = None

    def ready(self, matched: int, known: Callable[[], int] = lambda: 0) -> bool:
        """
        Return whether to start, given the subscriptions ``matched`` now.

        ``known()``: the subscriptions the graph knows on the player's topics (asked only
        while a player that waits for none waits for discovery).
        """
        now = time.monotonic()
        wanted = self.count
        if wanted <= 0:
            waited_s = now - self._made
            if waited_s >= self.discovery_s[1]:
                return True
            wanted = max(known(), 1) if waited_s >= self.discovery_s[0] else math.inf
        if matched < wanted:
            self._since = None
            return False
        if self._since is None:
            self._since = now
        return now - self._since >= self.settle_s


class BringUpError(RuntimeError):
    """A lifecycle node failed to configure or activate in :func:`bring_up` (already logged)."""


def bring_up(node: LifecycleNode) -> None:
    """
    Configure and activate ``node`` in-process; log and raise BringUpError if either fails.

    A stop signal noted meanwhile (:func:`check_stop`) ends it after the transition in
    progress: a node stopped while it configured is not activated.
    """
    for name in ('configure', 'activate'):
        result = getattr(node, f'trigger_{name}')()
        if result != TransitionCallbackReturn.SUCCESS:
            message = f'{node.get_name()}: {name} failed ({result.name})'
            node.get_logger().fatal(f'autostart: {name} failed ({result.name})')
            raise BringUpError(message)
        check_stop()


EXECUTORS = ('multi', 'single', 'events')
"""Executor kinds of :func:`make_executor` (see the module docstring)."""


class _RebuildOnDestroyedEntity:
    """
    Executor mixin: build the wait set again when an entity is destroyed while it is built.

    rclpy 7.1 enters each waitable (a subscription's QoS event handler) and later adds it to the
    wait set; a subscription destroyed in between by another thread (a lifecycle transition in
    a worker thread of the multi-threaded executor) makes the second step raise
    ``InvalidHandle`` out of ``spin_once`` (rclpy#1142). The destroyed entity is gone from its
    node by then, so the next pass builds a wait set without it.
    """

    REBUILDS = 10  # a waitable destroyed but left in its node would fail every pass

    def wait_for_ready_callbacks(self, *args, **kwargs):
        for _ in range(self.REBUILDS):
            try:
                return super().wait_for_ready_callbacks(*args, **kwargs)
            except InvalidHandle:
                continue  # the failed pass ended its generator: the next call starts afresh
        return super().wait_for_ready_callbacks(*args, **kwargs)


class _MultiThreadedExecutor(_RebuildOnDestroyedEntity, MultiThreadedExecutor):
    """
    rclpy's ``MultiThreadedExecutor`` without the destruction race (see the mixin) or its spin.

    rclpy 7.1's ``spin_once`` hands a ready callback's task to its thread pool and returns; its
    next wait yields the same task again as long as no pool thread has begun it
    (``Task.executing()`` false) and hands it over again, without waiting. So the main thread
    loops, holding the GIL, while the pool thread that would begin the task waits for the
    GIL: a node hearing 30 messages a second took 97 % of a core, and a publisher in its
    process sent 14 of 150 messages in 5 s (the controller and the monitor on ``multi``,
    measured; the same with a bare rclpy node). Here the main thread hands a task over once
    and waits (at most :attr:`BEGIN_WAIT_S`) until a pool thread has begun it; a coroutine
    that returned from the pool unfinished (awaiting) is handed over again, as rclpy does.
    """

    BEGIN_WAIT_S = 0.5

    def __init__(self, *args, **kwargs) -> None:
        """Make the executor (rclpy's arguments)."""
        super().__init__(*args, **kwargs)
        self._handed = {}  # task -> (began, returned): its last hand-over to the pool

    def _spin_once_impl(self, timeout_sec=None, wait_condition=lambda: False) -> None:
        try:
            handler, _, _ = self.wait_for_ready_callbacks(timeout_sec, None, wait_condition)
        except (ExternalShutdownException, ShutdownException, TimeoutException,
                ConditionReachedException):
            return
        handed = self._handed.get(handler)
        if handed is None or handed[1].is_set():  # new, or back from the pool unfinished
            handed = self._handed[handler] = (threading.Event(), threading.Event())
            self._executor.submit(self._run, handler, *handed)
            if handler not in self._futures:
                self._futures.append(handler)
        handed[0].wait(self.BEGIN_WAIT_S)  # a pool thread has it (or all are busy)
        for future in self._futures[:]:
            if future.done():
                self._futures.remove(future)
                self._handed.pop(future, None)
                future.result()  # raise any exceptions

    @staticmethod
    def _run(handler, began: threading.Event, returned: threading.Event) -> None:
        """Run ``handler`` in a pool thread, saying when it began and returned."""
        began.set()
        try:
            handler()
        finally:
            returned.set()


class _SingleThreadedExecutor(_RebuildOnDestroyedEntity, SingleThreadedExecutor):
    """rclpy's ``SingleThreadedExecutor`` without the destruction race (see the mixin)."""


def make_executor(kind: str = 'multi', threads: int = 4, context=None):
    """Return a new executor of ``kind`` (one of :data:`EXECUTORS`) on ``context``."""
    if kind == 'multi':
        return _MultiThreadedExecutor(num_threads=threads, context=context)
    if kind == 'single':
        return _SingleThreadedExecutor(context=context)
    if kind == 'events':
        from rclpy.experimental import EventsExecutor
        return EventsExecutor(context=context)
    raise ValueError(f'unknown executor {kind!r}; expected one of {", ".join(EXECUTORS)}')


@contextlib.contextmanager
def node_group(factories: Sequence[Callable], *, autostart: bool, threads: int = 4,
               executor: str = 'multi', argv: Sequence[str] = ()):
    """
    Create nodes on an executor; yield ``(executor, nodes)``; tear them down.

    Each factory is called with the nodes created before it (a list), so a node can refer
    to an earlier one. A node warns about keys of the ``--params-file`` files in ``argv``
    (the process's arguments) that were meant for it and miss it
    (:func:`~topspark_ros.nodes.parameters.params_file_misses`), and about values given for
    parameters it does not have (:func:`~topspark_ros.nodes.parameters.undeclared_overrides`);
    a value of a later parameter file that did not reach it is refused (ValueError,
    :func:`~topspark_ros.nodes.parameters.layered_value_misses`).

    ``rclpy`` must be initialised. With ``autostart`` lifecycle nodes are configured and
    activated; on exit each lifecycle node runs its shutdown transition (which saves learnt
    weights), then every node is destroyed. The whole runs within :func:`stop_at_checks`: a
    stop signal ends the bring-up between two steps (a node created, a transition over), and
    the block must call :func:`check_stop` as it spins (:func:`spin` does).
    """
    nodes = []
    with stop_at_checks():
        executor = make_executor(executor, threads)
        try:
            for factory in factories:
                nodes.append(factory() if isinstance(factory, type) else factory(list(nodes)))
                executor.add_node(nodes[-1])
                warn_parameter_misses(nodes[-1], argv)
                misses = layered_value_misses(nodes[-1], argv)
                if misses:  # (refused as the value given alone is)
                    raise ValueError('; '.join(misses))
                check_stop()
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
                    except BaseException:  # a node already finalised, or mid-transition; an
                        pass  # interrupt of one node's shutdown does not skip the others'
            stop_executor(executor)
            for node in nodes:
                node.destroy_node()


def stop_executor(executor, timeout_s: float = STOP_WAIT_S) -> bool:
    """
    Let the callbacks ``executor`` still runs finish (up to ``timeout_s``), then shut it down.

    Call it, with nothing spinning any more, before destroying the executor's nodes. rclpy's
    ``Executor.shutdown`` says it waits for the callbacks in progress but returns at once
    (rclpy 7.1, Jazzy), so a node destroyed right after it could still have a callback
    running in the ``MultiThreadedExecutor``'s pool, or queued there. That callback then
    raised ``InvalidHandle`` ("cannot use Destroyable because destruction was requested")
    half-way, and since nobody retrieved its task's exception, rclpy printed it when the
    process exited. The wait comes before ``shutdown``, which destroys the guard condition a
    queued callback signals when it starts. An exception a callback raised is logged as
    :class:`CallbackErrors` logs it. A callback that does not end (one awaiting something
    only a spin would bring, or this very call made from a callback) costs the whole
    ``timeout_s``; returns False when callbacks were still running then.
    """
    # The MultiThreadedExecutor keeps the tasks it handed to its pool until a spin collects
    # them; the other executors run callbacks in the spinning thread, which has returned.
    tasks = list(getattr(executor, '_futures', ()))
    end = time.monotonic() + timeout_s
    for task in tasks:
        while not task.done() and time.monotonic() < end:
            time.sleep(0.005)
    errors = CallbackErrors(executor.get_nodes())
    executor.shutdown()
    finished = True
    for task in tasks:
        if not task.done():
            finished = False
            continue
        exc = task.exception()  # retrieved: rclpy would print it at exit otherwise
        if exc is not None:
            errors.report(exc, 'as the executor stopped')
    return finished


def init(argv: Sequence[str]) -> None:
    """
    Initialise rclpy with ``argv`` and our signal handling.

    SIGINT, SIGTERM and SIGHUP (:data:`STOP_SIGNALS`) end ``spin()`` while the context is
    still valid, so lifecycle nodes can still run their shutdown transition: noted, and
    raised as KeyboardInterrupt at the next :func:`check_stop` within
    :func:`stop_at_checks`, where the main thread is outside it (see :func:`_stop`).
    """
    with _saying_what_ros_arguments_are():
        _check_params_files(argv)
        rclpy.init(args=list(argv), signal_handler_options=SignalHandlerOptions.NO)
    signal.signal(signal.SIGINT, _stop)
    handle_unless_ignored(STOP_SIGNALS, _stop)  # (not at once when repeated: see _stop)


def _check_params_files(argv: Sequence[str]) -> None:
    """
    Raise ValueError for a ``--params-file`` in ``argv`` that is not a file.

    rcl's parser said "Couldn't parse params file: '--params-file x.yaml'. Error: Error
    opening YAML file, at /project/src/parser.c:271, ..." (a review).
    """
    argv = list(argv)
    for flag, name in zip(argv, argv[1:]):
        if flag == '--params-file' and not os.path.isfile(name):
            raise ValueError(f'parameter file {name} not found' if not os.path.exists(name)
                             else f'parameter file {name} is not a file')


@contextlib.contextmanager
def _saying_what_ros_arguments_are():
    """Turn rcl's error for unknown ROS arguments (their list, alone) into one that says why."""
    try:
        yield
    except _rclpy.UnknownROSArgsError as exc:
        raise ValueError(
            f'unknown ROS arguments {exc}: ROS arguments are -p name:=value, -r from:=to (a '
            'namespace: -r __ns:=/camA), --params-file FILE, --log-level LEVEL') from None
    except _rclpy.RCLInvalidROSArgsError as exc:  # '-p profile_path:=' gave a traceback
        first = str(exc).splitlines()[0] if str(exc) else 'invalid'
        first = re.sub(r', at /\S+:\d+', '', first)  # (rcl's source lines)
        raise ValueError(f'ROS arguments not understood ({first}): {_hint(first)}') from None


def _hint(reason: str) -> str:
    """
    Return what to do about rcl's ``reason`` for refusing the ROS arguments.

    Every refusal was said to want a value after ``:=``, a parameter file's YAML error and an
    unknown log level too (a review).
    """
    if "Couldn't parse params file" in reason:
        return ('a parameter file holds YAML: a node name (or /**), under it ros__parameters:, '
                'under that name: value, as config/topspark.yaml does')
    if "Couldn't parse log level" in reason:
        return ('--log-level takes debug, info, warn, error or fatal (or a logger name:=one '
                'of them)')
    return ("a value is required after := (an empty string: -p name:=''), as in -p "
            'name:=value, -r from:=to')


def check_stop() -> None:
    """
    Raise KeyboardInterrupt if a stop signal came: for the loops that spin.

    Within :func:`stop_at_checks` this is where a stop signal ends a process. Outside, the
    handler raises it where the main thread is, and when that is a finalizer (``__del__``:
    rclpy's logger has one) Python prints it as ignored and goes on: a classifier process ran
    on after SIGTERM until it was killed. Every loop that spins checks, after each wait.
    """
    if _stop_signal is not None:
        global _stop_taken
        _stop_taken = True
        raise KeyboardInterrupt


_checked_stops = 0
"""How many :func:`stop_at_checks` blocks the main thread is in."""
_stop_taken = False
"""Whether :func:`check_stop` raised the stop signal noted (the process is stopping)."""
STOP_NOTE_S = 1.0
"""A stop signal noted and not taken this long after it is said to be waiting (s)."""
_note_pipe: Optional[Tuple[int, int]] = None  # (read, write) of the stop note's watcher


def _watch_stop_note(read: int) -> None:
    """
    Say, once, that a stop signal waits for the step under way, if it waits ``STOP_NOTE_S``.

    The handler writes a byte into the pipe (all it may do safely: starting a thread or
    taking a lock there could find the main thread holding it); this thread, started with
    the outermost :func:`stop_at_checks`, waits, then writes straight to stderr. Before, a
    Ctrl-C during a long start-up step (a model loading, a configure) printed nothing until
    the step ended (a note of stop 38).
    """
    try:
        if not os.read(read, 1):
            return
        time.sleep(STOP_NOTE_S)
        if not _stop_taken and _checked_stops:
            os.write(2, b'stopping: the step under way ends first (a second Ctrl-C ends the '
                     b'process at once, without finishing the shutdown)\n')
    except OSError:
        pass
    finally:
        os.close(read)


@contextlib.contextmanager
def stop_at_checks():
    """
    Within the block a first SIGINT or SIGTERM is only noted: :func:`check_stop` raises it.

    Raised where the main thread happened to be, KeyboardInterrupt cut library code in two. A
    controller stopped by Ctrl-C as it came up (nav2's bond test) hung at exit, the
    interpreter waiting for an idle ``ThreadPoolExecutor`` thread that nothing would stop
    (CI), or exited without its bond saying it left: 7 runs of 88 on a loaded machine, none of
    90 with this. A lifecycle transition interrupted half-way leaves its state machine in
    ``activating``, and the shutdown transition, which saves learnt weights and breaks the
    bond, cannot run; a callback of the single-threaded executors was cut short. A block that
    runs the executor must call :func:`check_stop` after each wait (:func:`spin` does);
    :class:`SignalWaker` ends a wait at once. Main thread only (Python runs handlers there).
    """
    global _checked_stops, _note_pipe
    _checked_stops += 1
    if _note_pipe is None:
        read, write = os.pipe()
        _note_pipe = (read, write)
        threading.Thread(target=_watch_stop_note, args=(read,), name='stop_note',
                         daemon=True).start()
    try:
        yield
    finally:
        _checked_stops -= 1
        if not _checked_stops and _note_pipe is not None:
            os.close(_note_pipe[1])  # the watcher reads the end of the pipe and exits
            _note_pipe = None


def parse_player_args(argv: Sequence[str], name: str) -> None:
    """Answer ``--help`` and refuse options in ``argv`` a player does not have (argparse)."""
    parser = argparse.ArgumentParser(
        prog=os.path.basename(argv[0]) if argv else name,
        description=f'Run the {name}; ROS arguments go after --ros-args (-p name:=value, '
        '--params-file FILE, -r from:=to).')
    with _saying_what_ros_arguments_are():
        _check_params_files(argv)
        parser.parse_args(rclpy.utilities.remove_ros_args(list(argv))[1:])


def parse_process_args(argv: Sequence[str]) -> argparse.Namespace:
    """
    Return the process's own options in ``argv`` (``argv[0]`` the program; ROS ones skipped).

    ``--autostart`` alone or ``--autostart true``: configure and activate the lifecycle nodes
    at once (``false``: not; the launch file passes its ``autostart`` argument so, and every
    respawned process brings itself up); ``--executor KIND``.
    """
    parser = argparse.ArgumentParser(
        prog=os.path.basename(argv[0]) if argv else 'node',
        description='Run the node(s) of this process; ROS arguments go after --ros-args '
        '(-p name:=value, --params-file FILE, -r from:=to).')
    parser.add_argument('--autostart', nargs='?', const='true', default='false',
                        type=str.lower, choices=('true', 'false', '1', '0'),
                        help='configure and activate lifecycle nodes at once (alone, '
                        "'true' or '1', as launch conditions read them; default: %(default)s)")
    parser.add_argument('--executor', choices=EXECUTORS, default='multi',
                        help='the executor (default: %(default)s; see the README)')
    with _saying_what_ros_arguments_are():
        _check_params_files(argv)
        own = parser.parse_args(rclpy.utilities.remove_ros_args(list(argv))[1:])
    own.autostart = own.autostart in ('true', '1')
    return own


def warn_parameter_misses(node, argv: Sequence[str]) -> None:
    """
    Warn about the values given for ``node`` that it does not take.

    Keys of a parameter file that do not reach it (:func:`~.parameters.params_file_misses`)
    and parameters it does not have, as a typo (:func:`~.parameters.undeclared_overrides`):
    ROS ignores both without a word. Every node process says them at start-up (the players
    and the recorder did not: image_player's ``-p rate:=5.0``, not its ``rate_hz``, played at
    10 Hz without a word; a review).
    """
    for miss in params_file_misses(node.get_fully_qualified_name(), argv) \
            + undeclared_overrides(node):
        node.get_logger().warn(miss)


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
    # Before rclpy starts: --help prints and exits, a mistyped option is an error (it ran
    # silently, unconfigured, before).
    try:
        own = parse_process_args(argv)
        init(argv)
    except ValueError as exc:  # a parameter file not there, unknown ROS arguments: one line
        print(f'{os.path.basename(argv[0]) if argv else "node"}: error: {exc}',
              file=sys.stderr)
        return 1
    autostart = own.autostart if autostart is None else autostart
    kind = own.executor if executor is None else executor
    try:
        with node_group(factories, autostart=autostart, threads=threads,
                        executor=kind, argv=argv) as (executor, nodes):
            spin(executor, nodes)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except BringUpError:  # logged by the node that failed
        return 1
    except Exception as exc:  # a node that cannot be created (a parameter file, a value)
        logger = get_logger(PROCESS_LOGGER)
        logger.fatal(f'cannot start: {_describe(exc)}')
        logger.debug(''.join(traceback.format_exception(exc)))
        return 1
    finally:
        rclpy.try_shutdown()
    return 0


def play(factory: Callable, name: str, what: str, args: Optional[Sequence[str]] = None, *,
         overrides: Optional[dict] = None, linger_s: float = 0.5) -> int:
    """
    Run a player node until it is ``finished``, then return the exit status (0, or 1 on error).

    ``factory(parameter_overrides=...)`` makes the node (it has ``finished`` and ``published``);
    ``args``: process arguments, ROS arguments included (``sys.argv`` by default);
    ``overrides``: parameter values that take precedence over them. After the last message
    the node waits (at most :data:`ACK_WAIT_S`) until reliable subscribers acknowledged every
    message, then keeps spinning ``linger_s`` seconds so the last messages get out, logs how
    many ``what`` (e.g. ``'packets'``) it published. A bad parameter, file or missing package is
    logged as fatal (see :func:`fatal`), never a traceback.
    """
    from rclpy.duration import Duration
    from rclpy.exceptions import ParameterException
    from rclpy.parameter import Parameter

    argv = list(sys.argv if args is None else args)
    try:  # --help, a mistyped option, a parameter file not there: one line, as run_nodes says
        parse_player_args(argv, name)
        init(argv)
    except ValueError as exc:
        print(f'{os.path.basename(argv[0]) if argv else name}: error: {exc}', file=sys.stderr)
        return 1
    node = None
    try:
        node = factory(parameter_overrides=[
            Parameter(key, value=value) for key, value in (overrides or {}).items()])
        warn_parameter_misses(node, argv)
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        while executor.context.ok() and not node.finished:
            check_stop()
            executor.spin_once(timeout_sec=0.25)
        # A reliable subscriber that matched late gets the last messages repaired only while
        # the writer lives: wait (bounded) until every one is acknowledged, then linger.
        for publisher in list(node.publishers):
            publisher.wait_for_all_acked(Duration(seconds=ACK_WAIT_S))
        end = time.monotonic() + linger_s
        while executor.context.ok() and time.monotonic() < end:
            check_stop()
            executor.spin_once(timeout_sec=0.05)
        node.get_logger().info(f'published {node.published} {what}')
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except (ImportError, ValueError, OSError, ParameterException) as exc:  # (of a type too)
        fatal(node, name, exc)
        return 1
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
    return 0


IDLE_WAKE_S = 30.0
"""Longest wait of an executor that :class:`SignalWaker` wakes (a safety net only)."""


def spin(executor, nodes: Sequence) -> None:
    """
    Spin ``executor`` until its context is shut down, surviving exceptions of callbacks.

    An exception a callback raised (re-raised by ``spin_once``) is logged with its traceback
    through the logger of the node it came from (see :class:`CallbackErrors`); spinning goes
    on. KeyboardInterrupt and ExternalShutdownException end it. SIGINT and SIGTERM wake the
    wait (:class:`SignalWaker`) on every executor kind, so an idle process does not wake to
    look for them: it woke 4 times a second for that, about 80 % of an idle node's CPU (a
    review of the nodes' footprint).
    """
    errors = CallbackErrors(nodes)
    with stop_at_checks(), SignalWaker(executor):
        while executor.context.ok():
            check_stop()
            try:
                executor.spin_once(timeout_sec=IDLE_WAKE_S)
            except ExternalShutdownException:
                raise
            except Exception as exc:
                errors.report(exc)


class SignalWaker:
    """
    Wake ``executor`` waiting for work when SIGINT or SIGTERM comes (a context manager).

    Python's C-level signal handler writes the signal's number to a pipe
    (``signal.set_wakeup_fd``); a thread reading it hands the executor a task that does
    nothing (``create_task``, safe from any thread). Every rclpy executor runs a task as a
    callback, so its ``spin_once`` returns: the Python executors trigger their own guard
    condition for it; the ``EventsExecutor`` queues it in C++ (it cannot wait on a guard
    condition, and its ``wake()`` only refreshes its entities: ``spin_once`` waits on). The
    main thread, back in Python, runs the handler (:func:`_stop`). Must be entered in the main
    thread.
    """

    def __init__(self, executor) -> None:
        """Wake ``executor``."""
        self._executor = executor

    def __enter__(self) -> 'SignalWaker':
        """Install the pipe and start the thread that reads it."""
        self._read, self._write = os.pipe()
        os.set_blocking(self._write, False)
        self._previous = signal.set_wakeup_fd(self._write, warn_on_full_buffer=False)
        self._thread = threading.Thread(target=self._watch, name='signal_waker', daemon=True)
        self._thread.start()
        return self

    def _watch(self) -> None:
        while True:
            try:
                data = os.read(self._read, 64)
            except OSError:
                return
            if not data:  # the write end closed: exit
                return
            try:
                self._executor.create_task(_nothing)
            except Exception:  # the executor is shut down: nothing left to wake
                return

    def __exit__(self, *exc) -> None:
        """Put the previous wake-up descriptor back; end the thread."""
        signal.set_wakeup_fd(self._previous)
        os.close(self._write)
        self._thread.join(timeout=1.0)
        os.close(self._read)


def _nothing() -> None:
    """Do nothing: the task :class:`SignalWaker` hands an executor to end its wait."""


class CallbackErrors:
    """
    Log exceptions raised by the callbacks of ``nodes``, each through the logger of its node.

    The node is the one whose method is innermost in the traceback (the process logger
    :data:`PROCESS_LOGGER` if none is). The same error (type and message) is logged at most once
    every ``period_s`` seconds, with the number of repeats left out in between.
    """

    def __init__(self, nodes: Sequence, period_s: float = 10.0) -> None:
        """Report for ``nodes``."""
        self._nodes, self._period_s = list(nodes), period_s
        self._seen = {}  # (type, message) -> [time logged, repeats not logged since]

    def report(self, exc: BaseException, when: str = 'the node keeps running') -> None:
        """Log ``exc`` (with its traceback, and ``when``) unless it was logged recently."""
        key, now = (type(exc), str(exc)), time.monotonic()
        seen = self._seen.get(key)
        if seen is not None and now - seen[0] < self._period_s:
            seen[1] += 1
            return
        if len(self._seen) > 100:
            self._seen.clear()
        repeats = f' ({seen[1]} more since the last report)' if seen and seen[1] else ''
        self._seen[key] = [now, 0]
        node = self.node_of(exc)
        logger = node.get_logger() if node is not None \
            else get_logger(PROCESS_LOGGER)
        logger.error(f'a callback raised {_describe(exc)}{repeats}; {when}\n'
                     + ''.join(traceback.format_exception(exc)).rstrip())

    def node_of(self, exc: BaseException):
        """Return the node whose method is innermost in the traceback of ``exc``, or None."""
        found, tb = None, exc.__traceback__
        while tb is not None:
            owner = tb.tb_frame.f_locals.get('self')
            if any(owner is node for node in self._nodes):
                found = owner
            tb = tb.tb_next
        return found


def fatal(node, name: str, error) -> None:
    """
    Log a fatal ``error`` of a node process through the ROS logger (console, log file, rosout).

    ``node``: the node it concerns, or None when it could not be created (then the logger
    ``name`` is used, which reaches the console and the log file only).
    """
    logger = node.get_logger() if node is not None else get_logger(name)
    logger.fatal(str(error) + _type_hint(error))


def _describe(exc: BaseException) -> str:
    return f'{type(exc).__name__}: {exc}' + _type_hint(exc)


def _type_hint(exc: BaseException) -> str:
    """Return how to write the value a parameter-type error asked for ('' for other errors)."""
    text = str(exc)
    if type(exc).__name__ != 'InvalidParameterTypeException':
        return ''
    given = re.search(r"to '(.*?)' of type '(\w+)'", text)
    value, kind = given.groups() if given else ('', '')
    if "expecting type 'DOUBLE'" in text and kind == 'INTEGER':
        return (' (ROS reads a number without a decimal point as an integer: write '
                f'{value}.0, not {value})')
    if "expecting type 'INTEGER'" in text and kind == 'DOUBLE':
        whole = value.split('.')[0]
        return f' (an integer: write {whole}, not {value})'
    return ''


_stop_signal: Optional[int] = None
"""SIGINT, SIGTERM or SIGHUP, once one came (see :func:`check_stop`)."""
_stop_at = 0.0
"""When it came (monotonic s)."""
REPEAT_IGNORED_S = 2.0
"""Signals this soon after the first are ignored; a later one ends the process at once."""


def _stop(signum, frame) -> None:
    """
    Note the signal, then raise KeyboardInterrupt where the main thread is: the first only.

    Within :func:`stop_at_checks` the first is noted only, for :func:`check_stop` to raise.

    Signals within :data:`REPEAT_IGNORED_S` of the first are noted and nothing more: each
    raised where the shutdown then was, and five Ctrl-C 2 ms apart broke off the shutdown
    transition, which saves the learnt weights: they were lost, the lock left behind (a review
    of on-line learning); ``ros2 launch`` and a terminal signal together. A later SIGINT (a
    person pressing Ctrl-C again) ends the process at once (a shutdown that hangs could not be
    interrupted else; a review), saying what is lost. A later SIGTERM is said and ignored: it
    is ``ros2 launch``'s escalation 5 s after its SIGINT (its SIGKILL follows 5 s later), and
    it cut a start-up or a save of learnt weights still under way (a review).
    """
    global _stop_signal, _stop_at
    now = time.monotonic()
    if _stop_signal is None:
        _stop_signal, _stop_at = signum, now
        if _checked_stops:
            if _note_pipe is not None:
                try:
                    os.write(_note_pipe[1], b'x')
                except OSError:
                    pass
            return
        raise KeyboardInterrupt
    if now - _stop_at < REPEAT_IGNORED_S:
        return
    if signum != signal.SIGINT:
        _say(f'{signal.Signals(signum).name} while stopping: ignored, the shutdown goes on '
             '(saving what was learnt on line); SIGINT again ends it at once, unsaved\n')
        return
    _say('stopping again: exiting now, without finishing the shutdown (what was learnt on '
         'line since the last save is lost)\n')
    os._exit(128 + signum)


def _say(text: str) -> None:
    """Write ``text`` to stderr from a signal handler (nothing where it is gone: a hang-up)."""
    try:
        os.write(2, text.encode())
    except OSError:
        pass
