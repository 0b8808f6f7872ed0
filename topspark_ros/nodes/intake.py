"""
Sensor input outside the executor: a subscription read by a thread of its own (and a worker).

rclpy's Python executors rebuild their wait set in Python for every message they hand to a
callback: about 0.3 to 0.5 ms of CPU for a node like the classifier, so at the 1 000 event
packets per second a camera driver publishes, the executor alone took a core and packets were
lost (issue 14); the experimental ``EventsExecutor`` cannot wait on guard conditions. A
:class:`SubscriptionReader` takes its messages in a thread of its own instead: one wait set
holding just that subscription (built once per wake-up, in C), and every message waiting is
taken and handed to the callback before it waits again, so a burst costs one wake-up. The
subscription is a node's (its name, namespace and remappings apply; the graph shows it), but
it is not in the node's entity lists, so no executor of any kind takes its messages. Its QoS
event handlers (incompatible QoS, ...) are in the reader's wait set too, their callbacks run
in the reader's thread: with Fast DDS a subscription's QoS events wake a wait set at every
message, so in an executor's wait set they cost the executor a wake-up per message (measured:
1 000 messages/s took a Python executor 0.3 s of CPU per second with the default QoS event
handlers, none without).

A :class:`Worker` is the other half where the input must all be read while the work runs
(event packets): a thread that runs a function when triggered, so slow work (classifying
event windows) never holds up the reader.

An :class:`Intake` is the pair, made when a lifecycle node activates and closed when it
deactivates; :func:`camera_intake` makes the one of a camera's frames (raw or compressed),
whose reader classifies the newest frame itself (a frame at a time needs no second thread).
"""

import contextlib
import gc
import os
import threading
import time
from typing import Callable, Optional, Tuple

from rclpy.callback_groups import ReentrantCallbackGroup
from rclpy.event_handler import SubscriptionEventCallbacks
from rclpy.guard_condition import GuardCondition
from rclpy.impl.implementation_singleton import rclpy_implementation as _rclpy
from rclpy.qos import HistoryPolicy, QoSProfile
from rclpy.subscription import Subscription
from rclpy.type_support import check_is_valid_msg_type
from sensor_msgs.msg import CompressedImage, Image

from topspark_ros.core.events.codecs.base import sequence_step
from topspark_ros.nodes.qos import warn_on_incompatible_qos

WAKE_S = 0.5
"""Longest wait of a reader (s): it notices a context shut down underneath it this quickly."""

ERROR_PAUSE_S = 0.1
"""A reader's pause after a failed wait or take (s), before it reads on."""

_EMPTY = object()

_FREEZE_LOCK = threading.Lock()
_FROZEN = 0  # freeze_long_lived calls not yet undone by thaw_long_lived


def freeze_long_lived() -> None:
    """
    Keep every object alive now out of the garbage collector's later full collections.

    Called when the classifier's input starts (the model is loaded and warmed up by then);
    :func:`thaw_long_lived` undoes it. A full collection scans every object the collector
    tracks, about 380 000 once torch, numba and a model are loaded: 120 to 210 ms holding the
    GIL, in which the reader thread cannot take a packet: at 20 Mev/s one came every 10 to 20
    s of stream, longer than the 100 ms of 1 ms packets the ``events_depth`` of then (100)
    held.
    Frozen objects are still freed when nothing refers to them; only reference cycles among
    them wait for the thaw. Process-wide: it covers every node of the process, and is undone
    by the last of its callers' :func:`thaw_long_lived` (two classifiers in one process: the
    first to stop thawed the other's input too; a user review).
    """
    global _FROZEN
    with _FREEZE_LOCK:
        gc.collect()
        gc.freeze()
        _FROZEN += 1


def thaw_long_lived() -> None:
    """Undo a :func:`freeze_long_lived`: the last one lets the collector see them again."""
    global _FROZEN
    with _FREEZE_LOCK:
        _FROZEN = max(0, _FROZEN - 1)
        if not _FROZEN:
            gc.unfreeze()


