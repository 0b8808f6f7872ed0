"""
The classifier: camera frames or event packets in, spiking-network classifications out.

A lifecycle node around :class:`topspark_ros.core.pipeline.ClassifierPipeline`, which decides
everything (the README's node table has the topics). While active it reads ``image`` (or
``image/compressed``) or, with ``input_mode: events``, ``events`` in a reader thread of its own
(:mod:`topspark_ros.nodes.intake`), so the input costs the same on every executor: frames are
classified in the reader, the newest waiting first (the others, taken or replaced in the
subscription's queue meanwhile, are dropped and counted); event windows are classified in a
worker thread, with a backlog of at most ``max_pending_windows``. It takes ``timestep``
(TimestepCommand) and publishes ``classification`` (the header of the image, or of the packet
holding the window's last event), ``vision_classification``, a latched ``label_info`` and
``vision_info`` (vision_msgs, unless ``publish_vision_msgs`` is false) and ``/diagnostics``;
``~/save_model`` saves learnt weights. Configure loads the model, activate subscribes the
input, deactivate unsubscribes it, saves learnt weights and frees the accelerator, cleanup
unloads; a transition the state does not allow is refused (:mod:`topspark_ros.nodes.lifecycle`).
"""

import os
import threading
import time
from typing import Optional

from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.lifecycle import TransitionCallbackReturn
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from std_msgs.msg import Header
from std_srvs.srv import Trigger

from topspark_ros.conversions.cdr import header_msg
from topspark_ros.conversions.events import (cdr_to_packet, event_packet_type,
                                             packet_to_fields, prepare_cdr_reading)
from topspark_ros.conversions.image import (cdr_to_image, depth_like, frame_encoding,
                                            frame_to_array, prepare_image_cdr_reading,
                                            stamp_ns)
from topspark_ros.conversions.results import (class_labels, label_info_msg,
                                              prediction_cdr_matches, prediction_to_cdr,
                                              prediction_to_msg, prediction_to_vision_msg,
                                              vision_info_msg, vision_msgs_types)
from topspark_ros.core.counters import Reasons
from topspark_ros.core.pipeline import (AS_TRAINED, ClassifierPipeline,
                                        frames_model_on_events, preparation_plan, Settings,
                                        trained_preparation, window_mismatch)
from topspark_ros.msg import Classification, TimestepCommand
from topspark_ros.nodes import diagnostics
from topspark_ros.nodes.classifier_params import PARAMS
from topspark_ros.nodes.construction import destroyed_if_construction_fails
from topspark_ros.nodes.intake import (camera_intake, freeze_long_lived, Intake,
                                       thaw_long_lived)
from topspark_ros.nodes.lifecycle import LifecycleNode
from topspark_ros.nodes.parameters import (configured, declare, given_at_start, live_values,
                                           values)
from topspark_ros.nodes.qos import reliability, warn_on_incompatible_qos
from topspark_ros.nodes.resources import resolve

WORKER_NICE = 10
"""Event mode: the classifying thread's nice value above the process's (input goes first)."""
LATCHED = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                     durability=DurabilityPolicy.TRANSIENT_LOCAL)
"""QoS of ``timestep`` and ``label_info``: a subscriber that joins late gets the last one."""
SKIP_LOG_PERIOD_S = 5.0
"""An input skipped for a reason already logged is logged again after this long (s)."""


