"""
Frames lost before they arrived, counted from the capture stamps of those that did.

``sensor_msgs/Image`` carries no sequence number, so a frame the transport lost (a best-effort
sample dropped by the network or overwritten in a full reader queue) leaves only a longer
interval between the stamps of the frames around it. With ``P`` the frame period (median of
the last ``history`` stamp intervals) and ``dt`` the interval before a frame:

.. code-block:: text

    missing = floor(dt / P + 0.5) - 1      (0 while dt < 1.5 P)

counted once ``min_intervals`` intervals have given ``P``. An interval longer than
``pause_periods * P`` is a pause of the source (stopped), not a loss, and so is the interval
across a time this node did not listen (:meth:`FrameGaps.pause`: inactive), however short;
a stamp older than the previous one is either a frame of the last gap arriving late
(reordered: no longer counted as lost) or a restarted source (counting starts afresh).

A frame that waited in the subscriber's queue while the node was busy with an earlier one
(``busy``) tells it more: the frames missing before it arrived while the node was busy too,
and were replaced in its keep-last queue (or lost in transport meanwhile, which the node,
busy, would not have classified either); they are counted as ``replaced``, not lost, from
the period learnt while the node kept up (a source that paused or restarted meanwhile reads
as frames replaced; none are counted while no period is known) unless the caller counted
them (``missed``: the publisher's sequence numbers). A frame that waited when neither told
anything (no period known yet, no stamp) is counted as ``waited_uncounted``: what it replaced,
if anything, is not counted, and a node busy from its first frame on shows that count rising
with ``replaced`` at 0.

What it cannot see: frames lost before ``P`` is known or across a pause, losses after the last
frame received, frames of a source whose stamps are zero, repeated or jittered by more than
half a period, and a source that slows down on purpose (fewer frames per second look like
losses until the median follows, after about ``history / 2`` frames).
"""

import collections
from dataclasses import dataclass, field
import statistics
from typing import Optional


@dataclass
class FrameGaps:
    """
    Counts frames lost in transport from stamps (nanoseconds); not thread-safe.

    Attributes
    ----------
    history
        stamp intervals in the median that estimates the frame period.
    min_intervals
        intervals needed before gaps are counted.
    pause_periods
        an interval longer than this many periods is a pause, not a loss.

    """

    history: int = 15
    min_intervals: int = 3
    pause_periods: float = 10.0
    received: int = 0
    lost: int = 0
    replaced: int = 0
    gaps: int = 0
    pauses: int = 0
    out_of_order: int = 0
    unstamped: int = 0
    waited_uncounted: int = 0
    _last_ns: Optional[int] = None
    _last_gap_lost: int = 0
    _intervals: collections.deque = field(default_factory=collections.deque)

    def __post_init__(self) -> None:
        if self.history < 1 or self.min_intervals < 1 or not self.pause_periods > 1.5:
            raise ValueError('history and min_intervals must be >= 1, pause_periods > 1.5')
        self._intervals = collections.deque(maxlen=self.history)

    @property
    def period_ns(self) -> Optional[float]:
        """Return the estimated frame period (ns), or None before ``min_intervals``."""
        if len(self._intervals) < self.min_intervals:
            return None
        return statistics.median(self._intervals)

    def add(self, stamp_ns: int, *, busy: bool = False, missed: Optional[int] = None) -> int:
        """
        Account one received frame stamped ``stamp_ns``; return the frames missing before it.

        ``busy``: the frame arrived while the node was busy with an earlier one; the frames
        missing before it are counted as :attr:`replaced`, not :attr:`lost`: ``missed`` of
        them when the caller knows (sequence numbers), else from the stamps. The period is
        not learnt from such a gap (under steady overload every frame waits, and the period
        would drift to the node's pace), and no pause is read in it.
        """
        self.received += 1
        if busy and missed is not None:
            self.replaced += missed
            if stamp_ns > 0 and (self._last_ns is None or stamp_ns > self._last_ns):
                self._last_ns, self._last_gap_lost = stamp_ns, 0
            self.unstamped += stamp_ns <= 0
            return missed
        if stamp_ns <= 0:
            self.unstamped += 1
            self.waited_uncounted += busy
            return 0
        if self._last_ns is None:
            self._last_ns = stamp_ns
            self.waited_uncounted += busy
            return 0
        dt = stamp_ns - self._last_ns
        period = self.period_ns
        if dt <= 0:
            self.out_of_order += 1
            if dt < 0 and period is not None and self._last_gap_lost > 0 \
                    and -dt < (self._last_gap_lost + 0.5) * period:
                self._last_gap_lost -= 1  # one frame of the last gap came late: not lost
                self.lost -= 1
                self.gaps -= self._last_gap_lost == 0
            elif dt < 0:
                self._last_ns, self._last_gap_lost = stamp_ns, 0  # a restarted source
            return 0
        self._last_ns = stamp_ns
        if busy:  # replaced in the queue while the node was busy: none of them comes late
            self._last_gap_lost = 0
            if period is None:
                self.waited_uncounted += 1
                return 0
            missing = max(0, int(dt / period + 0.5) - 1)
            self.replaced += missing
            return missing
        if period is None:
            self._intervals.append(dt)
            return 0
        if dt > self.pause_periods * period:
            self.pauses += 1
            self._last_gap_lost = 0
            return 0
        self._intervals.append(dt)
        missing = max(0, int(dt / period + 0.5) - 1)
        self._last_gap_lost = missing
        if missing:
            self.lost += missing
            self.gaps += 1
        return missing

    def pause(self) -> None:
        """
        Note that frames were not listened to (the node was inactive): no loss is read across.

        The interval to the next frame is a pause (counted in :attr:`pauses`), however short:
        a deactivate and activate of 0.27 s at 30 Hz read as 5 frames lost in transport (a
        review). The period learnt is kept. Nothing before a first frame.
        """
        if self._last_ns is not None:
            self._last_ns, self._last_gap_lost = None, 0
            self.pauses += 1

    def stats(self) -> dict:
        """Return the counters (for ``/diagnostics``)."""
        period = self.period_ns
        return {'frames_received': self.received, 'frames_lost_in_transport': self.lost,
                'frames_replaced_while_busy': self.replaced,
                'transport_gaps': self.gaps, 'stream_pauses': self.pauses,
                'stamps_out_of_order': self.out_of_order, 'frames_unstamped': self.unstamped,
                'frames_waited_uncounted': self.waited_uncounted,
                'frame_period_ms': 0.0 if period is None else period * 1e-6}
