"""Tests of the Diehl & Cook network API: inputs, isolation, invariants, op counts, caches."""

import copy

import numpy as np
import pytest

from topspark_ros.core.inputs import SampleSeeds
from topspark_ros.core.stdp import DiehlCookNetwork, DynamicsParams, STDPConfig
from topspark_ros.core.stdp import kernels, simulation_constants
from topspark_ros.core.stdp.encoding import draw_seeds, log_no_spike, poisson_events
from topspark_ros.core.stdp.encoding import spike_probabilities
from topspark_ros.core.stdp.engine import PoissonInput
from topspark_ros.core.stdp.results import EngineCounts
from topspark_ros.core.topspark.early_exit import EarlyExit


def test_images_draw_the_same_trains_as_poisson_events(images):
    model = DiehlCookNetwork(STDPConfig(n_neurons=10))
    from_images = model.infer(images, timesteps=60, seed=5)
    events = poisson_events(images, 60, 128.0, 1.0, draw_seeds(np.random.default_rng(5), 8))
    from_events = model.infer(events, timesteps=60)
    assert np.array_equal(from_images.evidence, from_events.evidence)
    assert np.array_equal(from_images.ops.input_spikes, events.counts())


def test_bad_inputs_are_refused(images):
    model = DiehlCookNetwork(STDPConfig(n_neurons=10))
    events = poisson_events(images[:2], 20, 128.0, 1.0, np.array([1, 2], np.uint64))
    with pytest.raises(TypeError, match='SpikeEvents'):
        model.infer(list(images), timesteps=20)
    with pytest.raises(ValueError, match='timesteps=30 but the spikes have 20 steps'):
        model.learn(events, timesteps=30)
    with pytest.raises(ValueError, match='spikes have 784 inputs, the model 100'):
        DiehlCookNetwork(STDPConfig(n_inputs=100, n_neurons=10)).infer(events, timesteps=20)
    with pytest.raises(ValueError, match='images have 100 pixels, the model 784 inputs'):
        model.infer(np.zeros((1, 10, 10), np.uint8), timesteps=20)
    with pytest.raises(ValueError, match='early exit needs assigned labels'):
        model.infer(images, timesteps=20, early_exit=EarlyExit())
    assert model.infer(events, timesteps=20).timesteps_used.tolist() == [20, 20]


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


def test_timesteps_are_per_call_and_params_override(images):
    model = DiehlCookNetwork(STDPConfig(n_neurons=10))
    with pytest.raises(TypeError, match='timesteps'):
        model.infer(images)
    short, long_ = model.infer(images, timesteps=20), model.infer(images, timesteps=70, seed=4)
    assert list(short.timesteps_used) == [20] * 8 and list(long_.timesteps_used) == [70] * 8
    n = 10
    # Populations mode: N exc + N inh neuron updates per step.
    assert list(long_.ops.neuron_updates) == [2 * n * 70] * 8
    assert np.array_equal(long_.ops.syn_ops_input, long_.ops.input_spikes * n)
    silent = model.infer(images, timesteps=70, seed=4,
                         params=DynamicsParams(v_thresh_mv=1000.0))
    assert silent.evidence.sum() == 0
    assert np.array_equal(silent.ops.input_spikes, long_.ops.input_spikes)
    with pytest.raises(ValueError, match='tau_v_ms'):
        DynamicsParams(tau_v_ms=0.0)


def test_per_call_setup_is_cached_and_gives_the_same_input(images):
    # Issue 16: kernel constants per dynamics and log(1 - p) per input rate are made once per
    # model; the uint8 look-up table gives exactly the values computed pixel by pixel.
    model = DiehlCookNetwork(STDPConfig(n_neurons=10))
    assert model._constants(model.params) is model._constants(DynamicsParams())
    other = model._constants(DynamicsParams(tau_v_ms=50.0))
    assert other.par[kernels.P_DECAY_V] != model._constants(model.params).par[kernels.P_DECAY_V]
    rng = np.random.default_rng(5)
    noise = rng.integers(0, 256, (3, 28, 28), dtype=np.uint8)
    for rate in (128.0, 159.3, 512.0, 9000.0):
        for batch in (images, noise, images[:1]):
            want = log_no_spike(spike_probabilities(batch, rate, 1.0))
            looked_up = model._log_q_table(rate)[batch.reshape(len(batch), -1)]
            assert np.array_equal(looked_up, want)


