"""
In-process node tests: lifecycle transitions (error paths too), parameters, headers, drops.

Each test runs real rclpy nodes on their own context and executor; helper nodes publish the
inputs and record the outputs over the in-process middleware.
"""

import pathlib
import threading
import time

import numpy as np
import pytest

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
    node.create_subscription(Classification, 'classification', node.results.append, 50)
    executor.add_node(node)
    return node


def _frame(node, value: int = 0, frame_id: str = 'cam'):
    from topspark_ros.conversions.image import array_to_image
    from topspark_ros.core.datasets import find_dataset_dir, load_mnist_family
    images = load_mnist_family(find_dataset_dir(), 'test').images
    msg = array_to_image(images[value], 'mono8')
    msg.header.stamp = node.get_clock().now().to_msg()
    msg.header.frame_id = frame_id
    return msg


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
    """Configure, activate, classify with the image's header copied, deactivate, cleanup."""
    from lifecycle_msgs.msg import State
    from rclpy.lifecycle import TransitionCallbackReturn
    context, executor, spin_until = ros
    node = _classifier(context, executor)
    probe = _probe(context, executor)
    assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
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
        executor.shutdown()
        rclpy.shutdown(context=context)
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
        node.destroy_node()


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
    node.trigger_activate()
    locked = node.set_parameters([Parameter('device', value='cuda')])[0]
    assert not locked.successful and 'inactive' in locked.reason
    live = node.set_parameters([Parameter('default_timesteps', value=48)])[0]
    assert live.successful
    described = node.describe_parameters(['default_timesteps'])[0]
    assert described.integer_range[0].from_value == 1 and described.description


def test_timestep_command_is_used(ros) -> None:
    """A TimestepCommand changes the T of the following classifications."""
    from topspark_ros.msg import TimestepCommand
    context, executor, spin_until = ros
    node = _classifier(context, executor)
    probe = _probe(context, executor)
    node.trigger_configure()
    node.trigger_activate()
    probe.commands.publish(TimestepCommand(timesteps=12))
    assert spin_until(lambda: node._timesteps == 12)
    assert spin_until(lambda: (probe.images.publish(_frame(probe, 2)) or bool(probe.results)))
    assert probe.results[-1].timestep_budget == 12


def test_frames_arriving_while_busy_are_dropped_and_counted(ros) -> None:
    """While a frame is in progress, the next ones are dropped (counted), not queued."""
    context, executor, spin_until = ros
    node = _classifier(context, executor)
    probe = _probe(context, executor)
    node.trigger_configure()
    node.trigger_activate()
    frame = _frame(probe, 3)
    node._busy.acquire()  # a frame "in progress"
    try:
        for _ in range(5):
            node._on_image(frame)
    finally:
        node._busy.release()
    assert node._counts['dropped'] == 5 and node._counts['processed'] == 0
    # Concurrently: a burst of frames processed by 4 executor threads at once.
    done = threading.Event()

    def burst():
        for _ in range(30):
            node._on_image(frame)
        done.set()
    threads = [threading.Thread(target=burst) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    counts = node._counts
    assert counts['processed'] + counts['dropped'] == 5 + 90
    assert counts['dropped'] > 5, 'concurrent frames were queued instead of dropped'
    assert spin_until(lambda: len(probe.results) == counts['processed'])
    assert probe.results[-1].frames_dropped <= counts['dropped']


def test_unreadable_frame_is_counted_not_fatal(ros) -> None:
    """A frame with an unsupported encoding is skipped with a counted error."""
    context, executor, _ = ros
    node = _classifier(context, executor)
    probe = _probe(context, executor)
    node.trigger_configure()
    node.trigger_activate()
    bad = _frame(probe, 0)
    bad.encoding = 'yuv422'
    node._on_image(bad)
    assert node._counts['errors'] == 1 and 'yuv422' in node._last_error
    node._on_image(_frame(probe, 0))
    assert node._counts['processed'] == 1


def test_energy_monitor_prices_classifications(ros) -> None:
    """Two classifications -> one EnergyEstimate with their mean energy and cumulative sum."""
    from rclpy.node import Node
    from rclpy.parameter import Parameter

    from topspark_ros.msg import Classification, EnergyEstimate
    from topspark_ros.nodes.energy_monitor import EnergyMonitorNode
    context, executor, spin_until = ros
    monitor = EnergyMonitorNode(context=context, parameter_overrides=[
        Parameter('publish_rate_hz', value=2.0), Parameter('baseline_energy_j', value=1e-9)])
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
    assert 'trained offline' in learning._last_error
    executor.remove_node(learning)
    learning.destroy_node()

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
