"""
``topspark recover``: a closed bag from a recording killed before it closed, without ROS.

``topspark recover DIR.partial`` (what ``topspark record`` leaves after SIGKILL or a power
loss) or ``topspark recover BAG_FOLDER`` (``ros2 bag record`` killed: no ``metadata.yaml``)
writes a new bag, ``DIR`` by default (``-o`` elsewhere), with every message the storage files
hold (:mod:`topspark_ros.core.data.recover`). The files read are left as they are; remove them
once the new bag is what you need.

The parser (:mod:`topspark_ros.cli.parser`) adds it with :func:`add_parser`;
:mod:`topspark_ros.cli.main` runs it with :func:`run`.
"""

import argparse
import errno
import sys

from topspark_ros.cli import common
from topspark_ros.cli.args import PROG, UsageError


def add_parser(sub) -> None:
    """Add the ``recover`` command to the subparsers ``sub``."""
    recover = sub.add_parser(
        'recover', help='make a closed bag of a recording killed before it closed',
        description='Read the storage files of a recording that was killed before it closed '
        "(topspark record's DIR.partial, or a ros2 bag record folder without metadata.yaml) "
        'and write their messages into a new, closed bag, which play and --data bag:DIR read. '
        'sqlite3: all but the transaction in progress (about the last second with topspark '
        'record); MCAP: all but the chunk the recorder had in memory (about 1 MB of messages). '
        'Damaged pages or chunks cost their own messages, with a warning. The files read are '
        'left as they are.')
    recover.add_argument('source', help='DIR.partial, a bag folder without metadata.yaml, or '
                         'one .db3 or .mcap file')
    recover.add_argument('--output', '-o', help='the new bag (default: DIR beside DIR.partial, '
                         'for it or anything in it; else FOLDER_recovered beside the folder); '
                         'must not exist')
    recover.add_argument('--json', action='store_true',
                         help='print one JSON object with the results as the last line')
    recover.add_argument('--quiet', '-q', action='store_true',
                         help="no progress bar (it counts the recording's bytes read)")


def run(args: argparse.Namespace) -> dict:
    """Run ``topspark recover``; return the result dict."""
    from pathlib import Path

    from topspark_ros.core.data.recover import (default_target, recover_bag, RecoveryError,
                                                source_bytes, storage_files)

    if args.output is not None and not args.output.strip():
        raise UsageError('--output is empty: name the new bag')
    source = Path(args.source)
    try:
        files = storage_files(source)
    except RecoveryError as exc:
        raise UsageError(str(exc)) from None
    target = Path(args.output) if args.output else default_target(source)
    if target.exists():
        raise UsageError(f'{target} exists; give another --output (nothing is overwritten)')
    bar = common.progress(args, source_bytes(files), 'recover', unit='B', unit_scale=True)
    try:
        recovered = recover_bag(source, target, progress=bar.update)
    except RecoveryError as exc:
        raise UsageError(str(exc)) from None
    except OSError as exc:  # no room, a read-only folder: the bag can go elsewhere
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES):
            raise
        raise OSError(exc.errno, f'{exc.strerror or exc} (the new bag and, for a sqlite3 '
                      'file left with its journal or cut short, a copy of it are written '
                      f'beside {target}: give --output on a disk with room that this user '
                      'can write)') from None
    finally:
        bar.close()
    for path, problems in recovered.problems.items():
        for problem in problems:
            print(f'{PROG}: warning: {path}: {problem}', file=sys.stderr)
    return {'command': 'recover', 'bag': str(recovered.bag), 'storage': recovered.storage,
            'files': [str(f) for f in files], 'messages': recovered.total,
            'topics': recovered.messages, 'first_ns': recovered.first_ns,
            'last_ns': recovered.last_ns, 'unread_bytes': recovered.unread_bytes,
            'problems': recovered.problems}
