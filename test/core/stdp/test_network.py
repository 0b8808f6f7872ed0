"""Tests of the Diehl & Cook network API: engines, isolation, invariants, op counts."""

import numpy as np
import pytest

from topspark_ros.core.stdp import DiehlCookNetwork, DynamicsParams, STDPConfig
from topspark_ros.core.stdp import kernels
from topspark_ros.core.stdp.encoding import draw_seeds, poisson_events, SpikeEvents
from topspark_ros.core.stdp.readout import assign_labels


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


def _normalise_both(w, norm, w_max, state):
    """Return (normalise_columns(w), normalise_changed_columns(w, state)) on copies."""
    full, changed = w.copy(), w.copy()
    kernels.normalise_columns(full, norm, w_max)
    kernels.normalise_changed_columns(changed, norm, w_max, *state)
    return full, changed


def test_normalising_only_the_written_columns_gives_the_same_weights_bit_for_bit():
    # Issue 16: after a sample only the columns STDP wrote are normalised (O(n_in) each);
    # every other column must come out exactly as a full normalise_columns pass leaves it.
    rng = np.random.default_rng(0)
    n_in, n = 784, 24
    w = rng.uniform(0.0, 0.3, (n_in, n)).astype(np.float32)
    w[0, 1] = 60.0  # water filling
    w[:, 2] = 0.0  # an all-zero column becomes uniform
    state = (np.ones(n, np.bool_), np.zeros(n), np.zeros(n))
    full, changed = _normalise_both(w, 78.4, 1.0, state)
    assert np.array_equal(full, changed) and not state[0].any()
    w = full
    for _ in range(30):
        # STDP-like edits of a few columns, marked; some unmarked columns are left as they are.
        cols = rng.choice(n, size=3, replace=False)
        rows = rng.choice(n_in, size=40, replace=False)
        w[np.ix_(rows, cols)] = np.clip(
            w[np.ix_(rows, cols)] + rng.normal(0.0, 0.05, (40, 3)), 0.0, 1.0).astype(np.float32)
        state[0][cols] = True
        full, changed = _normalise_both(w, 78.4, 1.0, state)
        assert np.array_equal(full, changed)
        w = full
    # Nothing marked but another target sum: every column has to be rescaled, none skipped.
    full, changed = _normalise_both(w, 70.0, 1.0, state)
    assert np.array_equal(full, changed) and not np.array_equal(full, w)
    # Nothing marked, same target: the columns are fixed points, nothing changes.
    full, changed = _normalise_both(changed, 70.0, 1.0, state)
    assert np.array_equal(full, changed)


@pytest.mark.parametrize('between', ['reset', 'rest'])
def test_learning_keeps_the_column_sums_of_the_written_columns(images, between):
    # The engine keeps per-column sums between calls: they must be those of the weights.
    model = DiehlCookNetwork(STDPConfig(n_neurons=30, between_samples=between, rest_ms=30.0))
    for k in range(3):
        model.learn(images[k:k + 1], timesteps=60, seed=k)
    changed, sums, peaks = model._engine._norm_state
    w = model.weights.astype(np.float64)
    clean = ~changed
    assert clean.any()
    np.testing.assert_array_equal(sums[clean], np.cumsum(w, axis=0)[-1][clean])
    np.testing.assert_array_equal(peaks[clean], w.max(axis=0)[clean])


def test_serial_inference_kernel_matches_the_parallel_one(images):
    # Issue 16: batch 1 runs without a parallel region (infer_serial), with the same results.
    model = DiehlCookNetwork(STDPConfig(n_neurons=40))
    const = model._constants(model.params)
    log_q = model._log_no_spike(images, model.params.input_rate_hz)
    seeds = draw_seeds(np.random.default_rng(3), len(images))
    outputs = []
    for kernel in (kernels.infer_batch, kernels.infer_serial):
        counts = np.zeros((len(images), 40), np.int64)
        ops = np.zeros((len(images), kernels.N_OPS), np.int64)
        steps = np.zeros(len(images), np.int64)
        kernel(model._engine.w, model._engine.th, log_q, seeds, np.zeros(0, np.int32),
               np.zeros((0, 51), np.int64), 50, const.par, const.ipar, const.tab_pre,
               const.tab_post1, const.tab_post2, counts, ops, np.zeros(0, np.int64),
               np.zeros(0), 0.0, 0, steps)
        outputs.append((counts, ops, steps))
    for a, b in zip(*outputs):
        assert np.array_equal(a, b)
    assert outputs[0][0].sum() > 0


