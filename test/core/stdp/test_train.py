"""Tests of on-line STDP training (core/stdp/train.py): order, labels, evaluation, progress."""

import numpy as np
import pytest

from topspark_ros.core.stdp import DiehlCookNetwork, STDPConfig
from topspark_ros.core.stdp.readout import assign_labels
from topspark_ros.core.stdp.train import CHUNK, STAGES, train


def test_learning_order_labels_and_progress(fashion_train):
    """A real network: the stages do exactly what the loop of the CLI did before."""
    images, labels = fashion_train.images[:130], fashion_train.labels[:130]
    held, held_labels = fashion_train.images[200:230], fashion_train.labels[200:230]
    net = DiehlCookNetwork(STDPConfig(n_neurons=8, seed=0))
    reported = []
    result = train(net, images, labels, timesteps=12, n_label=100, epochs=2, seed=3,
                   batch_size=32, eval_inputs=held, eval_labels=held_labels,
                   progress=lambda *a: reported.append(a))

    # The same by hand: pass 1 in order, pass 2 shuffled by default_rng(seed), chunks of 50;
    # inference batches seeded seed + 1 + first input.
    hand = DiehlCookNetwork(STDPConfig(n_neurons=8, seed=0))
    order = np.random.default_rng(3)
    for epoch in range(2):
        shown = images if epoch == 0 else images[order.permutation(len(images))]
        for first in range(0, len(shown), CHUNK):
            hand.learn(shown[first:first + CHUNK], timesteps=12)
    assert np.array_equal(net.weights, hand.weights) and np.array_equal(net.theta, hand.theta)

    def counts(x):
        return np.concatenate([hand.infer(x[f:f + 32], timesteps=12, seed=3 + 1 + f)
                               .evidence for f in range(0, len(x), 32)])

    hand.readout = assign_labels(counts(images[:100]), labels[:100], 10)
    assert np.array_equal(net.readout.assignments, hand.readout.assignments)
    accuracy = float(np.mean(hand.readout.predict(counts(held)) == held_labels))
    assert result.accuracy == accuracy and result.n_eval == 30
    assert result.presentations == 260 and result.learn_seconds > 0
    assert result.eval_seconds > 0

    assert STAGES == ('train', 'label', 'eval')
    assert [a for a in reported if a[1] == 0] == [('train', 0, 260), ('label', 0, 100),
                                                  ('eval', 0, 30)]
    steps = [n for stage, n, _ in reported if stage == 'train' and n]
    assert steps == [50, 50, 30, 50, 50, 30]
    assert sum(n for stage, n, _ in reported if stage == 'label') == 100
    assert sum(n for stage, n, _ in reported if stage == 'eval') == 30


class _Counter:
    """Learns nothing; records what it was shown (what the loop asks of a network)."""

    n_classes = 2

    def __init__(self) -> None:
        self.shown, self.readout = [], None

    def learn(self, inputs, *, timesteps):
        self.shown.append(list(inputs))

    def infer(self, inputs, *, timesteps, params=None, seed=None, early_exit=None):
        x = np.asarray(inputs)
        spikes = np.stack([x % 2 == 0, x % 2 == 1], axis=1).astype(np.int64)
        return _Result(spikes)


class _Result:
    def __init__(self, counts):
        self.evidence = counts


def test_without_held_out_inputs_nothing_is_evaluated():
    model = _Counter()
    x = np.arange(120)
    result = train(model, x, x % 2, timesteps=4, n_label=10, epochs=1)
    assert result.accuracy is None and result.n_eval == 0 and result.eval_seconds is None
    assert [len(c) for c in model.shown] == [50, 50, 20]
    assert sum(model.shown, []) == list(range(120))   # the first pass keeps the order
    assert model.readout.assignments.tolist() == [0, 1]  # neuron j answers parity j


def test_bad_sizes_are_refused():
    with pytest.raises(ValueError, match='n_label'):
        train(_Counter(), np.arange(5), np.zeros(5), timesteps=4, n_label=6)
    with pytest.raises(ValueError, match='epochs'):
        train(_Counter(), np.arange(5), np.zeros(5), timesteps=4, n_label=5, epochs=0)
