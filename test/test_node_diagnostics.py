"""
Diagnostics of the nodes, rates and power on simulated time, frames lost in transport.

Issue 11. In-process nodes on their own context (the ``ros`` fixture of conftest.py), and one
classifier process over real DDS for the status of a failed configure.
"""

import functools
import pathlib
import time

import pytest

pytestmark = pytest.mark.ros
ROOT = pathlib.Path(__file__).resolve().parent.parent
MODEL = ROOT / 'models' / 'stdp_fmnist_n400.json'
PROFILE = ROOT / 'models' / 'stdp_fmnist_n400.profile.yaml'
PERIOD_NS = 33_333_333  # a 30 Hz camera


def _statuses(node, name: str) -> list:
    """Record on ``node`` the ``/diagnostics`` statuses called ``name``; return the list."""
    from diagnostic_msgs.msg import DiagnosticArray
    seen = []
    node.create_subscription(DiagnosticArray, '/diagnostics', lambda array: seen.extend(
        s for s in array.status if s.name == name), 50)
    return seen


def _values(status) -> dict:
    return {kv.key: kv.value for kv in status.values}


def _classifier(context, executor, **overrides):
    from rclpy.parameter import Parameter

    from topspark_ros.nodes.classifier import ClassifierNode
    params = {'model_path': str(MODEL), 'default_timesteps': 4, 'crop': 'none',
              'profile_path': '', 'diagnostics_period_s': 0.1, **overrides}
    node = ClassifierNode(context=context, parameter_overrides=[
        Parameter(k, value=v) for k, v in params.items()])
    executor.add_node(node)
    return node


def _probe(context, executor):
    from rclpy.node import Node
    probe = Node('probe', context=context)
    executor.add_node(probe)
    return probe


@functools.lru_cache(maxsize=1)
def _images():
    from topspark_ros.core.data.idx import find_dataset_dir, load_mnist_family
    return load_mnist_family(find_dataset_dir(), 'test').images[:10]


def _frame(stamp_ns: int, value: int = 0):
    from topspark_ros.conversions.image import array_to_image
    msg = array_to_image(_images()[value], 'mono8')
    msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(stamp_ns, 1_000_000_000)
    msg.header.frame_id = 'cam'
    return msg


def test_classifier_status_from_construction_error_on_failed_configure_warn_clears(
        ros, tmp_path) -> None:
    """Status before configure; ERROR with the reason of a failed one; WARN after errors only."""
    from diagnostic_msgs.msg import DiagnosticStatus
    from rclpy.lifecycle import TransitionCallbackReturn
    from rclpy.parameter import Parameter
    context, executor, spin_until = ros
    missing = tmp_path / 'missing.json'
    node = _classifier(context, executor, model_path=str(missing))
    seen = _statuses(_probe(context, executor), 'classifier: classification')
    # Published from construction (before: only after a successful configure).
    assert spin_until(lambda: bool(seen), timeout_s=10.0), 'no status before configure'
    assert seen[-1].level == DiagnosticStatus.WARN and seen[-1].message == 'unconfigured'
    assert seen[-1].hardware_id == 'cpu'
    assert node.trigger_configure() == TransitionCallbackReturn.FAILURE
    assert spin_until(lambda: seen[-1].level == DiagnosticStatus.ERROR, timeout_s=10.0)
    assert 'configure failed' in seen[-1].message and str(missing) in seen[-1].message
    # Configured after all: no longer ERROR; one bad frame gives one WARN, which clears.
    assert node.set_parameters([Parameter('model_path', value=str(MODEL))])[0].successful
    assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
    assert node.trigger_activate() == TransitionCallbackReturn.SUCCESS
    assert spin_until(lambda: seen[-1].level == DiagnosticStatus.OK, timeout_s=10.0)
    assert _values(seen[-1])['lifecycle_state'] == 'active'
    bad = _frame(10**9)
    bad.encoding = 'no_such_encoding'
    node._on_image(bad)
    assert spin_until(lambda: seen[-1].level == DiagnosticStatus.WARN, timeout_s=10.0)
    assert '1 errors since the last status' in seen[-1].message
    assert 'no_such_encoding' in seen[-1].message
    warned = len(seen)
    assert spin_until(lambda: len(seen) > warned and seen[-1].level == DiagnosticStatus.OK,
                      timeout_s=10.0), 'WARN did not clear once errors stopped'
    assert _values(seen[-1])['errors'] == '1'  # the total stays in the values
    assert node.trigger_deactivate() == TransitionCallbackReturn.SUCCESS
    assert node.trigger_cleanup() == TransitionCallbackReturn.SUCCESS
    # Statuses made during the transitions may still be on their way (two were, once, on a
    # loaded machine): wait for one of the state the node is in now.
    assert spin_until(lambda: seen[-1].message == 'unconfigured'), 'no status after cleanup'


