"""
The classifier's event mode and the event player: in-process and across processes over DDS.

The packets are real ``event_camera_msgs/EventPacket`` messages (the test stand-in package
built by dev/build.sh from the public definition); their bytes are made by the core encoders.
The in-process tests use the shipped frames-trained STDP network (it takes events as 'merge'
spike trains, see :mod:`topspark_ros.core.events.encode`), the cross-process test the shipped
event-trained STDP model when there is one; what is checked is the plumbing (headers,
timesteps, counts, drops), not the accuracy.
"""

import array
import contextlib
import pathlib
import subprocess
import sys
import time

from event_arrays import random_events
import numpy as np
import processes
import pytest

pytestmark = pytest.mark.ros
ROOT = pathlib.Path(__file__).resolve().parent.parent
MODEL = ROOT / 'models' / 'stdp_fmnist_n400.json'
# Across processes: the shipped STDP model trained on events when there is one.
EVENT_MODEL = next(iter(sorted((ROOT / 'models').glob('stdp_nmnist_synth*.json'))), MODEL)
CONVERTED = ROOT / 'models' / 'converted_fmnist_vgg.json'
SENSOR = (34, 34)


def _have_event_msgs() -> bool:
    try:
        import event_camera_msgs.msg  # noqa: F401
    except ImportError:
        return False
    return True


# dev/build.sh always builds the stand-in package; a robot workspace may lack the real one.
needs_msgs = pytest.mark.skipif(
    not _have_event_msgs(), reason='event_camera_msgs is not importable (dev/build.sh builds '
    'a stand-in; on a robot: apt install ros-$ROS_DISTRO-event-camera-msgs)')


def _events(n: int, duration_us: int, seed: int = 0) -> np.ndarray:
    """Return ``n`` random events on the 34 x 34 sensor over ``[0, duration_us)``, sorted."""
    return random_events(n, duration_us, size=SENSOR, seed=seed)


def _packets(events: np.ndarray, packet_us: int, encoding: str = 'evt3') -> list:
    """Cut ``events`` into EventPacket messages of ``packet_us``; stamp = seq s, frame pkt<seq>."""
    from event_camera_msgs.msg import EventPacket

    from topspark_ros.core.events.codecs import make_encoder
    encoder = make_encoder(encoding, *SENSOR)
    slots = events['t'] // packet_us
    packets = []
    for slot in np.unique(slots):
        chunk = events[slots == slot]
        encoded = encoder.encode(chunk)
        msg = EventPacket(width=encoded.width, height=encoded.height, seq=encoded.seq,
                          time_base=encoded.time_base, encoding=encoded.encoding)
        msg.events = array.array('B', encoded.data)
        msg.header.stamp.sec = 100 + encoded.seq
        msg.header.frame_id = f'pkt{encoded.seq}'
        packets.append((msg, chunk))
    return packets


def _classifier(context, executor, **overrides):
    from rclpy.parameter import Parameter

    from topspark_ros.nodes.classifier import ClassifierNode
    params = {'input_mode': 'events', 'model_path': str(MODEL), 'profile_path': '',
              'default_timesteps': 16, 'window_ms': 100.0, 'window_min_events': 1,
              'events_reliability': 'reliable', **overrides}
    node = ClassifierNode(context=context, parameter_overrides=[
        Parameter(k, value=v) for k, v in params.items()])
    executor.add_node(node)
    return node


def _probe(context, executor):
    """Return a node publishing packets (reliable) and commands, recording classifications."""
    from event_camera_msgs.msg import EventPacket
    from rclpy.node import Node
    from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy

    from topspark_ros.msg import Classification, TimestepCommand
    node = Node('probe', context=context)
    node.packets = node.create_publisher(EventPacket, 'events', QoSProfile(
        depth=100, reliability=ReliabilityPolicy.RELIABLE))
    node.commands = node.create_publisher(TimestepCommand, 'timestep', QoSProfile(
        depth=1, reliability=ReliabilityPolicy.RELIABLE,
        durability=DurabilityPolicy.TRANSIENT_LOCAL))
    node.results = []
    node.create_subscription(Classification, 'classification', node.results.append, 100)
    executor.add_node(node)
    return node


def test_event_mode_fails_clearly_without_the_message_package(ros, monkeypatch) -> None:
    """Configure fails (node unconfigured) and says to install event_camera_msgs."""
    from lifecycle_msgs.msg import State
    from rclpy.lifecycle import TransitionCallbackReturn
    context, executor, _ = ros
    # A None entry in sys.modules makes `import event_camera_msgs.msg` raise ImportError.
    monkeypatch.setitem(sys.modules, 'event_camera_msgs', None)
    monkeypatch.setitem(sys.modules, 'event_camera_msgs.msg', None)
    node = _classifier(context, executor)
    assert node.trigger_configure() == TransitionCallbackReturn.FAILURE
    assert node._state_machine.current_state[0] == State.PRIMARY_STATE_UNCONFIGURED
    assert "input_mode 'events'" in node._pipeline.last_error
    error = node._pipeline.last_error
    assert 'event-camera-msgs' in error and 'frames' in error
    assert node._pipeline.session is None


