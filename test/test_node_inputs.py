"""
Sensors in: what robots' cameras and batteries publish reaches the nodes.

The classifier on image_transport's ``compressed`` topic (real PNG and JPEG bytes, and
garbage), camera encodings beyond mono/RGB through the node, and the controller's battery
subscription against a best-effort BatteryState publisher (and the warning when a publisher
cannot match).
"""

import io
import pathlib

import numpy as np
import pytest

pytestmark = pytest.mark.ros
ROOT = pathlib.Path(__file__).resolve().parent.parent
MODEL = ROOT / 'models' / 'stdp_fmnist_n400.json'
PROFILE = ROOT / 'models' / 'stdp_fmnist_n400.profile.yaml'


def _classifier(context, executor, **overrides):
    from rclpy.parameter import Parameter

    from topspark_ros.nodes.classifier import ClassifierNode
    params = {'model_path': str(MODEL), 'default_timesteps': 16, 'crop': 'none',
              'profile_path': '', **overrides}
    node = ClassifierNode(context=context, parameter_overrides=[
        Parameter(k, value=v) for k, v in params.items()])
    executor.add_node(node)
    return node


def _fashion(index: int) -> np.ndarray:
    from topspark_ros.core.data.idx import find_dataset_dir, load_mnist_family
    return load_mnist_family(find_dataset_dir(), 'test').images[index]


def _compressed(array: np.ndarray, fmt: str, sec: int):
    from PIL import Image as PilImage
    from sensor_msgs.msg import CompressedImage
    buffer = io.BytesIO()
    PilImage.fromarray(array).save(buffer, format=fmt)
    msg = CompressedImage(format=f'rgb8; {fmt.lower()} compressed rgb8', data=buffer.getvalue())
    msg.header.stamp.sec, msg.header.frame_id = sec, 'camera'
    return msg


def test_compressed_transport_classifies_jpeg_and_png_and_counts_garbage(ros) -> None:
    """image_transport 'compressed': image/compressed is classified; raw 'image' is not read."""
    from rclpy.lifecycle import TransitionCallbackReturn
    from rclpy.node import Node
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import CompressedImage, Image

    from topspark_ros.conversions.image import array_to_image
    from topspark_ros.msg import Classification
    context, executor, spin_until = ros
    node = _classifier(context, executor, image_transport='compressed')
    probe = Node('probe', context=context)
    executor.add_node(probe)
    compressed = probe.create_publisher(CompressedImage, 'image/compressed',
                                        qos_profile_sensor_data)
    raw = probe.create_publisher(Image, 'image', qos_profile_sensor_data)
    results = []
    probe.create_subscription(Classification, 'classification', results.append, 10)
    assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
    assert node.trigger_activate() == TransitionCallbackReturn.SUCCESS
    # The node reads image/compressed only (the graph may still list the 'image' readers of
    # earlier tests' classifiers, also named 'classifier', until their leases expire).
    assert node._intake.reader.topic_name == '/image/compressed'
    assert node.get_subscriptions_info_by_topic('image/compressed')
    colour = np.repeat(_fashion(2)[:, :, None], 3, axis=2)
    for fmt, sec in (('PNG', 1), ('JPEG', 2)):
        sent = _compressed(colour, fmt, sec)
        assert spin_until(lambda: compressed.publish(sent) or any(
            r.header.stamp.sec == sec for r in results)), f'no result for {fmt}'
    assert all(r.header.frame_id == 'camera' for r in results)
    errors = node._pipeline.counts['errors']
    ignored = array_to_image(_fashion(3), 'mono8')
    ignored.header.stamp.sec = 99
    raw.publish(ignored)
    garbage = CompressedImage(format='jpeg', data=b'\xff\xd8\xff\xe0 no image follows')
    garbage.header.stamp.sec = 99
    assert spin_until(lambda: compressed.publish(garbage)
                      or node._pipeline.counts['errors'] > errors)
    assert 'cannot decode' in node._pipeline.last_error
    spin_until(lambda: False, timeout_s=0.3)
    assert not [r for r in results if r.header.stamp.sec == 99], \
        'a raw image or garbage was classified'
    # still working after the garbage
    again = _compressed(colour, 'PNG', 3)
    assert spin_until(lambda: compressed.publish(again) or any(
        r.header.stamp.sec == 3 for r in results))


@pytest.mark.parametrize('remap, topic', [
    ([], '/image/compressed'),
    (['image:=/camera/image_raw'], '/camera/image_raw/compressed'),
    (['image:=/camera/image_raw', 'image/compressed:=/jpeg'], '/jpeg')])
def test_the_compressed_topic_follows_the_image_remap(ros, remap, topic) -> None:
    """image:=/camera/image_raw left the compressed input on /image/compressed (a review)."""
    from rclpy.lifecycle import TransitionCallbackReturn
    from rclpy.parameter import Parameter

    from topspark_ros.nodes.classifier import ClassifierNode
    context, executor, _ = ros
    args = ['--ros-args'] + [a for r in remap for a in ('-r', r)] if remap else None
    node = ClassifierNode(context=context, cli_args=args, parameter_overrides=[
        Parameter('model_path', value=str(MODEL)), Parameter('profile_path', value=''),
        Parameter('image_transport', value='compressed')])
    executor.add_node(node)
    assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
    assert node.trigger_activate() == TransitionCallbackReturn.SUCCESS
    assert node._intake.reader.topic_name == topic


def test_camera_encodings_are_classified_by_the_node(ros) -> None:
    """Bayer, YUV 4:2:2 and 32FC1 frames go through the node like mono8 ones, without errors."""
    from rclpy.lifecycle import TransitionCallbackReturn
    from sensor_msgs.msg import Image
    context, executor, _ = ros
    node = _classifier(context, executor)
    assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
    assert node.trigger_activate() == TransitionCallbackReturn.SUCCESS
    gray = _fashion(4)
    height, width = gray.shape
    uyvy = np.stack([np.full_like(gray, 128), gray], axis=-1)  # U/V 128, Y = gray
    frames = [
        Image(height=height, width=width, encoding='bayer_rggb8', step=width,
              data=gray.tobytes()),
        Image(height=height, width=width, encoding='uyvy', step=2 * width,
              data=uyvy.tobytes()),
        Image(height=height, width=width, encoding='32FC1', step=4 * width,
              data=(gray / 255.0).astype('<f4').tobytes()),
    ]
    for frame in frames:
        node._on_image(frame)
    assert node._pipeline.counts['processed'] == 3, node._pipeline.last_error
    assert node._pipeline.counts['errors'] == 0
    node._on_image(Image(height=2, width=3, encoding='yuyv', step=6, data=bytes(12)))
    assert node._pipeline.counts['errors'] == 1 and 'even width' in node._pipeline.last_error


