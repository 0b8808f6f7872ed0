"""Tests of the label assignment and the class votes of the STDP network."""

import numpy as np
import pytest

from topspark_ros.core.stdp.readout import assign_labels, Readout


def test_readout_votes():
    counts = np.array([[5, 0, 1, 0], [0, 4, 0, 3], [0, 0, 0, 0]])
    readout = assign_labels(counts[:2], np.array([0, 1]), n_classes=3)
    assert list(readout.assignments) == [0, 1, 0, 1]
    # No spike, no class (-1), as the classifier reports it: class 0 was counted right for
    # every silent input of class 0 by sweeps and evaluations (a user review).
    assert list(readout.predict(counts)) == [0, 1, -1]
    assert list(readout.predict(counts[2:])) == [-1] and list(readout.predict(counts[:1])) == [0]
    assert list(readout.predict(counts, 'cosine')) == [0, 1, -1]
    assert readout.scores(counts)[1].tolist() == [0.0, 3.5, 0.0]
    cosine = readout.scores(counts, 'cosine')
    assert cosine[0, 0] == pytest.approx(1.0) and cosine[2].tolist() == [0.0, 0.0, 0.0]
    never = assign_labels(np.zeros((2, 2)), np.array([0, 1]), n_classes=2)
    assert list(never.assignments) == [-1, -1]


def test_assignment_takes_the_class_of_the_highest_mean_response():
    # Neuron 0: mean 2 on class 0 (samples 0, 2), 3 on class 1 -> class 1. Neuron 1: a tie of
    # the means (1 and 1) goes to the lowest class. Neuron 2 never fires: -1. No sample of
    # class 2: its rates are 0.
    counts = np.array([[1, 1, 0], [3, 1, 0], [3, 1, 0]])
    readout = assign_labels(counts, np.array([0, 1, 0]), n_classes=3)
    np.testing.assert_array_equal(readout.class_rates,
                                  [[2.0, 3.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 0.0]])
    assert readout.assignments.tolist() == [1, 0, -1] and readout.n_classes == 3
    # all_activity: the mean count of the neurons of each class (class 2 has none: 0).
    scores = readout.scores(np.array([[4, 2, 7]]))
    assert scores.tolist() == [[2.0, 4.0, 0.0]]
    # Ties of the scores go to the lowest class.
    assert readout.predict(np.array([[2, 2, 0]])).tolist() == [0]


def test_cosine_vote_is_the_cosine_to_the_class_mean_responses():
    rates = np.array([[1.0, 0.0], [1.0, 2.0]])
    readout = Readout(class_rates=rates, assignments=np.array([0, 1]))
    counts = np.array([[3, 4]])
    want = [(3 + 4) / (5 * np.sqrt(2)), 8 / (5 * 2)]
    np.testing.assert_allclose(readout.scores(counts, 'cosine')[0], want, rtol=1e-12)


def test_bad_inputs_are_refused():
    readout = assign_labels(np.eye(3), np.array([0, 1, 2]), n_classes=3)
    with pytest.raises(ValueError, match=r'spike counts must be \[B, 3\]'):
        readout.scores(np.zeros((2, 4)))
    with pytest.raises(ValueError, match='unknown vote'):
        readout.scores(np.zeros((2, 3)), 'majority')
    with pytest.raises(ValueError, match='disagree'):
        assign_labels(np.zeros((3, 2)), np.array([0, 1]), n_classes=2)
    with pytest.raises(ValueError, match=r'labels must lie in \[0, 2\)'):
        assign_labels(np.zeros((2, 2)), np.array([0, 2]), n_classes=2)


def test_readout_scores_of_integer_counts_equal_those_of_float_counts():
    rng = np.random.default_rng(2)
    counts = rng.integers(0, 30, (64, 50))
    readout = assign_labels(counts[:40], rng.integers(0, 7, 40), n_classes=8)
    assert (np.bincount(readout.assignments + 1, minlength=9) == 0).any()  # an empty class
    for dtype in (np.int64, np.int32, np.uint8):
        assert np.array_equal(readout.scores(counts.astype(dtype)),
                              readout.scores(counts.astype(np.float64)))


def test_all_activity_scores_are_the_class_means_at_every_batch_size():
    # The numba vote (class_scores) against the definition, written out: the mean count of
    # each class's neurons, 0 for a class without any. One row scores as it does in a batch.
    rng = np.random.default_rng(5)
    counts = rng.integers(0, 50, (9, 60))
    readout = Readout(class_rates=np.zeros((60, 6)), assignments=rng.integers(-1, 5, 60))
    assert not (readout.assignments == 5).any()  # class 5 has no neuron
    want = np.zeros((9, 6))
    for c in range(5):
        members = readout.assignments == c
        want[:, c] = counts[:, members].sum(axis=1) / members.sum()
    assert np.array_equal(readout.scores(counts), want)
    for b in range(9):
        assert np.array_equal(readout.scores(counts[b:b + 1]), want[b:b + 1])
    assert readout.scores(counts[:0]).shape == (0, 6)
    assert np.array_equal(readout.scores(counts[:, ::-1][:, ::-1]), want)  # not contiguous
    assert np.array_equal(readout.scores(counts > 25),
                          readout.scores((counts > 25).astype(np.int64)))


def test_a_readout_refuses_assignments_that_are_no_class():
    # The vote indexes per-class totals by assignment (in numba, unchecked): an assignment
    # outside [-1, C) must be refused where the readout is made.
    rates = np.zeros((3, 2))
    with pytest.raises(ValueError, match=r'must lie in \[-1, 2\)'):
        Readout(class_rates=rates, assignments=np.array([0, 2, -1]))
    with pytest.raises(ValueError, match=r'must lie in \[-1, 2\)'):
        Readout(class_rates=rates, assignments=np.array([0, -2, 1]))
    with pytest.raises(ValueError, match=r'assignments must be integers \[3\]'):
        Readout(class_rates=rates, assignments=np.array([0, 1]))
    with pytest.raises(ValueError, match=r'assignments must be integers'):
        Readout(class_rates=rates, assignments=np.array([0.0, 1.0, 1.0]))
    with pytest.raises(ValueError, match=r'class rates must be \[N, C\]'):
        Readout(class_rates=np.zeros(3), assignments=np.array([0, 1, 1]))
    assert Readout(class_rates=rates, assignments=np.array([0, 1, -1])).n_classes == 2
