"""
One-process bring-up (for hosts with rclpy but no ``ros2 launch``) and the end-to-end demo.

``topspark bringup --params-file my.yaml`` runs the classifier, the timestep controller and
the energy monitor in one process on a single-threaded executor (``--executor``), configured
and activated as the launch file does: ``my.yaml`` is applied over the shipped
``config/topspark.yaml``, so it holds only the values it changes (as the launch file's
``params_file``).

``topspark demo`` adds an image player (Fashion-MNIST test images as a camera would publish
them), a simulated battery that drains by the energy the pipeline reports, and a recorder
that scores every classification against the true label. It prints a live line every second,
stops after ``--duration-s``, prints a summary and writes a PNG plot of T, accuracy, energy
and battery over time.

``topspark demo --events`` is the same for an event camera (``config/demo_events.yaml``): an
event player publishes the N-MNIST-like test set sample after sample as evt3 EventPackets of
1 ms in real time (what metavision_driver publishes), the classifier runs the shipped
converted event model on 300 ms windows (one sample each), and the summary adds the packets
sent, received and lost (the classifier's counters, read from its ``/diagnostics`` status
after the player stopped and the classifier caught up).
"""

import argparse
import os
import sys
import time
from typing import Optional, Sequence


def demo_params_files(events: bool, given: list) -> list:
    """
    Return the demo's parameter files, in the order they apply.

    The shipped config, the demo's (``demo.yaml``, ``demo_events.yaml`` with ``events``), then
    the ``given`` ones: a file that changes one value keeps the demo's others (it replaced
    ``demo.yaml``: the battery, the image rate and the crop went back to the defaults).
    """
    return [default_params_file('topspark.yaml'),
            default_params_file('demo_events.yaml' if events else 'demo.yaml'), *given]


def default_params_file(name: str) -> str:
    """Return ``config/<name>`` of this package (installed share/ or the source tree)."""
    try:
        from ament_index_python.packages import get_package_share_directory
        candidate = os.path.join(get_package_share_directory('topspark_ros'), 'config', name)
        if os.path.exists(candidate):
            return candidate
    except (ImportError, LookupError):
        pass
    here = os.path.dirname(os.path.abspath(__file__))
    for up in (os.path.join(here, '..', '..'), os.getcwd()):
        candidate = os.path.normpath(os.path.join(up, 'config', name))
        if os.path.exists(candidate):
            return candidate
    raise FileNotFoundError(f'config/{name} not found: pass --params-file')


def _node_classes() -> list:
    """Return the product's three node classes."""
    from topspark_ros.nodes.classifier import ClassifierNode
    from topspark_ros.nodes.energy_monitor import EnergyMonitorNode
    from topspark_ros.nodes.timestep_controller import TimestepControllerNode
    return [ClassifierNode, TimestepControllerNode, EnergyMonitorNode]


def bringup(argv: Optional[Sequence[str]] = None) -> int:
    """Run the three nodes in one process until Ctrl-C or SIGTERM."""
    parser = argparse.ArgumentParser(
        prog='topspark bringup', description='Run the classifier, the timestep controller and '
        'the energy monitor in one process, configured and activated as the launch file does '
        '(for hosts with rclpy but no ros2 launch).', allow_abbrev=False,
        epilog='ROS arguments go after --ros-args, e.g. a second pipeline in a namespace of '
        'its own on its camera: topspark bringup --params-file cam_b.yaml --ros-args -r '
        '__ns:=/camB -r image:=/camB/image_raw (keys of cam_b.yaml: /**/classifier, ...).')
    parser.add_argument('--params-file', action='append', default=[],
                        help='parameter YAML applied over the shipped config/topspark.yaml, '
                        'so it needs only the values it changes; may be repeated (later '
                        'files win)')
    # single: the classifier's input has threads of its own; at 30 frames a second the
    # process took 8.9 to 10.9 % of a core on it, 13.6 to 25.1 % on multi (a review of the
    # nodes' footprint found it on multi where the launch file runs the control on single).
    parser.add_argument('--executor', choices=('multi', 'single', 'events'), default='single',
                        help='executor of the nodes (see topspark_ros.nodes.runner; default: '
                        '%(default)s)')
    args, ros_args = parser.parse_known_args(argv)
    files = [default_params_file('topspark.yaml')] + args.params_file
    from topspark_ros.nodes.runner import run_nodes
    layered = [arg for name in files for arg in ('--params-file', name)]
    return run_nodes(_node_classes(), autostart=True, executor=args.executor,
                     args=['topspark', '--ros-args'] + layered + ros_args)