def test_a_depth_topic_through_the_compressed_transport_is_warned_about(ros, capfd) -> None:
    """A CompressedImage has no encoding: '16UC1; png compressed' was classified silently."""
    from rclpy.lifecycle import TransitionCallbackReturn
    from topspark_ros.core.pipeline import WARN
    context, executor, _ = ros
    node = _classifier(context, executor, image_transport='compressed')
    assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
    assert node.trigger_activate() == TransitionCallbackReturn.SUCCESS
    depth = _compressed(np.full((48, 64), 1500, np.uint16), 'PNG', 1)
    depth.format = '16UC1; png compressed '  # as image_transport's compressed plugin writes it
    capfd.readouterr()
    node._on_image(depth)
    assert node._pipeline.counts['processed'] == 1  # classified, and said what it is
    assert 'frames are 16UC1, what depth cameras publish' in capfd.readouterr().err
    level, message, _ = node._pipeline.status('active', True)
    assert level == WARN and 'depth' in message
    node._on_image(_compressed(np.repeat(_fashion(2)[:, :, None], 3, axis=2), 'PNG', 2))
    level, message, _ = node._pipeline.status('active', True)
    assert 'depth' not in message and node._pipeline.input_note is None
    # Another depth-like encoding is said at once, the same one once a minute (rclpy's
    # throttle, by call site, hid a 32FC1 warning after a 16UC1 one).
    node._on_image(depth)
    assert 'frames are 16UC1' not in capfd.readouterr().err
    metres = _compressed(np.full((48, 64), 2, np.uint16), 'PNG', 3)
    metres.format = '32FC1; png compressed '
    node._on_image(metres)
    assert 'frames are 32FC1, what depth cameras publish' in capfd.readouterr().err


def test_each_reason_to_skip_a_frame_is_logged_and_nothing_classified_is_said(ros,
                                                                              capfd) -> None:
    """One throttle for every reason hid the second; /diagnostics said 'classifying'."""
    from rclpy.lifecycle import TransitionCallbackReturn
    from sensor_msgs.msg import CompressedImage, Image
    from topspark_ros.core.pipeline import WARN
    context, executor, _ = ros
    node = _classifier(context, executor)
    assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
    assert node.trigger_activate() == TransitionCallbackReturn.SUCCESS
    node._pipeline.status('active', True)  # (the counters' baseline)
    capfd.readouterr()
    for _ in range(3):
        node._on_image(Image(height=2, width=3, encoding='yuyv', step=6, data=bytes(12)))
        node._on_image(Image(height=2, width=2, encoding='yuv420', step=2, data=bytes(6)))
    said = capfd.readouterr().err
    assert said.count('even width') == 1 and said.count("unsupported image encoding 'yuv420'") == 1
    level, message, _ = node._pipeline.status('active', True)
    assert level == WARN and message.startswith('nothing classified; 6 errors'), message
    node._on_image(CompressedImage(format='bmp', data=b'BM' + bytes(60)))
    assert 'are not JPEG or PNG' in capfd.readouterr().err
    node._on_image(Image(height=4, width=4, encoding='mono8', step=4, data=bytes(16)))
    level, message, _ = node._pipeline.status('active', True)
    assert message.startswith('classifying; 1 errors'), message


def _controller(context, executor, **overrides):
    from rclpy.parameter import Parameter

    from topspark_ros.nodes.timestep_controller import TimestepControllerNode
    params = {'profile_path': str(PROFILE), **overrides}
    node = TimestepControllerNode(context=context, parameter_overrides=[
        Parameter(k, value=v) for k, v in params.items()])
    executor.add_node(node)
    return node


def _battery_publisher(context, executor, reliability):
    from rclpy.node import Node
    from rclpy.qos import QoSProfile
    from sensor_msgs.msg import BatteryState
    probe = Node('battery_driver', context=context)
    executor.add_node(probe)
    return probe.create_publisher(BatteryState, 'battery',
                                  QoSProfile(depth=5, reliability=reliability))


@pytest.mark.parametrize('publisher', ['best_effort', 'reliable'])
def test_battery_from_best_effort_and_reliable_publishers(ros, publisher: str) -> None:
    """The default subscription (best effort) hears both kinds of battery driver."""
    from rclpy.lifecycle import TransitionCallbackReturn
    from rclpy.qos import ReliabilityPolicy
    from sensor_msgs.msg import BatteryState
    context, executor, spin_until = ros
    node = _controller(context, executor)
    assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
    pub = _battery_publisher(context, executor, ReliabilityPolicy[publisher.upper()])
    msg = BatteryState(percentage=0.25)
    assert spin_until(lambda: pub.publish(msg) or node._signals.battery_fraction == 0.25,
                      timeout_s=10.0), f'a {publisher} BatteryState was not received'
    assert node._battery_qos_incompatible == 0


def test_battery_levels_are_logged_and_critical_is_a_warning(ros, capfd) -> None:
    """
    At T's smallest, low -> critical and an empty battery went by without a line, at OK.

    Only a change of T was logged; the status stayed OK for 490 s at 0 % (a review of a long
    run). Each change of level is logged, critical as a warning, and /diagnostics WARNs while
    it lasts.
    """
    import re

    from sensor_msgs.msg import BatteryState

    from topspark_ros.nodes import diagnostics
    node, _ = _active_controller(ros)
    capfd.readouterr()
    for fraction in (0.9, 0.2, 0.05, 0.0):
        node._on_battery(BatteryState(percentage=fraction, present=True))
    err = capfd.readouterr().err
    assert 'battery normal -> low (charge 20.0%)' in err
    assert '[WARN]' in err.split('battery low -> critical (charge 5.0%)')[0].splitlines()[-1]
    assert len(re.findall(r'battery \w+ -> \w+ \(charge', err)) == 2  # (0 %: still critical)
    level, message, _ = node._diagnostic_status()
    assert level == diagnostics.WARN and 'battery critical: charge 0.0%' in message


def test_battery_reliable_subscription_warns_about_a_best_effort_publisher(ros) -> None:
    """battery_reliability 'reliable' cannot match a best-effort driver: counted and warned."""
    from rclpy.lifecycle import TransitionCallbackReturn
    from rclpy.parameter import Parameter
    from rclpy.qos import ReliabilityPolicy
    from sensor_msgs.msg import BatteryState
    context, executor, spin_until = ros
    node = _controller(context, executor, battery_reliability='reliable')
    assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
    pub = _battery_publisher(context, executor, ReliabilityPolicy.BEST_EFFORT)
    assert spin_until(lambda: pub.publish(BatteryState(percentage=0.25))
                      or node._battery_qos_incompatible > 0, timeout_s=10.0)
    assert node._signals.battery_fraction is None
    assert 'RELIABILITY' in node._battery_qos_reason
    refused = node.set_parameters([Parameter('battery_reliability', value='fast')])[0]
    assert not refused.successful


class _Commands:
    """Stands in for the controller's TimestepCommand publisher: keeps what it publishes."""

    def __init__(self) -> None:
        self.msgs = []

    def publish(self, msg) -> None:
        self.msgs.append(msg)

    def changes(self) -> list:
        sequence = [m.timesteps for m in self.msgs]
        return [b for a, b in zip(sequence, sequence[1:]) if a != b]


def _active_controller(ros, **params):
    context, executor, _ = ros
    node = _controller(context, executor, **params)
    node.trigger_configure()
    node._pub = commands = _Commands()
    node.trigger_activate()
    return node, commands


def _classification(timesteps: int, latency_ms: float):
    from topspark_ros.msg import Classification
    msg = Classification()
    msg.timestep_budget = msg.timesteps_used = timesteps
    msg.latency_ms = latency_ms
    return msg