@needs_msgs
def test_event_mode_refuses_a_frames_only_model(ros) -> None:
    """A converted network trained on frames cannot take events: configure says so."""
    from rclpy.lifecycle import TransitionCallbackReturn
    context, executor, _ = ros
    node = _classifier(context, executor, model_path=str(CONVERTED))
    assert node.trigger_configure() == TransitionCallbackReturn.FAILURE
    assert 'frames' in node._pipeline.last_error and 'events' in node._pipeline.last_error


@needs_msgs
def test_time_windows_are_classified_with_the_last_packets_header(ros) -> None:
    """Each 100 ms window -> one Classification with the header of its last event's packet."""
    from rclpy.lifecycle import TransitionCallbackReturn

    from topspark_ros.msg import TimestepCommand
    context, executor, spin_until = ros
    node = _classifier(context, executor)
    probe = _probe(context, executor)
    assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
    assert node.trigger_activate() == TransitionCallbackReturn.SUCCESS
    probe.commands.publish(TimestepCommand(timesteps=12))
    assert spin_until(lambda: node._pipeline.commanded == 12)
    # 350 ms of events in 35 ms packets (windows end inside packets and between them).
    packets = _packets(_events(3000, 350_000), 35_000)
    assert spin_until(lambda: probe.packets.get_subscription_count() > 0)
    for msg, _ in packets:
        probe.packets.publish(msg)
    assert spin_until(lambda: len(probe.results) >= 3)
    # [300, 350) stays open while packets may come; once the stream has been quiet for the
    # window's length, it is closed and classified too (with the /diagnostics status, 1 s):
    # the last window of a stream that stops was never classified (a user review).
    assert spin_until(lambda: len(probe.results) >= 4, timeout_s=5.0)
    spin_until(lambda: False, timeout_s=0.3)
    assert len(probe.results) == 4
    assert probe.results[3].header.frame_id == f'pkt{len(packets) - 1}'
    for k, result in enumerate(probe.results[:3]):
        # the packet holding the last event of window k = [100k, 100k + 100) ms
        last = max(i for i, (_, chunk) in enumerate(packets)
                   if (chunk['t'] < (k + 1) * 100_000).any())
        assert result.header.frame_id == f'pkt{last}'
        assert result.header.stamp.sec == 100 + last
        assert result.timestep_budget == 12 and result.timesteps_used == 12
        assert len(result.scores) == 10 and result.energy_j > 0
        assert result.frames_dropped == 0
    stats = node._pipeline.stream.stats()
    assert stats['packets_received'] == len(packets) and stats['sequence_gaps'] == 0
    assert stats['events'] == 3000 and stats['windows'] == 4
    assert node.trigger_deactivate() == TransitionCallbackReturn.SUCCESS
    assert node.trigger_cleanup() == TransitionCallbackReturn.SUCCESS


@needs_msgs
def test_events_outside_the_region_of_interest_make_no_window(ros) -> None:
    """
    Events only outside ``roi``: no result, and the events are counted.

    One was published per window, from an empty input, identical every time (a review).
    """
    from rclpy.lifecycle import TransitionCallbackReturn
    context, executor, spin_until = ros
    node = _classifier(context, executor, model_path=str(EVENT_MODEL), roi=[0, 0, 17, 34])
    probe = _probe(context, executor)
    assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
    assert node.trigger_activate() == TransitionCallbackReturn.SUCCESS
    events = _events(2000, 350_000)
    outside = events[events['x'] >= 17]
    packets = _packets(outside, 35_000)
    assert spin_until(lambda: probe.packets.get_subscription_count() > 0)
    for msg, _ in packets:
        probe.packets.publish(msg)
    assert spin_until(lambda: node._pipeline.stream.counts['packets_received'] == len(packets))
    spin_until(lambda: False, timeout_s=1.5)  # past the quiet close of the open window
    assert probe.results == []
    assert node._pipeline.stream.counts['events_outside_roi'] == len(outside)


@needs_msgs
def test_count_windows_mono_encoding_and_a_bad_packet(ros) -> None:
    """Windows of 400 events from mono packets; an unknown encoding is counted, not fatal."""
    context, executor, spin_until = ros
    node = _classifier(context, executor, window_mode='count', window_events=400,
                       max_pending_windows=10)
    probe = _probe(context, executor)
    node.trigger_configure()
    node.trigger_activate()
    bad, _ = _packets(_events(10, 1000), 1000)[0]
    bad.encoding = 'yuv422'
    node._on_packet(bad)
    assert node._pipeline.counts['errors'] == 1
    assert 'yuv422' in node._pipeline.last_error and 'evt3' in node._pipeline.last_error
    for msg, _ in _packets(_events(2100, 200_000, seed=1), 20_000, encoding='mono'):
        node._on_packet(msg)
    assert spin_until(lambda: len(probe.results) >= 5)
    spin_until(lambda: False, timeout_s=0.3)
    assert len(probe.results) == 5  # 2100 // 400; the last 100 events wait
    assert node._pipeline.stream.stats()['encoding'] == 'mono'


