"""
The classifier: camera frames or event packets in, spiking-network classifications out.

A lifecycle node. While active (only then) it subscribes its input: with ``input_mode:
frames`` ``image`` (sensor_msgs/Image, sensor-data QoS by default; the encodings of
:mod:`topspark_ros.conversions.image`) or, with ``image_transport: compressed``,
``image/compressed`` (sensor_msgs/CompressedImage, JPEG or PNG), with ``input_mode: events``
``events`` (event_camera_msgs/EventPacket, as metavision_driver and libcaer_driver publish;
best effort by default), whose packets it decodes, cuts the stream into windows (by time or by
event count) and classifies each complete window (a time window is complete once a later
event arrives: a still scene, which makes no events, makes no classifications). Either way it
subscribes ``timestep`` (TimestepCommand, reliable + transient local) and publishes
``classification`` (Classification, header copied from the image, or from the packet holding
the window's last event), the same result as ``vision_classification``
(vision_msgs/Classification, unless ``publish_vision_msgs`` is false), ``label_info``
(vision_msgs/LabelInfo, reliable + transient local, published on configure) and
``/diagnostics``. Configure loads the model, activate starts
work (input subscribed), deactivate stops it (input unsubscribed, learnt weights saved) and
frees the accelerator, cleanup unloads. A transition the current state does not allow is
refused and logged (:mod:`topspark_ros.nodes.lifecycle`).
A frame that arrives while another is being processed is dropped and counted, never queued;
event windows wait in a backlog of at most ``max_pending_windows`` (the oldest dropped and
counted). ``~/save_model`` (std_srvs/Trigger) saves learnt weights.

Threads: the input (``image`` or ``events``) is not read by the executor but by a reader thread
of its own (:class:`topspark_ros.nodes.intake.SubscriptionReader`), which takes every message
waiting at each wake-up, and classification runs in a worker thread
(:class:`~topspark_ros.nodes.intake.Worker`); both exist while the node is active. So the input
path costs the same on every executor of :mod:`topspark_ros.nodes.runner` (the C++
``EventsExecutor`` included), and a busy executor loses no packet: event packets are decoded
and windowed in the reader as they come (1 ms packets at 1 000 per second and more), frames are
handed to the worker, or dropped and counted when it is busy. The executor runs the rest:
parameters, lifecycle, ``timestep``, ``~/save_model``, ``/diagnostics``.
"""

import threading
from typing import Optional

from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.lifecycle import TransitionCallbackReturn
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Header
from std_srvs.srv import Trigger

from topspark_ros.conversions.events import event_packet_type, packet_to_fields
from topspark_ros.conversions.image import compressed_to_array, image_to_array
from topspark_ros.conversions.results import (class_labels, label_info_msg, prediction_to_msg,
                                              prediction_to_vision_msg, vision_msgs_types)
from topspark_ros.core.energy import EnergyModel, PRESETS
from topspark_ros.core.frame_gaps import FrameGaps
from topspark_ros.core.preprocess import CROPS
from topspark_ros.core.threads import DEFAULT_TORCH_THREADS, set_torch_threads
from topspark_ros.msg import Classification, TimestepCommand
from topspark_ros.nodes import diagnostics
from topspark_ros.nodes.intake import SubscriptionReader, Worker
from topspark_ros.nodes.lifecycle import LifecycleNode
from topspark_ros.nodes.parameters import declare, Param, values
from topspark_ros.nodes.qos import reliability, warn_on_incompatible_qos
from topspark_ros.nodes.resources import resolve

IMAGE_TRANSPORTS = ('raw', 'compressed')
INPUT_MODES = ('frames', 'events')
MAX_TIMESTEPS = 100000  # T=1e5 takes about 0.2 s a frame with the shipped STDP model
WINDOW_MODES = ('time', 'count')
WORKER_NICE = 10
"""Event mode: the classifying thread's nice value above the process's (input goes first)."""