def test_a_lowered_power_cap_settles_on_one_t(ros) -> None:
    """
    The power of a monitor's window is scaled from the T it was measured at.

    Scaled from the T the latest classification reported, a cap made the controller climb a
    T a frame and fall back at the next window: 22 changes in 12 s, up to 5x over the cap (a
    user review's closed loop, here with a virtual 30 Hz clock).
    """
    from rclpy.parameter import Parameter

    from topspark_ros.conversions.results import energy_report_to_msg
    from topspark_ros.core.energy import EnergyModel
    from topspark_ros.core.topspark.meter import EnergyMeter
    from topspark_ros.core.topspark.profile import load_profile
    profile = load_profile(PROFILE)
    node, commands = _active_controller(ros, mode='accuracy_first', max_power_w=30e-6,
                                        max_accuracy_drop=0.05)
    meter = EnergyMeter(EnergyModel(profile.energy_preset), start_s=0.0)
    timesteps, windows, ran = 350, [], []
    for frame in range(1, 30 * 12 + 1):
        now = frame / 30.0
        if frame == 30 * 3 + 15:
            node.set_parameters([Parameter('max_power_w', value=12e-6)])
        if commands.msgs:
            timesteps = commands.msgs[-1].timesteps
        ran.append(timesteps)
        entry = profile.entry(timesteps)
        node._on_classification(_classification(timesteps, entry.latency_ms))
        meter.add(entry.ops, timesteps)
        if frame % 30 == 0:
            report = energy_report_to_msg(meter.report(now))
            windows.append((now, timesteps, report.average_power_w))
            node._on_energy(report)
    assert set(ran[30 * 5:]) == {16}, commands.changes()  # only T <= 16 fits 12 uW at 30 Hz
    assert len(commands.changes()) <= 4, commands.changes()
    assert all(power <= 12e-6 * 1.02 for t, _, power in windows if t >= 6.0), windows


def test_a_power_cap_holds_t_with_a_classifier_slower_than_the_monitors_windows(ros) -> None:
    """
    Inputs at 0.5 Hz, a 1 Hz monitor: the power is the windows' energy over their time.

    Every other window was empty: the controller averaged the power of the windows that had
    an inference (twice the real one), and each empty window dropped it for the rate times
    the profile's energy. Under a cap that T=64 meets (1.17 uW against 2 uW) T went 64 -> 32
    -> 64 at every window, 24 changes in 24 s (a review; here on a virtual clock).
    """
    import dataclasses

    from topspark_ros.conversions.results import energy_report_to_msg
    from topspark_ros.core.energy import EnergyModel
    from topspark_ros.core.topspark.meter import EnergyMeter
    from topspark_ros.core.topspark.profile import load_profile
    profile = load_profile(PROFILE)
    costly = 3.0  # the robot's inputs cost 3x the profile's

    def power_w(timesteps: int) -> float:  # the real one: an input every 2 s
        return costly * profile.entry(timesteps).energy_j / 2.0

    node, commands = _active_controller(ros, max_power_w=1.7 * power_w(64))
    assert commands.msgs[-1].timesteps == 64  # T=64 is the balanced choice, cap or not
    clock = [0.0]
    node._now_s = lambda: clock[0]  # (arrival rates and ages on the virtual clock)
    meter = EnergyMeter(EnergyModel(profile.energy_preset), start_s=0.0)
    ran = []
    for tick in range(1, 61):  # 30 s in half seconds
        clock[0] = tick / 2.0
        if tick % 4 == 0:  # an input every 2 s
            timesteps = commands.msgs[-1].timesteps
            ran.append(timesteps)
            entry = profile.entry(timesteps)
            node._on_classification(_classification(timesteps, entry.latency_ms))
            ops = entry.ops
            meter.add(dataclasses.replace(ops, accumulates=costly * ops.accumulates,
                                          neuron_updates=costly * ops.neuron_updates),
                      timesteps)
        if tick % 2 == 1:  # a window every second, between the inputs
            report = meter.report(clock[0])
            node._on_energy(energy_report_to_msg(report))
    assert set(ran[2:]) == {64}, ran
    assert len(commands.changes()) <= 2, commands.changes()
    assert node._signals.measured_power_w == pytest.approx(power_w(64), rel=0.25)


def test_a_pause_of_the_camera_does_not_raise_t_over_a_power_cap(ros) -> None:
    """
    30 inputs a second, a 1 Hz monitor, a cap; the camera stops for 3 s, then for 200 s.

    Counted as time at no power, the pauses' empty windows lowered the power measured: T went
    16 -> 32 -> 64 at 2.4 times the cap after the short pause, and to 250 at 9 times it after
    the long one (a review). They are left out: T stays within the cap.
    """
    from topspark_ros.conversions.results import energy_report_to_msg
    from topspark_ros.core.energy import EnergyModel
    from topspark_ros.core.topspark.meter import EnergyMeter
    from topspark_ros.core.topspark.profile import load_profile
    profile = load_profile(PROFILE)
    cap_w = 12e-6
    node, commands = _active_controller(ros, mode='accuracy_first', max_power_w=cap_w,
                                        max_accuracy_drop=0.05, energy_timeout_s=5.0)
    clock = [0.0]
    node._now_s = lambda: clock[0]
    meter = EnergyMeter(EnergyModel(profile.energy_preset), start_s=0.0)
    timesteps, windows = 350, []
    for frame in range(1, 30 * 250 + 1):
        clock[0] = frame / 30.0
        if commands.msgs:
            timesteps = commands.msgs[-1].timesteps
        if not (30 * 20 <= frame < 30 * 23 or 30 * 40 <= frame < 30 * 240):
            entry = profile.entry(timesteps)
            node._on_classification(_classification(timesteps, entry.latency_ms))
            meter.add(entry.ops, timesteps)
        if frame % 30 == 0:
            report = meter.report(clock[0])
            windows.append((clock[0], timesteps, report.average_power_w))
            node._on_energy(energy_report_to_msg(report))
            node._check_energy_age()
    ran = [(t, at, power) for t, at, power in windows if t >= 6.0 and power > 0.0]
    assert all(power <= cap_w * 1.02 for _, _, power in ran), ran
    assert {at for _, at, _ in ran} == {16}, ran


@pytest.mark.parametrize('early_exit', [False, True])
def test_with_early_exit_a_budget_is_priced_at_the_steps_its_inputs_use(
        ros, capfd, early_exit) -> None:
    """
    A classifier with early exit: its results say so, and T is priced at the steps they use.

    Priced at the whole T, an energy budget of 1.5 uJ held the shipped model at T=100
    (74.9 %, 1.48 uJ) where T=350 with early exit uses 82 steps on average (1.2 uJ, 75.2 %).
    The classifier is simulated: at budget T its inputs use the profile's early-exit mean
    steps on average (5 steps either side of it), or all T without early exit.
    """
    from topspark_ros.core.topspark.profile import load_profile
    profile = load_profile(PROFILE)
    node, commands = _active_controller(ros, mode='accuracy_first', max_energy_j=1.5e-6)
    assert commands.msgs[-1].timesteps == 100  # nothing heard yet: priced whole
    for _ in range(40):  # first without early exit: all T steps, then switched on; the
        # steps counted before priced T=100 whole after it (a review)
        node._on_classification(_classification(100, profile.entry(100).latency_ms))
    assert dict(node._steps_used.all_points()) == {100: 100.0}
    timesteps = 100
    for frame in range(300):
        timesteps = commands.msgs[-1].timesteps
        msg = _classification(timesteps, profile.entry(timesteps).latency_ms)
        mean = profile.entry(timesteps).early_exit_mean_timesteps
        if early_exit and round(mean) < timesteps:  # half below the mean, half above
            msg.timesteps_used = round(mean) + (frame % 2 * 2 - 1) * min(
                5, timesteps - round(mean))
            msg.early_exit = msg.timesteps_used < timesteps
        node._on_classification(msg)
    status = dict(node._diagnostic_status()[2])
    if not early_exit:
        assert commands.changes() == [] and not node._signals.early_exit
        assert status['expected_steps'] == 100.0
        return
    assert commands.changes() == [350], commands.changes()
    assert node._signals.early_exit and status['early_exit_seen']
    used = dict(node._signals.steps_used)
    assert used[350] == pytest.approx(profile.entry(350).early_exit_mean_timesteps, abs=0.5)
    assert 100 not in used  # the whole-T steps of before are gone
    choice = node._selector.current
    assert choice.expected_energy_j < 1.5e-6 and choice.expected_accuracy == \
        profile.entry(350).early_exit_accuracy
    assert 'T=350 priced at 82.4 steps (as profiled)' in commands.msgs[-1].reason
    assert 'T=350 priced at 82.' in choice.reason and '(as measured)' in choice.reason
    assert 'the classifier runs with early exit' in capfd.readouterr().err
    # Results at T=8, the profile's early-exit floor, cannot stop early: they leave it on.
    for _ in range(2 * 100):
        node._on_classification(_classification(8, profile.entry(8).latency_ms))
    assert node._signals.early_exit
    # Results above it that never stop early: the classifier's early exit was turned off,
    # seen within 30 results.
    for _ in range(30):
        node._on_classification(_classification(350, profile.entry(350).latency_ms))
    assert not node._signals.early_exit and node._signals.steps_used == ()
    assert commands.msgs[-1].timesteps == 100
    assert 'each T is priced whole' in capfd.readouterr().err