def test_uint8_levels_looked_up_in_the_kernels_give_what_float_images_give(images):
    # Issue 16: uint8 frames reach the kernels as levels with a 256-entry table of log(1 - p)
    # (looked up per sample); float frames of the same intensities as log(1 - p) rows. Both
    # must draw the same trains, in inference (batched and one by one) and in learning.
    model = DiehlCookNetwork(STDPConfig(n_neurons=20, seed=2))
    floats = images[:6] / 255.0
    for batch in (slice(0, 6), slice(2, 3)):
        a = model.infer(images[batch], timesteps=40, seed=9)
        b = model.infer(floats[batch], timesteps=40, seed=9)
        assert a.evidence.sum() > 0
        assert np.array_equal(a.evidence, b.evidence)
        assert np.array_equal(a.ops.input_spikes, b.ops.input_spikes)
    twin = copy.deepcopy(model)
    model.learn(images[:6], timesteps=40, seed=4)
    twin.learn(floats, timesteps=40, seed=4)
    assert np.array_equal(model.weights, twin.weights)
    assert np.array_equal(model.theta, twin.theta)


def test_the_seed_stream_gives_the_generators_seeds_in_their_order():
    # Issue 16: a model's own seeds (seed None) come from a block of 64 raw PCG64 outputs:
    # the same values, in the same order, as drawing each call's seeds from the generator,
    # whatever the sizes of the calls; copies and pickles go on with the same seeds; threads
    # taking at once never get the same seed.
    import pickle
    import threading
    from topspark_ros.core.stdp.network import _SeedStream
    sizes = (1, 1, 5, 57, 1, 64, 3, 200, 2, 130, 1, 63, 65, 1)
    reference = np.random.default_rng(3)
    want = [draw_seeds(reference, n) for n in sizes]
    stream = _SeedStream(np.random.default_rng(3))
    for i, n in enumerate(sizes):
        if i == 6:
            copied, pickled = copy.deepcopy(stream), pickle.loads(pickle.dumps(stream))
        got = stream.take(n)
        assert got.dtype == np.uint64 and np.array_equal(got, want[i]), (i, n)
    for twin in (copied, pickled):
        assert np.array_equal(np.concatenate([twin.take(n) for n in sizes[6:]]),
                              np.concatenate(want[6:]))
    shared, taken = _SeedStream(np.random.default_rng(4)), [[] for _ in range(4)]

    def take(out):
        for _ in range(500):
            out.append(int(shared.take(1)[0]))

    threads = [threading.Thread(target=take, args=(out,)) for out in taken]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(sum(taken, [])) == sorted(
        int(v) for v in draw_seeds(np.random.default_rng(4), 2000))
    with pytest.raises(TypeError, match='PCG64'):
        _SeedStream(np.random.Generator(np.random.MT19937(1)))


def test_a_refused_call_draws_no_seed_and_levels_are_checked(images):
    # Images of the wrong size are refused before the model's random stream moves on.
    model, twin = DiehlCookNetwork(STDPConfig(n_neurons=10)), DiehlCookNetwork(STDPConfig(
        n_neurons=10))
    with pytest.raises(ValueError, match='pixels'):
        model.infer(np.zeros((2, 27, 27), np.uint8), timesteps=5)
    assert np.array_equal(model.infer(images[:3], timesteps=30).evidence,
                          twin.infer(images[:3], timesteps=30).evidence)
    table, levels = np.zeros(256), np.zeros((2, 784), np.uint8)
    seeds = np.zeros(2, np.uint64)
    for bad in (lambda: PoissonInput(None, seeds, levels.astype(np.int64), table),
                lambda: PoissonInput(None, seeds, np.asfortranarray(levels[:, :4]), table),
                lambda: PoissonInput(None, seeds, levels, table[:255]),
                lambda: PoissonInput(None, seeds, levels, None),
                lambda: PoissonInput(np.zeros((2, 784)), seeds, levels, table)):
        with pytest.raises(ValueError):
            bad()


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
    assert np.array_equal(a.evidence, b.evidence)


