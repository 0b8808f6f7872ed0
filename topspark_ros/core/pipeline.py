"""
The classifier without ROS: what happens between an input arriving and its result leaving.

:class:`ClassifierPipeline` is everything the classifier node
(:mod:`topspark_ros.nodes.classifier`) decides; the node declares the parameters, converts
messages, publishes, logs and runs the threads. The pipeline reads the node's parameters by
name (:func:`open_session`, :class:`Settings`, :func:`event_stream`) through a function that
returns their current values, once per input, and holds for the node's lifetime:

- the loaded :class:`~topspark_ros.core.session.ClassifierSession` (None while unconfigured)
  and :attr:`~ClassifierPipeline.busy`, held while the model works: one input at a time. A
  frame that finds the model busy is dropped and counted; the node's reader takes none while
  it classifies one, and the frames replaced in its keep-last queue meanwhile are counted as
  dropped too (:meth:`~ClassifierPipeline.classify_frame`); event windows wait in the bounded
  backlog of the :class:`~topspark_ros.core.events.stream.EventStream`
  (:meth:`~ClassifierPipeline.push_packet`, :meth:`~ClassifierPipeline.drain_windows`);
- the timestep count ``T``: the last TimestepCommand, clamped to ``max_timesteps`` (T=0 is
  ignored), else ``default_timesteps``, never above ``max_timesteps``
  (:meth:`~ClassifierPipeline.command`, :meth:`~ClassifierPipeline.current_timesteps`);
- on-line learning: each prediction carries the cost of learning from its input, and the
  weights are saved every ``save_every_n`` learnt inputs;
- the counters (:data:`COUNTERS`), the last error, the frames lost in transport
  (:class:`~topspark_ros.core.frame_gaps.FrameGaps`) and the ``/diagnostics`` status made of
  them (:meth:`~ClassifierPipeline.status`).
"""

import collections
import copy
import dataclasses
from dataclasses import dataclass
import os
import statistics
import threading
import time
from typing import Callable, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from topspark_ros.core.checkpoint import metadata_path
from topspark_ros.core.counters import Recent
from topspark_ros.core.data.dataset import class_name_problem
from topspark_ros.core.energy import EnergyModel
from topspark_ros.core.files import hold_lock_file, output_folder_problem, release_lock_file
from topspark_ros.core.frame_gaps import FrameGaps
from topspark_ros.core.inputs import SampleSeeds
from topspark_ros.core.model import check_device
from topspark_ros.core.session import ClassifierSession, keep_earlier_learning, Prediction
from topspark_ros.core.sources import describes
from topspark_ros.core.threads import set_torch_threads
from topspark_ros.core.topspark.early_exit import default_min_steps, EarlyExit

OK, WARN, ERROR = 0, 1, 2
"""Status levels of :meth:`ClassifierPipeline.status` (those of diagnostic_msgs, as numbers)."""

COUNTERS = ('processed', 'dropped', 'errors', 'learnt', 'saved', 'save_failures',
            'timesteps_clamped', 'timesteps_refused', 'timesteps_other_model')
"""The pipeline's counters; they only grow, for the node's lifetime."""

FROM_CHECKPOINT = '__from_checkpoint__'
"""The ``class_names`` value (its one element) that takes the checkpoint's class names."""

Values = Mapping[str, object]
"""Parameter values by name (the classifier node's parameters)."""

Publish = Callable[[Prediction, object, int], None]
"""``publish(prediction, tag, dropped)``: send one result with the tag (header) of its input
and the count of frames (or event windows) dropped so far."""


@dataclass(frozen=True)
class Settings:
    """
    How an input is processed: the classifier's parameters of the same names, read per input.

    Attributes
    ----------
    default_timesteps, max_timesteps
        ``T`` until a command comes, and the largest ``T`` used (:meth:`timesteps`).
    early_exit, early_exit_margin, early_exit_min_steps
        stop an input once its best class leads the second by ``early_exit_margin`` output
        spikes, never before ``early_exit_min_steps`` steps (0: the model family's floor;
        :meth:`early_exit_rule`).
    online_learning
        learn from every input with unsupervised STDP at its ``T``.
    save_every_n
        save the weights every N learnt inputs (0: not periodically).
    input_seed
        frames: where the random numbers of a frame's input encoding come from:
        ``'stamp'``, its capture stamp (:meth:`SampleSeeds.of_stamp
        <topspark_ros.core.inputs.SampleSeeds.of_stamp>`: a frame replayed with its stamp
        gives the result it gave live), or ``'stream'``, the model's seeded stream (a
        result then depends on how many frames the model drew for before it).
    roi
        events: ``[x0, y0, width, height]`` of the sensor (pixels) mapped onto the model input
        (:attr:`region`).

    """

    default_timesteps: int
    max_timesteps: int
    early_exit: bool
    early_exit_margin: float
    early_exit_min_steps: int
    online_learning: bool
    save_every_n: int
    input_seed: str
    roi: Sequence[int]

    @classmethod
    def from_values(cls, values: Values) -> 'Settings':
        """Return the settings among ``values`` (others are ignored)."""
        return cls(**{name: values[name] for name in _SETTINGS})

    def timesteps(self, commanded: Optional[int]) -> int:
        """Return ``T`` for an input: ``commanded`` (None: the default), at most the maximum."""
        return min(commanded or self.default_timesteps, self.max_timesteps)

    def early_exit_rule(self, model) -> Optional[EarlyExit]:
        """
        Return the early-exit rule for ``model``, or None when ``early_exit`` is off.

        ``early_exit_min_steps`` 0: the floor of the model's family
        (:func:`~topspark_ros.core.topspark.early_exit.default_min_steps`).
        """
        if not self.early_exit:
            return None
        return EarlyExit(margin=self.early_exit_margin,
                         min_steps=self.early_exit_min_steps or default_min_steps(model))

    @property
    def region(self) -> Optional[Tuple[int, int, int, int]]:
        """Return ``roi`` as ``(x0, y0, w, h)``, or None (width or height 0: model default)."""
        x0, y0, width, height = (int(v) for v in self.roi)
        return (x0, y0, width, height) if width > 0 and height > 0 else None


_SETTINGS = tuple(f.name for f in dataclasses.fields(Settings))
INPUT_SEEDS = ('stamp', 'stream')
"""The values of ``input_seed`` (:class:`Settings`)."""
_INFERENCE, _LEARNING = 0, 1
"""The streams of one frame's seeds (:meth:`SampleSeeds.of_stamp`)."""


