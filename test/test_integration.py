"""
Integration: nodes in separate processes over real DDS (Fast DDS on loopback).

The nodes run as their ``ros2 run`` executables would (``python -m topspark_ros.nodes.<name>``)
with parameters on the command line; this test process publishes inputs, drives lifecycles
and parameters through the nodes' services, and checks what arrives.
"""

import pathlib
import time

import pytest

pytestmark = pytest.mark.ros
ROOT = pathlib.Path(__file__).resolve().parent.parent
MODEL = ROOT / 'models' / 'stdp_fmnist_n400.json'
PROFILE = ROOT / 'models' / 'stdp_fmnist_n400.profile.yaml'


@pytest.fixture
def ros():
    """Yield ``(node, spin_until)``: a node of this process and a spin helper."""
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.node import Node
    context = rclpy.Context()
    rclpy.init(context=context)
    node = Node('integration_probe', context=context)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)

    def spin_until(predicate, timeout_s: float = 20.0, every=None) -> bool:
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            if every is not None:
                every()
            if predicate():
                return True
            executor.spin_once(timeout_sec=0.05)
        return predicate()

    yield node, spin_until
    node.destroy_node()
    rclpy.shutdown(context=context)


def _images(node):
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import Image
    return node.create_publisher(Image, 'image', qos_profile_sensor_data)


def _frame(node, index: int):
    from topspark_ros.conversions.image import array_to_image
    from topspark_ros.core.data.idx import find_dataset_dir, load_mnist_family
    msg = array_to_image(load_mnist_family(find_dataset_dir(), 'test').images[index], 'mono8')
    msg.header.stamp = node.get_clock().now().to_msg()
    msg.header.frame_id = f'camera_{index}'
    return msg


def _classifier_args(*extra: str) -> list:
    return ['--ros-args', '-p', f'model_path:={MODEL}', '-p', "profile_path:=''",
            '-p', 'crop:=none', '-p', 'default_timesteps:=64', *extra]


def test_images_in_classifications_out_with_matching_stamps(ros, node_process) -> None:
    """Frames published here come back classified from the classifier's process."""
    from topspark_ros.msg import Classification
    node, spin_until = ros
    results = []
    node.create_subscription(Classification, 'classification', results.append, 50)
    images = _images(node)
    sent = {}

    def publish():
        msg = _frame(node, len(sent) % 50)
        sent[(msg.header.stamp.sec, msg.header.stamp.nanosec)] = msg.header.frame_id
        images.publish(msg)
        time.sleep(0.02)

    with node_process('classifier', '--autostart', *_classifier_args()):
        assert spin_until(lambda: len(results) >= 5, timeout_s=60, every=publish), \
            'no classifications from the classifier process'
    for result in results:
        key = (result.header.stamp.sec, result.header.stamp.nanosec)
        assert sent[key] == result.header.frame_id
        assert result.timestep_budget == 64


def test_battery_drop_lowers_the_commanded_timesteps(ros, node_process) -> None:
    """Controller + classifier processes: a low battery -> a lower T -> the classifier uses it."""
    from sensor_msgs.msg import BatteryState

    from topspark_ros.msg import Classification, TimestepCommand
    from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
    node, spin_until = ros
    commands, results = [], []
    qos = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                     durability=DurabilityPolicy.TRANSIENT_LOCAL)
    node.create_subscription(TimestepCommand, 'timestep', commands.append, qos)
    node.create_subscription(Classification, 'classification', results.append, 50)
    battery = node.create_publisher(BatteryState, 'battery', 10)
    images = _images(node)
    controller_args = ['--autostart', '--ros-args', '-p', f'profile_path:={PROFILE}',
                       '-p', 'mode:=accuracy_first', '-p', 'heartbeat_period_s:=0.5']
    with node_process('timestep_controller', *controller_args), \
            node_process('classifier', '--autostart', *_classifier_args()):
        full = BatteryState(percentage=1.0)
        assert spin_until(lambda: bool(commands), every=lambda: battery.publish(full))
        high_t = commands[-1].timesteps
        low = BatteryState(percentage=0.05)
        assert spin_until(lambda: commands[-1].timesteps < high_t,
                          every=lambda: battery.publish(low)), \
            f'T stayed at {high_t} on a critical battery: {commands[-1].reason}'
        low_t = commands[-1].timesteps
        assert commands[-1].mode == 'energy_saver' and 'battery' in commands[-1].reason

        def publish_frame():
            images.publish(_frame(node, 7))
            time.sleep(0.02)
        assert spin_until(lambda: any(r.timestep_budget == low_t for r in results),
                          timeout_s=30, every=publish_frame), \
            f'the classifier did not switch to T={low_t}'


def _call(node, spin_until, client, request, *, resend: bool = True):
    """
    Call a service of a node process and return the response.

    ``wait_for_service`` can be satisfied by the graph entry of a process that just ended (a
    previous test's node, not yet forgotten by discovery), and a request sent before the new
    server is matched is lost; so an idempotent request is sent again every 4 s (``resend``).
    """
    assert client.wait_for_service(timeout_sec=20.0), client.srv_name
    end = time.monotonic() + 20.0
    while True:
        future = client.call_async(request)
        if spin_until(future.done, timeout_s=4.0 if resend else 20.0):
            return future.result()
        assert resend and time.monotonic() < end, f'no answer from {client.srv_name}'


