"""
topspark_ros: adaptive-timestep spiking neural networks for ROS 2 robots.

The package is layered (see docs/architecture.md):

* :mod:`topspark_ros.core` -- torch/numpy only: SNN engines, encoders, datasets, energy model,
  timestep profiles and the trade-off strategy. Never imports rclpy.
* ``topspark_ros.conversions`` -- messages <-> arrays.
* ``topspark_ros.nodes`` -- thin rclpy nodes over core.
* :mod:`topspark_ros.cli` -- the ``topspark`` command-line tool (one module per command).

Importing this package is cheap: it pulls in neither torch nor rclpy.
"""

__version__ = '0.1.0'
