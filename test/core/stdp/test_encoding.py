"""Tests of the rate coding and the sparse spike events of the STDP engines."""

import numpy as np
import pytest

from topspark_ros.core.stdp.encoding import poisson_events, SpikeEvents


def test_poisson_rates_and_dense_round_trip():
    image = np.full((1, 784), 255, np.uint8)
    image[0, :392] = 64
    events = poisson_events(image, 1000, 100.0, 1.0, np.array([7], np.uint64))
    dense = events.to_dense()
    assert dense.shape == (1000, 1, 784)
    rates = dense[:, 0].mean(axis=0)
    # p = 0.1 and 0.1 * 64 / 255; 392 inputs x 1000 steps each: tight means.
    assert rates[392:].mean() == pytest.approx(0.1, rel=0.02)
    assert rates[:392].mean() == pytest.approx(0.1 * 64 / 255, rel=0.04)
    again = SpikeEvents.from_dense(dense)
    assert np.array_equal(again.to_dense(), dense)
    assert np.array_equal(again.counts(), events.counts())
    full = poisson_events(np.full((1, 4), 255, np.uint8), 5, 1000.0, 1.0, np.array([1], np.uint64))
    assert full.to_dense().all()   # p = 1: a spike every step


def test_malformed_events_are_refused():
    with pytest.raises(ValueError, match='twice'):
        SpikeEvents(pixels=np.array([3, 3]), row_ptr=np.array([[0, 2]]), n_inputs=5)
    with pytest.raises(ValueError, match='lie in'):
        SpikeEvents(pixels=np.array([9]), row_ptr=np.array([[0, 1]]), n_inputs=5)
    with pytest.raises(ValueError, match='non-decreasing'):
        SpikeEvents(pixels=np.array([1, 2]), row_ptr=np.array([[2, 0, 2]]), n_inputs=5)
