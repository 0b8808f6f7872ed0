"""
The classifier: camera frames or event packets in, spiking-network classifications out.

A lifecycle node. With ``input_mode: frames`` it subscribes ``image`` (sensor_msgs/Image,
sensor-data QoS by default); with ``input_mode: events`` it subscribes ``events``
(event_camera_msgs/EventPacket, as metavision_driver and libcaer_driver publish; best effort
by default) while active, decodes the packets, cuts the stream into windows (by time or by
event count) and classifies each complete window (a time window is complete once a later
event arrives: a still scene, which makes no events, makes no classifications). Either way it
subscribes ``timestep`` (TimestepCommand, reliable + transient local) and publishes
``classification`` (Classification, header copied from the image, or from the packet holding
the window's last event) and ``/diagnostics``. Configure loads the model, activate starts
work, deactivate stops it (saving learnt weights) and frees the accelerator, cleanup unloads.
A frame that arrives while another is being processed is dropped and counted, never queued;
event windows wait in a backlog of at most ``max_pending_windows`` (the oldest dropped and
counted). ``~/save_model`` (std_srvs/Trigger) saves learnt weights.
"""

import threading
from typing import Optional

from diagnostic_msgs.msg import DiagnosticArray
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup, ReentrantCallbackGroup
from rclpy.lifecycle import LifecycleNode, TransitionCallbackReturn
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image
from std_srvs.srv import Trigger

from topspark_ros.conversions.image import image_to_array
from topspark_ros.conversions.results import prediction_to_msg
from topspark_ros.core.energy import EnergyModel, PRESETS
from topspark_ros.core.preprocess import CROPS
from topspark_ros.msg import Classification, TimestepCommand
from topspark_ros.nodes import diagnostics
from topspark_ros.nodes.event_player import event_packet_type
from topspark_ros.nodes.parameters import declare, Param, values
from topspark_ros.nodes.resources import resolve

INPUT_MODES = ('frames', 'events')
WINDOW_MODES = ('time', 'count')