def test_controller_and_monitor_statuses_follow_diagnostic_updater(ros, tmp_path) -> None:
    """'<node>: <task>' names, hardware ids, the controller's ERROR on a failed configure."""
    from diagnostic_msgs.msg import DiagnosticStatus
    from rclpy.lifecycle import TransitionCallbackReturn
    from rclpy.parameter import Parameter

    from topspark_ros.nodes.energy_monitor import EnergyMonitorNode
    from topspark_ros.nodes.timestep_controller import TimestepControllerNode
    context, executor, spin_until = ros
    probe = _probe(context, executor)
    selection = _statuses(probe, 'timestep_controller: timestep selection')
    energy = _statuses(probe, 'energy_monitor: energy estimate')
    controller = TimestepControllerNode(context=context, parameter_overrides=[
        Parameter('profile_path', value=str(tmp_path / 'none.yaml')),
        Parameter('heartbeat_period_s', value=0.1)])
    monitor = EnergyMonitorNode(context=context, parameter_overrides=[
        Parameter('publish_rate_hz', value=10.0), Parameter('energy_preset', value='loihi')])
    executor.add_node(controller)
    executor.add_node(monitor)
    assert spin_until(lambda: bool(selection) and bool(energy), timeout_s=10.0)
    assert selection[-1].hardware_id == 'none' and selection[-1].message == 'unconfigured'
    # a value not known yet reads 'unknown' (it read Python's 'None'; an outputs review)
    assert _values(selection[-1])['battery_fraction'] == 'unknown'
    assert 'None' not in _values(selection[-1]).values()
    assert energy[-1].hardware_id == 'loihi'  # the energy source of every figure
    assert controller.trigger_configure() == TransitionCallbackReturn.FAILURE
    assert spin_until(lambda: selection[-1].level == DiagnosticStatus.ERROR, timeout_s=10.0)
    assert 'none.yaml' in selection[-1].message
    assert controller.set_parameters([Parameter('profile_path', value=str(PROFILE))])[0] \
        .successful
    assert controller.trigger_configure() == TransitionCallbackReturn.SUCCESS
    assert controller.trigger_activate() == TransitionCallbackReturn.SUCCESS
    assert spin_until(lambda: selection[-1].level != DiagnosticStatus.ERROR
                      and 'timesteps' in _values(selection[-1]), timeout_s=10.0)
    assert selection[-1].hardware_id == 'cmos45_fp32'  # the preset the profile prices T with


def test_torch_device_names_carry_their_index(monkeypatch) -> None:
    """hardware_id of the classifier: 'cuda' names a device ('cuda:0'); others as given."""
    import torch

    from topspark_ros.nodes.diagnostics import torch_device_id
    assert torch_device_id('cpu') == 'cpu'
    assert torch_device_id('cuda:1') == 'cuda:1'
    assert torch_device_id('cuda').startswith('cuda:')
    assert torch_device_id('not a device') == 'not a device'
    # With a GPU whose CUDA is not started yet (before configure, after cleanup), the status
    # does not start it: current_device() made a CUDA context on every publish (a review).
    started = []
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    monkeypatch.setattr(torch.cuda, 'is_initialized', lambda: bool(started))
    monkeypatch.setattr(torch.cuda, 'current_device', lambda: started.append(1) or 2)
    assert torch_device_id('cuda') == 'cuda:0' and not started
    started.append(0)  # (CUDA in use: its current device)
    assert torch_device_id('cuda') == 'cuda:2'


def _last_stamp_s(controller):
    """Return the last input stamp the controller took from an unnamed classifier."""
    entry = controller._sources._by.get('')
    return None if entry is None else entry.stamp_s


