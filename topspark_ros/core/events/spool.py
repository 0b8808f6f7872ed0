"""
Event windows kept on disk while a data set is read, and read back memory-mapped.

An event camera's recording is large where its windows, as a model takes them, are not: 13
bytes an event (:data:`~topspark_ros.core.events.EVENT_DTYPE`), 0.78 GB for 20 s at 1 Mev/s.
A :class:`WindowSpool` writes each window to an unnamed temporary file as it is cut, and
:meth:`WindowSpool.windows` returns the chosen ones as views of one copy-on-write memory map
of that file. What a process holds is then the operating system's page cache, which it can
take back, not memory that only the process can give back: reading a long bag does not grow
with its length, and a window is brought in when a batch reads it.

The file is in ``directory`` (default: Python's temporary directory, ``TMPDIR``, which must
be on a disk, not a RAM file system, for this to save memory). It has no name from the start,
so nothing is left behind, even by a killed process: its space is given back when the last
view of it is dropped.
"""

import os
import tempfile
from typing import Optional, Sequence

import numpy as np

from topspark_ros.core.events import empty_events, EVENT_DTYPE


class WindowSpool:
    """
    Windows of events appended to an unnamed temporary file (module docstring).

    Parameters
    ----------
    directory
        where the file is made (default: the temporary directory, ``TMPDIR``).

    """

    def __init__(self, directory: Optional[os.PathLike] = None) -> None:
        """Make the spool's file."""
        self._directory = directory or tempfile.gettempdir()
        self._starts = [0]
        self._mapped = None  # the file's map, once windows() made it
        try:
            self._file = tempfile.TemporaryFile(dir=directory)
        except OSError as exc:
            raise self._error(exc) from None

    def _error(self, exc: OSError) -> OSError:
        """Return ``exc`` saying that it is the spool's, where it is and what it holds."""
        held = self._starts[-1] * EVENT_DTYPE.itemsize
        return type(exc)(exc.errno, f'cannot keep the event windows read so far ({held} '
                         f'bytes) in a temporary file in {self._directory} ({exc.strerror}): '
                         'set TMPDIR to a folder on a disk with room for 13 bytes an event')

    def __len__(self) -> int:
        """Return the number of windows appended."""
        return len(self._starts) - 1

    @property
    def n_events(self) -> int:
        """Return the number of events appended, over all windows."""
        return self._starts[-1]

    def append(self, window: np.ndarray) -> None:
        """Append one window, a 1-d array of :data:`EVENT_DTYPE` (written, not kept)."""
        if window.dtype != EVENT_DTYPE or window.ndim != 1:
            raise ValueError(f'a window must be a 1-d array of {EVENT_DTYPE}, got '
                             f'{window.dtype} of shape {window.shape}')
        try:
            self._file.write(np.ascontiguousarray(window).data)
        except OSError as exc:  # a full disk: named, not a bare 'No space left on device'
            raise self._error(exc) from None
        self._starts.append(self._starts[-1] + window.shape[0])

    def windows(self, indices: Sequence[int]) -> np.ndarray:
        """
        Return the windows ``indices`` as an object array of event arrays.

        Each array is a view of one copy-on-write map of the file: writing into one changes
        only this process's copy of its pages (which the views of later calls share). The
        first call maps the file and closes it: nothing more can be appended, and later calls
        (another split) take the same map.
        """
        starts = self._starts
        if self._mapped is None:
            try:
                self._file.flush()
            except OSError as exc:
                raise self._error(exc) from None
            self._mapped = empty_events() if not starts[-1] else np.memmap(
                self._file, dtype=EVENT_DTYPE, mode='c', shape=(starts[-1],)).view(np.ndarray)
            self._file.close()  # the map keeps what it needs of the file
        out = np.empty(len(indices), dtype=object)
        for k, i in enumerate(indices):
            out[k] = self._mapped[starts[i]:starts[i + 1]]
        return out
