"""Tests of the numba engine's random numbers: Poisson spike trains from a seed per sample."""

import numpy as np

from topspark_ros.core.stdp import rng
from topspark_ros.core.stdp.encoding import log_no_spike, spike_probabilities


def test_poisson_scratch_growth_mid_sample_changes_no_event(images):
    # The trains are drawn into a scratch that grows between inputs (rng._draw_trains);
    # a scratch too small from the start must give the same events as a large one.
    log_q = log_no_spike(spike_probabilities(images[:1], 300.0, 1.0))[0]
    got = []
    for size in (1, 1 << 16):
        row_ptr = np.zeros(201, np.int64)
        pixels, _, n = rng.poisson_sample(
            log_q, 200, np.uint64(12345), row_ptr, np.empty(size, np.int32),
            np.empty(size, np.int32), np.empty(784, np.int64), rng.ZIGGURAT)
        got.append((pixels[:n].copy(), row_ptr.copy()))
    assert got[0][1][-1] > 1000
    assert np.array_equal(got[0][0], got[1][0]) and np.array_equal(got[0][1], got[1][1])


def test_a_sample_draws_the_same_trains_alone_and_in_a_batch(images):
    # One SplitMix64 stream per sample: its trains depend on its seed only, not on its place
    # in the batch (so neither on the batch size nor on the threads that run it).
    log_q = log_no_spike(spike_probabilities(images[:4], 128.0, 1.0))
    seeds = np.array([3, 1 << 63, 17, 3], np.uint64)
    pixels, row_ptr = rng.poisson_batch(log_q, 50, seeds)
    for b in range(4):
        alone_pixels, alone_ptr = rng.poisson_batch(log_q[b:b + 1], 50, seeds[b:b + 1])
        assert np.array_equal(pixels[row_ptr[b, 0]:row_ptr[b, -1]], alone_pixels)
        assert np.array_equal(row_ptr[b] - row_ptr[b, 0], alone_ptr[0])
    same_image = rng.poisson_batch(log_q[[0, 0]], 50, seeds[[0, 3]])[1]
    assert np.array_equal(np.diff(same_image[0]), np.diff(same_image[1]))