def name_native_thread(name: str) -> None:
    """
    Give the calling thread ``name`` in the operating system too (Linux; else nothing).

    Python's thread names stay inside Python; this one shows in ``top -H``, ``ps -L``,
    ``py-spy`` and ``/proc/<pid>/task/<tid>/comm``, so the CPU of a node's reader and worker
    can be told apart from its other threads on a robot. Linux keeps 15 bytes of it.
    """
    with contextlib.suppress(OSError):  # not Linux, or /proc not writable: unnamed
        path = f'/proc/self/task/{threading.get_native_id()}/comm'
        with open(path, 'w', encoding='ascii', errors='replace') as comm:
            comm.write(name[:15])


def unused_thread_name(name: str) -> str:
    """
    Return ``name``, or ``name`` with a number when a live thread of the process has it.

    Two classifiers in one process (nodes composed in Python) had threads of one name, so
    ``top -H`` could not tell whose reader took the CPU (a user review): the second's are
    ``events_reader2``, ``windows_worker2``.
    """
    taken = {thread.name for thread in threading.enumerate()}
    number = 1
    candidate = name
    while candidate in taken:
        number += 1
        candidate = f'{name}{number}'
    return candidate


def _never_called(msg) -> None:
    """Stand in for the callback rclpy's Subscription holds; the reader calls its own."""


