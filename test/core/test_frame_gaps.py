"""Frames lost in transport, counted from the stamps of the frames that arrived."""

import numpy as np
import pytest

from topspark_ros.core.frame_gaps import FrameGaps

PERIOD_NS = 33_333_333  # 30 Hz


def _stamps(n: int, skip=(), jitter_ns: int = 0, seed: int = 0) -> list:
    rng = np.random.default_rng(seed)
    noise = rng.integers(-jitter_ns, jitter_ns + 1, n) if jitter_ns else np.zeros(n, int)
    return [1_000_000_000 + i * PERIOD_NS + int(noise[i]) for i in range(n) if i not in skip]


def test_skipped_frames_are_counted_with_jitter() -> None:
    """Single and multi-frame gaps of a jittery 30 Hz source: every lost frame counted."""
    skip = {10, 11, 12, 40, 77, 78, 150}
    gaps = FrameGaps()
    for stamp in _stamps(200, skip, jitter_ns=PERIOD_NS // 5, seed=3):
        gaps.add(stamp)
    assert gaps.lost == len(skip) and gaps.gaps == 4
    assert gaps.received == 200 - len(skip)
    assert gaps.stats()['frame_period_ms'] == pytest.approx(PERIOD_NS * 1e-6, rel=0.2)


def test_what_it_cannot_see_is_not_counted_as_loss() -> None:
    """Losses before the period is known, pauses, zero stamps, reordering and restarts."""
    gaps = FrameGaps()
    stamps = _stamps(60, skip={1})  # lost before the period is known: not seen
    for stamp in stamps[:30]:
        gaps.add(stamp)
    assert gaps.lost == 0
    gaps.add(stamps[30] + 60 * PERIOD_NS)  # the source paused 2 s: a pause, not 60 losses
    assert gaps.lost == 0 and gaps.pauses == 1
    gaps.add(0)
    assert gaps.unstamped == 1 and gaps.lost == 0
    last = stamps[30] + 60 * PERIOD_NS
    assert gaps.add(last + 3 * PERIOD_NS) == 2  # two missing ...
    gaps.add(last + PERIOD_NS)  # ... one of them only late (delivered out of order)
    assert gaps.lost == 1 and gaps.out_of_order == 1
    gaps.add(last + 2 * PERIOD_NS)
    assert gaps.lost == 0 and gaps.gaps == 0
    gaps.add(5 * PERIOD_NS)  # a restarted source (bag loop): starts afresh, nothing lost
    gaps.add(6 * PERIOD_NS)
    assert gaps.lost == 0 and gaps.out_of_order == 3
    with pytest.raises(ValueError):
        FrameGaps(pause_periods=1.0)


def test_frames_missing_before_one_that_waited_while_busy_are_replaced_not_lost() -> None:
    """A frame that waited while the node was busy: the gap before it is counted apart."""
    stamps = _stamps(40)
    gaps = FrameGaps()
    for stamp in stamps[:20]:
        gaps.add(stamp)
    assert gaps.add(stamps[24], busy=True) == 4  # 20 to 23 replaced in the queue
    assert gaps.replaced == 4 and gaps.lost == 0 and gaps.gaps == 0
    assert gaps.add(stamps[27]) == 2 and gaps.lost == 2  # a gap while idle: lost in transport
    stats = gaps.stats()
    assert stats['frames_replaced_while_busy'] == 4 and stats['frames_lost_in_transport'] == 2
    assert gaps.add(stamps[28], busy=True) == 0 and gaps.replaced == 4  # waited, none missing
    assert gaps.received == 23


def test_under_steady_overload_the_period_learnt_while_keeping_up_counts_every_frame() -> None:
    """
    Every frame waits (the node takes every fourth): the period stays the source's.

    Learnt from the gaps of frames that waited, it drifted to the node's pace and the count
    fell to nothing (a review: 0 of 199 frames counted at 100 ms a frame against 30 Hz).
    """
    stamps = _stamps(400)
    gaps = FrameGaps()
    for stamp in stamps[:20]:  # keeping up
        gaps.add(stamp)
    for k in range(23, 400, 4):  # then 3 of every 4 frames replaced while busy
        assert gaps.add(stamps[k], busy=True) == 3
    assert gaps.replaced == 3 * len(range(23, 400, 4)) and gaps.lost == 0
    assert gaps.period_ns == pytest.approx(PERIOD_NS, rel=1e-6)
    # A busy spell of 20 periods (a periodic save) is counted, not read as a pause.
    assert gaps.add(stamps[399] + 20 * PERIOD_NS, busy=True) == 19 and gaps.pauses == 0
    # Sequence numbers, where the reader has them, win over the stamps.
    assert gaps.add(stamps[399] + 22 * PERIOD_NS, busy=True, missed=5) == 5
    assert gaps.add(stamps[399] + 23 * PERIOD_NS) == 0 and gaps.lost == 0


def test_a_node_busy_from_its_first_frame_counts_nothing_from_stamps_and_says_so() -> None:
    """
    No period known (the node never kept up): the stamps alone tell nothing.

    The frames that waited are counted as such (``frames_waited_uncounted``): with
    ``frames_replaced_while_busy`` at 0 alone, a node on Cyclone DDS dropping two frames of
    three read as dropping none.
    """
    gaps = FrameGaps()
    for k in range(0, 40, 4):
        assert gaps.add(1_000_000_000 + k * PERIOD_NS, busy=k > 0) == 0
    assert gaps.replaced == 0 and gaps.lost == 0 and gaps.period_ns is None
    assert gaps.stats()['frames_waited_uncounted'] == 9
    gaps.add(0, busy=True)  # no stamp either
    assert gaps.waited_uncounted == 10 and gaps.unstamped == 1
    # Once the period is known, a frame that waited is counted from the stamps.
    kept_up = FrameGaps()
    for k in range(5):
        kept_up.add(1_000_000_000 + k * PERIOD_NS)
    assert kept_up.add(1_000_000_000 + 8 * PERIOD_NS, busy=True) == 3
    assert kept_up.replaced == 3 and kept_up.waited_uncounted == 0


def test_frames_not_listened_to_are_a_pause_not_a_loss() -> None:
    """
    A deactivate and activate of 0.27 s at 30 Hz: a pause, not 7 frames lost in transport.

    The period learnt is kept: a loss after it is counted at once.
    """
    gaps = FrameGaps()
    gaps.pause()  # before any frame: nothing to pause
    assert gaps.pauses == 0
    stamps = _stamps(40)
    for stamp in stamps[:20]:
        gaps.add(stamp)
    gaps.pause()
    assert gaps.add(stamps[28]) == 0 and gaps.lost == 0 and gaps.pauses == 1
    assert gaps.add(stamps[30]) == 1 and gaps.lost == 1  # (stamps[29] lost)
