"""
Event files: one recording (events + sensor size + optional label) per file.

Two formats, chosen by the file name's suffix:

``.bin``
    the N-MNIST binary format (:mod:`topspark_ros.core.events.nmnist`): 5 bytes per event,
    a 34 x 34 sensor, 23-bit timestamps, no header. The label is not stored in the file; on
    reading it is taken from the parent directory when that is named after a digit (the
    N-MNIST layout ``Test/<digit>/<id>.bin``).
``.npz``
    ours: a numpy archive with the arrays ``x`` (``uint16``), ``y`` (``uint16``), ``p``
    (``uint8``), ``t`` (``int64``, microseconds) and the scalars ``width``, ``height``,
    ``label`` (-1: none) and ``format_version`` (1). Any sensor size, any time range.
"""

from dataclasses import dataclass, field
import os
from pathlib import Path
from typing import Optional, Union
import zipfile

import numpy as np

from topspark_ros.core.events import EVENT_DTYPE
from topspark_ros.core.events import nmnist

NPZ_FORMAT_VERSION = 1
"""Version written into (and accepted from) ``.npz`` event files."""

SUFFIXES = ('.bin', '.npz')
"""File name suffixes :func:`read_event_file` and :func:`write_event_file` understand."""

PathLike = Union[str, os.PathLike]


class EventFileError(ValueError):
    """An event file that cannot be read or written (format, content, suffix)."""


@dataclass
class EventRecording:
    """
    One event recording.

    Attributes
    ----------
    events
        :data:`~topspark_ros.core.events.EVENT_DTYPE` array ordered by time, ``t`` in
        microseconds.
    width, height
        sensor size in pixels; every event lies inside it.
    label
        class index, or ``None`` when unknown.
    metadata
        free-form notes (not stored in ``.bin`` files).

    """

    events: np.ndarray
    width: int
    height: int
    label: Optional[int] = None
    metadata: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        """Check the dtype and that the events lie inside the sensor."""
        self.events = np.asarray(self.events)
        if self.events.dtype != EVENT_DTYPE:
            raise EventFileError(f'events must have EVENT_DTYPE {EVENT_DTYPE}, got '
                                 f'{self.events.dtype}')
        self.width, self.height = int(self.width), int(self.height)
        if self.width < 1 or self.height < 1:
            raise EventFileError(f'sensor size must be positive, got {self.width} x '
                                 f'{self.height}')
        if self.events.size and (int(self.events['x'].max()) >= self.width
                                 or int(self.events['y'].max()) >= self.height):
            raise EventFileError(
                f'events outside the {self.width} x {self.height} sensor (max x '
                f'{int(self.events["x"].max())}, max y {int(self.events["y"].max())})')
        if self.label is not None:
            self.label = int(self.label)

    @property
    def duration_us(self) -> int:
        """Time from the first to the last event in microseconds (0 when empty)."""
        if not self.events.size:
            return 0
        return int(self.events['t'][-1] - self.events['t'][0])


def _suffix(path: Path) -> str:
    """Return the lower-case suffix of ``path`` or raise for an unknown one."""
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise EventFileError(f'{path}: unknown event file type {suffix or "(no suffix)"!r} '
                             f'(expected one of {", ".join(SUFFIXES)})')
    return suffix


def read_event_file(path: PathLike) -> EventRecording:
    """
    Read an event file (``.bin`` N-MNIST or ``.npz``, see the module docstring).

    Raises
    ------
        EventFileError: unknown suffix, unreadable or malformed file.

    """
    path = Path(path)
    if _suffix(path) == '.bin':
        try:
            events = nmnist.read_nmnist(path)
        except nmnist.NMNISTFormatError as exc:
            raise EventFileError(str(exc)) from None
        name = path.parent.name
        label = int(name) if name.isdigit() and len(name) == 1 else None
        return EventRecording(events, nmnist.NMNIST_WIDTH, nmnist.NMNIST_HEIGHT, label,
                              {'format': 'nmnist'})
    try:
        with np.load(path, allow_pickle=False) as archive:
            content = {key: archive[key] for key in archive.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise EventFileError(f'cannot read {path} as a .npz event file: {exc}') from None
    missing = [k for k in ('x', 'y', 'p', 't', 'width', 'height') if k not in content]
    if missing:
        raise EventFileError(f'{path}: not an event file (missing {", ".join(missing)})')
    version = int(content.get('format_version', NPZ_FORMAT_VERSION))
    if version != NPZ_FORMAT_VERSION:
        raise EventFileError(f'{path}: event file format version {version}, this reader '
                             f'knows {NPZ_FORMAT_VERSION}')
    n = content['t'].shape[0]
    if any(content[k].shape != (n,) for k in ('x', 'y', 'p', 't')):
        raise EventFileError(f'{path}: x, y, p, t must be 1-D arrays of one length, got '
                             + ', '.join(f'{k} {content[k].shape}' for k in 'xypt'))
    events = np.empty(n, dtype=EVENT_DTYPE)
    for key in ('x', 'y', 'p', 't'):
        events[key] = content[key]
    label = int(content['label']) if 'label' in content else -1
    try:
        return EventRecording(events, int(content['width']), int(content['height']),
                              None if label < 0 else label, {'format': 'npz'})
    except EventFileError as exc:
        raise EventFileError(f'{path}: {exc}') from None


def write_event_file(path: PathLike, recording: EventRecording) -> None:
    """
    Write ``recording`` to ``path`` in the format its suffix names.

    ``.bin`` needs a sensor of at most 34 x 34 and ``0 <= t < 2**23`` us (shift the events
    to start at 0); the label and metadata are not stored there.

    Raises
    ------
        EventFileError: unknown suffix or a recording the format cannot hold.

    """
    path = Path(path)
    if _suffix(path) == '.bin':
        if recording.width > nmnist.NMNIST_WIDTH or recording.height > nmnist.NMNIST_HEIGHT:
            raise EventFileError(f'{path}: the N-MNIST format holds a 34 x 34 sensor, the '
                                 f'recording is {recording.width} x {recording.height}; '
                                 'write a .npz file instead')
        try:
            data = nmnist.encode_nmnist(recording.events)
        except nmnist.NMNISTFormatError as exc:
            raise EventFileError(f'{path}: {exc}') from None
        path.write_bytes(data)
        return
    events = recording.events
    with open(path, 'wb') as file:
        np.savez_compressed(
            file, x=events['x'], y=events['y'], p=events['p'], t=events['t'],
            width=np.int64(recording.width), height=np.int64(recording.height),
            label=np.int64(-1 if recording.label is None else recording.label),
            format_version=np.int64(NPZ_FORMAT_VERSION))
