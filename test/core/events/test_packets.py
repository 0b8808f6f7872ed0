"""Packets of fixed sensor time cut a piece at a time (:mod:`topspark_ros.core.events.packets`)."""

from event_arrays import random_events
import numpy as np
import pytest

from topspark_ros.core.events.packets import packet_bounds, PacketCutter


def _pieces(events: np.ndarray, cuts) -> list:
    """Return ``events`` cut at the indices ``cuts``."""
    return np.split(events, cuts)


@pytest.mark.parametrize('cuts', [[], [1], [500, 501, 502], [7, 130, 131, 900, 1999]])
def test_packets_cut_across_pieces_are_those_of_the_whole(cuts) -> None:
    """Wherever the pieces end, the packets (slots and events) are those of the whole."""
    events = random_events(2000, 100_000, seed=3, start_us=12_345)
    slots, starts, stops = packet_bounds(events['t'], 1000)
    cutter = PacketCutter(1000)
    got = list(cutter.packets_of(_pieces(events, cuts)))
    assert [slot for slot, _ in got] == slots.tolist()
    for (_, packet), start, stop in zip(got, starts, stops):
        np.testing.assert_array_equal(packet, events[start:stop])
    assert cutter.t0 == int(events['t'][0]) and cutter.packets == len(slots)
    assert cutter.last_slot == int(slots[-1]) and cutter.sorted_pieces == 0


def test_packets_are_cut_as_the_pieces_are_read() -> None:
    """A packet comes out once the piece that ends it is read: never the whole recording."""
    pulled = []

    def pieces():
        for k in range(1000):  # a piece of 10 events per 1 ms packet, 1 s in all
            pulled.append(k)
            piece = random_events(10, 1000, seed=k, start_us=1000 * k)
            yield piece

    cutter = PacketCutter(1000, t0=0)  # piece k is packet k
    for n, (slot, packet) in enumerate(cutter.packets_of(pieces())):
        assert len(pulled) <= n + 2 and slot == n and len(packet) == 10
    assert cutter.packets == 1000


def test_a_piece_out_of_order_is_sorted_and_pieces_back_in_time_are_refused() -> None:
    """Unsorted events are sorted; a piece before the last one is an error (readers stitch)."""
    first = random_events(100, 10_000, seed=1, start_us=50_000)
    shuffled = first[np.random.default_rng(0).permutation(100)]
    cutter = PacketCutter(1000, t0=50_000)
    packets = list(cutter.packets_of([shuffled]))
    np.testing.assert_array_equal(np.concatenate([p for _, p in packets]), first)
    assert cutter.sorted_pieces == 1
    slots = [slot for slot, _ in packets]
    assert slots == sorted(set(slots))  # one packet per slot, in order
    again = random_events(100, 10_000, seed=2)  # a clock that started again at 0
    with pytest.raises(ValueError, match='before the end of the one before'):
        list(PacketCutter(1000).packets_of([first, again]))


def test_a_cutter_refuses_a_packet_length_below_a_microsecond() -> None:
    """A packet length of 0 would cut nothing: an error, not a division by zero later."""
    with pytest.raises(ValueError, match='packet_us'):
        PacketCutter(0)
