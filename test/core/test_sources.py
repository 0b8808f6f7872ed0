"""Several classifiers on one topic (core/sources.py): rates add up, dropped frames add up."""

from topspark_ros.core import sources
from topspark_ros.core.sources import describes, Sources


def test_rates_of_interleaved_classifiers_add_up() -> None:
    """Two 10 Hz cameras 5 ms apart read 200 Hz between their interleaved stamps (a review)."""
    seen = Sources()
    for k in range(30):
        seen.stamp('/front/classifier', 100.0 + 0.1 * k, k * 0.1)
        seen.stamp('/dvs/classifier', 100.005 + 0.1 * k, k * 0.1)
    assert abs(seen.rate_hz(3.0) - 20.0) < 1e-6
    assert seen.names(3.0) == ['/front/classifier', '/dvs/classifier']
    # One goes quiet: after SOURCE_QUIET_S its rate no longer counts.
    for k in range(30, 120):
        seen.stamp('/front/classifier', 100.0 + 0.1 * k, k * 0.1)
    assert abs(seen.rate_hz(12.0) - 10.0) < 1e-6
    assert seen.names(12.0) == ['/front/classifier']
    assert Sources().rate_hz(0.0) is None
    unstamped = Sources()
    unstamped.stamp('', 0.0, 0.0)  # no stamp: heard, no interval
    assert unstamped.rate_hz(0.0) is None and unstamped.names(0.0) == ['(unnamed)']


def test_dropped_frames_add_up_over_classifiers_and_restarts() -> None:
    """The monitor reported the largest count heard: 5, where two dropped 5 + 3 (a review)."""
    seen = Sources()
    seen.dropped('/a/classifier', 5, 0.0)
    seen.dropped('/b/classifier', 3, 0.0)
    seen.dropped('/a/classifier', 5, 0.1)
    assert seen.dropped_total == 8
    seen.dropped('/a/classifier', 2, 0.2)  # a restarted: its count from 0 again
    assert seen.dropped_total == 10
    seen.dropped('/a/classifier', 4, 0.3)
    assert seen.dropped_total == 12


def test_sources_are_bounded_and_forgotten_counts_kept(monkeypatch) -> None:
    """A topic with ever new source names (a bug, hostile input) holds MAX_SOURCES of them."""
    monkeypatch.setattr(sources, 'MAX_SOURCES', 4)
    seen = Sources()
    for k in range(10):
        seen.dropped(f'/c{k}', 1, float(k))
    assert len(seen.names(9.0)) == 4 and seen.dropped_total == 10


def test_a_profile_describes_a_model_and_the_weights_learnt_from_it() -> None:
    """Learnt weights swept into their own profile were ignored by the controller (a review)."""
    base, learnt, other = 'a' * 64, 'b' * 64, 'c' * 64
    assert describes(base, base, '')  # the model itself
    assert describes(base, learnt, base)  # weights learnt on line from it
    assert describes(learnt, learnt, base)  # those weights with their own profile
    assert not describes(other, learnt, base) and not describes(learnt, base, '')
    assert describes(other, '', '')  # a result that names no model: taken