class SubscriptionReader:
    """
    A subscription of ``node`` whose messages a thread of its own takes and hands on.

    ``callback(msg)`` runs in that thread, for one message at a time, in arrival order (with
    ``older``: see there); an exception it raises is logged through the node's logger
    (throttled) and reading goes on.
    :meth:`close` stops the thread (after the message in hand) and destroys the subscription.

    Parameters
    ----------
    node
        the node whose subscription it is (name, namespace, remappings).
    msg_type, topic, qos
        as for ``Node.create_subscription``.
    callback
        called with each message, in the reader's thread.
    name
        the thread's name, in the operating system too (:func:`name_native_thread`; numbered
        when a live thread has it: :func:`unused_thread_name`).
    event_callbacks
        QoS event callbacks (``SubscriptionEventCallbacks``; default: rclpy's defaults, which
        warn about an incompatible QoS or type), run in the reader's thread.
    min_period_s
        wake up at most this often (s): after taking the waiting messages (at most the QoS
        depth of them, with a keep-last history: no more can wait) the reader sleeps
        out the rest of the period, so a stream of small messages is taken a few at a time
        (each wake-up of a Fast DDS wait set costs tens of microseconds of CPU in rclpy) at
        the price of at most this much delay. It does not sleep after a wake-up that found an
        eighth of the QoS depth or more waiting: the stream is then fast enough for a pause to
        risk the queue. 0: wake for every message.
    raw
        hand the callback each message's serialized (CDR) bytes instead of a message: rclpy
        then builds no Python message, which for large messages costs more than the reading
        the callback does (event packets: 66 against 15 us a packet in the classifier at 20
        Mev/s, docs/benchmarks-ros.md).
    older
        newest first: of the messages waiting, only the newest goes to the callback, as
        ``callback(msg, waited, missed)``, and every other one to ``older(msg, waited,
        missed)`` (for work done in the reader's own thread, which is not to fall behind the
        input). ``waited``: the message was taken right after the callback returned, without
        a wait: it arrived while the callback ran on an earlier one, so messages missing
        before it may have been replaced in the subscription's keep-last queue meanwhile.
        ``missed``: how many, where the middleware numbers the messages of each publisher
        (``publication_sequence_number``: Fast DDS) and one publisher is matched; else None
        (the caller may tell from the messages' own stamps).

    """

    def __init__(self, node, msg_type, topic: str, qos: QoSProfile,
                 callback: Callable[[object], None], *, name: str,
                 event_callbacks: Optional[SubscriptionEventCallbacks] = None,
                 min_period_s: float = 0.0, raw: bool = False,
                 older: Optional[Callable[[object, bool, Optional[int]], None]] = None) -> None:
        """Create the subscription and start reading."""
        if not min_period_s >= 0.0:
            raise ValueError(f'min_period_s must be >= 0, got {min_period_s}')
        self._node = node
        self._context = node.context
        self._msg_type = msg_type
        self._callback = callback
        check_is_valid_msg_type(msg_type)  # imports the type support
        with node.handle:
            impl = _rclpy.Subscription(node.handle, msg_type, topic, qos.get_c_qos_profile())
        self.subscription = Subscription(
            impl, msg_type, topic, _never_called, ReentrantCallbackGroup(), qos, False,
            event_callbacks=event_callbacks or SubscriptionEventCallbacks())
        self.topic_name = self.subscription.topic_name
        """The resolved (remapped) topic name, kept: a status may ask after :meth:`close`."""
        self._stop = GuardCondition(None, None, context=self._context)
        self._stopping = False
        self._min_period_s = float(min_period_s)
        self._busy_batch = max(1, int(qos.depth) // 8)
        # At most a queue's worth is taken per wake-up: no last, empty take after a camera's
        # one frame (about 5 to 50 us of CPU); what arrives meanwhile wakes the next wait.
        self._most = int(qos.depth) if qos.history == HistoryPolicy.KEEP_LAST and \
            qos.depth > 0 else None
        self._raw = bool(raw)
        self._older = older
        self._last_seq = None  # publication sequence number of the last message taken
        self.taken = 0  # messages taken (handed to the callback, or to older)
        self.wakes = 0  # returns from the wait
        self.errors = 0  # failed waits or takes (logged; the reader reads on)
        self._thread = threading.Thread(target=self._run, name=unused_thread_name(name),
                                        daemon=True)
        self._thread.start()

    def _run(self) -> None:
        name_native_thread(threading.current_thread().name)
        wait_set = _rclpy.WaitSet(1, 1, 0, 0, 0, len(self.subscription.event_handlers),
                                  self._context.handle)
        while not self._stopping and self._context.ok():
            try:
                self._read(wait_set)
            except Exception as exc:  # an rmw error in a wait or a take: read on, said
                if self._stopping or not self._context.ok():
                    return  # (a shutdown under way)
                self.errors += 1
                self._node.get_logger().error(
                    f'{threading.current_thread().name}: reading {self.topic_name} failed '
                    f'({type(exc).__name__}: {exc}); reading on', throttle_duration_sec=5.0)
                time.sleep(ERROR_PAUSE_S)  # (not a busy loop where every take fails)

    def _read(self, wait_set) -> None:
        """Wait once, then hand on what came (the body of the reader's loop)."""
        handle, stop, msg_type = self.subscription.handle, self._stop.handle, self._msg_type
        raw = self._raw
        handlers = self.subscription.event_handlers
        timeout_ns = int(WAKE_S * 1e9)
        wait_set.clear_entities()
        wait_set.add_subscription(handle)
        wait_set.add_guard_condition(stop)
        for handler in handlers:
            handler.add_to_wait_set(wait_set)
        wait_set.wait(timeout_ns)  # releases the GIL
        woke = time.monotonic()
        self.wakes += 1
        for handler in handlers:  # QoS events: incompatible QoS, ...
            if handler.is_ready(wait_set):
                event = handler.take_data()
                if event:
                    self._call(handler.callback, event)
        batch = 0
        if self._older is not None:
            batch = self._newest(handle, msg_type, raw)
        while self._older is None and not self._stopping and batch != self._most:
            taken = handle.take_message(msg_type, raw)  # what waits, then wait again
            if taken is None:
                break
            self.taken += 1
            batch += 1
            self._call(self._callback, taken[0])
        rest = woke + self._min_period_s - time.monotonic()
        if rest > 0.0 and batch < self._busy_batch and not self._stopping:
            time.sleep(rest)  # messages gather meanwhile (QoS depth permitting)

    def _newest(self, handle, msg_type, raw: bool) -> int:
        """
        Hand on the newest message waiting, then again while more came meanwhile.

        Of what one take finds (a queue's depth at most), the older messages go to
        ``older``; what the take right after the callback finds arrived while it ran.
        Returns how many messages were taken.
        """
        total, waited = 0, False
        while not self._stopping and self._context.ok():  # (frames faster than the work)
            taken = []
            while not self._stopping and len(taken) != self._most:
                one = handle.take_message(msg_type, raw)
                if one is None:
                    break
                taken.append(one)
            if not taken:
                return total
            total += len(taken)
            self.taken += len(taken)
            for k, (msg, info) in enumerate(taken):
                missed = self._missed(info, waited)
                self._call(self._older if k + 1 < len(taken) else self._callback, msg, waited,
                           missed)
            waited = True
        return total

    def _missed(self, info: dict, waited: bool) -> Optional[int]:
        """Return the messages missing before this one (``waited``, one publisher), or None."""
        seq = info.get('publication_sequence_number') if isinstance(info, dict) else None
        last, self._last_seq = self._last_seq, seq
        if not waited or seq is None or last is None or seq <= 0:
            return None
        if self.subscription.get_publisher_count() != 1:  # numbers of several publishers
            return None
        gaps, lost, restarts = sequence_step(last, seq)
        return None if restarts else lost

    def _call(self, callback, *arguments) -> None:
        try:
            callback(*arguments)
        except Exception as exc:  # a bug in a callback must not stop the input
            self._node.get_logger().error(
                f'{threading.current_thread().name}: callback raised '
                f'{type(exc).__name__}: {exc}', throttle_duration_sec=5.0)

    def close(self) -> None:
        """Stop reading (the message in hand is finished) and destroy the subscription."""
        if self._thread is None:
            return
        self._stopping = True
        self._stop.trigger()
        if self._thread is not threading.current_thread():
            self._thread.join()
        self._thread = None
        self.subscription.destroy()
        self._stop.destroy()


class Worker:
    """
    A thread that runs ``work`` on demand.

    :meth:`trigger` asks for a run of ``work()``: triggers while it runs add up to one more
    run, none is lost. :meth:`offer` hands it an item to run ``work(item)`` on, only if it is
    idle (nothing running or waiting); otherwise the item is refused (False) and not kept
    (``take``: a function that makes the item, called only when the worker is idle, under its
    lock). An exception ``work`` raises goes to ``on_error`` and the worker goes on.

    The thread is named ``name`` in the operating system too (:func:`name_native_thread`).
    ``nice`` > 0 lowers the thread's scheduling priority by that much (Linux: per-thread nice
    value), so that, when the cores are short, the reader threads and the middleware's get
    them first and the work falls behind (where it is bounded and counted) instead of the
    input being lost unseen.
    """

    def __init__(self, work: Callable[..., None], *, name: str,
                 on_error: Callable[[Exception], None], nice: int = 0) -> None:
        """Start the thread (it waits for a trigger)."""
        self._work, self._on_error, self._nice = work, on_error, int(nice)
        # A run is asked for by releasing _wake (under _lock, unless it is released already):
        # a bare lock, where a threading.Event's Python condition cost about 80 us of CPU a
        # hand-over at 30 frames/s against 40 (docs/benchmarks-ros.md).
        self._wake = threading.Lock()
        self._wake.acquire()
        self._lock = threading.Lock()
        self._item = _EMPTY
        self._busy = False
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name=unused_thread_name(name),
                                        daemon=True)
        self._thread.start()

    def trigger(self) -> None:
        """Run ``work()`` soon (once more after the current run, if one is in progress)."""
        with self._lock:
            self._ask()

    def offer(self, item=None, *, take: Optional[Callable[[], object]] = None) -> bool:
        """Run ``work(item)`` (or ``work(take())``) now if idle and return True; else False."""
        with self._lock:
            if self._busy or self._stopping:
                return False
            self._item, self._busy = (item if take is None else take()), True
            self._ask()
        return True

    def _ask(self) -> None:
        """Wake the thread for a run, unless one is asked for already (``_lock`` held)."""
        if self._wake.locked():
            self._wake.release()

    def _run(self) -> None:
        name_native_thread(threading.current_thread().name)
        if self._nice > 0 and hasattr(os, 'setpriority'):
            with contextlib.suppress(OSError):  # not allowed, or not Linux: as it is
                tid = threading.get_native_id()
                os.setpriority(os.PRIO_PROCESS, tid,
                               os.getpriority(os.PRIO_PROCESS, tid) + self._nice)
        while True:
            self._wake.acquire()
            with self._lock:
                item, self._item = self._item, _EMPTY
                self._busy = True
            if self._stopping:
                return
            try:
                if item is _EMPTY:
                    self._work()
                else:
                    self._work(item)
            except Exception as exc:
                self._on_error(exc)
            finally:
                # Let go of the item before waiting: a batch of event windows pins their
                # buffers, which the windower reuses only once nothing refers to them.
                item = None
                with self._lock:
                    self._busy = self._item is not _EMPTY

    def close(self) -> None:
        """Stop the thread after the run in progress (a waiting item or trigger is dropped)."""
        if self._thread is None:
            return
        with self._lock:
            self._stopping = True
            self._ask()
        if self._thread is not threading.current_thread():
            self._thread.join()
        self._thread = None


