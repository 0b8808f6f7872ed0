"""
Label assignment and class votes for unsupervised spiking networks (Diehl & Cook 2015).

The network learns without labels; afterwards each excitatory neuron is given the class it
responds to most on a (possibly small) labelled set, and a sample's class is read from which
neurons fire. Only numpy.
"""

from dataclasses import dataclass
from functools import cached_property

import numpy as np

VOTES = ('all_activity', 'cosine')
"""The class votes :meth:`Readout.scores` implements."""


@dataclass(frozen=True)
class Readout:
    """
    Per-neuron class statistics of a trained network.

    Attributes
    ----------
    class_rates
        ``float64 [N, C]``, mean spike count of neuron ``j`` over the labelled
        samples of class ``c`` (0 for a class without samples).
    assignments
        ``int64 [N]``, ``argmax_c class_rates[j, c]``, or -1 for a neuron that
        never fired on the labelled set (it takes part in no vote).

    """

    class_rates: np.ndarray
    assignments: np.ndarray

    @property
    def n_classes(self) -> int:
        """Return the number of classes ``C``."""
        return int(self.class_rates.shape[1])

    @cached_property
    def _members(self) -> tuple:
        """
        Return the class membership of the neurons, computed once.

        ``(onehot float64 [N, C], class sizes [C], order, starts, classes)``: ``order`` lists
        the assigned neurons by class, ``starts`` where each class of ``classes`` (those with
        neurons) begins in it.
        """
        onehot = (self.assignments[:, None] == np.arange(self.n_classes)[None, :])
        order = np.argsort(self.assignments, kind='stable')
        order = order[self.assignments[order] >= 0]
        classes, starts = np.unique(self.assignments[order], return_index=True)
        return onehot.astype(np.float64), onehot.sum(axis=0), order, starts, classes

    def scores(self, spike_counts: np.ndarray, vote: str = 'all_activity') -> np.ndarray:
        """
        Return class scores ``float64 [B, C]`` of samples' spike counts ``[B, N]``.

        ``all_activity`` (Diehl & Cook): the mean spike count of the neurons assigned to the
        class, ``score[b, c] = sum_{j: a_j = c} n_bj / |{j: a_j = c}|`` (0 for a class no
        neuron is assigned to).

        ``cosine`` (distance-weighted vote): every neuron votes for every class in proportion
        to its mean response to that class, normalised; it is the cosine similarity between
        the sample's response vector and the class's mean response vector,
        ``score[b, c] = n_b . r_c / (|n_b| |r_c|)`` with ``r_c = class_rates[:, c]``
        (0 when either vector is zero), i.e. nearest class mean under cosine distance.
        """
        raw = np.asarray(spike_counts)
        counts = np.asarray(raw, dtype=np.float64)
        if counts.ndim != 2 or counts.shape[1] != self.class_rates.shape[0]:
            raise ValueError(f'spike counts must be [B, {self.class_rates.shape[0]}], '
                             f'got shape {counts.shape}')
        if vote == 'all_activity':
            onehot, sizes, order, starts, classes = self._members
            if raw.dtype.kind in 'iu':
                # Integer counts: per-class sums in integers (exact, as the float product
                # below is), without a BLAS call (its threads fight numba's for the cores).
                totals = np.zeros(counts.shape[:1] + sizes.shape)
                if order.size:
                    sums = np.add.reduceat(raw[:, order], starts, axis=1, dtype=np.int64)
                    totals[:, classes] = sums
            else:
                totals = counts @ onehot
            return np.divide(totals, sizes, out=np.zeros_like(totals), where=sizes > 0)
        if vote == 'cosine':
            dots = counts @ self.class_rates
            norms = (np.linalg.norm(counts, axis=1)[:, None]
                     * np.linalg.norm(self.class_rates, axis=0)[None, :])
            return np.divide(dots, norms, out=np.zeros_like(dots), where=norms > 0)
        raise ValueError(f'unknown vote {vote!r} (expected one of {VOTES})')

    def predict(self, spike_counts: np.ndarray, vote: str = 'all_activity') -> np.ndarray:
        """Return the class with the highest score (lowest index on ties), ``int64 [B]``."""
        return np.argmax(self.scores(spike_counts, vote), axis=1).astype(np.int64)


def assign_labels(spike_counts: np.ndarray, labels: np.ndarray, n_classes: int) -> Readout:
    """
    Assign each neuron the class of its highest mean response on labelled samples.

    Parameters
    ----------
    spike_counts
        ``[B, N]`` excitatory spike counts of ``B`` labelled samples (inference,
        learning off).
    labels
        ``[B]`` class indices in ``[0, n_classes)``.
    n_classes
        number of classes ``C``.

    Returns
    -------
        The :class:`Readout`; ties go to the lowest class index.

    """
    counts = np.asarray(spike_counts, dtype=np.float64)
    labels = np.asarray(labels).astype(np.int64).reshape(-1)
    if counts.ndim != 2 or counts.shape[0] != labels.shape[0]:
        raise ValueError(f'spike counts [B, N] and labels [B] disagree: {counts.shape} vs '
                         f'{labels.shape}')
    if labels.size and (labels.min() < 0 or labels.max() >= n_classes):
        raise ValueError(f'labels must lie in [0, {n_classes})')
    onehot = np.zeros((labels.size, n_classes), np.float64)
    onehot[np.arange(labels.size), labels] = 1.0
    per_class = onehot.sum(axis=0)
    sums = counts.T @ onehot
    rates = np.divide(sums, per_class[None, :], out=np.zeros_like(sums),
                      where=per_class[None, :] > 0)
    assignments = np.argmax(rates, axis=1).astype(np.int64)
    assignments[rates.max(axis=1, initial=0.0) <= 0.0] = -1
    return Readout(class_rates=rates, assignments=assignments)
