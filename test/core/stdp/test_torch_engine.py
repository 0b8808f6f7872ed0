"""
The dense torch engine against the numba engine: the same spikes, counts and weights.

The torch engine adds the input current in float64, the numba engine in float32 (see
:mod:`topspark_ros.core.stdp.torch_engine`); they may differ only where a membrane potential
lands within about 1e-7 of its threshold, which none of these realistic cases does.
"""

from hypothesis import example, given, HealthCheck, settings, strategies as st
import numpy as np
import pytest

from topspark_ros.core.stdp import DiehlCookNetwork, DynamicsParams, STDPConfig
from topspark_ros.core.stdp.encoding import draw_seeds, poisson_events
from topspark_ros.core.stdp.normalise import normalise_columns
from topspark_ros.core.stdp.torch_engine import normalise_columns as torch_normalise_columns
from topspark_ros.core.topspark.early_exit import EarlyExit
import torch


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
    learnt = fast.learn(events, timesteps=80), ref.learn(events, timesteps=80)
    assert learnt[0].exc_spike_counts.sum() > 0
    assert np.array_equal(learnt[0].exc_spike_counts, learnt[1].exc_spike_counts)
    assert learnt[0].ops.totals() == learnt[1].ops.totals()
    assert np.array_equal(fast.weights, ref.weights)
    assert np.array_equal(fast.theta, ref.theta)
    inferred = fast.infer(events, timesteps=80), ref.infer(events, timesteps=80)
    assert np.array_equal(inferred[0].evidence, inferred[1].evidence)
    assert inferred[0].ops.totals() == inferred[1].ops.totals()


def test_engines_agree_with_scaled_thresholds_and_drawn_trains(images):
    # theta_scale scales the stored thresholds for a call (each engine does it on its own
    # arrays): the same learnt thresholds, put back by 1 / scale, on both.
    config = STDPConfig(n_neurons=16, between_samples='rest', rest_ms=10.0)
    params = DynamicsParams(theta_scale=0.5, theta_plus_mv=0.5)
    fast, ref = DiehlCookNetwork(config), DiehlCookNetwork(config, engine='torch')
    for model in (fast, ref):
        model.learn(images[:4], timesteps=60, seed=2)
        model.learn(images[4:6], timesteps=60, seed=3, params=params)
    assert np.array_equal(fast.theta, ref.theta) and fast.theta.max() > 0
    assert np.array_equal(fast.weights, ref.weights)
    inferred = [m.infer(images, timesteps=60, seed=4, params=params) for m in (fast, ref)]
    assert np.array_equal(inferred[0].evidence, inferred[1].evidence)
    assert np.array_equal(fast.theta, ref.theta)   # inference put them back
    # One frame (the engines' infer_frame: the numba kernel of a frame, torch's general path).
    for i in range(3):
        one = [m.infer(images[i:i + 1], timesteps=60, seed=5 + i, params=params)
               for m in (fast, ref)]
        assert np.array_equal(one[0].evidence, one[1].evidence) and one[0].evidence.sum() > 0
        assert one[0].ops.totals() == one[1].ops.totals()


def test_engines_agree_on_early_exit(images):
    fast = DiehlCookNetwork(STDPConfig(n_neurons=30))
    fast.learn(images, timesteps=80, seed=1)
    fast.assign_labels(images, np.arange(8) % 3, timesteps=80, seed=2)
    ref = DiehlCookNetwork(fast.config, fast.params, engine='torch', weights=fast.weights,
                           theta=fast.theta, readout=fast.readout)
    rule = EarlyExit(margin=1.0, min_steps=5)
    got = [m.infer(images, timesteps=80, seed=3, early_exit=rule) for m in (fast, ref)]
    assert np.array_equal(got[0].timesteps_used, got[1].timesteps_used)
    assert got[0].timesteps_used.min() >= 5 and got[0].timesteps_used.min() < 80
    assert np.array_equal(got[0].evidence, got[1].evidence)
    assert got[0].ops.totals() == got[1].ops.totals()
    assert np.array_equal(got[0].predicted, got[1].predicted)


def test_torch_column_normalisation_is_the_numba_one_bit_for_bit():
    rng = np.random.default_rng(7)
    w = rng.uniform(0.0, 0.3, (784, 12)).astype(np.float32)
    w[3, 1] = 40.0      # water filling
    w[:, 2] = 0.0       # all zero: uniform
    w[:, 4] *= 1e-3     # a small column scaled up a lot
    want = w.copy()
    normalise_columns(want, 78.4, 1.0)
    got = torch.from_numpy(w.copy())
    torch_normalise_columns(got, 78.4, 1.0)
    assert np.array_equal(got.numpy(), want)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@example(seed=2**31 - 1, inhibition='direct', rule='pair', between='rest', one_spike=False,
         taus=(0.05, 0.05, 0.05), rate=128.0, threshold=-55.0)  # a lead of exactly the margin
@given(seed=st.integers(0, 2**31 - 1), inhibition=st.sampled_from(['populations', 'direct']),
       rule=st.sampled_from(['dc', 'pair']), between=st.sampled_from(['reset', 'rest']),
       one_spike=st.booleans(), taus=st.tuples(*[st.sampled_from([0.05, 0.1, 0.25, 1.0])] * 3),
       rate=st.sampled_from([64.0, 128.0, 255.0]),
       threshold=st.sampled_from([-62.0, -60.0, -55.0]))
