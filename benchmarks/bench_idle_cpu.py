#!/usr/bin/env python3
"""
CPU of each node process when idle: no input at all, the shipped configuration, autostarted.

What a battery-powered robot pays for the nodes while its camera is off. Each node runs alone
as its own process (``python -m topspark_ros.nodes.<node> --autostart``) on each executor;
after a settling time its user + system CPU time is read from ``/proc`` over a window. Linux
only; the clock tick (10 ms) bounds the resolution (0.05 % of a core over 20 s).

    dev/in_env.sh python benchmarks/bench_idle_cpu.py [--window-s 20] [--settle-s 8]
"""

import argparse
import os
import signal
import subprocess
import sys
import time

NODES = ('classifier', 'timestep_controller', 'energy_monitor')


def cpu_s(pid: int) -> float:
    """Return the user + system CPU seconds of process ``pid`` so far."""
    with open(f'/proc/{pid}/stat') as stat:
        fields = stat.read().rsplit(')', 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK')


def main() -> int:
    """Print one row per executor and node: the idle CPU in % of a core."""
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument('--window-s', type=float, default=20.0)
    parser.add_argument('--settle-s', type=float, default=8.0)
    parser.add_argument('--domain', default='34', help='ROS_DOMAIN_ID of the processes')
    args = parser.parse_args()
    env = dict(os.environ, ROS_DOMAIN_ID=args.domain)
    print('| executor | node | idle CPU (% of a core) |\n|---|---|---:|')
    for kind in ('multi', 'single'):
        for node in NODES:
            proc = subprocess.Popen(
                [sys.executable, '-m', f'topspark_ros.nodes.{node}', '--executor', kind,
                 '--autostart'], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                time.sleep(args.settle_s)
                before = cpu_s(proc.pid)
                time.sleep(args.window_s)
                used = cpu_s(proc.pid) - before
            finally:
                proc.send_signal(signal.SIGINT)
                proc.wait(timeout=20)
            print(f'| {kind} | {node} | {100 * used / args.window_s:.2f} |', flush=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
