"""Argument types shared by the ``topspark`` subcommands (argparse ``type=`` callables)."""

import argparse


def positive_int(text: str) -> int:
    """Parse a positive int."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f'must be >= 1, got {value}')
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
    """Parse a positive float."""
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f'must be > 0, got {text}')
    return value
