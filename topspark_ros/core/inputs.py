"""
The typed inputs of the model interface (:mod:`topspark_ros.core.model`): one batch of ``B``.

A model's ``infer``/``learn`` take one of these, and its ``input_kinds`` say which:

* **frames** (:data:`Frames`): a plain ``numpy`` array of ``uint8`` images
  ``[B, *input_spec.shape]`` (float images in ``[0, 1]`` are taken as ``x / 255``); the model
  encodes them itself (STDP: Poisson spike trains drawn per step; converted: analog input
  held over the steps).
* :class:`SpikeEvents`: explicit input spike trains of ``T`` steps, sparse (an event camera's
  windows encoded as spike trains, see :mod:`topspark_ros.core.events.encode`).
* :class:`EventFrames`: per-bin event count frames of ``T`` bins, or one count frame held over
  the steps (the converted family's event input).

A spike-event or per-bin input carries its own step count; a model refuses it when that
differs from the ``timesteps`` of the call (:func:`topspark_ros.core.model.check_timesteps`):
``T`` is always given, never read from the data. Only numpy here.
"""

from dataclasses import dataclass
from typing import Optional, Union

import numpy as np

from topspark_ros.core.fields import without_init

Frames = np.ndarray
"""A batch of camera frames: ``uint8 [B, *input_spec.shape]`` (module docstring)."""


@dataclass(frozen=True)
class SpikeEvents:
    """
    Input spike trains of a batch as sparse events (CSR over the rows ``(sample, step)``).

    The events of sample ``b`` at step ``t`` are the input indices
    ``pixels[row_ptr[b, t]:row_ptr[b, t + 1]]`` (each input at most once per step, in any
    order). This is the form the numba engine consumes and an event camera can fill directly.

    Attributes
    ----------
    pixels
        ``int32 [E]`` input indices in ``[0, n_inputs)``.
    row_ptr
        ``int64 [B, T + 1]`` non-decreasing offsets into ``pixels``.
    n_inputs
        number of inputs (784 for 28x28 images).

    """

    pixels: np.ndarray
    row_ptr: np.ndarray
    n_inputs: int

    def __post_init__(self) -> None:
        """Coerce dtypes and check the structure; raise ``ValueError`` when malformed."""
        pixels = np.ascontiguousarray(self.pixels, dtype=np.int32).reshape(-1)
        row_ptr = np.ascontiguousarray(self.row_ptr, dtype=np.int64)
        if row_ptr.ndim != 2 or row_ptr.shape[1] < 1:
            raise ValueError(f'row_ptr must be [B, T + 1], got shape {row_ptr.shape}')
        if row_ptr.size and (row_ptr.min() < 0 or row_ptr.max() > pixels.size):
            raise ValueError('row_ptr points outside pixels')
        if np.any(np.diff(row_ptr, axis=1) < 0):
            raise ValueError('row_ptr must be non-decreasing within each sample')
        if pixels.size and (pixels.min() < 0 or pixels.max() >= self.n_inputs):
            raise ValueError(f'pixel indices must lie in [0, {self.n_inputs})')
        object.__setattr__(self, 'pixels', pixels)
        object.__setattr__(self, 'row_ptr', row_ptr)
        rows = self._row_of_events()
        keys = np.sort(rows * self.n_inputs + pixels[self._event_index()])
        if keys.size > 1 and np.any(keys[1:] == keys[:-1]):  # sort + neighbours: fast
            raise ValueError('an input appears twice in one step')

    @classmethod
    def unchecked(cls, pixels: np.ndarray, row_ptr: np.ndarray,
                  n_inputs: int) -> 'SpikeEvents':
        """
        Return events built valid by their producer, without the constructor's checks.

        For code that makes C-contiguous ``int32 [E]`` ``pixels`` and ``int64 [B, T + 1]``
        ``row_ptr`` that hold every rule of the class by construction (the event encoder):
        the checks, the sort for repeated inputs above all, cost as much as encoding a window
        of 2 700 events (57 us). Anything else goes through the constructor.
        """
        return without_init(cls, pixels=pixels, row_ptr=row_ptr, n_inputs=int(n_inputs))

    @property
    def batch_size(self) -> int:
        """Return the number of samples ``B``."""
        return int(self.row_ptr.shape[0])

    @property
    def timesteps(self) -> int:
        """Return the number of steps ``T``."""
        return int(self.row_ptr.shape[1] - 1)

    def _event_index(self) -> np.ndarray:
        """Return the positions in ``pixels`` of every event, row by row."""
        starts = self.row_ptr[:, :-1].reshape(-1)
        lengths = np.diff(self.row_ptr, axis=1).reshape(-1)
        if lengths.sum() == 0:
            return np.zeros(0, np.int64)
        offsets = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        return np.repeat(starts, lengths) + offsets

    def _row_of_events(self) -> np.ndarray:
        """Return the row ``b * T + t`` of every event, in the order of :meth:`_event_index`."""
        lengths = np.diff(self.row_ptr, axis=1).reshape(-1)
        return np.repeat(np.arange(lengths.size, dtype=np.int64), lengths)

    def counts(self) -> np.ndarray:
        """Return the number of events of each sample, ``int64 [B]``."""
        return self.row_ptr[:, -1] - self.row_ptr[:, 0]

    def to_dense(self) -> np.ndarray:
        """Return the trains as a boolean array ``[T, B, n_inputs]``."""
        dense = np.zeros((self.timesteps, self.batch_size, self.n_inputs), np.bool_)
        rows = self._row_of_events()
        dense[rows % max(self.timesteps, 1), rows // max(self.timesteps, 1),
              self.pixels[self._event_index()]] = True
        return dense

    @classmethod
    def from_dense(cls, spikes: np.ndarray) -> 'SpikeEvents':
        """Build events from a boolean or 0/1 array ``[T, B, n_inputs]``."""
        spikes = np.asarray(spikes)
        if spikes.ndim != 3:
            raise ValueError(f'dense spikes must be [T, B, n_inputs], got shape {spikes.shape}')
        n_steps, n_samples, n_inputs = spikes.shape
        sample_major = np.ascontiguousarray(np.transpose(spikes != 0, (1, 0, 2)))
        flat = sample_major.reshape(n_samples * n_steps, n_inputs)
        rows, pixels = np.nonzero(flat)
        per_row = np.bincount(rows, minlength=n_samples * n_steps)
        row_ptr = np.concatenate([[0], np.cumsum(per_row)])
        ptr = np.empty((n_samples, n_steps + 1), np.int64)
        for b in range(n_samples):
            ptr[b] = row_ptr[b * n_steps:(b + 1) * n_steps + 1]
        return cls(pixels=pixels.astype(np.int32), row_ptr=ptr, n_inputs=n_inputs)