DRAIN_S = 5.0
"""Event demo: how long, after the player stopped, to wait for the classifier's counters to
account for every packet sent (its status comes every ``diagnostics_period_s``)."""


def demo(argv: Optional[Sequence[str]] = None) -> int:
    """Run the end-to-end demo the module docstring describes; return 0 once it has run."""
    parser = argparse.ArgumentParser(prog='topspark demo', description='Run the end-to-end '
                                     'demo on Fashion-MNIST (or, with --events, on the '
                                     'N-MNIST-like event set) over real DDS, in one process.')
    parser.add_argument('--events', action='store_true',
                        help='the event-camera demo: the N-MNIST-like test set as 1 ms evt3 '
                        'packets into the converted event model (default parameters: '
                        'config/demo_events.yaml)')
    parser.add_argument('--params-file', action='append', default=[],
                        help='parameter YAML loaded over config/topspark.yaml and the '
                        "demo's config/demo.yaml (with --events config/demo_events.yaml), in "
                        'order: it needs only the values it changes; may be repeated')
    parser.add_argument('--packet-ms', type=float, default=None,
                        help="with --events: sensor time per event packet, the player's "
                        'packet_ms (default: 1 ms, from the parameter files)')
    parser.add_argument('--duration-s', type=float, default=60.0,
                        help='how long to run (default: 60 s)')
    parser.add_argument('--executor', choices=('multi', 'single', 'events'), default='multi',
                        help='executor of the nodes (see topspark_ros.nodes.runner; default: '
                        'multi)')
    parser.add_argument('--plot', default='demo.png', help="PNG to write ('' : none)")
    parser.add_argument('--quiet', action='store_true', help='no live line')
    args = parser.parse_args(argv)
    if args.duration_s <= 0:
        parser.error('--duration-s must be positive')
    if args.packet_ms is not None and (not args.events or not args.packet_ms > 0):
        parser.error('--packet-ms needs --events and a positive value')
    if args.plot:  # found after the whole demo otherwise (a review of storage faults)
        from topspark_ros.core.files import output_folder_problem
        problem = output_folder_problem(args.plot)
        if problem:
            parser.error(f'--plot {problem}')
    files = demo_params_files(args.events, args.params_file)

    import rclpy
    from rclpy.logging import get_logger

    from topspark_ros.nodes.demo_recorder import DemoRecorderNode
    from topspark_ros.nodes.runner import (BringUpError, check_stop, init, node_group,
                                           PROCESS_LOGGER)

    overrides = [] if args.packet_ms is None else [
        '-p', f'event_player:packet_ms:={float(args.packet_ms)}']
    init(['topspark', '--ros-args'] + [a for f in files for a in ('--params-file', f)]
         + overrides)
    from topspark_ros.nodes.battery_simulator import BatterySimulatorNode
    if args.events:
        from topspark_ros.nodes.event_player import EventPlayerNode as player_class
    else:
        from topspark_ros.nodes.image_player import ImagePlayerNode as player_class

    def recorder_factory(earlier: list) -> DemoRecorderNode:
        player = next(n for n in earlier if isinstance(n, player_class))
        return DemoRecorderNode(player, live=not args.quiet, packets=args.events)

    factories = _node_classes() + [player_class, BatterySimulatorNode, recorder_factory]
    try:
        with node_group(factories, autostart=True,
                        executor=args.executor) as (executor, nodes):
            recorder = nodes[-1]
            end = time.monotonic() + args.duration_s
            while time.monotonic() < end and rclpy.ok():
                check_stop()
                executor.spin_once(timeout_sec=0.1)
            if args.events:  # stop sending; let the classifier catch up and report
                next(n for n in nodes if isinstance(n, player_class)).stop()
                end = time.monotonic() + DRAIN_S
                while time.monotonic() < end and rclpy.ok() and not recorder.packets_accounted:
                    check_stop()
                    executor.spin_once(timeout_sec=0.1)
            summary = recorder.finish(args.plot or None)
    except KeyboardInterrupt:
        print('interrupted', file=sys.stderr)
        return 130
    except BringUpError:  # logged by the node that failed
        return 1
    except (RuntimeError, OSError, ValueError) as exc:  # through the ROS logger, as run_nodes
        get_logger(PROCESS_LOGGER).fatal(f'topspark demo: {exc}')
        return 1
    finally:
        rclpy.try_shutdown()
    return 0 if summary.classifications > 0 else 1
