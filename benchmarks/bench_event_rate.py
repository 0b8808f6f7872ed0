"""
Whether the classifier's event mode takes what an event camera's driver publishes.

metavision_driver publishes about one ``event_camera_msgs/EventPacket`` per millisecond. This
benchmark drives a classifier process (``python -m topspark_ros.nodes.classifier --autostart
--executor KIND``, event mode, the shipped event model) with a publisher process that sends
prepared evt3 packets of ``--packet-us`` of sensor time (1 ms: 1 000 packets/s) in real time, at
a sensor rate of ``--mevps`` million events per second, and reports for each executor and rate:

- packets sent (publisher), received and lost (the classifier's own counters from
  ``/diagnostics``: ``packets_received``, ``packets_lost`` from seq gaps), and ``sent -
  received`` (also counts packets lost at the very start or end, which no seq gap shows);
- windows made, dropped (backlog full) and classified (``Classification`` messages received
  here), against the windows the stream holds;
- CPU of each process over the stream (user + system, all threads, from
  ``/proc/<pid>/stat``), as % of one core; for the classifier also the classification time
  (the sum of the ``latency_ms`` its results carry: encoding + inference) and the CPU beyond
  it (process CPU - classification time, as % of one core);
- the classifier's peak resident memory (``VmHWM``);
- the machine's load average before and after.

``--load-procs K`` runs K busy loops (plain Python processes, one core each) beside every
case: the condition of a robot whose cores other jobs share, reproducibly (on these 2 cores,
K = 2 leaves the classifier and the publisher half the machine).

The stream: events spread evenly in time (``t``), uniformly at random over the sensor
(``--sensor``, default the 34x34 of the N-MNIST-like set), random polarity: lone events, the
word mix that is hardest on the decoder (an EVT_ADDR_Y and an EVT_ADDR_X word per event, an
EVT_TIME_LOW per microsecond). One pass of 1.024 s (250 x 4096 us) is encoded once, each
packet self-contained (it restates its time high); later passes reuse the words with their
EVT_TIME_HIGH values moved on by the pass length, so sensor time and ``seq`` keep increasing
as a live stream's do, and the publisher spends its time publishing, not encoding.

Usage (inside the project environment)::

    dev/in_env.sh python benchmarks/bench_event_rate.py [--executors multi,single,events]
        [--mevps 1,5,20] [--packet-us 1000] [--duration-s 10] [--repeat 1] [--load-procs K]
        [--events-depth N] [--events-batch-ms MS] [--json FILE]

Progress goes to stderr, the Markdown report to stdout.
"""

import argparse
import array
import contextlib
import datetime
import importlib
import json
import os
import pathlib
import platform
import shlex
import subprocess
import sys
import time

import numpy as np
from topspark_ros.core.topspark.sweep import cpu_model

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
_overhead = importlib.import_module('bench_ros_overhead')  # machine facts, CPU, processes
_git_state, _load, _log = _overhead._git_state, _overhead._load, _overhead._log
_machine_cpu, _proc_cpu_s = _overhead._machine_cpu, _overhead._proc_cpu_s
_set_ros_environment, _stop = _overhead._set_ros_environment, _overhead._stop

ROOT = pathlib.Path(__file__).resolve().parent.parent
MODEL = ROOT / 'models' / 'converted_nmnist_synth_vgg.json'
PASS_US = 250 * 4096  # 1.024 s: a whole number of evt3 time-high steps (4096 us)
TOPIC = 'bench_events'


# The publisher (a child process) --------------------------------------------------------------
def make_pass(mevps: float, packet_us: int, width: int, height: int, seed: int = 0) -> list:
    """
    Return one pass of evt3 packets: a list of ``(uint16 words, indices of EVT_TIME_HIGH)``.

    ``mevps`` million events per second of sensor time, spread evenly over the pass, at
    uniformly random pixels and polarities; one self-contained packet per ``packet_us``.
    """
    from topspark_ros.core.events import empty_events
    from topspark_ros.core.events.codecs import make_encoder
    from topspark_ros.core.events.codecs.evt3 import EVT3_TIME_HIGH
    if PASS_US % packet_us:
        raise ValueError(f'packet_us must divide the pass of {PASS_US} us, got {packet_us}')
    n = int(round(mevps * PASS_US))
    rng = np.random.default_rng(seed)
    events = empty_events(n)
    events['x'] = rng.integers(0, width, n)
    events['y'] = rng.integers(0, height, n)
    events['p'] = rng.integers(0, 2, n)
    events['t'] = (np.arange(n, dtype=np.int64) * PASS_US) // max(n, 1)
    encoder = make_encoder('evt3', width, height)
    bounds = np.searchsorted(events['t'], np.arange(0, PASS_US + 1, packet_us))
    packets = []
    for start, stop in zip(bounds[:-1], bounds[1:]):
        words = np.frombuffer(encoder.encode(events[start:stop]).data, '<u2').copy()
        packets.append((words, np.flatnonzero((words >> 12) == EVT3_TIME_HIGH)))
    return packets