def test_per_call_setup_is_cached_and_gives_the_same_input(images):
    # Issue 16: kernel constants per dynamics and log(1 - p) per input rate are made once per
    # model; the uint8 look-up table gives exactly the values computed pixel by pixel.
    from topspark_ros.core.stdp.encoding import log_no_spike, spike_probabilities
    model = DiehlCookNetwork(STDPConfig(n_neurons=10))
    assert model._constants(model.params) is model._constants(DynamicsParams())
    other = model._constants(DynamicsParams(tau_v_ms=50.0))
    assert other.par[kernels.P_DECAY_V] != model._constants(model.params).par[kernels.P_DECAY_V]
    rng = np.random.default_rng(5)
    noise = rng.integers(0, 256, (3, 28, 28), dtype=np.uint8)
    for rate in (128.0, 159.3, 512.0, 9000.0):
        for batch in (images, noise, images[:1]):
            want = log_no_spike(spike_probabilities(batch, rate, 1.0))
            assert np.array_equal(model._log_no_spike(batch, rate), want)
    floats = images[:2] / 255.0
    assert np.array_equal(model._log_no_spike(floats, 128.0),
                          log_no_spike(spike_probabilities(floats, 128.0, 1.0)))


def test_poisson_scratch_growth_mid_sample_changes_no_event(images):
    # The trains are drawn into a scratch that grows between inputs (kernels._draw_trains);
    # a scratch too small from the start must give the same events as a large one.
    from topspark_ros.core.stdp.encoding import log_no_spike, spike_probabilities
    log_q = log_no_spike(spike_probabilities(images[:1], 300.0, 1.0))[0]
    got = []
    for size in (1, 1 << 16):
        row_ptr = np.zeros(201, np.int64)
        pixels, _, n = kernels.poisson_sample(
            log_q, 200, np.uint64(12345), row_ptr, np.empty(size, np.int32),
            np.empty(size, np.int32), np.empty(784, np.int64), kernels.ZIGGURAT)
        got.append((pixels[:n].copy(), row_ptr.copy()))
    assert got[0][1][-1] > 1000
    assert np.array_equal(got[0][0], got[1][0]) and np.array_equal(got[0][1], got[1][1])


def test_readout_scores_of_integer_counts_equal_those_of_float_counts():
    rng = np.random.default_rng(2)
    counts = rng.integers(0, 30, (64, 50))
    readout = assign_labels(counts[:40], rng.integers(0, 7, 40), n_classes=8)
    assert (np.bincount(readout.assignments + 1, minlength=9) == 0).any()  # an empty class
    for dtype in (np.int64, np.int32, np.uint8):
        assert np.array_equal(readout.scores(counts.astype(dtype)),
                              readout.scores(counts.astype(np.float64)))


def test_seeds_are_those_draw_seeds_gives(images):
    # Issue 16: the per-sample seeds are drawn as raw PCG64 outputs (and kept per int seed):
    # the same values as encoding.draw_seeds, from the model's stream and from a given seed.
    model = DiehlCookNetwork(STDPConfig(n_neurons=10))
    stream = np.random.default_rng(np.random.SeedSequence(0).spawn(2)[1])
    for n in (1, 3, 1, 8, 2):
        assert np.array_equal(model._seeds(None, n), draw_seeds(stream, n))
    for seed in (0, 7, np.int64(7), 2**63):
        for _ in range(2):
            assert np.array_equal(model._seeds(seed, 5),
                                  draw_seeds(np.random.default_rng(seed), 5))
    a = model.infer(images, timesteps=30, seed=11)
    b = model.infer(images, timesteps=30, seed=11)
    assert np.array_equal(a.exc_spike_counts, b.exc_spike_counts)
