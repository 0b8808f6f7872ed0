"""Stop a process a test started: what every cross-process test does on its way out."""

import subprocess
from typing import Optional


def stop(proc: subprocess.Popen, timeout_s: float = 20.0) -> Optional[str]:
    """
    SIGTERM ``proc`` if it still runs, wait up to ``timeout_s``, then kill it.

    Returns what it wrote to a pipe (None where its output went elsewhere): a test that failed
    can show it.
    """
    if proc.poll() is None:
        proc.terminate()
    try:
        out, _ = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
    return out
