"""
Results of several classifiers on one topic, told apart by ``Classification.source``.

A timestep controller or an energy monitor may hear more than one classifier: two cameras
remapped to one ``classification`` topic, or a classifier restarted under it. Their rates add
up, each classifier's ``frames_dropped`` is a count of its own process (it starts from 0 again
when the process restarts), and a result of a model that the listener's profile does not
describe says nothing about that profile's T. A review of two classifiers on one controller:
intervals taken between the interleaved stamps of two 10 Hz cameras read 200 Hz (T cut from 64
to 8), and the monitor reported the largest ``frames_dropped`` it had seen instead of the sum.

Light on purpose (no numpy, no torch): the nodes use it.
"""

import collections
import statistics
from typing import Optional

MAX_SOURCES = 64
"""Sources remembered at most (the least recently heard is forgotten beyond)."""
INTERVALS_KEPT = 21
"""Intervals between a source's stamps whose median gives its rate."""
SOURCE_QUIET_S = 5.0
"""A source not heard for this long (steady time) no longer adds to the rate."""


def describes(profile_sha256: str, model_sha256: str, base_model_sha256: str) -> bool:
    """
    Return whether a profile of ``profile_sha256`` describes the model a result names.

    A result names the checkpoint its classifier loaded and, for weights learnt on line, the
    model they were learnt from: a profile of either describes it (the classifier's own rule,
    ``core.session.profile_fits``). A result that names no model ('': an older classifier, a
    base not known) is taken.
    """
    return not model_sha256 or profile_sha256 in (model_sha256, base_model_sha256)


class _Source:
    """What one classifier sent: its last stamp, recent intervals and dropped frames."""

    __slots__ = ('stamp_s', 'intervals', 'heard_s', 'dropped_seen', 'dropped_total')

    def __init__(self) -> None:
        self.stamp_s: Optional[float] = None
        self.intervals = collections.deque(maxlen=INTERVALS_KEPT)
        self.heard_s = 0.0
        self.dropped_seen = 0  # its last frames_dropped
        self.dropped_total = 0  # over its restarts


class Sources:
    """
    Per-source rates and dropped frames of the classifiers heard on one topic.

    A source is ``Classification.source`` ('' for a classifier of a version that did not name
    itself: all of those count as one).
    """

    def __init__(self) -> None:
        """Start with no source heard."""
        self._by = collections.OrderedDict()
        self._forgotten_dropped = 0  # of sources forgotten beyond MAX_SOURCES

    def _get(self, source: str, now_s: float) -> _Source:
        entry = self._by.pop(source, None)
        if entry is None:
            entry = _Source()
            while len(self._by) >= MAX_SOURCES:
                self._forgotten_dropped += self._by.popitem(last=False)[1].dropped_total
        self._by[source] = entry  # most recently heard last
        entry.heard_s = now_s
        return entry

    def stamp(self, source: str, stamp_s: float, now_s: float) -> None:
        """Take a result's input stamp ``stamp_s`` (s) from ``source``, heard at ``now_s``."""
        entry = self._get(source, now_s)
        if stamp_s <= 0.0:
            return
        if entry.stamp_s is not None and stamp_s > entry.stamp_s:
            entry.intervals.append(stamp_s - entry.stamp_s)
        entry.stamp_s = stamp_s

    def shift(self, step_s: float) -> None:
        """Count the sources as heard ``step_s`` later (the simulated clock leapt by it)."""
        for entry in self._by.values():
            entry.heard_s += step_s

    def rate_hz(self, now_s: float) -> Optional[float]:
        """
        Return the inputs a second of all sources heard lately (the sum), or None.

        Each source's rate is one over the median of its recent intervals; sources quiet for
        :data:`SOURCE_QUIET_S` do not count.
        """
        rates = [1.0 / statistics.median(e.intervals) for e in self._by.values()
                 if e.intervals and now_s - e.heard_s <= SOURCE_QUIET_S]
        return sum(rates) if rates else None

    def dropped(self, source: str, count: int, now_s: float) -> None:
        """Take a result's ``frames_dropped`` (its source's count since its process started)."""
        entry = self._get(source, now_s)
        count = int(count)
        # A count below the last: the classifier's process started again, counting from 0.
        entry.dropped_total += count - entry.dropped_seen if count >= entry.dropped_seen \
            else count
        entry.dropped_seen = count

    @property
    def dropped_total(self) -> int:
        """Return the frames dropped by all sources (over their restarts)."""
        return self._forgotten_dropped + sum(e.dropped_total for e in self._by.values())

    def names(self, now_s: float) -> list:
        """Return the sources heard within :data:`SOURCE_QUIET_S`, oldest first."""
        return [name or '(unnamed)' for name, e in self._by.items()
                if now_s - e.heard_s <= SOURCE_QUIET_S]