class Intake:
    """
    A node's input while it is active: a :class:`SubscriptionReader` and a :class:`Worker`.

    (No worker with ``inline``.)

    The reader (a thread named ``names[0]``) hands each message of ``topic`` to ``receive``;
    without ``receive`` it offers the message to the worker, ``work(msg)``, and hands it to
    ``drop`` when the worker is busy (dropped, never queued); ``min_period_s``, ``raw``: see
    the reader.
    The worker (``names[1]``, ``on_error``, ``nice``: see :class:`Worker`) runs ``work``.

    ``inline``: no worker; the reader runs ``work(msg, waited, missed)`` itself on the newest
    message waiting and hands the older ones to ``drop(msg, waited, missed)`` (the reader's
    ``older``). What
    arrives meanwhile waits in the subscription's keep-last queue, so the next input is the
    newest, and no thread hands anything over (camera frames: about 0.3 ms of CPU a frame
    less at 30 Hz, docs/benchmarks-ros.md). For input that must all be read while the work
    runs (event packets), the worker.
    :meth:`close` stops the reader (destroying its subscription; after the work in hand, when
    inline), then the worker (after its run).
    """

    def __init__(self, node, msg_type, topic: str, qos: QoSProfile, work: Callable[..., None],
                 *, names: Tuple[str, str], on_error: Callable[[Exception], None],
                 receive: Optional[Callable[[object], None]] = None,
                 drop: Optional[Callable[..., None]] = None, nice: int = 0,
                 event_callbacks: Optional[SubscriptionEventCallbacks] = None,
                 min_period_s: float = 0.0, raw: bool = False, inline: bool = False) -> None:
        """Start the worker, then the reader (whose messages may go to the worker)."""
        if inline and (receive is not None or drop is None):
            raise ValueError('inline work takes drop and no receive')
        self.worker = None if inline else Worker(work, name=names[1], on_error=on_error,
                                                 nice=nice)
        self._drop, self._work, self._on_error = drop, work, on_error
        callback = self._inline if inline else (receive or self._offer)
        try:
            self.reader = SubscriptionReader(node, msg_type, topic, qos, callback,
                                             name=names[0], event_callbacks=event_callbacks,
                                             min_period_s=min_period_s, raw=raw,
                                             older=drop if inline else None)
        except BaseException:  # no subscription: the worker must not be left running
            if self.worker is not None:
                self.worker.close()
            raise

    def _inline(self, msg, waited: bool, missed: Optional[int]) -> None:
        try:
            self._work(msg, waited, missed)
        except Exception as exc:  # as the worker's: counted and logged, the input goes on
            self._on_error(exc)

    def _offer(self, msg) -> None:
        if not self.worker.offer(msg):
            self._drop(msg)

    def close(self) -> None:
        """Stop the reader, then the worker (after the run in progress)."""
        self.reader.close()
        if self.worker is not None:
            self.worker.close()