def test_rates_and_power_follow_sim_time_at_twice_real_speed(ros) -> None:
    """/clock at 2x: 10 classifications per wall second are 5 per simulated second."""
    from rclpy.parameter import Parameter
    from rclpy.time import Time
    from rosgraph_msgs.msg import Clock

    from topspark_ros.core.energy import EnergyModel, OpCounts
    from rclpy.qos import DurabilityPolicy, QoSProfile

    from topspark_ros.msg import Classification, EnergyEstimate, TimestepCommand
    from topspark_ros.nodes.energy_monitor import EnergyMonitorNode
    from topspark_ros.nodes.timestep_controller import TimestepControllerNode
    context, executor, spin_until = ros
    sim = [Parameter('use_sim_time', value=True)]
    monitor = EnergyMonitorNode(context=context, parameter_overrides=sim + [
        Parameter('publish_rate_hz', value=1.0)])
    controller = TimestepControllerNode(context=context, parameter_overrides=sim + [
        Parameter('profile_path', value=str(PROFILE))])
    for node in (monitor, controller):
        executor.add_node(node)
    controller.trigger_configure()
    controller.trigger_activate()
    probe = _probe(context, executor)
    clock = probe.create_publisher(Clock, '/clock', 10)
    results = probe.create_publisher(Classification, 'classification', 10)
    estimates, commands = [], []
    probe.create_subscription(EnergyEstimate, 'energy', estimates.append, 10)
    probe.create_subscription(TimestepCommand, 'timestep', commands.append,
                              QoSProfile(depth=10, durability=DurabilityPolicy.TRANSIENT_LOCAL))
    rate = _statuses(probe, 'energy_monitor: energy estimate')
    start_wall, start_ns = time.monotonic(), 1000 * 10**9 + 50_000_000
    for k in range(31):
        # Lock step: simulated time advances 0.2 s a result, the wall clock 0.1 s (2x).
        time.sleep(max(0.0, start_wall + 0.1 * k - time.monotonic()))
        now = Time(nanoseconds=start_ns + k * 200_000_000)
        clock.publish(Clock(clock=now.to_msg()))
        assert spin_until(lambda: all(n.get_clock().now().nanoseconds == now.nanoseconds
                                      for n in (monitor, controller)))
        if k == 0:
            continue
        before = (_last_stamp_s(controller), monitor._last_seen_s)
        results.publish(Classification(accumulates=5000, neuron_updates=400,
                                       timesteps_used=16, timestep_budget=16, latency_ms=1.0))
        assert spin_until(lambda: _last_stamp_s(controller) != before[0]
                          and monitor._last_seen_s != before[1])
    # Controller: arrival rate on simulated time (5 Hz), not on the wall clock (10 Hz).
    assert controller._signals.rate_hz == pytest.approx(5.0, rel=1e-6)
    # Its first T, chosen before the first /clock, is stamped again once the clock runs (it
    # kept stamp 0 for whole runs; a review of sim time).
    assert commands and Time.from_msg(commands[-1].header.stamp).nanoseconds >= start_ns
    # Monitor: every window's power is its energy over its simulated length.
    assert spin_until(lambda: len(estimates) >= 5, timeout_s=10.0)
    for previous, estimate in zip(estimates, estimates[1:]):
        window_s = (Time.from_msg(estimate.header.stamp)
                    - Time.from_msg(previous.header.stamp)).nanoseconds * 1e-9
        energy_j = estimate.cumulative_energy_j - previous.cumulative_energy_j
        assert estimate.average_power_w * window_s == pytest.approx(energy_j, rel=1e-6)
    energy_j = EnergyModel('cmos45_fp32').estimate(
        OpCounts(accumulates=5000, neuron_updates=400)).compute_j
    assert max(e.average_power_w for e in estimates) < 10 * energy_j  # no 0-length window
    assert float(_values(rate[-1])['inference_rate_hz']) == pytest.approx(5.0, rel=0.25)
    # The bag loops: simulated time starts again 10 s before the first /clock. The monitor
    # starts a new window (it published nothing for the whole loop, and its first window's
    # power was energy / 1e-9 s; a user review); the controller goes on at 5 Hz.
    published = len(estimates)
    loop_ns = start_ns - 10 * 10**9
    for k in range(16):
        time.sleep(max(0.0, start_wall + 0.1 * (31 + k) - time.monotonic()))
        now = Time(nanoseconds=loop_ns + k * 200_000_000)
        clock.publish(Clock(clock=now.to_msg()))
        assert spin_until(lambda: monitor.get_clock().now().nanoseconds == now.nanoseconds)
        results.publish(Classification(accumulates=5000, neuron_updates=400,
                                       timesteps_used=16, timestep_budget=16, latency_ms=1.0))
    assert spin_until(lambda: len(estimates) >= published + 2, timeout_s=10.0)
    assert max(e.average_power_w for e in estimates) < 10 * energy_j


