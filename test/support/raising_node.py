"""
A node process whose ``~/raise`` service callback raises, run by the product's runner.

For the test that a callback raising does not end a node process: ``~/raise``
(std_srvs/Trigger) divides by zero; ``~/ping`` answers ``success=true``.
"""

import sys

from rclpy.node import Node
from std_srvs.srv import Trigger

from topspark_ros.nodes.runner import run_nodes


class RaisingNode(Node):
    """A node with a service whose callback raises."""

    def __init__(self) -> None:
        """Create ``~/raise`` and ``~/ping``."""
        super().__init__('raiser')
        self.create_service(Trigger, '~/raise', self._on_raise)
        self.create_service(Trigger, '~/ping', self._on_ping)

    def _on_raise(self, request, response):
        return 1 // 0

    def _on_ping(self, request, response):
        response.success = True
        return response


if __name__ == '__main__':
    sys.exit(run_nodes([RaisingNode]))
