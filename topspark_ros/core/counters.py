"""
Counters read as increments: what happened since the last status, from totals that only grow.

And :class:`Reasons`: which of the reasons inputs are skipped for to log now.

Light on purpose (no numpy, no torch): the nodes' diagnostics use it at start-up.
"""

import re

_NUMBER = re.compile(r'\b[0-9]+(\.[0-9]+)?\b')
_BYTES = re.compile(r'\b[0-9a-f]{2}(?: [0-9a-f]{2})+\b')
"""Bytes as hex, space-separated (``they begin 52 49 46 46 f0 00 00 00``)."""


class Recent:
    """
    Increments of counters since the previous status.

    ``since(key, total)`` returns ``total`` minus the total given for ``key`` last time (0 the
    first time a key is seen with 0; a counter that restarted from 0 counts from there).
    """

    def __init__(self) -> None:
        """Start with no totals seen."""
        self._seen = {}

    def since(self, key: str, total: int) -> int:
        """Return how much ``key`` grew since the previous call, and remember ``total``."""
        previous = self._seen.get(key, 0)
        self._seen[key] = total
        return total - previous if total >= previous else total


class Reasons:
    """
    Which reasons to log now: a new one at once, the same one again once a period has passed.

    A reason is its text with the numbers and the bytes quoted in hex taken out (``cannot
    decode 5525 bytes of 'jpeg'`` and ``... 5530 bytes ...`` are one, and so are the first
    bytes of two WebP frames, their sizes in them: each was logged, 30 a second; ``rgb8`` and
    ``rgb16`` are two). One throttle for
    every reason hid the second of two problems a camera had within its period: an
    unsupported encoding after a truncated frame was never logged (a review).
    """

    KEEP = 32
    """Reasons remembered, the latest (an unbounded set of texts would grow for ever)."""

    def __init__(self, period_s: float) -> None:
        """Log a reason again at most every ``period_s`` seconds."""
        self._period_s = float(period_s)
        self._last = {}

    def due(self, reason: str, now_s: float) -> bool:
        """Return whether to log ``reason`` at ``now_s`` (a monotonic time, s), and note it."""
        key = _NUMBER.sub('#', _BYTES.sub('#', str(reason)))
        last = self._last.pop(key, None)
        if last is not None and now_s - last < self._period_s:
            self._last[key] = last  # (kept, as the latest)
            return False
        self._last[key] = now_s
        while len(self._last) > self.KEEP:
            del self._last[next(iter(self._last))]
        return True