def camera_intake(node, transport: str, qos: QoSProfile, *, hint: str, **kwargs) -> Intake:
    """
    Return the :class:`Intake` of a camera's frames as image_transport names them.

    ``transport`` 'raw': ``sensor_msgs/Image`` on ``image``; 'compressed':
    ``sensor_msgs/CompressedImage`` on ``<image>/compressed``, where ``<image>`` is ``image`` as
    remapped (image_transport's rule: ``image:=/camera/image_raw`` reads
    ``/camera/image_raw/compressed``; a remap of ``image/compressed`` itself wins). A publisher
    whose QoS cannot match is warned about, with ``hint`` (what to change). ``kwargs``: those
    of :class:`Intake`; the frames are classified inline, in the reader (``work(msg, waited,
    missed)`` on the newest frame waiting, ``drop(msg, waited, missed)`` on the others).
    """
    compressed = transport == 'compressed'
    topic = node.resolve_topic_name('image')  # (as remapped: warnings named 'image'; a review)
    if compressed:
        topic = node.resolve_topic_name('image/compressed')
        if topic == node.resolve_topic_name('image/compressed', only_expand=True):
            topic = node.resolve_topic_name('image') + '/compressed'
    return Intake(node, CompressedImage if compressed else Image, topic, qos, inline=True,
                  event_callbacks=warn_on_incompatible_qos(node, topic, hint), **kwargs)