PARAMS = (
    Param('input_mode', 'frames', "What is classified: camera frames ('image' topic) or "
          "event-camera packets ('events' topic, event_camera_msgs/EventPacket).",
          choices=INPUT_MODES, live=False),
    Param('model_path', '', 'Checkpoint (.json) of the model to load on configure '
          '(a path or package://<package>/<path>).', live=False),
    Param('device', 'cpu', "Where the model runs: 'cpu' or a torch device such as 'cuda'.",
          live=False),
    Param('torch_threads', DEFAULT_TORCH_THREADS, 'Intra-op threads of torch in this process '
          '(1: measured robust when other nodes share the cores, see docs/benchmarks.md; more '
          'pays only with idle cores).', low=1, high=256, live=False),
    Param('profile_path', '', 'Timestep profile (.yaml) whose enhanced parameters are applied '
          "at each T; '' for none.", live=False),
    Param('default_timesteps', 64, 'Timestep count T used until a TimestepCommand arrives '
          '(at most max_timesteps).', low=1, high=MAX_TIMESTEPS),
    Param('max_timesteps', MAX_TIMESTEPS, 'Largest T used: a TimestepCommand above it is '
          'clamped to it, one of 0 ignored (both counted in /diagnostics: timesteps_clamped, '
          'timesteps_refused).', low=1, high=MAX_TIMESTEPS),
    Param('early_exit', False, 'Stop an input early once its winning class is decided.'),
    Param('early_exit_margin', 3.0, 'Early exit: lead in accumulated output spikes of the best '
          'class over the second (> 0).', above=0.0),
    Param('early_exit_min_steps', 8, 'Early exit: never stop before this many steps.', low=1),
    Param('online_learning', False, 'Adapt the weights to incoming frames with unsupervised '
          'STDP at the commanded T (each classification then carries the cost of learning '
          'from its frame: plasticity_updates and energy_j).'),
    Param('save_path', '', "Where learnt weights are saved ('' : next to model_path with "
          "suffix '_online').", live=False),
    Param('save_every_n', 1000, 'On-line learning: save the weights every N learnt frames '
          '(0: only on deactivate, shutdown and ~/save_model).', low=0),
    Param('class_names', ['__from_checkpoint__'], 'One name per class; the default takes the '
          "checkpoint's names.", live=False),
    Param('energy_preset', 'cmos45_fp32', 'Hardware preset of the energy estimates.',
          choices=tuple(PRESETS), live=False),
    Param('crop', 'center', 'How frames are fitted to the model input.', choices=CROPS,
          live=False),
    Param('invert', False, 'Invert intensities (for dark objects on light backgrounds).',
          live=False),
    Param('image_reliability', 'best_effort', 'QoS reliability of the image subscription.',
          choices=('best_effort', 'reliable'), live=False),
    Param('image_depth', 1, 'QoS queue depth of the image subscription.', low=1, high=100,
          live=False),
    Param('image_transport', 'raw', "Frames: 'raw' subscribes sensor_msgs/Image on 'image', "
          "'compressed' sensor_msgs/CompressedImage (JPEG or PNG) on 'image/compressed', as "
          "image_transport's compressed transport names it.", choices=IMAGE_TRANSPORTS,
          live=False),
    Param('publish_vision_msgs', True, 'Also publish vision_msgs/Classification on '
          "'vision_classification' and a latched vision_msgs/LabelInfo on 'label_info' "
          '(needs the vision_msgs package).', live=False),
    Param('diagnostics_period_s', 1.0, 'Period of the /diagnostics status (s, node clock).',
          low=0.05, high=3600.0, live=False),
    Param('window_mode', 'time', 'Events: cut the stream into windows of window_ms '
          "milliseconds ('time') or of window_events events ('count').", choices=WINDOW_MODES,
          live=False),
    Param('window_ms', 300.0, "Events: window length for window_mode 'time' (ms).", low=0.001,
          high=1e6, live=False),
    Param('window_events', 3000, "Events: events per window for window_mode 'count' (the "
          'open window is held in memory, 13 bytes an event).', low=1, high=1000000,
          live=False),
    Param('window_min_events', 50, 'Events: windows with fewer events are not classified.',
          low=1, live=False),
    Param('roi', [0, 0, 0, 0], 'Events: region of interest [x0, y0, width, height] on the '
          'sensor (pixels) mapped onto the model input; width or height 0: the region the '
          'model was trained on, else the centred crop.', low=0, length=4, live=False),
    Param('max_pending_windows', 2, 'Events: complete windows kept while the model is busy; '
          'beyond it the oldest are dropped and counted.', low=1, high=1000, live=False),
    Param('events_reliability', 'best_effort', 'Events: QoS reliability of the events '
          'subscription.', choices=('best_effort', 'reliable'), live=False),
    Param('events_depth', 100, 'Events: QoS queue depth of the events subscription (packets; '
          'drivers publish about one per millisecond, and a lost packet loses events).',
          low=1, high=10000, live=False),
    Param('max_packet_bytes', 1048576, 'Events: larger packets are refused unread and counted '
          '(errors, packets_refused); decoding one takes at most about 79 times its size in '
          'memory. 1 MiB holds 1 ms of a sensor at 300 Mev/s in evt3.', low=1024,
          high=1 << 30, live=False),
)