def open_session(values: Values, resolve: Callable[[str], str]) -> ClassifierSession:
    """
    Return the session the classifier's parameters describe (not warmed up).

    ``values``: ``model_path`` (ValueError when empty), ``device``, ``torch_threads`` (set for
    the process), ``profile_path`` (a timestep profile whose enhanced parameters apply; ''
    none), ``class_names`` (``[FROM_CHECKPOINT]``: the checkpoint's), ``energy_preset``,
    ``crop``, ``invert``; inputs prepared unlike the model's training data
    (:func:`unlike_training`) get no calibrated score. ``resolve`` turns a path value into a
    file (``package://`` URLs).
    """
    if not values['model_path']:
        raise ValueError('parameter model_path is empty')
    set_torch_threads(values['torch_threads'])
    profile = None
    if values['profile_path']:
        from topspark_ros.core.topspark.profile import load_profile_parameter
        profile = load_profile_parameter(resolve(values['profile_path']))
    names = values['class_names']
    session = ClassifierSession.from_checkpoint(
        resolve(values['model_path']), device=values['device'],
        class_names=[] if list(names) == [FROM_CHECKPOINT] else names, profile=profile,
        energy_model=EnergyModel(values['energy_preset']), crop=values['crop'],
        invert=values['invert'])
    session.calibration_off = unlike_training(values, trained_preparation(values, resolve),
                                              session.model)
    return session


AS_TRAINED = ('crop', 'invert')
"""Parameters that default to how the model's training images were prepared (``train``)."""
QUIET_MARGIN_S = 0.1
"""An event stream is quiet this long after its window's length without an event (s)..."""
QUIET_PACKET_GAPS = 2.0
"""... and at least this many times the median time between its packets: a driver that
sends a packet every 250 ms (a raised event_message_time_threshold, a slow replay) had 100 ms
windows closed half-way in the gaps, and their grid moved with each packet (a review).
Before a second packet, when the pace is not known, :data:`QUIET_FIRST_S` at least."""
QUIET_FIRST_S = 1.0
"""How long a stream of one packet so far must be without one to be quiet (s)."""
WINDOWS = ('window_ms', 'window_events', 'window_min_events')
"""How an event model's training windows were cut (a bag's; ``window_events`` None: by time)."""


def _off_cpu(device: str) -> bool:
    """
    Return whether ``device`` is not the CPU.

    'cpu:0' is the CPU (as ``check_device`` reads it): compared as text, a node on it dropped
    its model at every deactivate and read and checked it again at every activate (a review).
    """
    if device == 'cpu':
        return False
    import torch
    return torch.device(device).type != 'cpu'


def _give_back_device_memory() -> None:
    """
    Return the device memory no tensor uses to the device (after a model was let go).

    Collected first: a model held only by reference cycles (torch.fx's tracing keeps the
    frames of the first converted model's load) kept its memory past ``empty_cache`` (a
    review of the device paths).
    """
    import gc

    import torch
    gc.collect()
    torch.cuda.empty_cache()


def trained_preparation(values: Values, resolve: Callable[[str], str]) -> dict:
    """
    Return how ``model_path``'s training data was prepared: :data:`AS_TRAINED`, :data:`WINDOWS`.

    What ``topspark train`` recorded (:func:`~topspark_ros.core.data.sources.recorded_data`);
    {} for a model that records none, or a file that cannot be read (loading it will say why).
    """
    from topspark_ros.core.checkpoint import read_metadata
    from topspark_ros.core.data.sources import recorded_data

    try:
        meta, _ = read_metadata(resolve(values['model_path']))
    except (OSError, ValueError):
        return {}
    options = recorded_data(meta)[1]
    return {name: options[name] for name in AS_TRAINED + WINDOWS if name in options}


def preparation_plan(values: Values, recorded: dict, given: set,
                     defaults: Mapping[str, object]) -> Tuple[dict, List[str]]:
    """
    Return ``(values to set, warnings)``: the :data:`AS_TRAINED` parameters as the model says.

    ``recorded``: :func:`trained_preparation`'s; ``given``: the names the user gave (kept, a
    warning where the model records another value); the others take the model's value, or
    ``defaults`` (the parameters' own) for a model that records none.
    """
    adopt, warnings = {}, []
    for name in AS_TRAINED:
        wanted = recorded.get(name, defaults[name])
        if name in given:
            if name in recorded and values[name] != wanted:
                warnings.append(f'{name} is {values[name]!r}; the model was trained on images '
                                f'prepared with {name} {wanted!r}: frames are prepared unlike '
                                'its training images')
        elif values[name] != wanted:
            adopt[name] = wanted
    return adopt, warnings


def window_mismatch(values: Values, recorded: dict) -> Optional[str]:
    """
    Return how the node's event windows differ from the model's training windows, or None.

    ``recorded``: :func:`trained_preparation`'s; a model that records no windows (trained on
    an event data set of fixed windows, or on frames) never differs.
    """
    if not any(name in recorded for name in WINDOWS):
        return None
    count = recorded.get('window_events')
    trained = (f'{count} events' if count else f"{recorded.get('window_ms', 300.0):g} ms") + \
        f", at least {recorded.get('window_min_events', 50)} events"
    by_count = values['window_mode'] == 'count'
    node = (f"{values['window_events']} events" if by_count else f"{values['window_ms']:g} ms") \
        + f", at least {values['window_min_events']} events"
    return None if node == trained else (
        f'the model was trained on windows of {trained}; the node cuts {node} (set '
        'window_mode, window_ms or window_events and window_min_events to match)')


def frames_model_on_events(values: Values, model) -> Optional[str]:
    """
    Return a warning when event mode runs a model trained on frames, else None.

    A frames-trained STDP network takes events in an untrained encoding (defined, but its
    accuracy is anyone's guess): the README's two-camera recipe ran the Fashion-MNIST model on
    an event camera, 87 digit windows as garments, at OK (a review).
    """
    if values['input_mode'] != 'events' or model.event_encoding is not None:
        return None
    return (f"{values['model_path']} was trained on frames, not events: in event mode it runs "
            "in an untrained encoding and its classes are the frames' (set model_path, and "
            "the controller's and monitor's profile_path, to an event model's)")


def unlike_training(values: Values, recorded: dict, model) -> Optional[str]:
    """
    Return how the node's inputs are prepared unlike the model's training data, or None.

    A frames model in event mode (:func:`frames_model_on_events`), event windows cut unlike
    the training windows (:func:`window_mismatch`), or frames prepared with another ``crop``
    or ``invert`` than the training images (``recorded``: :func:`trained_preparation`'s). The
    model's profile was measured on data prepared as it was trained, so its calibrated scores
    do not describe such inputs (:attr:`ClassifierSession.calibration_off`).
    """
    if frames_model_on_events(values, model) is not None:
        return 'a model trained on frames classifying events'
    if values['input_mode'] == 'events':
        if window_mismatch(values, recorded) is not None:
            return 'event windows cut unlike the training windows'
        return None
    for name in AS_TRAINED:
        if name in recorded and values[name] != recorded[name]:
            return f'frames prepared with another {name} than the training images'
    return None


