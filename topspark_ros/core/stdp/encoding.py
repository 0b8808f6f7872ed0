"""
Poisson rate coding of images into the STDP engines' input spikes.

Rate coding: input ``i`` of a sample with intensity ``x_i`` (uint8 0..255, or float in [0, 1])
spikes in each step of ``dt_ms`` independently with probability

    p_i = min(1, x_i / 255 * rate_hz * dt_ms / 1000)

(a Bernoulli approximation of a Poisson process of ``x_i / 255 * rate_hz`` Hz). The spike
times are drawn as geometric inter-spike gaps (see :mod:`topspark_ros.core.stdp.rng`), one
SplitMix64 seed per sample, so the same seed gives the same trains on every engine and thread
count.
"""

import numpy as np

from topspark_ros.core.inputs import SpikeEvents
from topspark_ros.core.model import check_timesteps, unit_intensities
from topspark_ros.core.stdp.rng import poisson_batch


def spike_probabilities(images: np.ndarray, rate_hz: float, dt_ms: float) -> np.ndarray:
    """
    Return the per-step spike probability of every input, ``float64 [B, n_inputs]``.

    ``images`` is ``[B, ...]``: uint8 in 0..255 or float in [0, 1]; it is flattened per sample.
    ``p = min(1, x * rate_hz * dt_ms / 1000)`` with ``x`` the intensity in [0, 1].
    """
    images = np.asarray(images)
    if images.ndim < 2:
        raise ValueError(f'images must be [B, ...], got shape {images.shape}')
    intensity = unit_intensities(images.reshape(images.shape[0], -1))
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
    steps = check_timesteps(timesteps)
    log_q = log_no_spike(spike_probabilities(images, rate_hz, dt_ms))
    seeds = np.ascontiguousarray(seeds, dtype=np.uint64).reshape(-1)
    if seeds.shape[0] != log_q.shape[0]:
        raise ValueError(f'need one seed per sample: {seeds.shape[0]} seeds, '
                         f'{log_q.shape[0]} samples')
    pixels, row_ptr = poisson_batch(log_q, steps, seeds)
    return SpikeEvents(pixels=pixels, row_ptr=row_ptr, n_inputs=log_q.shape[1])
