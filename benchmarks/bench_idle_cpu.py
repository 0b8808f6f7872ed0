#!/usr/bin/env python3
"""
CPU of each node process when idle (no input at all) or hearing results, autostarted.

What a battery-powered robot pays for the nodes while its camera is off. Each node runs alone
as its own process (``python -m topspark_ros.nodes.<node> --autostart --ros-args --params-file
config/topspark.yaml``: the shipped configuration, as the launch file gives it) on each executor;
after a settling time its user + system CPU time is read from ``/proc`` over a window, and the
wake-ups of its main thread (voluntary context switches). A node that is not running by then
(its configure failed: the controller without the shipped file's ``profile_path``, as this
script ran it before) is an error, not a row. Linux only; the clock tick (10 ms) bounds the
resolution (0.05 % of a core over 20 s).

With ``--results-hz R`` this script publishes ``Classification`` results at R Hz on
``classification`` (stamped at that rate, of the shipped model, T=32) during the settling time
and the window: what the controller and the monitor spend on a 30 Hz camera's results (the
classifier subscribes to none: idle still).

    dev/in_env.sh python benchmarks/bench_idle_cpu.py [--window-s 20] [--settle-s 8]
        [--executors multi,single,events] [--nodes energy_monitor] [--results-hz 30]
"""

import argparse
import os
from pathlib import Path
import signal
import subprocess
import sys
import threading
import time

NODES = ('classifier', 'timestep_controller', 'energy_monitor')
CONFIG = Path(__file__).resolve().parents[1] / 'config' / 'topspark.yaml'


def cpu_s(pid: int) -> float:
    """Return the user + system CPU seconds of process ``pid`` so far."""
    with open(f'/proc/{pid}/stat') as stat:
        fields = stat.read().rsplit(')', 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK')


def wakeups(pid: int) -> int:
    """Return the voluntary context switches of the main thread of ``pid`` so far."""
    with open(f'/proc/{pid}/task/{pid}/status') as status:
        for line in status:
            if line.startswith('voluntary_ctxt_switches:'):
                return int(line.split()[1])
    raise RuntimeError(f'no voluntary_ctxt_switches for {pid}')


class ResultPublisher:
    """Publish ``Classification`` results at ``rate_hz`` from a thread (a context manager)."""

    def __init__(self, rate_hz: float, domain: str) -> None:
        """Publish at ``rate_hz`` (0: nothing) on ROS domain ``domain``."""
        self._rate = rate_hz
        self._domain = domain

    def __enter__(self) -> 'ResultPublisher':
        """Start publishing."""
        if not self._rate:
            return self
        os.environ['ROS_DOMAIN_ID'] = self._domain
        import rclpy
        from topspark_ros.core.topspark.profile import load_profile
        from topspark_ros.msg import Classification

        rclpy.init()
        self._node = rclpy.create_node('bench_results')
        publisher = self._node.create_publisher(Classification, 'classification', 10)
        sha = load_profile(CONFIG.parents[1] / 'models'
                           / 'stdp_fmnist_n400.profile.yaml').model_sha256
        self._stop = threading.Event()

        def run() -> None:
            period, k, start = 1.0 / self._rate, 0, time.monotonic()
            while not self._stop.is_set():
                msg = Classification(timestep_budget=32, timesteps_used=32, latency_ms=2.0,
                                     accumulates=40000, neuron_updates=12800, class_id=3,
                                     confidence=1.0, source='/bench/classifier',
                                     model_sha256=sha)
                stamp = 1000.0 + k * period
                msg.header.stamp.sec, msg.header.stamp.nanosec = int(stamp), \
                    int(stamp % 1 * 1e9)
                publisher.publish(msg)
                k += 1
                self._stop.wait(max(0.0, start + k * period - time.monotonic()))

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        """Stop publishing."""
        if self._rate:
            import rclpy

            self._stop.set()
            self._thread.join()
            self._node.destroy_node()
            rclpy.try_shutdown()


def main() -> int:
    """Print one row per executor and node: its CPU in % of a core and its wake-ups."""
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument('--window-s', type=float, default=20.0)
    parser.add_argument('--settle-s', type=float, default=8.0)
    parser.add_argument('--executors', default='multi,single,events',
                        help='executors to run each node on (default: %(default)s)')
    parser.add_argument('--nodes', default=','.join(NODES),
                        help='nodes to measure (default: %(default)s)')
    parser.add_argument('--results-hz', type=float, default=0.0,
                        help='publish results at this rate meanwhile (default: none, idle)')
    parser.add_argument('--domain', default='34', help='ROS_DOMAIN_ID of the processes')
    args = parser.parse_args()
    env = dict(os.environ, ROS_DOMAIN_ID=args.domain)
    with ResultPublisher(args.results_hz, args.domain):
        return _measure(args, env)


def _measure(args, env: dict) -> int:
    """Run each node on each executor; print its row."""
    print('| executor | node | CPU (% of a core) | main-thread wake-ups/s |\n'
          '|---|---|---:|---:|')
    for kind in args.executors.split(','):
        for node in args.nodes.split(','):
            proc = subprocess.Popen(
                [sys.executable, '-m', f'topspark_ros.nodes.{node}', '--executor', kind,
                 '--autostart', '--ros-args', '--params-file', str(CONFIG)], env=env,
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            try:
                time.sleep(args.settle_s)
                if proc.poll() is not None:
                    raise RuntimeError(f'{node} on {kind} exited ({proc.returncode}) before '
                                       f'the window: {proc.stderr.read()[-1000:]}')
                before, woke = cpu_s(proc.pid), wakeups(proc.pid)
                time.sleep(args.window_s)
                used, woke = cpu_s(proc.pid) - before, wakeups(proc.pid) - woke
                if proc.poll() is not None:
                    raise RuntimeError(f'{node} on {kind} exited ({proc.returncode}) in the '
                                       f'window: {proc.stderr.read()[-1000:]}')
            finally:
                if proc.poll() is None:
                    proc.send_signal(signal.SIGINT)
                proc.communicate(timeout=20)
            print(f'| {kind} | {node} | {100 * used / args.window_s:.2f} | '
                  f'{woke / args.window_s:.2f} |', flush=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