DEFAULT_NODE = '/classifier'
"""The classifier's fully qualified name as launched alone, whose learnt weights go to
``$ROS_HOME/topspark_ros`` itself."""


def online_save_path(values: Values, resolve: Callable[[str], str],
                     node: str = DEFAULT_NODE) -> str:
    """
    Return where learnt weights go: ``save_path``, else ``$ROS_HOME/topspark_ros/<model>_online``.

    Both through ``resolve`` (``~`` expanded, ``package://`` URLs), as every path parameter.
    ``ROS_HOME`` defaults to ``~/.ros``, as ROS's logs: the model's own folder is a package's
    share folder on a robot (not writable from an apt install, emptied by the next build).
    ``node``: the classifier's fully qualified name; any but ``/classifier`` adds its folders
    (``/camA/classifier``: ``$ROS_HOME/topspark_ros/camA/classifier/<model>_online.json``), so
    two pipelines on one model never save over each other's learning (a user review).
    """
    if values['save_path']:
        return resolve(values['save_path'])
    name = os.path.basename(resolve(values['model_path']))
    name = name[:-5] + '_online.json' if name.endswith('.json') else name + '_online'
    # '~' in ROS_HOME as rcl takes it (a systemd Environment= does not expand it: the weights
    # went to ./~/..., where the node was started, and the logs to the home folder; a review)
    home = os.path.expanduser(os.environ.get('ROS_HOME') or os.path.join('~', '.ros'))
    folders = () if node == DEFAULT_NODE else tuple(p for p in node.split('/') if p)
    return os.path.join(home, 'topspark_ros', *folders, name)


def event_stream(values: Values, region: Optional[Callable] = None):
    """
    Return the :class:`~topspark_ros.core.events.stream.EventStream` the window parameters give.

    ``values``: ``window_mode`` ('time': windows of ``window_ms`` milliseconds, at least 1 us;
    'count': of ``window_events`` events), ``max_pending_windows`` (the backlog),
    ``window_min_events`` and ``max_packet_bytes``; ``region``: the region of interest of a
    sensor size, whose events alone are windowed (None: all).
    """
    from topspark_ros.core.events.stream import EventStream  # the codecs compile on demand
    by_time = values['window_mode'] == 'time'
    return EventStream(
        window_us=max(1, round(values['window_ms'] * 1000.0)) if by_time else None,
        window_events=None if by_time else values['window_events'],
        max_backlog=values['max_pending_windows'], min_events=values['window_min_events'],
        max_packet_bytes=values['max_packet_bytes'], region=region)


class _PacketPace:
    """When an event stream's packets and events came (wall clock): whether it went quiet."""

    def __init__(self) -> None:
        self._last_event_s: Optional[float] = None  # of the last packet that had events
        self._last_packet_s: Optional[float] = None  # of the last packet
        self._gaps = collections.deque(maxlen=32)  # seconds between packets

    def packet(self, now: float, *, repeated: bool, with_events: bool) -> None:
        """Note a packet at ``now``; a repeat dropped as a duplicate is none of the pace."""
        if not repeated:  # (a bridge repeating each packet halved the median gap; a review)
            if self._last_packet_s is not None:
                self._gaps.append(now - self._last_packet_s)
            self._last_packet_s = now
        if with_events:
            self._last_event_s = now

    def quiet(self, now: float, window_s: float) -> bool:
        """
        Return whether the stream is quiet at ``now`` for windows of ``window_s``.

        No event for ``window_s`` plus :data:`QUIET_MARGIN_S`, nor for
        :data:`QUIET_PACKET_GAPS` median packet gaps (:data:`QUIET_FIRST_S` before a gap).
        """
        if self._last_event_s is None:
            return False
        gaps = list(self._gaps)
        pace_s = QUIET_PACKET_GAPS * statistics.median(gaps) if gaps else QUIET_FIRST_S
        return now - self._last_event_s >= max(window_s + QUIET_MARGIN_S, pace_s)


