"""
Counters read as increments: what happened since the last status, from totals that only grow.

Light on purpose (no numpy, no torch): the nodes' diagnostics use it at start-up.
"""


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
