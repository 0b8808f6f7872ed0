"""
Poisson rate coding of images and the sparse spike-event container of the STDP engines.

Rate coding: input ``i`` of a sample with intensity ``x_i`` (uint8 0..255, or float in [0, 1])
spikes in each step of ``dt_ms`` independently with probability

    p_i = min(1, x_i / 255 * rate_hz * dt_ms / 1000)

(a Bernoulli approximation of a Poisson process of ``x_i / 255 * rate_hz`` Hz). The spike
times are drawn as geometric inter-spike gaps (see :mod:`topspark_ros.core.stdp.rng`), one
SplitMix64 seed per sample, so the same seed gives the same trains on every engine and thread
count.
"""

from dataclasses import dataclass

import numpy as np

from topspark_ros.core.stdp.rng import poisson_batch


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


def spike_probabilities(images: np.ndarray, rate_hz: float, dt_ms: float) -> np.ndarray:
    """
    Return the per-step spike probability of every input, ``float64 [B, n_inputs]``.

    ``images`` is ``[B, ...]``: uint8 in 0..255 or float in [0, 1]; it is flattened per sample.
    ``p = min(1, x * rate_hz * dt_ms / 1000)`` with ``x`` the intensity in [0, 1].
    """
    images = np.asarray(images)
    if images.ndim < 2:
        raise ValueError(f'images must be [B, ...], got shape {images.shape}')
    flat = images.reshape(images.shape[0], -1)
    if flat.dtype == np.uint8:
        intensity = flat.astype(np.float64) / 255.0
    else:
        intensity = flat.astype(np.float64)
        if intensity.size and (intensity.min() < 0.0 or intensity.max() > 1.0):
            raise ValueError('float images must lie in [0, 1] (uint8 images in 0..255)')
    return np.minimum(intensity * (rate_hz * dt_ms / 1000.0), 1.0)


def log_no_spike(probabilities: np.ndarray) -> np.ndarray:
    """Return ``log(1 - p)`` (``-inf`` for ``p = 1``): the form the kernels draw gaps from."""
    with np.errstate(divide='ignore'):
        return np.ascontiguousarray(np.log1p(-probabilities), dtype=np.float64)


def draw_seeds(rng: np.random.Generator, n_samples: int) -> np.ndarray:
    """Draw one uint64 SplitMix64 seed per sample from ``rng``."""
    return rng.integers(0, np.iinfo(np.uint64).max, size=n_samples, dtype=np.uint64,
                        endpoint=True)


def poisson_events(images: np.ndarray, timesteps: int, rate_hz: float, dt_ms: float,
                   seeds: np.ndarray) -> SpikeEvents:
    """
    Rate-code ``images [B, ...]`` into ``timesteps`` steps of spikes, one seed per sample.

    Gives the same trains as the engines draw internally from the same seeds.
    """
    if timesteps < 1:
        raise ValueError(f'timesteps must be >= 1, got {timesteps}')
    log_q = log_no_spike(spike_probabilities(images, rate_hz, dt_ms))
    seeds = np.ascontiguousarray(seeds, dtype=np.uint64).reshape(-1)
    if seeds.shape[0] != log_q.shape[0]:
        raise ValueError(f'need one seed per sample: {seeds.shape[0]} seeds, '
                         f'{log_q.shape[0]} samples')
    pixels, row_ptr = poisson_batch(log_q, int(timesteps), seeds)
    return SpikeEvents(pixels=pixels, row_ptr=row_ptr, n_inputs=log_q.shape[1])