@pytest.mark.parametrize('first_frame', [1.3, 2.0])
def test_one_slow_first_frame_after_a_switch_does_not_switch_again(ros, first_frame) -> None:
    """The first frame at a new T runs slow; a median of it alone flipped T every frame."""
    from topspark_ros.core.topspark.profile import load_profile
    profile = load_profile(PROFILE)
    node, commands = _active_controller(ros, mode='accuracy_first', max_latency_ms=0.06,
                                        max_accuracy_drop=0.05)
    timesteps, first = 350, True
    for _ in range(150):
        if commands.msgs and commands.msgs[-1].timesteps != timesteps:
            timesteps, first = commands.msgs[-1].timesteps, True
        latency = profile.entry(timesteps).latency_ms * 1.15 * (first_frame if first else 1.0)
        node._on_classification(_classification(timesteps, latency))
        first = False
    assert len(commands.changes()) <= 2, commands.changes()


def test_battery_messages_without_a_reading_leave_the_charge_unknown(ros, capfd) -> None:
    """Defaults (no battery, 0) were an empty battery; 0..100 was dropped without a word."""
    from sensor_msgs.msg import BatteryState
    node, commands = _active_controller(ros)
    node._on_battery(BatteryState(voltage=12.1))  # percentage left at 0, present False
    node._on_battery(BatteryState(present=False, percentage=float('nan')))
    assert node._signals.battery_fraction is None
    node._on_battery(BatteryState(present=True, percentage=0.5))
    assert node._signals.battery_fraction == 0.5
    node._on_battery(BatteryState(present=False, percentage=0.4))  # a driver without present
    assert node._signals.battery_fraction == 0.4
    capfd.readouterr()
    node._on_battery(BatteryState(present=True, percentage=-3.0))
    assert node._signals.battery_fraction == 0.4
    assert 'battery percentage -3 ignored' in capfd.readouterr().err
    level, message, values = node._diagnostic_status()
    assert level == b'\x01' and '1 battery states ignored, last: percentage -3' in message
    assert values['battery_ignored'] == 1


def test_a_battery_driver_publishing_percents_is_read_as_such(ros, capfd) -> None:
    """25, 5 and 2 were ignored from a 0..100 driver, then its 1 and 0.5 read as 100 and 50 %."""
    from sensor_msgs.msg import BatteryState
    node, commands = _active_controller(ros)
    capfd.readouterr()
    taken = []
    for charge in (85.0, 25.0, 5.0, 2.0, 1.0, 0.5, 0.0):
        node._on_battery(BatteryState(present=True, percentage=charge))
        taken.append(node._signals.battery_fraction)
    assert taken == pytest.approx([0.85, 0.25, 0.05, 0.02, 0.01, 0.005, 0.0])
    assert err_count(capfd.readouterr().err, 'publishes 0..100') == 1
    assert node._diagnostic_status()[2]['battery_percent_driver'] is True
    node._on_battery(BatteryState(present=True, percentage=250.0))  # neither: ignored
    assert node._signals.battery_fraction == 0.0 and node._battery_ignored == 1


def test_a_full_battery_overshooting_1_is_full_not_a_percent(ros) -> None:
    """One 1.02 from a 0..1 driver read it as percents for good: its 0.9 as 0.9 % (critical)."""
    from sensor_msgs.msg import BatteryState
    node, commands = _active_controller(ros)
    taken = []
    for charge in (0.95, 1.02, 0.90, 0.85):
        node._on_battery(BatteryState(present=True, percentage=charge))
        taken.append(node._signals.battery_fraction)
    assert taken == pytest.approx([0.95, 1.0, 0.90, 0.85])
    assert node._selector.battery_level.value == 'normal' and not node._battery_percent


def test_a_charging_battery_is_taken_as_full(ros, capfd) -> None:
    """A robot docked at 20 % traded accuracy for energy: power_supply_status was not read."""
    from rclpy.parameter import Parameter
    from sensor_msgs.msg import BatteryState
    node, commands = _active_controller(ros, battery_recover_s=0.0)
    full = commands.msgs[-1].timesteps
    now = [100.0]
    node._now_s = lambda: now[0]

    def battery(charge, status):
        now[0] += 6.0  # (a change of charging is logged at most once in 10 s)
        node._on_battery(BatteryState(present=True, percentage=charge,
                                      power_supply_status=status))
        return node._selector.battery_level.value, commands.msgs[-1].timesteps
    assert battery(0.05, BatteryState.POWER_SUPPLY_STATUS_DISCHARGING)[0] == 'critical'
    critical = commands.msgs[-1].timesteps
    assert critical < full
    capfd.readouterr()
    assert battery(0.05, BatteryState.POWER_SUPPLY_STATUS_CHARGING) == ('normal', full)
    assert node._signals.battery_fraction == 1.0
    assert node._diagnostic_status()[2]['battery_charging'] is True
    assert battery(float('nan'), BatteryState.POWER_SUPPLY_STATUS_FULL) == ('normal', full)
    assert 'battery charging or full: its charge is taken as full' in capfd.readouterr().err
    assert battery(0.2, BatteryState.POWER_SUPPLY_STATUS_DISCHARGING)[0] == 'low'  # undocked
    assert 'no longer charging' in capfd.readouterr().err
    for _ in range(5):  # a driver flipping at the top of a charge: not logged at its rate
        battery(1.0, BatteryState.POWER_SUPPLY_STATUS_FULL)
        battery(1.0, BatteryState.POWER_SUPPLY_STATUS_NOT_CHARGING)
    assert err_count(capfd.readouterr().err, 'charging') == 5  # 10 changes 6 s apart
    assert battery(-1.0, BatteryState.POWER_SUPPLY_STATUS_CHARGING) == ('normal', full)
    assert node._battery_ignored == 1  # out of range: still said, and taken as full
    assert battery(0.05, BatteryState.POWER_SUPPLY_STATUS_NOT_CHARGING)[0] == 'critical'
    assert battery(0.05, BatteryState.POWER_SUPPLY_STATUS_CHARGING) == ('normal', full)
    # The parameter takes effect at once, not at the driver's next state (1 Hz or on change).
    node.set_parameters([Parameter('battery_charging_full', value=False)])
    assert (node._selector.battery_level.value, commands.msgs[-1].timesteps) == \
        ('critical', critical)
    values = node._diagnostic_status()[2]
    assert values['battery_fraction'] == values['battery_published_fraction'] == 0.05
    node.set_parameters([Parameter('battery_charging_full', value=True)])
    assert (node._selector.battery_level.value, commands.msgs[-1].timesteps) == ('normal', full)
    assert battery(0.05, BatteryState.POWER_SUPPLY_STATUS_CHARGING) == ('normal', full)
    node.set_parameters([Parameter('battery_charging_full', value=False)])
    assert battery(0.05, BatteryState.POWER_SUPPLY_STATUS_CHARGING) == ('critical', critical)