def _active_with_diagnostics(context, executor) -> tuple:
    """Return an active event classifier and the /diagnostics arrays a probe records."""
    from diagnostic_msgs.msg import DiagnosticArray
    node = _classifier(context, executor, diagnostics_period_s=100.0)
    probe = _probe(context, executor)
    arrays = []
    probe.create_subscription(DiagnosticArray, '/diagnostics', arrays.append, 10)
    node.trigger_configure()
    node.trigger_activate()
    return node, arrays


def _two_statuses(node, arrays, spin_until) -> tuple:
    """Publish the classifier's status twice; return both and the first's values by key."""
    assert spin_until(lambda: node._diagnostics.publisher.get_subscription_count() > 0)
    node._diagnostics.publish_now()
    node._diagnostics.publish_now()
    assert spin_until(lambda: len(arrays) >= 2)
    first, second = (a.status[0] for a in arrays[:2])
    return first, second, {kv.key: kv.value for kv in first.values}


@needs_msgs
def test_a_best_effort_event_camera_to_a_reliable_subscription_is_warned_of(
        ros, capfd) -> None:
    """With events_reliability reliable, a best-effort driver's packets never came, silently."""
    from event_camera_msgs.msg import EventPacket
    from rclpy.lifecycle import TransitionCallbackReturn
    from rclpy.node import Node
    from rclpy.qos import qos_profile_sensor_data
    context, executor, spin_until = ros
    node = _classifier(context, executor)  # (events_reliability: reliable)
    assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
    assert node.trigger_activate() == TransitionCallbackReturn.SUCCESS
    camera = Node('event_camera', context=context)
    executor.add_node(camera)
    publisher = camera.create_publisher(EventPacket, 'events', qos_profile_sensor_data)
    seen = []
    assert spin_until(lambda: seen.append(capfd.readouterr().err) or
                      '/events: a publisher with incompatible QoS (RELIABILITY)' in ''.join(seen),
                      timeout_s=15.0), ''.join(seen)
    assert "set events_reliability to 'best_effort'" in ''.join(seen) and publisher


@needs_msgs
def test_lost_packets_show_in_diagnostics(ros) -> None:
    """A sequence gap: /diagnostics warns once with the count and carries the decoder stats."""
    from diagnostic_msgs.msg import DiagnosticStatus
    context, executor, spin_until = ros
    node, arrays = _active_with_diagnostics(context, executor)
    packets = _packets(_events(600, 60_000, seed=10), 10_000)
    for msg, _ in packets[:2] + packets[5:]:  # packets 2, 3 and 4 lost
        node._on_packet(msg)
    first, second, values = _two_statuses(node, arrays, spin_until)
    assert first.level == DiagnosticStatus.WARN and '3 event packets lost' in first.message
    assert values['sequence_gaps'] == '1' and values['packets_lost'] == '3'
    assert values['packets_received'] == '3' and values['input_mode'] == 'events'
    assert values['encoding'] == 'evt3' and values['sensor'] == '34x34'
    assert second.level == DiagnosticStatus.OK  # nothing lost since


@needs_msgs
def test_events_outside_the_declared_sensor_warn_in_diagnostics(ros) -> None:
    """
    Packets that declare a smaller sensor than their events: /diagnostics warns, once.

    The events outside were only counted: results went wrong with the status at OK and no
    word in the log (a review: a 346x260 camera declared as 240x180).
    """
    from diagnostic_msgs.msg import DiagnosticStatus
    context, executor, spin_until = ros
    node, arrays = _active_with_diagnostics(context, executor)
    for msg, _ in _packets(_events(600, 60_000, seed=11), 10_000):
        msg.width, msg.height = 20, 20  # the events cover 34 x 34
        node._on_packet(msg)
    first, second, values = _two_statuses(node, arrays, spin_until)
    outside = int(values['out_of_sensor'])
    assert outside > 200
    assert first.level == DiagnosticStatus.WARN
    assert f'{outside} events outside the 20x20 sensor the packets declare' in first.message
    assert second.level == DiagnosticStatus.OK  # none since


