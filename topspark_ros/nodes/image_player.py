"""
Publish images as ``sensor_msgs/Image`` at a fixed rate: a camera for demos and own data.

The images are those of an MNIST-family data set (mono8), or of an image folder of your own
(``folder``: one subfolder per class, as ``topspark train --data folder:DIR`` reads it; each
file in its own encoding, ``rgb8`` or ``mono8``, at its own size). They are taken in a seeded
random order from the chosen split (a folder's splits are those ``topspark`` makes of it, so
``test`` is what a model trained on the folder did not learn from) and published on ``image``
(``frame_id`` from a parameter). The label of every published image is kept, keyed by its
stamp, so a scorer in the same process can check classifications (:meth:`label_for`).
"""

import collections
import threading

import numpy as np
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Image

from topspark_ros.conversions.image import array_to_image
from topspark_ros.nodes.construction import destroyed_if_construction_fails
from topspark_ros.nodes.parameters import declare, Param, values
from topspark_ros.nodes.runner import SubscriberWait

LABELS_KEPT = 1 << 12
"""Stamps of the most recent frames whose label :meth:`ImagePlayerNode.label_for` knows (2 min
at 30 Hz: a result comes back within its frame's latency). Every frame's was kept, for good: 25
MB an hour at 30 Hz in a node that plays for ever (a review of a long run)."""

PARAMS = (
    Param('dataset', 'fashion-mnist', 'Data set name, searched as the readers do.', live=False),
    Param('data_dir', '', "Directory with the IDX files ('' : search for the data set).",
          live=False),
    Param('folder', '', 'An image folder of your own to play instead (one subfolder per class, '
          "PNG or JPEG; each image in its own encoding and size; '' : the data set).",
          live=False),
    Param('split', 'test', 'Split to play.', choices=('train', 'test'), live=False),
    Param('model_path', '', 'With folder: the model whose split to play, as it records it '
          "(--split-seed, fractions, --split-by; '' : the defaults). Its test photos are "
          'then those it did not learn from (played with the defaults, a model trained with '
          '--split-seed 7 was shown its training photos; a review).', live=False),
    Param('rate_hz', 10.0, 'Images per second.', low=0.01, high=10000.0, live=False),
    Param('max_images', 0, 'Stop after this many images (0: play forever, cycling).', low=0,
          live=False),
    Param('seed', 0, 'Seed of the playing order.', live=False),
    Param('frame_id', 'camera_optical_frame', 'frame_id of the published images.', live=False),
)


def model_split_options(model_path: str) -> dict:
    """
    Return :func:`~topspark_ros.core.data.folder.folder_split`'s options a model recorded.

    ``{}`` for no model (the defaults); the split options its training recorded otherwise
    (``topspark train`` on a folder writes them; a model of before the name split split by
    order). ValueError when the model cannot be read.
    """
    if not model_path:
        return {}
    from topspark_ros.core.checkpoint import read_metadata
    from topspark_ros.core.data.sources import recorded_data

    try:
        meta, _ = read_metadata(model_path)
    except (OSError, ValueError) as exc:
        raise ValueError(f'model_path {model_path}: {exc}') from None
    _, options = recorded_data(meta)
    names = {'split_seed': 'seed', 'val_fraction': 'val_fraction',
             'test_fraction': 'test_fraction', 'split_by': 'split_by'}
    return {names[k]: v for k, v in options.items() if k in names}


@destroyed_if_construction_fails
class ImagePlayerNode(Node):
    """Plays a data set as a camera would."""

    def __init__(self, **kwargs) -> None:
        """Load the data set and start the publishing timer."""
        super().__init__('image_player', **kwargs)
        declare(self, PARAMS)
        p = values(self, PARAMS)
        if p['folder']:
            from topspark_ros.core.data.folder import folder_split
            names, items = folder_split(p['folder'], p['split'],
                                        **model_split_options(p['model_path']))
            if not items:
                raise ValueError(f"the {p['split']} split of {p['folder']} has no image")
            self.images = [path for path, _ in items]  # read as each is published
            self.labels = np.array([label for _, label in items], np.int64)
            self.class_names = tuple(names)
        else:
            from topspark_ros.core.data.idx import find_dataset_dir, load_mnist_family
            directory = p['data_dir'] or find_dataset_dir(p['dataset'])
            data = load_mnist_family(directory, p['split'])
            self.images, self.labels = data.images, data.labels
            self.class_names = tuple(data.class_names)
        self.unreadable = 0
        self._order = np.random.default_rng(p['seed']).permutation(len(self.images))
        self._max = p['max_images']
        self._frame_id = p['frame_id']
        self._published = 0
        self._labels = collections.OrderedDict()  # (sec, nanosec) -> label, the newest kept
        self._lock = threading.Lock()
        self._pub = self.create_publisher(Image, 'image', qos_profile_sensor_data)
        # The first frame once the subscriptions that exist already are matched (published at
        # once, a recorder started first lost it; a review of the players).
        self._discovery = SubscriberWait(0)
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
        """
        Return the true label of the image published with ``stamp`` (-1 if unknown).

        The newest :data:`LABELS_KEPT` frames' are known.
        """
        with self._lock:
            return self._labels.get((stamp.sec, stamp.nanosec), -1)

    def _tick(self) -> None:
        if self.finished:
            self._timer.cancel()
            return
        if self._discovery is not None:
            if not self._discovery.ready(self._pub.get_subscription_count(),
                                         lambda: self.count_subscribers(self._pub.topic_name)):
                return
            self._discovery = None
        index = int(self._order[self._published % len(self._order)])
        msg = self._message(self.images[index])
        if msg is None:
            self._published += 1  # (counted as played: max_images still ends the run)
            return
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.header.frame_id = self._frame_id
        with self._lock:
            self._labels[(msg.header.stamp.sec, msg.header.stamp.nanosec)] = \
                int(self.labels[index])
            if len(self._labels) > LABELS_KEPT:
                self._labels.popitem(last=False)
        self._pub.publish(msg)
        self._published += 1

    def _message(self, image):
        """Return the Image of an array (mono8) or a file (its own encoding); None: unreadable."""
        if not isinstance(image, np.ndarray):
            from topspark_ros.core.data.dataset import DatasetError
            from topspark_ros.core.data.folder import read_image
            try:
                image, layout = read_image(image)
            except DatasetError as exc:
                self.unreadable += 1
                self.get_logger().warn(f'{exc}: skipped ({self.unreadable} so far)')
                return None
            if image.dtype != np.uint8:  # 16-bit grey: its top byte
                image = (image >> 8).astype(np.uint8)
            if layout == 'rgba':
                image = np.ascontiguousarray(image[..., :3])
            return array_to_image(image, 'mono8' if layout == 'mono' else 'rgb8')
        return array_to_image(image, 'mono8')


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