def test_frames_lost_in_transport_are_counted_from_stamps(ros) -> None:
    """A camera whose publisher skips 7 of 80 frames: 7 lost in 4 gaps, none dropped."""
    from diagnostic_msgs.msg import DiagnosticStatus
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import Image
    context, executor, spin_until = ros
    node = _classifier(context, executor, diagnostics_period_s=3600.0)
    probe = _probe(context, executor)
    images = probe.create_publisher(Image, 'image', qos_profile_sensor_data)
    seen = _statuses(probe, 'classifier: classification')
    node.trigger_configure()
    node.trigger_activate()
    assert spin_until(lambda: images.get_subscription_count() > 0)
    skipped = {20, 21, 22, 35, 50, 51, 66}
    start = 5 * 10**9
    for i in range(80):
        if i in skipped:
            continue  # lost on the way: the node never sees it
        counts = node._pipeline.counts
        received = counts['processed'] + counts['dropped']
        images.publish(_frame(start + i * PERIOD_NS, i % 10))
        assert spin_until(lambda: counts['processed'] + counts['dropped'] > received,
                          timeout_s=10.0)
    node._diagnostics.publish_now()
    assert spin_until(lambda: bool(seen))
    values = _values(seen[-1])
    assert values['frames_received'] == '73'
    assert values['frames_lost_in_transport'] == '7' and values['transport_gaps'] == '4'
    assert float(values['frame_period_ms']) == pytest.approx(PERIOD_NS * 1e-6, rel=1e-3)
    assert seen[-1].level == DiagnosticStatus.OK  # counted, not an error of the node


def test_a_classifier_process_that_fails_to_configure_says_why(ros, tmp_path,
                                                               node_process) -> None:
    """Over DDS: a status while unconfigured, then ERROR with the reason of the failure."""
    from diagnostic_msgs.msg import DiagnosticStatus
    from lifecycle_msgs.msg import Transition
    from lifecycle_msgs.srv import ChangeState
    context, executor, spin_until = ros
    probe = _probe(context, executor)
    seen = _statuses(probe, 'classifier: classification')
    change = probe.create_client(ChangeState, '/classifier/change_state')
    missing = tmp_path / 'gone.json'
    with node_process('classifier', '--ros-args', '-p', f'model_path:={missing}',
                      '-p', 'diagnostics_period_s:=0.2'):
        assert spin_until(lambda: bool(seen), timeout_s=30.0), 'no status before configure'
        assert change.wait_for_service(timeout_sec=20.0)
        request = ChangeState.Request()
        request.transition.id = Transition.TRANSITION_CONFIGURE
        future = change.call_async(request)
        assert spin_until(future.done, timeout_s=20.0) and not future.result().success
        assert spin_until(lambda: seen[-1].level == DiagnosticStatus.ERROR, timeout_s=10.0)
        assert 'gone.json' in seen[-1].message and seen[-1].hardware_id == 'cpu'


def test_two_pipelines_in_namespaces_keep_their_statuses_and_learnt_weights_apart(
        ros, monkeypatch, tmp_path) -> None:
    """
    A classifier in a namespace has a status and a save file of its own.

    Two pipelines under /camA and /camB published statuses of one name ('classifier:
    classification', identical but for T: an aggregator merged them) and saved learnt
    weights to one file, the last save winning (a user review).
    """
    from rclpy.parameter import Parameter

    from topspark_ros.core.pipeline import online_save_path
    from topspark_ros.nodes.classifier import ClassifierNode
    context, executor, spin_until = ros
    monkeypatch.setenv('ROS_HOME', str(tmp_path))
    probe = _probe(context, executor)
    named = {ns: _statuses(probe, f'{ns}/classifier: classification') for ns in ('camA', 'camB')}
    plain = _statuses(probe, 'classifier: classification')
    nodes = {}
    for ns in ('camA', 'camB'):
        nodes[ns] = ClassifierNode(context=context, namespace=ns, parameter_overrides=[
            Parameter('model_path', value=str(MODEL)), Parameter('profile_path', value=''),
            Parameter('diagnostics_period_s', value=0.1)])
        executor.add_node(nodes[ns])
    assert nodes['camA'].trigger_configure().value == nodes['camA'].trigger_activate().value
    assert spin_until(lambda: all(named.values()) and any(
        _values(s).get('input_topic') == '/camA/image' for s in named['camA']), timeout_s=10.0)
    assert all(_values(s).get('input_errors') == '0' for s in named['camA']
               if 'input_topic' in _values(s))
    assert not plain
    paths = {ns: online_save_path({'save_path': '', 'model_path': str(MODEL)}, str,
                                  node._pipeline.node) for ns, node in nodes.items()}
    assert paths['camA'] == str(tmp_path / 'topspark_ros' / 'camA' / 'classifier'
                                / 'stdp_fmnist_n400_online.json')
    assert paths['camB'] != paths['camA']
    assert online_save_path({'save_path': '', 'model_path': str(MODEL)}, str) == \
        str(tmp_path / 'topspark_ros' / 'stdp_fmnist_n400_online.json')  # /classifier: as ever


