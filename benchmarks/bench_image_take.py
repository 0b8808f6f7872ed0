#!/usr/bin/env python3
"""
What receiving a camera frame costs in rclpy alone: the floor under the classifier's CPU.

A publisher (this process) sends one 640x480 ``rgb8`` ``sensor_msgs/Image`` (921,600 bytes)
at 30 Hz over Fast DDS shared memory (the 16 MiB segments of ``bench_ros_overhead.py``) to
a subscriber process that does nothing with the frames but take them, one mode after the
other:

- ``take``: the classifier's :class:`~topspark_ros.nodes.intake.SubscriptionReader`, the
  message turned into an array view (``image_to_array``), nothing else;
- ``take-timed`` / ``raw-timed``: the same wait / take loop written out, with the thread CPU
  time of ``wait_set.wait`` and ``take_message`` (deserialised / serialized bytes) summed;
- ``executor``: a plain subscription on a spinning ``SingleThreadedExecutor``.

Each subscriber reports its CPU per frame (all threads, Fast DDS's included), the CPU of its
busiest Python thread, and its minor page faults per frame, counted from its 30th frame on.

Run: ``dev/in_env.sh python benchmarks/bench_image_take.py [--duration-s 25] [--modes ...]``;
add ``--malloc-keep`` to run the subscribers with glibc's mmap threshold raised (large buffers
then come from the heap, not fresh mappings).
"""

import argparse
import json
import os
import pathlib
import subprocess
import sys
import threading
import time

HERE = pathlib.Path(__file__).resolve().parent
MODES = ('take', 'take-timed', 'raw-timed', 'executor')


def _minor_faults() -> int:
    with open('/proc/self/stat') as stat:
        return int(stat.read().rsplit(')', 1)[1].split()[7])


def _thread_cpu_s() -> dict:
    tick, out = os.sysconf('SC_CLK_TCK'), {}
    for tid in os.listdir('/proc/self/task'):
        with open(f'/proc/self/task/{tid}/stat') as stat:
            text = stat.read()
        fields = text[text.rindex(')') + 2:].split()
        out[tid] = (int(fields[11]) + int(fields[12])) / tick
    return out


def subscribe(mode: str, duration_s: float) -> dict:
    """Take frames for ``duration_s`` in ``mode``; return the figures (see the module doc)."""
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.impl.implementation_singleton import rclpy_implementation as _rclpy
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import Image

    from topspark_ros.conversions.image import image_to_array
    from topspark_ros.nodes.intake import SubscriptionReader

    qos = QoSProfile(depth=2, reliability=ReliabilityPolicy.BEST_EFFORT)
    rclpy.init()
    node = rclpy.create_node(f'take_{mode.replace("-", "_")}')
    count, mark, parts = [0], {}, {'wait': 0.0, 'take': 0.0}

    def on_frame(msg) -> None:
        if mode == 'take':
            image_to_array(msg)
        count[0] += 1
        if count[0] == 30:
            mark.update(cpu=time.process_time(), faults=_minor_faults(),
                        threads=_thread_cpu_s(), parts=dict(parts))

    if mode == 'executor':
        node.create_subscription(Image, 'image', on_frame, qos)
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        threading.Thread(target=executor.spin, daemon=True).start()
    elif mode == 'take':
        SubscriptionReader(node, Image, 'image', qos, on_frame, name='reader')
    else:
        subscription = node.create_subscription(Image, 'image', on_frame, qos)
        raw = mode == 'raw-timed'

        def loop() -> None:
            wait_set = _rclpy.WaitSet(1, 0, 0, 0, 0, 0, node.context.handle)
            handle = subscription.handle
            while True:
                start = time.thread_time()
                wait_set.clear_entities()
                wait_set.add_subscription(handle)
                wait_set.wait(int(0.5e9))
                taken = time.thread_time()
                parts['wait'] += taken - start
                while True:
                    start = time.thread_time()
                    message = handle.take_message(Image, raw)
                    parts['take'] += time.thread_time() - start
                    if message is None:
                        break
                    on_frame(message[0])

        threading.Thread(target=loop, daemon=True).start()
    print('ready', flush=True)
    time.sleep(duration_s)
    frames = count[0] - 30
    if frames <= 0:
        return {'mode': mode, 'frames': count[0], 'error': 'fewer than 30 frames arrived'}
    threads = _thread_cpu_s()
    busiest = max(threads[t] - mark['threads'].get(t, 0.0) for t in threads)
    result = {'mode': mode, 'frames': count[0],
              'cpu_ms': 1e3 * (time.process_time() - mark['cpu']) / frames,
              'busiest_thread_ms': 1e3 * busiest / frames,
              'faults': (_minor_faults() - mark['faults']) / frames}
    if mode.endswith('-timed'):
        result.update({f'{k}_ms': 1e3 * (parts[k] - mark['parts'][k]) / frames for k in parts})
    return result


