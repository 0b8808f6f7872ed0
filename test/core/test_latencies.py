"""Latencies per T as the timestep controller keeps them (core/latencies.py)."""

from topspark_ros.core.latencies import LatencyWindows, MIN_SAMPLES, WINDOW


def test_two_classifiers_at_different_t_each_fill_their_own_window() -> None:
    """Results alternating between two T were never measured: one window, cleared at each T."""
    windows = LatencyWindows()
    for k in range(MIN_SAMPLES - 1):
        windows.add(64, 4.0 + k * 0.01)
        windows.add(32, 2.0)
    assert windows.measured() is None  # not enough of either yet
    windows.add(64, 4.5)
    assert windows.measured() == (64, 4.02)
    assert windows.points() == ()  # 32 has only MIN_SAMPLES - 1
    windows.add(32, 2.0)
    assert windows.measured() == (32, 2.0) and windows.points() == ((64, 4.02),)
    for _ in range(3 * WINDOW):  # as long as both run, neither window starts afresh
        windows.add(64, 4.0)
        windows.add(32, 2.0)
    assert windows.measured() == (32, 2.0) and windows.points() == ((64, 4.0),)


def test_one_stream_switching_t_keeps_the_t_before_until_the_new_one_counts() -> None:
    """After a switch the T before stands until the new T has MIN_SAMPLES latencies."""
    windows = LatencyWindows()
    for _ in range(WINDOW):
        windows.add(64, 4.0)
    for k in range(MIN_SAMPLES - 1):
        windows.add(32, 2.0)
        assert windows.measured() == (64, 4.0)  # one slow first frame moves nothing
    windows.add(32, 2.0)
    assert windows.measured() == (32, 2.0) and windows.points() == ((64, 4.0),)
    # Back at 64 after more than a window at 32: its old latencies are no measurement of
    # now; its point stands until MIN_SAMPLES new ones.
    for _ in range(WINDOW):
        windows.add(32, 2.0)
    windows.add(64, 9.0)
    assert windows.measured() == (32, 2.0) and windows.points() == ((64, 4.0),)
    for _ in range(MIN_SAMPLES - 1):
        windows.add(64, 9.0)
    assert windows.measured() == (64, 9.0) and windows.points() == ((32, 2.0),)


def test_a_window_keeps_its_latest_latencies_and_clear_forgets_all() -> None:
    """The median is of the last WINDOW latencies of the T; another profile starts afresh."""
    windows = LatencyWindows(window=5, min_samples=3)
    for ms in (1.0, 1.0, 1.0, 1.0, 1.0, 7.0, 7.0, 7.0):
        windows.add(16, ms)
    assert windows.measured() == (16, 7.0)
    windows.clear()
    assert windows.measured() is None and windows.points() == ()