def test_lifecycle_and_parameters_through_services(ros, node_process) -> None:
    """Configure/activate over ~/change_state; parameters over ~/set_parameters, validated."""
    from lifecycle_msgs.msg import State, Transition
    from lifecycle_msgs.srv import ChangeState, GetState
    from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue
    from rcl_interfaces.srv import SetParameters
    node, spin_until = ros
    change = node.create_client(ChangeState, '/classifier/change_state')
    get = node.create_client(GetState, '/classifier/get_state')
    set_params = node.create_client(SetParameters, '/classifier/set_parameters')
    with node_process('classifier', *_classifier_args()):
        state = _call(node, spin_until, get, GetState.Request()).current_state
        assert state.id == State.PRIMARY_STATE_UNCONFIGURED
        for transition in (Transition.TRANSITION_CONFIGURE, Transition.TRANSITION_ACTIVATE):
            request = ChangeState.Request()
            request.transition.id = transition
            assert _call(node, spin_until, change, request, resend=False).success
        state = _call(node, spin_until, get, GetState.Request()).current_state
        assert state.id == State.PRIMARY_STATE_ACTIVE

        def set_int(name, value):
            request = SetParameters.Request(parameters=[Parameter(
                name=name, value=ParameterValue(type=ParameterType.PARAMETER_INTEGER,
                                                integer_value=value))])
            return _call(node, spin_until, set_params, request).results[0]
        refused = set_int('default_timesteps', 0)
        assert not refused.successful and 'range' in refused.reason
        assert set_int('default_timesteps', 24).successful
        locked = SetParameters.Request(parameters=[Parameter(
            name='device', value=ParameterValue(type=ParameterType.PARAMETER_STRING,
                                                string_value='cuda'))])
        result = _call(node, spin_until, set_params, locked).results[0]
        assert not result.successful and 'unconfigured' in result.reason


def test_a_burst_of_parameter_requests_is_answered_in_full(ros, node_process) -> None:
    """
    1 000 set_parameters sent at once from another process: every one answered.

    The client uses rclpy's parameter QoS (depth 1000, as the node's parameter services do).
    With the default service QoS (depth 10) a client that sends faster than it takes the
    responses loses some of them in its own response queue (README, known issues).
    """
    from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue
    from rcl_interfaces.srv import SetParameters
    from rclpy.qos import qos_profile_parameters
    node, spin_until = ros
    client = node.create_client(SetParameters, '/classifier/set_parameters',
                                qos_profile=qos_profile_parameters)

    def request(timesteps: int):
        return SetParameters.Request(parameters=[Parameter(
            name='default_timesteps', value=ParameterValue(
                type=ParameterType.PARAMETER_INTEGER, integer_value=timesteps))])
    with node_process('classifier', *_classifier_args()):
        assert _call(node, spin_until, client, request(64)).results[0].successful
        futures = [client.call_async(request(1 + i % 100)) for i in range(1000)]
        spin_until(lambda: all(f.done() for f in futures), timeout_s=20.0)
        answered = [f.result().results[0].successful for f in futures if f.done()]
        assert len(answered) == 1000 and all(answered), f'{len(answered)} of 1000 answered'


def test_an_imported_nir_model_classifies_over_dds(ros, tmp_path, node_process) -> None:
    """A NIR graph (snnTorch-style dense LIF net) imported by `topspark import` classifies."""
    import nir
    import numpy as np

    from topspark_ros import cli
    from topspark_ros.msg import Classification
    rng = np.random.default_rng(0)
    dt, beta = 1e-4, 0.9
    tau = np.full(64, dt / (1 - beta), np.float32)
    graph = nir.NIRGraph(
        nodes={'input': nir.Input(input_type=np.array([784])),
               'fc1': nir.Affine(weight=rng.normal(0, 0.05, (64, 784)).astype(np.float32),
                                 bias=np.zeros(64, np.float32)),
               'lif1': nir.LIF(tau=tau, r=tau / dt, v_leak=0 * tau, v_threshold=1 + 0 * tau),
               'fc2': nir.Affine(weight=rng.normal(0, 0.3, (10, 64)).astype(np.float32),
                                 bias=np.zeros(10, np.float32)),
               'scores': nir.I(r=np.ones(10, np.float32)),
               'output': nir.Output(output_type=np.array([10]))},
        edges=[('input', 'fc1'), ('fc1', 'lif1'), ('lif1', 'fc2'), ('fc2', 'scores'),
               ('scores', 'output')])
    nir.write(tmp_path / 'snn.nir', graph)
    model = tmp_path / 'imported.json'
    assert cli.main(['import', str(tmp_path / 'snn.nir'), '-o', str(model), '-q']) == 0
    node, spin_until = ros
    results = []
    node.create_subscription(Classification, 'classification', results.append, 50)
    images = _images(node)

    def publish():
        images.publish(_frame(node, len(results) % 50))
        time.sleep(0.02)

    with node_process('classifier', '--autostart', '--ros-args', '-p', f'model_path:={model}',
                      '-p', "profile_path:=''", '-p', 'crop:=none',
                      '-p', 'default_timesteps:=8'):
        assert spin_until(lambda: len(results) >= 3, timeout_s=60, every=publish), \
            'no classifications from the imported model'
    assert all(0 <= r.class_id < 10 and r.timestep_budget == 8 for r in results)
