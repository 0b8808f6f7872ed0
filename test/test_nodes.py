"""
In-process node tests: lifecycle transitions (error paths too), parameters, headers, drops.

Each test runs real rclpy nodes on their own context and executor; helper nodes publish the
inputs and record the outputs over the in-process middleware.
"""

import pathlib
import shutil
import threading
import time

import numpy as np
import pytest
from ros_graph import destroy, leave_graph

pytestmark = pytest.mark.ros
ROOT = pathlib.Path(__file__).resolve().parent.parent
MODEL = ROOT / 'models' / 'stdp_fmnist_n400.json'


def _probe(context, executor):
    """Return a node with publishers of images/commands and recorders of the outputs."""
    from rclpy.node import Node
    from rclpy.qos import DurabilityPolicy, qos_profile_sensor_data, QoSProfile, \
        ReliabilityPolicy
    from sensor_msgs.msg import Image

    from topspark_ros.msg import Classification, TimestepCommand
    node = Node('probe', context=context)
    node.images = node.create_publisher(Image, 'image', qos_profile_sensor_data)
    command_qos = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                             durability=DurabilityPolicy.TRANSIENT_LOCAL)
    node.commands = node.create_publisher(TimestepCommand, 'timestep', command_qos)
    node.results = []
    # Deeper than the most results a test sends while nothing spins (95 frames in a burst):
    # keep-last would drop the oldest of them before the executor took them.
    node.create_subscription(Classification, 'classification', node.results.append, 100)
    executor.add_node(node)
    return node


def _frame(node, value: int = 0, frame_id: str = 'cam'):
    from topspark_ros.conversions.image import array_to_image
    from topspark_ros.core.data.idx import find_dataset_dir, load_mnist_family
    images = load_mnist_family(find_dataset_dir(), 'test').images
    msg = array_to_image(images[value], 'mono8')
    msg.header.stamp = node.get_clock().now().to_msg()
    msg.header.frame_id = frame_id
    return msg


def _active_classifier(context, executor, **overrides) -> tuple:
    """Return ``(classifier, probe)``: a classifier configured and activated, and a probe."""
    node = _classifier(context, executor, **overrides)
    probe = _probe(context, executor)
    node.trigger_configure()
    node.trigger_activate()
    return node, probe


def _classifier(context, executor, **overrides):
    from rclpy.parameter import Parameter

    from topspark_ros.nodes.classifier import ClassifierNode
    params = {'model_path': str(MODEL), 'default_timesteps': 32, 'crop': 'none',
              'profile_path': '', **overrides}
    node = ClassifierNode(context=context, parameter_overrides=[
        Parameter(k, value=v) for k, v in params.items()])
    executor.add_node(node)
    return node


def test_classifier_lifecycle_headers_and_class_names(ros) -> None:
    """
    Configure, activate, classify with the image's header copied, deactivate, cleanup.

    The result is published as bytes built directly (``prediction_to_cdr``), as it is
    whenever the installed message is the one those bytes serialize.
    """
    from lifecycle_msgs.msg import State
    from rclpy.lifecycle import TransitionCallbackReturn
    context, executor, spin_until = ros
    node = _classifier(context, executor)
    probe = _probe(context, executor)
    assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
    assert node._raw_results
    assert node.trigger_activate() == TransitionCallbackReturn.SUCCESS
    sent = _frame(probe, 0, 'camera_optical_frame')
    assert spin_until(lambda: (probe.images.publish(sent) or bool(probe.results)))
    result = probe.results[0]
    assert result.header.stamp == sent.header.stamp
    assert result.header.frame_id == 'camera_optical_frame'
    assert result.timestep_budget == 32 and result.timesteps_used == 32
    assert len(result.scores) == 10
    if result.class_id >= 0:
        assert result.class_name in ('T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat',
                                     'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot')
    assert result.energy_j > 0 and result.energy_preset == 'cmos45_fp32'
    assert result.synaptic_ops == result.accumulates + result.macs > 0
    assert node.trigger_deactivate() == TransitionCallbackReturn.SUCCESS
    spin_until(lambda: False, timeout_s=1.0)  # deliver what was in flight before
    count = len(probe.results)
    probe.images.publish(_frame(probe, 1))
    spin_until(lambda: False, timeout_s=0.5)
    assert len(probe.results) == count, 'an inactive classifier published'
    assert node.trigger_cleanup() == TransitionCallbackReturn.SUCCESS
    assert node._state_machine.current_state[0] == State.PRIMARY_STATE_UNCONFIGURED


@pytest.mark.parametrize('kind', ['single', 'events'])
def test_classifier_runs_on_every_executor_kind(kind) -> None:
    """The node classifies on the single-threaded and the events executor too (--executor)."""
    import rclpy

    from topspark_ros.nodes.runner import bring_up, make_executor
    context = rclpy.Context()
    rclpy.init(context=context)
    executor = make_executor(kind, context=context)
    try:
        node = _classifier(context, executor)
        probe = _probe(context, executor)
        bring_up(node)
        sent = _frame(probe, 3, 'cam')
        end = time.monotonic() + 30.0
        while not probe.results and time.monotonic() < end:
            probe.images.publish(sent)
            executor.spin_once(timeout_sec=0.05)
        assert probe.results, f'no classification on the {kind} executor'
        assert probe.results[0].header.stamp == sent.header.stamp
        assert probe.results[0].timesteps_used == 32
    finally:
        leave_graph(executor, context)
    with pytest.raises(ValueError, match='unknown executor'):
        make_executor('fibers')


def test_classifier_configure_fails_cleanly_on_a_bad_model(ros, tmp_path) -> None:
    """A missing or corrupt checkpoint fails configure; the node stays unconfigured."""
    from lifecycle_msgs.msg import State
    from rclpy.lifecycle import TransitionCallbackReturn
    context, executor, _ = ros
    broken = tmp_path / 'broken.json'
    broken.write_text('{not json')
    for path in (str(tmp_path / 'missing.json'), str(broken), ''):
        node = _classifier(context, executor, model_path=path)
        assert node.trigger_configure() == TransitionCallbackReturn.FAILURE
        assert node._state_machine.current_state[0] == State.PRIMARY_STATE_UNCONFIGURED
        executor.remove_node(node)
        destroy(node)


