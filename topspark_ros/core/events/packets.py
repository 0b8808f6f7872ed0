"""
Cut a recording into packets of fixed sensor time, a piece at a time, as a driver publishes it.

An event camera driver publishes what its sensor sent in the last packet interval (about 1 ms
for metavision_driver). :class:`PacketCutter` does the same to a recording that is read a piece
at a time (:class:`~topspark_ros.core.events.files.EventChunks`): packet ``k`` holds the events
with ``t0 + k P <= t < t0 + (k + 1) P`` (``P`` the packet length, ``t0`` the first event's
time), time slots without events have no packet, and only the piece being cut and the packet
being filled are held, so a recording of any length plays in bounded memory.

The packets of a stream must come in time order. A piece whose events are out of order (an
``.npz`` written unsorted, read as one piece) is sorted (``sorted_pieces``). Pieces must follow
each other in time: the readers of :mod:`topspark_ros.core.events.files` stitch a recording
whose sensor clock reset into one stream (``sensor_resets``); a piece that starts before the
last event of the one before is a ``ValueError``.
"""

from typing import Iterable, Iterator, Optional, Tuple

import numpy as np


def packet_bounds(t: np.ndarray, packet_us: int, t0: Optional[int] = None) -> tuple:
    """
    Return ``(slot, start, stop)`` of the non-empty packets of the times ``t``.

    ``t``: event times (us, non-decreasing). Packet ``i`` holds events ``start[i]:stop[i]``,
    all in the time slot ``slot[i]`` (``t0 + slot P <= t < t0 + (slot + 1) P``, ``t0``
    default ``t[0]``, ``P = packet_us``); slots without events have no packet. ``int64``
    arrays.
    """
    if len(t) == 0:
        empty = np.zeros(0, np.int64)
        return empty, empty, empty
    t = np.asarray(t, np.int64)
    slots = (t - (int(t[0]) if t0 is None else int(t0))) // int(packet_us)
    start = np.flatnonzero(np.r_[True, slots[1:] != slots[:-1]]).astype(np.int64)
    stop = np.r_[start[1:], len(t)].astype(np.int64)
    return slots[start], start, stop


class PacketCutter:
    """
    Cut time-ordered pieces of one recording into packets of ``packet_us`` of sensor time.

    :meth:`packets_of` yields ``(slot, events)`` per non-empty packet (module docstring).
    ``t0``: the time of slot 0 (default: the first event's; give the first pass's to cut
    another pass of the same recording alike). After the pieces are read, ``t0`` and
    ``last_slot`` hold the stream's first time and last slot (``last_slot`` -1: no event),
    ``packets`` the number cut, ``sorted_pieces`` the pieces that had to be sorted.
    """

    def __init__(self, packet_us: int, t0: Optional[int] = None) -> None:
        """Cut packets of ``packet_us`` microseconds (>= 1) from ``t0`` on."""
        if int(packet_us) < 1:
            raise ValueError(f'packet_us must be >= 1, got {packet_us}')
        self.packet_us = int(packet_us)
        self.t0 = None if t0 is None else int(t0)
        self.last_slot = -1
        self.packets = self.sorted_pieces = 0

    def packets_of(self, pieces: Iterable[np.ndarray]) -> Iterator[Tuple[int, np.ndarray]]:
        """Yield ``(slot, events)`` for each non-empty packet of ``pieces``, in time order."""
        slot_now, held = None, []  # the packet being filled: its slot, its parts
        last_t = None
        for piece in pieces:
            if not piece.size:
                continue
            t = piece['t']
            if np.any(t[1:] < t[:-1]):
                piece = piece[np.argsort(t, kind='stable')]
                self.sorted_pieces += 1
            if last_t is not None and int(piece['t'][0]) < last_t:
                raise ValueError(f"a piece starts at t={int(piece['t'][0])} us, before the "
                                 f'end of the one before ({last_t} us): one stream in time '
                                 'order is cut into packets')
            if self.t0 is None:
                self.t0 = int(piece['t'][0])
            slots, starts, stops = packet_bounds(piece['t'], self.packet_us, self.t0)
            for slot, start, stop in zip(slots.tolist(), starts.tolist(), stops.tolist()):
                if slot != slot_now and held:
                    yield self._emit(slot_now, held)
                    held = []
                slot_now = slot
                held.append(piece[start:stop])
            last_t = int(piece['t'][-1])
        if held:
            yield self._emit(slot_now, held)

    def _emit(self, slot: int, held: list) -> Tuple[int, np.ndarray]:
        """Return the packet of ``slot`` made of the parts ``held``."""
        self.packets += 1
        self.last_slot = slot
        return slot, held[0] if len(held) == 1 else np.concatenate(held)