def err_count(err: str, text: str) -> int:
    return sum(text in line for line in err.splitlines())


def test_a_battery_gone_quiet_leaves_the_charge_unknown_and_the_level_kept(ros, capfd) -> None:
    """A driver that died left 0 % standing for ever: energy_saver, no age, no warning."""
    from rclpy.parameter import Parameter
    from sensor_msgs.msg import BatteryState
    node, commands = _active_controller(ros, battery_recover_s=0.0)
    node.set_parameters([Parameter('battery_timeout_s', value=5.0)])
    now = [100.0]
    node._now_s = lambda: now[0]
    node._on_battery(BatteryState(present=True, percentage=0.05))
    critical = commands.msgs[-1].timesteps
    assert node._selector.battery_level.value == 'critical'
    now[0] += 4.0
    node._heartbeat()
    assert node._signals.battery_fraction == 0.05
    capfd.readouterr()
    now[0] += 2.0
    node._heartbeat()
    assert node._signals.battery_fraction is None
    assert 'no battery charge for 6 s' in capfd.readouterr().err
    assert node._selector.battery_level.value == 'critical'  # kept, not guessed
    assert commands.msgs[-1].timesteps == critical
    level, message, values = node._diagnostic_status()
    assert level == b'\x01' and 'no battery charge for 6 s' in message
    assert values['battery_age_s'] == 6.0
    node._on_battery(BatteryState(present=True, percentage=0.9))  # back
    assert node._selector.battery_level.value == 'normal'
    assert 'no battery charge' not in node._diagnostic_status()[1]
    for _ in range(7):  # a driver saying 'unknown' (NaN) goes on: said so, not 'quiet'
        now[0] += 1.0
        node._on_battery(BatteryState(present=True, percentage=float('nan')))
        node._heartbeat()
    assert node._signals.battery_fraction is None
    assert 'no battery charge for 7 s (its battery states give it as unknown)' in \
        node._diagnostic_status()[1]


def test_a_power_priced_with_another_preset_prices_the_profile_alike(ros, capfd) -> None:
    """The monitor's loihi power was not used at all against a cmos45 profile, only warned of."""
    from topspark_ros.core.energy import EnergyModel
    from topspark_ros.core.topspark.profile import load_profile
    from topspark_ros.msg import EnergyEstimate
    profile = load_profile(PROFILE)
    node, commands = _active_controller(ros, max_power_w=30e-6)
    window = EnergyEstimate(energy_preset='loihi', inference_count=30, window_inferences=30,
                            average_power_w=6e-4,
                            mean_timesteps=64.0)
    capfd.readouterr()
    node._on_energy(window)
    assert node._signals.measured_power_w == pytest.approx(6e-4)
    assert node._signals.power_timesteps == 64.0
    assert 'priced again under loihi' in capfd.readouterr().err
    priced = node._selector.profile
    loihi = EnergyModel('loihi')
    assert priced.energy_preset == 'loihi'
    assert [e.energy_j for e in priced.entries] == \
        [loihi.estimate(e.ops).compute_j for e in profile.entries]
    assert [e.energy_j for e in priced.entries] != [e.energy_j for e in profile.entries]
    node._heartbeat()  # the command in force, priced as the monitor prices
    assert commands.msgs[-1].energy_preset == 'loihi'
    assert commands.msgs[-1].expected_energy_j == \
        pytest.approx(priced.entry(commands.msgs[-1].timesteps).energy_j)
    stats = dict(node._diagnostic_status()[2])
    assert (stats['energy_preset'], stats['profiled_energy_preset']) == ('loihi', 'cmos45_fp32')


def test_a_power_under_an_unknown_preset_is_not_used(ros, capfd) -> None:
    """Another preset's power, scaled by this profile's energies, moved T by magnitudes."""
    from topspark_ros.msg import EnergyEstimate
    node, commands = _active_controller(ros, max_power_w=30e-6)
    window = EnergyEstimate(energy_preset='tpu_v9', inference_count=30, window_inferences=30,
                            average_power_w=6e-4,
                            mean_timesteps=64.0)
    capfd.readouterr()
    node._on_energy(window)
    assert node._signals.measured_power_w is None
    assert 'prices with tpu_v9, a preset this package does not know' in capfd.readouterr().err
    assert node._selector.profile.energy_preset == 'cmos45_fp32'
    window.energy_preset = 'cmos45_fp32'
    node._on_energy(window)
    assert node._signals.measured_power_w == pytest.approx(6e-4)


def test_an_empty_profile_path_says_so(ros) -> None:
    """It read as the current directory: 'Is a directory'."""
    from rclpy.lifecycle import TransitionCallbackReturn
    context, executor, _ = ros
    node = _controller(context, executor, profile_path='')
    assert node.trigger_configure() == TransitionCallbackReturn.FAILURE
    assert 'profile_path is empty' in node._configure_error


def test_a_missing_or_broken_profile_names_the_parameter_in_every_node(ros, tmp_path) -> None:
    """
    A missing profile said only '[Errno 2] No such file or directory' (a parameters review).

    The classifier's configure error and the energy monitor's start-up error did not say
    which parameter to fix.
    """
    from rclpy.lifecycle import TransitionCallbackReturn
    from rclpy.parameter import Parameter

    from topspark_ros.nodes.classifier import ClassifierNode
    from topspark_ros.nodes.energy_monitor import EnergyMonitorNode
    context, executor, _ = ros
    broken = tmp_path / 'broken.yaml'
    broken.write_text('entries: [\n')
    for path, said in ((tmp_path / 'none.yaml', f'cannot read {tmp_path}/none.yaml: No such '
                        'file or directory'), (broken, f'{broken}: not valid YAML')):
        controller = _controller(context, executor, profile_path=str(path))
        assert controller.trigger_configure() == TransitionCallbackReturn.FAILURE
        assert f'profile_path: {said}' in controller._configure_error
        classifier = ClassifierNode(context=context, parameter_overrides=[
            Parameter('model_path', value=str(MODEL)), Parameter('profile_path', value=str(path))])
        executor.add_node(classifier)
        assert classifier.trigger_configure() == TransitionCallbackReturn.FAILURE
        assert f'profile_path: {said}' in classifier._pipeline.configure_error
        with pytest.raises(ValueError, match=f'profile_path: {said}'):
            EnergyMonitorNode(context=context, parameter_overrides=[
                Parameter('profile_path', value=str(path))])
        for node in (controller, classifier):
            executor.remove_node(node)
            node.destroy_node()


