"""Tests of on-line STDP training (core/stdp/train.py): order, labels, evaluation, progress."""

import json
import os
import signal
import time

import numpy as np
import pytest

from topspark_ros.core.stdp import DiehlCookNetwork, STDPConfig
from topspark_ros.core.stdp.readout import assign_labels
from topspark_ros.core.stdp.train import (CHUNK, load_training_state, Position,
                                          save_training_state, STAGES, train)


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


REST = STDPConfig(n_neurons=8, seed=0, between_samples='rest', rest_ms=10.0)
"""A network whose samples carry their dynamic state on (what a resumed run must restore)."""


def _trained(engine: str, images, labels, **kwargs) -> DiehlCookNetwork:
    net = DiehlCookNetwork(REST, engine=engine)
    train(net, images, labels, timesteps=12, n_label=20, epochs=2, seed=3, **kwargs)
    return net


@pytest.mark.parametrize('engine', ['numba', 'torch'])
def test_a_run_resumed_from_any_saved_state_ends_as_an_uninterrupted_one(
        fashion_train, tmp_path, engine):
    """
    A learning state saved at a chunk's end, loaded into a new network, learns on bit for bit.

    In 'rest' mode, where each sample starts from the state the one before left.

    Every state a run saves (``state_every_s=0``: after every chunk, across the two passes,
    the second shuffled) is written to a file and read back; a new model restored from it and
    trained from its position ends with the weights, thresholds and neuron labels of the run
    that was never interrupted: the dynamic state, the seed stream and the pass's order all
    went on as they would have.
    """
    images, labels = fashion_train.images[:130], fashion_train.labels[:130]
    positions = []
    whole = _trained(engine, images, labels, state_every_s=0.0,
                     save_state=lambda position: positions.append(position))
    assert [(p.epoch, p.done) for p in positions] == [
        (0, 50), (0, 100), (0, 130), (1, 50), (1, 100), (1, 130)]
    settings = {'run': 'this one'}
    chosen = (positions[1], positions[2], positions[4]) if engine == 'numba' else positions[4:5]
    for position in chosen:  # the torch engine's steps are slow: one, in the second pass
        path = tmp_path / f'{position.epoch}_{position.done}.npz'
        first = DiehlCookNetwork(REST, engine=engine)
        train(first, images, labels, timesteps=12, n_label=20, epochs=2, seed=3,
              save_state=lambda p: save_training_state(path, first, p, settings)
              if p == position else None, state_every_s=0.0)
        arrays, loaded, read_settings = load_training_state(path)
        assert loaded == position and read_settings == settings
        net = DiehlCookNetwork(REST, engine=engine)
        net.restore_learning_state(arrays)
        reported = []
        resumed = train(net, images, labels, timesteps=12, n_label=20, epochs=2, seed=3,
                        start=loaded, progress=lambda *a: reported.append(a))
        # Its speed is that of what it learnt (a review: the whole training's count over the
        # resumed part's time gave 4.2 M images a second)
        assert resumed.presentations == 260 - 130 * position.epoch - position.done
        assert np.array_equal(net.weights, whole.weights)
        assert np.array_equal(net.theta, whole.theta)
        assert np.array_equal(net.readout.assignments, whole.readout.assignments)
        assert reported[1] == ('train', 130 * position.epoch + position.done, 260)


