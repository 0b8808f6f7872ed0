"""
How often nav2's lifecycle manager hears a controller stopped by Ctrl-C leave its bond.

Repeats what ``test/test_bond.py`` does once: a plain node plays the manager's side of the
bond (a status every 0.1 s, as nav2's ``lifecycle_manager``), the timestep controller runs as
its own process (``--autostart``), and as soon as its first status arrives it gets SIGINT,
before its bond has formed, as a process stopped during bring-up. Counted: the stops whose
leave status (``active`` false) reached the manager within 10 s. Run it beside load (the test
suite) to see the losses a loaded machine gives; ``topspark_ros.nodes.bond`` (``Bond.close``)
says what was measured.

    dev/in_env.sh python benchmarks/bench_bond_stop.py --runs 40
"""

import argparse
import os
import signal
import subprocess
import sys
import time
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROFILE = 'package://topspark_ros/models/stdp_fmnist_n400.profile.yaml'
MANAGER_PERIOD_S = 0.1  # nav2 lifecycle_manager's heartbeat period


def main(argv=None) -> int:
    """Stop ``--runs`` controller processes; print each lost leave and the count."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[1])
    parser.add_argument('--runs', type=int, default=40, help='stops (default: %(default)s)')
    args = parser.parse_args(argv)
    os.environ['ROS_AUTOMATIC_DISCOVERY_RANGE'] = 'LOCALHOST'  # (as the tests)
    for variable in ('FASTRTPS_DEFAULT_PROFILES_FILE', 'FASTDDS_DEFAULT_PROFILES_FILE'):
        os.environ[variable] = os.path.join(ROOT, 'config', 'fastdds_fast_discovery.xml')
    import rclpy
    from bond.msg import Status
    from rclpy.node import Node
    from rclpy.qos import QoSProfile

    from topspark_ros.nodes.runner import make_executor
    rclpy.init()
    executor = make_executor('multi', threads=4)
    node = Node('lifecycle_manager')
    executor.add_node(node)
    me, heard, beating = str(uuid.uuid4()), [], [False]

    def on_status(msg) -> None:
        if msg.id == 'timestep_controller' and msg.instance_id != me:
            heard.append((time.monotonic(), msg.active))

    publisher = node.create_publisher(Status, 'bond', QoSProfile(depth=5))
    node.create_subscription(Status, 'bond', on_status, QoSProfile(depth=100))
    beat = Status(id='timestep_controller', instance_id=me, active=True,
                  heartbeat_timeout=4.0, heartbeat_period=MANAGER_PERIOD_S)
    node.create_timer(MANAGER_PERIOD_S, lambda: beating[0] and publisher.publish(beat))

    def spin_until(predicate, timeout_s: float) -> bool:
        end = time.monotonic() + timeout_s
        while time.monotonic() < end and not predicate():
            executor.spin_once(timeout_sec=0.05)
        return predicate()

    lost = 0
    try:
        for run in range(args.runs):
            heard.clear()
            proc = subprocess.Popen(
                [sys.executable, '-m', 'topspark_ros.nodes.timestep_controller', '--autostart',
                 '--ros-args', '-p', f'profile_path:={PROFILE}'],
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
            beating[0] = True
            if not spin_until(lambda: any(active for _, active in heard), 30.0):
                proc.kill()
                raise SystemExit(f'no status from the controller:\n{proc.communicate()[0]}')
            stopped = time.monotonic()
            proc.send_signal(signal.SIGINT)
            left = spin_until(lambda: any(not active for at, active in heard if at >= stopped),
                              10.0)
            try:
                out, _ = proc.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                raise SystemExit(f'stop {run + 1}: still running 30 s after Ctrl-C:\n'
                                 f'{proc.communicate()[0]}')
            if not left:
                lost += 1
                print(f'stop {run + 1}: the leave status never came (exit {proc.returncode}; '
                      f"bond {'formed' if 'bond formed' in out else 'not formed'})", flush=True)
            beating[0] = False
            spin_until(lambda: False, 0.3)  # (the last statuses go by)
    finally:
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown()
    print(f'| stops | leave heard | leave lost |\n|---:|---:|---:|\n'
          f'| {args.runs} | {args.runs - lost} | {lost} |')
    return 0


if __name__ == '__main__':
    sys.exit(main())