@pytest.mark.parametrize('measured', [False, True])
def test_a_profile_enhanced_and_not_swept_again_is_warned_about(ros, tmp_path, capfd,
                                                                measured) -> None:
    """The controller chose T on the own parameters' figures without a word (a review)."""
    import dataclasses

    from rclpy.lifecycle import TransitionCallbackReturn

    from topspark_ros.core.topspark.profile import load_profile, save_profile
    profile = load_profile(PROFILE)
    path = save_profile(dataclasses.replace(profile, enhancement={
        **profile.enhancement, 'measured_with_params': measured}), tmp_path / 'p.yaml')
    context, executor, _ = ros
    node = _controller(context, executor, profile_path=str(path))
    capfd.readouterr()
    assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
    warned = '--params-from PROFILE -o PROFILE --overwrite' in capfd.readouterr().err
    assert warned != measured


def test_the_controllers_rate_is_the_classified_inputs_not_their_arrival(ros) -> None:
    """
    Take the rate from the results' stamps.

    Results of a 30 Hz camera handled back to back read as a rate of up to 1 760 Hz, which
    T under a power cap followed (a user review).
    """
    node, _ = _active_controller(ros, mode='accuracy_first')
    for frame in range(30):  # all handled at once, as after a pause of the executor
        msg = _classification(64, 2.0)
        msg.header.stamp.sec, msg.header.stamp.nanosec = 1000 + frame // 30, \
            (frame % 30) * 33_333_333
        node._on_classification(msg)
    assert node._signals.rate_hz == pytest.approx(30.0, rel=1e-3)


def test_the_rate_is_dropped_once_the_classifiers_fall_silent(ros, monkeypatch) -> None:
    """The last rate stood at OK after the camera stopped ('rate_hz 10.0', no source; a review)."""
    from topspark_ros.core.sources import SOURCE_QUIET_S
    from topspark_ros.nodes import diagnostics
    node, _ = _active_controller(ros, mode='accuracy_first')
    for frame in range(10):
        msg = _classification(64, 2.0)
        msg.source = '/front/classifier'
        msg.header.stamp.sec, msg.header.stamp.nanosec = 1000, frame * 100_000_000
        node._on_classification(msg)
    level, message, stats = node._diagnostic_status()
    assert stats['rate_hz'] == pytest.approx(10.0) and stats['sources'] == '/front/classifier'
    assert 'no classifications heard' not in message
    now = node._now_s()
    monkeypatch.setattr(node, '_now_s', lambda: now + SOURCE_QUIET_S + 1.0)
    node._heartbeat()
    assert node._signals.rate_hz is None
    level, message, stats = node._diagnostic_status()
    assert stats['rate_hz'] is None and stats['sources'] == ''
    assert level == diagnostics.WARN and 'no classifications heard for 5 s' in message


def test_the_monitors_figures_are_dropped_once_it_falls_silent(ros) -> None:
    """
    Drop the energy monitor's power and energy after energy_timeout_s.

    With the monitor killed the controller kept its last power for ever and held T under a
    power cap on it (a user review).
    """
    from topspark_ros.msg import EnergyEstimate
    node, _ = _active_controller(ros, energy_timeout_s=5.0)
    window = EnergyEstimate(inference_count=30, window_inferences=30, average_power_w=4e-5,
                            mean_timesteps=64.0, energy_per_inference_j=1.4e-6)
    node._on_energy(window)
    assert (node._signals.measured_power_w, node._signals.measured_energy_j) == (4e-5, 1.4e-6)
    node._heartbeat()  # fresh: kept
    assert node._signals.measured_power_w == 4e-5
    node._energy_at_s -= 6.0  # as if 6 s had passed without a window
    node._heartbeat()
    assert (node._signals.measured_power_w, node._signals.measured_energy_j,
            node._signals.power_timesteps) == (None, None, None)
    # A slow monitor (10 s windows): three of its windows are waited for, not 5 s (a review:
    # every window was dropped half-way and T swung with it).
    for stamp in (100, 110):
        window.header.stamp.sec = stamp
        node._on_energy(window)
    node._energy_at_s -= 25.0
    node._heartbeat()
    assert node._signals.measured_power_w == 4e-5
    node._energy_at_s -= 6.0
    node._heartbeat()
    assert node._signals.measured_power_w is None
    node._on_energy(window)
    node._energy_at_s += 100.0  # the clock went back 100 s: counted afresh, not dropped
    node._heartbeat()
    assert node._signals.measured_power_w == 4e-5
    # An outage of 600 s between two windows does not make the next one last 1 800 s: the
    # median of the recent intervals (10 s here) counts (a review).
    for stamp in (120, 720):
        window.header.stamp.sec = stamp
        node._on_energy(window)
    assert node._energy_window_s == 10.0


def test_a_leap_of_the_simulated_clock_is_no_silence_of_the_monitor(ros, capfd) -> None:
    """
    A seek of 100 s in a replayed bag: the monitor's figures were dropped as 101 s old.

    "no energy estimate for 101.0 s" while the monitor published, and its next window's
    interval was 101 s (a review). Ages go on from the leap; no interval spans it.
    """
    import types

    from sensor_msgs.msg import BatteryState

    from topspark_ros.msg import EnergyEstimate
    node, _ = _active_controller(ros, use_sim_time=True, energy_timeout_s=5.0)
    now = [1000.0]
    node._now_s = lambda: now[0]  # (sim time that no /clock drives)

    def step(dt: float) -> None:
        now[0] += dt
        node._clock_stepped(types.SimpleNamespace(
            delta=types.SimpleNamespace(nanoseconds=round(dt * 1e9))))

    window = EnergyEstimate(inference_count=30, window_inferences=30, average_power_w=4e-5,
                            mean_timesteps=64.0, energy_per_inference_j=1.4e-6, window_s=1.0)
    for k in range(4):  # a window a second, the clock stepping 25 ms
        for _ in range(40):
            step(0.025)
        window.header.stamp.sec = int(now[0])
        node._on_energy(window)
        node._on_battery(BatteryState(present=True, percentage=0.8))
    step(100.0)  # the seek
    node._heartbeat()
    assert node._signals.measured_power_w is not None and node._battery_at_s > 1100.0
    assert 'no energy estimate' not in capfd.readouterr().err
    for _ in range(40):
        step(0.025)
    window.header.stamp.sec = int(now[0])
    node._on_energy(window)
    assert max(node._energy_intervals) == pytest.approx(1.0)
    for _ in range(240):  # and a monitor that does fall silent for 6 s is still dropped
        step(0.025)
    node._heartbeat()
    assert node._signals.measured_power_w is None
    # The bag loops: the clock goes back 150 s. The battery heard 7 s before is 7 s old, not
    # -143 s (a silent driver counted as fresh that long; a review).
    step(-150.0)
    assert node._diagnostic_status()[2]['battery_age_s'] == pytest.approx(7.0, abs=0.1)
    # ... and a better battery level's wait goes on across it (the selector's times move).
    node._selector._rising_since['normal'] = now[0] - 2.0  # begun 2 s before the loop
    step(-150.0)
    assert node._selector._rising_since['normal'] == pytest.approx(now[0] - 2.0)


