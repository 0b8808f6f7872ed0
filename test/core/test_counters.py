"""Tests of topspark_ros.core.counters: increments since the last status, reasons to log."""

from topspark_ros.core.counters import Reasons


def test_a_new_reason_is_logged_at_once_and_the_same_once_a_period() -> None:
    """One throttle for every reason hid the second problem a camera had (a review)."""
    reasons = Reasons(5.0)
    assert reasons.due("cannot decode 5525 bytes of 'jpeg'", 0.0)
    assert not reasons.due("cannot decode 5530 bytes of 'jpeg'", 1.0)  # the same reason
    assert reasons.due("unsupported image encoding 'nv16'", 1.5)  # another: at once
    assert not reasons.due("unsupported image encoding 'nv16'", 4.0)
    assert reasons.due("cannot decode 12 bytes of 'jpeg'", 5.0)  # a period later
    assert reasons.due('rgb16 refused', 5.1) and reasons.due('rgb8 refused', 5.1)


def test_reasons_are_remembered_up_to_a_bound() -> None:
    """Texts without numbers in common must not grow a set for ever."""
    reasons = Reasons(60.0)
    for k in range(1000):
        assert reasons.due(f'reason {chr(65 + k % 26)}{k}x', float(k))
    assert len(reasons._last) == Reasons.KEEP


def test_the_bytes_a_reason_quotes_do_not_make_it_another():
    """Each WebP frame's first bytes (its size among them) made a new reason: 30 lines a s."""
    reasons = Reasons(5.0)
    webp = "{} bytes of 'webp' image data are not JPEG or PNG (they begin 52 49 46 46 {} 00 00 00)"
    assert reasons.due(webp.format(248, 'f0'), 0.0)
    assert not reasons.due(webp.format(240, 'e8'), 0.1)
    assert not reasons.due(webp.format(236, 'e4'), 0.2)
    assert reasons.due("cannot decode 12 bytes of 'jpeg'", 0.3)  # another reason: at once