class ClassifierPipeline:
    """
    One classifier's model, counters and commanded ``T`` (see the module docstring).

    Thread-safe as the node uses it: inputs are classified with :attr:`busy` held, counters
    change under a lock of their own, the commanded ``T`` is one assignment.

    Parameters
    ----------
    values
        returns the current parameter values (the classifier node's, by name).
    resolve
        turns a path value into a file (the node resolves ``package://`` URLs).
    node
        the classifier node's fully qualified name (where learnt weights go by default,
        :func:`online_save_path`).

    """

    def __init__(self, values: Callable[[], Values],
                 resolve: Callable[[str], str] = os.path.expanduser,
                 node: str = DEFAULT_NODE) -> None:
        """Start with no model, no stream and every counter at 0."""
        self.values, self.resolve, self.node = values, resolve, node
        self.session: Optional[ClassifierSession] = None
        self.stream = None  # event mode: packets -> windows, made by activate
        self.busy = threading.Lock()
        self.counts = dict.fromkeys(COUNTERS, 0)
        self.last_error = ''
        self.last_input_s: Optional[float] = None  # time.monotonic() of the last input
        self._pace = _PacketPace()  # when the event packets came (quiet windows)
        self._roi_cache = None  # ((sensor, roi), session, region of interest) of _roi_of
        self.configure_error = ''
        self.gaps = FrameGaps()  # frames lost in transport, from the frame stamps
        self.commanded: Optional[int] = None  # the last command's T as it was taken (clamped)
        self.requested: Optional[int] = None  # ... and as it asked (max_timesteps clamps it
        # at each input: raised again, the T asked for comes back)
        # What the last frame was, that the classifier cannot tell from its pixels (a depth
        # encoding); set by the node, in /diagnostics while set.
        self.input_note: Optional[str] = None
        self._lock = threading.Lock()
        self._recent = Recent()
        self._batch = 1
        self._packets_lost = 0
        # Inputs the model in hand learnt: (that session, count). The 'learnt' counter is the
        # process's; a save counted it, and saved a reloaded model over what it had learnt.
        self._learnt_here = (None, 0)
        self._saved_here = (None, 0)  # the model and its learnt count at its last save
        self._freed: Optional[tuple] = None  # _facts of a model free_accelerator dropped
        self._save_hold: Optional[tuple] = None  # (fd, path) of the learnt weights' lock
        self.save_failure: Optional[str] = None  # why the last save failed (None: it did not)

    @property
    def learnt_here(self) -> int:
        """Return how many inputs the model in hand (:attr:`session`) has learnt."""
        session, n = self._learnt_here
        return n if session is self.session and session is not None else 0

    # Lifecycle ----------------------------------------------------------------------------
    def load(self) -> None:
        """
        Open the model (:func:`open_session`), check it and warm it up; ``T`` from the default.

        With ``online_learning`` the warm-up readies learning too (on a copy of the model).

        Raises ValueError, nothing loaded, when the model cannot classify events (``input_mode``
        'events'), cannot learn on line (``online_learning``) or has a class name ROS cannot
        carry (not UTF-8); whatever opening raises.
        """
        values = self.values()
        reason = save_path_refusal(values, self.resolve, self.node) \
            or self._hold_save_path(values, keep=True)
        if reason is not None:
            raise ValueError(reason)
        try:
            session = open_session(values, self.resolve)
            reason = _learning_refusal(_facts(session.model), values['online_learning']) \
                or next(filter(None, map(class_name_problem, session.class_names)), None)
            if reason is not None:
                raise ValueError(reason)
            if values['input_mode'] == 'events':
                session.check_events()  # a frames-only model says why it cannot
            if values['online_learning']:  # what is at save_path: said now, not at a save
                note = self._keep_earlier_learning(session, values)
                if note is not None:
                    session.notes.append(note)
            _warm_up(session, values, bool(values['online_learning']))  # learning's too
        except BaseException:  # a failed configure holds nothing (a review: the lock stayed)
            self._let_go_save_path()
            raise
        self.session, self.commanded, self.requested = session, None, None
        self.configure_error = ''

    def _keep_earlier_learning(self, session, values: Values) -> Optional[str]:
        """
        Say what happens to an earlier run's learning at ``save_path``; return the note.

        ValueError for another model's learning there (found at the first save before, the
        whole session's learning lost at shutdown; a review). See
        :func:`~topspark_ros.core.session.keep_earlier_learning`.
        """
        if session.source_sha256 is None:
            return None
        return keep_earlier_learning(online_save_path(values, self.resolve, self.node),
                                     session.base_model_sha256, session.source_sha256,
                                     session.saved_sha256,
                                     move=False)  # (moved by the first save, under busy)

    def learning_switched_on(self) -> Optional[str]:
        """
        Check ``save_path`` as configure does when learning is switched on; return a note.

        ValueError when another model's learning is there.
        """
        with self.busy:  # (not while a save moves and writes the files)
            session = self.session
            if session is None:
                return None
            return self._keep_earlier_learning(session, self.values())

    def configure_failed(self, exc: Exception) -> str:
        """Note why configure failed (the status is ERROR until one succeeds); return it."""
        self.session = None
        self.last_error = self.configure_error = str(exc)
        return self.configure_error

    def activate(self) -> None:
        """
        Reopen the model if deactivate freed it; in event mode start a new stream.

        A model reopened with ``online_learning`` (switched on while it was freed, off the
        CPU) is checked as configure checks it: the lock on ``save_path`` and what is there
        (ValueError; neither was, and two classifiers learnt into one file; a review).
        """
        values = self.values()
        if self.session is None:  # (freed by deactivate: checked by load)
            session = open_session(values, self.resolve)
            if values['online_learning']:
                reason = self._hold_save_path(values, keep=True)
                if reason is not None:
                    raise ValueError(reason)
                self._keep_earlier_learning(session, values)
            # Warmed up as configure warms it: the first input after activate paid for the
            # device's allocations again, which deactivate's empty_cache gave back (a review).
            _warm_up(session, values, bool(values['online_learning']))
            self.session = session
        self.last_input_s = time.monotonic()  # silence counts from here
        self.gaps.pause()  # frames sent while inactive were not heard: none lost in transport
        self._pace = _PacketPace()
        if values['input_mode'] == 'events':
            self.stream = event_stream(values, region=self._roi_of)
            self._batch = int(values['max_pending_windows'])
            self._packets_lost = 0

    def warm_up_learning(self) -> None:
        """
        Ready on-line learning for the loaded model, as :meth:`load` does when it is on.

        For ``online_learning`` switched on after configure (the node runs this in a thread of
        its own), so that the first learnt input does not compile or load the learning
        kernels while inputs are dropped; nothing happens without a loaded model that learns
        on line. The warm-up runs on a copy of the model, taken under :attr:`busy`: the
        reader classifies with the model meanwhile, and an engine keeps state between the
        steps of a call (the torch engine's inference state, thresholds scaled for a call):
        the warm-up's inference on the model itself, beside a frame's, gave wrong results,
        an ``AttributeError`` and a state left behind for learning (a review).
        """
        session = self.session
        if session is None or not session.model.learns_online:
            return
        with self.busy:  # (a frame that comes meanwhile is dropped: the copy takes ms)
            model = copy.deepcopy(session.model)
        _warm_up(ClassifierSession(model), self.values(), True)

    def free_accelerator(self) -> None:
        """
        Drop a model that is not on the CPU (reopened on activate); hold :attr:`busy`.

        A model that learnt on line is kept: reopened, it would be the model of ``model_path``,
        its learning lost (and saved over at the next save).
        """
        if _off_cpu(self.values()['device']) and not self.learnt_here:
            # Its kind is kept: parameters are checked against it until it is reopened (with
            # none, online_learning was taken for a converted network, and after activate
            # every input failed; a review of the device paths).
            if self.session is not None:
                self._freed = _facts(self.session.model)
            self.session = None
            _give_back_device_memory()

    def unload(self) -> None:
        """
        Let go of the model and the event stream (cleanup); hold :attr:`busy`.

        Nothing keeps the model after this: the count of inputs it learnt held it (and its
        device memory) until a later configure's first learnt input (a review of the nodes'
        footprint).
        """
        on_accelerator = self.session is not None and _off_cpu(self.values()['device'])
        self.session = self.stream = self._roi_cache = None
        self._learnt_here = self._saved_here = (None, 0)
        self.save_failure = None  # (of the model let go)
        self._let_go_save_path()
        if on_accelerator:
            _give_back_device_memory()

    def refusal(self, values: Values) -> Optional[str]:
        """Return why the would-be parameter ``values`` cannot apply, or None."""
        for name in ('model_path', 'profile_path'):  # a file set that is not there: said now,
            # not at the next configure (a review of the parameters)
            if values[name] and values[name] != self.values()[name]:
                missing = self._missing_file(name, values[name])
                if missing is not None:
                    return missing
        if values['device'] != self.values()['device']:  # a new device: is it one here?
            try:
                check_device(values['device'])
            except ValueError as exc:  # it was taken, and failed only at configure (a review)
                return str(exc)
        facts = self._freed if self.session is None else _facts(self.session.model)
        return (_learning_refusal(facts, values['online_learning'])
                or save_path_refusal(values, self.resolve, self.node)
                or self._hold_save_path(values, keep=self.session is not None)
                or self._other_learning(values))

    def early_exit_note(self, values: Values) -> Optional[str]:
        """
        Return a warning when the early-exit rule in ``values`` is not the profile's, or None.

        The timestep controller prices T with the profile's early-exit figures, measured under
        the profile's rule; with margin 1 the inputs used half the steps the controller
        expected, and it promised margin 3's accuracy, unsaid (a review).
        """
        session = self.session
        profile = session.profile if session is not None else None
        if not values['early_exit'] or profile is None:
            return None
        rules = sorted({(e.early_exit_margin, e.early_exit_min_steps) for e in profile.entries
                        if e.early_exit_margin is not None})
        if not rules:
            return None
        rule = Settings.from_values(values).early_exit_rule(session.model)
        if (rule.margin, rule.min_steps) in rules:
            return None
        margin, floor = rules[0]
        return (f'early exit with margin {rule.margin:g} from step {rule.min_steps}: the '
                f"profile's early-exit figures are of margin {margin:g} from step {floor}, "
                'and the timestep controller prices T with them (accuracy and steps); give '
                "the profile's rule, or sweep with this one (topspark sweep "
                '--early-exit-margin, --early-exit-min-steps)')

    def _missing_file(self, name: str, value: str) -> Optional[str]:
        """Return why the file parameter ``name`` set to ``value`` names no file, or None."""
        try:
            path = self.resolve(value)
        except ValueError as exc:  # package:// of a package that is not installed
            return f'{name}: {exc}'
        if name == 'model_path':
            from topspark_ros.core.checkpoint import metadata_path
            if os.path.isfile(path) or metadata_path(path).is_file():
                return None
        elif os.path.isfile(path):
            return None
        return f'{name}: {path} is not a file'

    def _other_learning(self, values: Values) -> Optional[str]:
        """Return why learning cannot be switched on into ``save_path``, or None."""
        if not values['online_learning'] or self.values()['online_learning'] \
                or self.session is None:
            return None
        try:  # (what configure checks; moving nothing)
            self._keep_earlier_learning(self.session, values)
        except ValueError as exc:
            return str(exc)
        return None

    def _hold_save_path(self, values: Values, keep: bool) -> Optional[str]:
        """
        Hold where learnt weights go, one learner at a time; return why not, or None.

        With ``online_learning``, the lock file ``.<checkpoint>.lock`` beside the checkpoint
        :func:`online_save_path` names is held from configure (or from learning switched on)
        to cleanup: two classifiers given one ``save_path`` saved over each other's learning
        in turn, every save succeeding (a review of storage faults). ``keep`` False: only
        whether it could be held (nothing configured yet).
        """
        if not values['online_learning']:
            return None
        target = metadata_path(online_save_path(values, self.resolve, self.node))
        lock_path = target.parent / f'.{target.name}.lock'
        if self._save_hold is not None and self._save_hold[1] == lock_path:
            return None
        if not keep and not target.parent.is_dir():
            return None  # nobody learns into a folder that does not exist
        try:
            os.makedirs(target.parent, exist_ok=True)
            fd = hold_lock_file(lock_path)
        except OSError as exc:
            return f'learnt weights cannot be saved to {target}: {exc}'
        if fd is None:
            return (f'another classifier learns on line into {target} (it holds {lock_path}, '
                    'in this process or another; one that switched learning off holds it until '
                    'its cleanup): give each classifier that learns its own save_path')
        if not keep:
            release_lock_file(fd, lock_path)
            return None
        self._let_go_save_path()
        self._save_hold = (fd, lock_path)
        return None

    def _let_go_save_path(self) -> None:
        """Let go of the learnt weights' lock (:meth:`_hold_save_path`)."""
        if self._save_hold is not None:
            release_lock_file(*self._save_hold)
            self._save_hold = None

    # Timesteps ----------------------------------------------------------------------------
    def command(self, timesteps: int, model_sha256: str = '') -> Optional[str]:
        """
        Take a commanded ``T``; return a warning to log, or None.

        Above ``max_timesteps`` it is clamped to it (``timesteps_clamped``), below 1 ignored
        (``timesteps_refused``); above the largest T of the model's profile it is taken, with a
        warning. A command whose ``model_sha256`` names another model (the controller's
        profile is another model's) is ignored (``timesteps_other_model``): a controller
        given the converted model's profile drove the STDP classifier to T=2, where it
        classified nothing right, and only the controller warned (a review).
        """
        session = self.session
        if model_sha256 and session is not None and session.source_sha256 is not None \
                and not describes(model_sha256, *session.identity()):
            self.count('timesteps_other_model')
            return (f'TimestepCommand T={timesteps} ignored: it was chosen on the profile of '
                    f'another model ({model_sha256[:16]}...; this classifier runs '
                    f'{session.source_sha256[:16]}...): give the timestep_controller this '
                    "model's profile")
        if timesteps < 1:
            self.count('timesteps_refused')
            return 'TimestepCommand with T=0 ignored'
        self.requested = timesteps
        ceiling, warning = self.values()['max_timesteps'], None
        profile = session.profile if session is not None else None
        if timesteps > ceiling:
            self.count('timesteps_clamped')
            warning = f'TimestepCommand T={timesteps} clamped to max_timesteps {ceiling}'
            if profile is not None and ceiling not in profile.timesteps:
                # The profile's enhanced values and results by confidence are per T: at a T it
                # did not measure the model runs with its own values and shares as scores (a
                # review found the scores' meaning switching on such a clamp, unsaid).
                below = [t for t in profile.timesteps if t <= ceiling]
                warning += (" (not a T of the profile: the model's own values there, and "
                            'vision_msgs scores are shares; '
                            + (f'max_timesteps {below[-1]} would be' if below else 'none is')
                            + f' one of its T {profile.timesteps})')
            timesteps = ceiling
        if warning is None and profile is not None and profile.entries \
                and timesteps > profile.entries[-1].timesteps:
            # Nothing is known of its latency or energy there: a TimestepCommand of 1e5 took
            # a minute of CPU a window at OK (a review); max_timesteps bounds it.
            warning = (f'TimestepCommand T={timesteps} is above the largest T its profile '
                       f'measured ({profile.entries[-1].timesteps}): latency and energy there '
                       'are not known (max_timesteps bounds what a command can ask for)')
        self.commanded = timesteps
        return warning

    def current_timesteps(self, settings: Optional[Settings] = None) -> int:
        """Return ``T`` for the next input (``settings``: read now when not given)."""
        settings = settings or Settings.from_values(self.values())
        return settings.timesteps(self.requested)

    def ceiling_note(self, values: Values) -> Optional[str]:
        """
        Return what ``max_timesteps`` in ``values`` does to the T in force, or None.

        ``max_timesteps`` clamps the default T and a command's alike, and a command taken while
        it was lower comes back whole when it is raised. A default above it was refused, and
        a node started so (the shipped ``default_timesteps`` 100 with ``max_timesteps`` 64)
        then refused every later set of any parameter (a review).
        """
        ceiling, requested = values['max_timesteps'], self.requested
        if requested is not None and requested > ceiling:
            return f'max_timesteps {ceiling} clamps the commanded T={requested} to {ceiling}'
        default = values['default_timesteps']
        if requested is None and default > ceiling:
            return (f'default_timesteps {default} is above max_timesteps {ceiling}: T={ceiling} '
                    'until a TimestepCommand')
        in_force = min(requested or default, ceiling)
        session = self.session
        profile = session.profile if session is not None else None
        if profile is not None and profile.entries and in_force > profile.entries[-1].timesteps:
            # (a stray command, clamped, came back whole with the cap raised: said; a review)
            return (f'T={in_force} in force is above the largest T its profile measured '
                    f'({profile.entries[-1].timesteps}): latency and energy there are not '
                    'known')
        return None

    # Counters -----------------------------------------------------------------------------
    def count(self, key: str) -> int:
        """Add one to counter ``key``; return its new value."""
        with self._lock:
            self.counts[key] += 1
            return self.counts[key]

    def error(self, reason) -> str:
        """Count an error and keep ``reason`` (its text) as the last; return the text."""
        self.count('errors')
        self.last_error = str(reason)
        return self.last_error

    def drop_frame(self, stamp_ns: int, *, waited: bool = False,
                   missed: Optional[int] = None) -> None:
        """
        Count a frame stamped ``stamp_ns`` (ns) that arrived and was dropped unprocessed.

        ``waited``, ``missed``: as for :meth:`classify_frame`.
        """
        self._note_frame(stamp_ns, waited, missed)
        self.count('dropped')

    def _note_frame(self, stamp_ns: int, waited: bool, missed: Optional[int]) -> None:
        self.last_input_s = time.monotonic()
        with self._lock:
            replaced = self.gaps.add(stamp_ns, busy=waited, missed=missed)
            if waited:
                self.counts['dropped'] += replaced

    # Inputs -------------------------------------------------------------------------------
    def classify_frame(self, stamp_ns: int, read: Callable[[], Tuple[np.ndarray, str]], tag,
                       publish: Publish, *, waited: bool = False,
                       missed: Optional[int] = None) -> Optional[str]:
        """
        Classify one frame now, or drop and count it while the model is busy.

        ``stamp_ns``: its capture stamp (ns, for :attr:`gaps`); ``read()`` returns ``(frame,
        layout)`` (the message converted, with the model held). The prediction goes to
        ``publish(prediction, tag, frames dropped so far)``. A ValueError of ``read`` or of
        the model (an unreadable frame) reaches the caller, which counts it (:meth:`error`).
        ``waited``: the frame waited in the subscription's queue while an earlier one was
        classified; the frames missing before it were replaced there meanwhile (keep-last)
        and are counted as dropped, not as lost in transport: ``missed`` of them where the
        reader counted them (sequence numbers), else as many as the stamps are missing
        (:meth:`FrameGaps.add <topspark_ros.core.frame_gaps.FrameGaps.add>`).
        Returns why a periodic save failed, or None.
        """
        self._note_frame(stamp_ns, waited, missed)
        if not self.busy.acquire(blocking=False):
            self.count('dropped')
            return None
        try:
            settings = Settings.from_values(self.values())
            timesteps, session = self.current_timesteps(settings), self.session
            start = time.perf_counter()  # the message's decoding counts in latency_ms
            frame, layout = read()
            stamped = settings.input_seed == 'stamp'
            prediction = session.classify(
                frame, layout, timesteps, since=start,
                early_exit=settings.early_exit_rule(session.model),
                seed=SampleSeeds.of_stamp(stamp_ns, _INFERENCE) if stamped else None)
            if settings.online_learning:  # published with the cost of learning from it
                learning_start = time.perf_counter()
                learnt = session.learn(
                    frame, layout, timesteps,
                    seed=SampleSeeds.of_stamp(stamp_ns, _LEARNING) if stamped else None)
                prediction = session.charge_learning(
                    prediction, learnt, (time.perf_counter() - learning_start) * 1e3)
            return self._done([prediction], [tag], self.counts['dropped'], settings, publish)
        finally:
            self.busy.release()

    def push_packet(self, fields: Values, tag, worker) -> None:
        """
        Decode and window one event packet; hand complete windows to ``worker``.

        ``fields``: the packet's fields as ``EventStream.push`` takes them; ``tag`` goes with
        the windows its events end. An idle model takes new windows at once
        (``worker.offer(take=...)``, so a burst of packets that completes several windows
        before the worker runs drops none); while it is busy they wait in the stream's
        backlog, which drops the oldest, and ``worker.trigger()`` asks for one more
        :meth:`drain_windows`. ValueError for a packet the decoder refuses.
        """
        now = time.monotonic()
        self.last_input_s = now
        stream = self.stream
        if stream is None:
            return
        with_events = stream.packets_with_events
        duplicates = stream.counts['packets_duplicate']
        made = stream.push(**fields, tag=tag)
        self._pace.packet(now, repeated=stream.counts['packets_duplicate'] != duplicates,
                          with_events=stream.packets_with_events != with_events)
        if not made or worker is None:
            return
        if self.busy.locked() or not worker.offer(take=self._pop_batch):
            worker.trigger()  # one more run of the worker, after the one in progress

    def close_quiet_window(self, worker) -> int:
        """
        Close the open time window of an event stream gone quiet; return the windows made.

        Called now and then (the classifier: with its /diagnostics status). Once no event has
        come for the window's length and a tenth of a second more, and for twice the median
        time between packets (:data:`QUIET_PACKET_GAPS`), its open window holds every event
        it will get: it is closed (if it has ``window_min_events``) and handed to ``worker``
        as :meth:`push_packet` hands windows over. Without this, the last window of a stream
        that stops was never classified
        (:meth:`~topspark_ros.core.events.stream.EventStream.close_open_window`); packets
        that carry time but no event (a covered camera's) do not hold it open (they did; a
        review).
        """
        stream = self.stream
        if stream is None or stream.window_us is None \
                or not self._pace.quiet(time.monotonic(), stream.window_us / 1e6):
            return 0
        made = stream.close_open_window()
        if made and worker is not None and (self.busy.locked()
                                            or not worker.offer(take=self._pop_batch)):
            worker.trigger()
        return made

    def _pop_batch(self) -> list:
        stream = self.stream
        return [] if stream is None else stream.pop(self._batch)

    def drain_windows(self, windows: Optional[list], active: Callable[[], bool],
                      classify: Callable[[list], None]) -> None:
        """
        Run ``classify(batch)`` on ``windows`` (handed over), then on those waiting.

        A batch is at most ``max_pending_windows`` windows; :attr:`busy` is held throughout,
        and it goes on while ``active()``. Without ``windows`` nothing happens while the
        model is busy (saving, or a test holding it): the next packet wakes the worker again;
        with them it waits for the model (a save takes a moment) unless ``active()`` ends.
        """
        if not windows:
            windows = None
            if not active() or not self.busy.acquire(blocking=False):
                return
        else:
            while not self.busy.acquire(timeout=0.05):
                if not active():
                    return  # deactivating
        try:
            while active() and self.stream is not None:
                batch, windows = windows or self._pop_batch(), None
                if not batch:
                    break
                classify(batch)
        finally:
            self.busy.release()

    def classify_windows(self, windows: List, publish: Publish) -> Optional[str]:
        """
        Classify a batch of complete windows of one sensor (in :meth:`drain_windows`).

        Each prediction goes to ``publish(prediction, window tag, windows dropped so far)``.
        Returns why a periodic save failed, or None.
        """
        settings = Settings.from_values(self.values())
        timesteps, session = self.current_timesteps(settings), self.session
        sensor_size, roi = windows[0].sensor_size, settings.region
        arrays = [w.events for w in windows]
        predictions = session.classify_events(
            arrays, sensor_size, timesteps, roi=roi,
            early_exit=settings.early_exit_rule(session.model))
        if settings.online_learning:  # published with the cost of learning from each window
            learning_start = time.perf_counter()
            learnt = session.learn_events(arrays, sensor_size, timesteps, roi=roi)
            learning_ms = (time.perf_counter() - learning_start) * 1e3 / max(len(learnt), 1)
            predictions = [session.charge_learning(prediction, ops, learning_ms)
                           for prediction, ops in zip(predictions, learnt)]
        return self._done(predictions, [w.tag for w in windows],
                          self.stream.counts['windows_dropped'], settings, publish)

    def _done(self, predictions: list, tags: list, dropped: int, settings: Settings,
              publish: Publish) -> Optional[str]:
        """Publish and count the predictions, then account learning; return a save failure."""
        for prediction, tag in zip(predictions, tags):
            publish(prediction, tag, dropped)
            self.count('processed')
        failure = None
        for _ in predictions if settings.online_learning else ():
            failure = self._learnt(settings.save_every_n) or failure
        return failure

    # Saving -------------------------------------------------------------------------------
    def _learnt(self, save_every_n: int) -> Optional[str]:
        """Count a learnt input; save every ``save_every_n``; return why a save failed."""
        self.count('learnt')
        learnt = self.learnt_here + 1
        self._learnt_here = (self.session, learnt)
        if save_every_n and learnt % save_every_n == 0:
            try:
                self.save()
            except (OSError, ValueError) as exc:  # as ~/save_model: say why, keep classifying
                return self.error(f'periodic save failed: {exc}')
        return None

    def save(self) -> str:
        """
        Save the learnt weights (:func:`online_save_path`); return the metadata path.

        ``online_frames`` counts the inputs learnt since the base model: those the loaded
        checkpoint records, plus those this model learnt since it was loaded.
        """
        session = self.session
        before = int(session.checkpoint_info.get('online_frames', 0) or 0)
        try:
            path = session.save(online_save_path(self.values(), self.resolve, self.node),
                                info={'online_frames': before + self.learnt_here})
        except (OSError, ValueError) as exc:  # every failed save counted and kept for the
            self.count('save_failures')  # status until one succeeds (a review: a WARN of one
            self.save_failure = str(exc)  # status in 33 while nothing was saved)
            raise
        self.save_failure = None
        self.count('saved')
        self._saved_here = (session, self.learnt_here)
        return path

    def save_now(self) -> Tuple[bool, str]:
        """
        Save after the input in progress; return ``(success, message)`` (``~/save_model``).

        Nothing is saved when the model in hand learnt nothing: a classifier that did not
        learn replaced another's learnt weights with its base model, past that one's lock (a
        review). A failed save is counted (``save_failures``).
        """
        with self.busy:
            if self.session is None:
                return False, 'no model loaded (configure first)'
            if not self.learnt_here:
                return False, ('nothing learnt since configure: nothing saved (what save_path '
                               'holds is left as it is)')
            try:
                return True, f'saved {self.save()}'
            except (OSError, ValueError) as exc:
                return False, f'save failed: {exc}'

    def save_if_learnt(self) -> Optional[str]:
        """
        Save if the model in hand learnt since its last save (hold :attr:`busy`); the path.

        None when there is nothing new: a second deactivate wrote the same weights again and
        said it saved them (a review).
        """
        if self.session is None or not self.learnt_here or \
                self._saved_here == (self.session, self.learnt_here):
            return None
        return self.save()

    # Status -------------------------------------------------------------------------------
    def status(self, state: str, active: bool) -> Tuple[int, str, dict]:
        """
        Return ``(level, message, values)``: how the classifier is (levels :data:`OK`, ...).

        :data:`ERROR` while the last configure failed (with its reason); :data:`WARN` while
        not ``active`` (the message is the lifecycle ``state``), and while errors, lost event
        packets, corrupt event time stamps, duplicate packets, windows dropped from a full
        backlog or more than one restart of the event stream (a new sensor or encoding, time
        going back) happened since the previous status (so a WARN clears once they stop);
        :data:`OK` otherwise. ``values``: the counters, the frame gaps (frames only), in event
        mode the event stream's counters, which never go back (see
        :meth:`~topspark_ros.core.events.stream.EventStream.stats`), then ``timesteps`` (of
        the next input), ``model``, ``device``, ``input_mode`` and ``lifecycle_state``.
        """
        with self._lock:
            values = dict(self.counts)
            if self.stream is None:  # frames (in event mode they only said 0; a review)
                values.update(self.gaps.stats())
        if self.configure_error:
            level, message = ERROR, f'configure failed: {self.configure_error}'
        elif active:
            level, message = OK, 'classifying'
            silent_s = time.monotonic() - (self.last_input_s or time.monotonic())
            if silent_s > self.values()['silence_warn_s']:  # a camera stopped, a wrong topic
                level, message = WARN, f'active; no input for {silent_s:.0f} s'
                if self.stream is None and self.busy.locked():  # (the reader takes no frame
                    # while it classifies one: not the camera's silence)
                    message = f'active; one frame in progress for {silent_s:.0f} s'
        else:
            level, message = WARN, state
        errors = self._recent.since('errors', values['errors'])
        processed = self._recent.since('processed', values['processed'])
        if self.save_failure is not None and self.learnt_here:
            level = max(level, WARN)
            message = f'{message}; learnt weights not saved: {self.save_failure}'
        others = self._recent.since('timesteps_other_model', values['timesteps_other_model'])
        if others:  # (the T in use is not the controller's: said, not only logged)
            level = max(level, WARN)
            message = (f'{message}; {others} TimestepCommands of another model ignored '
                       "(the timestep_controller's profile is another model's)")
        if errors:
            level = max(level, WARN)
            if level == WARN and message == 'classifying' and not processed:
                message = 'nothing classified'  # every input refused ('classifying'; a review)
            message = f'{message}; {errors} errors since the last status, last: ' \
                f'{self.last_error}'
        session = self.session
        if self.stream is None:  # frames: an RGB model on a mono camera, a depth topic (reviews)
            for note in (None if session is None else session.frame_note, self.input_note):
                if note is not None:
                    level = max(level, WARN)
                    message = f'{message}; {note}'
        stream = self.stream
        if stream is not None:  # event mode: decoder, windows and backlog counters
            events = stream.stats()
            lost = events.get('packets_lost', 0) - self._packets_lost
            self._packets_lost += lost
            if lost > 0 and level == OK:
                level, message = WARN, f'{message}; {lost} event packets lost'
            # A stream started afresh more than once a status (packets of two sensors or
            # encodings on the topic, a driver restarting), or packets coming twice: each
            # restart loses the window in progress, and all of them were silent (a review).
            # Windows dropped from a full backlog: the model is behind the stream (at OK, a
            # TimestepCommand of T=1e5 had it drop 143 windows in a minute; a review).
            # Corrupt evt3 time stamps the decoder refused (it kept its time base). Events
            # outside the declared sensor: a driver's wrong width or height dropped most of
            # them, the results were wrong and nothing said so (a review).
            for name, what in (('time_jumps_refused', 'corrupt event time stamps refused'),
                               ('decoder_restarts', 'new sensors or encodings'),
                               ('stream_restarts', "restarts of the event packets' seq"),
                               ('windower_restarts', 'restarts of the event time'),
                               ('packets_duplicate', 'duplicate event packets dropped'),
                               ('windows_dropped', 'windows dropped: the model is behind'),
                               ('out_of_sensor', 'events outside the '
                                f"{events.get('sensor', '?')} sensor the packets declare "
                                '(their width and height wrong?)')):
                recent = self._recent.since(name, events.get(name, 0))
                if recent > (1 if name.endswith('_restarts') else 0):
                    level = max(level, WARN)
                    message = f'{message}; {recent} {what}'
            values.update(events)
            values.update(self._region(stream.sensor_size))
        settings = self.values()
        timesteps = self.current_timesteps(Settings.from_values(settings))
        values.update(timesteps=timesteps, model=settings['model_path'],
                      device=settings['device'], input_mode=settings['input_mode'],
                      lifecycle_state=state, vision_score=self.score_kind(timesteps, settings))
        return level, message, values

    def _roi_of(self, sensor: Tuple[int, int]) -> Optional[tuple]:
        """
        Return the region of interest ``(x0, y0, w, h)`` the model takes of ``sensor``, or None.

        ``roi`` or the model's default for that sensor size (None: no model, or a ``roi``
        beyond this sensor, which each window's encoding reports). Asked for every packet, so
        kept for the last sensor, ``roi`` and session.
        """
        session = self.session
        encoding = None if session is None else session.model.event_encoding
        if encoding is None:
            return None
        values = self.values()
        key = (tuple(sensor), tuple(values['roi']))
        cached = self._roi_cache
        if cached is not None and cached[0] == key and cached[1] is session:
            return cached[2]
        try:
            roi = encoding.geometry(sensor, Settings.from_values(values).region).roi
        except ValueError:
            roi = None
        self._roi_cache = (key, session, roi)  # (the session itself: an id may come again)
        return roi

    def _region(self, sensor: Optional[Tuple[int, int]]) -> dict:
        """
        Return where a ``(width, height)`` sensor's events go (``roi``, pixels per input).

        The region of interest in use (``roi`` or the model's default for that sensor: a
        large sensor's events are many sensor pixels to an input pixel, which the parameters
        did not say; a review), as ``x0,y0,w,h``, and ``sensor_pixels_per_input``; {} before
        the first packet.
        """
        session = self.session
        encoding = None if session is None else session.model.event_encoding
        if encoding is None or sensor is None:
            return {}
        try:
            geometry = encoding.geometry(sensor, Settings.from_values(self.values()).region)
        except ValueError as exc:  # a roi beyond this sensor (each window says so too)
            return {'roi': f'not usable: {exc}'}
        x0, y0, w, h = geometry.roi
        return {'roi': f'{x0},{y0},{w},{h}',
                'sensor_pixels_per_input': round(w * h / (geometry.width * geometry.height), 2)}

    def score_kind(self, timesteps: int, settings: Optional[Values] = None) -> str:
        """
        Return what the vision_msgs ``score`` of a result at ``timesteps`` is, in words.

        ``calibrated (T=32)`` (``calibrated (T=32, early exit)``: of the early-exit rule on):
        the probability of being right the profile measured; else
        ``share of the evidence: <why not calibrated>``
        (:meth:`~topspark_ros.core.session.ClassifierSession.calibration_gap`).
        """
        settings = settings or self.values()
        session = self.session
        if session is None:
            return 'share of the evidence: no model loaded'
        rule = Settings.from_values(settings).early_exit_rule(session.model)
        gap = session.calibration_gap(timesteps, early_exit=rule,
                                      events=settings['input_mode'] == 'events')
        if gap is not None:
            return f'share of the evidence: {gap}'
        return f'calibrated (T={timesteps}{", early exit" if rule else ""})'


