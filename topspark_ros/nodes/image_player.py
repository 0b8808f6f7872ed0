"""
Publish images of an MNIST-family data set as ``sensor_msgs/Image`` at a fixed rate (demo).

Images are taken in a seeded random order from the chosen split and published on ``image``
(mono8, ``frame_id`` from a parameter). The label of every published image is kept, keyed by
its stamp, so a scorer in the same process can check classifications (:meth:`label_for`).
"""

import threading

import numpy as np
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Image

from topspark_ros.conversions.image import array_to_image
from topspark_ros.nodes.parameters import declare, Param, values

PARAMS = (
    Param('dataset', 'fashion-mnist', 'Data set name, searched as the readers do.', live=False),
    Param('data_dir', '', "Directory with the IDX files ('' : search for the data set).",
          live=False),
    Param('split', 'test', 'Split to play.', choices=('train', 'test'), live=False),
    Param('rate_hz', 10.0, 'Images per second.', low=0.01, high=10000.0, live=False),
    Param('max_images', 0, 'Stop after this many images (0: play forever, cycling).', low=0,
          live=False),
    Param('seed', 0, 'Seed of the playing order.', live=False),
    Param('frame_id', 'camera_optical_frame', 'frame_id of the published images.', live=False),
)


class ImagePlayerNode(Node):
    """Plays a data set as a camera would."""

    def __init__(self, **kwargs) -> None:
        """Load the data set and start the publishing timer."""
        super().__init__('image_player', **kwargs)
        declare(self, PARAMS)
        p = values(self, PARAMS)
        from topspark_ros.core.data.idx import find_dataset_dir, load_mnist_family
        directory = p['data_dir'] or find_dataset_dir(p['dataset'])
        data = load_mnist_family(directory, p['split'])
        self.images, self.labels = data.images, data.labels
        self.class_names = tuple(data.class_names)
        self._order = np.random.default_rng(p['seed']).permutation(len(self.images))
        self._max = p['max_images']
        self._frame_id = p['frame_id']
        self._published = 0
        self._labels = {}
        self._lock = threading.Lock()
        self._pub = self.create_publisher(Image, 'image', qos_profile_sensor_data)
        self._timer = self.create_timer(1.0 / p['rate_hz'], self._tick)

    @property
    def published(self) -> int:
        """Images published so far."""
        return self._published

    @property
    def finished(self) -> bool:
        """Return True once ``max_images`` images have been published."""
        return self._max > 0 and self._published >= self._max

    def label_for(self, stamp) -> int:
        """Return the true label of the image published with ``stamp`` (-1 if unknown)."""
        with self._lock:
            return self._labels.get((stamp.sec, stamp.nanosec), -1)

    def _tick(self) -> None:
        if self.finished:
            self._timer.cancel()
            return
        index = int(self._order[self._published % len(self._order)])
        msg = array_to_image(self.images[index], 'mono8')
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.header.frame_id = self._frame_id
        with self._lock:
            self._labels[(msg.header.stamp.sec, msg.header.stamp.nanosec)] = \
                int(self.labels[index])
        self._pub.publish(msg)
        self._published += 1


def main(args=None) -> int:
    """
    Run the image player alone (``ros2 run topspark_ros image_player``).

    With ``max_images`` it exits once they are published (it kept running; a review), as the
    event player does; with 0 it plays until stopped.
    """
    from topspark_ros.nodes.runner import play
    return play(ImagePlayerNode, 'image_player', 'images', args)


if __name__ == '__main__':
    import sys
    sys.exit(main())