class ClassifierNode(LifecycleNode):
    """Lifecycle node wrapping :class:`topspark_ros.core.session.ClassifierSession`."""

    def __init__(self, **kwargs) -> None:
        """Declare parameters; everything else happens in the lifecycle transitions."""
        super().__init__('classifier', **kwargs)
        declare(self, PARAMS, is_active=lambda: self._active,
                extra_check=lambda p: _check_timesteps(p) or self._check_learning(p))
        self._active = False
        self._session = None
        self._busy = threading.Lock()
        self._stats_lock = threading.Lock()
        self._timesteps = None
        self._counts = {'processed': 0, 'dropped': 0, 'errors': 0, 'learnt': 0, 'saved': 0,
                        'save_failures': 0, 'timesteps_clamped': 0, 'timesteps_refused': 0}
        self._last_error = ''
        self._pub = self._service = self._wake = None
        self._vision_pub = self._label_pub = self._labels = None  # vision_msgs outputs
        self._subscriptions_made = []
        self._stream = None  # event mode: packets -> windows (core.session.EventStream)
        # Only while active: the input's reader thread (image or events) and the worker
        # thread that classifies (self._wake).
        self._input_sub = self._packet_type = None
        self._packets_lost = 0
        self._max_windows = 1
        # /diagnostics from construction on, so a node that fails to configure says why.
        self._gaps = FrameGaps()  # frames lost in transport, from the image stamps
        self._recent = diagnostics.Recent()
        self._configure_error = ''
        self._diagnostics = diagnostics.Diagnostics(
            self, 'classification',
            lambda: diagnostics.torch_device_id(self.get_parameter('device').value),
            self._diagnostic_status, 'diagnostics_period_s',
            callback_group=MutuallyExclusiveCallbackGroup())
        self._diag_pub = self._diagnostics.publisher

    # Lifecycle -------------------------------------------------------------------------------
    def on_configure(self, state) -> TransitionCallbackReturn:
        """Load the model and create publishers, subscriptions, service and timer."""
        p = values(self, PARAMS)
        events = p['input_mode'] == 'events'
        try:
            packet_type = event_packet_type(
                "input_mode 'events'", "set input_mode to 'frames'") if events else None
            vision = vision_msgs_types(
                'publish_vision_msgs (true)') if p['publish_vision_msgs'] else None
            self._session = self._load_session(p)
            if events:
                self._session.check_events()  # a frames-only model says why it cannot
                spec = self._session.model.input_spec
                self._session.warm_up_events((spec.width, spec.height))
            else:
                self._session.warm_up()
            reason = self._check_learning(p)
            if reason is not None:
                raise ValueError(reason)
        except Exception as exc:  # a bad path or file, a missing package: never a crash
            self._session = None
            self.get_logger().error(f'configure failed: {exc}')
            self._last_error = self._configure_error = str(exc)
            self._publish_diagnostics()  # ERROR with the reason, at once
            return TransitionCallbackReturn.FAILURE
        self._configure_error = ''
        self._timesteps = None
        self._pub = self.create_lifecycle_publisher(Classification, 'classification', 10)
        self._create_vision_outputs(vision)
        command_qos = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                                 durability=DurabilityPolicy.TRANSIENT_LOCAL)
        control = MutuallyExclusiveCallbackGroup()
        self._subscriptions_made = [
            self.create_subscription(TimestepCommand, 'timestep', self._on_timestep,
                                     command_qos, callback_group=control)]
        if events:
            self._packet_type = packet_type  # subscribed on activate
        self._service = self.create_service(Trigger, '~/save_model', self._on_save,
                                            callback_group=control)
        self.get_logger().info(f"loaded {p['model_path']} on {p['device']} "
                               f"({p['input_mode']})")
        return TransitionCallbackReturn.SUCCESS

    def _check_learning(self, p: dict):
        """Return why ``online_learning`` cannot be on with the loaded model, or None."""
        model = None if self._session is None else self._session.model
        if p['online_learning'] and model is not None \
                and not getattr(model, 'learns_online', True):
            return (f'online_learning needs a model that learns on line (STDP); '
                    f'{type(model).__name__} is trained offline')
        return None

    def on_activate(self, state) -> TransitionCallbackReturn:
        """Subscribe the input and start classifying (an event stream starts afresh)."""
        p = values(self, PARAMS)
        if self._session is None:
            self._session = self._load_session(p)
        # The input is subscribed only while active (deactivate destroys the subscription): a
        # driver or camera sees this node once it classifies, and an inactive node receives
        # and decodes nothing. Packets are decoded and windowed in the reader thread, in
        # order; windows are classified in the worker, so decoding never waits for the model.
        result = super().on_activate(state)  # the lifecycle publishers first
        self._active = True
        if p['input_mode'] == 'events':
            self._stream = _event_stream(p)
            self._max_windows = p['max_pending_windows']  # windows per batch (read-only)
            self._packets_lost = 0
            self._wake = Worker(self._drain_windows, name='classifier_windows',
                                on_error=self._worker_error, nice=WORKER_NICE)
            qos = QoSProfile(depth=p['events_depth'], reliability=(
                ReliabilityPolicy.BEST_EFFORT if p['events_reliability'] == 'best_effort'
                else ReliabilityPolicy.RELIABLE))
            self._input_sub = SubscriptionReader(self, self._packet_type, 'events', qos,
                                                 self._on_packet, name='classifier_events')
        else:
            self._wake = Worker(self._on_image, name='classifier_frames',
                                on_error=self._worker_error)
            self._input_sub = self._subscribe_frames(p)
        return result

    def on_deactivate(self, state) -> TransitionCallbackReturn:
        """Unsubscribe the input, stop work, save learnt weights, and free the accelerator."""
        self._active = False
        self._unsubscribe_input()
        with self._busy:  # let a frame in progress finish
            self._save_if_learnt()
            if self.get_parameter('device').value != 'cpu':
                self._session = None  # reloaded on activate
                import torch
                torch.cuda.empty_cache()
        return super().on_deactivate(state)

    def on_cleanup(self, state) -> TransitionCallbackReturn:
        """Unload the model and destroy what configure created (after a frame in progress)."""
        with self._busy:
            self._destroy_entities()
            self._session = self._stream = None
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state) -> TransitionCallbackReturn:
        """Save learnt weights and release everything."""
        self._active = False
        with self._busy:
            self._save_if_learnt()
        self._destroy_entities()
        self._session = self._stream = None
        return TransitionCallbackReturn.SUCCESS

    def on_error(self, state) -> TransitionCallbackReturn:
        """Return to unconfigured after an error in a transition."""
        self._active = False
        with self._busy:
            self._destroy_entities()
            self._session = self._stream = None
        return TransitionCallbackReturn.SUCCESS

    def destroy_node(self) -> None:
        """Stop the input threads (a node destroyed while active has them), then destroy."""
        self._active = False
        self._unsubscribe_input()
        super().destroy_node()

    # Work ------------------------------------------------------------------------------------
    def _receive_image(self, msg: Image) -> None:
        """Reader thread: hand a frame to the worker, or drop and count it if it is busy."""
        if self._active and not self._wake.offer(msg):
            self._note_frame(msg)
            self._count('dropped')

    def _on_image(self, msg: Image) -> None:
        """Classify one frame now, or drop and count it while another is in progress."""
        if not self._active:
            return
        self._note_frame(msg)
        if not self._busy.acquire(blocking=False):
            self._count('dropped')
            return
        try:
            self._classify(msg)
        except ValueError as exc:  # a frame we cannot read: count it, say why, carry on
            self._count('errors')
            self._last_error = str(exc)
            self.get_logger().warn(f'frame skipped: {exc}', throttle_duration_sec=5.0)
        finally:
            self._busy.release()

    def _note_frame(self, msg) -> None:
        """Count a frame's stamp: frames lost before they got here (see core.frame_gaps)."""
        stamp = msg.header.stamp
        with self._stats_lock:
            self._gaps.add(stamp.sec * 1_000_000_000 + stamp.nanosec)

    def _worker_error(self, exc: Exception) -> None:
        """Count and log what a worker's classification raised; the worker goes on."""
        self._count('errors')
        self._last_error = f'{type(exc).__name__}: {exc}'
        self.get_logger().error(f'classification failed: {self._last_error}',
                                throttle_duration_sec=5.0)

    def _classify(self, msg) -> None:
        p = values(self, PARAMS)
        if isinstance(msg, CompressedImage):
            frame, layout = compressed_to_array(msg)
        else:
            frame, layout = image_to_array(msg)
        timesteps = self._timesteps_now(p)
        rule = self._early_exit_rule(p)
        prediction = self._session.classify(frame, layout, timesteps, early_exit=rule)
        learning = p['online_learning']
        if learning:  # published with the cost of learning from the frame (energy monitor)
            prediction = self._session.charge_learning(
                prediction, self._session.learn(frame, layout, timesteps))
        self._publish(prediction, msg.header, self._counts['dropped'])
        self._count('processed')
        if learning:
            self._learnt(p)

    def _on_packet(self, msg) -> None:
        """
        Decode and window one EventPacket; wake the classifier when windows are complete.

        Runs in the reader thread, one packet after another (tests call it directly).
        """
        stream = self._stream
        if not self._active or stream is None:
            return
        try:
            made = stream.push(**packet_to_fields(msg), tag=msg.header)
        except ValueError as exc:  # unknown encoding, a packet the decoder refuses
            self._count('errors')
            self._last_error = str(exc)
            self.get_logger().warn(f'event packet skipped: {exc}', throttle_duration_sec=5.0)
            return
        if made and self._wake is not None:
            # An idle model takes the new windows at once (so a burst of packets that
            # completes several windows before the worker thread runs drops none); while it
            # is busy they wait in the stream's backlog, which drops the oldest.
            n = self._max_windows
            if self._busy.locked() or not self._wake.offer(take=lambda: stream.pop(n)):
                self._wake.trigger()  # one more run of the worker, after the one in progress

    def _drain_windows(self, windows: Optional[list] = None) -> None:
        """
        Worker: classify ``windows`` (handed over), then those waiting, a batch at a time.

        Without ``windows`` nothing happens while the model is busy (saving, or a test
        holding it): the next packet wakes the worker again.
        """
        windows = windows or None
        if windows is None:
            if not self._active or not self._busy.acquire(blocking=False):
                return
        else:
            while not self._busy.acquire(timeout=0.05):  # saving: a moment
                if not self._active:
                    return  # deactivating
        try:
            while self._active and self._stream is not None:
                if windows is None:
                    windows = self._stream.pop(self._max_windows)
                    if not windows:
                        break
                try:
                    self._classify_windows(windows)
                except ValueError as exc:
                    self._count('errors')
                    self._last_error = str(exc)
                    self.get_logger().warn(f'event windows skipped: {exc}',
                                           throttle_duration_sec=5.0)
                windows = None
        finally:
            self._busy.release()

    def _classify_windows(self, windows: list) -> None:
        p = values(self, PARAMS)
        timesteps = self._timesteps_now(p)
        roi = _roi(p['roi'])
        sensor_size = windows[0].sensor_size
        arrays = [w.events for w in windows]
        predictions = self._session.classify_events(
            arrays, sensor_size, timesteps, roi=roi, early_exit=self._early_exit_rule(p))
        learning = p['online_learning']
        if learning:  # published with the cost of learning from each window
            learnt = self._session.learn_events(arrays, sensor_size, timesteps, roi=roi)
            predictions = [self._session.charge_learning(prediction, ops)
                           for prediction, ops in zip(predictions, learnt)]
        dropped = self._stream.counts['windows_dropped']
        for window, prediction in zip(windows, predictions):
            self._publish(prediction, window.tag, dropped)
            self._count('processed')
        if learning:
            for _ in windows:
                self._learnt(p)

    def _early_exit_rule(self, p: dict):
        if not p['early_exit']:
            return None
        from topspark_ros.core.topspark.early_exit import EarlyExit
        return EarlyExit(margin=p['early_exit_margin'], min_steps=p['early_exit_min_steps'])

    def _learnt(self, p: dict) -> None:
        learnt = self._count('learnt')
        if p['save_every_n'] and learnt % p['save_every_n'] == 0:
            try:
                self._save()
            except (OSError, ValueError) as exc:  # as ~/save_model: say why, keep classifying
                self._count('save_failures')
                self._count('errors')
                self._last_error = f'periodic save failed: {exc}'
                self.get_logger().error(self._last_error, throttle_duration_sec=5.0)

    def _on_timestep(self, msg: TimestepCommand) -> None:
        """Take the commanded T, clamped to max_timesteps (counted); T=0 is ignored (counted)."""
        timesteps, ceiling = int(msg.timesteps), self.get_parameter('max_timesteps').value
        if timesteps < 1:
            self._count('timesteps_refused')
            self.get_logger().warn('TimestepCommand with T=0 ignored', throttle_duration_sec=5.0)
            return
        if timesteps > ceiling:
            self._count('timesteps_clamped')
            self.get_logger().warn(f'TimestepCommand T={timesteps} clamped to max_timesteps '
                                   f'{ceiling}', throttle_duration_sec=5.0)
            timesteps = ceiling
        self._timesteps = timesteps

    def _timesteps_now(self, p: dict) -> int:
        """Return T for the next input: the command, else the default, at most max_timesteps."""
        return min(self._timesteps or p['default_timesteps'], p['max_timesteps'])

    def _on_save(self, request, response):
        with self._busy:
            if self._session is None:
                response.success, response.message = False, 'no model loaded (configure first)'
                return response
            try:
                response.message = f'saved {self._save()}'
                response.success = True
            except (OSError, ValueError) as exc:
                response.success, response.message = False, f'save failed: {exc}'
        return response

    # Helpers ---------------------------------------------------------------------------------
    def _subscribe_frames(self, p: dict):
        """
        Return the frame subscription: ``image`` (raw) or ``image/compressed`` (compressed).

        ``image_transport`` picks the topic and type as image_transport names them; QoS from
        ``image_reliability`` and ``image_depth``, with a warning when a camera's QoS cannot
        match. Read by a reader thread, which hands each frame to the worker: a frame arriving
        while the worker is busy is dropped and counted.
        """
        compressed = p['image_transport'] == 'compressed'
        topic = 'image/compressed' if compressed else 'image'
        qos = QoSProfile(depth=p['image_depth'], reliability=reliability(p['image_reliability']))
        events = warn_on_incompatible_qos(
            self, topic, "set image_reliability to 'best_effort' to hear it")
        return SubscriptionReader(self, CompressedImage if compressed else Image, topic, qos,
                                  self._receive_image, name='classifier_frames_in',
                                  event_callbacks=events)

    def _create_vision_outputs(self, vision) -> None:
        """
        Create the vision_msgs publishers (``vision``: the vision_msgs.msg module, or None).

        ``vision_classification`` (vision_msgs/Classification, like ``classification``) and
        ``label_info`` (vision_msgs/LabelInfo: class index -> name, threshold 0; reliable and
        transient local, published once here, so a subscriber that joins at any time gets it).
        """
        if vision is None:
            return
        self._labels = class_labels(self._session.class_names, self._session.model.n_classes)
        self._vision_pub = self.create_lifecycle_publisher(
            vision.Classification, 'vision_classification', 10)
        latched = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                             durability=DurabilityPolicy.TRANSIENT_LOCAL)
        self._label_pub = self.create_publisher(vision.LabelInfo, 'label_info', latched)
        header = Header(stamp=self.get_clock().now().to_msg())
        self._label_pub.publish(label_info_msg(self._labels, header, vision=vision))

    def _publish(self, prediction, header, dropped: int) -> None:
        """Publish one result as Classification (and vision_msgs/Classification)."""
        self._pub.publish(prediction_to_msg(prediction, header, dropped))
        if self._vision_pub is not None:
            self._vision_pub.publish(prediction_to_vision_msg(prediction, header, self._labels))

    def _load_session(self, p: dict):
        from topspark_ros.core.session import ClassifierSession
        if not p['model_path']:
            raise ValueError('parameter model_path is empty')
        set_torch_threads(p['torch_threads'])
        profile = None
        if p['profile_path']:
            from topspark_ros.core.topspark.profile import load_profile
            profile = load_profile(resolve(p['profile_path']))
        names = [] if p['class_names'] == ['__from_checkpoint__'] else p['class_names']
        return ClassifierSession.from_checkpoint(
            resolve(p['model_path']), device=p['device'], class_names=names, profile=profile,
            energy_model=EnergyModel(p['energy_preset']), crop=p['crop'], invert=p['invert'])

    def _save_path(self) -> str:
        path = self.get_parameter('save_path').value
        if path:
            return path
        model = resolve(self.get_parameter('model_path').value)
        return model[:-5] + '_online.json' if model.endswith('.json') else model + '_online'

    def _save(self) -> str:
        path = self._session.save(self._save_path(),
                                  info={'online_frames': self._counts['learnt']})
        self._count('saved')
        return path

    def _save_if_learnt(self) -> None:
        if self._session is not None and self._counts['learnt'] > 0:
            try:
                self.get_logger().info(f'saved learnt weights to {self._save()}')
            except (OSError, ValueError) as exc:
                self.get_logger().error(f'could not save learnt weights: {exc}')

    def _count(self, key: str) -> int:
        with self._stats_lock:
            self._counts[key] += 1
            return self._counts[key]

    def _publish_diagnostics(self) -> None:
        """Publish the status now (the timer does every ``diagnostics_period_s``)."""
        self._diagnostics.publish_now()

    def _diagnostic_status(self) -> tuple:
        """
        Return ``(level, message, values)`` of the ``classifier: classification`` status.

        ERROR while the last configure failed (with its reason); WARN while not active, and
        while errors, lost event packets or corrupt event time stamps happened since the
        previous status (so a WARN clears once they stop); OK otherwise. In event mode the
        values carry the event stream's counters, which never go back (see
        :meth:`~topspark_ros.core.session.EventStream.stats`).
        """
        with self._stats_lock:
            stats = dict(self._counts)
            stats.update(self._gaps.stats())
        state = self._state_machine.current_state[1]
        if self._configure_error:
            level, message = diagnostics.ERROR, f'configure failed: {self._configure_error}'
        elif self._active:
            level, message = diagnostics.OK, 'classifying'
        else:
            level, message = diagnostics.WARN, state
        errors = self._recent.since('errors', stats['errors'])
        if errors:
            level = max(level, diagnostics.WARN)
            message = f'{message}; {errors} errors since the last status, last: ' \
                f'{self._last_error}'
        stream = self._stream
        if stream is not None:  # event mode: decoder, windows and backlog counters
            events = stream.stats()
            lost = events.get('packets_lost', 0) - self._packets_lost
            self._packets_lost += lost
            if lost > 0 and level == diagnostics.OK:
                level, message = diagnostics.WARN, f'{message}; {lost} event packets lost'
            # Corrupt evt3 time stamps the decoder refused (it kept its time base).
            corrupt = self._recent.since('time_jumps_refused',
                                         events.get('time_jumps_refused', 0))
            if corrupt > 0:
                level = max(level, diagnostics.WARN)
                message = f'{message}; {corrupt} corrupt event time stamps refused'
            stats.update(events)
        stats.update(timesteps=self._timesteps or self.get_parameter('default_timesteps').value,
                     model=self.get_parameter('model_path').value,
                     device=self.get_parameter('device').value,
                     input_mode=self.get_parameter('input_mode').value, lifecycle_state=state)
        return level, message, stats

    def _unsubscribe_input(self) -> None:
        """Stop the reader (destroying its subscription), then the worker (after its run)."""
        if self._input_sub is not None:
            self._input_sub.close()
            self._input_sub = None
        if self._wake is not None:
            self._wake.close()
            self._wake = None

    def _destroy_entities(self) -> None:
        for sub in self._subscriptions_made:
            self.destroy_subscription(sub)
        self._subscriptions_made = []
        self._unsubscribe_input()
        for entity, destroy in ((self._service, self.destroy_service),
                                (self._pub, self.destroy_lifecycle_publisher),
                                (self._vision_pub, self.destroy_lifecycle_publisher),
                                (self._label_pub, self.destroy_publisher)):
            if entity is not None:
                destroy(entity)
        self._pub = self._service = None  # /diagnostics lives as long as the node
        self._vision_pub = self._label_pub = self._labels = None