def test_classifier_parameters_are_validated(ros) -> None:
    """Out-of-range and wrong-type sets are refused with a reason; locked ones while active."""
    from rclpy.parameter import Parameter
    context, executor, _ = ros
    node = _classifier(context, executor)
    refused = node.set_parameters([Parameter('default_timesteps', value=0)])[0]
    assert not refused.successful and 'range' in refused.reason
    wrong = node.set_parameters([Parameter('default_timesteps', value='ten')])[0]
    assert not wrong.successful and 'type' in wrong.reason
    choice = node.set_parameters([Parameter('energy_preset', value='abacus')])[0]
    assert not choice.successful and 'one of' in choice.reason
    assert node.get_parameter('default_timesteps').value == 32
    node.trigger_configure()
    # Read at configure: locked from then on, inactive too (a change accepted while inactive
    # was not used, while the diagnostics showed it: a user review).
    for name, value in (('device', 'cuda'), ('image_transport', 'compressed'),
                        ('model_path', '/elsewhere.json')):
        locked = node.set_parameters([Parameter(name, value=value)])[0]
        assert not locked.successful and 'unconfigured' in locked.reason, name
    node.trigger_activate()
    locked = node.set_parameters([Parameter('device', value='cuda')])[0]
    assert not locked.successful and 'unconfigured' in locked.reason
    live = node.set_parameters([Parameter('default_timesteps', value=48)])[0]
    assert live.successful
    described = node.describe_parameters(['default_timesteps'])[0]
    assert described.integer_range[0].from_value == 1 and described.description
    # Its own value, as `ros2 param set` or `param load` of a dump sends it (an array('q'),
    # which never equalled the stored list: refused; a review).
    same = Parameter.from_parameter_msg(node.get_parameter('roi').to_parameter_msg())
    assert type(same.value).__name__ == 'array' and node.set_parameters([same])[0].successful
    node.trigger_shutdown()
    finalized = node.set_parameters([Parameter('device', value='cuda')])[0]
    assert not finalized.successful and 'finalized' in finalized.reason


REFUSED_AT_CONSTRUCTION = [
    ('classifier', 'ClassifierNode', {'default_timesteps': 0}, 'out of range'),
    ('timestep_controller', 'TimestepControllerNode', {'mode': 'fastest'}, 'mode must be'),
    ('energy_monitor', 'EnergyMonitorNode', {'memory_preset': 'abacus'}, 'memory_preset'),
    ('battery_simulator', 'BatterySimulatorNode', {'capacity_j': 0.0}, 'out of range'),
    ('image_player', 'ImagePlayerNode', {'folder': '/no/such/folder'}, 'does not exist'),
    ('event_player', 'EventPlayerNode', {'file': '', 'dataset': ''}, 'both empty'),
    ('bag_player', 'BagPlayerNode', {'bag': ''}, 'bag is empty'),
    ('recorder', 'RecorderNode', {}, 'exactly one destination'),
]


@pytest.mark.parametrize('module, name, overrides, reason', REFUSED_AT_CONSTRUCTION,
                         ids=[case[1] for case in REFUSED_AT_CONSTRUCTION])
def test_a_node_whose_constructor_refuses_leaves_the_graph_at_once(
        ros, module, name, overrides, reason) -> None:
    """
    A node whose constructor raised is destroyed by it: its DDS participant goes at once.

    It was left to the garbage collector (the error's traceback holds it), in the graph and
    with the participant alive until a collection at any later moment (a test run hung in
    Fast DDS on one such; see topspark_ros/nodes/construction.py). No collection runs here.
    """
    import gc
    import importlib

    from rclpy.parameter import Parameter
    from ros_graph import participants
    context, _, _ = ros
    node_class = getattr(importlib.import_module(f'topspark_ros.nodes.{module}'), name)
    gc.disable()
    try:
        with pytest.raises(Exception, match=reason) as refused:
            node_class(context=context, parameter_overrides=[
                Parameter(key, value=value) for key, value in overrides.items()])
        assert refused.traceback  # (what held the node)
        assert participants() == []
    finally:
        gc.enable()


def test_every_node_class_is_destroyed_if_its_construction_fails() -> None:
    """Each node class of the package has the decorator (a new node without it is found)."""
    import importlib
    import inspect
    import pkgutil

    from rclpy.node import Node

    import topspark_ros.nodes
    from topspark_ros.nodes.lifecycle import LifecycleNode
    classes = {}
    for module in pkgutil.iter_modules(topspark_ros.nodes.__path__):
        loaded = importlib.import_module(f'topspark_ros.nodes.{module.name}')
        for name, value in vars(loaded).items():
            if inspect.isclass(value) and issubclass(value, Node) and \
                    value.__module__ == loaded.__name__ and value is not LifecycleNode:
                classes[name] = value
    assert {case[1] for case in REFUSED_AT_CONSTRUCTION} < set(classes)
    undecorated = [name for name, cls in classes.items()
                   if not hasattr(vars(cls)['__init__'], '__wrapped__')]
    assert undecorated == []


def test_a_constructor_failing_before_what_destroy_node_needs_still_destroys_the_node(
        ros) -> None:
    """A ``destroy_node`` that needs what the constructor never made: the base's is used."""
    import gc

    from rclpy.node import Node
    from ros_graph import participants
    from std_msgs.msg import String

    from topspark_ros.nodes.construction import destroyed_if_construction_fails

    @destroyed_if_construction_fails
    class Partial(Node):
        def __init__(self, **kwargs) -> None:
            super().__init__('partial', **kwargs)
            self.create_publisher(String, 'made_before', 1)
            raise ValueError('refused before the reader was made')

        def destroy_node(self) -> None:
            self._reader.close()  # (never made)
            super().destroy_node()

    context, _, _ = ros
    gc.disable()
    try:
        with pytest.raises(ValueError, match='refused before the reader was made'):
            Partial(context=context)
        assert participants() == []
    finally:
        gc.enable()


def test_a_publish_failing_at_shutdown_is_not_an_error() -> None:
    """A classification that ends after the context shut down is neither counted nor logged."""
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.lifecycle import TransitionCallbackReturn
    context = rclpy.Context()
    rclpy.init(context=context)
    executor = SingleThreadedExecutor(context=context)
    node = _classifier(context, executor)
    try:
        assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
        node._worker_error(RuntimeError('a real failure'))
        assert node._pipeline.counts['errors'] == 1
    finally:  # out of the DDS graph, then the context shut down (what Ctrl-C or SIGTERM does)
        leave_graph(executor, context)
    node._worker_error(RuntimeError("Failed to publish: publisher's context is invalid"))
    assert node._pipeline.counts['errors'] == 1
    assert node._pipeline.last_error == 'RuntimeError: a real failure'


