"""Argument types (argparse ``type=`` callables) and checks shared by ``topspark`` commands."""

import argparse
import sys

PROG = 'topspark'


class UsageError(Exception):
    """A command-line usage error (exit status 2)."""


def positive_int(text: str) -> int:
    """Parse a positive int."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f'must be >= 1, got {value}')
    return value


def ray_address(text: str) -> str:
    """Parse ``--ray``: ``auto`` or a head node's address (empty: ran in-process, unsaid)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("expected auto or HOST:PORT, got ''")
    return text.strip()


MAX_THREADS = 256
"""Most threads ``--threads`` takes (the classifier's ``torch_threads`` likewise): 100 000
ended the process in a segmentation fault, after libgomp's 'Thread creation failed' (a CLI
review)."""


def thread_count(text: str) -> int:
    """Parse a thread count, 1 to :data:`MAX_THREADS`."""
    value = positive_int(text)
    if value > MAX_THREADS:
        raise argparse.ArgumentTypeError(f'must be <= {MAX_THREADS}, got {value}')
    return value


def non_negative_int(text: str) -> int:
    """Parse a non-negative int."""
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f'must be >= 0, got {value}')
    return value


def non_negative_float(text: str) -> float:
    """Parse a finite float >= 0."""
    value = float(text)
    if not 0 <= value < float('inf'):
        raise argparse.ArgumentTypeError(f'must be finite and >= 0, got {text}')
    return value


def positive_float(text: str) -> float:
    """Parse a finite float > 0 (``--dt-ms inf`` trained, then failed to save: a CLI review)."""
    value = float(text)
    if not 0 < value < float('inf'):
        raise argparse.ArgumentTypeError(f'must be finite and > 0, got {text}')
    return value


def fraction(text: str) -> float:
    """Parse a fraction in [0, 1)."""
    value = float(text)
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f'must be in [0, 1), got {text}')
    return value


def image_size(text: str) -> tuple:
    """Parse ``S`` or ``HxW`` into ``(height, width)`` (pixels, each >= 1)."""
    from topspark_ros.core.data.folder import image_size as parse

    try:
        return parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def sensor_size(text: str) -> tuple:
    """Parse ``WxH`` (a sensor's width and height, as a ``.raw`` header writes it) into a pair."""
    from topspark_ros.core.events.files import parse_sensor_size

    try:
        return parse_sensor_size(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def available_train(args, n_images: int, held_out_n: int) -> int:
    """
    Return how many training images to use: ``--n-train``, or all there are if it asks more.

    Asking for more than the split holds is not an error (a note on stderr says so): more
    presentations come from ``--epochs``. Raises ValueError when no image is left once
    ``held_out_n`` are held out.
    """
    available = n_images - held_out_n
    if available < 1:
        raise ValueError(f'no training images left: the split has {n_images} and --n-eval '
                         f'holds out {held_out_n}')
    if args.n_train > available:
        given = '' if getattr(args, 'n_train_given', False) else ' (the default)'
        print(f'topspark: note: --n-train {args.n_train}{given} exceeds the {available} '
              f'training images available; using {available} (--epochs gives more passes)',
              file=sys.stderr)
    return min(args.n_train, available)


def available_eval(args, n_images: int) -> int:
    """
    Return how many images of the test split to evaluate: ``--n-eval``, or all there are.

    Asking for more says so on stderr (fewer were evaluated without a word; a review).
    """
    if args.n_eval > n_images:
        print(f'topspark: note: --n-eval {args.n_eval} exceeds the {n_images} images of the '
              f'test split; evaluating {n_images}', file=sys.stderr)
    return min(args.n_eval, n_images)


def parse_grid(text: str) -> list:
    """Parse ``--grid``: a comma-separated list of timestep counts (each >= 1)."""
    try:
        grid = [int(t) for t in text.split(',') if t.strip()]
    except ValueError:
        raise UsageError(f'--grid: expected comma-separated integers, got {text!r}') from None
    if not grid or min(grid) < 1:
        raise UsageError(f'--grid: timestep counts must be >= 1, got {text!r}')
    twice = sorted({t for t in grid if grid.count(t) > 1})
    if twice:  # (counted twice in enhance's work estimate and its resume key; a review)
        raise UsageError(f'--grid: T={", ".join(map(str, twice))} given twice in {text!r}')
    return grid


def parse_roi(text: str) -> tuple:
    """Parse ``--roi X,Y,W,H``: a sensor region, four integers (``W``, ``H`` >= 1)."""
    try:
        values = tuple(int(v) for v in text.split(','))
    except ValueError:
        values = ()
    if len(values) != 4 or min(values[:2]) < 0 or min(values[2:]) < 1:
        raise argparse.ArgumentTypeError(f'expected X,Y,W,H (pixels of the sensor, W and H >= '
                                         f'1), got {text!r}')
    return values


def refuse_timesteps(args) -> None:
    """
    Refuse ``-T`` for a command that measures the T of ``--grid`` (UsageError).

    ``enhance -T 5000`` ran, the 5000 unused and unsaid (a review).
    """
    if getattr(args, 'timesteps_given', False):
        raise UsageError(f'-T/--timesteps: {PROG} {args.command} measures the T of --grid '
                         f'(--grid {args.timesteps}, or several: --grid 64,32,16)')


class StoreGiven(argparse.Action):
    """
    Store the option's value and note that it was given (``<dest>_given`` True).

    For an option whose default one command replaces with its own (``eval``'s ``-T``: the T the
    model was made for) without changing the default the other commands share.
    """

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        """Store ``values`` and mark the option given."""
        setattr(namespace, self.dest, values)
        setattr(namespace, f'{self.dest}_given', True)