def test_power_is_right_across_a_clock_that_starts_late_and_leaps(ros) -> None:
    """
    Classifications before the first /clock, and a /clock that leaps forward 285 s.

    The first window held every classification made before the clock ran and lasted a few
    ms (0.0103 W for 1.4e-5, and a controller under a power cap cut T); the window spanning
    the leap reported its energy over 285 s (260 times too low) and said no classifications
    were arriving (a user review). Both windows are dropped now, their inferences counted in
    the totals, and every published power is its window's energy over its simulated length.
    """
    from rclpy.parameter import Parameter
    from rclpy.time import Time
    from rosgraph_msgs.msg import Clock

    from topspark_ros.core.energy import EnergyModel, OpCounts
    from topspark_ros.msg import Classification, EnergyEstimate
    from topspark_ros.nodes.energy_monitor import EnergyMonitorNode
    context, executor, spin_until = ros
    monitor = EnergyMonitorNode(context=context, parameter_overrides=[
        Parameter('use_sim_time', value=True), Parameter('publish_rate_hz', value=1.0),
        Parameter('energy_source', value='model')])
    executor.add_node(monitor)
    probe = _probe(context, executor)
    clock = probe.create_publisher(Clock, '/clock', 10)
    results = probe.create_publisher(Classification, 'classification', 10)
    estimates = []
    probe.create_subscription(EnergyEstimate, 'energy', estimates.append, 10)
    statuses = _statuses(probe, 'energy_monitor: energy estimate')
    count = [0]

    def classify(n: int) -> None:
        for _ in range(n):  # one at a time: the subscription keeps 10
            results.publish(Classification(accumulates=5000, neuron_updates=400,
                                           timesteps_used=16, timestep_budget=16))
            count[0] += 1
            assert spin_until(lambda: monitor._meter._count == count[0])

    def run(start_ns: int, steps: int) -> None:  # 10 classifications per simulated second
        for k in range(steps):
            now = Time(nanoseconds=start_ns + k * 100_000_000)
            clock.publish(Clock(clock=now.to_msg()))
            assert spin_until(lambda: monitor.get_clock().now().nanoseconds == now.nanoseconds)
            classify(1)

    classify(80)  # a bag restarted with --clock: results before its first /clock
    start_ns = 1000 * 10**9
    run(start_ns, 40)
    run(start_ns + 285 * 10**9, 40)  # /clock leaps 285 s forward
    # A bag played fast (--rate 100: /clock steps 2.5 s, 40 times a wall second) is no
    # leap once its steps are the clock's typical ones (five of them): each window holds its
    # results (a review of the first version: all were empty).
    for k in range(1, 17):
        now = Time(nanoseconds=start_ns + 289 * 10**9 + k * 2_500_000_000)
        clock.publish(Clock(clock=now.to_msg()))
        assert spin_until(lambda: monitor.get_clock().now().nanoseconds == now.nanoseconds)
        classify(25)
    assert spin_until(lambda: len(estimates) >= 6 + 10, timeout_s=10.0)
    rate_w = 10 * EnergyModel('cmos45_fp32').estimate(
        OpCounts(accumulates=5000, neuron_updates=400)).compute_j
    for estimate in estimates:
        assert estimate.window_s <= 2.5 + 1e-6
        if estimate.window_inferences:
            assert estimate.average_power_w == pytest.approx(rate_w, rel=0.35)
    fast = [e for e in estimates if e.window_s > 2.0]
    assert len(fast) >= 8 and all(e.window_inferences == 25 for e in fast)
    last = estimates[-1]  # the totals keep the inferences of the dropped windows
    assert last.inference_count > 80 + 40
    assert last.cumulative_energy_j == pytest.approx(rate_w / 10 * last.inference_count,
                                                     rel=1e-9)
    assert all('no classifications' not in s.message for s in statuses), \
        [s.message for s in statuses]