def _warm_up(session: ClassifierSession, values: Values, learning: bool) -> None:
    """Warm ``session`` up for its input mode; with ``learning``, on-line learning too."""
    if values['input_mode'] == 'events':
        spec = session.model.input_spec
        session.warm_up_events((spec.width, spec.height), learning=learning)
    else:
        session.warm_up(learning=learning)


def save_path_refusal(values: Values, resolve: Callable[[str], str],
                      node: str = DEFAULT_NODE) -> Optional[str]:
    """
    Return why learnt weights could not be saved where the parameters say, or None.

    Checked when on-line learning is on, at configure and when it is switched on: a bad
    ``save_path`` was found only at the first save, and the learning lost at shutdown. A
    directory is refused (the checkpoint went beside it); so is a folder that cannot be made
    or written.
    """
    if not values['online_learning']:
        return None
    path = online_save_path(values, resolve, node)
    if values['save_path'].endswith(('/', os.sep)) or os.path.isdir(path):
        return f'save_path {path} is a directory: give a file name (.json)'
    problem = output_folder_problem(os.path.abspath(path))
    return None if problem is None else f'learnt weights cannot be saved to {problem}'


def _facts(model) -> tuple:
    """Return what parameters are checked against of ``model``: ``(learns_online, kind)``."""
    return bool(model.learns_online), type(model).__name__


def _learning_refusal(facts: Optional[tuple], online_learning: bool) -> Optional[str]:
    """Return why ``online_learning`` cannot be on with a model of :func:`_facts`, or None."""
    if online_learning and facts is not None and not facts[0]:
        return (f'online_learning needs a model that learns on line (STDP); '
                f'{facts[1]} is trained offline')
    return None
