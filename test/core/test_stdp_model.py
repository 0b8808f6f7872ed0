"""Tests of the Diehl & Cook network API: engines, isolation, invariants, op counts."""

import numpy as np
import pytest

from topspark_ros.core import kernels
from topspark_ros.core.encoding import draw_seeds, poisson_events, SpikeEvents
from topspark_ros.core.readout import assign_labels
from topspark_ros.core.stdp import DiehlCookNetwork, DynamicsParams, STDPConfig


@pytest.fixture(scope='module')
def images(fashion_train):
    """Return 8 real training images."""
    return fashion_train.images[:8]


def _events(images, timesteps=100, seed=1):
    return poisson_events(images, timesteps, 128.0, 1.0,
                          draw_seeds(np.random.default_rng(seed), len(images)))


@pytest.mark.parametrize('inhibition, rule, between, one_spike', [
    ('populations', 'dc', 'reset', True),
    ('populations', 'pair', 'rest', False),
    ('direct', 'dc', 'rest', True),
    ('direct', 'pair', 'reset', False),
])
def test_numba_and_torch_engines_agree(images, inhibition, rule, between, one_spike):
    config = STDPConfig(n_neurons=20, inhibition=inhibition, learning_rule=rule,
                        between_samples=between, one_spike=one_spike, rest_ms=15.0)
    events = _events(images[:5], timesteps=80)
    fast = DiehlCookNetwork(config)
    ref = DiehlCookNetwork(config, engine='torch')
    learnt = fast.learn(spikes=events), ref.learn(spikes=events)
    assert learnt[0].exc_spike_counts.sum() > 0
    assert np.array_equal(learnt[0].exc_spike_counts, learnt[1].exc_spike_counts)
    assert learnt[0].ops.totals() == learnt[1].ops.totals()
    assert np.array_equal(fast.weights, ref.weights)
    assert np.array_equal(fast.theta, ref.theta)
    inferred = fast.infer(spikes=events), ref.infer(spikes=events)
    assert np.array_equal(inferred[0].exc_spike_counts, inferred[1].exc_spike_counts)
    assert inferred[0].ops.totals() == inferred[1].ops.totals()


def test_images_draw_the_same_trains_as_poisson_events(images):
    model = DiehlCookNetwork(STDPConfig(n_neurons=10))
    from_images = model.infer(images, timesteps=60, seed=5)
    events = poisson_events(images, 60, 128.0, 1.0, draw_seeds(np.random.default_rng(5), 8))
    from_events = model.infer(spikes=events)
    assert np.array_equal(from_images.exc_spike_counts, from_events.exc_spike_counts)
    assert np.array_equal(from_images.ops.input_spikes, events.counts())


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


def test_inference_changes_nothing(images):
    for engine in ('numba', 'torch'):
        model = DiehlCookNetwork(STDPConfig(n_neurons=16), engine=engine)
        model.learn(images[:2], timesteps=50)
        weights, theta = model.weights, model.theta
        result = model.infer(images, timesteps=50)
        assert np.array_equal(model.weights, weights) and np.array_equal(model.theta, theta)
        assert result.ops.plasticity_updates.sum() == 0
        assert result.scores is None and result.predicted is None


def test_models_are_isolated(images):
    config = STDPConfig(n_neurons=12, between_samples='rest', rest_ms=10.0)
    a, b, fresh = DiehlCookNetwork(config), DiehlCookNetwork(config), DiehlCookNetwork(config)
    a.learn(images[:3], timesteps=40, seed=1)
    assert np.array_equal(b.weights, fresh.weights) and np.array_equal(b.theta, fresh.theta)
    # Rest mode carries state between calls; reset_state clears only its own model.
    b.learn(images[:1], timesteps=40, seed=2)
    fresh.learn(images[:1], timesteps=40, seed=2)
    a.reset_state()
    second_b = b.learn(images[1:2], timesteps=40, seed=3)
    second_fresh = fresh.learn(images[1:2], timesteps=40, seed=3)
    assert np.array_equal(second_b.exc_spike_counts, second_fresh.exc_spike_counts)
    assert np.array_equal(b.weights, fresh.weights)


def test_normalisation_invariants(images):
    config = STDPConfig(n_neurons=16, w_max=0.5, norm=78.4)
    model = DiehlCookNetwork(config)
    model.learn(images, timesteps=100, params=DynamicsParams(nu_post=0.2))
    w = model.weights.astype(np.float64)
    assert w.min() >= 0.0 and w.max() <= 0.5
    np.testing.assert_allclose(w.sum(axis=0), 78.4, rtol=1e-5)
    # Water filling: a column with one dominant weight is capped and the rest rescaled.
    col = np.full((784, 1), 0.01, np.float32)
    col[0, 0] = 50.0
    kernels.normalise_columns(col, 78.4, 1.0)
    assert col[0, 0] == 1.0 and col.sum(dtype=np.float64) == pytest.approx(78.4, rel=1e-6)


def test_timesteps_are_per_call_and_params_override(images):
    model = DiehlCookNetwork(STDPConfig(n_neurons=10))
    with pytest.raises(ValueError, match='timesteps'):
        model.infer(images)
    short, long_ = model.infer(images, timesteps=20), model.infer(images, timesteps=70, seed=4)
    assert list(short.timesteps_used) == [20] * 8 and list(long_.timesteps_used) == [70] * 8
    n = 10
    # Populations mode: N exc + N inh neuron updates per step.
    assert list(long_.ops.neuron_updates) == [2 * n * 70] * 8
    assert np.array_equal(long_.ops.syn_ops_input, long_.ops.input_spikes * n)
    silent = model.infer(images, timesteps=70, seed=4,
                         params=DynamicsParams(v_thresh_mv=1000.0))
    assert silent.exc_spike_counts.sum() == 0
    assert np.array_equal(silent.ops.input_spikes, long_.ops.input_spikes)
    with pytest.raises(ValueError, match='tau_v_ms'):
        DynamicsParams(tau_v_ms=0.0)


def test_readout_votes():
    counts = np.array([[5, 0, 1, 0], [0, 4, 0, 3], [0, 0, 0, 0]])
    readout = assign_labels(counts[:2], np.array([0, 1]), n_classes=3)
    assert list(readout.assignments) == [0, 1, 0, 1]
    assert list(readout.predict(counts)) == [0, 1, 0]
    assert readout.scores(counts)[1].tolist() == [0.0, 3.5, 0.0]
    cosine = readout.scores(counts, 'cosine')
    assert cosine[0, 0] == pytest.approx(1.0) and cosine[2].tolist() == [0.0, 0.0, 0.0]
    never = assign_labels(np.zeros((2, 2)), np.array([0, 1]), n_classes=2)
    assert list(never.assignments) == [-1, -1]