def _check_timesteps(p: dict) -> Optional[str]:
    """Return why default_timesteps and max_timesteps disagree, or None."""
    if p['default_timesteps'] > p['max_timesteps']:
        return (f"default_timesteps ({p['default_timesteps']}) must not exceed max_timesteps "
                f"({p['max_timesteps']})")
    return None


def _roi(values) -> Optional[tuple]:
    """Return the ``roi`` parameter as ``(x0, y0, w, h)``, or None for the model's default."""
    x0, y0, width, height = (int(v) for v in values)
    return (x0, y0, width, height) if width > 0 and height > 0 else None


def _event_stream(p: dict):
    """Return the :class:`~topspark_ros.core.session.EventStream` the parameters describe."""
    from topspark_ros.core.events.stream import EventStream
    by_time = p['window_mode'] == 'time'
    return EventStream(
        window_us=max(1, round(p['window_ms'] * 1000.0)) if by_time else None,
        window_events=None if by_time else p['window_events'],
        max_backlog=p['max_pending_windows'], min_events=p['window_min_events'],
        max_packet_bytes=p['max_packet_bytes'])


def main(args=None) -> int:
    """Run the classifier alone (``ros2 run topspark_ros classifier``)."""
    from topspark_ros.nodes.runner import run_nodes
    return run_nodes([ClassifierNode], args=args)


if __name__ == '__main__':
    import sys
    sys.exit(main())