def test_a_result_published_as_bytes_arrives_as_the_message_would(ros) -> None:
    """The same result, published as bytes and as a message, is received the same."""
    from topspark_ros.conversions.cdr import CdrHeader
    from topspark_ros.core.energy import OpCounts
    from topspark_ros.core.session import Prediction
    context, executor, spin_until = ros
    node, probe = _active_classifier(context, executor)
    assert node._raw_results
    prediction = Prediction(
        class_id=2, class_name='Pullover', confidence=0.5, scores=[0.25, 0.0, 0.5, 0.25],
        timesteps_used=7, timestep_budget=32, early_exit=True, spike_count=12,
        ops=OpCounts(accumulates=1e3, macs=0.0, neuron_updates=2.5e3, plasticity_updates=0.0),
        latency_ms=0.75, energy_j=1.5e-7, energy_preset='cmos45_fp32', calibrated_score=0.625)
    header = CdrHeader(17, 42, 'camera_optical_frame')
    assert spin_until(lambda: node._pub.get_subscription_count() > 0)
    node._publish(prediction, header, 3)
    node._raw_results = False  # as with another version of the message
    node._publish(prediction, header, 3)
    assert spin_until(lambda: len(probe.results) == 2)
    as_bytes, as_message = probe.results
    assert as_bytes == as_message
    assert (as_bytes.header.stamp.sec, as_bytes.header.frame_id) == (17, 'camera_optical_frame')
    assert as_bytes.synaptic_ops == 1000 and as_bytes.frames_dropped == 3
    assert as_bytes.score == 0.625 and as_bytes.confidence == 0.5
    # Who sent it, so that listeners to several classifiers tell them apart (a review).
    assert as_bytes.source == node.get_fully_qualified_name() == '/classifier'
    assert (as_bytes.model_sha256, as_bytes.base_model_sha256) == \
        node._pipeline.session.identity()
    assert len(as_bytes.model_sha256) == 64 and as_bytes.base_model_sha256 == ''


def test_configure_publishes_messages_when_the_bytes_would_differ(ros, monkeypatch) -> None:
    """When the installed Classification is not the one serialized here: messages, warned."""
    import topspark_ros.nodes.classifier as classifier
    context, executor, spin_until = ros
    monkeypatch.setattr(classifier, 'prediction_cdr_matches', lambda: False)
    node = _classifier(context, executor)
    probe = _probe(context, executor)
    warnings = []
    monkeypatch.setattr(node.get_logger(), 'warn',
                        lambda text, **kwargs: warnings.append(text))
    node.trigger_configure()
    node.trigger_activate()
    assert not node._raw_results
    assert any('published as messages' in text for text in warnings), warnings
    sent = _frame(probe, 0, 'front')
    assert spin_until(lambda: (probe.images.publish(sent) or bool(probe.results)))
    assert probe.results[0].header.frame_id == 'front' and len(probe.results[0].scores) == 10


def test_timestep_command_is_used(ros) -> None:
    """A TimestepCommand changes the T of the following classifications."""
    from topspark_ros.msg import TimestepCommand
    context, executor, spin_until = ros
    node, probe = _active_classifier(context, executor)
    probe.commands.publish(TimestepCommand(timesteps=12))
    assert spin_until(lambda: node._pipeline.commanded == 12)
    assert spin_until(lambda: (probe.images.publish(_frame(probe, 2)) or bool(probe.results)))
    assert probe.results[-1].timestep_budget == 12


def test_a_frame_sent_again_with_its_stamp_gets_its_result_again(ros) -> None:
    """
    A frame sent again with its stamp gets its result again; with 'stream', other results.

    ``input_seed`` 'stamp' (the default): a frame's input spikes come from its header stamp,
    so a bag replayed gives the results of the live run; 'stream' (set live) draws them from
    the model's stream, and the same frame and stamp get other spikes.
    """
    from rclpy.parameter import Parameter
    context, executor, spin_until = ros
    node, probe = _active_classifier(context, executor)
    same, other = _frame(probe, 3), _frame(probe, 4)
    other.header.stamp.sec += 1

    def result_of(msg) -> tuple:  # the first result of msg that comes (sent until one does)
        count = len(probe.results)

        def got() -> list:
            return [r for r in probe.results[count:] if r.header.stamp == msg.header.stamp]
        assert spin_until(lambda: (probe.images.publish(msg) or bool(got())))
        return got()[0].spike_count, got()[0].synaptic_ops, tuple(got()[0].scores)

    first = result_of(same)
    assert [result_of(m) for m in (other, same, same)][1:] == [first, first]
    assert node.set_parameters([Parameter('input_seed', value='stream')])[0].successful
    assert len({result_of(same) for _ in range(3)}) > 1
    assert not node.set_parameters([Parameter('input_seed', value='bag')])[0].successful


