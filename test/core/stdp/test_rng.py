"""Tests of the numba engine's random numbers: Poisson spike trains from a seed per sample."""

from math import comb

import numpy as np
import pytest

from topspark_ros.core.stdp import rng
from topspark_ros.core.stdp.encoding import log_no_spike, spike_probabilities


def test_poisson_scratch_growth_mid_sample_changes_no_event(images):
    # The events are drawn into a scratch that grows between rounds (rng.poisson_sample);
    # a scratch too small from the start must give the same events as a large one.
    log_q = log_no_spike(spike_probabilities(images[:1], 300.0, 1.0))[0]
    got = []
    for size in (1, 1 << 16):
        row_ptr = np.zeros(201, np.int64)
        pixels, _, n = rng.poisson_sample(
            log_q, 200, np.uint64(12345), row_ptr, np.empty(size, np.int32),
            np.empty((2, size), np.int32), np.empty(784, np.int64),
            np.empty((2, 784), np.float64), rng.ZIGGURAT)
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


def _chi_square(observed: np.ndarray, expected: np.ndarray) -> float:
    return float((((observed - expected) ** 2) / expected).sum())


def test_trains_are_bernoulli_per_step_and_independent_across_inputs():
    # Every spike pattern of an input over T=4 steps must have probability p^k (1-p)^(4-k)
    # (k spikes), the patterns of two neighbouring inputs must be independent, and so must
    # those of inputs that stopped in different rounds of the draw. Chi-square against the
    # exact probabilities, 0.1 % critical values (a correct draw exceeds them for 1 seed in
    # 1000; over 300 seeds the statistics averaged 14.9 for 15 degrees of freedom). The seeds
    # are fixed, so the test is deterministic, and an off-by-one gap or a draw shared between
    # inputs fails it by far.
    steps, n_in, n_samples = 4, 64, 600
    p = np.where(np.arange(n_in) % 2 == 0, 0.5, 0.2)
    log_q = np.tile(np.log1p(-p), (n_samples, 1))
    seeds = np.random.default_rng(0).integers(0, 2**63, n_samples).astype(np.uint64)
    pixels, row_ptr = rng.poisson_batch(log_q, steps, seeds)
    spikes = np.zeros((n_samples, steps, n_in), bool)
    for b in range(n_samples):
        for t in range(steps):
            spikes[b, t, pixels[row_ptr[b, t]:row_ptr[b, t + 1]]] = True
    assert spikes.sum() == len(pixels)  # no input twice in a step
    pattern = (spikes * (1 << np.arange(steps))[None, :, None]).sum(axis=1)  # [B, n_in]
    k = np.array([bin(v).count('1') for v in range(16)])
    for parity, prob in ((0, 0.5), (1, 0.2)):
        expected = prob ** k * (1 - prob) ** (steps - k)
        seen = np.bincount(pattern[:, parity::2].ravel(), minlength=16)
        assert _chi_square(seen, expected * seen.sum()) < 37.7  # 15 degrees of freedom
    # Joint counts of neighbours (p = 0.5, 0.2): 5 x 5 spike counts, independence.
    counts = spikes.sum(axis=1)
    law = {q: np.array([comb(steps, c) * q ** c * (1 - q) ** (steps - c) for c in range(5)])
           for q in (0.5, 0.2)}
    joint = np.zeros((5, 5))
    np.add.at(joint, (counts[:, 0::2].ravel(), counts[:, 1::2].ravel()), 1)
    expected = np.outer(law[0.5], law[0.2]) * joint.sum()
    keep = expected > 5
    # 52.6: the 0.1 % critical value for 25 degrees of freedom, more than the test has.
    assert _chi_square(joint[keep], expected[keep]) < 52.6


def test_a_train_ending_early_does_not_shift_the_next_inputs():
    # Inputs drawn in rounds: a silent or saturated input among others changes nothing in
    # the statistics of the rest (p = 1 spikes every step, p = 0 never).
    log_q = np.tile(log_no_spike(np.array([0.0, 1.0, 0.3, 0.3])), (4000, 1))
    seeds = np.arange(1, 4001, dtype=np.uint64)
    pixels, row_ptr = rng.poisson_batch(log_q, 10, seeds)
    per_input = np.bincount(pixels, minlength=4)
    assert per_input[0] == 0 and per_input[1] == 4000 * 10
    assert per_input[2:] / (4000 * 10) == pytest.approx([0.3, 0.3], abs=0.01)


def test_the_first_gaps_of_levels_are_those_of_their_log_q_row():
    # Issue 16: uint8 frames prepare their trains from the levels and a table of gap scales
    # made once per call (no division per input): the same inputs, order and scales as
    # first_gaps of the row table[levels], bit for bit, with silent levels (p = 0) and
    # always-on ones (p = 1, log_q -inf, scale 0 but spiking every step).
    table = log_no_spike(spike_probabilities(np.arange(256, dtype=np.uint8)[None, :],
                                             300.0, 1.0))[0]
    table[255] = -np.inf
    assert table[0] == 0.0 and np.isfinite(table[1:255]).all()
    scales = rng.gap_scales(table)
    assert scales[0] == 0.0 and scales[255] == 0.0
    levels = np.random.default_rng(1).integers(0, 256, 784).astype(np.uint8)
    levels[:50] = 0
    levels[50:60] = 255
    got = [np.empty(784, np.int64), np.empty((2, 784), np.float64)]
    want = [np.empty(784, np.int64), np.empty((2, 784), np.float64)]
    m = rng.first_gaps_of_levels(levels, table, scales, *got)
    assert m == rng.first_gaps(table[levels], *want) == np.count_nonzero(levels)
    assert np.array_equal(got[0][:m], want[0][:m])
    assert np.array_equal(got[1][:, :m], want[1][:, :m])
    # The always-on inputs spike at every step.
    row_ptr = np.zeros(11, np.int64)
    pixels, _, n = rng.poisson_draw(m, 10, np.uint64(5), row_ptr, np.empty(16, np.int32),
                                    np.empty((2, 16), np.int32), *got, rng.ZIGGURAT)
    for t in range(10):
        assert set(range(50, 60)) <= set(pixels[row_ptr[t]:row_ptr[t + 1]].tolist())