@needs_msgs
def test_duplicates_and_a_second_sensor_on_the_topic_show_in_diagnostics(ros) -> None:
    """
    Packets that come twice, and packets of another sensor between a camera's: WARN.

    Both restarted the event windows (all output lost with every packet repeated) while
    /diagnostics said OK 'classifying' (a user review). Duplicates are dropped and counted;
    restarts of the stream, more than one a status, are warned about.
    """
    import copy

    from diagnostic_msgs.msg import DiagnosticStatus
    context, executor, spin_until = ros
    node, arrays = _active_with_diagnostics(context, executor)
    packets = _packets(_events(600, 60_000, seed=11), 10_000)
    for msg, _ in packets:
        node._on_packet(msg)
        node._on_packet(msg)
    assert spin_until(lambda: node._diagnostics.publisher.get_subscription_count() > 0)
    node._diagnostics.publish_now()
    stray = copy.deepcopy(packets[0][0])
    stray.width, stray.height = 640, 480
    for msg, _ in packets[:3]:  # a second camera's packets between this one's
        node._on_packet(stray)
        node._on_packet(msg)
    node._diagnostics.publish_now()
    assert spin_until(lambda: len(arrays) >= 2)
    duplicates, sensors = (a.status[0] for a in arrays[:2])
    assert duplicates.level == DiagnosticStatus.WARN
    assert f'{len(packets)} duplicate event packets dropped' in duplicates.message
    assert {kv.key: kv.value for kv in duplicates.values}['windower_restarts'] == '0'
    assert sensors.level == DiagnosticStatus.WARN and '6 new sensors or encodings' in \
        sensors.message, sensors.message


@needs_msgs
def test_backlog_keeps_the_newest_windows_and_counts_drops(ros) -> None:
    """While the model is busy, packets are still decoded; the oldest windows are dropped."""
    context, executor, spin_until = ros
    # (no periodic status: it reads the drops since the last, and on a loaded CI machine one
    # came between them and the status read below, which then said OK)
    node = _classifier(context, executor, window_ms=20.0, max_pending_windows=2,
                       diagnostics_period_s=3600.0)
    probe = _probe(context, executor)
    node.trigger_configure()
    node.trigger_activate()
    packets = _packets(_events(2000, 200_000, seed=2), 10_000)
    node._pipeline.busy.acquire()  # a batch "in progress"
    try:
        start = time.monotonic()
        for msg, _ in packets:
            node._on_packet(msg)  # returns at once: decoding never waits for the model
        assert time.monotonic() - start < 5.0
        node._drain_windows()  # busy: does nothing
        assert node._pipeline.stream.pending == 2
    finally:
        node._pipeline.busy.release()
    made = node._pipeline.stream.counts['windows']
    assert made == 9  # windows [0, 20), ..., [160, 180) ms are complete; [180, 200) is open
    assert node._pipeline.stream.counts['windows_dropped'] == made - 2
    node._intake.worker.trigger()
    assert spin_until(lambda: len(probe.results) == 2)
    # the two newest windows, [140, 160) and [160, 180) ms: packets 15 and 17
    assert [r.header.frame_id for r in probe.results] == ['pkt15', 'pkt17']
    assert all(r.frames_dropped == made - 2 for r in probe.results)
    # The status warns: the model is behind the stream (it said OK; a review).
    level, message, _ = node._pipeline.status('active', True)
    assert level == 1 and f'{made - 2} windows dropped: the model is behind' in message
    assert node._pipeline.status('active', True)[0] == 0  # none since


@needs_msgs
def test_event_parameters_are_validated(ros) -> None:
    """Window, ROI and mode parameters: invalid sets refused with a reason, locked when active."""
    from rclpy.parameter import Parameter
    context, executor, _ = ros
    node = _classifier(context, executor)

    def refused(name, value, words):
        result = node.set_parameters([Parameter(name, value=value)])[0]
        assert not result.successful and words in result.reason, (name, result.reason)
    refused('input_mode', 'video', 'one of')
    refused('window_mode', 'size', 'one of')
    refused('window_ms', 0.0, 'range')
    refused('roi', [0, 0, 10], '4 elements')
    refused('roi', [0, -1, 10, 10], '>= 0')
    refused('max_pending_windows', 0, 'range')
    assert node.set_parameters([Parameter('roi', value=[2, 2, 30, 30])])[0].successful
    node.trigger_configure()
    node.trigger_activate()
    refused('window_ms', 50.0, 'unconfigured')
    described = node.describe_parameters(['roi', 'window_ms'])
    assert all(d.description for d in described)
    assert list(node.get_parameter('roi').value) == [2, 2, 30, 30]