def test_engines_agree_on_random_networks_with_short_traces(images, seed, inhibition, rule,
                                                            between, one_spike, taus, rate,
                                                            threshold):
    # Traces of a few steps run out all the time, so the event-driven engine's bookkeeping of
    # which traces are alive (its active list, trace ages at the tables' ends) meets every
    # edge case the dense reference handles by construction (a neuron that spiked as its
    # trace ran out was once listed twice and depressed twice, and the list could overflow
    # its array: memory corruption).
    config = STDPConfig(n_neurons=12, inhibition=inhibition, learning_rule=rule,
                        between_samples=between, one_spike=one_spike, rest_ms=5.0,
                        tau_pre_ms=taus[0], tau_post1_ms=taus[1], tau_post2_ms=taus[2])
    params = DynamicsParams(nu_pre=0.01, nu_post=0.05, refractory_ms=1.0,
                            v_thresh_mv=threshold)
    rng = np.random.default_rng(seed)
    events = poisson_events(images[rng.permutation(len(images))[:3]], 60, rate, 1.0,
                            draw_seeds(rng, 3))
    fast = DiehlCookNetwork(config, params)
    ref = DiehlCookNetwork(config, params, engine='torch')
    learnt = fast.learn(events, timesteps=60), ref.learn(events, timesteps=60)
    assert np.array_equal(learnt[0].exc_spike_counts, learnt[1].exc_spike_counts)
    assert learnt[0].ops.totals() == learnt[1].ops.totals()
    assert np.array_equal(fast.weights, ref.weights)
    assert np.array_equal(fast.theta, ref.theta)
    # Inference after it, batched and one sample (the serial kernel), with early exit.
    fast.assign_labels(events, np.arange(3), timesteps=60)
    ref.readout = fast.readout
    rule = EarlyExit(margin=1.0, min_steps=3)
    one = poisson_events(images[:1], 60, rate, 1.0, draw_seeds(rng, 1))
    for batch in (events, one):
        got = [m.infer(batch, timesteps=60, early_exit=rule) for m in (fast, ref)]
        assert np.array_equal(got[0].evidence, got[1].evidence)
        assert np.array_equal(got[0].timesteps_used, got[1].timesteps_used)
        assert np.array_equal(got[0].scores, got[1].scores)
        assert got[0].ops.totals() == got[1].ops.totals()


def test_concurrent_inference_on_one_torch_model_is_each_calls_own(images):
    """
    Two threads classifying with one torch model: each gets its own result, nothing is left.

    The engine swapped a call's state and scaled thresholds into itself for the call: a call
    beside one at ``theta_scale`` 0.5 compared with the halved thresholds, and the call that
    ended last put back the other's inference state, which the next learning call went on
    from (a review found 2 wrong results in 1 220). The threads are interleaved here on
    purpose: A's call starts, B's starts while A's is in progress, A ends before B does (B
    then found no state at all: A had put back the none it found).
    """
    import threading

    config = STDPConfig(n_neurons=16, between_samples='rest', rest_ms=10.0)
    model = DiehlCookNetwork(config, engine='torch')
    model.learn(images[:4], timesteps=60, seed=2)
    model.reset_state()
    theta = model.theta
    assert theta.max() > 0
    halved = DynamicsParams(theta_scale=0.5)
    want_a = model.infer(images[:3], timesteps=60, seed=4, params=halved)
    want_b = model.infer(images[3:6], timesteps=60, seed=5)
    engine = model._engine
    dense, tables = engine._dense, engine._tables
    a_in_call, b_in_call, a_done = threading.Event(), threading.Event(), threading.Event()

    def b_after_a(source, timesteps):  # (B's call starts once A's is under way)
        if threading.current_thread().name == 'B':
            assert a_in_call.wait(30)
        return dense(source, timesteps)

    def interleaved(const):  # (the tables are made right before the simulation)
        if threading.current_thread().name == 'A':
            a_in_call.set()
            assert b_in_call.wait(30)
        else:
            b_in_call.set()
            assert a_done.wait(30)
        return tables(const)
    engine._dense = b_after_a
    engine._tables = interleaved
    got, errors = {}, []

    def run(name, batch, seed, params):
        try:
            got[name] = model.infer(batch, timesteps=60, seed=seed, params=params)
        except BaseException as exc:  # (shown below, not lost in the thread)
            errors.append(exc)
        finally:
            if name == 'A':
                a_done.set()
    threads = [threading.Thread(target=run, name='A', args=('A', images[:3], 4, halved)),
               threading.Thread(target=run, name='B', args=('B', images[3:6], 5, None))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors
    assert np.array_equal(got['A'].evidence, want_a.evidence)
    assert np.array_equal(got['B'].evidence, want_b.evidence)
    assert not np.array_equal(want_a.evidence, model.infer(images[:3], timesteps=60,
                                                           seed=4).evidence)  # (it matters)
    assert engine.dynamic_state() == {}  # no inference state left for learning to go on from
    assert np.array_equal(model.theta, theta)
