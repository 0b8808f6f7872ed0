"""
Signals held off while a step that must not be cut in two runs.

A training run saves its learning state when it is interrupted; the state must be that of
whole steps (a chunk of inputs learnt, the model's seed stream moved on by it), or a resumed
run would learn part of a chunk twice. Python runs a signal's handler between two bytecodes,
which may be in the middle of such a step; :func:`signals_deferred` records SIGINT and SIGTERM
while its block runs and hands the first one to the handler that was in place once the block
is over (Ctrl-C's KeyboardInterrupt, the CLI's SIGTERM unwinding), so the interruption comes
between steps.
"""

import contextlib
import signal
import threading
from typing import Iterator

DEFERRED = (signal.SIGINT, signal.SIGTERM)
"""The signals :func:`signals_deferred` holds off."""
STOP_SIGNALS = (signal.SIGTERM,) + ((signal.SIGHUP,) if hasattr(signal, 'SIGHUP') else ())
"""Signals that stop a command or a node as Ctrl-C does: SIGTERM (``timeout``, systemd,
docker, ``ros2 launch``'s escalation), and SIGHUP (a terminal closed or an ssh session
dropped: a node's weights learnt on line since the last save were lost; a review)."""


def handle_unless_ignored(signums, handler) -> dict:
    """
    Set ``handler`` for each of ``signums`` that is not ignored; return the handlers replaced.

    An ignored signal stays ignored: the user asked for that (``nohup`` ignores SIGHUP). Give
    the result to :func:`put_back` to undo. Main thread only (Python's rule for handlers).
    """
    return {signum: signal.signal(signum, handler) for signum in signums
            if signal.getsignal(signum) is not signal.SIG_IGN}


def put_back(previous: dict) -> None:
    """Put back the handlers :func:`handle_unless_ignored` replaced (not C ones: it cannot)."""
    for signum, handler in previous.items():
        if handler is not None:
            signal.signal(signum, handler)


@contextlib.contextmanager
def signals_deferred(active: bool = True) -> Iterator[None]:
    """
    Hold SIGINT and SIGTERM off while the block runs; then act on the first that came.

    A no-op when ``active`` is False and outside the main thread (where Python runs no
    handler), and for a signal whose handler was not set from Python. The handler in place
    before the block gets the signal after it, also when the block raised; a default
    disposition is restored and the signal raised again.
    """
    if not active or threading.current_thread() is not threading.main_thread():
        yield
        return
    received = []

    def hold(signum, frame) -> None:
        received.append(signum)

    previous = {}
    for number in DEFERRED:
        if signal.getsignal(number) is not None:
            previous[number] = signal.signal(number, hold)
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
        if received:
            handler = previous[received[0]]
            if callable(handler):
                handler(received[0], None)
            elif handler == signal.SIG_DFL:
                signal.raise_signal(received[0])