@needs_msgs
def test_player_command_line(tmp_path) -> None:
    """`topspark event-player FILE --rate ...` plays and exits 0; a bad file exits 1, clearly."""
    from topspark_ros.core.events.files import EventRecording, write_event_file
    path = tmp_path / 'cli.npz'
    write_event_file(path, EventRecording(_events(400, 100_000, seed=7), *SENSOR))
    code = ('import sys; from topspark_ros.nodes.event_player import cli; '
            'sys.exit(cli(sys.argv[1:]))')
    done = subprocess.run([sys.executable, '-c', code, str(path), '--rate', '20',
                           '--packet-ms', '10', '--encoding', 'mono', '--ros-args', '-r',
                           'events:=cli_events'], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert 'published 10 packets' in done.stderr and 'mono' in done.stderr
    bad = subprocess.run([sys.executable, '-c', code, str(tmp_path / 'missing.npz')],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 1 and 'missing.npz' in bad.stderr, bad.stderr


def test_session_classifies_windows_like_frames_and_honours_the_roi() -> None:
    """classify_events: a batch = one call per window; an empty ROI gives no evidence; learn."""
    from topspark_ros.core.session import ClassifierSession
    session = ClassifierSession.from_checkpoint(str(MODEL))
    corner = _events(3000, 300_000, seed=8)
    corner['x'] %= 12  # every event in the left 12 columns
    windows = [corner, _events(3000, 300_000, seed=9)]
    batch = session.classify_events(windows, SENSOR, 24)
    single = [session.classify_events([w], SENSOR, 24)[0] for w in windows]
    for a, b in zip(batch, single):
        np.testing.assert_array_equal(a.scores, b.scores)
        assert (a.class_id, a.timesteps_used, a.spike_count) == \
            (b.class_id, b.timesteps_used, b.spike_count)
        assert a.timestep_budget == 24 and a.energy_j > 0 and a.class_name
    empty = session.classify_events([corner], SENSOR, 24, roi=(17, 0, 17, 34))[0]
    assert empty.class_id == -1 and empty.confidence == 0.0 and empty.class_name == ''
    assert empty.spike_count < batch[0].spike_count
    with pytest.raises(ValueError, match='timesteps'):
        session.classify_events(windows, SENSOR, 0)
    weights = np.array(session.model.weights, copy=True)
    session.learn_events(windows[:1], SENSOR, 16)  # on-line STDP from an event window
    assert np.abs(np.asarray(session.model.weights) - weights).sum() > 0


def test_event_stream_restarts_on_a_new_sensor_and_rejects_bad_settings() -> None:
    """Core EventStream: a size change re-makes the decoder and empties the backlog."""
    from topspark_ros.core.events.codecs import UnknownEncodingError
    from topspark_ros.core.events.codecs.evt3 import encode_evt3
    from topspark_ros.core.events.stream import EventStream
    with pytest.raises(ValueError, match='exactly one'):
        EventStream(window_us=1000, window_events=10)
    with pytest.raises(ValueError, match='max_backlog'):
        EventStream(window_events=10, max_backlog=0)
    stream = EventStream(window_events=100, max_backlog=4)
    events = _events(250, 10_000, seed=3)
    data = encode_evt3(events, width=34, height=34)
    assert stream.push(data, encoding='evt3', width=34, height=34, seq=0, tag='a') == 2
    with pytest.raises(UnknownEncodingError):
        stream.push(data, encoding='evt9', width=34, height=34, seq=1)
    assert stream.pending == 2  # an unknown encoding changes nothing
    assert stream.push(data, encoding='evt3', width=64, height=48, seq=0, tag='b') == 2
    assert stream.counts['decoder_restarts'] == 1
    windows = stream.pop(10)
    assert [w.sensor_size for w in windows] == [(64, 48)] * 2  # the 34 x 34 ones went
    assert [w.tag for w in windows] == ['b', 'b']
    assert [len(w.events) for w in windows] == [100, 100]


def _play(context, executor, spin_until, path, n_packets: int, **overrides) -> tuple:
    """Run an in-process player on ``path``; return ``(player, received messages)``."""
    from event_camera_msgs.msg import EventPacket
    from rclpy.node import Node
    from rclpy.parameter import Parameter
    from rclpy.qos import QoSProfile, ReliabilityPolicy

    from topspark_ros.nodes.event_player import EventPlayerNode
    probe = Node('probe', context=context)
    received = []
    probe.create_subscription(EventPacket, 'events', received.append, QoSProfile(
        depth=1000, reliability=ReliabilityPolicy.RELIABLE))
    executor.add_node(probe)
    params = {'file': str(path), 'reliability': 'reliable', 'depth': 1000,
              'wait_for_subscribers': 1, **overrides}
    player = EventPlayerNode(context=context, parameter_overrides=[
        Parameter(k, value=v) for k, v in params.items()])
    executor.add_node(player)
    assert spin_until(lambda: len(received) >= n_packets, timeout_s=30.0), len(received)
    return player, received


@needs_msgs
def test_player_publishes_the_file_with_event_stamps_and_seq(ros, tmp_path) -> None:
    """One pass, mono: the decoded packets are the file; seq 0..n-1; stamps = times / rate."""
    from topspark_ros.core.events.codecs import make_decoder
    from topspark_ros.core.events.files import EventRecording, write_event_file
    context, executor, spin_until = ros
    events = _events(3000, 400_000, seed=5)
    events['t'] += 12_345  # the file does not start at 0
    path = tmp_path / 'one.npz'
    write_event_file(path, EventRecording(events, *SENSOR))
    player, received = _play(context, executor, spin_until, path, 20, encoding='mono',
                             rate=4.0, packet_ms=20.0, frame_id='dvs_left')
    assert spin_until(lambda: player.finished, timeout_s=5.0)
    spin_until(lambda: False, timeout_s=0.3)
    assert player.published == len(received) == 20 == player.packets_per_pass
    assert [m.seq for m in received] == list(range(20))
    decoder = make_decoder('mono', *SENSOR)
    decoded = [decoder.decode(m.events, seq=m.seq, time_base=m.time_base) for m in received]
    np.testing.assert_array_equal(np.concatenate(decoded), events)
    assert all(m.encoding == 'mono' and m.header.frame_id == 'dvs_left'
               and (m.width, m.height) == SENSOR for m in received)
    stamps = np.array([m.header.stamp.sec * 10**9 + m.header.stamp.nanosec for m in received])
    firsts = np.array([int(d['t'][0]) for d in decoded])
    np.testing.assert_allclose(stamps - stamps[0], (firsts - firsts[0]) * 1e3 / 4.0, atol=2)


@needs_msgs
def test_player_keeps_1_ms_packets_at_real_time_without_the_executor(ros, tmp_path) -> None:
    """
    A thread of the player publishes, not the executor: 1 ms packets arrive at 1 000 a second.

    In the one-process event demo the executor ticked the player's 1 ms timer 100 to 400
    times a second, and the stream fell behind real time. Here nobody spins at all; a reader
    thread counts what arrives.
    """
    from event_camera_msgs.msg import EventPacket
    from rclpy.node import Node
    from rclpy.parameter import Parameter
    from rclpy.qos import QoSProfile, ReliabilityPolicy

    from topspark_ros.core.events.files import EventRecording, write_event_file
    from topspark_ros.nodes.event_player import EventPlayerNode
    from topspark_ros.nodes.intake import SubscriptionReader
    context, executor, spin_until = ros
    path = tmp_path / 'second.npz'
    write_event_file(path, EventRecording(_events(6000, 1_000_000, seed=8), *SENSOR))
    probe = Node('probe', context=context)
    received = []
    reader = SubscriptionReader(probe, EventPacket, 'events', QoSProfile(
        depth=1000, reliability=ReliabilityPolicy.RELIABLE),
        lambda msg: received.append((time.monotonic(), msg.seq)), name='probe_reader')
    params = {'file': str(path), 'reliability': 'reliable', 'depth': 1000,
              'wait_for_subscribers': 1, 'packet_ms': 1.0}
    player = EventPlayerNode(context=context, parameter_overrides=[
        Parameter(k, value=v) for k, v in params.items()])
    end = time.monotonic() + 30.0
    while time.monotonic() < end and not (player.finished and len(received) >= 990):
        time.sleep(0.05)
    time.sleep(0.2)
    reader.close()
    n = player.packets_per_pass
    assert player.finished and n > 990 and player.published == n
    assert [seq for _, seq in received] == list(range(n))
    span_s = received[-1][0] - received[0][0]
    assert 0.9 < span_s < 1.5, span_s  # real time: 1 s of sensor time, not 2.5 to 10
    player.destroy_node()
    probe.destroy_node()


@needs_msgs
def test_player_reads_a_raw_file_as_it_plays_and_stitches_a_clock_reset(
        ros, tmp_path, monkeypatch) -> None:
    """
    A .raw file is read a piece at a time as it plays; a reset plays on in time order.

    The player read a whole recording before its first packet (a 1 GB .raw: about 6 GB of
    events) and sorted a recording whose clock reset, overlaying its two sessions.
    """
    from topspark_ros.core.events.codecs import make_decoder
    from topspark_ros.core.events.codecs.evt3 import encode_evt3
    from topspark_ros.core.events.files import open_events
    from topspark_ros.core.events.packets import PacketCutter
    from topspark_ros.nodes import event_player
    context, executor, spin_until = ros
    first = _events(3000, 300_000, seed=11)
    second = _events(1000, 100_000, seed=12)  # the sensor restarted: its clock from 0 again
    path = tmp_path / 'reset.raw'
    path.write_bytes(b'% evt 3.0\n% format EVT3;height=34;width=34\n% end\n'
                     + encode_evt3(first, width=34, height=34)
                     + encode_evt3(second, width=34, height=34))
    expected = list(PacketCutter(10_000).packets_of(open_events(path)))  # cut at the reset
    monkeypatch.setattr(event_player, 'RAW_PIECE_BYTES', 512)  # many pieces, as a long file
    player, received = _play(context, executor, spin_until, path, len(expected), rate=10.0,
                             packet_ms=10.0)
    assert spin_until(lambda: player.finished, timeout_s=5.0)
    assert player.packets_per_pass == player.published == len(received) == len(expected)
    decoder = make_decoder('evt3', *SENSOR)
    decoded = [decoder.decode(m.events, seq=m.seq) for m in received]
    for got, (_, want) in zip(decoded, expected):
        np.testing.assert_array_equal(got[['x', 'y', 'p']], want[['x', 'y', 'p']])
    t = np.concatenate([d['t'] for d in decoded])
    assert np.all(np.diff(t) >= 0) and len(t) > 3000 + 900  # both sessions, in time order
    assert decoder.stats.time_backwards == 0


@needs_msgs
def test_player_loops_with_continuing_time_and_seq(ros, tmp_path, monkeypatch) -> None:
    """
    Looping evt3: passes follow each other in sensor time; the decoder sees no problem.

    The .npz file is read a piece at a time as it plays (it was read whole), each pass anew.
    """
    from topspark_ros.core.events.codecs import make_decoder
    from topspark_ros.core.events.files import EventRecording, write_event_file
    from topspark_ros.nodes import event_player
    context, executor, spin_until = ros
    monkeypatch.setattr(event_player, 'RAW_PIECE_BYTES', 13 * 37)  # 37 events a piece
    events = _events(500, 50_000, seed=6)
    path = tmp_path / 'loop.npz'
    write_event_file(path, EventRecording(events, *SENSOR))
    player, received = _play(context, executor, spin_until, path, 12, rate=20.0,
                             packet_ms=10.0, loop=True, loop_gap_ms=5.0)
    assert not player.finished
    decoder = make_decoder('evt3', *SENSOR)
    decoded = [decoder.decode(m.events, seq=m.seq) for m in received[:10]]
    assert [m.seq for m in received[:10]] == list(range(10))
    stats = decoder.stats
    assert stats.time_backwards == stats.sequence_gaps == stats.no_state_events == 0
    first, second = np.concatenate(decoded[:5]), np.concatenate(decoded[5:10])
    pass_us = 50_000 + 5_000  # five 10 ms packets, then the gap
    np.testing.assert_array_equal(first, events)
    np.testing.assert_array_equal(second['t'] - pass_us, events['t'])
    np.testing.assert_array_equal(second[['x', 'y', 'p']], events[['x', 'y', 'p']])


@contextlib.contextmanager
def _process(log: pathlib.Path, module: str, *args: str):
    """Run ``python -m topspark_ros.nodes.<module> args...`` (output to ``log``); stop it."""
    with open(log, 'w') as out:
        proc = subprocess.Popen([sys.executable, '-m', f'topspark_ros.nodes.{module}', *args],
                                stdout=out, stderr=subprocess.STDOUT, text=True)
        try:
            yield proc
        finally:
            processes.stop(proc)


@needs_msgs
def test_player_and_classifier_processes_over_dds(ros, tmp_path) -> None:
    """event_player publishes a file; the classifier process classifies it; both over DDS."""
    from rclpy.node import Node

    from topspark_ros.core.events.files import EventRecording, write_event_file
    from topspark_ros.msg import Classification
    context, executor, spin_until = ros
    path = tmp_path / 'recording.npz'
    write_event_file(path, EventRecording(_events(6000, 600_000, seed=4), *SENSOR, label=3))
    probe = Node('probe', context=context)
    results = []
    probe.create_subscription(Classification, 'replay/classification', results.append, 50)
    executor.add_node(probe)
    # Topics of their own: the player waits for a subscription, this test's alone.
    classifier_args = ['--autostart', '--ros-args', '-r', 'events:=replay/events',
                       '-r', 'classification:=replay/classification', '-p', 'input_mode:=events',
                       '-p', f'model_path:={EVENT_MODEL}', '-p', "profile_path:=''",
                       '-p', 'default_timesteps:=20', '-p', 'window_ms:=100.0',
                       '-p', 'events_reliability:=reliable', '-p', 'max_pending_windows:=10']
    player_args = ['--ros-args', '-r', 'events:=replay/events', '-p', f'file:={path}',
                   '-p', 'rate:=2.0', '-p', 'packet_ms:=10.0', '-p', 'wait_for_subscribers:=1',
                   '-p', 'reliability:=reliable', '-p', 'frame_id:=dvs']
    logs = {name: tmp_path / f'{name}.log' for name in ('classifier', 'event_player')}

    def output() -> str:
        return '\n'.join(f'--- {name}:\n{log.read_text()}' for name, log in logs.items())
    with _process(logs['classifier'], 'classifier', *classifier_args) as classifier:
        # This test's subscription matched to the classifier's publisher first: the player
        # starts once the classifier subscribes, and its 0.3 s of windows were published
        # before this process had discovered the classifier on a loaded machine (4 of 6
        # received in one clean-clone run).
        assert spin_until(lambda: probe.count_publishers('replay/classification') >= 1,
                          timeout_s=60.0), 'no classifier publisher\n' + output()
        with _process(logs['event_player'], 'event_player', *player_args) as player:
            # 600 ms at 2x: the player is done 0.3 s after the classifier subscribed.
            assert spin_until(lambda: player.poll() is not None, timeout_s=40.0), \
                'the player did not finish\n' + output()
            assert player.returncode == 0, output()
            assert 'published 60 packets' in logs['event_player'].read_text()
        assert spin_until(lambda: len(results) >= 6, timeout_s=15.0), \
            f'{len(results)} classifications from the classifier process\n' + output()
        spin_until(lambda: False, timeout_s=0.3)
        assert classifier.poll() is None, output()
    assert len(results) == 6  # windows [0, 100) ... [500, 600) ms, the last once it is quiet
    stamps = [r.header.stamp.sec * 10**9 + r.header.stamp.nanosec for r in results]
    assert stamps == sorted(stamps) and len(set(stamps)) == 6
    # stamps replay event times at 2x: windows end 50 ms of wall time apart (last packets)
    assert all(30e6 < b - a < 70e6 for a, b in zip(stamps, stamps[1:])), np.diff(stamps)
    assert all(r.header.frame_id == 'dvs' and r.timestep_budget == 20 for r in results)


@needs_msgs
def test_the_player_readies_its_encoder_before_the_first_packet(ros, tmp_path,
                                                                monkeypatch) -> None:
    """The first encode at the first tick loaded the compiled encoder: packets came late."""
    from rclpy.parameter import Parameter

    from topspark_ros.core.events import codecs
    from topspark_ros.core.events.files import EventRecording, write_event_file
    from topspark_ros.nodes.event_player import EventPlayerNode
    context, executor, _ = ros
    path = tmp_path / 'rec.npz'
    write_event_file(path, EventRecording(_events(400, 100_000, seed=5), *SENSOR))
    encodes = []
    real = codecs.StreamEncoder.encode
    monkeypatch.setattr(codecs.StreamEncoder, 'encode',
                        lambda self, events: encodes.append(len(events)) or real(self, events))
    player = EventPlayerNode(context=context, parameter_overrides=[
        Parameter('file', value=str(path)), Parameter('wait_for_subscribers', value=1)])
    try:
        assert encodes and player.published == 0  # encoded once, nothing published yet
    finally:
        player.destroy_node()


@needs_msgs
def test_a_player_on_sim_time_waits_for_the_clock(ros, tmp_path) -> None:
    """
    Under use_sim_time the player starts with the first /clock, stamped in its time.

    It started at once on a clock reading 0: its packets were stamped from 0 (the first one,
    exactly 0, counted as unstamped), and when /clock came at 1000 s every packet was overdue
    and the stream went out 3.5 times too fast (a review of sim time).
    """
    from event_camera_msgs.msg import EventPacket
    from rclpy.node import Node
    from rclpy.parameter import Parameter
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from rclpy.time import Time
    from rosgraph_msgs.msg import Clock

    from topspark_ros.core.events.files import EventRecording, write_event_file
    from topspark_ros.nodes.event_player import EventPlayerNode
    context, executor, spin_until = ros
    path = tmp_path / 'sim.npz'
    write_event_file(path, EventRecording(_events(3000, 400_000, seed=6), *SENSOR))
    probe = Node('probe', context=context)
    received = []
    probe.create_subscription(EventPacket, 'events', received.append, QoSProfile(
        depth=1000, reliability=ReliabilityPolicy.RELIABLE))
    clock = probe.create_publisher(Clock, '/clock', 10)
    executor.add_node(probe)
    player = EventPlayerNode(context=context, parameter_overrides=[
        Parameter('file', value=str(path)), Parameter('reliability', value='reliable'),
        Parameter('depth', value=1000), Parameter('wait_for_subscribers', value=1),
        Parameter('packet_ms', value=20.0), Parameter('use_sim_time', value=True)])
    executor.add_node(player)
    spin_until(lambda: False, timeout_s=1.0)
    assert received == []  # no /clock yet: nothing played
    start_ns, wall = 1000 * 10**9, time.monotonic()
    while time.monotonic() - wall < 3.0 and len(received) < 20:
        elapsed_ns = round((time.monotonic() - wall) * 1e9)
        clock.publish(Clock(clock=Time(nanoseconds=start_ns + elapsed_ns).to_msg()))
        spin_until(lambda: False, timeout_s=0.005)
        if time.monotonic() - wall < 0.2:
            assert len(received) <= 12  # at the clock's rate: 20 ms packets, not a burst
    assert spin_until(lambda: len(received) == player.packets_per_pass == 20, timeout_s=5.0)
    stamps = [m.header.stamp.sec + m.header.stamp.nanosec * 1e-9 for m in received]
    assert 1000.0 <= stamps[0] < 1000.2 and stamps == sorted(stamps)
    player.destroy_node()
    probe.destroy_node()


@needs_msgs
def test_player_plays_an_older_raw_file_at_the_sensor_size_given(ros, tmp_path) -> None:
    """A .raw header without the sensor size: the ``sensor`` parameter gives it (a review)."""
    from rclpy.parameter import Parameter

    from topspark_ros.core.events.files import EventRecording, write_event_file
    from topspark_ros.nodes.event_player import EventPlayerNode
    context, executor, spin_until = ros
    path = tmp_path / 'old.raw'
    write_event_file(path, EventRecording(_events(500, 100_000, seed=2), 34, 34))
    path.write_bytes(b'% evt 3.0\n% end\n' + path.read_bytes().split(b'% end\n', 1)[1])
    with pytest.raises(ValueError, match='gives no sensor size'):
        EventPlayerNode(context=context, parameter_overrides=[Parameter('file', value=str(path))])
    player, received = _play(context, executor, spin_until, path, 10, sensor='34x34')
    assert (player.width, player.height) == (34, 34)
    assert {(m.width, m.height) for m in received} == {(34, 34)}