@pytest.mark.parametrize('engine', ['numba', 'torch'])
def test_each_input_can_be_given_its_own_seed(images, engine):
    # A frame's seed from its stamp (the classifier's input_seed): SampleSeeds are used as
    # given, one per input, on the one-frame path, the batch path and in learning, and leave
    # the model's stream alone.
    model = DiehlCookNetwork(STDPConfig(n_neurons=10), engine=engine)
    values = draw_seeds(np.random.default_rng(11), len(images))
    given = model.infer(images, timesteps=30, seed=SampleSeeds(values))
    assert np.array_equal(given.evidence, model.infer(images, timesteps=30, seed=11).evidence)
    frame = images[2:3]
    one = model.infer(frame, timesteps=30, seed=SampleSeeds(values[2:3]))
    assert np.array_equal(one.evidence, given.evidence[2:3])
    assert np.array_equal(model._seeds(None, 2), draw_seeds(
        np.random.default_rng(np.random.SeedSequence(0).spawn(2)[1]), 2))  # stream untouched
    twin = copy.deepcopy(model)
    model.learn(frame, timesteps=20, seed=SampleSeeds.of_stamp(1_700_000_000_123))
    twin.learn(frame, timesteps=20, seed=SampleSeeds(draw_seeds(np.random.default_rng(1), 1)))
    twin_again = copy.deepcopy(model)
    assert not np.array_equal(model.weights, twin.weights)
    model.learn(frame, timesteps=20, seed=SampleSeeds.of_stamp(1_700_000_000_124))
    twin_again.learn(frame, timesteps=20, seed=SampleSeeds.of_stamp(1_700_000_000_124))
    assert np.array_equal(model.weights, twin_again.weights)
    with pytest.raises(ValueError, match='2 sample seeds for 8 inputs'):
        model.infer(images, timesteps=30, seed=SampleSeeds(values[:2]))


def test_sample_seeds_of_stamps():
    a = SampleSeeds.of_stamp(10)
    assert a.values.dtype == np.uint64 and a.values.shape == (1,)
    assert np.array_equal(a.values, SampleSeeds.of_stamp(10).values)
    assert len({int(SampleSeeds.of_stamp(s, k).values[0]) for s in (0, 10, 11, 2**63, -1)
                for k in (0, 1)}) == 10
    for bad in (np.array([1, 2]), np.zeros((1, 1), np.uint64), [3]):
        with pytest.raises(ValueError, match='uint64'):
            SampleSeeds(bad)


def test_engine_counts_name_the_kernels_columns():
    # EngineCounts keeps the kernels' [B, N_OPS] matrix; each name reads its OP_* column.
    ops = np.arange(21, dtype=np.int64).reshape(3, kernels.N_OPS)
    counts = EngineCounts.from_matrix(ops)
    columns = {'input_spikes': kernels.OP_INPUT_SPIKES, 'exc_spikes': kernels.OP_EXC_SPIKES,
               'inh_spikes': kernels.OP_INH_SPIKES, 'syn_ops_input': kernels.OP_SYN_INPUT,
               'syn_ops_inhibition': kernels.OP_SYN_INHIBITION,
               'neuron_updates': kernels.OP_NEURON_UPDATES,
               'plasticity_updates': kernels.OP_PLASTICITY}
    assert set(columns) == set(EngineCounts.FIELDS)
    for name, column in columns.items():
        assert getattr(counts, name).tolist() == ops[:, column].tolist()
    assert counts.totals() == {name: int(ops[:, c].sum()) for name, c in columns.items()}
    ops[:] = 0  # a copy: the caller's matrix may be reused
    assert counts.input_spikes.tolist() == [0, 7, 14]
    with pytest.raises(AttributeError):
        counts.input_spikes = np.zeros(3, np.int64)
    with pytest.raises(ValueError, match=r'must be \[B, 7\]'):
        EngineCounts.from_matrix(np.zeros((3, 6), np.int64))
    assert 'samples=3' in repr(counts)


def test_each_call_gets_the_constants_of_its_own_params():
    # The model keeps the last call's constants by identity: alternating params must not
    # return the other's.
    model = DiehlCookNetwork(STDPConfig(n_neurons=5))
    a, b = DynamicsParams(), DynamicsParams(tau_v_ms=50.0)
    for params in (a, b, a, DynamicsParams(tau_v_ms=50.0), a):
        want = simulation_constants(model.config, params).par
        assert np.array_equal(model._constants(params).par, want)


def test_early_exit_votes_follow_a_readout_assigned_while_they_are_made(monkeypatch):
    # The votes are kept per readout: a readout assigned (by another thread) while the votes
    # of the old one are being made must not be paired with them.
    from topspark_ros.core.stdp import network
    from topspark_ros.core.stdp.readout import Readout
    from topspark_ros.core.topspark.early_exit import class_votes
    model = DiehlCookNetwork(STDPConfig(n_neurons=4))
    old = Readout(np.zeros((4, 10)), np.array([0, 0, 1, 1]))
    new = Readout(np.zeros((4, 10)), np.array([2, 3, 4, 5]))
    model.readout = old

    def assigned_meanwhile(assignments, n_classes):
        votes = class_votes(assignments, n_classes)
        model.readout = new
        return votes

    monkeypatch.setattr(network, 'class_votes', assigned_meanwhile)
    model._exit_votes()
    monkeypatch.setattr(network, 'class_votes', class_votes)
    assert np.array_equal(model._exit_votes()[0], class_votes(new.assignments, 10)[0])