@dataclass(frozen=True)
class EventFrames:
    """
    Event count frames of a batch: per bin, or one frame held over every step.

    ``counts[b, t, p, y, x]`` is the number of events of polarity ``p`` (0 = OFF, 1 = ON) of
    input ``b`` in time bin ``t`` landing on model pixel ``(x, y)``
    (:func:`topspark_ros.core.events.encode.events_to_frames`); bin ``t`` is step ``t``. A
    ``[B, 2, H, W]`` array is one count frame per input (a whole window), the same at every
    step, for any ``T``.

    Attributes
    ----------
    counts
        ``float32 [B, T, 2, H, W]`` (per bin) or ``[B, 2, H, W]`` (held); coerced to
        float32.

    """

    counts: np.ndarray

    def __post_init__(self) -> None:
        """Coerce to float32 and check the layout; raise ``ValueError`` when malformed."""
        counts = np.asarray(self.counts)
        if counts.ndim not in (4, 5) or counts.shape[-3] != 2 or counts.dtype.kind not in 'uif':
            raise ValueError(f'event frames must be numeric [B, 2, H, W] or [B, T, 2, H, W], '
                             f'got {counts.dtype} {list(counts.shape)}')
        object.__setattr__(self, 'counts', np.asarray(counts, dtype=np.float32))

    @property
    def batch_size(self) -> int:
        """Return the number of inputs ``B``."""
        return int(self.counts.shape[0])

    @property
    def timesteps(self) -> Optional[int]:
        """Return the number of bins ``T``, or None for count frames held over any ``T``."""
        return int(self.counts.shape[1]) if self.counts.ndim == 5 else None

    @property
    def size(self) -> tuple:
        """Return ``(2, H, W)``: the channels and pixels of one frame."""
        return tuple(int(n) for n in self.counts.shape[-3:])

    def __len__(self) -> int:
        """Return the number of inputs ``B`` (batches are sliced like arrays)."""
        return self.batch_size

    def __getitem__(self, index) -> 'EventFrames':
        """Return the inputs ``index`` selects (a slice or an index array) as a batch."""
        counts = self.counts[index]
        if counts.ndim != self.counts.ndim:
            raise IndexError('select inputs with a slice or an index array (a batch)')
        return EventFrames(counts)


Inputs = Union[Frames, SpikeEvents, EventFrames]
"""What a model's ``infer``/``learn`` take (which of them: its ``input_kinds``)."""

_MASK64 = (1 << 64) - 1
_GOLDEN64 = 0x9E3779B97F4A7C15


def _mix64(z: int) -> int:
    """Return SplitMix64's output function of the 64-bit ``z`` (Steele et al. 2014)."""
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    return z ^ (z >> 31)


@dataclass(frozen=True)
class SampleSeeds:
    """
    The seeds of a batch's input encoding, one per input, given as they are (not drawn).

    A model whose encoding draws random numbers (the STDP family's Poisson spike trains:
    SplitMix64 seeds) takes these as ``seed`` and draws input ``b``'s numbers from
    ``values[b]`` alone, so an input's result does not depend on what the model ran before
    it. A deterministic family ignores them, as it ignores any ``seed``.

    Attributes
    ----------
    values
        ``uint64 [B]``.

    """

    values: np.ndarray

    def __post_init__(self) -> None:
        """Coerce to a 1-D uint64 array; raise ``ValueError`` for anything else."""
        values = np.asarray(self.values)
        if values.ndim != 1 or values.dtype != np.uint64:
            raise ValueError(f'sample seeds must be uint64 [B], got {values.dtype} '
                             f'{list(values.shape)}')
        object.__setattr__(self, 'values', values)

    @classmethod
    def of_stamp(cls, stamp_ns: int, stream: int = 0) -> 'SampleSeeds':
        """
        Return the seed of one input captured at ``stamp_ns`` (its message's stamp, in ns).

        The same stamp gives the same seed, so a frame replayed from a bag draws the spikes
        it drew live, whatever came before it; ``stream`` tells apart the draws made for one
        input (0: inference, 1: on-line learning).
        """
        value = _mix64((int(stamp_ns) + (int(stream) + 1) * _GOLDEN64) & _MASK64)
        return cls(np.array([value], np.uint64))

    def __len__(self) -> int:
        """Return the number of inputs ``B``."""
        return int(self.values.shape[0])