PARAMS = (
    Param('input_mode', 'frames', "What is classified: camera frames ('image' topic) or "
          "event-camera packets ('events' topic, event_camera_msgs/EventPacket).",
          choices=INPUT_MODES, live=False),
    Param('model_path', '', 'Checkpoint (.json) of the model to load on configure '
          '(a path or package://<package>/<path>).', live=False),
    Param('device', 'cpu', "Where the model runs: 'cpu' or a torch device such as 'cuda'.",
          live=False),
    Param('profile_path', '', 'Timestep profile (.yaml) whose enhanced parameters are applied '
          "at each T; '' for none.", live=False),
    Param('default_timesteps', 64, 'Timestep count T used until a TimestepCommand arrives.',
          low=1, high=100000),
    Param('early_exit', False, 'Stop an input early once its winning class is decided.'),
    Param('early_exit_margin', 3.0, 'Early exit: lead in accumulated output spikes of the best '
          'class over the second.', low=0.0),
    Param('early_exit_min_steps', 8, 'Early exit: never stop before this many steps.', low=1),
    Param('online_learning', False, 'Adapt the weights to incoming frames with unsupervised '
          'STDP at the commanded T.'),
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
    Param('diagnostics_period_s', 1.0, 'Period of /diagnostics messages.', low=0.05,
          live=False),
    Param('window_mode', 'time', 'Events: cut the stream into windows of window_ms '
          "milliseconds ('time') or of window_events events ('count').", choices=WINDOW_MODES,
          live=False),
    Param('window_ms', 300.0, "Events: window length for window_mode 'time' (ms).", low=0.001,
          high=1e6, live=False),
    Param('window_events', 3000, "Events: events per window for window_mode 'count'.", low=1,
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
)


class ClassifierNode(LifecycleNode):
    """Lifecycle node wrapping :class:`topspark_ros.core.session.ClassifierSession`."""

    def __init__(self, **kwargs) -> None:
        """Declare parameters; everything else happens in the lifecycle transitions."""
        super().__init__('classifier', **kwargs)
        declare(self, PARAMS, is_active=lambda: self._active, extra_check=self._check_learning)
        self._active = False
        self._session = None
        self._busy = threading.Lock()
        self._stats_lock = threading.Lock()
        self._timesteps = None
        self._counts = {'processed': 0, 'dropped': 0, 'errors': 0, 'learnt': 0, 'saved': 0}
        self._last_error = ''
        self._pub = self._diag_pub = self._service = self._timer = self._wake = None
        self._subscriptions_made = []
        self._stream = None  # event mode: packets -> windows (core.session.EventStream)
        self._events_sub = self._packet_type = None
        self._packets_lost = 0

    # Lifecycle -------------------------------------------------------------------------------
    def on_configure(self, state) -> TransitionCallbackReturn:
        """Load the model and create publishers, subscriptions, service and timer."""
        p = values(self, PARAMS)
        events = p['input_mode'] == 'events'
        try:
            packet_type = event_packet_type(
                "input_mode 'events'", "set input_mode to 'frames'") if events else None
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
            self._last_error = str(exc)
            return TransitionCallbackReturn.FAILURE
        self._timesteps = None
        self._pub = self.create_lifecycle_publisher(Classification, 'classification', 10)
        self._diag_pub = self.create_publisher(DiagnosticArray, '/diagnostics', 10)
        image_qos = QoSProfile(depth=p['image_depth'], reliability=(
            ReliabilityPolicy.BEST_EFFORT if p['image_reliability'] == 'best_effort'
            else ReliabilityPolicy.RELIABLE))
        command_qos = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                                 durability=DurabilityPolicy.TRANSIENT_LOCAL)
        control = MutuallyExclusiveCallbackGroup()
        self._subscriptions_made = [
            self.create_subscription(TimestepCommand, 'timestep', self._on_timestep,
                                     command_qos, callback_group=control)]
        if events:
            # Packets are decoded in order (one group) by a subscription that exists only
            # while active (see on_activate); windows are classified in another group, woken
            # by the guard condition, so decoding never waits for the model.
            self._packet_type = packet_type
            self._wake = self.create_guard_condition(
                self._drain_windows, callback_group=MutuallyExclusiveCallbackGroup())
        else:
            frames = ReentrantCallbackGroup()  # concurrent callbacks see a busy model: dropped
            self._subscriptions_made.append(self.create_subscription(
                Image, 'image', self._on_image, image_qos, callback_group=frames))
        self._service = self.create_service(Trigger, '~/save_model', self._on_save,
                                            callback_group=control)
        self._timer = self.create_timer(p['diagnostics_period_s'], self._publish_diagnostics,
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
        """Start classifying incoming frames (or packets: the event stream starts afresh)."""
        p = values(self, PARAMS)
        if self._session is None:
            self._session = self._load_session(p)
        if p['input_mode'] == 'events':
            # Subscribed only while active: a driver (or the event player waiting for
            # subscribers) sees this node once it classifies, and an inactive node costs no
            # decoding. The stream starts afresh.
            self._stream = _event_stream(p)
            self._packets_lost = 0
            qos = QoSProfile(depth=p['events_depth'], reliability=(
                ReliabilityPolicy.BEST_EFFORT if p['events_reliability'] == 'best_effort'
                else ReliabilityPolicy.RELIABLE))
            self._events_sub = self.create_subscription(
                self._packet_type, 'events', self._on_packet, qos,
                callback_group=MutuallyExclusiveCallbackGroup())
        self._active = True
        return super().on_activate(state)

    def on_deactivate(self, state) -> TransitionCallbackReturn:
        """Stop work, save learnt weights, and free the accelerator."""
        self._active = False
        self._unsubscribe_events()
        with self._busy:  # let a frame in progress finish
            self._save_if_learnt()
            if self.get_parameter('device').value != 'cpu':
                self._session = None  # reloaded on activate
                import torch
                torch.cuda.empty_cache()
        return super().on_deactivate(state)

    def on_cleanup(self, state) -> TransitionCallbackReturn:
        """Unload the model and destroy what configure created."""
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
        self._destroy_entities()
        self._session = self._stream = None
        return TransitionCallbackReturn.SUCCESS

    # Work ------------------------------------------------------------------------------------
    def _on_image(self, msg: Image) -> None:
        if not self._active:
            return
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

    def _classify(self, msg: Image) -> None:
        p = values(self, PARAMS)
        frame, layout = image_to_array(msg)
        timesteps = self._timesteps or p['default_timesteps']
        rule = self._early_exit_rule(p)
        prediction = self._session.classify(frame, layout, timesteps, early_exit=rule)
        self._pub.publish(prediction_to_msg(prediction, msg.header, self._counts['dropped']))
        self._count('processed')
        if p['online_learning']:
            self._session.learn(frame, layout, timesteps)
            self._learnt(p)

    def _on_packet(self, msg) -> None:
        """Decode and window one EventPacket; wake the classifier when windows are complete."""
        stream = self._stream
        if not self._active or stream is None:
            return
        try:
            made = stream.push(msg.events, encoding=msg.encoding, width=msg.width,
                               height=msg.height, seq=msg.seq, time_base=msg.time_base,
                               is_bigendian=msg.is_bigendian, tag=msg.header)
        except ValueError as exc:  # unknown encoding, a packet the decoder refuses
            self._count('errors')
            self._last_error = str(exc)
            self.get_logger().warn(f'event packet skipped: {exc}', throttle_duration_sec=5.0)
            return
        if made:
            self._wake.trigger()

    def _drain_windows(self) -> None:
        """Classify the waiting windows (a batch at a time) until none is left."""
        if not self._active or not self._busy.acquire(blocking=False):
            return  # inactive, or the model is busy (saving): the next packet wakes us
        try:
            while self._active and self._stream is not None:
                windows = self._stream.pop(self.get_parameter('max_pending_windows').value)
                if not windows:
                    break
                try:
                    self._classify_windows(windows)
                except ValueError as exc:
                    self._count('errors')
                    self._last_error = str(exc)
                    self.get_logger().warn(f'event windows skipped: {exc}',
                                           throttle_duration_sec=5.0)
        finally:
            self._busy.release()

    def _classify_windows(self, windows: list) -> None:
        p = values(self, PARAMS)
        timesteps = self._timesteps or p['default_timesteps']
        roi = _roi(p['roi'])
        sensor_size = windows[0].sensor_size
        arrays = [w.events for w in windows]
        predictions = self._session.classify_events(
            arrays, sensor_size, timesteps, roi=roi, early_exit=self._early_exit_rule(p))
        dropped = self._stream.counts['windows_dropped']
        for window, prediction in zip(windows, predictions):
            self._pub.publish(prediction_to_msg(prediction, window.tag, dropped))
            self._count('processed')
        if p['online_learning']:
            self._session.learn_events(arrays, sensor_size, timesteps, roi=roi)
            for _ in windows:
                self._learnt(p)

    def _early_exit_rule(self, p: dict):
        if not p['early_exit']:
            return None
        from topspark_ros.core.early_exit import EarlyExit
        return EarlyExit(margin=p['early_exit_margin'], min_steps=p['early_exit_min_steps'])

    def _learnt(self, p: dict) -> None:
        learnt = self._count('learnt')
        if p['save_every_n'] and learnt % p['save_every_n'] == 0:
            self._save()

    def _on_timestep(self, msg: TimestepCommand) -> None:
        if msg.timesteps >= 1:
            self._timesteps = int(msg.timesteps)

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
    def _load_session(self, p: dict):
        from topspark_ros.core.session import ClassifierSession
        if not p['model_path']:
            raise ValueError('parameter model_path is empty')
        profile = None
        if p['profile_path']:
            from topspark_ros.core.profile import load_profile
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
        with self._stats_lock:
            stats = dict(self._counts)
        level = diagnostics.OK if self._active else diagnostics.WARN
        message = 'classifying' if self._active else 'inactive'
        if stats['errors']:
            level, message = diagnostics.WARN, f'{message}; last error: {self._last_error}'
        stream = self._stream
        if stream is not None:  # event mode: decoder, windows and backlog counters
            events = stream.stats()
            lost = events.get('packets_lost', 0) - self._packets_lost
            self._packets_lost += lost
            if lost > 0 and level == diagnostics.OK:
                level, message = diagnostics.WARN, f'{message}; {lost} event packets lost'
            stats.update(events)
        stats.update(timesteps=self._timesteps or self.get_parameter('default_timesteps').value,
                     model=self.get_parameter('model_path').value,
                     device=self.get_parameter('device').value,
                     input_mode=self.get_parameter('input_mode').value)
        self._diag_pub.publish(diagnostics.diagnostic_array(self, level, message, stats))

    def _unsubscribe_events(self) -> None:
        if self._events_sub is not None:
            self.destroy_subscription(self._events_sub)
            self._events_sub = None

    def _destroy_entities(self) -> None:
        for sub in self._subscriptions_made:
            self.destroy_subscription(sub)
        self._subscriptions_made = []
        self._unsubscribe_events()
        for entity, destroy in ((self._timer, self.destroy_timer),
                                (self._service, self.destroy_service),
                                (self._wake, self.destroy_guard_condition),
                                (self._pub, self.destroy_lifecycle_publisher),
                                (self._diag_pub, self.destroy_publisher)):
            if entity is not None:
                destroy(entity)
        self._pub = self._diag_pub = self._service = self._timer = self._wake = None


def _roi(values) -> Optional[tuple]:
    """Return the ``roi`` parameter as ``(x0, y0, w, h)``, or None for the model's default."""
    x0, y0, width, height = (int(v) for v in values)
    return (x0, y0, width, height) if width > 0 and height > 0 else None


def _event_stream(p: dict):
    """Return the :class:`~topspark_ros.core.session.EventStream` the parameters describe."""
    from topspark_ros.core.session import EventStream
    by_time = p['window_mode'] == 'time'
    return EventStream(
        window_us=max(1, round(p['window_ms'] * 1000.0)) if by_time else None,
        window_events=None if by_time else p['window_events'],
        max_backlog=p['max_pending_windows'], min_events=p['window_min_events'])


def main(args=None) -> int:
    """Run the classifier alone (``ros2 run topspark_ros classifier``)."""
    from topspark_ros.nodes.runner import run_nodes
    return run_nodes([ClassifierNode], args=args)


if __name__ == '__main__':
    import sys
    sys.exit(main())