def main(argv=None) -> int:
    """Publish frames to one subscriber process per mode; print a table."""
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--duration-s', type=float, default=25.0)
    p.add_argument('--modes', default=','.join(MODES))
    p.add_argument('--malloc-keep', action='store_true',
                   help='subscribers run with MALLOC_MMAP_THRESHOLD_=32 MiB')
    p.add_argument('--child', help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        print(json.dumps(subscribe(args.child, args.duration_s)), flush=True)
        return 0
    sys.path.insert(0, str(HERE))
    import bench_ros_overhead
    import numpy as np
    import rclpy
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import Image

    bench_ros_overhead._set_ros_environment(16)
    env = dict(os.environ)
    if args.malloc_keep:
        env.update(MALLOC_MMAP_THRESHOLD_=str(32 << 20), MALLOC_TRIM_THRESHOLD_=str(256 << 20))
    modes = [m for m in args.modes.split(',') if m]
    unknown = set(modes) - set(MODES)
    if unknown:
        p.error(f'unknown modes {sorted(unknown)} (choose from {MODES})')
    rclpy.init()
    node = rclpy.create_node('image_take_publisher')
    publisher = node.create_publisher(
        Image, 'image', QoSProfile(depth=2, reliability=ReliabilityPolicy.BEST_EFFORT))
    msg = Image(height=480, width=640, encoding='rgb8', step=1920)
    msg.data = np.random.default_rng(0).integers(0, 256, 921600, dtype=np.uint8).tobytes()
    rows = []
    for mode in modes:
        child = subprocess.Popen([sys.executable, __file__, '--child', mode, '--duration-s',
                                  str(args.duration_s)], stdout=subprocess.PIPE, text=True,
                                 env=env)
        child.stdout.readline()
        time.sleep(2.0)
        start, sent = time.monotonic(), 0
        while time.monotonic() - start < args.duration_s - 3.0:
            publisher.publish(msg)
            sent += 1
            time.sleep(max(0.0, start + sent / 30.0 - time.monotonic()))
        rows.append(json.loads(child.stdout.read().strip().splitlines()[-1]))
        child.wait()
        print(f'{mode}: {rows[-1]}', flush=True)
    load = ' '.join(f'{v:.2f}' for v in os.getloadavg())
    print(f'\n640x480 rgb8 at 30 Hz, {sent} frames sent per mode, load average {load}, '
          f'malloc-keep {args.malloc_keep}\n')
    print('| mode | frames | CPU / frame (ms) | busiest thread (ms) | wait (ms) | take (ms) '
          '| minor faults / frame |')
    print('|---|---:|---:|---:|---:|---:|---:|')
    for r in rows:
        if 'error' in r:
            print(f"| {r['mode']} | {r['frames']} | {r['error']} | | | | |")
            continue
        print(f"| {r['mode']} | {r['frames']} | {r['cpu_ms']:.2f} | "
              f"{r['busiest_thread_ms']:.2f} | {r.get('wait_ms', float('nan')):.2f} | "
              f"{r.get('take_ms', float('nan')):.2f} | {r['faults']:.0f} |")
    return 0


if __name__ == '__main__':
    sys.exit(main())