def test_energy_windows_under_early_exit_are_priced_as_the_strategy_prices_a_t(ros) -> None:
    """
    The strategy prices a T's energy under early exit as its own scaled by the steps.

    The windows' mean steps must be priced alike: read off the profile across T, a window of
    the shipped profile's own figures at T=350 would read 0.57 of the profile, and every T
    would be priced 0.57 of its cost. A window of the profile's figures prices T=350 at them.
    """
    from topspark_ros.msg import EnergyEstimate
    node, _ = _active_controller(ros)
    entry = node._selector.profile.entry(350)
    steps = entry.early_exit_mean_timesteps
    node._signals = node._signals.replace(early_exit=True, measured_timesteps=350)
    assert node._early_exit_t() == 350
    energy = entry.energy_j * steps / 350
    node._on_energy(EnergyEstimate(inference_count=20, window_inferences=20,
                                   average_power_w=20 * energy, mean_timesteps=steps,
                                   energy_per_inference_j=energy, window_s=1.0))
    assert node._signals.measured_energy_j == pytest.approx(energy)
    from topspark_ros.core.topspark.strategy import choose_timestep, Constraints, Mode
    at_350 = choose_timestep(node._selector.profile, Constraints(max_accuracy_drop=1.0,
                                                                 max_timesteps=350),
                             Mode.ACCURACY_FIRST, node._signals)
    assert at_350.timesteps == 350 and at_350.expected_energy_j == pytest.approx(energy)
    # The window stays priced at the T it ran under when the results move on to T=150 (at
    # their T it read 0.65 of its cost, and T flipped 136 times in 15 s; a review), or when
    # early exit goes off (0.55) before the next window.
    assert node._signals.power_run_at == 350
    for moved in ({'measured_timesteps': 150}, {'early_exit': False}):
        signals = node._signals.replace(**moved)
        again = choose_timestep(node._selector.profile, Constraints(
            max_accuracy_drop=1.0, max_timesteps=350), Mode.ACCURACY_FIRST, signals)
        at = node._selector.profile.entry(again.timesteps)  # (whole: the most accurate T)
        assert again.expected_energy_j == pytest.approx(
            energy if signals.early_exit else at.energy_j)
    node._signals = node._signals.replace(early_exit=False)
    assert node._early_exit_t() is None


def test_refused_messages_of_each_type_are_each_warned_of(ros, capfd) -> None:
    """A refused result right after a refused energy estimate went unlogged for 30 s."""
    from topspark_ros.msg import Classification, EnergyEstimate
    node, _ = _active_controller(ros)
    capfd.readouterr()
    node._on_energy(EnergyEstimate(average_power_w=float('nan')))
    node._on_classification(Classification(latency_ms=-1.0))
    node._on_energy(EnergyEstimate(average_power_w=-1.0))  # (the same type again: throttled)
    err = capfd.readouterr().err
    assert 'an EnergyEstimate with average_power_w = nan was ignored (1 so far)' in err
    assert 'a Classification with latency_ms = -1.0 was ignored (2 so far)' in err
    assert node._refused == 3 and '(3 so far)' not in err


def test_the_monitors_windows_are_weighted_by_their_own_inferences(ros) -> None:
    """
    Smooth the monitor's energy by each window's inferences, not by the count since it started.

    The controller passed ``inference_count`` (all inferences since the monitor started): one
    window of 1 inference at 3 uJ after four of 20 at 1 uJ gave 1.41 uJ, where the windows'
    own counts give 1.025 (a review). Before two stamps were heard, the window's length was
    that count over the rate, not the window's ``window_s``.
    """
    from topspark_ros.msg import EnergyEstimate
    node, _ = _active_controller(ros)
    total = 0
    for n, energy_j in ((20, 1e-6), (20, 1e-6), (20, 1e-6), (20, 1e-6), (1, 3e-6)):
        total += n
        node._on_energy(EnergyEstimate(
            inference_count=total, window_inferences=n, window_s=2.0, mean_timesteps=64.0,
            energy_per_inference_j=energy_j, average_power_w=energy_j * n / 2.0))
        assert node._energy_window_s == 2.0  # (unstamped windows: their own length)
    assert node._signals.measured_energy_j == pytest.approx((80 * 1e-6 + 3e-6) / 81)
    # A window without inferences (its figures 0: no data) leaves the energy per inference
    # alone; of a classifier that fills its windows (16 inferences each here) it is a pause,
    # which says nothing of the power when it runs.
    assert node._signals.measured_power_w == pytest.approx((4 * 1e-5 + 1.5e-6) / 5)
    node._on_energy(EnergyEstimate(inference_count=total, window_s=2.0))
    assert node._signals.measured_energy_j == pytest.approx((80 * 1e-6 + 3e-6) / 81)
    assert node._signals.measured_power_w == pytest.approx((4 * 1e-5 + 1.5e-6) / 5)
    assert len(node._energy_windows) == 5


def test_a_fixed_decoding_cost_does_not_pin_t_to_the_smallest(ros) -> None:
    """
    After a battery dip T climbs back: a fixed cost per input is not scaled with T.

    A robot's latency is mostly a fixed cost per input (decoding, preprocessing: ms) beside
    the inference (tens of us): scaled by the ratio measured at T=8, it predicted T=250 at
    26 ms and kept T at 8 for good under a 2.3 ms ceiling that T=250 meets (2.2 ms here).
    """
    from sensor_msgs.msg import BatteryState

    from topspark_ros.core.topspark.profile import load_profile
    profile = load_profile(PROFILE)
    node, commands = _active_controller(ros, mode='accuracy_first', max_latency_ms=2.3,
                                        max_accuracy_drop=0.05, battery_recover_s=0.0)

    def robot(timesteps: int) -> float:  # 2 ms of decoding, inference 1.5x the profile's
        return 2.0 + 1.5 * profile.entry(timesteps).latency_ms

    def run(frames: int, charge: float) -> list:
        ran = []
        for _ in range(frames):
            node._on_battery(BatteryState(present=True, percentage=charge))
            timesteps = commands.msgs[-1].timesteps
            ran.append(timesteps)
            node._on_classification(_classification(timesteps, robot(timesteps)))
        return ran

    run(30, 1.0)
    assert set(run(30, 0.03)) >= {8}  # critical: energy_saver
    ran = run(60, 1.0)
    assert ran[-1] in (150, 250) and len(set(ran[-30:])) == 1, commands.changes()
    assert robot(ran[-1]) <= 2.3
    assert len(commands.changes()) <= 5, commands.changes()


def test_a_volatile_timestep_publisher_is_warned_about(ros, capfd) -> None:
    """
    A planner's own TimestepCommand publisher with default QoS had no effect, silently.

    The classifier's latched subscription matches no volatile publisher; rmw said so once,
    at discovery, without the fix (a user review).
    """
    from rclpy.lifecycle import TransitionCallbackReturn
    from rclpy.node import Node

    from topspark_ros.msg import TimestepCommand
    context, executor, spin_until = ros
    node = _classifier(context, executor)
    assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
    planner = Node('planner', context=context)
    executor.add_node(planner)
    pub = planner.create_publisher(TimestepCommand, 'timestep', 10)  # reliable, volatile
    seen = []
    assert spin_until(lambda: pub.publish(TimestepCommand(timesteps=8))
                      or seen.append(capfd.readouterr().err)
                      or 'incompatible QoS (DURABILITY)' in ''.join(seen), timeout_s=10.0)
    assert 'transient local' in ''.join(seen)


