"""
The ``topspark`` command-line tool: train and evaluate spiking networks without ROS.

``topspark train`` learns a Diehl & Cook STDP network online on (unlabelled) training images,
assigns neuron labels from a labelled subset, optionally evaluates on held-out images, and
saves a checkpoint (with ``--params-from PROFILE``, at the parameters enhanced for its T).
``topspark eval`` loads a checkpoint and measures accuracy and speed. ``topspark sweep``
measures a timestep profile; ``topspark enhance`` searches parameters per T on a validation
slice of the training split and writes them into the profile.
With ``--dataset nmnist-synth`` every command works on event data (the synthetic N-MNIST-like set
of :mod:`topspark_ros.core.data.synthetic_events`): models learn and are measured on event windows
encoded as :mod:`topspark_ros.core.events.encode` says, and the checkpoint records that encoding
(``enhance`` too, for a model trained on events). With ``--json`` the last line of stdout is one
JSON object with the results. Expected errors (bad paths, bad checkpoints, bad arguments) print one
``topspark: error: ...`` line to stderr and exit non-zero. Heavy imports (numpy, numba, torch)
happen inside the commands so that ``topspark --help`` stays fast.

This module runs a command and prints its result; the parser is in
:mod:`~topspark_ros.cli.parser`, each command (options and ``run``) in its own module, and the
work in core.
"""

import contextlib
import json
import signal
import sys
import threading
from typing import Optional, Sequence

from topspark_ros.cli import common, enhance, evaluate, events, exchange, recover, sweep, train
from topspark_ros.cli.args import PROG, UsageError
from topspark_ros.cli.parser import build_parser, ROS_COMMANDS
from topspark_ros.core.signals import handle_unless_ignored, put_back, STOP_SIGNALS
from topspark_ros.core.threads import set_torch_threads

EXIT_ERROR = 1
EXIT_USAGE = 2


class Terminated(KeyboardInterrupt):
    """
    SIGTERM or SIGHUP came: raised where the main thread is, so what it writes is cleaned up.

    ``signum``: the signal (the exit status is 128 + it).
    """

    def __init__(self, signum: int = signal.SIGTERM) -> None:
        """Keep the signal's number."""
        super().__init__(signum)
        self.signum = int(signum)


_TERMINATED_BY = []
"""The SIGTERM or SIGHUP that came, if one did (a library may turn Terminated into a plain
KeyboardInterrupt: Ray's wait does, and a command stopped by SIGTERM under --ray said
'interrupted', exit 130, not 143; a review)."""


def _terminate(signum, frame) -> None:
    """Raise :class:`Terminated` (the SIGTERM and SIGHUP handler while a command runs)."""
    _TERMINATED_BY.append(int(signum))
    raise Terminated(signum)


@contextlib.contextmanager
def _sigterm_unwinds():
    """
    Make SIGTERM and SIGHUP unwind the command as Ctrl-C does.

    ``timeout``, systemd and docker stop send SIGTERM; a closed terminal or SSH session, SIGHUP.

    Python's default ends the process at once: a conversion killed so left its hidden
    temporary output behind (hundreds of MB; a user review), where Ctrl-C removed it.
    """
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers are the main thread's
        return
    # SIGHUP likewise: the SSH session to the robot that ran the command dropped (a recovery
    # so ended left a full copy of the recording behind; a review).
    # A signal ignored (``nohup`` ignores SIGHUP) stays ignored: the user asked for that.
    previous = handle_unless_ignored(STOP_SIGNALS, _terminate)
    try:
        yield
    finally:
        put_back(previous)


COMMANDS = {'train': train, 'eval': evaluate, 'sweep': sweep, 'enhance': enhance,
            'events': events, 'export': exchange, 'import': exchange, 'recover': recover}
"""The module that runs each command (its ``run(args)`` returns the result dict)."""


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


def _print_confidence(rows: list) -> None:
    """Print each T's results by confidence: the most confident bin, how many right there."""
    print(f'{"T":>6} {"accuracy":>9} {"with class":>10} {"top bin":>8} {"results":>8} '
          f'{"right":>7} {"score":>6}  (the most confident bin that holds results)')
    for row in rows:
        bins = [b for b in row['confidence_bins'] if b[1]]
        classed = sum(b[1] for b in bins)
        if not bins:
            print(f'{row["timesteps"]:6d} {row["accuracy"]:9.2%} {classed:10d}  (no bins)')
            continue
        low, n, correct = bins[-1]
        score = row['score_at_share_1']
        print(f'{row["timesteps"]:6d} {row["accuracy"]:9.2%} {classed:10d} {low:>8g} '
              f'{n / classed:8.1%} {correct / n:7.1%} '
              f'{"-" if score is None else f"{score:6.3f}":>6}')


def _print_human(result: dict) -> None:
    """
    Print the results for people, one ``key: value`` per line (a table for entries).

    A label-free sweep's (``reference_timesteps`` set) accuracies are agreements with the
    reference T, and are printed as such (they were headed "accuracy"; a review).
    """
    agreement = result.get('command') == 'sweep' and result.get('reference_timesteps') is not None
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
        if key == 'confidence':
            _print_confidence(value)
            continue
        if key == 'entries':
            right, exit_right = ('agreement', 'exit agr') if agreement \
                else ('accuracy', 'exit acc')
            print(f'{"T":>6} {right:>9} {"latency ms":>11} {"energy uJ":>10} {"train uJ":>9} '
                  f'{exit_right:>9} {"exit steps":>10}')
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
        if agreement and key == 'accuracy':
            key = f"agreement with T={result['reference_timesteps']}"
        print(f'{key}: {value}')


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run ``topspark`` with ``argv`` (default: ``sys.argv[1:]``); return the exit status."""
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    _TERMINATED_BY.clear()  # (an earlier call's, in process: a Ctrl-C read as it; a review)
    try:
        if argv and argv[0] in ROS_COMMANDS:
            # argparse.REMAINDER drops a leading option, so these skip the parser entirely.
            # SIGTERM unwinds until the command sets its own handling: 0.5 s into `topspark
            # record` (importing it) it ended the process without a word (a review).
            with _sigterm_unwinds():
                return _run_ros_command(argv[0], argv[1:])
        args = parser.parse_args(argv)
        args.argv = argv
        if args.command is None:
            parser.print_help(sys.stderr)
            return EXIT_USAGE
        if hasattr(args, 'threads'):
            set_torch_threads(args.threads)
        common.check_device(args)
        with _sigterm_unwinds():
            result = COMMANDS[args.command].run(args)
    except UsageError as exc:
        print(f'{PROG}: error: {exc}', file=sys.stderr)
        return EXIT_USAGE
    except (OSError, ValueError, RuntimeError) as exc:
        print(f'{PROG}: error: {exc}', file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt as exc:  # (Terminated, or what a library made of it)
        signum = exc.signum if isinstance(exc, Terminated) else \
            (_TERMINATED_BY[0] if _TERMINATED_BY else None)
        if signum is not None:
            print(f'{PROG}: terminated', file=sys.stderr)
            return 128 + signum
        print(f'{PROG}: interrupted', file=sys.stderr)
        return 130
    if args.json:
        print(json.dumps(result, sort_keys=True))
    else:
        _print_human(result)
    return 0