@destroyed_if_construction_fails
class ClassifierNode(LifecycleNode):
    """Lifecycle node: parameters, topics and threads around a ClassifierPipeline."""

    def __init__(self, **kwargs) -> None:
        """Declare parameters; everything else happens in the lifecycle transitions."""
        super().__init__('classifier', **kwargs)
        self._source = self.get_fully_qualified_name()  # named in every result
        self._pipeline = ClassifierPipeline(lambda: self._values(), resolve, self._source)
        self._adopting = False  # configure setting parameters to the model's (not locked)
        declare(self, PARAMS, is_locked=lambda: configured(self) and not self._adopting,
                extra_check=self._pipeline.refusal)
        # Given at start-up or set since: kept; the others follow the model (configure).
        self._given = given_at_start(self, AS_TRAINED)
        self._values = live_values(self, PARAMS)  # read once per input: no get_parameter
        self.add_post_set_parameters_callback(self._after_set)
        self._active = False
        self._pub = self._vision_pub = self._labels = self._packet_type = self._intake = None
        self._score_key = None  # (calibrated, T, parameters) of the last vision_msgs result
        self._score_kind = ''  # what its score is, in words (ClassifierPipeline.score_kind)
        self._vision_info_pub = None  # vision_msgs/VisionInfo: the method and its score
        self._class_map_version = 0  # VisionInfo.database_version: LabelInfos published
        self._frame_note = None  # how the last frame was unlike the training images (logged)
        self._notes_said = set()  # the notes logged (each once)
        self._reasons = Reasons(SKIP_LOG_PERIOD_S)  # why inputs were skipped, logged
        self._input_notes = Reasons(60.0)  # what the frames look like (depth), logged
        self._reasons_lock = threading.Lock()
        self._raw_packets = self._raw_frames = self._raw_results = False
        self._frozen = False  # a freeze_long_lived of this node's not yet undone
        self._made = []  # (entity, destroy) of what configure created
        # /diagnostics from construction on, so a node that fails to configure says why.
        self._diagnostics = diagnostics.Diagnostics(
            self, 'classification',
            lambda: diagnostics.torch_device_id(self.get_parameter('device').value),
            self._diagnostic_status, 'diagnostics_period_s',
            callback_group=MutuallyExclusiveCallbackGroup())

    def _after_set(self, changed: list) -> None:
        """Note parameters the user set; ready on-line learning when it is switched on."""
        if not self._adopting:
            self._given.update(p.name for p in changed if p.name in AS_TRAINED)
        if self._pipeline.session is not None and any(
                p.name in ('max_timesteps', 'default_timesteps') for p in changed):
            p = values(self, PARAMS)  # (as set: the live values follow after this callback)
            note = self._pipeline.ceiling_note(p)
            if note is not None:
                self.get_logger().warn(note)
            else:
                timesteps = self._pipeline.current_timesteps(Settings.from_values(p))
                self.get_logger().info(f'T={timesteps} in force')
        if self._pipeline.session is not None and any(
                p.name in ('early_exit', 'early_exit_margin', 'early_exit_min_steps')
                for p in changed):
            note = self._pipeline.early_exit_note(values(self, PARAMS))
            if note is not None:
                self.get_logger().warn(note)
        if self._pipeline.session is not None and any(
                p.name == 'online_learning' and p.value for p in changed):
            threading.Thread(target=self._warm_up_learning, name='learning_warm_up',
                             daemon=True).start()

    def _warm_up_learning(self) -> None:
        try:
            note = self._pipeline.learning_switched_on()  # an earlier run's learning kept
            if note is not None:
                self.get_logger().warn(note)
        except (OSError, ValueError) as exc:  # another model's learning at save_path
            self.get_logger().error(f'learnt weights will not be saved: {exc}')
        try:
            self._pipeline.warm_up_learning()
        except Exception as exc:  # the first learnt input will load the kernels instead
            self.get_logger().warning(f'could not ready on-line learning: {exc}')

    # Lifecycle -------------------------------------------------------------------------------
    def on_configure(self, state) -> TransitionCallbackReturn:
        """Load the model; create the publishers, the ``timestep`` subscription, the service."""
        self._prepare_as_trained()
        p = values(self, PARAMS)
        try:
            self._packet_type = event_packet_type(
                "input_mode 'events'", "set input_mode to 'frames'") \
                if p['input_mode'] == 'events' else None
            # Packets are read from their bytes (made ready now, not at the first packet:
            # the reader must not pause), unless the installed EventPacket is another one.
            self._raw_packets = self._packet_type is not None and \
                prepare_cdr_reading(self._packet_type)
            # Raw frames likewise (compressed ones are small: taken as messages).
            self._raw_frames = p['input_mode'] == 'frames' and \
                p['image_transport'] == 'raw' and prepare_image_cdr_reading()
            if self._packet_type is not None and not self._raw_packets:
                self.get_logger().warn(
                    'the installed event_camera_msgs/EventPacket differs from the one this '
                    'package reads from bytes: packets are taken as messages (slower)')
            # Results are published serialized, built directly, if that gives the message.
            self._raw_results = prediction_cdr_matches()
            if not self._raw_results:
                self.get_logger().warn(
                    'the installed topspark_ros/Classification differs from the one this '
                    'package serializes itself: results are published as messages (slower)')
            vision = vision_msgs_types(
                'publish_vision_msgs (true)') if p['publish_vision_msgs'] else None
            self._pipeline.load()
        except Exception as exc:  # a bad path or file, a missing package: never a crash
            return self._configure_failed(exc)
        try:
            self._make_interfaces(p, vision)
        except Exception as exc:  # (rclpy turned it into ERROR without a word; a review)
            self._undo_configure()
            return self._configure_failed(exc)
        self.get_logger().info(f"loaded {p['model_path']} on {p['device']} "
                               f"({p['input_mode']})")
        session = self._pipeline.session
        for warning in [*session.notes, frames_model_on_events(p, session.model),
                        self._pipeline.ceiling_note(p), self._pipeline.early_exit_note(p)]:
            if warning is not None:
                self.get_logger().warn(warning)
        if vision is not None:
            self._score_key = None  # (this model's score: the first result says it again)
            self._score_kind = self._pipeline.score_kind(self._pipeline.current_timesteps())
            self.get_logger().info(f'vision_msgs scores: {self._score_kind}')
            self._publish_vision_info()
        return TransitionCallbackReturn.SUCCESS

    def _configure_failed(self, exc: Exception) -> TransitionCallbackReturn:
        """Log and publish why configure failed (ERROR in /diagnostics at once)."""
        self.get_logger().error(f'configure failed: {self._pipeline.configure_failed(exc)}')
        self._diagnostics.publish_now()
        return TransitionCallbackReturn.FAILURE

    def _make_interfaces(self, p: dict, vision) -> None:
        """Create the publishers, the ``timestep`` subscription and the service of configure."""
        self._pub = self._make(self.create_lifecycle_publisher(
            Classification, 'classification', 10), self.destroy_lifecycle_publisher)
        if vision is not None:
            session = self._pipeline.session
            self._labels = class_labels(session.class_names, session.model.n_classes)
            self._vision_pub = self._make(self.create_lifecycle_publisher(
                vision.Classification, 'vision_classification', 10),
                self.destroy_lifecycle_publisher)
            labels = self._make(self.create_publisher(vision.LabelInfo, 'label_info', LATCHED),
                                self.destroy_publisher)  # class index -> name, once
            header = Header(stamp=self.get_clock().now().to_msg())
            labels.publish(label_info_msg(self._labels, header, vision=vision))
            self._class_map_version += 1  # (a new model: VisionInfo says its map is new)
            self._vision_info_pub = self._make(self.create_publisher(
                vision.VisionInfo, 'vision_info', LATCHED), self.destroy_publisher)
        control = MutuallyExclusiveCallbackGroup()
        # A volatile publisher (a planner of the user's own) cannot match the latched
        # subscription: said with the fix, as for the camera (rmw said it once, at discovery).
        topic = self.resolve_topic_name('timestep')
        self._make(self.create_subscription(
            TimestepCommand, 'timestep', self._on_timestep, LATCHED, callback_group=control,
            event_callbacks=warn_on_incompatible_qos(
                self, topic, 'publish TimestepCommand reliable and transient local (depth 1), '
                'as the timestep controller does')),
            self.destroy_subscription)
        self._make(self.create_service(Trigger, '~/save_model', self._on_save,
                                       callback_group=control), self.destroy_service)

    def _prepare_as_trained(self) -> None:
        """
        Set ``crop`` and ``invert`` as the model's training images were prepared, unless given.

        Those given at start-up or set since are kept, with a warning where the model records
        another value; the others take the model's (``topspark train`` records them), or their
        defaults for a model that records none.
        """
        p = values(self, PARAMS)
        recorded = trained_preparation(p, resolve)
        if p['input_mode'] == 'events':  # windows are not adopted: the config gives them
            mismatch = window_mismatch(p, recorded)
            if mismatch is not None:
                self.get_logger().warn(mismatch)
        values_to_set, warnings = preparation_plan(
            p, recorded, self._given, {param.name: param.default for param in PARAMS})
        for warning in warnings:
            self.get_logger().warn(warning)
        adopt = [Parameter(name, value=value) for name, value in values_to_set.items()]
        if not adopt:
            return
        self._adopting = True
        try:
            results = self.set_parameters(adopt)
        finally:
            self._adopting = False
        for parameter, result in zip(adopt, results):
            if result.successful:
                self.get_logger().info(f'{parameter.name} {parameter.value!r}: as the model was '
                                       'trained (set it to override)')
            else:  # a value the model records that this node refuses: said, not claimed
                self.get_logger().warn(f'{parameter.name} {parameter.value!r}, as the model was '
                                       f'trained, is refused: {result.reason}')

    def on_activate(self, state) -> TransitionCallbackReturn:
        """
        Subscribe the input and start classifying (an event stream starts afresh).

        A failure (the model cannot be reopened on its device, the input cannot be
        subscribed) leaves the node inactive, with the reason logged and in the diagnostics
        (rclpy would swallow the exception and clean the node up without a word).
        """
        try:
            return self._activate(state)
        except Exception as exc:  # noqa: B902 - whatever it is, say it and stay inactive
            self._stop_input()
            super().on_deactivate(state)  # the publishers off again
            reason = self._pipeline.error(f'activate failed: {type(exc).__name__}: {exc}')
            self.get_logger().error(reason)
            self._diagnostics.publish_now()
            return TransitionCallbackReturn.FAILURE

    def _activate(self, state) -> TransitionCallbackReturn:
        p = values(self, PARAMS)
        self._pipeline.activate()
        result = super().on_activate(state)  # the lifecycle publishers first
        freeze_long_lived()  # no full collection of the model's objects while input flows
        self._frozen = True
        self._active = True
        if p['input_mode'] == 'events':  # packets decoded and windowed in the reader
            qos = QoSProfile(depth=p['events_depth'],
                             reliability=reliability(p['events_reliability']))
            self._intake = Intake(
                self, self._packet_type, 'events', qos, self._drain_windows,
                receive=self._on_packet, names=('events_reader', 'windows_worker'),
                on_error=self._worker_error, nice=WORKER_NICE,
                min_period_s=p['events_batch_ms'] / 1000.0, raw=self._raw_packets,
                event_callbacks=warn_on_incompatible_qos(  # (as the camera's; a review)
                    self, self.resolve_topic_name('events'),
                    "set events_reliability to 'best_effort' to hear it"))
        else:  # the newest frame classified in the reader; those it replaced counted
            qos = QoSProfile(depth=p['image_depth'],
                             reliability=reliability(p['image_reliability']))
            self._intake = camera_intake(
                self, p['image_transport'], qos, work=self._on_image, drop=self._drop_frame,
                raw=self._raw_frames,
                names=('frames_reader', ''),
                on_error=self._worker_error,
                hint="set image_reliability to 'best_effort' to hear it")
        return result

    def on_deactivate(self, state) -> TransitionCallbackReturn:
        """Unsubscribe the input, stop work, save learnt weights, and free the accelerator."""
        self._stop_input()
        with self._pipeline.busy:  # let an input in progress finish
            self._save_if_learnt()
            self._pipeline.free_accelerator()
        return super().on_deactivate(state)

    def on_cleanup(self, state) -> TransitionCallbackReturn:
        """Unload the model and destroy what configure created (after an input in progress)."""
        self._stop_input()
        with self._pipeline.busy:
            self._undo_configure()
        return TransitionCallbackReturn.SUCCESS

    def _undo_configure(self) -> None:
        """Destroy what configure made and unload the model (``busy`` held or no input)."""
        for entity, destroy in self._made:  # /diagnostics lives as long as the node
            destroy(entity)
        self._made = []
        self._pub = self._vision_pub = self._vision_info_pub = self._labels = None
        self._pipeline.unload()

    on_error = on_cleanup  # an error in a transition: back to unconfigured

    def on_shutdown(self, state) -> TransitionCallbackReturn:
        """Save learnt weights and release everything."""
        self._stop_input()
        with self._pipeline.busy:
            self._save_if_learnt()
        return self.on_cleanup(state)

    def destroy_node(self) -> None:
        """Stop the input threads (a node destroyed while active has them), then destroy."""
        self._stop_input()
        with self._pipeline.busy:
            self._pipeline.unload()  # (a process going on: the learnt weights' lock freed)
        super().destroy_node()

    # Work ------------------------------------------------------------------------------------
    def _on_image(self, msg, waited: bool = False, missed: Optional[int] = None) -> None:
        """
        Reader thread: classify one frame now, or drop and count it while another is in progress.

        ``msg``: an Image or a CompressedImage, or a raw Image's serialized bytes (as the
        reader takes them when ``image_transport`` is raw); bytes that are not an Image are
        counted as an error and skipped. ``waited``, ``missed``: see
        :meth:`ClassifierPipeline.classify_frame
        <topspark_ros.core.pipeline.ClassifierPipeline.classify_frame>`.
        """
        if self._active:
            self._classify('frame', lambda: self._classify_frame(msg, waited, missed))

    def _classify_frame(self, msg, waited: bool, missed: Optional[int]) -> Optional[str]:
        image, header = _image_and_header(msg)
        pipeline = self._pipeline
        warning = depth_like(frame_encoding(image))
        pipeline.input_note = warning  # /diagnostics WARNs while such frames come
        if warning is not None:  # (rclpy throttles by call site: 32FC1 frames after 16UC1
            # ones went unsaid for a minute; a review)
            with self._reasons_lock:
                due = self._input_notes.due(warning, time.monotonic())
            if due:
                self.get_logger().warn(warning)

        def read():  # with the model held; for a grey model a YUV frame gives its luma alone
            spec = pipeline.session.model.input_spec  # a JPEG decoded at its size's scale
            return frame_to_array(image, spec.channels == 1, (spec.height, spec.width))
        failure = pipeline.classify_frame(stamp_ns(header), read, header, self._publish,
                                          waited=waited, missed=missed)
        session = pipeline.session
        note = None if session is None else session.frame_note
        if note != self._frame_note:  # once a camera, not every frame (/diagnostics keeps it)
            self._frame_note = note
            if note is not None and note not in self._notes_said:  # (a mix of grey and colour
                # frames logged it at every change: 12 times in 72 frames; a review)
                self._notes_said.add(note)
                self.get_logger().warn(f'{note}; results get no calibrated score (said once '
                                       'a run; /diagnostics WARNs while such frames come)')
        return failure

    def _drop_frame(self, msg, waited: bool = False, missed: Optional[int] = None) -> None:
        """Reader thread: count a frame a newer one passed (a message or its bytes)."""
        try:
            _, header = _image_and_header(msg)
        except ValueError as exc:
            self._skipped('frame', exc)
            return
        self._pipeline.drop_frame(stamp_ns(header), waited=waited, missed=missed)

    def _on_packet(self, msg) -> None:
        """
        Reader thread: decode and window one EventPacket, serialized (as the reader takes it).

        Tests call it directly, with messages too. A window's results carry the header of the
        packet its last event came from (as read from its bytes: a CdrHeader).
        """
        intake = self._intake
        if not self._active or intake is None:
            return
        try:
            if isinstance(msg, bytes):
                fields, header = cdr_to_packet(msg)
            else:
                fields, header = packet_to_fields(msg), msg.header
            self._pipeline.push_packet(fields, header, intake.worker)
        except ValueError as exc:  # unknown encoding, a packet the decoder refuses, not CDR
            self._skipped('event packet', exc)

    def _drain_windows(self, windows: Optional[list] = None) -> None:
        """Worker: classify ``windows`` (handed over), then those waiting, a batch at a time."""
        self._pipeline.drain_windows(windows, lambda: self._active, self._classify_windows)

    def _classify_windows(self, batch: list) -> None:
        self._classify('event windows',
                       lambda: self._pipeline.classify_windows(batch, self._publish))

    def _classify(self, what: str, work) -> None:
        """Run ``work()``: a ValueError skips the input (counted); log a failed periodic save."""
        try:
            save_failure = work()
        except ValueError as exc:  # an input we cannot read: count it, say why, carry on
            self._skipped(what, exc)
            return
        if save_failure is not None:
            self.get_logger().error(save_failure, throttle_duration_sec=5.0)

    def _skipped(self, what: str, exc: Exception) -> None:
        """Count an input skipped for ``exc``; log a new reason at once, the same every 5 s."""
        reason = self._pipeline.error(exc)
        with self._reasons_lock:  # (the reader and the worker both skip inputs)
            due = self._reasons.due(f'{what}: {reason}', time.monotonic())
        if due:
            self.get_logger().warn(f'{what} skipped: {reason}')

    def _worker_error(self, exc: Exception) -> None:
        """
        Count and log what a classification raised (in the reader or the worker); it goes on.

        Once the context is shut down (Ctrl-C, SIGTERM) a result still being published fails
        with the context: that is the end of the node, not an error of it.
        """
        if not self.context.ok():
            return
        reason = self._pipeline.error(f'{type(exc).__name__}: {exc}')
        self.get_logger().error(f'classification failed: {reason}', throttle_duration_sec=5.0)

    def _on_timestep(self, msg: TimestepCommand) -> None:
        """Take the commanded T, clamped to max_timesteps (counted); T=0 is ignored (counted)."""
        warning = self._pipeline.command(int(msg.timesteps), msg.model_sha256)
        if warning is None:
            return
        # One call site each: rclpy throttles a log call by where it is made, and a clamp
        # right after an ignored T=0 went unlogged when they shared one (a user review).
        if 'another model' in warning:
            self.get_logger().warn(warning, throttle_duration_sec=5.0)
        elif msg.timesteps < 1:
            self.get_logger().warn(warning, throttle_duration_sec=5.0)
        else:
            self.get_logger().warn(warning, throttle_duration_sec=5.0)

    def _on_save(self, request, response):
        response.success, response.message = self._pipeline.save_now()
        # (A service save said nothing; a review.) One call site per severity: rclpy raises
        # ValueError when one site logs at another severity than before, and the reply of a
        # save that went otherwise than the first was lost (a review).
        if response.success:
            self.get_logger().info(f'~/save_model: {response.message}')
        else:
            self.get_logger().warn(f'~/save_model: {response.message}')
        return response

    def _publish(self, prediction, header, dropped: int) -> None:
        """
        Publish one result as Classification (and vision_msgs/Classification).

        A result whose vision_msgs score means something else than the last one's (another
        T, the early exit switched) republishes VisionInfo first.

        Classification goes out as its serialized bytes, built directly (no Python message;
        unless the installed message is another one). The vision_msgs result is built only
        while someone subscribes to it (building and converting it cost about 0.2 ms a frame;
        a subscriber sees results from its match on, as with any volatile topic).
        """
        session = self._pipeline.session  # the model's name as profiles give it
        model, base = session.identity() if session is not None else ('', '')
        who = {'source': self._source, 'model_sha256': model, 'base_model_sha256': base}
        if self._raw_results:
            self._pub.publish(prediction_to_cdr(prediction, header, dropped, **who))
        else:
            self._pub.publish(prediction_to_msg(prediction, header_msg(header), dropped, **who))
        vision = self._vision_pub
        if vision is None:
            return
        listened = vision.get_subscription_count()
        key = (prediction.calibrated_score is not None, prediction.timestep_budget,
               self._values())  # (the parameters' mapping: replaced by every set)
        if prediction.class_id >= 0 and key != self._score_key:
            # the score's meaning may have changed (another T, early exit on): say so, in
            # VisionInfo before the first result it describes
            self._score_key = key
            kind = self._pipeline.score_kind(prediction.timestep_budget)
            if kind != self._score_kind:  # (it was said on a switch of kind only)
                self._score_kind = kind
                self._publish_vision_info()
                if listened:
                    self.get_logger().info(f'vision_msgs scores from now on: {kind}')
        if listened:
            vision.publish(prediction_to_vision_msg(prediction, header_msg(header)))

    def _publish_vision_info(self) -> None:
        """
        Publish (latched) ``vision_msgs/VisionInfo``: the model, what the scores are now.

        ``method`` names the model and what the ``score`` of the vision_msgs results is
        (:meth:`ClassifierPipeline.score_kind`); ``database_location`` is the ``label_info``
        topic (class id -> name); ``database_version`` counts the LabelInfos this node has
        published (one per configure: each may be another model's classes).
        """
        publisher = self._vision_info_pub
        if publisher is None:
            return
        session = self._pipeline.session
        model, _ = session.identity() if session is not None else ('', '')
        name = os.path.basename(self._values()['model_path'])
        method = (f'topspark_ros SNN classifier, model {name}'
                  f'{f" (sha256 {model[:12]})" if model else ""}; score: {self._score_kind}')
        header = Header(stamp=self.get_clock().now().to_msg())
        publisher.publish(vision_info_msg(method, self.resolve_topic_name('label_info'),
                                          self._class_map_version, header))

    def _diagnostic_status(self) -> tuple:
        """
        Return the ``classifier: classification`` status (ClassifierPipeline.status).

        In event mode, first close the open window of a stream gone quiet (its last window
        is classified within a status period of the silence).
        """
        intake = self._intake
        if self._active and intake is not None:
            self._pipeline.close_quiet_window(intake.worker)
        level, message, figures = self._pipeline.status(self._state_machine.current_state[1],
                                                        self._active)
        if intake is not None:  # which camera a "no input" is about, and failed reads
            figures = {**figures, 'input_topic': intake.reader.topic_name,
                       'input_errors': intake.reader.errors}
        figures = {**figures, 'bond': self.bond_state}
        return diagnostics.LEVELS[level], message, figures

    # Helpers ---------------------------------------------------------------------------------
    def _make(self, entity, destroy):
        """Return ``entity``, destroyed with ``destroy`` by cleanup."""
        self._made.append((entity, destroy))
        return entity

    def _save_if_learnt(self) -> None:
        try:
            path = self._pipeline.save_if_learnt()
        except (OSError, ValueError) as exc:
            self.get_logger().error(f'could not save learnt weights: {exc}')
            return
        if path is not None:
            self.get_logger().info(f'saved learnt weights to {path}')

    def _stop_input(self) -> None:
        """Stop taking input: the reader (its subscription destroyed), then the worker."""
        self._active = False
        if self._intake is not None:
            self._intake.close()
            self._intake = None
        if self._frozen:  # this node's freeze undone, once
            self._frozen = False
            thaw_long_lived()


def _image_and_header(msg) -> tuple:
    """Return ``(image, header)`` of a frame message, or of a raw Image's serialized bytes."""
    return cdr_to_image(msg) if isinstance(msg, bytes) else (msg, msg.header)


def main(args=None) -> int:
    """Run the classifier alone (``ros2 run topspark_ros classifier``)."""
    from topspark_ros.nodes.runner import run_nodes
    return run_nodes([ClassifierNode], args=args)


if __name__ == '__main__':
    import sys
    sys.exit(main())
