"""Tests of the one batched-inference loop (core/topspark/evaluate.py)."""

import numpy as np
import pytest

from topspark_ros.core.energy import OpCounts
from topspark_ros.core.stdp import DiehlCookNetwork, STDPConfig
from topspark_ros.core.topspark.early_exit import EarlyExit
from topspark_ros.core.topspark.evaluate import evaluate, SEED_RULES


def test_batches_seeds_and_progress(fake_model):
    done = []
    run = evaluate(fake_model, np.arange(10), timesteps=5, batch_size=4, seed=7,
                   progress=done.append)
    calls = [(c[1], c[2], c[4]) for c in fake_model.calls]
    assert calls == [([0, 1, 2, 3], 5, 7), ([4, 5, 6, 7], 5, 8), ([8, 9], 5, 9)]  # seed + k
    assert done == [4, 4, 2] and len(run.batches) == 3 and run.seconds >= 0.0
    fake_model.calls.clear()
    evaluate(fake_model, np.arange(10), timesteps=5, batch_size=4, seed=7, seed_by='sample')
    assert [c[4] for c in fake_model.calls] == [7, 11, 15]  # seed + first input
    assert SEED_RULES == ('batch', 'sample')


def test_per_input_arrays_are_concatenated_in_order(fake_model):
    x = np.array([0, 7, 1, 9, 4])
    run = evaluate(fake_model, x, timesteps=6, batch_size=2, params={'gain': 1.0})
    assert run.evidence.tolist() == [[0, 6], [7, 6], [1, 6], [9, 6], [4, 6]]
    assert run.predicted.tolist() == [0, 2, 1, 1, 1]  # 7 and 9 >= T: (x + 1) % 3
    assert run.spike_count.tolist() == [6, 13, 7, 15, 10]
    assert run.timesteps_used.tolist() == [6] * 5
    assert run.op_totals() == {'accumulates': 2 * 6 * (1 + 8 + 2 + 10 + 5),
                               'neuron_updates': 30}
    mean = run.mean_energy_ops()  # summed input by input, times 1 / N
    assert (mean.accumulates, mean.neuron_updates) == (pytest.approx(2 * 6 * 26 / 5), 6.0)
    assert [c[3] for c in fake_model.calls] == [{'gain': 1.0}] * 3


def test_early_exit_is_passed_to_every_batch(fake_model):
    rule = EarlyExit(3.0, 4)
    run = evaluate(fake_model, np.array([1, 5, 9]), timesteps=8, batch_size=2, early_exit=rule)
    assert [c[5] for c in fake_model.calls] == [rule, rule]
    assert run.timesteps_used.tolist() == [4, 5, 8]


def test_no_input_and_bad_arguments(fake_model):
    run = evaluate(fake_model, np.zeros(0, np.int64), timesteps=4)
    assert run.batches == () and fake_model.calls == []
    assert run.evidence.shape == (0, 0) and run.op_totals() == {}
    assert run.mean_energy_ops() == OpCounts()
    with pytest.raises(ValueError, match='seed_by'):
        evaluate(fake_model, np.arange(3), timesteps=4, seed_by='input')
    with pytest.raises(ValueError, match='batch_size'):
        evaluate(fake_model, np.arange(3), timesteps=4, batch_size=0)


def test_an_stdp_network_runs_as_its_own_batches_would(images):
    """The loop adds nothing: each batch is the network's infer with the rule's seed."""
    net = DiehlCookNetwork(STDPConfig(n_neurons=6, seed=0))
    run = evaluate(net, images, timesteps=20, batch_size=3, seed=5, seed_by='sample')
    for k, first in enumerate(range(0, len(images), 3)):
        direct = net.infer(images[first:first + 3], timesteps=20, seed=5 + first)
        assert np.array_equal(run.batches[k].evidence, direct.evidence)
    assert run.evidence.shape == (len(images), 6)
    assert run.op_totals()['input_spikes'] == sum(int(b.ops.input_spikes.sum())
                                                  for b in run.batches)


@pytest.fixture(scope='module')
def images(fashion_train):
    """Return 8 real training images."""
    return fashion_train.images[:8]
