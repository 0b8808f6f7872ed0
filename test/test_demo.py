"""
The README's main jobs, `topspark demo` and `topspark demo --events`, in a short form.

Each runs and its summary is right; for events also the player's data-set mode underneath
(samples one per window, labels for scoring) and the demo's parameter file.
"""

import array
import pathlib
import re
import subprocess
import sys

import numpy as np
import pytest
import yaml

pytestmark = pytest.mark.ros
ROOT = pathlib.Path(__file__).resolve().parent.parent

# A battery small enough to run down within the short run, so the controller must step T down.
FAST_DRAIN = """
/**/battery_simulator:
  ros__parameters:
    capacity_j: 0.0002
    initial_fraction: 0.4
/**/image_player:
  ros__parameters:
    rate_hz: 20.0
/**/timestep_controller:
  ros__parameters:
    heartbeat_period_s: 0.5
"""


def test_short_demo_runs_and_reports(tmp_path) -> None:
    """A 15 s demo: classifications scored, T steps down as the battery falls, plot written."""
    demo_params = pathlib.Path(__file__).resolve().parent.parent / 'config' / 'demo.yaml'
    override = tmp_path / 'fast.yaml'
    override.write_text(FAST_DRAIN)
    plot = tmp_path / 'demo.png'
    result = subprocess.run(
        [sys.executable, '-m', 'topspark_ros', 'demo', '--duration-s', '15', '--quiet',
         '--plot', str(plot), '--params-file', str(demo_params), '--params-file',
         str(override)],
        capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    n = int(re.search(r'classifications\s+(\d+) in', out).group(1))
    accuracy = float(re.search(r'accuracy\s+([\d.]+)% of (\d+) scored', out).group(1)) / 100
    mean_t, final_t = map(int, map(float, re.search(
        r'timesteps T\s+mean ([\d.]+), final (\d+)', out).groups()))
    start, end = map(float, re.search(r'battery\s+([\d.]+)% -> ([\d.]+)%', out).groups())
    assert n >= 50, out
    assert accuracy > 0.5, f'accuracy {accuracy} is not far above chance (0.1):\n{out}'
    assert end < start, out
    assert final_t < mean_t or final_t <= 32, f'T did not step down:\n{out}'
    assert re.search(r'latency\s+p50 [\d.]+ ms, p99 [\d.]+ ms', out)
    assert re.search(r'energy/inference\s+[\d.]+ uJ \(estimate, cmos45_fp32: arithmetic\): '
                     r'[\d.]+% less than at the largest profiled T', out), out
    assert plot.exists() and plot.stat().st_size > 10_000


# The event demo, shortened: a battery that runs low within seconds.
EVENTS_FAST_DRAIN = """
/**/battery_simulator:
  ros__parameters:
    capacity_j: 0.0003
    initial_fraction: 0.35
/**/timestep_controller:
  ros__parameters:
    heartbeat_period_s: 0.5
"""


def _summary_figures(out: str) -> dict:
    """Return the figures of a demo's summary (asserting each line is there)."""
    n, seconds = re.search(r'classifications\s+(\d+) in ([\d.]+) s', out).groups()
    accuracy, scored = re.search(r'accuracy\s+([\d.]+)% of (\d+) scored', out).groups()
    start, end = re.search(r'battery\s+([\d.]+)% -> ([\d.]+)%', out).groups()
    return {'n': int(n), 'seconds': float(seconds), 'accuracy': float(accuracy) / 100,
            'scored': int(scored), 'battery': (float(start), float(end))}


def test_short_event_demo_runs_and_reports(tmp_path) -> None:
    """
    A 12 s event demo: 1 ms evt3 packets, windows classified and scored, packets accounted.

    Received + lost (the classifier's counters) must add up to what the player sent, and the
    player must have sent packets of 1 ms in real time (about 900 a second: 1 ms slices
    without events send nothing).
    """
    override = tmp_path / 'fast.yaml'
    override.write_text(EVENTS_FAST_DRAIN)
    plot = tmp_path / 'demo_events.png'
    duration_s = 12.0
    result = subprocess.run(
        [sys.executable, '-m', 'topspark_ros', 'demo', '--events', '--duration-s',
         str(duration_s), '--quiet', '--plot', str(plot), '--params-file',
         str(ROOT / 'config' / 'demo_events.yaml'), '--params-file', str(override)],
        capture_output=True, text=True, timeout=180)
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    figures = _summary_figures(out)
    # One window per 300 ms sample: about 40 in 12 s once running; 18 on a heavily loaded
    # machine and 9 on a fresh clone, whose first run compiles the numba kernels (a 2 s stall
    # of the one demo process). What matters here: windows flow, and every one is scored.
    assert figures['n'] >= 3 and figures['scored'] == figures['n'], out
    assert figures['accuracy'] > 0.3, f'accuracy {figures["accuracy"]} near chance (0.1):\n{out}'
    start, end = figures['battery']
    assert end < start, out
    assert re.search(r'energy/inference\s+[\d.]+ uJ \(estimate, cmos45_fp32: arithmetic\): '
                     r'[\d.]+% less than at the largest profiled T', out), out
    packets = re.search(r'packets\s+sent (\d+), received (\d+), lost (\d+) \(sequence gaps\)',
                        out)
    assert packets, out
    sent, received, lost = map(int, packets.groups())
    assert received == sent - lost and sent > 0, out
    # 1 ms packets, as the player says, in real time: a thread of its own publishes them on
    # schedule (when the executor of the one demo process did, between the other nodes'
    # callbacks, it sent 100 to 400 a second here, 900 once). A stall (a first run compiles
    # numba kernels) is caught up at up to 4 packets per millisecond.
    assert re.search(r'\[event_player\]: playing .* packets of 1(\.0)? ms',
                     out + result.stderr), out + result.stderr
    lag = re.search(r'the player ([\d.]+) s behind real time at the end', out)
    assert lag and float(lag.group(1)) < 0.5, out
    assert plot.exists() and plot.stat().st_size > 10_000


def test_demo_events_config_sets_only_declared_parameters() -> None:
    """config/demo_events.yaml sets only parameters that exist, with valid values."""
    from topspark_ros.nodes import (battery_simulator, classifier, energy_monitor,
                                    event_player, timestep_controller)
    declared = {'classifier': classifier.PARAMS, 'timestep_controller':
                timestep_controller.PARAMS, 'energy_monitor': energy_monitor.PARAMS,
                'event_player': event_player.PARAMS,
                'battery_simulator': battery_simulator.PARAMS}
    config = yaml.safe_load((ROOT / 'config' / 'demo_events.yaml').read_text())
    assert set(config) == {f'/**/{name}' for name in declared}
    for key, section in config.items():
        params = {p.name: p for p in declared[key.removeprefix('/**/')]}
        for name, value in section['ros__parameters'].items():
            assert name in params, f'{key}.{name} is not a parameter'
            assert params[name].check(value) is None, (key, name, params[name].check(value))
    player = config['/**/event_player']['ros__parameters']
    window = config['/**/classifier']['ros__parameters']
    assert player['packet_ms'] == 1.0 and player['encoding'] == 'evt3'
    assert window['window_ms'] == player['sample_ms']  # one window per sample


def _dataset(counts, labels, span_us: int = 40_000, first_us=None):
    """Return an EventDataset of ``len(counts)`` samples on 34 x 34, sample times < span."""
    from topspark_ros.core.events import empty_events
    from topspark_ros.core.data.synthetic_events import EventDataset
    rng = np.random.default_rng(7)
    parts = []
    for i, n in enumerate(counts):
        events = empty_events(n)
        events['x'], events['y'] = rng.integers(0, 34, n), rng.integers(0, 34, n)
        events['p'] = rng.integers(0, 2, n)
        low = 0 if first_us is None else first_us[i]
        events['t'] = np.sort(rng.integers(low, span_us, n))
        parts.append(events)
    offsets = np.concatenate(([0], np.cumsum(counts))).astype(np.int64)
    return EventDataset(events=np.concatenate(parts), offsets=offsets,
                        labels=np.asarray(labels, np.uint8), width=34, height=34)


def test_dataset_stream_gives_each_sample_its_own_slot() -> None:
    """Sample i starts at i S exactly (its first event), stays below (i + 1) S, in order."""
    from topspark_ros.nodes.event_player import dataset_stream
    data = _dataset([30, 0, 25, 40], [3, 1, 4, 1], first_us=[500, 0, 7_000, 12_345])
    stream = dataset_stream(data, 50_000)
    assert len(stream) == 95
    np.testing.assert_array_equal(stream[['x', 'y', 'p']], data.events[['x', 'y', 'p']])
    for i, (a, b) in enumerate(zip(data.offsets[:-1], data.offsets[1:])):
        t, original = stream['t'][a:b], data.events['t'][a:b]
        if b > a:
            assert t[0] == i * 50_000 and t[-1] < (i + 1) * 50_000
            np.testing.assert_array_equal(t - t[0], original - original[0])
    assert np.all(np.diff(stream['t']) >= 0)
    assert len(dataset_stream(data, 50_000, max_samples=1)) == 30
    with pytest.raises(ValueError, match=r'sample 0 lasts 3\d{4} us, .* raise sample_ms'):
        dataset_stream(data, 20_000)


def test_event_player_plays_a_data_set_with_labels_for_scoring(ros, tmp_path) -> None:
    """Data-set mode in-process: samples one after another, every packet's label known."""
    from event_camera_msgs.msg import EventPacket
    from rclpy.node import Node
    from rclpy.parameter import Parameter
    from rclpy.qos import QoSProfile, ReliabilityPolicy

    from topspark_ros.core.events.codecs import make_decoder
    from topspark_ros.core.data.synthetic_events import save_event_split
    from topspark_ros.nodes.event_player import dataset_stream, EventPlayerNode
    context, executor, spin_until = ros
    data = _dataset([60, 45, 80], [7, 2, 9])
    save_event_split(tmp_path / 'test.npz', data)
    probe = Node('probe', context=context)
    received = []
    probe.create_subscription(EventPacket, 'events', received.append, QoSProfile(
        depth=1000, reliability=ReliabilityPolicy.RELIABLE))
    executor.add_node(probe)
    params = {'dataset': 'nmnist-synth', 'data_dir': str(tmp_path), 'sample_ms': 50.0,
              'packet_ms': 5.0, 'rate': 10.0, 'reliability': 'reliable', 'depth': 1000,
              'wait_for_subscribers': 1}
    player = EventPlayerNode(context=context, parameter_overrides=[
        Parameter(k, value=v) for k, v in params.items()])
    executor.add_node(player)
    assert spin_until(lambda: player.finished, timeout_s=20.0)
    # Reliable: every packet arrives, however loaded the machine (a first run compiles).
    spin_until(lambda: len(received) >= player.published, timeout_s=20.0)
    spin_until(lambda: False, timeout_s=0.3)  # and no more than were published
    assert player.samples_per_pass == 3 and player.class_names[7] == '7'
    assert len(received) == player.published == player.packets_per_pass
    decoder = make_decoder('evt3', 34, 34)
    decoded = [decoder.decode(array.array('B', m.events), seq=m.seq) for m in received]
    np.testing.assert_array_equal(np.concatenate(decoded), dataset_stream(data, 50_000))
    labels = [player.label_for(m.header.stamp) for m in received]
    expected = [int(data.labels[int(d['t'][0]) // 50_000]) for d in decoded]
    assert labels == expected and set(labels) == {7, 2, 9}
    stranger = received[0].header.stamp
    stranger.nanosec = (stranger.nanosec + 1) % 1_000_000_000
    assert player.label_for(stranger) == -1


def test_a_demo_params_file_goes_over_the_demos_own() -> None:
    """One value changed with --params-file lost the whole demo.yaml (battery, rate, crop)."""
    from topspark_ros.nodes.bringup import demo_params_files
    frames = [pathlib.Path(f).name for f in demo_params_files(False, ['my.yaml'])]
    assert frames == ['topspark.yaml', 'demo.yaml', 'my.yaml']
    events = [pathlib.Path(f).name for f in demo_params_files(True, [])]
    assert events == ['topspark.yaml', 'demo_events.yaml']


def test_the_demo_sets_energy_against_a_baseline_of_the_same_preset(ros, capsys) -> None:
    """
    The summary set a cmos45_fp32 energy against a loihi baseline (99.8 % for 82-96 %).

    Once the energy monitor has published, every classification (those before included) is
    priced from its counts under the monitor's preset, which its baseline is of (a review).
    """
    from rclpy.node import Node

    from topspark_ros.core.energy import EnergyModel, OpCounts
    from topspark_ros.msg import Classification, EnergyEstimate
    from topspark_ros.nodes.demo_recorder import DemoRecorderNode

    class Unlabelled:  # the player's part the recorder asks: no label for any stamp
        def label_for(self, stamp) -> int:
            return -1
    context, executor, spin_until = ros
    recorder = DemoRecorderNode(Unlabelled(), live=False, context=context)
    probe = Node('demo_probe', context=context)
    for node in (recorder, probe):
        executor.add_node(node)
    results = probe.create_publisher(Classification, 'classification', 50)
    energy = probe.create_publisher(EnergyEstimate, 'energy', 10)
    ops = OpCounts(accumulates=1000.0, neuron_updates=200.0)
    result = Classification(class_id=1, timesteps_used=8, accumulates=1000, neuron_updates=200,
                            energy_preset='cmos45_fp32',
                            energy_j=EnergyModel('cmos45_fp32').estimate(ops).compute_j)
    assert spin_until(lambda: recorder.board.samples or results.publish(result))
    loihi = EnergyModel('loihi').estimate(ops).compute_j
    baseline = 10 * loihi
    assert spin_until(lambda: recorder.board.baseline_energy_j or energy.publish(EnergyEstimate(
        energy_preset='loihi', baseline_energy_per_inference_j=baseline)))
    assert spin_until(lambda: len(recorder.board.samples) >= 3 or results.publish(result))
    summary = recorder.finish()  # (prints the summary)
    assert summary.energy_per_inference_j == pytest.approx(loihi)  # all of them, under loihi
    assert summary.energy_saving == pytest.approx(0.9)
    assert re.search(r'energy/inference\s+[\d.]+ uJ \(estimate, loihi: arithmetic, '
                     r'weight_memory, state_memory\): 90.0% less than at the largest profiled T',
                     capsys.readouterr().out)