def test_two_topics_incompatible_at_once_are_each_warned_of_by_full_name(ros, capfd,
                                                                         monkeypatch) -> None:
    """
    A camera and a planner that cannot match at the same moment: both are warned of.

    One log call, throttled by rclpy per call site, served every subscription: the second
    topic's warning was dropped until the next configure; and the camera's topic was named
    ``image``, not as remapped or namespaced (a review). (The events are called here: when
    DDS raises them is tested with a real publisher above.)
    """
    from types import SimpleNamespace

    from rclpy.lifecycle import TransitionCallbackReturn
    from rclpy.parameter import Parameter
    from rclpy.qos import QoSPolicyKind

    from topspark_ros.nodes import intake, qos
    from topspark_ros.nodes.classifier import ClassifierNode
    context, executor, _ = ros
    made = {}  # topic -> the event callbacks the classifier's subscriptions were given

    def recorded(node, topic, hint, *args):
        made[topic] = qos.warn_on_incompatible_qos(node, topic, hint, *args)
        return made[topic]
    monkeypatch.setattr(intake, 'warn_on_incompatible_qos', recorded)
    monkeypatch.setattr('topspark_ros.nodes.classifier.warn_on_incompatible_qos', recorded)
    node = ClassifierNode(namespace='robot1', context=context, parameter_overrides=[
        Parameter(k, value=v) for k, v in {
            'model_path': str(MODEL), 'crop': 'none', 'profile_path': '',
            'image_reliability': 'reliable'}.items()])
    executor.add_node(node)
    assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
    assert node.trigger_activate() == TransitionCallbackReturn.SUCCESS
    assert set(made) == {'/robot1/image', '/robot1/timestep'}  # (resolved: not 'image')
    capfd.readouterr()
    for topic, policy in (('/robot1/image', QoSPolicyKind.RELIABILITY),
                          ('/robot1/timestep', QoSPolicyKind.DURABILITY)):
        made[topic].incompatible_qos(SimpleNamespace(total_count=1,
                                                     last_policy_kind=policy.value))
    err = capfd.readouterr().err
    assert '/robot1/image: a publisher with incompatible QoS (RELIABILITY)' in err, err
    assert '/robot1/timestep: a publisher with incompatible QoS (DURABILITY)' in err, err
    made['/robot1/image'].incompatible_qos(SimpleNamespace(  # (the same one again: throttled)
        total_count=2, last_policy_kind=QoSPolicyKind.RELIABILITY.value))
    assert 'incompatible' not in capfd.readouterr().err


def test_a_command_is_stamped_when_its_t_was_chosen(ros) -> None:
    """The heartbeat republished the command stamped anew: when T last changed was lost."""
    import time

    from rclpy.parameter import Parameter
    node, commands = _active_controller(ros, heartbeat_period_s=0.05)
    first = commands.msgs[-1]
    time.sleep(0.02)
    node._heartbeat()
    again = commands.msgs[-1]
    assert again.timesteps == first.timesteps and again.header.stamp == first.header.stamp
    node.set_parameters([Parameter('mode', value='energy_saver')])
    changed = commands.msgs[-1]
    assert changed.timesteps != first.timesteps
    assert (changed.header.stamp.sec, changed.header.stamp.nanosec) > \
        (first.header.stamp.sec, first.header.stamp.nanosec)


def test_battery_thresholds_refused_at_start_say_why(ros, capfd) -> None:
    """Critical above low, or a low level never left: configure failed without a reason."""
    from rclpy.lifecycle import TransitionCallbackReturn
    context, executor, _ = ros
    for overrides, said in (({'battery_critical_fraction': 0.4},
                             'battery_critical_fraction must not exceed battery_low_fraction'),
                            ({'battery_low_fraction': 0.99},
                             'a low battery would never read normal again')):
        node = _controller(context, executor, **overrides)
        capfd.readouterr()
        assert node.trigger_configure() == TransitionCallbackReturn.FAILURE
        assert said in capfd.readouterr().err
        level, message, _ = node._diagnostic_status()
        assert level == b'\x02' and said in message
        executor.remove_node(node)
        node.destroy_node()


def test_grey_frames_for_a_colour_model_are_logged_once_a_run(ros, tmp_path, capfd) -> None:
    """A camera mixing mono and colour frames logged the note at each change (12 in 72)."""
    from rclpy.lifecycle import TransitionCallbackReturn
    from sensor_msgs.msg import Image

    from topspark_ros.core.checkpoint import save_checkpoint
    from topspark_ros.core.converted.config import ConvertedConfig
    from topspark_ros.core.converted.network import ConvertedNetwork
    model = tmp_path / 'rgb.json'
    save_checkpoint(model, ConvertedNetwork(ConvertedConfig(
        height=8, width=8, channels=3, widths=(4,), hidden=0, mean=(0.5,) * 3,
        std=(0.25,) * 3)), info={'timesteps': 2})
    context, executor, _ = ros
    node = _classifier(context, executor, model_path=str(model), default_timesteps=2)
    assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
    assert node.trigger_activate() == TransitionCallbackReturn.SUCCESS
    capfd.readouterr()
    mono = Image(height=8, width=8, encoding='mono8', step=8, data=bytes(range(64)))
    rgb = Image(height=8, width=8, encoding='rgb8', step=24, data=bytes(192))
    for frame in (mono, rgb) * 4:
        node._on_image(frame)
    assert node._pipeline.counts['processed'] == 8, node._pipeline.last_error
    assert capfd.readouterr().err.count('grey frames for a model trained on colour') == 1


def test_a_charge_swinging_under_load_does_not_flip_t(ros) -> None:
    """0.28 <-> 0.33 every 0.25 s flipped T six times in 1.5 s; a better level now waits."""
    from sensor_msgs.msg import BatteryState
    node, commands = _active_controller(ros)  # battery_recover_s 5 s (the default)
    now = [0.0]
    node._now_s = lambda: now[0]
    node._on_battery(BatteryState(present=True, percentage=0.9))
    normal = commands.msgs[-1].timesteps
    for k in range(40):  # 10 s of a swinging charge
        now[0] += 0.25
        node._on_battery(BatteryState(present=True, percentage=0.28 if k % 2 else 0.33))
    assert node._selector.battery_level.value == 'low'
    assert len(commands.changes()) <= 1, commands.changes()  # into low, once
    for _ in range(19):  # above 32 % for 4.75 s: still low
        now[0] += 0.25
        node._on_battery(BatteryState(present=True, percentage=0.33))
    assert node._selector.battery_level.value == 'low'
    assert 'held until it stays >= 32.0% for 5 s' in node._selector.current.reason
    for _ in range(2):  # 5 s: normal again
        now[0] += 0.25
        node._on_battery(BatteryState(present=True, percentage=0.33))
    assert node._selector.battery_level.value == 'normal'
    assert commands.msgs[-1].timesteps == normal


def test_one_parameter_request_chooses_t_once(ros) -> None:
    """One ros2 param load of three settings published T=250 (which it forbade), then 100."""
    from rcl_interfaces.srv import SetParameters
    from rclpy.node import Node
    from rclpy.parameter import Parameter
    context, executor, spin_until = ros
    node, commands = _active_controller(ros)
    client_node = Node('param_loader', context=context)
    executor.add_node(client_node)
    client = client_node.create_client(SetParameters, '/timestep_controller/set_parameters')
    assert spin_until(client.service_is_ready, 20.0)
    before = len(commands.msgs)
    request = SetParameters.Request(parameters=[
        Parameter('mode', value='accuracy_first').to_parameter_msg(),
        Parameter('max_timesteps', value=100).to_parameter_msg(),
        Parameter('max_accuracy_drop', value=0.05).to_parameter_msg()])
    future = client.call_async(request)
    assert spin_until(future.done, 20.0)
    assert all(r.successful for r in future.result().results)
    published = [m.timesteps for m in commands.msgs[before:]]
    assert published == [100], published
    client_node.destroy_node()