def test_frames_arriving_while_busy_are_dropped_and_counted(ros) -> None:
    """While a frame is in progress, the next ones are dropped (counted), not queued."""
    context, executor, spin_until = ros
    node, probe = _active_classifier(context, executor)
    frame = _frame(probe, 3)
    node._pipeline.busy.acquire()  # a frame "in progress"
    try:
        for _ in range(5):
            node._on_image(frame)
    finally:
        node._pipeline.busy.release()
    assert node._pipeline.counts['dropped'] == 5 and node._pipeline.counts['processed'] == 0
    # Concurrently: a burst of frames processed by 3 executor threads at once (started
    # together: one started late found the others done, and nothing was dropped, once in a
    # loaded full run). A classification takes 5 ms here, so that the threads overlap however
    # the GIL hands them over (the frames took turns and none was dropped, in a run of 2026-12-06).
    session = node._pipeline.session
    classify = session.classify
    session.classify = lambda *args, **kwargs: time.sleep(0.005) or classify(*args, **kwargs)
    start = threading.Barrier(3)

    def burst():
        start.wait()
        for _ in range(30):
            node._on_image(frame)
    threads = [threading.Thread(target=burst) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    counts = node._pipeline.counts
    assert counts['processed'] + counts['dropped'] == 5 + 90
    assert counts['dropped'] > 5, 'concurrent frames were queued instead of dropped'
    assert spin_until(lambda: len(probe.results) == counts['processed'])
    assert probe.results[-1].frames_dropped <= counts['dropped']


def test_unreadable_frame_is_counted_not_fatal(ros) -> None:
    """A frame with an unsupported encoding is skipped with a counted error."""
    context, executor, _ = ros
    node, probe = _active_classifier(context, executor)
    bad = _frame(probe, 0)
    bad.encoding = 'yuv422'
    node._on_image(bad)
    assert node._pipeline.counts['errors'] == 1 and 'yuv422' in node._pipeline.last_error
    node._on_image(_frame(probe, 0))
    assert node._pipeline.counts['processed'] == 1


def test_energy_monitor_prices_classifications(ros) -> None:
    """Two classifications -> one EnergyEstimate with their mean energy and cumulative sum."""
    from rclpy.node import Node
    from rclpy.parameter import Parameter

    from topspark_ros.msg import Classification, EnergyEstimate
    from topspark_ros.nodes.energy_monitor import EnergyMonitorNode
    context, executor, spin_until = ros
    monitor = EnergyMonitorNode(context=context, parameter_overrides=[
        Parameter('publish_rate_hz', value=2.0), Parameter('profile_path', value=''),
        Parameter('baseline_energy_j', value=1e-9)])
    executor.add_node(monitor)
    probe = Node('probe', context=context)
    pub = probe.create_publisher(Classification, 'classification', 10)
    estimates = []
    probe.create_subscription(EnergyEstimate, 'energy', estimates.append, 10)
    executor.add_node(probe)
    assert spin_until(lambda: pub.get_subscription_count() > 0)
    pub.publish(Classification(accumulates=1000, neuron_updates=100, timesteps_used=10))
    pub.publish(Classification(accumulates=3000, neuron_updates=100, timesteps_used=30))
    assert spin_until(lambda: any(e.inference_count == 2 for e in estimates))
    last = next(e for e in estimates if e.inference_count == 2)
    from topspark_ros.core.energy import EnergyModel, OpCounts
    model = EnergyModel('cmos45_fp32')
    e1 = model.estimate(OpCounts(accumulates=1000, neuron_updates=100)).compute_j
    e2 = model.estimate(OpCounts(accumulates=3000, neuron_updates=100)).compute_j
    assert last.energy_preset == 'cmos45_fp32'
    assert last.cumulative_energy_j == pytest.approx(e1 + e2)
    assert any(e.energy_per_inference_j == pytest.approx((e1 + e2) / 2)
               or e.energy_per_inference_j == pytest.approx(e2) for e in estimates)
    assert last.baseline_energy_per_inference_j == pytest.approx(1e-9)
    assert np.isfinite(last.average_power_w) and last.average_power_w >= 0


def test_classifier_runs_a_converted_model_and_refuses_online_learning_on_it(ros) -> None:
    """The converted (CNN->SNN) family classifies frames; it cannot learn on line: refused."""
    from lifecycle_msgs.msg import State
    from rclpy.lifecycle import TransitionCallbackReturn
    from rclpy.parameter import Parameter
    context, executor, spin_until = ros
    converted = str(ROOT / 'models' / 'converted_fmnist_vgg.json')
    learning = _classifier(context, executor, model_path=converted, online_learning=True)
    assert learning.trigger_configure() == TransitionCallbackReturn.FAILURE
    assert learning._state_machine.current_state[0] == State.PRIMARY_STATE_UNCONFIGURED
    assert 'trained offline' in learning._pipeline.last_error
    executor.remove_node(learning)
    destroy(learning)

    node = _classifier(context, executor, model_path=converted, default_timesteps=2)
    probe = _probe(context, executor)
    assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
    node.trigger_activate()
    refused = node.set_parameters([Parameter('online_learning', value=True)])[0]
    assert not refused.successful and 'trained offline' in refused.reason
    sent = _frame(probe, 1, frame_id='front')
    assert spin_until(lambda: probe.images.publish(sent) or bool(probe.results), 30.0)
    result = probe.results[0]
    assert result.header.frame_id == 'front' and result.timestep_budget == 2
    assert result.class_name == 'Pullover'  # test image 1 is a pullover (label 2)
    assert result.macs > 0


def test_switching_online_learning_on_readies_learning_in_a_thread(ros, monkeypatch) -> None:
    """
    ``online_learning`` set true on a configured classifier readies the learning kernels.

    In a thread of its own (configure does it when the parameter is true from the start), so
    that the first learnt frame does not load them while frames are dropped; not when it is
    set false, nor before a model is loaded.
    """
    import threading
    from rclpy.lifecycle import TransitionCallbackReturn
    from rclpy.parameter import Parameter
    from topspark_ros.core.pipeline import ClassifierPipeline
    context, executor, spin_until = ros
    warmed = []
    monkeypatch.setattr(ClassifierPipeline, 'warm_up_learning', lambda self: warmed.append(
        threading.current_thread().name))
    node = _classifier(context, executor)
    assert node.set_parameters([Parameter('online_learning', value=True)])[0].successful
    node.set_parameters([Parameter('online_learning', value=False)])
    assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
    assert node.set_parameters([Parameter('online_learning', value=False)])[0].successful
    assert node.set_parameters([Parameter('online_learning', value=True)])[0].successful
    assert spin_until(lambda: bool(warmed), 10.0)
    assert warmed == ['learning_warm_up']  # once: not unconfigured, not when set false


def test_depth_frames_on_the_input_are_warned_about(ros, monkeypatch) -> None:
    """A depth topic remapped to the classifier was classified silently (near-black frames)."""
    import numpy as np

    from topspark_ros.conversions.image import array_to_image
    context, executor, spin_until = ros
    node, probe = _active_classifier(context, executor)
    warnings = []
    monkeypatch.setattr(node.get_logger(), 'warn',
                        lambda text, **kwargs: warnings.append(text))
    grey = _frame(probe)
    assert spin_until(lambda: probe.images.publish(grey) or bool(probe.results))
    assert not any('depth' in text for text in warnings), warnings
    depth = array_to_image(np.full((48, 64), 1500, np.uint16), '16UC1')  # 1.5 m, in mm
    depth.header.stamp = probe.get_clock().now().to_msg()
    assert spin_until(lambda: probe.images.publish(depth)
                      or any('depth' in text for text in warnings))
    said = [text for text in warnings if 'depth' in text]
    assert '16UC1' in said[0] and 'mono8' in said[0], warnings


def test_cleanup_lets_go_of_a_model_that_learnt(ros, tmp_path) -> None:
    """
    Cleanup unloads the model, also after on-line learning.

    The count of inputs the model had learnt held the session and its model (device memory
    off the CPU) after cleanup, until a later configure's first learnt input (a review of
    the nodes' footprint).
    """
    import gc
    import weakref

    from rclpy.lifecycle import TransitionCallbackReturn
    context, executor, spin_until = ros
    node, probe = _active_classifier(context, executor, online_learning=True,
                                     save_path=str(tmp_path / 'learnt.json'))
    session = weakref.ref(node._pipeline.session)
    model = weakref.ref(node._pipeline.session.model)
    assert spin_until(lambda: probe.images.publish(_frame(probe, len(probe.results)))
                      or len(probe.results) >= 3)
    assert node._pipeline.learnt_here >= 1
    assert all(result.learnt for result in probe.results)  # (the monitor prices it so)
    assert node.trigger_deactivate() == TransitionCallbackReturn.SUCCESS
    assert node.trigger_cleanup() == TransitionCallbackReturn.SUCCESS
    # A callback the executor's threads still run (the /diagnostics status reads the session
    # into a local) may hold it a moment longer: wait for that, bounded; what held it before
    # the fix held it until the next configure. (It failed once in a CI log without the wait.)
    end = time.monotonic() + 5.0
    while (session() is not None or model() is not None) and time.monotonic() < end:
        gc.collect()
        time.sleep(0.05)
    assert session() is None and model() is None


# Hostile inputs (issue 11): timestep commands, periodic saves, parameter ranges.


def _numeric(params) -> list:
    """Return the number (not bool, not array) parameters of a PARAMS tuple."""
    return [p for p in params if isinstance(p.default, (int, float))
            and not isinstance(p.default, bool)]


def _limits(node, name: str, spec=None) -> tuple:
    """
    Return the (lowest, highest) value the declared descriptor of ``name`` accepts.

    A float with an exclusive lower bound (``spec.above``) declares the bound itself, which
    its check refuses: the lowest accepted value is the next float up.
    """
    descriptor = node.describe_parameters([name])[0]
    span = descriptor.integer_range or descriptor.floating_point_range
    assert span, f'{name} has no declared range'
    low, high = span[0].from_value, span[0].to_value
    assert np.isfinite(low) and np.isfinite(high), name
    if spec is not None and spec.above is not None and isinstance(spec.default, float):
        assert low == spec.above and f'Must be > {spec.above:g}.' in descriptor.description
        low = float(np.nextafter(low, np.inf))
    return low, high


def test_timestep_commands_are_clamped_to_max_timesteps_and_counted(ros) -> None:
    """T above max_timesteps is clamped (counted), T=0 refused (counted); frames go on."""
    from rclpy.parameter import Parameter

    from topspark_ros.msg import TimestepCommand
    context, executor, spin_until = ros
    node, probe = _active_classifier(context, executor, max_timesteps=16)
    probe.commands.publish(TimestepCommand(timesteps=2**32 - 1))  # killed the process before
    assert spin_until(lambda: node._pipeline.commanded is not None, timeout_s=5.0)
    assert node._pipeline.commanded == 16 and node._pipeline.counts.get('timesteps_clamped') == 1
    probe.commands.publish(TimestepCommand(timesteps=0))
    assert spin_until(lambda: node._pipeline.counts.get('timesteps_refused') == 1, timeout_s=5.0)
    assert node._pipeline.commanded == 16
    assert spin_until(lambda: (probe.images.publish(_frame(probe, 2)) or bool(probe.results)))
    assert probe.results[-1].timestep_budget == 16
    # Lowered at run time (below the default of 32 too): the T in force follows at once.
    assert node.set_parameters([Parameter('max_timesteps', value=8)])[0].successful
    assert spin_until(lambda: (probe.images.publish(_frame(probe, 3))
                               or probe.results[-1].timestep_budget == 8))
    # A command taken under a low maximum comes back whole when the maximum is raised.
    probe.commands.publish(TimestepCommand(timesteps=12))
    assert spin_until(lambda: node._pipeline.requested == 12, timeout_s=5.0)
    assert node._pipeline.current_timesteps() == 8
    assert node.set_parameters([Parameter('max_timesteps', value=64)])[0].successful
    assert spin_until(lambda: (probe.images.publish(_frame(probe, 4))
                               or probe.results[-1].timestep_budget == 12))
    assert _limits(node, 'max_timesteps') == _limits(node, 'default_timesteps')
    assert node._pipeline.counts['errors'] == 0


def test_an_early_exit_rule_other_than_the_profiles_is_warned_about(ros, capfd) -> None:
    """The controller prices T with the profile's rule's figures: margin 1 was unsaid."""
    from rclpy.parameter import Parameter
    context, executor, _ = ros
    node = _classifier(context, executor, early_exit=True, early_exit_margin=1.0,
                       profile_path=str(MODEL.with_name('stdp_fmnist_n400.profile.yaml')))
    node.trigger_configure()
    said = "early exit with margin 1 from step 8: the profile's early-exit figures are of " \
        'margin 3 from step 8'
    assert said in capfd.readouterr().err
    assert node.set_parameters([Parameter('early_exit_margin', value=3.0)])[0].successful
    assert said not in capfd.readouterr().err
    assert node.set_parameters([Parameter('early_exit_min_steps', value=16)])[0].successful
    assert 'margin 3 from step 16: the profile' in capfd.readouterr().err


def test_a_model_or_profile_path_set_to_no_file_is_refused_at_once(ros, tmp_path) -> None:
    """It was taken, and failed only at the next configure (a review of the parameters)."""
    from rclpy.parameter import Parameter
    context, executor, _ = ros
    node = _classifier(context, executor)
    for name, value, said in (
            ('model_path', str(tmp_path / 'none.json'), f'model_path: {tmp_path}/none.json is '
             'not a file'),
            ('profile_path', str(tmp_path), f'profile_path: {tmp_path} is not a file'),
            ('model_path', 'package://no_such_package/m.json', "package 'no_such_package' is "
             'not installed')):
        refused = node.set_parameters([Parameter(name, value=value)])[0]
        assert not refused.successful and said in refused.reason, refused.reason
    assert node.set_parameters([Parameter('model_path', value=str(MODEL)[:-5])])[0].successful
    assert node.set_parameters([Parameter('profile_path', value='')])[0].successful


def test_a_default_t_above_the_maximum_is_clamped_and_other_sets_are_taken(
        ros, capfd) -> None:
    """
    The shipped default_timesteps 100 with max_timesteps 64: refused at a set, taken at start.

    Taken at start-up, it then refused every later set of any parameter, and the crop and
    invert a model was trained with, which configure adopts (a review): the classifier ran on
    frames prepared unlike its training images.
    """
    from rclpy.parameter import Parameter
    context, executor, spin_until = ros
    node = _classifier(context, executor, default_timesteps=100, max_timesteps=64)
    node.trigger_configure()
    assert node._state_machine.current_state[1] == 'inactive'
    assert 'default_timesteps 100 is above max_timesteps 64: T=64 until a TimestepCommand' \
        in capfd.readouterr().err
    assert node._pipeline.current_timesteps() == 64
    assert node.set_parameters([Parameter('early_exit', value=True)])[0].successful
    assert node.set_parameters([Parameter('max_timesteps', value=32)])[0].successful
    assert 'default_timesteps 100 is above max_timesteps 32' in capfd.readouterr().err
    assert node.set_parameters([Parameter('max_timesteps', value=128)])[0].successful
    assert 'T=100 in force' in capfd.readouterr().err


def test_failing_periodic_save_is_counted_and_classifying_goes_on(ros, tmp_path) -> None:
    """save_path's folder turned into a file: each periodic save fails, is counted; go on."""
    from std_srvs.srv import Trigger
    context, executor, spin_until = ros
    blocker = tmp_path / 'a_file'
    blocker.mkdir()  # a folder at configure (a bad save_path is refused there), then a file
    node, probe = _active_classifier(context, executor, online_learning=True, save_every_n=1,
                                     default_timesteps=8,
                                     save_path=str(blocker / 'weights.json'))
    shutil.rmtree(blocker)  # (it holds the learnt weights' lock file)
    blocker.write_text('not a directory')
    # Before: OSError escaped the image callback (and the executor) at the first learnt frame.
    assert spin_until(lambda: (probe.images.publish(_frame(probe, len(probe.results)))
                               or len(probe.results) >= 3))
    counts = node._pipeline.counts
    assert counts['learnt'] >= 3 and counts['saved'] == 0
    assert counts['save_failures'] == counts['learnt']
    assert counts['errors'] == counts['save_failures']
    assert 'save' in node._pipeline.last_error and 'a_file' in node._pipeline.last_error
    # The service answers the same fault the same way, and the node still classifies.
    response = node._on_save(Trigger.Request(), Trigger.Response())
    assert not response.success and 'save failed' in response.message
    # The folder back, a save succeeds and is answered: rclpy raised ValueError ("Logger
    # severity cannot be changed between calls") where one line logged the failure at WARN
    # and then the success at INFO, and the reply was lost (a review).
    blocker.unlink()
    blocker.mkdir()
    response = node._on_save(Trigger.Request(), Trigger.Response())
    assert response.success and 'weights.json' in response.message
    count = len(probe.results)
    assert spin_until(lambda: (probe.images.publish(_frame(probe, 5))
                               or len(probe.results) > count))


def test_early_exit_margin_zero_and_huge_periods_are_refused_at_set_time(ros) -> None:
    """The two values seen to break the node are refused with a reason; nothing changes."""
    from rclpy.parameter import Parameter

    from topspark_ros.nodes.timestep_controller import TimestepControllerNode
    context, executor, _ = ros
    node = _classifier(context, executor)
    margin = node.set_parameters([Parameter('early_exit_margin', value=0.0)])[0]
    assert not margin.successful and margin.reason
    period = node.set_parameters([Parameter('diagnostics_period_s', value=1e300)])[0]
    assert not period.successful and period.reason
    window = node.set_parameters([Parameter('window_events', value=10**12)])[0]
    assert not window.successful and window.reason
    assert node.get_parameter('early_exit_margin').value == 3.0
    assert node.get_parameter('diagnostics_period_s').value == 1.0
    controller = TimestepControllerNode(context=context)
    heartbeat = controller.set_parameters([Parameter('heartbeat_period_s', value=1e300)])[0]
    assert not heartbeat.successful and heartbeat.reason
    destroy(controller)


def test_param_exclusive_lower_bound_and_nan() -> None:
    """``above`` refuses the bound itself and declares the next value up; NaN is refused."""
    from topspark_ros.nodes.parameters import Param
    positive = Param('gain', 1.0, 'A gain.', above=0.0)
    assert '> 0.0' in positive.check(0.0) and positive.check(5e-324) is None
    assert 'number' in positive.check(float('nan'))
    assert 'number' in Param('free', 1.0, 'Unbounded.').check(float('nan'))
    span = positive.descriptor(lifecycle=True).floating_point_range[0]
    assert span.from_value == 0.0 and span.to_value == 1e308  # 0 itself: refused by check
    assert positive.descriptor(lifecycle=True).description == 'A gain. Must be > 0.'
    count = Param('count', 3, 'A count.', above=0)
    assert count.descriptor(lifecycle=True).integer_range[0].from_value == 1
    assert count.check(0) is not None and count.check(1) is None


def test_live_values_follow_accepted_sets_without_asking_the_node(ros) -> None:
    """The classifier's per-input view of its parameters: every accepted set, no refused one."""
    from rclpy.parameter import Parameter

    from topspark_ros.nodes.parameters import declare, live_values, Param
    context, executor, _ = ros
    from rclpy.node import Node
    node = Node('live_values_probe', context=context)
    try:
        params = (Param('gain', 1.0, 'A gain.', above=0.0), Param('count', 3, 'A count.', low=1))
        declare(node, params)
        current = live_values(node, params)
        asked = []
        get = node.get_parameter
        node.get_parameter = lambda name: asked.append(name) or get(name)
        assert dict(current()) == {'gain': 1.0, 'count': 3}
        assert not asked  # reading the view does not ask the node
        assert node.set_parameters_atomically([Parameter('gain', value=2.5),
                                               Parameter('count', value=7)]).successful
        assert dict(current()) == {'gain': 2.5, 'count': 7}
        assert not node.set_parameters([Parameter('count', value=0)])[0].successful
        assert current()['count'] == 7
        with pytest.raises(TypeError):
            current()['count'] = 1  # read-only
    finally:
        destroy(node)


def test_a_frame_costs_no_parameter_lookups(ros) -> None:
    """The frame path reads the live view, not the node (35 lookups were 0.3 ms a frame)."""
    context, executor, _ = ros
    node = _classifier(context, executor)
    node.trigger_configure()
    node.trigger_activate()
    asked = []
    get = node.get_parameter
    node.get_parameter = lambda name: asked.append(name) or get(name)
    node._on_image(_frame(node, 0))
    assert node._pipeline.counts['processed'] == 1 and asked == []
    node.trigger_deactivate()


def _classifier_works_with(context, executor, save_dir, name: str, value) -> str:
    """Configure, activate and classify two frames with one parameter set; return a fault."""
    from rclpy.lifecycle import TransitionCallbackReturn
    overrides = {'default_timesteps': 1 if name == 'max_timesteps' else 4, name: value,
                 'save_path': str(save_dir / 'w.json')}
    if name.startswith('early_exit'):
        overrides['early_exit'] = True
    if name == 'save_every_n':
        overrides['online_learning'] = True
    node = _classifier(context, executor, **overrides)
    active = False
    try:
        if node.trigger_configure() != TransitionCallbackReturn.SUCCESS:
            return f'configure failed ({node._pipeline.last_error!r})'
        active = node.trigger_activate() == TransitionCallbackReturn.SUCCESS
        if not active:
            return 'activate failed'
        for index in (0, 1):
            node._on_image(_frame(node, index))
        if node._pipeline.counts['processed'] != 2 or node._pipeline.counts['errors']:
            return f'counts {node._pipeline.counts}, last error {node._pipeline.last_error!r}'
        return ''
    finally:
        if active:
            node.trigger_deactivate()
        executor.remove_node(node)
        destroy(node)


EVENT_ONLY = ('window_ms', 'window_events', 'window_min_events', 'max_pending_windows',
              'events_depth')


def test_every_classifier_number_at_its_declared_limits_keeps_the_node_working(
        ros, tmp_path) -> None:
    """Each number parameter at the ends of its declared range: configure, frames classified."""
    from topspark_ros.nodes.classifier import PARAMS
    context, executor, _ = ros
    declared = _classifier(context, executor)
    faults = []
    for p in _numeric(PARAMS):
        if p.name in EVENT_ONLY:
            continue  # unused in frame mode
        for value in _limits(declared, p.name, p):
            value = type(p.default)(value)
            fault = _classifier_works_with(context, executor, tmp_path, p.name, value)
            if fault:
                faults.append(f'{p.name}={value}: {fault}')
    assert not faults, '\n'.join(faults)


def test_every_controller_and_monitor_number_at_its_declared_limits_works(ros) -> None:
    """The controller configures and publishes, the monitor publishes, at every range end."""
    from rclpy.lifecycle import TransitionCallbackReturn
    from rclpy.parameter import Parameter

    from topspark_ros.nodes import energy_monitor, timestep_controller
    context, executor, _ = ros
    profile = str(MODEL.with_name('stdp_fmnist_n400.profile.yaml'))
    faults = []
    first = timestep_controller.TimestepControllerNode(context=context)
    for p in _numeric(timestep_controller.PARAMS):
        for value in _limits(first, p.name, p):
            overrides = [Parameter('profile_path', value=profile),
                         Parameter(p.name, value=type(p.default)(value))]
            if p.name == 'battery_low_fraction':  # keep critical <= low, low + hysteresis <= 1
                overrides += [Parameter('battery_critical_fraction', value=0.0),
                              Parameter('hysteresis_fraction', value=0.0)]
            if p.name == 'battery_critical_fraction':
                overrides += [Parameter('battery_low_fraction', value=1.0),
                              Parameter('hysteresis_fraction', value=0.0)]
            node = timestep_controller.TimestepControllerNode(
                context=context, parameter_overrides=overrides)
            try:
                if node.trigger_configure() != TransitionCallbackReturn.SUCCESS \
                        or node.trigger_activate() != TransitionCallbackReturn.SUCCESS:
                    faults.append(f'controller {p.name}={value}: lifecycle failed')
                else:
                    node._heartbeat()
            except Exception as exc:  # noqa: B902 - any escape is the fault looked for
                faults.append(f'controller {p.name}={value}: {type(exc).__name__}: {exc}')
            finally:
                destroy(node)
    destroy(first)
    first = energy_monitor.EnergyMonitorNode(context=context)
    for p in _numeric(energy_monitor.PARAMS):
        for value in _limits(first, p.name, p):
            try:
                node = energy_monitor.EnergyMonitorNode(context=context, parameter_overrides=[
                    Parameter(p.name, value=type(p.default)(value))])
                node._publish()
                destroy(node)
            except Exception as exc:  # noqa: B902
                faults.append(f'monitor {p.name}={value}: {type(exc).__name__}: {exc}')
    destroy(first)
    assert not faults, '\n'.join(faults)


def test_torch_threads_are_chosen_by_a_parameter_not_one_per_core(ros) -> None:
    """Configure sets torch's intra-op threads from torch_threads (default 1, measured)."""
    import torch
    from rclpy.lifecycle import TransitionCallbackReturn
    from rclpy.parameter import Parameter

    from topspark_ros.core.threads import set_torch_threads
    from topspark_ros.nodes.classifier import ClassifierNode
    context, executor, _ = ros
    previous = set_torch_threads(2)
    try:
        model = str(ROOT / 'models' / 'converted_fmnist_vgg.json')
        for threads in (None, 2):
            overrides = [Parameter('model_path', value=model),
                         Parameter('profile_path', value='')]
            if threads is not None:
                overrides.append(Parameter('torch_threads', value=threads))
            node = ClassifierNode(context=context, parameter_overrides=overrides)
            executor.add_node(node)
            set_torch_threads(3)
            assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
            assert torch.get_num_threads() == (threads or 1)
            node.trigger_cleanup()
    finally:
        set_torch_threads(previous)


def test_an_activate_that_fails_says_why_and_leaves_the_node_inactive(ros, monkeypatch) -> None:
    """A failed activate is logged (rclpy swallows the exception) and the node stays inactive."""
    from rclpy.lifecycle import TransitionCallbackReturn
    context, executor, _ = ros
    node = _classifier(context, executor)
    assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
    logged = []
    monkeypatch.setattr(node, 'get_logger', lambda: type('L', (), {
        'error': staticmethod(lambda text, **kw: logged.append(text)),
        'warn': staticmethod(lambda *a, **k: None), 'info': staticmethod(lambda *a, **k: None),
        'warning': staticmethod(lambda *a, **k: None)})())

    def no_device():
        raise RuntimeError('the device went away')
    monkeypatch.setattr(node._pipeline, 'activate', no_device)
    assert node.trigger_activate() == TransitionCallbackReturn.FAILURE
    assert node._state_machine.current_state[1] == 'inactive'
    assert any('activate failed' in text and 'went away' in text for text in logged), logged
    assert 'went away' in node._pipeline.last_error
    assert not any(t.name.startswith('frames_') for t in threading.enumerate())
    monkeypatch.undo()
    assert node.trigger_activate() == TransitionCallbackReturn.SUCCESS  # then it can go on
    assert node.trigger_deactivate() == TransitionCallbackReturn.SUCCESS


def test_an_intake_whose_subscription_fails_leaves_no_worker(ros) -> None:
    from rclpy.qos import QoSProfile

    from topspark_ros.nodes.intake import Intake
    context, executor, _ = ros
    node = _classifier(context, executor)
    with pytest.raises(Exception):
        Intake(node, None, 'events', QoSProfile(depth=1), lambda *a: None,
               names=('test_reader', 'test_worker'), on_error=lambda exc: None)
    assert not any(t.name == 'test_worker' for t in threading.enumerate())


def test_save_path_is_resolved_like_every_path_parameter(tmp_path, monkeypatch) -> None:
    from topspark_ros.core.pipeline import online_save_path
    from topspark_ros.nodes.resources import resolve
    monkeypatch.setenv('HOME', str(tmp_path))
    monkeypatch.delenv('ROS_HOME', raising=False)
    values = {'save_path': '~/learnt.json', 'model_path': 'm.json'}
    assert online_save_path(values, resolve) == str(tmp_path / 'learnt.json')
    assert online_save_path({**values, 'save_path': ''}, resolve) == \
        str(tmp_path / '.ros' / 'topspark_ros' / 'm_online.json')


def test_a_clamped_command_right_after_an_ignored_one_is_logged(ros, capfd) -> None:
    """Each kind of TimestepCommand warning has its own throttle (they shared one)."""
    from topspark_ros.msg import TimestepCommand
    context, executor, _ = ros
    node = _classifier(context, executor, max_timesteps=100)
    node.trigger_configure()
    capfd.readouterr()
    node._on_timestep(TimestepCommand(timesteps=0))
    node._on_timestep(TimestepCommand(timesteps=7))
    node._on_timestep(TimestepCommand(timesteps=4_294_967_295))
    err = capfd.readouterr().err
    assert 'T=0 ignored' in err and 'clamped to max_timesteps 100' in err, err
    assert node._pipeline.counts['timesteps_refused'] == 1
    assert node._pipeline.counts['timesteps_clamped'] == 1


def test_a_command_chosen_on_another_models_profile_is_ignored_and_said(ros, capfd) -> None:
    """
    A controller given another model's profile drove the classifier to T=2 (0 % right).

    The command names the profile's model; a classifier of another model ignores it, counts
    it, logs it and WARNs in /diagnostics. Its own model's command, and one naming no model
    (an older controller), are taken.
    """
    from topspark_ros.core.topspark.profile import load_profile
    from topspark_ros.msg import TimestepCommand
    context, executor, _ = ros
    node = _classifier(context, executor)
    node.trigger_configure()
    other = load_profile(ROOT / 'models' / 'converted_fmnist_vgg.profile.yaml').model_sha256
    own = load_profile(ROOT / 'models' / 'stdp_fmnist_n400.profile.yaml').model_sha256
    capfd.readouterr()
    node._on_timestep(TimestepCommand(timesteps=2, model_sha256=other))
    assert node._pipeline.current_timesteps() == 32
    assert node._pipeline.counts['timesteps_other_model'] == 1
    assert 'ignored: it was chosen on the profile of another model' in capfd.readouterr().err
    level, message, values = node._diagnostic_status()
    assert level == b'\x01' and 'TimestepCommands of another model ignored' in message
    assert values['timesteps_other_model'] == 1
    node._on_timestep(TimestepCommand(timesteps=16, model_sha256=own))
    assert node._pipeline.current_timesteps() == 16
    node._on_timestep(TimestepCommand(timesteps=8))
    assert node._pipeline.current_timesteps() == 8
    assert node._pipeline.counts['timesteps_other_model'] == 1


def test_the_controller_names_its_profiles_model_in_each_command(ros) -> None:
    """So that a classifier of another model can tell (the test above)."""
    from rclpy.parameter import Parameter
    from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy

    from topspark_ros.core.topspark.profile import load_profile
    from topspark_ros.msg import TimestepCommand
    from topspark_ros.nodes.timestep_controller import TimestepControllerNode
    context, executor, spin_until = ros
    profile = ROOT / 'models' / 'stdp_fmnist_n400.profile.yaml'
    node = TimestepControllerNode(context=context, parameter_overrides=[
        Parameter('profile_path', value=str(profile))])
    executor.add_node(node)
    probe = _probe(context, executor)
    heard = []
    probe.create_subscription(TimestepCommand, 'timestep', heard.append, QoSProfile(
        depth=1, reliability=ReliabilityPolicy.RELIABLE,
        durability=DurabilityPolicy.TRANSIENT_LOCAL))
    node.trigger_configure()
    node.trigger_activate()
    assert spin_until(lambda: heard, 10.0)
    assert heard[-1].model_sha256 == load_profile(profile).model_sha256


def test_the_classifier_configures_with_no_parameter_given(ros) -> None:
    """`ros2 run topspark_ros classifier` alone failed: the code's model_path was empty."""
    from rclpy.lifecycle import TransitionCallbackReturn

    from topspark_ros.nodes.classifier import ClassifierNode
    context, executor, _ = ros
    node = ClassifierNode(context=context)
    executor.add_node(node)
    assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS


def test_the_classifier_given_only_another_model_configures(ros) -> None:
    """The shipped profile as a default refused every other model given alone (a review)."""
    from rclpy.lifecycle import TransitionCallbackReturn
    from rclpy.parameter import Parameter

    from topspark_ros.nodes.classifier import ClassifierNode
    context, executor, _ = ros
    node = ClassifierNode(context=context, parameter_overrides=[
        Parameter('model_path', value='package://topspark_ros/models/converted_fmnist_vgg.json'),
        Parameter('default_timesteps', value=2)])
    executor.add_node(node)
    assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS


def test_a_model_with_a_class_name_that_is_not_utf8_fails_configure_saying_why(
        ros, tmp_path) -> None:
    """
    A model trained on a folder named in another encoding fails configure, saying why.

    Configure failed without a reason (publishing its LabelInfo raised inside rclpy), or with
    vision_msgs off every frame of that class was skipped (a review).
    """
    import json
    import shutil

    from rclpy.lifecycle import TransitionCallbackReturn
    context, executor, _ = ros
    meta = json.loads(MODEL.read_text())
    shutil.copy(MODEL.parent / meta['tensors']['file'], tmp_path)
    meta['info']['class_names'][2] = 'ta\udce7a'  # (json writes it as an escape)
    path = tmp_path / 'odd.json'
    path.write_text(json.dumps(meta))
    for vision in (True, False):
        node = _classifier(context, executor, model_path=str(path), publish_vision_msgs=vision)
        assert node.trigger_configure() == TransitionCallbackReturn.FAILURE
        assert 'is not UTF-8 text' in node._pipeline.configure_error
        executor.remove_node(node)
        destroy(node)


def test_a_failure_making_the_interfaces_fails_configure_saying_why(ros, monkeypatch) -> None:
    """
    An error after the model loaded fails configure with its reason; configure again works.

    One publishing LabelInfo went up into rclpy: ERROR, no reason logged, the model left
    loaded (a review).
    """
    from rclpy.lifecycle import TransitionCallbackReturn

    from topspark_ros.nodes import classifier
    context, executor, _ = ros
    node = _classifier(context, executor)

    def broken(*args, **kwargs):
        raise RuntimeError('the middleware refused the message')
    with monkeypatch.context() as patch:
        patch.setattr(classifier, 'label_info_msg', broken)
        assert node.trigger_configure() == TransitionCallbackReturn.FAILURE
    assert 'the middleware refused the message' in node._pipeline.configure_error
    assert node._pipeline.session is None and node._made == []
    assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS


def _recording_preparation(tmp_path, **options) -> pathlib.Path:
    """Return a copy of the shipped model that records ``options`` as its data_options."""
    import json
    import shutil
    meta = json.loads(MODEL.read_text())
    shutil.copy(MODEL.parent / meta['tensors']['file'], tmp_path)
    meta['info']['data_options'] = options
    path = tmp_path / 'prepared.json'
    path.write_text(json.dumps(meta))
    return path


def test_crop_and_invert_follow_the_model_unless_given(ros, tmp_path) -> None:
    """
    A model trained with --crop none --invert is run on frames prepared so (a user review).

    Parameters not given take the model's at configure; given ones are kept; a model that
    records none gives the defaults back.
    """
    from rclpy.lifecycle import TransitionCallbackReturn
    from rclpy.parameter import Parameter

    from topspark_ros.nodes.classifier import ClassifierNode
    context, executor, _ = ros
    model = _recording_preparation(tmp_path, crop='none', invert=True, split_seed=3)

    def prepared(node):
        preprocessor = node._pipeline.session.preprocessor
        return (node.get_parameter('crop').value, node.get_parameter('invert').value,
                preprocessor.crop, preprocessor.invert)

    follows = ClassifierNode(context=context, parameter_overrides=[
        Parameter('model_path', value=str(model)), Parameter('profile_path', value='')])
    given = ClassifierNode(context=context, namespace='given', parameter_overrides=[
        Parameter('model_path', value=str(model)), Parameter('profile_path', value=''),
        Parameter('invert', value=False)])
    assert given.set_parameters([Parameter('crop', value='center')])[0].successful
    for node in (follows, given):
        assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
    assert prepared(follows) == ('none', True, 'none', True)
    assert prepared(given) == ('center', False, 'center', False)
    # Another model, which records nothing: the parameters not given are the defaults again.
    assert follows.trigger_cleanup() == TransitionCallbackReturn.SUCCESS
    assert follows.set_parameters([Parameter('model_path', value=str(MODEL))])[0].successful
    assert follows.trigger_configure() == TransitionCallbackReturn.SUCCESS
    assert prepared(follows) == ('center', False, 'center', False)
    for node in (follows, given):
        node.destroy_node()