def test_a_node_on_sim_time_says_it_waits_for_the_clock(ros, monkeypatch) -> None:
    """
    use_sim_time and no /clock (a bag played without --clock): a WARN says so, until it comes.

    Every timed output (energy, heartbeats, diagnostics) waited for the clock in silence: no
    status, no log line (a review of sim time).
    """
    from rclpy.parameter import Parameter
    from rclpy.time import Time
    from rosgraph_msgs.msg import Clock

    from topspark_ros.nodes import diagnostics
    from topspark_ros.nodes.energy_monitor import EnergyMonitorNode
    context, executor, spin_until = ros
    monkeypatch.setattr(diagnostics, 'CLOCK_WAIT_S', 0.2)
    monitor = EnergyMonitorNode(context=context, parameter_overrides=[
        Parameter('use_sim_time', value=True), Parameter('energy_source', value='model')])
    executor.add_node(monitor)
    probe = _probe(context, executor)
    clock = probe.create_publisher(Clock, '/clock', 10)
    seen = _statuses(probe, 'energy_monitor: energy estimate')
    assert spin_until(lambda: len(seen) >= 2, timeout_s=5.0)
    assert seen[0].level == diagnostics.WARN and 'waiting for /clock' in seen[0].message
    assert 'none came in 0.4 s' in seen[1].message
    clock.publish(Clock(clock=Time(nanoseconds=10**12).to_msg()))
    assert spin_until(lambda: monitor.get_clock().now().nanoseconds == 10**12)
    spin_until(lambda: False, timeout_s=0.5)
    waited = len(seen)
    spin_until(lambda: False, timeout_s=0.6)
    assert len([s for s in seen if 'waiting for /clock' in s.message]) == waited


@pytest.mark.parametrize('sim', [False, True], ids=['wall', 'sim'])
def test_periods_are_timed_on_the_steady_clock_unless_on_sim_time(ros, sim) -> None:
    """
    Timers and windows: the steady clock on wall time, simulated time under use_sim_time.

    On the system clock, an NTP step forward (a robot without a real-time clock, synchronised
    after boot) made one energy window decades long, and a step back stalled every heartbeat,
    energy window and status for the step's length (ros2/rclpy#1490; a review of time).
    """
    from rclpy.clock import ClockType
    from rclpy.parameter import Parameter

    from topspark_ros.nodes.energy_monitor import EnergyMonitorNode
    from topspark_ros.nodes.timestep_controller import TimestepControllerNode
    context, executor, spin_until = ros
    given = [Parameter('use_sim_time', value=sim)]
    monitor = EnergyMonitorNode(context=context, parameter_overrides=given + [
        Parameter('energy_source', value='model')])
    controller = TimestepControllerNode(context=context, parameter_overrides=given + [
        Parameter('profile_path', value=str(PROFILE))])
    controller.trigger_configure()
    want = ClockType.ROS_TIME if sim else ClockType.STEADY_TIME
    for node in (monitor, controller):
        kinds = {timer.clock.clock_type for timer in node.timers
                 if timer.timer_period_ns < 5 * 10**9}  # not the /clock watch of sim time
        assert kinds == {want}, (node.get_name(), kinds)
    assert (monitor._now_s() > 0.0) != sim  # steady time runs; sim time waits for /clock


def test_the_diagnostics_period_changes_while_active(ros) -> None:
    """It was declared read at configure, refused while active, yet applied at once."""
    from rclpy.parameter import Parameter
    context, executor, spin_until = ros
    node = _classifier(context, executor, diagnostics_period_s=3600.0)
    probe = _probe(context, executor)
    seen = _statuses(probe, 'classifier: classification')
    node.trigger_configure()
    node.trigger_activate()
    assert node.set_parameters([Parameter('diagnostics_period_s', value=0.05)])[0].successful
    assert node._diagnostics._timer.timer_period_ns == 50_000_000
    assert spin_until(lambda: len(seen) >= 5, timeout_s=10.0)
