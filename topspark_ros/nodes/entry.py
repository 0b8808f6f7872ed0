"""
The executables' entry: a node's ``main``, quiet when Ctrl-C comes while it starts.

Importing a node takes seconds (torch, rclpy); a SIGINT then, as a Ctrl-C of ``ros2 launch``
right after it started sends, raised KeyboardInterrupt out of the import with a traceback and
launch reported the process as died (a review). Once the node runs, its runner handles the
signal (:mod:`topspark_ros.nodes.runner`). Cheap to import: nothing but the standard library and
:mod:`topspark_ros.core.signals`.
"""

import importlib
import sys

from topspark_ros.core.signals import handle_unless_ignored, put_back, STOP_SIGNALS


def run(module: str, interrupted: int = 0) -> int:
    """
    Return the exit status of ``module``'s ``main()``, ``interrupted`` on a Ctrl-C.

    ``interrupted``: the status of a run cut short by SIGINT (0 for a node, as its runner
    returns after one; the command line's 130). SIGTERM and SIGHUP (unless ignored, as
    under nohup) stop it so too while it imports: in its first second a node killed by
    SIGTERM, systemd's and docker's stop, ended by the signal (status -15, nothing said), and
    0 from then on (a review). Their handlers are put back once it has imported (a module
    without its own handling, as ``doctor``, dies by them as before).
    """
    previous = handle_unless_ignored(STOP_SIGNALS, _interrupt)
    try:
        try:
            main = importlib.import_module(module).main
        finally:
            put_back(previous)
        return main()
    except KeyboardInterrupt:
        print(f'{module.rsplit(".", 1)[-1]}: interrupted while starting', file=sys.stderr)
        return interrupted


def _interrupt(signum, frame) -> None:
    """Stop as a Ctrl-C does (the modules' own handling replaces this one)."""
    raise KeyboardInterrupt
