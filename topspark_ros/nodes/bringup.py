"""
One-process bring-up (for hosts with rclpy but no ``ros2 launch``) and the end-to-end demo.

``topspark bringup --params-file config/topspark.yaml`` runs the classifier, the timestep
controller and the energy monitor in one process on a multi-threaded executor, configured
and activated as the launch file does, with the same YAML.

``topspark demo`` adds an image player (Fashion-MNIST test images as a camera would publish
them), a simulated battery that drains by the energy the pipeline reports, and a recorder
that scores every classification against the true label. It prints a live line every second,
stops after ``--duration-s``, prints a summary and writes a PNG plot of T, accuracy, energy
and battery over time.
"""

import argparse
import os
import sys
import time
from typing import Optional, Sequence


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
    parser = argparse.ArgumentParser(prog='topspark bringup', description=__doc__.strip()
                                     .splitlines()[0])
    parser.add_argument('--params-file', help='parameter YAML (default: config/topspark.yaml)')
    args, ros_args = parser.parse_known_args(argv)
    params = args.params_file or default_params_file('topspark.yaml')
    from topspark_ros.nodes.runner import run_nodes
    return run_nodes(_node_classes(), autostart=True,
                     args=['topspark', '--ros-args', '--params-file', params] + ros_args)


def demo(argv: Optional[Sequence[str]] = None) -> int:
    """Run the end-to-end demo the module docstring describes; return 0 once it has run."""
    parser = argparse.ArgumentParser(prog='topspark demo', description='Run the end-to-end '
                                     'demo on Fashion-MNIST over real DDS, in one process.')
    parser.add_argument('--params-file', action='append',
                        help='parameter YAML loaded over config/topspark.yaml, in order; may '
                        'be repeated (default: config/demo.yaml)')
    parser.add_argument('--duration-s', type=float, default=60.0,
                        help='how long to run (default: 60 s)')
    parser.add_argument('--plot', default='demo.png', help="PNG to write ('' : none)")
    parser.add_argument('--quiet', action='store_true', help='no live line')
    args = parser.parse_args(argv)
    if args.duration_s <= 0:
        parser.error('--duration-s must be positive')
    files = [default_params_file('topspark.yaml')]
    files += args.params_file or [default_params_file('demo.yaml')]

    import rclpy
    from rclpy.logging import get_logger

    from topspark_ros.nodes.demo_recorder import DemoRecorderNode
    from topspark_ros.nodes.runner import BringUpError, init, node_group, PROCESS_LOGGER

    init(['topspark', '--ros-args'] + [a for f in files for a in ('--params-file', f)])
    from topspark_ros.nodes.battery_simulator import BatterySimulatorNode
    from topspark_ros.nodes.image_player import ImagePlayerNode

    def recorder_factory(earlier: list) -> DemoRecorderNode:
        player = next(n for n in earlier if isinstance(n, ImagePlayerNode))
        return DemoRecorderNode(player, live=not args.quiet)

    factories = _node_classes() + [ImagePlayerNode, BatterySimulatorNode, recorder_factory]
    try:
        with node_group(factories, autostart=True) as (executor, nodes):
            end = time.monotonic() + args.duration_s
            while time.monotonic() < end and rclpy.ok():
                executor.spin_once(timeout_sec=0.1)
            summary = nodes[-1].finish(args.plot or None)
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
