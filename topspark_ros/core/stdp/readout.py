"""
Label assignment and class votes for unsupervised spiking networks (Diehl & Cook 2015).

The network learns without labels; afterwards each excitatory neuron is given the class it
responds to most on a (possibly small) labelled set, and a sample's class is read from which
neurons fire. numpy, and one numba loop for the class totals of integer counts.
"""

from dataclasses import dataclass
from functools import cached_property

import numba
import numpy as np

VOTES = ('all_activity', 'cosine')
"""The class votes :meth:`Readout.scores` implements."""


@numba.njit(cache=True, nogil=True)
def class_scores(counts, bins, divisors, scores):
    """
    Write the ``all_activity`` scores of integer spike counts to ``scores float64 [B, C]``.

    ``counts`` is ``int64 [B, N]`` (C-contiguous), ``bins [N]`` each neuron's class (``C``
    for none) and ``divisors [C]`` the class sizes (1 for an empty class, whose total is 0);
    see :attr:`Readout.vote_tables`. The counts add up exactly (in int64), in one pass and
    without a BLAS call (whose threads fight numba's for the cores); at batch 1 this costs
    1 us, numpy's fancy indexing and ``reduceat`` 7. The numba engine calls it in its kernel
    of one sample.
    """
    n_classes = divisors.shape[0]
    totals = np.zeros(n_classes + 1, np.int64)
    for b in range(counts.shape[0]):
        totals[:] = 0
        for j in range(counts.shape[1]):
            totals[bins[j]] += counts[b, j]
        for c in range(n_classes):
            scores[b, c] = totals[c] / divisors[c]


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

    def __post_init__(self) -> None:
        """Check the shapes and that every assignment is a class or -1 (ValueError)."""
        rates, assignments = np.asarray(self.class_rates), np.asarray(self.assignments)
        if rates.ndim != 2:
            raise ValueError(f'class rates must be [N, C], got shape {rates.shape}')
        if assignments.shape != rates.shape[:1] or assignments.dtype.kind not in 'iu':
            raise ValueError(f'assignments must be integers [{rates.shape[0]}], got '
                             f'{assignments.dtype} {assignments.shape}')
        if assignments.size and (assignments.min() < -1 or assignments.max() >= rates.shape[1]):
            raise ValueError(f'class assignments must lie in [-1, {rates.shape[1]})')

    @property
    def n_classes(self) -> int:
        """Return the number of classes ``C``."""
        return int(self.class_rates.shape[1])

    @cached_property
    def _onehot(self) -> np.ndarray:
        """Return the class membership of the neurons, ``float64 [N, C]`` (made once)."""
        classes = np.arange(self.n_classes)[None, :]
        return (self.assignments[:, None] == classes).astype(np.float64)

    @cached_property
    def vote_tables(self) -> tuple:
        """
        Return the ``all_activity`` vote as :func:`class_scores` takes it (made once).

        ``(bins int64 [N], divisors float64 [C])``: each neuron's class with ``C`` for none,
        and the class sizes with 1 for an empty class (whose total is 0).
        """
        bins = np.where(self.assignments >= 0, self.assignments, self.n_classes)
        divisors = np.maximum(np.bincount(bins, minlength=self.n_classes + 1), 1)
        return bins.astype(np.int64), divisors[:self.n_classes].astype(np.float64)

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
        if raw.ndim != 2 or raw.shape[1] != self.class_rates.shape[0]:
            raise ValueError(f'spike counts must be [B, {self.class_rates.shape[0]}], '
                             f'got shape {raw.shape}')
        integral = raw.dtype.kind in 'iub'
        if vote == 'all_activity':
            bins, divisors = self.vote_tables
            if integral:
                scores = np.empty((raw.shape[0], self.n_classes))
                class_scores(np.ascontiguousarray(raw, dtype=np.int64), bins, divisors, scores)
                return scores
            return (np.asarray(raw, dtype=np.float64) @ self._onehot) / divisors
        if vote == 'cosine':
            counts = np.asarray(raw, dtype=np.float64)
            dots = counts @ self.class_rates
            norms = (np.linalg.norm(counts, axis=1)[:, None]
                     * np.linalg.norm(self.class_rates, axis=0)[None, :])
            return np.divide(dots, norms, out=np.zeros_like(dots), where=norms > 0)
        raise ValueError(f'unknown vote {vote!r} (expected one of {VOTES})')

    def predict(self, spike_counts: np.ndarray, vote: str = 'all_activity') -> np.ndarray:
        """
        Return the class with the highest score (lowest index on ties), ``int64 [B]``.

        -1 (:data:`~topspark_ros.core.model.NO_CLASS`) for a sample whose scores are all 0
        (no spike of a labelled neuron), as the classifier reports it.
        """
        from topspark_ros.core.model import predicted_classes
        return predicted_classes(self.scores(spike_counts, vote))


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