def publish(args) -> int:
    """Child process: publish the stream in real time; print JSON lines (start, result)."""
    import rclpy
    from event_camera_msgs.msg import EventPacket
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.node import Node
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    width, height = args.sensor
    packets = make_pass(args.mevps, args.packet_us, width, height)
    rclpy.init()
    node = Node('bench_event_publisher')
    pub = node.create_publisher(EventPacket, TOPIC, QoSProfile(
        depth=10, reliability=ReliabilityPolicy.BEST_EFFORT))
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    end = time.monotonic() + 120.0
    while pub.get_subscription_count() < 1 and time.monotonic() < end:
        executor.spin_once(timeout_sec=0.05)
    time.sleep(args.settle_s)  # the classifier's reader is running once it is subscribed
    msg = EventPacket(width=width, height=height, encoding='evt3', is_bigendian=False)
    msg.header.frame_id = 'bench'
    n_total = int(round(args.duration_s * 1e6 / args.packet_us))
    period_s = args.packet_us * 1e-6
    steps_per_pass = PASS_US // 4096
    cpu0, t0 = time.process_time(), time.monotonic()
    print(json.dumps({'started': time.time()}), flush=True)
    late = 0
    for k in range(n_total):
        due = t0 + (k + 1) * period_s
        wait = due - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        elif wait < -period_s:
            late += 1
        words, highs = packets[k % len(packets)]
        shift = (k // len(packets)) * steps_per_pass
        if shift and len(highs):
            words = words.copy()
            words[highs] = (words[highs] & 0xF000) | ((words[highs] + shift) & 0x0FFF)
        msg.seq = k
        msg.header.stamp = node.get_clock().now().to_msg()
        msg.events = array.array('B', words.tobytes())
        pub.publish(msg)
    wall = time.monotonic() - t0
    cpu = time.process_time() - cpu0
    print(json.dumps({'sent': n_total, 'wall_s': wall, 'cpu_s': cpu, 'late': late,
                      'bytes_per_packet': float(np.mean([w.size * 2 for w, _ in packets])),
                      'events_per_packet': args.mevps * args.packet_us}), flush=True)
    node.destroy_node()
    rclpy.try_shutdown()
    return 0


# The harness ----------------------------------------------------------------------------------
class Probe:
    """Classifications and the classifier's last ``/diagnostics`` values."""

    def __init__(self) -> None:
        """Subscribe ``classification`` (reliable, depth 1000) and ``/diagnostics``."""
        from diagnostic_msgs.msg import DiagnosticArray
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.node import Node

        from topspark_ros.msg import Classification
        self.node = Node('bench_event_rate_probe')
        self.executor = SingleThreadedExecutor()
        self.executor.add_node(self.node)
        self.results = []
        self.values = {}
        self.node.create_subscription(Classification, 'classification',
                                      self.results.append, 1000)
        self.node.create_subscription(DiagnosticArray, '/diagnostics', self._on_diag, 100)

    def _on_diag(self, msg) -> None:
        for status in msg.status:
            if status.name.startswith('classifier'):
                self.values = {kv.key: kv.value for kv in status.values}

    def spin(self, seconds: float) -> None:
        """Spin for ``seconds``."""
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.executor.spin_once(timeout_sec=0.05)

    def counter(self, name: str) -> int:
        """Return the classifier's diagnostic counter ``name`` (0 before it reported)."""
        return int(float(self.values.get(name, 0)))


THREAD_GROUPS = (('reader', ('events_reader',)), ('worker', ('windows_worker',)),
                 ('DDS', ('dds.',)))
"""Columns of the classifier's CPU by thread: its native thread names (by prefix)."""


def _threads_cpu_s(pid: int) -> dict:
    """Return CPU seconds of each of :data:`THREAD_GROUPS` of ``pid`` (others: 'other')."""
    return _overhead.threads_cpu_s(pid, THREAD_GROUPS)


def classifier_argv(executor: str, args) -> list:
    """Return the classifier's command line (``ros2 run topspark_ros classifier`` + options)."""
    params = {'input_mode': 'events', 'model_path': str(args.model), 'profile_path': "''",
              'default_timesteps': args.timesteps, 'window_ms': args.window_ms,
              'max_pending_windows': 2, 'diagnostics_period_s': 0.5}
    for key in ('events_depth', 'events_batch_ms'):  # None: the node's default
        if getattr(args, key) is not None:
            params[key] = getattr(args, key)
    ros_args = [arg for key, value in params.items() for arg in ('-p', f'{key}:={value}')]
    return [sys.executable, '-m', 'topspark_ros.nodes.classifier', '--autostart',
            '--executor', executor, '--ros-args', '-r', f'events:={TOPIC}', *ros_args]


def publisher_argv(mevps: float, args) -> list:
    """Return the publisher child's command line."""
    return [sys.executable, str(pathlib.Path(__file__).resolve()), '--child-publish',
            '--mevps', str(mevps), '--packet-us', str(args.packet_us),
            '--duration-s', str(args.duration_s), '--sensor', 'x'.join(map(str, args.sensor)),
            '--settle-s', str(args.settle_s)]


def _peak_rss_mb(pid: int) -> float:
    """Return the peak resident memory of ``pid`` so far (MiB, ``VmHWM``)."""
    for line in pathlib.Path(f'/proc/{pid}/status').read_text().splitlines():
        if line.startswith('VmHWM:'):
            return int(line.split()[1]) / 1024.0
    return float('nan')


BUSY_LOOP = 'import time\nend = time.monotonic() + {seconds}\nwhile time.monotonic() < end: pass'


def busy_loops(count: int, seconds: float) -> list:
    """Start ``count`` busy-loop processes (one core each) that end after ``seconds``."""
    return [subprocess.Popen([sys.executable, '-c', BUSY_LOOP.format(seconds=seconds)])
            for _ in range(count)]


def _read_json_line(proc, timeout_s: float, probe: Probe) -> dict:
    """Return the next JSON line of ``proc``'s stdout, spinning ``probe`` meanwhile."""
    import selectors
    selector = selectors.DefaultSelector()
    selector.register(proc.stdout, selectors.EVENT_READ)
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if selector.select(timeout=0.05):
            line = proc.stdout.readline()
            if not line:
                raise RuntimeError(f'the publisher exited ({proc.wait()})')
            with contextlib.suppress(ValueError):
                return json.loads(line)
        probe.executor.spin_once(timeout_sec=0.0)
    raise RuntimeError(f'no answer from the publisher in {timeout_s:.0f} s')


def run_case(probe: Probe, executor: str, mevps: float, args, logdir: pathlib.Path) -> dict:
    """Run one classifier + publisher pair; return what was measured."""
    tag = f'{executor}_{mevps:g}'
    log = open(logdir / f'classifier_{tag}.log', 'w')
    classifier = subprocess.Popen(classifier_argv(executor, args), stdout=log,
                                  stderr=subprocess.STDOUT)
    publisher = subprocess.Popen(publisher_argv(mevps, args), stdout=subprocess.PIPE,
                                 stderr=open(logdir / f'publisher_{tag}.log', 'w'), text=True)
    probe.results.clear()
    probe.values = {}
    loops = []
    try:
        started = _read_json_line(publisher, 180.0, probe)['started']
        loops = busy_loops(args.load_procs, args.duration_s + 30.0)
        cpu0 = {'classifier': _proc_cpu_s(classifier.pid),
                'publisher': _proc_cpu_s(publisher.pid)}
        threads0 = _threads_cpu_s(classifier.pid)
        machine0, t0 = _machine_cpu(), time.monotonic()
        sent = _read_json_line(publisher, args.duration_s + 60.0, probe)
        wall = time.monotonic() - t0
        cpu1 = _proc_cpu_s(classifier.pid)
        threads1 = _threads_cpu_s(classifier.pid)
        machine1 = _machine_cpu()
        for proc in loops:
            _stop(proc)
        probe.spin(1.5)  # the last windows, the last /diagnostics
        if classifier.poll() is not None:
            raise RuntimeError(f'the classifier exited ({classifier.returncode}); see {log.name}')
        # this stream's results (a classifier stopped before may have sent more)
        results = [r for r in probe.results
                   if r.header.stamp.sec + r.header.stamp.nanosec * 1e-9 >= started - 0.5]
        classify_s = sum(r.latency_ms for r in results) / 1e3
        received = probe.counter('packets_received')
        case = {
            'executor': executor, 'mevps': mevps, 'packet_us': args.packet_us,
            'sent': sent['sent'], 'received': received,
            'lost_seq_gaps': probe.counter('packets_lost'),
            'sequence_gaps': probe.counter('sequence_gaps'),
            'lost_total': sent['sent'] - received, 'publisher_late': sent['late'],
            'bytes_per_packet': sent['bytes_per_packet'],
            'windows_expected': int(args.duration_s * 1000.0 / args.window_ms),
            'windows': probe.counter('windows'),
            'windows_dropped': probe.counter('windows_dropped'),
            'classified': len(results), 'errors': probe.counter('errors'),
            'wall_s': wall, 'classifier_cpu_pct': 100.0 * (cpu1 - cpu0['classifier']) / wall,
            'classify_pct': 100.0 * classify_s / wall,
            'publisher_cpu_pct': 100.0 * sent['cpu_s'] / sent['wall_s'],
            'machine_busy_pct': 100.0 * (machine1[0] - machine0[0])
            / max(machine1[1] - machine0[1], 1),
            'load': _load(), 'classifier_peak_rss_mb': _peak_rss_mb(classifier.pid),
            'load_procs': args.load_procs}
        case['beyond_classify_pct'] = case['classifier_cpu_pct'] - case['classify_pct']
        case['threads_cpu_pct'] = {name: 100.0 * (threads1[name] - threads0[name]) / wall
                                   for name in threads0}
        return case
    finally:
        for proc in [*loops, publisher, classifier]:
            _stop(proc)
        log.close()


def _threads_cell(case: dict) -> str:
    """Return the per-thread CPU of a case as 'reader / worker / DDS / other'."""
    threads = case.get('threads_cpu_pct')
    if not threads:
        return '-'
    return ' / '.join(f'{threads[name]:.1f}' for name in [*dict(THREAD_GROUPS), 'other'])


def report(facts: dict, cases: list, args) -> str:
    """Return the Markdown report."""
    lines = [
        '### Event packet rate', '',
        '- command: `{command}` (in `{cwd}`)'.format(**facts),
        '- date: {date}; machine: {cpu}, {cores} cores; load average (1/5/15 min) at start '
        '{load_start}, at end {load_end}'.format(**facts),
        '- software: Python {python}, {rmw}, git {git}'.format(**facts),
        f'- stream: evt3, {args.packet_us} us packets ({1e6 / args.packet_us:g} packets/s), '
        f'{args.duration_s:g} s per case, lone events on {args.sensor[0]}x{args.sensor[1]} '
        f"pixels; classifier: `{facts['model']}`, T = {args.timesteps}, "
        f'{args.window_ms:g} ms windows, events_depth {args.events_depth or "default"}, '
        f'events_batch_ms {args.events_batch_ms or "default"}; busy loops beside each case: '
        f'{args.load_procs}', '',
        '| executor | Mev/s | bytes/packet | sent | late | received | lost (seq gaps) | sent - '
        'received | windows made / expected | dropped | classified | classifier CPU % | '
        'classification % | beyond it % | threads: reader / worker / DDS / other % | '
        'publisher CPU % | classifier peak RSS MiB | machine busy % | load |',
        '|---|---:|---:|---:|---:|---:|---|---:|---|---:|---:|---:|---:|---:|---|---:|---:|---:|'
        '---|']
    nan = float('nan')  # cases recorded before the column
    for c in cases:
        lines.append(
            f"| {c['executor']} | {c['mevps']:g} | {c['bytes_per_packet']:.0f} | {c['sent']} | "
            f"{c['publisher_late']} | {c['received']} | "
            f"{c['lost_seq_gaps']} ({c.get('sequence_gaps', '?')}) | {c['lost_total']} | "
            f"{c['windows']} / {c['windows_expected']} | {c['windows_dropped']} | "
            f"{c['classified']} | {c['classifier_cpu_pct']:.1f} | {c['classify_pct']:.1f} | "
            f"{c['beyond_classify_pct']:.1f} | {_threads_cell(c)} | "
            f"{c['publisher_cpu_pct']:.1f} | {c.get('classifier_peak_rss_mb', nan):.0f} | "
            f"{c['machine_busy_pct']:.0f} | {c['load']} |")
    lines += ['', '"late": packets the publisher sent more than a period late (then back to '
              'back); "lost (seq gaps)": packets missing from the seq numbers (in how many gaps). '
              'CPU figures are % of one core over the stream; "classification" is the sum '
              'of the `latency_ms` of the results (wall time of encoding + inference), "beyond '
              'it" the classifier process CPU minus that.', '']
    return '\n'.join(lines)


def _parse(argv=None) -> argparse.Namespace:
    def floats(text: str) -> list:
        return [float(v) for v in text.split(',')]

    def size(text: str) -> tuple:
        width, height = text.lower().split('x')
        return int(width), int(height)
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--executors', default='multi,single,events',
                        help='classifier executors, in order (default: %(default)s)')
    parser.add_argument('--mevps', type=floats, default=[1.0, 5.0, 20.0],
                        help='sensor rates, million events/s (default: 1,5,20)')
    parser.add_argument('--packet-us', type=int, default=1000,
                        help='sensor time per packet in us (default: 1000, 1 000 packets/s)')
    parser.add_argument('--duration-s', type=float, default=10.0,
                        help='stream length per case (default: 10)')
    parser.add_argument('--repeat', type=int, default=1, help='runs of every case')
    parser.add_argument('--sensor', type=size, default=(34, 34), help='WxH (default 34x34)')
    parser.add_argument('--model', type=pathlib.Path, default=MODEL)
    parser.add_argument('--timesteps', type=int, default=4)
    parser.add_argument('--window-ms', type=float, default=300.0)
    parser.add_argument('--events-depth', type=int, default=None,
                        help="the classifier's events_depth (default: the node's default)")
    parser.add_argument('--load-procs', type=int, default=0,
                        help='busy-loop processes beside each case (default: 0)')
    parser.add_argument('--events-batch-ms', type=float, default=None,
                        help="the classifier's events_batch_ms (default: the node's default)")
    parser.add_argument('--settle-s', type=float, default=1.0,
                        help='pause between subscription match and the first packet')
    parser.add_argument('--shm-segment-mb', type=float, default=16.0,
                        help='Fast DDS shared-memory segment size (0: its own, 512 KiB)')
    parser.add_argument('--json', metavar='FILE', help='also write the numbers here')
    parser.add_argument('--child-publish', action='store_true', help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv=None) -> int:
    """Run every case (or, as a child, the publisher); print the report."""
    args = _parse(argv)
    if args.child_publish:
        args.mevps = args.mevps[0]
        return publish(args)
    import tempfile

    import rclpy
    profile = _set_ros_environment(args.shm_segment_mb)
    facts = {'command': shlex.join(['python'] + sys.argv), 'cwd': os.getcwd(),
             'date': datetime.datetime.now().astimezone().isoformat(timespec='seconds'),
             'cpu': cpu_model(), 'cores': os.cpu_count(), 'load_start': _load(),
             'python': platform.python_version(), 'rmw': os.environ['RMW_IMPLEMENTATION'],
             'git': _git_state()}
    try:
        facts['model'] = str(args.model.resolve().relative_to(ROOT))
    except ValueError:
        facts['model'] = str(args.model)
    logdir = pathlib.Path(tempfile.mkdtemp(prefix='bench_event_rate_'))
    _log(f"bench_event_rate: ROS_DOMAIN_ID={os.environ['ROS_DOMAIN_ID']}, load "
         f"{facts['load_start']}, logs in {logdir}")
    rclpy.init()
    probe = Probe()
    cases, status = [], 0
    try:
        for _ in range(args.repeat):
            for executor in args.executors.split(','):
                for mevps in args.mevps:
                    _log(f'{executor}, {mevps:g} Mev/s ...')
                    case = run_case(probe, executor, mevps, args, logdir)
                    _log(json.dumps(case))
                    cases.append(case)
    except RuntimeError as exc:
        _log(f'error: {exc}')
        status = 1
    finally:
        probe.node.destroy_node()
        rclpy.try_shutdown()
        if profile:
            os.unlink(profile)
    facts['load_end'] = _load()
    print(report(facts, cases, args), end='', flush=True)
    if args.json:
        with open(args.json, 'w') as f:
            json.dump({'facts': facts, 'cases': cases}, f, indent=1)
    return status


if __name__ == '__main__':
    sys.exit(main())
