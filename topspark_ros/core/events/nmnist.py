"""
Reader and writer of the N-MNIST binary format (Orchard et al., 2015).

N-MNIST stores one sample per file (``Train/<digit>/<id>.bin``, ``Test/<digit>/<id>.bin``).
A file is a flat sequence of 5-byte (40-bit) events, most significant byte first::

    byte 0        byte 1        byte 2                    byte 3 .. byte 4
    bits 39-32    bits 31-24    bit 23      bits 22-16    bits 15-0
    x (pixels)    y (pixels)    polarity    timestamp (microseconds, 23 bits in all)

Polarity 1 is ON (brightness went up), 0 is OFF. The sensor (an ATIS) crop is 34 x 34 pixels,
so valid coordinates are 0..33. There is no header, so the only structural checks are the
length (a multiple of 5 bytes) and the coordinate range.

Timestamps have 23 bits (they wrap after 2**23 us = 8.39 s). The reference reader of the
data set's authors treats an event whose ``y`` byte is 240 as a *timestamp overflow marker*:
every later timestamp gets ``2**13`` us added and the marker itself is dropped. The released
N-MNIST samples (about 300 ms each) contain no such markers, but :func:`decode_nmnist` honours
them like that reader (``overflow_increment_us``), and can also unwrap plain 23-bit
wrap-arounds (a timestamp more than 2**22 us below its predecessor), which is what
:func:`encode_nmnist` produces with ``wrap=True`` for recordings longer than 8.39 s.
"""

import os
from pathlib import Path
from typing import List, Optional, Tuple, Union

import numpy as np

from topspark_ros.core.events import EVENT_DTYPE

NMNIST_WIDTH = 34
"""Sensor width of N-MNIST in pixels."""

NMNIST_HEIGHT = 34
"""Sensor height of N-MNIST in pixels."""

BYTES_PER_EVENT = 5
"""Size of one event in the file."""

TIMESTAMP_BITS = 23
"""Width of the timestamp field; timestamps wrap at ``2**23`` us."""

TIMESTAMP_WRAP_US = 1 << TIMESTAMP_BITS
"""Period of the 23-bit timestamp in microseconds (8 388 608 us)."""

OVERFLOW_MARKER_Y = 240
"""``y`` byte value that marks a timestamp-overflow event in the reference reader."""

OVERFLOW_INCREMENT_US = 1 << 13
"""Time the reference reader adds per overflow marker (``2**13`` us)."""

PathLike = Union[str, os.PathLike]


class NMNISTFormatError(ValueError):
    """N-MNIST data that cannot be read or written (bad length, coordinates, timestamps)."""