def test_an_interrupt_while_learning_saves_the_state_after_the_chunk(fashion_train, tmp_path):
    """
    Ctrl-C in the middle of a chunk: the chunk is learnt in full, then the state is saved.

    SIGINT arrives while the network learns (sent from inside ``learn``); the loop holds it
    off until the chunk is done, saves the state at the chunk's end and lets the
    KeyboardInterrupt go on. Resumed from that state, the run ends as an uninterrupted one.
    """
    images, labels = fashion_train.images[:130], fashion_train.labels[:130]
    whole = _trained('numba', images, labels)
    net = DiehlCookNetwork(REST)
    calls = []
    learn = net.learn

    def interrupted_learn(inputs, **kwargs):
        calls.append(len(inputs))
        if len(calls) == 2:
            os.kill(os.getpid(), signal.SIGINT)  # handled where the chunk is done
            time.sleep(0.05)
        return learn(inputs, **kwargs)

    net.learn = interrupted_learn
    saved = []
    path = tmp_path / 'state.npz'

    def save(position):
        saved.append(position)
        save_training_state(path, net, position, {})

    with pytest.raises(KeyboardInterrupt):
        train(net, images, labels, timesteps=12, n_label=20, epochs=2, seed=3,
              save_state=save)
    assert calls == [50, 50] and [(p.epoch, p.done) for p in saved] == [(0, 100)]
    arrays, position, _ = load_training_state(path)
    resumed = DiehlCookNetwork(REST)
    resumed.restore_learning_state(arrays)
    train(resumed, images, labels, timesteps=12, n_label=20, epochs=2, seed=3, start=position)
    assert np.array_equal(resumed.weights, whole.weights)
    assert np.array_equal(resumed.theta, whole.theta)


def test_a_learning_state_that_does_not_fit_is_refused(fashion_train, tmp_path, monkeypatch):
    """Another size, engine or a file that is no state: a clear ValueError, nothing changed."""
    images = fashion_train.images[:60]
    net = DiehlCookNetwork(STDPConfig(n_neurons=8, seed=0))
    net.learn(images, timesteps=12)
    arrays = net.learning_state()
    other = DiehlCookNetwork(STDPConfig(n_neurons=9, seed=0))
    with pytest.raises(ValueError, match=r'weights of shape \(784, 8\) does not fit'):
        other.restore_learning_state(arrays)
    with pytest.raises(ValueError, match='of the numba engine; this model runs the torch'):
        DiehlCookNetwork(STDPConfig(n_neurons=8, seed=0),
                         engine='torch').restore_learning_state(arrays)
    (tmp_path / 'x.npz').write_bytes(b'not a state')
    with pytest.raises(ValueError, match='is not a training state'):
        load_training_state(tmp_path / 'x.npz')
    save_training_state(tmp_path / 'y.npz', net, Position(0, 50, {}), {})
    (tmp_path / 'z.npz').write_bytes((tmp_path / 'y.npz').read_bytes()[:5000])  # cut short
    for name in ('z.npz', 'empty.npz'):
        (tmp_path / 'empty.npz').write_bytes(b'')
        with pytest.raises(ValueError, match='damaged or foreign file; remove it to start'):
            load_training_state(tmp_path / name)
    # A newer version's state is not called damaged either (it was, with removal advised).
    with np.load(tmp_path / 'y.npz') as archive:
        arrays = dict(archive)
    meta = json.loads(str(arrays['meta']))
    arrays['meta'] = np.array(json.dumps(dict(meta, format=meta['format'] + 1)))
    np.savez(tmp_path / 'newer.npz', **arrays)
    with pytest.raises(ValueError, match='state of a newer topspark_ros') as raised:
        load_training_state(tmp_path / 'newer.npz')
    assert 'remove it' not in str(raised.value) and 'newer.npz' in str(raised.value)
    # A good state that cannot be read now is not called damaged (a review: the advice to
    # remove it would throw hours of learning away).
    import errno

    def denied(*args, **kwargs):
        raise PermissionError(errno.EACCES, 'Permission denied')

    monkeypatch.setattr(np, 'load', denied)
    with pytest.raises(PermissionError, match='cannot read the training state .*y.npz: '
                       'Permission denied'):
        load_training_state(tmp_path / 'y.npz')
    with pytest.raises(ValueError, match='cannot resume at pass 3'):
        train(net, images, np.zeros(60), timesteps=12, n_label=5, epochs=2,
              start=Position(2, 0, np.random.default_rng(0).bit_generator.state))