def decode_nmnist(data, *, width: int = NMNIST_WIDTH, height: int = NMNIST_HEIGHT,
                  overflow_markers: bool = True,
                  overflow_increment_us: int = OVERFLOW_INCREMENT_US,
                  unwrap: bool = True, source: str = '<bytes>') -> np.ndarray:
    """
    Decode the bytes of one N-MNIST file into events.

    Parameters
    ----------
    data
        file content (``bytes``, ``bytearray``, ``memoryview`` or a ``uint8`` array).
    width, height
        sensor size in pixels; events outside it are an error (34 x 34 for N-MNIST).
    overflow_markers
        treat ``y == 240`` events as timestamp-overflow markers (see the module docstring);
        off: such an event is an out-of-sensor error like any other.
    overflow_increment_us
        microseconds added to all later timestamps per overflow marker.
    unwrap
        add ``2**23`` us whenever a timestamp drops by more than ``2**22`` us (a 23-bit
        wrap-around); smaller backward steps are left as they are.
    source
        name used in error messages (the file path).

    Returns
    -------
        events of :data:`~topspark_ros.core.events.EVENT_DTYPE` in file order, ``t`` in
        microseconds as stored (not shifted to start at 0).

    Raises
    ------
        NMNISTFormatError: the length is not a multiple of 5 bytes or a coordinate lies
            outside the sensor.

    """
    raw = np.frombuffer(data, dtype=np.uint8) if not isinstance(data, np.ndarray) else data
    raw = np.asarray(raw, dtype=np.uint8).reshape(-1)
    if raw.size % BYTES_PER_EVENT:
        raise NMNISTFormatError(
            f'{source}: {raw.size} bytes is not a multiple of {BYTES_PER_EVENT} (N-MNIST '
            f'events are 5 bytes each); the file is truncated or not in N-MNIST format')
    rows = raw.reshape(-1, BYTES_PER_EVENT).astype(np.int64)
    x, y = rows[:, 0], rows[:, 1]
    p = rows[:, 2] >> 7
    t = ((rows[:, 2] & 0x7F) << 16) | (rows[:, 3] << 8) | rows[:, 4]
    if overflow_markers:
        marker = y == OVERFLOW_MARKER_Y
        if marker.any():
            t = t + np.cumsum(marker) * int(overflow_increment_us)
            keep = ~marker
            x, y, p, t = x[keep], y[keep], p[keep], t[keep]
    bad = (x >= width) | (y >= height)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise NMNISTFormatError(
            f'{source}: event {i} at (x={int(x[i])}, y={int(y[i])}) lies outside the '
            f'{width} x {height} sensor ({int(bad.sum())} such events); not an N-MNIST file, '
            'or pass the right width/height')
    if unwrap and t.size > 1:
        wraps = np.diff(t) < -(TIMESTAMP_WRAP_US // 2)
        if wraps.any():
            t = t + np.concatenate(([0], np.cumsum(wraps))) * TIMESTAMP_WRAP_US
    events = np.empty(t.size, dtype=EVENT_DTYPE)
    events['x'] = x
    events['y'] = y
    events['p'] = p
    events['t'] = t
    return events


def encode_nmnist(events: np.ndarray, *, width: int = NMNIST_WIDTH,
                  height: int = NMNIST_HEIGHT, wrap: bool = False) -> bytes:
    """
    Encode events into the bytes of one N-MNIST file.

    Parameters
    ----------
    events
        :data:`~topspark_ros.core.events.EVENT_DTYPE` array; ``t`` in microseconds,
        ``0 <= t < 2**23`` unless ``wrap``.
    width, height
        sensor size; at most 256 x 240 (the 8-bit fields, and ``y == 240`` is reserved for
        overflow markers).
    wrap
        store ``t mod 2**23`` for longer recordings; :func:`decode_nmnist` unwraps them when
        consecutive events are less than ``2**22`` us (4.19 s) apart and ``t`` never drops.

    Raises
    ------
        NMNISTFormatError: a coordinate outside the sensor, a sensor too large for the
            format, a negative timestamp, or one of 2**23 us or more without ``wrap``.

    """
    events = np.asarray(events)
    if events.dtype != EVENT_DTYPE:
        raise NMNISTFormatError(f'events must have EVENT_DTYPE {EVENT_DTYPE}, got '
                                f'{events.dtype}')
    if not 0 < width <= 256 or not 0 < height <= OVERFLOW_MARKER_Y:
        raise NMNISTFormatError(f'a {width} x {height} sensor does not fit the N-MNIST '
                                'format (at most 256 x 240)')
    x = events['x'].astype(np.int64)
    y = events['y'].astype(np.int64)
    t = events['t'].astype(np.int64)
    if x.size and (int(x.max()) >= width or int(y.max()) >= height):
        raise NMNISTFormatError(f'events outside the {width} x {height} sensor '
                                f'(max x {int(x.max())}, max y {int(y.max())})')
    if t.size and int(t.min()) < 0:
        raise NMNISTFormatError(f'negative timestamp {int(t.min())} us; shift the events '
                                'to start at 0')
    if t.size and int(t.max()) >= TIMESTAMP_WRAP_US:
        if not wrap:
            raise NMNISTFormatError(
                f'timestamp {int(t.max())} us does not fit the 23-bit field '
                f'(< {TIMESTAMP_WRAP_US} us); shift the events to start at 0 or pass '
                'wrap=True')
        t = t % TIMESTAMP_WRAP_US
    out = np.empty((t.size, BYTES_PER_EVENT), dtype=np.uint8)
    out[:, 0] = x
    out[:, 1] = y
    out[:, 2] = ((events['p'].astype(np.int64) != 0) << 7) | (t >> 16)
    out[:, 3] = (t >> 8) & 0xFF
    out[:, 4] = t & 0xFF
    return out.tobytes()


def read_nmnist(path: PathLike, **options) -> np.ndarray:
    """
    Read one N-MNIST ``.bin`` file; ``options`` go to :func:`decode_nmnist`.

    Raises
    ------
        NMNISTFormatError: the file cannot be read or is malformed.

    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise NMNISTFormatError(f'cannot read {path}: {exc.strerror or exc}') from None
    return decode_nmnist(data, source=str(path), **options)


def write_nmnist(path: PathLike, events: np.ndarray, **options) -> None:
    """Write ``events`` to one N-MNIST ``.bin`` file; ``options`` go to :func:`encode_nmnist`."""
    Path(path).write_bytes(encode_nmnist(events, **options))


def read_nmnist_tree(directory: PathLike, split: str = 'Test', *,
                     limit_per_class: Optional[int] = None,
                     **options) -> Tuple[List[np.ndarray], np.ndarray, List[Path]]:
    """
    Read a directory tree laid out like the N-MNIST release: ``<directory>/<split>/<d>/*.bin``.

    Parameters
    ----------
    directory
        the directory holding ``Train/`` and ``Test/``.
    split
        ``'Train'`` or ``'Test'`` (any sub-directory name works).
    limit_per_class
        read at most this many files per class (sorted by name).
    options
        passed to :func:`decode_nmnist`.

    Returns
    -------
        ``(samples, labels, paths)``: one event array per file (``t`` shifted to start at
        0), ``uint8`` labels (the digit directory names) and the file paths, ordered by
        class then file name.

    Raises
    ------
        NMNISTFormatError: the split directory is missing, holds no digit directories with
            ``.bin`` files, or a file is malformed.

    """
    root = Path(directory) / split
    if not root.is_dir():
        raise NMNISTFormatError(f'{root} is not a directory (expected the N-MNIST layout '
                                f'{split}/<digit>/*.bin)')
    samples, labels, paths = [], [], []
    class_dirs = sorted((d for d in root.iterdir() if d.is_dir() and d.name.isdigit()),
                        key=lambda d: int(d.name))
    for class_dir in class_dirs:
        files = sorted(class_dir.glob('*.bin'))
        if limit_per_class is not None:
            files = files[:limit_per_class]
        for file in files:
            events = read_nmnist(file, **options)
            if events.size:
                events['t'] -= events['t'][0]
            samples.append(events)
            labels.append(int(class_dir.name))
            paths.append(file)
    if not samples:
        raise NMNISTFormatError(f'no <digit>/*.bin files under {root}')
    if max(labels) > 255:
        raise NMNISTFormatError(f'{root}: class directory {max(labels)} is not a digit')
    return samples, np.asarray(labels, dtype=np.uint8), paths
